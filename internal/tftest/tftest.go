// Package tftest holds test helpers shared by tfflowers' packages: where the repository,
// the shared data and the Python venv are, and base models exported once per machine.
package tftest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Root returns the repository root (TFFLOWERS_ROOT, else the nearest dir with go.mod).
func Root(t testing.TB) string {
	t.Helper()
	if r := os.Getenv("TFFLOWERS_ROOT"); r != "" {
		return r
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("tftest: no go.mod above the test directory; set TFFLOWERS_ROOT")
		}
		dir = parent
	}
}

// Shared returns the shared data directory (TFFLOWERS_SHARED, else ../shared beside the repo).
// Tests that need it fail, not skip, when it is missing: CI always has it.
func Shared(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("TFFLOWERS_SHARED")
	if dir == "" {
		dir = filepath.Join(Root(t), "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "flower_photos")); err != nil {
		t.Fatalf("tftest: shared data not found at %s (set TFFLOWERS_SHARED): %v", dir, err)
	}
	return dir
}

// FlowerPhotos returns the shared flower_photos directory.
func FlowerPhotos(t testing.TB) string { return filepath.Join(Shared(t), "data", "flower_photos") }

// Python returns the venv interpreter made by scripts/setup.sh.
func Python(t testing.TB) string {
	t.Helper()
	py := os.Getenv("TFFLOWERS_PYTHON")
	if py == "" {
		py = filepath.Join(Root(t), ".venv", "bin", "python")
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("tftest: python venv missing at %s: run scripts/setup.sh", py)
	}
	return py
}

// PillowImages writes the images only Pillow makes (a CMYK JPEG among them) with the
// reliability tests' generator, internal/reliability/testdata/make_fixtures.py, and
// returns their folder.
func PillowImages(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(Root(t), "internal", "reliability", "testdata", "make_fixtures.py")
	if out, err := exec.Command(Python(t), script, dir).CombinedOutput(); err != nil {
		t.Fatalf("tftest: make_fixtures.py: %v\n%s (scripts/setup.sh installs Pillow)", err, out)
	}
	return dir
}

// RunPython runs a script from scripts/ with the venv's interpreter and returns its stdout.
func RunPython(t testing.TB, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command(Python(t), append([]string{filepath.Join(Root(t), "scripts", script)}, args...)...)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2", "PYTHONUNBUFFERED=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tftest: %s %v: %v\n%s", script, args, err, lastLines(stderr.String(), 30))
	}
	return string(out)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ImageNetBase returns a base SavedModel with the shared ImageNet weights, exporting it
// once per checkout into build/testdata (git-ignored); concurrent test binaries wait on a lock.
func ImageNetBase(t testing.TB) string {
	t.Helper()
	npy := filepath.Join(Shared(t), "models", "mobilenet_v2_1.0_224_imagenet_npy")
	return exportOnce(t, "base-imagenet", "--weights-npy", npy)
}

// RandomBase returns a base SavedModel with random weights (fast to make, for plumbing tests).
func RandomBase(t testing.TB) string {
	t.Helper()
	return exportOnce(t, "base-random", "--weights", "none", "--seed", "1")
}

func exportOnce(t testing.TB, name string, args ...string) string {
	t.Helper()
	dir := filepath.Join(Root(t), "build", "testdata")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	// The stamp ties the export to the exporter that made it: a changed
	// export_base_model.py (or other arguments) re-exports instead of testing a stale model.
	script, err := os.ReadFile(filepath.Join(Root(t), "scripts", "export_base_model.py"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(script, strings.Join(args, "\x00")...))
	stamp, want := out+".stamp", hex.EncodeToString(sum[:])
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		if _, err := os.Stat(filepath.Join(out, "assets.extra", "tfflowers_base.json")); err == nil {
			return out
		}
	}
	RunPython(t, "export_base_model.py", append([]string{"--out", out, "--force"}, args...)...)
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// BuildCLI builds the tfflowers binary into a fresh world-readable temp folder (tests may
// run it as another user), for TestMain functions that drive the real CLI. The caller
// removes the folder with cleanup when done.
func BuildCLI() (bin string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "tfflowers-cli-")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	if err := os.Chmod(dir, 0o755); err != nil {
		cleanup()
		return "", nil, err
	}
	bin = filepath.Join(dir, "tfflowers")
	build := exec.Command("go", "build", "-o", bin, "github.com/tfflowers/tfflowers/cmd/tfflowers")
	if out, err := build.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build of the CLI failed (source .tf/env.sh first): %v\n%s", err, out)
	}
	return bin, cleanup, nil
}
