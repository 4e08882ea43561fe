package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
	"github.com/tfflowers/tfflowers/internal/contract"
)

// Job states in status.json. A job without status.json is pending.
const (
	StatusRunning     = "running"
	StatusDone        = "done"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted" // stopped by a signal; not done, resumed by the next run
	StatusPending     = "pending"     // never started (summary only)
)

// Files in the batch root and in each job's folder.
const (
	statusFile   = "status.json"
	logFile      = "job.log"
	runDirName   = "run"
	resolvedFile = "jobs.resolved.json"
	summaryCSV   = "summary.csv"
	summaryMD    = "summary.md"
	cacheDirName = ".feature-cache"
	lockFile     = ".lock"
	rootLockFile = ".batch.lock"
)

// Status is ROOT/NAME/status.json. Every key is always present.
type Status struct {
	Status   string         `json:"status"`
	Params   map[string]any `json:"params"` // the job's merged flags, as written in the jobs file
	Started  *time.Time     `json:"started"`
	Finished *time.Time     `json:"finished"`
	Seconds  float64        `json:"seconds"`   // of the last attempt
	ExitCode *int           `json:"exit_code"` // the child's; 128+N when it died of signal N
	Error    string         `json:"error"`
	Attempts int            `json:"attempts"`
	Resumed  bool           `json:"resumed"` // the last attempt was started with --resume
	Args     []string       `json:"args"`    // the last attempt's command line, after the binary
}

func readStatus(dir string) (*Status, error) {
	raw, err := os.ReadFile(filepath.Join(dir, statusFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // params compare exactly with the jobs file's
	var st Status
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, statusFile), err)
	}
	return &st, nil
}

func writeStatus(dir string, st *Status) error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, statusFile), append(raw, '\n'), 0o644)
}

// sameParams reports whether params loaded from status.json match a job's flags.
func sameParams(a, b map[string]any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// hasCheckpoints reports whether a train --out folder holds a saved checkpoint.
func hasCheckpoints(run string) bool {
	entries, err := os.ReadDir(filepath.Join(run, contract.CheckpointsDir))
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), contract.CheckpointPrefix) {
			return true
		}
	}
	return false
}

// readMetrics returns the best validation accuracy and the number of epochs in
// run/metrics.json; ok is false when there is none (or it cannot be read).
func readMetrics(run string) (best float64, epochs int, ok bool) {
	m, err := contract.ReadMetrics(run)
	if err != nil || len(m.Epochs) == 0 {
		return 0, 0, false
	}
	for i, e := range m.Epochs {
		if i == 0 || e.ValAcc > best {
			best = e.ValAcc
		}
	}
	return best, len(m.Epochs), true
}
