package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
	"github.com/tfflowers/tfflowers/internal/contract"
)

// Checkpoints live in OUT/checkpoints/step-NNNNNNNN/{ckpt.index, ckpt.data-*, state.json}.
// Each is written into a temporary sibling, fsynced and renamed, so a crash leaves either
// the previous set or the new one complete. state.json records the SHA-256 of the TF files,
// so a damaged checkpoint is detected and the previous one is used instead.

const (
	checkpointDir   = contract.CheckpointsDir
	checkpointName  = "ckpt"
	stateFile       = "state.json"
	keepCheckpoints = 3
	bestDir         = contract.BestCheckpointDir // checkpoints/best: a copy of the best epoch's checkpoint (--restore-best)
)

// runState is everything besides variables that a resumed run needs.
type runState struct {
	Identity   string            `json:"identity"` // settings that must match on --resume
	Epoch      int               `json:"epoch"`    // epoch in progress (0-based)
	Batch      int               `json:"batch"`    // next batch of that epoch
	GlobalStep int               `json:"global_step"`
	Partial    epochTotals       `json:"partial"` // training sums of the epoch in progress
	History    []EpochMetrics    `json:"history"`
	BestLoss   float64           `json:"best_val_loss"`
	BestEpoch  int               `json:"best_epoch"`
	Stale      int               `json:"epochs_without_improvement"`
	Files      map[string]string `json:"files"`     // name -> sha256
	Variables  []string          `json:"variables"` // checkpoint keys
}

type epochTotals struct {
	LossSum float64 `json:"loss_sum"`
	Correct int     `json:"correct"`
	Seen    int     `json:"seen"`
	Seconds float64 `json:"seconds"`
}

type saveFunc func(prefix string) error
type restoreFunc func(prefix string) error

// saveCheckpoint writes variables (through save) and st atomically, then prunes old ones.
func saveCheckpoint(out string, st *runState, save saveFunc) (string, error) {
	root := filepath.Join(out, checkpointDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".tmp-")
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := save(filepath.Join(tmp, checkpointName)); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	files, err := hashDir(tmp)
	if err != nil {
		return "", err
	}
	st.Files = files
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, stateFile), raw, 0o644); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if err := atomicfile.SyncTree(tmp); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	// A resumed run saves the same step again: the older copy stays until the new one is in.
	final := filepath.Join(root, fmt.Sprintf("%s%08d", contract.CheckpointPrefix, st.GlobalStep))
	if err := atomicfile.ReplaceDir(tmp, final); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	prune(root)
	return final, nil
}

func hashDir(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || e.Name() == stateFile {
			continue
		}
		sum, err := hashFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out[e.Name()] = sum
	}
	return out, nil
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// listCheckpoints returns complete checkpoint dirs, newest first.
func listCheckpoints(out string) []string {
	root := filepath.Join(out, checkpointDir)
	entries, _ := os.ReadDir(root)
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), contract.CheckpointPrefix) {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	return dirs
}

func prune(root string) {
	dirs := listCheckpoints(filepath.Dir(root))
	for _, d := range dirs[min(keepCheckpoints, len(dirs)):] {
		os.RemoveAll(d)
	}
	tmps, _ := filepath.Glob(filepath.Join(root, ".tmp-*"))
	for _, t := range tmps {
		os.RemoveAll(t) // left by a crash mid-save
	}
}

// errNoCheckpoint means --resume found nothing to resume.
var errNoCheckpoint = errors.New("no usable checkpoint")

// loadCheckpoint restores the newest intact checkpoint whose identity matches, falling
// back to older ones when the newest is damaged. It returns the state and what it skipped.
func loadCheckpoint(out, identity string, restore restoreFunc) (*runState, []string, error) {
	var problems []string
	for _, dir := range listCheckpoints(out) {
		st, err := readState(dir)
		if err == nil && st.Identity != identity {
			return nil, problems, fmt.Errorf("%w: %s was made with other settings (%s), now %s; use a new --out or the same settings", ErrConfig, dir, st.Identity, identity)
		}
		if err == nil {
			err = verifyFiles(dir, st.Files)
		}
		if err == nil {
			err = restore(filepath.Join(dir, checkpointName))
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", filepath.Base(dir), err))
			continue
		}
		return st, problems, nil
	}
	return nil, problems, errNoCheckpoint
}

func readState(dir string) (*runState, error) {
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var st runState
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("state.json: %w", err)
	}
	if len(st.Files) == 0 {
		return nil, errors.New("state.json lists no checkpoint files")
	}
	return &st, nil
}

func verifyFiles(dir string, files map[string]string) error {
	for name, want := range files {
		got, err := hashFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s is damaged (checksum mismatch)", name)
		}
	}
	return nil
}

// keepBest copies the checkpoint dir src to checkpoints/best, atomically (copy into a
// temp dir, fsync, swap), so the best epoch survives the pruning of old checkpoints.
func keepBest(out, src string) error {
	root := filepath.Join(out, checkpointDir)
	tmp, err := os.MkdirTemp(root, ".tmp-best-")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp)
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if err := atomicfile.WriteFile(filepath.Join(tmp, e.Name()), data, 0o644); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
	}
	if err := atomicfile.SyncTree(tmp); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := atomicfile.ReplaceDir(tmp, filepath.Join(root, bestDir)); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// bestCheckpoint returns the intact checkpoints/best prefix and its state, if any.
func bestCheckpoint(out string) (string, *runState, error) {
	dir := filepath.Join(out, checkpointDir, bestDir)
	st, err := readState(dir)
	if err != nil {
		return "", nil, err
	}
	if err := verifyFiles(dir, st.Files); err != nil {
		return "", nil, err
	}
	return filepath.Join(dir, checkpointName), st, nil
}
