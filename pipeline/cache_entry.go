package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// Feature cache entry layout (all little endian):
//
//	"TFFC" magic, uint32 version
//	uint32 ndims, uint32 dims[ndims]
//	float32 data[product(dims)]
//	uint32 crc32c (Castagnoli) of every byte before it
const (
	entryMagic   = "TFFC"
	entryVersion = 1
)

// entrySize returns the encoded size of an entry with this shape.
func entrySize(shape []int, n int) int {
	return 8 + 4 + 4*len(shape) + 4*n + 4
}

// encodeEntry serializes features. The caller has checked that
// len(features) equals the product of shape.
func encodeEntry(shape []int, features []float32) []byte {
	b := make([]byte, entrySize(shape, len(features)))
	copy(b, entryMagic)
	le := binary.LittleEndian
	le.PutUint32(b[4:], entryVersion)
	le.PutUint32(b[8:], uint32(len(shape)))
	off := 12
	for _, d := range shape {
		le.PutUint32(b[off:], uint32(d))
		off += 4
	}
	// One pass with no per-float allocation; ~46k floats per entry.
	for _, f := range features {
		le.PutUint32(b[off:], math.Float32bits(f))
		off += 4
	}
	le.PutUint32(b[off:], crc32.Checksum(b[:off], castagnoli))
	return b
}

// errCorruptEntry marks an entry that must be treated as a miss.
var errCorruptEntry = errors.New("corrupt cache entry")

// decodeEntry parses an entry and checks it against the expected shape.
func decodeEntry(b []byte, shape []int) ([]float32, error) {
	n := 1
	for _, d := range shape {
		n *= d
	}
	out := make([]float32, n)
	if err := decodeEntryInto(b, shape, out); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeEntryInto is decodeEntry into out, which holds the shape's product of floats.
func decodeEntryInto(b []byte, shape []int, out []float32) error {
	le := binary.LittleEndian
	if len(b) < 16 || string(b[:4]) != entryMagic {
		return fmt.Errorf("%w: bad magic or too short (%d bytes)", errCorruptEntry, len(b))
	}
	if v := le.Uint32(b[4:]); v != entryVersion {
		return fmt.Errorf("%w: version %d, want %d", errCorruptEntry, v, entryVersion)
	}
	if nd := le.Uint32(b[8:]); nd != uint32(len(shape)) {
		return fmt.Errorf("%w: %d dimensions, want %d", errCorruptEntry, nd, len(shape))
	}
	n := len(out)
	if len(b) != entrySize(shape, n) {
		return fmt.Errorf("%w: %d bytes, want %d (truncated?)", errCorruptEntry, len(b), entrySize(shape, n))
	}
	off := 12
	for i, d := range shape {
		if got := le.Uint32(b[off:]); got != uint32(d) {
			return fmt.Errorf("%w: dimension %d is %d, want %d", errCorruptEntry, i, got, d)
		}
		off += 4
	}
	end := len(b) - 4
	// The CRC is checked before converting so a corrupt entry leaves out alone.
	if got, want := le.Uint32(b[end:]), crc32.Checksum(b[:end], castagnoli); got != want {
		return fmt.Errorf("%w: checksum mismatch", errCorruptEntry)
	}
	for i := range out {
		out[i] = math.Float32frombits(le.Uint32(b[off:]))
		off += 4
	}
	return nil
}
