package reliability_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/tfflowers/tfflowers/internal/train"
	"github.com/tfflowers/tfflowers/savedmodel"
)

// mountTmpfs mounts a tmpfs of the given size on a new folder, or skips saying why.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a %s tmpfs to fill a disk (needs root or CAP_SYS_ADMIN): %v %s", size, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// readOnlyDir bind-mounts a new folder on itself read-only (root can write to mode-0555
// folders, not to a read-only mount), or skips saying why.
func readOnlyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "--bind", dir, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot bind-mount (needs root or CAP_SYS_ADMIN): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	if out, err := exec.Command("mount", "-o", "remount,bind,ro", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, out)
	}
	return dir
}

// fill leaves about keep bytes free on the file system holding dir.
func fill(t *testing.T, dir string, keep int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free > keep {
		write(t, filepath.Join(dir, ".filler"), make([]byte, free-keep))
	}
}

// isNoSpace reports whether err says the disk is full: Go's errors wrap ENOSPC, errors
// from TensorFlow's savers carry its text.
func isNoSpace(err error) bool {
	return err != nil && (errors.Is(err, syscall.ENOSPC) || strings.Contains(strings.ToLower(err.Error()), "no space left on device"))
}

// tree lists every path under dir with a digest of each file, to show nothing changed.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type().IsRegular() {
			out = append(out, fmt.Sprintf("%s %x", rel, sha256.Sum256(readFile(t, p))))
		} else {
			out = append(out, rel+"/")
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func checkpoints(t *testing.T, out string) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(out, "checkpoints"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// trainedRun trains one epoch (flatten head at 64: a ~120 KB checkpoint) into out.
func trainedRun(t *testing.T, out string) train.Config {
	t.Helper()
	data := t.TempDir()
	flowerSet(t, data, 4, "daisy", "roses")
	cfg := smallConfig(t, data, nil)
	cfg.Out, cfg.Head, cfg.ImageSize = out, "flatten", 64
	if _, err := run(t, cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestDiskFullDuringCheckpoint: with the --out disk full, the next checkpoint fails with
// ENOSPC named in the error; the previous checkpoint stays intact (no partial step-N,
// no temp folders) and, once space is freed, --resume continues from it.
func TestDiskFullDuringCheckpoint(t *testing.T) {
	disk := mountTmpfs(t, "2m")
	cfg := trainedRun(t, filepath.Join(disk, "run"))
	before := checkpoints(t, cfg.Out)
	ckTree := tree(t, filepath.Join(cfg.Out, "checkpoints"))
	if len(before) != 1 {
		t.Fatalf("checkpoints after one epoch: %v", before)
	}
	fill(t, disk, 48<<10) // room for labels and metrics, not for a checkpoint
	cfg.Resume, cfg.Epochs = true, 3
	_, err := run(t, cfg)
	if !isNoSpace(err) || !strings.Contains(err.Error(), "checkpoint") {
		t.Fatalf("run on a full disk = %v, want a checkpoint error wrapping ENOSPC", err)
	}
	t.Logf("disk full during checkpoint: %v", err)
	if got := tree(t, filepath.Join(cfg.Out, "checkpoints")); strings.Join(got, "\n") != strings.Join(ckTree, "\n") {
		t.Fatalf("checkpoints changed after the failed save:\n%s\nwas\n%s", strings.Join(got, "\n"), strings.Join(ckTree, "\n"))
	}
	os.Remove(filepath.Join(disk, ".filler"))
	res, err := run(t, cfg)
	if err != nil {
		t.Fatalf("--resume after freeing space: %v", err)
	}
	if res.Metrics.ResumedFrom != "epoch 2 batch 0" || len(res.Metrics.Epochs) != 3 {
		t.Fatalf("resumed from %q with %d epochs, want epoch 2 and 3 epochs", res.Metrics.ResumedFrom, len(res.Metrics.Epochs))
	}

	// A disk already full at the first checkpoint: nothing but a clear error.
	disk2 := mountTmpfs(t, "2m")
	cfg2 := cfg
	cfg2.Out, cfg2.Resume, cfg2.Epochs = filepath.Join(disk2, "run"), false, 1
	fill(t, disk2, 48<<10)
	if _, err := run(t, cfg2); !isNoSpace(err) {
		t.Fatalf("first checkpoint on a full disk: %v, want ENOSPC", err)
	}
	if got := checkpoints(t, cfg2.Out); len(got) != 0 {
		t.Fatalf("a full disk left %v in checkpoints/", got)
	}
}

// TestExportFailures: an export to an unwritable place, to a full disk, or over an
// existing version fails with a clear error, leaves no partial version folder (nothing
// a polling TF Serving could pick up) and leaves existing versions untouched.
func TestExportFailures(t *testing.T) {
	cfg := trainedRun(t, filepath.Join(t.TempDir(), "run"))
	ex := func(base string, version int64) error {
		_, _, err := train.Export(train.ExportConfig{Run: cfg.Out, ModelBasePath: base, Version: version})
		return err
	}

	file := filepath.Join(t.TempDir(), "a-file")
	write(t, file, []byte("x"))
	err := ex(filepath.Join(file, "models"), 0)
	if !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("export under a regular file = %v, want ENOTDIR", err)
	}
	t.Logf("export under a file: %v", err)

	t.Run("read-only", func(t *testing.T) {
		ro := readOnlyDir(t)
		err := ex(filepath.Join(ro, "models"), 0)
		if !errors.Is(err, syscall.EROFS) {
			t.Fatalf("export to a read-only mount = %v, want EROFS", err)
		}
		t.Logf("export to a read-only mount: %v", err)
		// --out on a read-only mount fails before training.
		c := cfg
		c.Out = filepath.Join(ro, "run")
		if _, err := run(t, c); !errors.Is(err, syscall.EROFS) {
			t.Fatalf("training into a read-only --out = %v, want EROFS", err)
		} else {
			t.Logf("training into a read-only --out: %v", err)
		}
	})

	t.Run("disk full", func(t *testing.T) {
		disk := mountTmpfs(t, "2m") // the export's variables alone are ~9 MB
		base := filepath.Join(disk, "models")
		err := ex(base, 0)
		if !isNoSpace(err) {
			t.Fatalf("export to a full disk = %v, want ENOSPC", err)
		}
		t.Logf("export to a full disk: %v", err)
		if got := tree(t, base); len(got) != 1 {
			t.Fatalf("a failed export left %v in the model base path", got)
		}
	})

	t.Run("existing version", func(t *testing.T) {
		base := filepath.Join(t.TempDir(), "models")
		if err := ex(base, 0); err != nil {
			t.Fatal(err)
		}
		v1 := tree(t, base)
		err := ex(base, 1)
		if !errors.Is(err, savedmodel.ErrVersionExists) {
			t.Fatalf("export over version 1 = %v, want ErrVersionExists", err)
		}
		t.Logf("export over an existing version: %v", err)
		if got := tree(t, base); strings.Join(got, "\n") != strings.Join(v1, "\n") {
			t.Fatalf("the refused export changed the model base path:\n%s", strings.Join(got, "\n"))
		}
	})
}
