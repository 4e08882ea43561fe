package reliability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/tfflowers/tfflowers/internal/tftest"
	"github.com/tfflowers/tfflowers/internal/train"
)

// cliBin is the tfflowers binary built by TestMain, in a world-readable folder so that
// a test can run it as another user.
var cliBin string

func TestMain(m *testing.M) {
	bin, cleanup, err := tftest.BuildCLI()
	if err != nil {
		fmt.Fprintf(os.Stderr, "reliability: %v\n", err)
		os.Exit(1)
	}
	cliBin = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// logBuffer collects a run's log lines; safe for the trainer's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// smallConfig is a fast run: ImageNet base at 32x32, one epoch.
func smallConfig(t *testing.T, data string, logs io.Writer) train.Config {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	return train.Config{
		Data: data, ValSplit: 0.25, Base: tftest.ImageNetBase(t), ImageSize: 32, Head: "gap", Dropout: 0.2,
		LR: 1e-3, BatchSize: 16, Epochs: 1, Seed: 7, CacheDir: filepath.Join(t.TempDir(), "cache"),
		Device: "cpu", Out: filepath.Join(t.TempDir(), "run"), Progress: io.Discard,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
}

func run(t *testing.T, cfg train.Config) (*train.Result, error) {
	t.Helper()
	return train.Run(context.Background(), cfg)
}

// photos returns the first n sorted photos of a shared flower class.
func photos(t *testing.T, class string, n int) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(tftest.FlowerPhotos(t), class, "*.jpg"))
	sort.Strings(files)
	if len(files) < n {
		t.Fatalf("class %s has %d photos, need %d", class, len(files), n)
	}
	return files[:n]
}

// flowerSet links n photos of each of the given classes into dst/<class>/.
func flowerSet(t *testing.T, dst string, n int, classes ...string) {
	t.Helper()
	for _, c := range classes {
		if err := os.MkdirAll(filepath.Join(dst, c), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range photos(t, c, n) {
			if err := os.Symlink(f, filepath.Join(dst, c, filepath.Base(f))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readMetrics(t *testing.T, out string) train.Metrics {
	t.Helper()
	var m train.Metrics
	if err := json.Unmarshal(readFile(t, filepath.Join(out, "metrics.json")), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// pillowFixtures runs testdata/make_fixtures.py (Pillow) into a temp dir.
func pillowFixtures(t *testing.T) (dir string, refs map[string]json.RawMessage) {
	t.Helper()
	dir = t.TempDir()
	cmd := exec.Command(tftest.Python(t), filepath.Join("testdata", "make_fixtures.py"), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make_fixtures.py: %v\n%s (is pillow installed? scripts/setup.sh installs scripts/requirements.txt)", err, out)
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "refs.json")), &refs); err != nil {
		t.Fatal(err)
	}
	return dir, refs
}

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not mention %q:\n%s", what, sub, s)
		}
	}
}
