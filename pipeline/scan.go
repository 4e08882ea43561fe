package pipeline

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// ScanOptions controls how strictly files are judged.
type ScanOptions struct {
	// Strict turns every Skipped file into an error (wrapping
	// ErrUnreadable, ErrCorruptRecord or ErrLabelRange).
	Strict bool
}

// imageExts are the extensions ScanFolders looks at; anything else (a
// README, a .DS_Store, a labels.txt) is ignored without a warning.
var imageExts = []string{".jpg", ".jpeg", ".png", ".gif", ".bmp"}

// HasImageExt reports whether name has one of the image extensions ScanFolders reads
// (.jpg .jpeg .png .gif .bmp, any case).
func HasImageExt(name string) bool {
	return slices.Contains(imageExts, strings.ToLower(filepath.Ext(name)))
}

func isHidden(name string) bool { return strings.HasPrefix(name, ".") }

// ScanFolders reads a dataset laid out as root/<class>/<images>. Class
// folders are taken in name order and their names become Classes; hidden
// entries are ignored; files with an image extension (.jpg .jpeg .png .gif
// .bmp, any case) are sniffed, and sub-folders of a class folder are
// walked too. Symlinks are followed, with loops and directories reached
// twice detected and recorded in Skipped.
func ScanFolders(root string, opts ScanOptions) (*Dataset, error) {
	fi, err := os.Stat(root)
	if err != nil || !fi.IsDir() {
		why := "it is not a directory"
		if err != nil {
			why = err.Error()
		}
		return nil, fmt.Errorf("scan %s: %w (%s): expected a folder with one sub-folder per class, e.g. %s",
			root, ErrNotDir, why, layoutExample(root))
	}
	sc := &scanner{visited: map[dirID]bool{}, active: map[dirID]bool{}}
	if id, ok := dirIDOf(root, fi); ok {
		sc.visited[id] = true
	}
	classes, err := sc.classDirs(root)
	if err != nil {
		return nil, err
	}
	d := &Dataset{}
	perClass := make([]int, len(classes))
	for label, c := range classes {
		d.Classes = append(d.Classes, c.name)
		before := len(sc.samples)
		if c.hasID {
			sc.active[c.id] = true
		}
		sc.walk(c.path, label)
		if c.hasID {
			delete(sc.active, c.id)
		}
		sc.checkPending()
		// Byte order of the full path within a class, independent of how
		// the walk reached each file.
		slices.SortFunc(sc.samples[before:], func(a, b Sample) int { return strings.Compare(a.Name, b.Name) })
		perClass[label] = len(sc.samples) - before
	}
	d.Samples = sc.samples
	d.Skipped = sc.skipped
	if err := checkScan(root, d, classes, perClass, opts.Strict); err != nil {
		return nil, err
	}
	return d, nil
}

// classDir is one class sub-folder of the scanned root.
type classDir struct {
	name, path string
	id         dirID
	hasID      bool
}

// classDirs finds the class folders of root, refusing images directly in it. Class
// folders are all registered as visited before any is walked, so a symlink from one
// class into another is reported as a duplicate instead of stealing the other class's
// images.
func (sc *scanner) classDirs(root string) ([]classDir, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", root, err)
	}
	var classes []classDir
	var strayImages []string
	for _, e := range entries { // os.ReadDir sorts by name
		name := e.Name()
		if isHidden(name) {
			continue
		}
		path := filepath.Join(root, name)
		st, err := os.Stat(path)
		if err != nil {
			sc.skip(path, statFailure(path, err))
			continue
		}
		if !st.IsDir() {
			if HasImageExt(name) {
				strayImages = append(strayImages, path)
			}
			continue
		}
		id, ok := dirIDOf(path, st)
		if ok && sc.visited[id] {
			sc.skip(path, "directory already scanned under another name (symlink)")
			continue
		}
		if ok {
			sc.visited[id] = true
		}
		classes = append(classes, classDir{name: name, path: path, id: id, hasID: ok})
	}
	if len(strayImages) > 0 {
		return nil, fmt.Errorf("scan %s: %w: found %d image file(s) directly in the folder (e.g. %s); expected one sub-folder per class, e.g. %s (did you pass a class folder instead of its parent?)",
			root, ErrImagesInRoot, len(strayImages), strayImages[0], layoutExample(root))
	}
	return classes, nil
}

// checkScan refuses a scan training cannot use: skipped files under --strict, no images,
// an empty class folder, a single class.
func checkScan(root string, d *Dataset, classes []classDir, perClass []int, strict bool) error {
	if strict && len(d.Skipped) > 0 {
		s := d.Skipped[0]
		more := ""
		if n := len(d.Skipped) - 1; n > 0 {
			more = fmt.Sprintf(" (and %d more)", n)
		}
		return fmt.Errorf("scan %s: %w: %s: %s%s", root, ErrUnreadable, s.Name, s.Reason, more)
	}
	if len(d.Samples) == 0 {
		if len(classes) == 0 {
			return fmt.Errorf("scan %s: %w: no class sub-folders found; expected %s", root, ErrNoImages, layoutExample(root))
		}
		return fmt.Errorf("scan %s: %w: none of the %d class folders contains a readable .jpg/.jpeg/.png/.gif/.bmp image (%d files skipped)",
			root, ErrNoImages, len(classes), len(d.Skipped))
	}
	var empty []string
	for i, n := range perClass {
		if n == 0 {
			empty = append(empty, classes[i].path)
		}
	}
	if len(empty) > 0 {
		return fmt.Errorf("scan %s: %w: class folder(s) %s: remove the folder or add images to it",
			root, ErrEmptyClass, strings.Join(empty, ", "))
	}
	if len(classes) < 2 {
		return fmt.Errorf("scan %s: %w, found only %q; add a sub-folder of images for each other class",
			root, ErrSingleClass, classes[0].name)
	}
	return nil
}

