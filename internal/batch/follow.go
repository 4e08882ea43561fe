package batch

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tfflowers/tfflowers/internal/contract"
)

// follow feeds what is appended to the log file at path after offset to tap, and the
// run's new epochs to epochs, until stop is closed; then it reads what is left and closes
// the returned channel.
func follow(path string, offset int64, tap *logTap, epochs *epochWatch, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer tap.flush()
		defer epochs.check()
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return
		}
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			io.Copy(tap, f) // to EOF; more may come later
			epochs.check()
			select {
			case <-stop:
				io.Copy(tap, f)
				return
			case <-tick.C:
			}
		}
	}()
	return done
}

// epochWatch follows a job's progress through the file the run writes after every epoch
// (run/metrics.json, read through the contract's types), not through its log text.
type epochWatch struct {
	run    string
	seen   int
	report func(contract.EpochMetrics)
}

// count is the number of epochs run/metrics.json records now (0 without one).
func (w *epochWatch) count() int {
	m, err := contract.ReadMetrics(w.run)
	if err != nil {
		return 0
	}
	return len(m.Epochs)
}

// check reports the epochs recorded since the last check. Only follow's goroutine calls it.
func (w *epochWatch) check() {
	m, err := contract.ReadMetrics(w.run) // written atomically: complete or absent
	if err != nil {
		return
	}
	for _, e := range m.Epochs[min(w.seen, len(m.Epochs)):] {
		w.report(e)
	}
	w.seen = max(w.seen, len(m.Epochs))
}

// logTap watches a job's output lines go by: the CLI's final error line
// (contract.CLIErrorPrefix) and the last lines.
type logTap struct {
	mu      sync.Mutex
	partial []byte
	lastErr string
	tail    []string
}

const maxLine = 64 << 10

func (t *logTap) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.line(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	if len(t.partial) > maxLine {
		t.partial = t.partial[len(t.partial)-maxLine:]
	}
	return len(p), nil
}

func (t *logTap) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.partial) > 0 {
		t.line(string(t.partial))
		t.partial = nil
	}
}

func (t *logTap) line(s string) {
	s = strings.TrimRight(s, "\r")
	if strings.TrimSpace(s) == "" {
		return
	}
	if msg, ok := strings.CutPrefix(s, contract.CLIErrorPrefix); ok {
		t.lastErr = msg
	}
	t.tail = append(t.tail, s)
	if len(t.tail) > 3 {
		t.tail = t.tail[1:]
	}
}

// errorMessage describes why a job failed: the CLI's own error line, else the signal and
// the last lines of output (a crash in TensorFlow's C code prints there).
func (t *logTap) errorMessage(detail string, code int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastErr != "" && detail == "" {
		return t.lastErr
	}
	if detail == "" {
		detail = fmt.Sprintf("exit code %d", code)
	}
	if len(t.tail) > 0 {
		last := t.tail[len(t.tail)-1]
		if len(last) > 300 {
			last = last[:300] + "..."
		}
		detail += ": " + last
	}
	return detail
}
