package pipeline

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// TFRecord framing, as written by tf.io.TFRecordWriter:
//
//	uint64 length (little endian)
//	uint32 masked crc32c of the 8 length bytes
//	byte   data[length]
//	uint32 masked crc32c of data
const (
	recordHeaderLen = 12
	recordFooterLen = 4
	crcMaskDelta    = 0xa282ead8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TensorFlow's masked crc32c. The masking exists because
// computing the CRC of data that itself contains CRCs is weak.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return ((c >> 15) | (c << 17)) + crcMaskDelta
}

// WriteRecord writes data as one TFRecord frame.
func WriteRecord(w io.Writer, data []byte) error {
	var hdr [recordHeaderLen]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(hdr[8:], maskedCRC(hdr[:8]))
	var ftr [recordFooterLen]byte
	binary.LittleEndian.PutUint32(ftr[:], maskedCRC(data))
	for _, b := range [][]byte{hdr[:], data, ftr[:]} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("write tfrecord: %w", err)
		}
	}
	return nil
}

// decodeRecordHeader checks a 12-byte header and returns the payload length.
func decodeRecordHeader(hdr []byte) (uint64, error) {
	if got, want := binary.LittleEndian.Uint32(hdr[8:12]), maskedCRC(hdr[:8]); got != want {
		return 0, fmt.Errorf("length checksum mismatch (stored %#08x, computed %#08x)", got, want)
	}
	return binary.LittleEndian.Uint64(hdr[:8]), nil
}

// checkRecordData checks a payload against its 4-byte footer.
func checkRecordData(data, ftr []byte) error {
	if got, want := binary.LittleEndian.Uint32(ftr), maskedCRC(data); got != want {
		return fmt.Errorf("data checksum mismatch (stored %#08x, computed %#08x)", got, want)
	}
	return nil
}

// record is one frame found by recordScanner.
type record struct {
	index  int    // 0-based position in the file
	offset int64  // where the header starts
	length uint64 // payload length
	data   []byte // payload; only valid until the next call to next
	// err is set when the frame is intact but its payload checksum is
	// wrong: this record is bad, yet the following ones can still be read.
	err error
}

// recordScanner walks the frames of one TFRecord stream without ever
// allocating more than the largest payload that can actually be present.
type recordScanner struct {
	r     *bufio.Reader
	size  int64 // total stream size, to reject impossible lengths up front
	off   int64
	index int
	buf   []byte
	err   error // framing error that stops the scan; nil at clean EOF
	ioErr error // read error from the underlying reader
}

func newRecordScanner(r io.Reader, size int64) *recordScanner {
	return &recordScanner{r: bufio.NewReaderSize(r, 1<<16), size: size}
}

// errTruncated marks a stream that ends inside a record.
var errTruncated = errors.New("file ends inside a record (truncated)")

// next returns the next frame. It returns false at the end of the stream
// or at a framing error (see Err), after which it must not be called again.
// A framing error stops the scan because once a length is untrustworthy
// there is no way to find where the next record starts.
func (s *recordScanner) next() (record, bool) {
	if s.err != nil || s.ioErr != nil {
		return record{}, false
	}
	var hdr [recordHeaderLen]byte
	n, err := io.ReadFull(s.r, hdr[:])
	switch {
	case err == io.EOF:
		return record{}, false
	case errors.Is(err, io.ErrUnexpectedEOF):
		s.fail(fmt.Errorf("%w: only %d of %d header bytes", errTruncated, n, recordHeaderLen))
		return record{}, false
	case err != nil:
		s.ioErr = err
		return record{}, false
	}
	length, err := decodeRecordHeader(hdr[:])
	if err != nil {
		s.fail(err)
		return record{}, false
	}
	// Comparing against what is left of the stream (rather than trusting
	// length) keeps a garbage length from triggering a huge allocation.
	remaining := s.size - s.off - recordHeaderLen - recordFooterLen
	if remaining < 0 || length > uint64(remaining) || length > math.MaxInt-recordFooterLen {
		s.fail(fmt.Errorf("%w: header says %d data bytes, only %d bytes left", errTruncated, length, max(remaining, 0)))
		return record{}, false
	}
	need := int(length) + recordFooterLen
	if cap(s.buf) < need {
		s.buf = make([]byte, need)
	}
	buf := s.buf[:need]
	if _, err := io.ReadFull(s.r, buf); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			s.fail(errTruncated)
		} else {
			s.ioErr = err
		}
		return record{}, false
	}
	rec := record{index: s.index, offset: s.off, length: length, data: buf[:length]}
	rec.err = checkRecordData(rec.data, buf[length:])
	s.off += recordHeaderLen + int64(need)
	s.index++
	return rec, true
}

// fail records a framing error at the current position.
func (s *recordScanner) fail(err error) {
	s.err = &framingError{index: s.index, offset: s.off, err: err}
}

// Err returns the framing error that stopped the scan (the data is
// corrupt or truncated), or nil.
func (s *recordScanner) Err() error { return s.err }

// IOErr returns the read error that stopped the scan (the data may be fine
// but could not be read), or nil.
func (s *recordScanner) IOErr() error { return s.ioErr }

// framingError says where in the stream framing broke down.
type framingError struct {
	index  int
	offset int64
	err    error
}

func (e *framingError) Error() string {
	return fmt.Sprintf("record %d at offset %d: %v", e.index, e.offset, e.err)
}

func (e *framingError) Unwrap() error { return e.err }