// layoutExample shows the expected layout under root.
func layoutExample(root string) string {
	return filepath.Join(root, "daisy", "1.jpg") + ", " + filepath.Join(root, "roses", "2.jpg")
}

// scanner holds the state of one ScanFolders call.
type scanner struct {
	visited map[dirID]bool // every directory walked so far
	active  map[dirID]bool // directories on the current walk path
	samples []Sample
	skipped []Skipped
	pending []pendingFile // found by walk, checked by checkPending
}

// pendingFile is an image file the walk found, whose header checkImageFile has still to read.
type pendingFile struct {
	path  string
	st    fs.FileInfo
	label int
}

// scanReaders is how many files checkPending reads at once: the reads wait on the disk
// (a cold 30k-image folder, or a network volume), not on the CPU.
const scanReaders = 16

// checkPending reads the headers of the files the walk queued, several at once, and adds
// them to samples or skipped in the walk's order.
func (sc *scanner) checkPending() {
	reasons := make([]string, len(sc.pending))
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for w := 0; w < min(scanReaders, len(sc.pending)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(sc.pending); i = int(next.Add(1) - 1) {
				reasons[i] = checkImageFile(sc.pending[i].path, sc.pending[i].st)
			}
		}()
	}
	wg.Wait()
	for i, f := range sc.pending {
		if reasons[i] != "" {
			sc.skip(f.path, reasons[i])
			continue
		}
		sc.samples = append(sc.samples, Sample{Name: f.path, Label: f.label, path: f.path})
	}
	sc.pending = sc.pending[:0]
}

func (sc *scanner) skip(name, reason string) {
	sc.skipped = append(sc.skipped, Skipped{Name: name, Reason: reason})
}

// walk adds the images under dir (already marked visited) to sc.samples.
func (sc *scanner) walk(dir string, label int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		sc.skip(dir, "cannot list folder: "+describeErr(err))
		// os.ReadDir returns what it read before the error; keep going
		// with that.
	}
	for _, e := range entries {
		name := e.Name()
		if isHidden(name) {
			continue
		}
		path := filepath.Join(dir, name)
		isLink := e.Type()&fs.ModeSymlink != 0
		if !isLink && !e.IsDir() && !HasImageExt(name) {
			continue // cheap path: no stat for files we would ignore anyway
		}
		st, err := os.Stat(path)
		if err != nil {
			if HasImageExt(name) || isLink {
				sc.skip(path, statFailure(path, err))
			}
			continue
		}
		if st.IsDir() {
			sc.walkSubdir(path, st, label)
			continue
		}
		if !HasImageExt(name) {
			continue
		}
		sc.pending = append(sc.pending, pendingFile{path: path, st: st, label: label})
	}
}

func (sc *scanner) walkSubdir(path string, st fs.FileInfo, label int) {
	id, ok := dirIDOf(path, st)
	if !ok {
		// Without an identity there is no loop protection; refuse rather
		// than risk walking forever.
		sc.skip(path, "cannot identify folder to guard against symlink loops; not scanned")
		return
	}
	switch {
	case sc.active[id]:
		sc.skip(path, "symlink loop: leads back to a folder that contains it")
		return
	case sc.visited[id]:
		sc.skip(path, "directory already scanned under another name (symlink)")
		return
	}
	sc.visited[id] = true
	sc.active[id] = true
	sc.walk(path, label)
	delete(sc.active, id)
}

// checkImageFile returns why the file at path cannot be used, or "".
func checkImageFile(path string, st fs.FileInfo) string {
	if !st.Mode().IsRegular() {
		// Opening a FIFO or device would block or read forever.
		return "not a regular file (" + st.Mode().Type().String() + ")"
	}
	if st.Size() == 0 {
		return "empty file (0 bytes)"
	}
	f, err := os.Open(path)
	if err != nil {
		return "cannot read: " + describeErr(err)
	}
	defer f.Close() // read-only: a close error cannot lose data
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && err != io.EOF {
		return "cannot read: " + describeErr(err)
	}
	if r := undecodableReason(head[:n]); r != "" {
		return r
	}
	// Refuse images whose decoded size would be unbounded before any
	// decoder allocates for them. A header this parser cannot read is left
	// to the decoder to judge.
	if h, err := inspectImage(f, st.Size()); err == nil {
		if _, err := h.DecodeScale(); err != nil {
			return err.Error()
		}
	}
	return ""
}

// statFailure explains why os.Stat failed, telling symlink problems apart
// because "no such file" is baffling for a file the user can see in ls.
func statFailure(path string, err error) string {
	if errors.Is(err, syscall.ELOOP) {
		return "symlink loop: the link points (eventually) to itself"
	}
	if lfi, lerr := os.Lstat(path); lerr == nil && lfi.Mode()&fs.ModeSymlink != 0 {
		if errors.Is(err, fs.ErrNotExist) {
			target, _ := os.Readlink(path)
			return "broken symlink: target " + target + " does not exist"
		}
		return "cannot follow symlink: " + describeErr(err)
	}
	return "cannot stat: " + describeErr(err)
}

// describeErr strips the path from an *fs.PathError, since the skip entry
// already names the file.
func describeErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
