package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestScanFoldersLayout(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string][]byte{
		"roses/b.jpg":          fakeJPEG("rb"),
		"roses/a.JPEG":         fakeJPEG("ra"),
		"roses/sub/c.png":      []byte("\x89PNG\r\n\x1a\nrest"),
		"roses/notes.txt":      []byte("ignored: wrong extension"),
		"roses/.hidden.jpg":    fakeJPEG("hidden"),
		"daisy/Z.gif":          []byte("GIF89a..."),
		"daisy/a.bmp":          []byte("BM......"),
		"daisy/png-as.jpg":     []byte("\x89PNG\r\n\x1a\nrest"), // extension lies; contents decide
		".git/x.jpg":           fakeJPEG("hidden class"),
		"README.md":            []byte("a file in root that is not an image is fine"),
		"tulips/deep/er/x.jpg": fakeJPEG("t"),
	})
	d, err := ScanFolders(root, ScanOptions{})
	if err != nil {
		t.Fatalf("ScanFolders: %v", err)
	}
	if want := []string{"daisy", "roses", "tulips"}; !slices.Equal(d.Classes, want) {
		t.Errorf("Classes = %v, want %v", d.Classes, want)
	}
	rel := func(p ...string) string { return filepath.Join(append([]string{root}, p...)...) }
	wantNames := []string{
		rel("daisy", "Z.gif"), rel("daisy", "a.bmp"), rel("daisy", "png-as.jpg"),
		rel("roses", "a.JPEG"), rel("roses", "b.jpg"), rel("roses", "sub", "c.png"),
		rel("tulips", "deep", "er", "x.jpg"),
	}
	if got := names(d.Samples); !slices.Equal(got, wantNames) {
		t.Errorf("sample names =\n%v\nwant\n%v", strings.Join(got, "\n"), strings.Join(wantNames, "\n"))
	}
	wantLabels := []int{0, 0, 0, 1, 1, 1, 2}
	for i, s := range d.Samples {
		if s.Label != wantLabels[i] {
			t.Errorf("sample %s label = %d, want %d", s.Name, s.Label, wantLabels[i])
		}
	}
	if got := d.CountPerClass(); !slices.Equal(got, []int{3, 3, 1}) {
		t.Errorf("CountPerClass = %v, want [3 3 1]", got)
	}
	if len(d.Skipped) != 0 {
		t.Errorf("Skipped = %v, want none", d.Skipped)
	}
	b, err := d.Samples[4].ReadBytes()
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(fakeJPEG("rb")) {
		t.Errorf("ReadBytes = %q, want the file contents", b)
	}
}

