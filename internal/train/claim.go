package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
	"github.com/tfflowers/tfflowers/internal/contract"
)

// ErrRunBusy means another process is writing the same --out folder.
var ErrRunBusy = errors.New("another tfflowers process is writing this run")

// claimRun creates the --out folder and takes its lock (OUT/.lock, flock), held until
// the returned file is closed or the process ends: two trainings started together on one
// folder would otherwise both run and interleave checkpoints and metrics.json.
func claimRun(out string) (*os.File, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("--out %s: %w", out, err)
	}
	f, err := atomicfile.Lock(filepath.Join(out, contract.RunLockFile))
	if errors.Is(err, atomicfile.ErrLocked) {
		return nil, fmt.Errorf("%w: --out %s is in use (%s is locked); wait for that run to finish or choose another --out", ErrRunBusy, out, contract.RunLockFile)
	}
	if err != nil {
		return nil, fmt.Errorf("--out %s: %w", out, err)
	}
	return f, nil
}
