package tfops

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNoDevice means the requested device is not exposed by TensorFlow.
	ErrNoDevice = errors.New("device not available")
	// ErrShape means a tensor or buffer had a shape other than the graph expects.
	ErrShape = errors.New("shape mismatch")
	// ErrDecode means an image could not be decoded.
	ErrDecode = errors.New("image could not be decoded")
)

// GraphError reports a failure while building or running a graph.
type GraphError struct {
	Step string // what was being built or run, e.g. "build head"
	Err  error
}

func (e *GraphError) Error() string {
	msg := e.Err.Error()
	// The bindings append a Go stack trace to scope errors; it is noise for users.
	if i := strings.Index(msg, " (Stacktrace:"); i >= 0 {
		msg = msg[:i]
	}
	return fmt.Sprintf("tfops: %s: %s", e.Step, msg)
}
func (e *GraphError) Unwrap() error { return e.Err }

// guard is the one panic boundary of the package: deferred at entry points, it turns a
// panic from the bindings or tfgo into a *GraphError. The scope's first error is
// preferred, because a later nil-Operation panic is only a symptom of it.
func guard(step string, s *op.Scope, err *error) {
	r := recover()
	if r == nil {
		return // builders check s.Err() (or Finalize's error) themselves on the normal path
	}
	var cause error
	switch {
	case s != nil && s.Err() != nil:
		cause = s.Err()
	default:
		if e, ok := r.(error); ok {
			cause = e
		} else {
			cause = fmt.Errorf("%v", r)
		}
		if _, ok := r.(runtime.Error); ok {
			slog.Debug("tfops: runtime panic", "step", step, "stack", string(debug.Stack()))
		}
	}
	*err = &GraphError{Step: step, Err: cause}
}