func TestScanFoldersErrors(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string][]byte
		root     string // relative to the temp dir; "" means the temp dir
		wantIs   error
		wantText []string
	}{
		{
			name: "missing root", root: "nope",
			wantIs: ErrNotDir, wantText: []string{"nope", "one sub-folder per class"},
		},
		{
			name: "root is a file", files: map[string][]byte{"f.jpg": fakeJPEG("x")}, root: "f.jpg",
			wantIs: ErrNotDir, wantText: []string{"not a directory", "one sub-folder per class"},
		},
		{
			name:   "images directly in root",
			files:  map[string][]byte{"a.jpg": fakeJPEG("a"), "b.jpg": fakeJPEG("b")},
			wantIs: ErrImagesInRoot, wantText: []string{"a.jpg", "one sub-folder per class", "class folder instead of its parent"},
		},
		{
			name:   "empty root",
			wantIs: ErrNoImages, wantText: []string{"no class sub-folders"},
		},
		{
			name:   "class folders without images",
			files:  map[string][]byte{"a/readme.txt": []byte("x"), "b/empty.jpg": {}},
			wantIs: ErrNoImages,
		},
		{
			name:   "one empty class",
			files:  map[string][]byte{"a/1.jpg": fakeJPEG("1"), "b/2.jpg": fakeJPEG("2"), "c/notes.txt": []byte("x")},
			wantIs: ErrEmptyClass, wantText: []string{string(filepath.Separator) + "c", "remove the folder or add images"},
		},
		{
			name:   "single class",
			files:  map[string][]byte{"only/1.jpg": fakeJPEG("1"), "only/2.jpg": fakeJPEG("2")},
			wantIs: ErrSingleClass, wantText: []string{"need at least 2 class folders", `"only"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			root := filepath.Join(dir, tc.root)
			d, err := ScanFolders(root, ScanOptions{})
			if err == nil {
				t.Fatalf("ScanFolders succeeded with %d samples, want error", len(d.Samples))
			}
			if !errors.Is(err, tc.wantIs) {
				t.Errorf("error %q does not wrap %q", err, tc.wantIs)
			}
			for _, s := range append(tc.wantText, root) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestScanFoldersSkipped(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(t *testing.T, class string) string // returns the path expected in Skipped
		wantReason string
	}{
		{
			name: "zero-byte file",
			setup: func(t *testing.T, class string) string {
				return mkfile(t, filepath.Join(class, "empty.jpg"), nil)
			},
			wantReason: "empty file (0 bytes)",
		},
		{
			name: "text file named jpg",
			setup: func(t *testing.T, class string) string {
				return mkfile(t, filepath.Join(class, "text.jpg"), []byte("this is a text file"))
			},
			wantReason: `not a JPEG, PNG, GIF or BMP image (starts with "this is ")`,
		},
		{
			name: "webp named png",
			setup: func(t *testing.T, class string) string {
				return mkfile(t, filepath.Join(class, "w.png"), []byte("RIFF\x10\x00\x00\x00WEBPVP8 "))
			},
			wantReason: "WebP image",
		},
		{
			name: "broken symlink",
			setup: func(t *testing.T, class string) string {
				p := filepath.Join(class, "gone.jpg")
				mklink(t, "does-not-exist.jpg", p)
				return p
			},
			wantReason: "broken symlink",
		},
		{
			name: "broken symlink without image extension",
			setup: func(t *testing.T, class string) string {
				p := filepath.Join(class, "gone-dir")
				mklink(t, "nowhere", p)
				return p
			},
			wantReason: "broken symlink",
		},
		{
			name: "self-referential symlink",
			setup: func(t *testing.T, class string) string {
				p := filepath.Join(class, "self.jpg")
				mklink(t, "self.jpg", p)
				return p
			},
			wantReason: "symlink loop",
		},
		{
			name: "directory symlink loop",
			setup: func(t *testing.T, class string) string {
				sub := filepath.Join(class, "sub")
				if err := os.Mkdir(sub, 0o755); err != nil {
					t.Fatal(err)
				}
				mkfile(t, filepath.Join(sub, "in-sub.jpg"), fakeJPEG("s"))
				p := filepath.Join(sub, "up")
				mklink(t, "..", p) // class/sub/up -> class
				return p
			},
			wantReason: "symlink loop",
		},
		{
			name: "unreadable file",
			setup: func(t *testing.T, class string) string {
				if os.Geteuid() == 0 {
					t.Skip("running as root: root can read a mode-0000 file, so permission denial cannot be provoked")
				}
				p := mkfile(t, filepath.Join(class, "secret.jpg"), fakeJPEG("s"))
				if err := os.Chmod(p, 0); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantReason: "permission denied",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, map[string][]byte{"a/ok.jpg": fakeJPEG("a"), "b/ok.jpg": fakeJPEG("b")})
			bad := tc.setup(t, filepath.Join(root, "b"))

			d := scanWithTimeout(t, root, ScanOptions{})
			if len(d.Skipped) != 1 {
				t.Fatalf("Skipped = %+v, want exactly %s", d.Skipped, bad)
			}
			if d.Skipped[0].Name != bad || !strings.Contains(d.Skipped[0].Reason, tc.wantReason) {
				t.Errorf("Skipped[0] = %+v, want name %s and reason containing %q", d.Skipped[0], bad, tc.wantReason)
			}
			for _, s := range d.Samples {
				if s.Name == bad {
					t.Errorf("skipped file %s is also a sample", bad)
				}
			}

			_, err := ScanFolders(root, ScanOptions{Strict: true})
			if !errors.Is(err, ErrUnreadable) {
				t.Fatalf("strict ScanFolders error = %v, want ErrUnreadable", err)
			}
			if !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), tc.wantReason) {
				t.Errorf("strict error %q does not name %s and %q", err, bad, tc.wantReason)
			}
		})
	}
}

// TestScanFoldersSymlinks checks the symlinks that are fine: a link to a
// file is followed, and a link from one class into another is reported
// instead of duplicating the other class's images.
func TestScanFoldersSymlinks(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string][]byte{
		"a/1.jpg":         fakeJPEG("1"),
		"b/2.jpg":         fakeJPEG("2"),
		"elsewhere/3.jpg": fakeJPEG("3"),
	})
	outside := t.TempDir()
	writeFiles(t, outside, map[string][]byte{"4.jpg": fakeJPEG("4"), "more/5.jpg": fakeJPEG("5")})
	mklink(t, filepath.Join(root, "b", "2.jpg"), filepath.Join(root, "a", "link-to-file.jpg"))
	mklink(t, filepath.Join(root, "b"), filepath.Join(root, "a", "link-to-b"))
	mklink(t, outside, filepath.Join(root, "c"))

	d := scanWithTimeout(t, root, ScanOptions{})
	if want := []string{"a", "b", "c", "elsewhere"}; !slices.Equal(d.Classes, want) {
		t.Fatalf("Classes = %v, want %v", d.Classes, want)
	}
	if got := d.CountPerClass(); !slices.Equal(got, []int{2, 1, 2, 1}) {
		t.Errorf("CountPerClass = %v, want [2 1 2 1] (names %v)", got, names(d.Samples))
	}
	if len(d.Skipped) != 1 || d.Skipped[0].Name != filepath.Join(root, "a", "link-to-b") ||
		!strings.Contains(d.Skipped[0].Reason, "already scanned") {
		t.Errorf("Skipped = %+v, want a/link-to-b as already scanned", d.Skipped)
	}
}

// TestScanFoldersFIFO makes sure a named pipe with an image name is
// skipped instead of blocking the scan forever on open.
func TestScanFoldersFIFO(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string][]byte{"a/1.jpg": fakeJPEG("1"), "b/2.jpg": fakeJPEG("2")})
	fifo := filepath.Join(root, "a", "pipe.jpg")
	if err := mkfifo(fifo); err != nil {
		t.Skipf("cannot create a FIFO here: %v", err)
	}
	d := scanWithTimeout(t, root, ScanOptions{})
	if len(d.Skipped) != 1 || d.Skipped[0].Name != fifo || !strings.Contains(d.Skipped[0].Reason, "not a regular file") {
		t.Errorf("Skipped = %+v, want the FIFO as not a regular file", d.Skipped)
	}
}

func TestScanFoldersRealData(t *testing.T) {
	const root = "../../shared/data/flower_photos"
	if _, err := os.Stat(root); err != nil {
		t.Skipf("real data not available: %v", err)
	}
	d, err := ScanFolders(root, ScanOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"daisy", "dandelion", "roses", "sunflowers", "tulips"}; !slices.Equal(d.Classes, want) {
		t.Errorf("Classes = %v, want %v", d.Classes, want)
	}
	if got, want := d.CountPerClass(), []int{506, 718, 512, 559, 639}; !slices.Equal(got, want) {
		t.Errorf("CountPerClass = %v, want %v", got, want)
	}
	if !slices.IsSortedFunc(d.Samples, func(a, b Sample) int {
		if a.Label != b.Label {
			return a.Label - b.Label
		}
		return strings.Compare(a.Name, b.Name)
	}) {
		t.Error("samples are not ordered by class, then name")
	}
}

// scanWithTimeout fails the test instead of hanging if the scan loops.
func scanWithTimeout(t *testing.T, root string, opts ScanOptions) *Dataset {
	t.Helper()
	type result struct {
		d   *Dataset
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := ScanFolders(root, opts)
		done <- result{d, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("ScanFolders: %v", r.err)
		}
		return r.d
	case <-time.After(10 * time.Second):
		t.Fatal("ScanFolders did not finish within 10s (symlink loop or blocking open?)")
		return nil
	}
}

func mkfile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mklink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("symlinks not supported here: %v", err)
	}
}
