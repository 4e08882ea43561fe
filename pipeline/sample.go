package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Sample is one labelled image. Its bytes are read lazily by ReadBytes, so
// a Dataset stays small however many images it describes.
type Sample struct {
	// Name is what users see in messages: the file path, or
	// "path/to/file.tfrec#<record index>" for a TFRecord sample.
	Name string
	// Label is an index into Dataset.Classes.
	Label int

	// path is the image file, or the TFRecord file holding the image.
	path string
	// inRecord is true for TFRecord samples; then recOffset is where the
	// record's 12-byte header starts and recLen is the payload length.
	inRecord  bool
	recOffset int64
	recLen    uint64
}

// File is the sample's image file, or "" for an image inside a TFRecord file.
func (s Sample) File() string {
	if s.inRecord {
		return ""
	}
	return s.path
}

// Skipped is a file (or TFRecord record) that was found but not usable.
type Skipped struct {
	Name   string
	Reason string
}

// ReadBytes returns the encoded image. For a TFRecord sample it re-reads
// the record at its recorded offset and re-checks both CRCs, because the
// file may have changed since it was indexed.
func (s Sample) ReadBytes() ([]byte, error) {
	if s.path == "" {
		return nil, errors.New("read sample: sample has no source (not produced by ScanFolders or ReadTFRecords)")
	}
	if !s.inRecord {
		b, err := os.ReadFile(s.path)
		if err != nil {
			return nil, fmt.Errorf("read image %s: %w", s.Name, err)
		}
		return b, nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", s.Name, err)
	}
	defer f.Close() // read-only: a close error cannot lose data

	data, err := readRecordAt(f, s.recOffset, s.recLen)
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", s.Name, err)
	}
	ex, err := parseExample(data)
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w: %w", s.Name, ErrCorruptRecord, err)
	}
	if ex.image == nil {
		return nil, fmt.Errorf("read image %s: %w: no %q feature", s.Name, ErrCorruptRecord, featureImage)
	}
	return ex.image, nil
}

// readRecordAt reads and verifies the record whose header starts at off and
// whose payload must be wantLen bytes long.
func readRecordAt(r io.ReaderAt, off int64, wantLen uint64) ([]byte, error) {
	var hdr [recordHeaderLen]byte
	if _, err := r.ReadAt(hdr[:], off); err != nil {
		return nil, fmt.Errorf("%w: record header at offset %d: %w", ErrCorruptRecord, off, err)
	}
	n, err := decodeRecordHeader(hdr[:])
	if err != nil {
		return nil, fmt.Errorf("%w at offset %d: %w", ErrCorruptRecord, off, err)
	}
	if n != wantLen {
		return nil, fmt.Errorf("%w at offset %d: length is now %d, was %d when indexed (file changed?)", ErrCorruptRecord, off, n, wantLen)
	}
	buf := make([]byte, n+recordFooterLen)
	if _, err := r.ReadAt(buf, off+recordHeaderLen); err != nil {
		return nil, fmt.Errorf("%w: record at offset %d: %w", ErrCorruptRecord, off, err)
	}
	data := buf[:n]
	if err := checkRecordData(data, buf[n:]); err != nil {
		return nil, fmt.Errorf("%w at offset %d: %w", ErrCorruptRecord, off, err)
	}
	return data, nil
}
