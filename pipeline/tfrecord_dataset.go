package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// tfrecordExts are the extensions picked up when ReadTFRecords is given a
// folder. Files named explicitly are read whatever their extension.
var tfrecordExts = []string{".tfrec", ".tfrecord", ".tfrecords"}

// ReadTFRecords indexes TFRecord files in the Keras flowers codelab format
// (each record a tf.train.Example with an "image" bytes feature and a
// "class" int64 feature). paths are files, or folders whose .tfrec /
// .tfrecord files are read in name order. Only offsets are kept, never
// image bytes; Sample.ReadBytes re-reads a record on demand.
//
// classes names the labels (from a flag or ReadLabelsFile); every label
// must lie in [0, len(classes)). Broken records are recorded in Skipped
// (or, with opts.Strict, returned as an error wrapping ErrCorruptRecord,
// ErrLabelRange or, for an image over MaxDecodedPixels, ErrImageTooLarge).
func ReadTFRecords(paths []string, classes []string, opts ScanOptions) (*Dataset, error) {
	if err := validateClassNames(classes); err != nil {
		return nil, fmt.Errorf("read tfrecords: %w", err)
	}
	if len(classes) < 2 {
		return nil, fmt.Errorf("read tfrecords: %w, got %d class name(s); pass all class names in label order", ErrSingleClass, len(classes))
	}
	files, err := expandTFRecordPaths(paths)
	if err != nil {
		return nil, fmt.Errorf("read tfrecords: %w", err)
	}
	d := &Dataset{Classes: slices.Clone(classes)}
	for _, f := range files {
		if err := indexTFRecordFile(d, f, opts); err != nil {
			return nil, fmt.Errorf("read tfrecords: %w", err)
		}
	}
	if len(d.Samples) == 0 {
		return nil, fmt.Errorf("read tfrecords: %w: no valid records in %s (%d skipped)", ErrNoImages, strings.Join(files, ", "), len(d.Skipped))
	}
	// Stable: within a class, file order then record order is kept.
	slices.SortStableFunc(d.Samples, func(a, b Sample) int { return a.Label - b.Label })
	var empty []string
	for i, n := range d.CountPerClass() {
		if n == 0 {
			empty = append(empty, fmt.Sprintf("%q (label %d)", classes[i], i))
		}
	}
	if len(empty) > 0 {
		return nil, fmt.Errorf("read tfrecords: %w: no records for class %s; check that the class list matches the labels in the files",
			ErrEmptyClass, strings.Join(empty, ", "))
	}
	return d, nil
}

// expandTFRecordPaths turns the user's paths into a list of files.
func expandTFRecordPaths(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no TFRecord files or folders given", ErrNoImages)
	}
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err // *fs.PathError already names p
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p) // sorted by name
		if err != nil {
			return nil, err
		}
		n := len(files)
		for _, e := range entries {
			name := e.Name()
			if isHidden(name) || e.IsDir() || !slices.Contains(tfrecordExts, strings.ToLower(filepath.Ext(name))) {
				continue
			}
			files = append(files, filepath.Join(p, name))
		}
		if len(files) == n {
			return nil, fmt.Errorf("%s: %w: folder contains no %s files", p, ErrNoImages, strings.Join(tfrecordExts, "/"))
		}
	}
	return files, nil
}

// indexTFRecordFile appends the samples of one file to d.
func indexTFRecordFile(d *Dataset, path string, opts ScanOptions) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close() // read-only: a close error cannot lose data
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	sc := newRecordScanner(f, st.Size())
	for {
		rec, ok := sc.next()
		if !ok {
			break
		}
		name := fmt.Sprintf("%s#%d", path, rec.index)
		label, reason, sentinel := checkRecord(rec, len(d.Classes))
		if reason != "" {
			if opts.Strict {
				return fmt.Errorf("%s: %w: %s", name, sentinel, reason)
			}
			d.Skipped = append(d.Skipped, Skipped{Name: name, Reason: reason})
			continue
		}
		d.Samples = append(d.Samples, Sample{
			Name: name, Label: label,
			path: path, inRecord: true, recOffset: rec.offset, recLen: rec.length,
		})
	}
	if err := sc.IOErr(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := sc.Err(); err != nil {
		name, rest := path, st.Size()
		var fe *framingError
		if errors.As(err, &fe) {
			name = fmt.Sprintf("%s#%d", path, fe.index)
			rest -= fe.offset
		}
		reason := fmt.Sprintf("%v; the remaining %d bytes of the file were not read", err, rest)
		if opts.Strict {
			return fmt.Errorf("%s: %w: %s", name, ErrCorruptRecord, reason)
		}
		d.Skipped = append(d.Skipped, Skipped{Name: name, Reason: reason})
	}
	return nil
}

// checkRecord validates one framed record. It returns the label, or a
// skip reason and the sentinel strict mode should wrap.
func checkRecord(rec record, nClasses int) (label int, reason string, sentinel error) {
	if rec.err != nil {
		return 0, rec.err.Error(), ErrCorruptRecord
	}
	ex, err := parseExample(rec.data)
	switch {
	case err != nil:
		return 0, err.Error(), ErrCorruptRecord
	case ex.image == nil:
		return 0, fmt.Sprintf("tf.train.Example has no %q feature", featureImage), ErrCorruptRecord
	case !ex.hasLabel:
		return 0, fmt.Sprintf("tf.train.Example has no %q feature", featureClass), ErrCorruptRecord
	case ex.label < 0 || ex.label >= int64(nClasses):
		return 0, fmt.Sprintf("label %d is outside [0,%d): the class list has %d names", ex.label, nClasses, nClasses), ErrLabelRange
	}
	if r := undecodableReason(ex.image); r != "" {
		return 0, "image: " + r, ErrCorruptRecord
	}
	if h, err := InspectImage(ex.image); err == nil {
		if _, err := h.DecodeScale(); err != nil {
			return 0, "image: " + err.Error(), ErrImageTooLarge
		}
	}
	return int(ex.label), "", nil
}
