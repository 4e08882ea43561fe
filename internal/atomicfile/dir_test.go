package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// folder makes dir/name holding one file with the given contents.
func folder(t *testing.T, dir, name, contents string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "f"), []byte(contents), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func contents(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return string(b)
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func TestReplaceDir(t *testing.T) {
	t.Run("new", func(t *testing.T) {
		dir := t.TempDir()
		tmp := folder(t, dir, ".tmp", "new")
		if err := ReplaceDir(tmp, filepath.Join(dir, "final")); err != nil {
			t.Fatal(err)
		}
		if got := contents(t, filepath.Join(dir, "final")); got != "new" {
			t.Errorf("final holds %q", got)
		}
		if got := entries(t, dir); len(got) != 1 {
			t.Errorf("left %v, want only final", got)
		}
	})
	t.Run("replace", func(t *testing.T) {
		dir := t.TempDir()
		final := folder(t, dir, "final", "old")
		tmp := folder(t, dir, ".tmp", "new")
		if err := ReplaceDir(tmp, final); err != nil {
			t.Fatal(err)
		}
		if got := contents(t, final); got != "new" {
			t.Errorf("final holds %q", got)
		}
		if got := entries(t, dir); len(got) != 1 {
			t.Errorf("left %v, want only final", got)
		}
	})
}

// TestReplaceDirFailure makes the rename of the new folder fail: the old folder must be
// back under its name with its contents (before ReplaceDir, a deferred RemoveAll deleted it).
func TestReplaceDirFailure(t *testing.T) {
	for _, alsoRestore := range []bool{false, true} {
		t.Run(fmt.Sprintf("restore fails %v", alsoRestore), func(t *testing.T) {
			dir := t.TempDir()
			final := folder(t, dir, "final", "old")
			tmp := folder(t, dir, ".tmp", "new")
			injected := errors.New("injected rename failure")
			calls := 0
			rename = func(from, to string) error {
				calls++
				if calls == 2 || (alsoRestore && calls == 3) {
					return injected
				}
				return os.Rename(from, to)
			}
			defer func() { rename = os.Rename }()
			err := ReplaceDir(tmp, final)
			if !errors.Is(err, injected) {
				t.Fatalf("ReplaceDir = %v, want the injected error", err)
			}
			if contents(t, tmp) != "new" {
				t.Error("the new folder was lost")
			}
			if !alsoRestore {
				if got := contents(t, final); got != "old" {
					t.Errorf("final holds %q after a failed replace, want the old folder", got)
				}
				return
			}
			// The old folder cannot be put back: it must still exist where the error says.
			msg := err.Error()
			i := strings.Index(msg, "kept as ")
			if i < 0 {
				t.Fatalf("error %q does not say where the old folder is", msg)
			}
			kept := strings.SplitN(msg[i+len("kept as "):], ":", 2)[0]
			if got := contents(t, kept); got != "old" {
				t.Errorf("%s holds %q, want the old folder", kept, got)
			}
		})
	}
}

// TestRenameDirNoReplaceRace starts writers together on one name: exactly one wins, the
// others get fs.ErrExist and keep their folders; the winner's folder is intact.
func TestRenameDirNoReplaceRace(t *testing.T) {
	for name, fn := range map[string]func(string, string) error{"RenameDirNoReplace": RenameDirNoReplace, "mkdir fallback": mkdirRename} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			final := filepath.Join(dir, "1")
			const n = 8
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, n)
			for i := range n {
				tmp := folder(t, dir, fmt.Sprintf(".tmp-%d", i), fmt.Sprint(i))
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[i] = fn(tmp, final)
				}()
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("writers %d and %d both won", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, fs.ErrExist):
					t.Errorf("writer %d: %v, want fs.ErrExist", i, err)
				default:
					if got := contents(t, filepath.Join(dir, fmt.Sprintf(".tmp-%d", i))); got != fmt.Sprint(i) {
						t.Errorf("loser %d's folder holds %q", i, got)
					}
				}
			}
			if winner < 0 {
				t.Fatalf("no writer won: %v", errs)
			}
			if got := contents(t, final); got != fmt.Sprint(winner) {
				t.Errorf("final holds %q, want writer %d's", got, winner)
			}
		})
	}
}

func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), ".lock")
	f, err := Lock(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock = %v, want ErrLocked", err)
	}
	f.Close()
	g, err := Lock(p)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	g.Close()
}
