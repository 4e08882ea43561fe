package tfops

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// Replica-local copies of the frozen variables. A replica reads the shared variables
// through the original ReadVariableOps, which run where the variables live (device 0,
// worker 0 in a cluster): every step then ships every weight it reads to every other
// device, the frozen backbone's 14 MB included. The variables that no phase trains never
// change during a run, so each replica gets its own copy on its own device, filled once
// from the originals (syncReplicas, after Initialize and Restore); only the trained
// variables still travel. The head and fine-tuned layers read the originals, so the
// towers see one set of weights as before.
type localCopies struct {
	s       *op.Scope
	trained map[string]bool // VarHandleOp names of the variables some phase trains
	reads   map[string]tf.Output
	assigns []*tf.Operation
}

func newLocalCopies(s *op.Scope, trained []*Variable) *localCopies {
	names := make(map[string]bool, len(trained))
	for _, v := range trained {
		names[v.Handle.Op.Name()] = true
	}
	return &localCopies{s: s, trained: names, reads: map[string]tf.Output{}}
}

// read returns what replica k on dev reads in place of src (a ReadVariableOp of the
// original graph whose input is the VarHandleOp named handle): a read of its own copy
// when the variable is frozen, src itself when some phase trains it.
func (l *localCopies) read(k int, dev string, src *tf.Operation, handle string) (tf.Output, error) {
	if l.trained[handle] {
		return src.Output(0), nil
	}
	key := fmt.Sprintf("%d/%s", k, src.Name())
	if r, ok := l.reads[key]; ok {
		return r, nil
	}
	out := src.Output(0)
	shape := out.Shape()
	if _, err := shape.ToSlice(); err != nil {
		return tf.Output{}, fmt.Errorf("tfops: replicate: variable %s has no static shape: %w", handle, err)
	}
	s := l.s.SubScope(fmt.Sprintf("replica_%d", k)).WithDevice(dev)
	local := op.VarHandleOp(s, out.DataType(), shape, op.VarHandleOpSharedName(fmt.Sprintf("tfflowers/local_%d/%s", k, handle)))
	l.assigns = append(l.assigns, op.AssignVariableOp(s, local, out))
	r := op.ReadVariableOp(s, local, out.DataType())
	l.reads[key] = r
	return r, nil
}

// sync is the op that fills every copy from the originals (nil when there are none).
func (l *localCopies) sync() *tf.Operation {
	if len(l.assigns) == 0 {
		return nil
	}
	return op.NoOp(l.s.SubScope("sync").WithControlDependencies(l.assigns...))
}

// syncReplicas fills the replicas' copies of the frozen variables from the originals.
func (t *TrainGraph) syncReplicas(sess *Session) error {
	if t.localSync == nil {
		return nil
	}
	_, err := sess.Run("copy the frozen weights to every replica", nil, nil, []*tf.Operation{t.localSync})
	return err
}
