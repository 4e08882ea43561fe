package atomicfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte // nil: destination does not exist yet
		data     []byte
		perm     os.FileMode
	}{
		{name: "new file", data: []byte("hello"), perm: 0o644},
		{name: "replace existing", existing: []byte("old contents that are longer"), data: []byte("new"), perm: 0o600},
		{name: "empty data", existing: []byte("x"), data: []byte{}, perm: 0o640},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.txt")
			if tc.existing != nil {
				if err := os.WriteFile(path, tc.existing, 0o666); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(path, tc.data, tc.perm); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Errorf("contents = %q, want %q", got, tc.data)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != tc.perm {
				t.Errorf("perm = %v, want %v", st.Mode().Perm(), tc.perm)
			}
			assertNoTemps(t, dir)
		})
	}
}

func TestWriteFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		path   string
		wantIs error
	}{
		{name: "missing directory", path: filepath.Join(dir, "nope", "f"), wantIs: fs.ErrNotExist},
		{name: "directory path", path: dir + string(filepath.Separator)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteFile(tc.path, []byte("x"), 0o644)
			if err == nil {
				t.Fatal("WriteFile succeeded, want error")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error %q does not name the path", err)
			}
		})
	}
}

// TestWriteFileRenameFailure makes the final rename fail (the destination
// is a non-empty directory) and checks that the temp file is cleaned up.
func TestWriteFileRenameFailure(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "dst")
	if err := os.MkdirAll(filepath.Join(dst, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dst, []byte("x"), 0o644); err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded, want error")
	}
	assertNoTemps(t, dir)
}

func TestWriteFileConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	const writers = 16
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Every writer writes a full, self-consistent payload; a
			// torn write would mix letters.
			errs <- WriteFile(path, bytes.Repeat([]byte{byte('a' + i)}, 1<<16), 0o644)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1<<16 || !bytes.Equal(got, bytes.Repeat(got[:1], len(got))) {
		t.Fatalf("file is torn or wrong length (%d bytes)", len(got))
	}
	assertNoTemps(t, dir)
}

func TestSyncDir(t *testing.T) {
	tests := []struct {
		name    string
		dir     string
		wantErr bool
	}{
		{name: "existing", dir: t.TempDir()},
		{name: "missing", dir: filepath.Join(t.TempDir(), "missing"), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := SyncDir(tc.dir)
			if (err != nil) != tc.wantErr {
				t.Fatalf("SyncDir(%s) = %v, wantErr %v", tc.dir, err, tc.wantErr)
			}
		})
	}
}

func TestSyncTree(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"top", "a/one", "a/b/two"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := SyncTree(root); err != nil {
		t.Fatalf("SyncTree: %v", err)
	}
	if err := SyncTree(filepath.Join(root, "missing")); err == nil {
		t.Fatal("SyncTree of a missing folder succeeded")
	}
	if os.Geteuid() != 0 { // root reads anything
		if err := os.Chmod(filepath.Join(root, "a", "one"), 0); err != nil {
			t.Fatal(err)
		}
		if err := SyncTree(root); err == nil {
			t.Fatal("SyncTree with an unreadable file succeeded")
		}
	}
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
