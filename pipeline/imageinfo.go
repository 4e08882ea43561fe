package pipeline

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/tfflowers/tfflowers/internal/contract"
)

// MaxDecodedPixels bounds the pixels (width x height) that decoding one image may
// produce: 4096 x 4096, 48 MiB of RGB bytes. JPEGs above it are decoded at 1/2, 1/4
// or 1/8 scale (libjpeg's DCT scaling, which is also a better downsampler than
// decoding in full and resizing bilinearly to the model's size); PNG, GIF and BMP
// images above it, and JPEGs too large even at 1/8, are refused with a reason
// naming their size. Typical camera photos (up to ~64 megapixels) are accepted.
const MaxDecodedPixels = contract.MaxDecodedPixels

// ImageHeader is what an encoded image's header says, read without decoding
// pixels: its format and size, and for JPEG (and PNG with an eXIf chunk) the
// EXIF orientation.
type ImageHeader struct {
	Format        Format
	Width, Height int
	// Orientation is the EXIF Orientation tag, 1..8 (1: stored upright; 6:
	// the camera was turned and the image must be rotated 90° clockwise to
	// display it upright). Missing, unreadable or out-of-range tags give 1.
	Orientation int
}

// InspectImage reads the header of an encoded image.
func InspectImage(data []byte) (ImageHeader, error) {
	return inspectImage(bytes.NewReader(data), int64(len(data)))
}

// inspectImage reads a header from r (size bytes long), touching only the
// bytes it needs: a JPEG's segment headers up to its first scan, a PNG's
// chunk headers up to its first image data.
func inspectImage(ra io.ReaderAt, size int64) (ImageHeader, error) {
	r := &bufferedAt{r: ra, off: -1}
	var head [30]byte
	n, _ := r.ReadAt(head[:], 0)
	h := ImageHeader{Format: SniffFormat(head[:n]), Orientation: 1}
	b := head[:n]
	var err error
	switch h.Format {
	case FormatJPEG:
		err = inspectJPEG(r, size, &h)
	case FormatPNG:
		if n < 24 || string(b[12:16]) != "IHDR" {
			return h, fmt.Errorf("%w: PNG without an IHDR chunk", ErrImageHeader)
		}
		h.Width, h.Height = int(binary.BigEndian.Uint32(b[16:20])), int(binary.BigEndian.Uint32(b[20:24]))
		h.Orientation = pngOrientation(r, size)
	case FormatGIF:
		if n < 10 {
			return h, fmt.Errorf("%w: GIF header truncated", ErrImageHeader)
		}
		h.Width, h.Height = int(binary.LittleEndian.Uint16(b[6:8])), int(binary.LittleEndian.Uint16(b[8:10]))
	case FormatBMP:
		if n < 26 {
			return h, fmt.Errorf("%w: BMP header truncated", ErrImageHeader)
		}
		if binary.LittleEndian.Uint32(b[14:18]) == 12 { // BITMAPCOREHEADER: 16-bit sizes
			h.Width, h.Height = int(binary.LittleEndian.Uint16(b[18:20])), int(binary.LittleEndian.Uint16(b[20:22]))
		} else {
			w, ht := int64(int32(binary.LittleEndian.Uint32(b[18:22]))), int64(int32(binary.LittleEndian.Uint32(b[22:26])))
			h.Width, h.Height = int(abs64(w)), int(abs64(ht)) // negative height: top-down rows
		}
	default:
		return h, fmt.Errorf("%w: %s image", ErrImageHeader, h.Format)
	}
	if err != nil {
		return h, err
	}
	if h.Width <= 0 || h.Height <= 0 {
		return h, fmt.Errorf("%w: %s header gives size %dx%d", ErrImageHeader, h.Format, h.Width, h.Height)
	}
	return h, nil
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// DecodeScale returns the JPEG scale denominator (1, 2, 4 or 8) that keeps the
// decoded image within MaxDecodedPixels, or an error wrapping ErrImageTooLarge
// that says what to do.
func (h ImageHeader) DecodeScale() (int, error) {
	px := int64(h.Width) * int64(h.Height)
	if px <= MaxDecodedPixels {
		return 1, nil
	}
	if h.Format == FormatJPEG {
		for _, r := range []int64{2, 4, 8} {
			w, ht := (int64(h.Width)+r-1)/r, (int64(h.Height)+r-1)/r
			if w*ht <= MaxDecodedPixels {
				return int(r), nil
			}
		}
		return 0, fmt.Errorf("%w: JPEG %dx%d (%.0f megapixels) exceeds %d megapixels even decoded at 1/8 scale; downscale it",
			ErrImageTooLarge, h.Width, h.Height, float64(px)/1e6, MaxDecodedPixels>>20)
	}
	return 0, fmt.Errorf("%w: %s %dx%d (%.0f megapixels) exceeds the %d-megapixel limit for %s images; downscale it or convert it to JPEG (large JPEGs are decoded at reduced scale)",
		ErrImageTooLarge, h.Format, h.Width, h.Height, float64(px)/1e6, MaxDecodedPixels>>20, h.Format)
}

// inspectJPEG walks the marker segments up to the first scan, reading the
// frame size (SOFn) and the EXIF orientation (APP1 "Exif"). Like libjpeg, it
// skips fill bytes and garbage between segments.
func inspectJPEG(r io.ReaderAt, size int64, h *ImageHeader) error {
	off := int64(2) // after SOI
	seenExif := false
	for off < size {
		// Find the next marker: 0xFF followed by a non-0xFF, non-zero byte.
		var m [2]byte
		if _, err := r.ReadAt(m[:1], off); err != nil {
			break
		}
		if m[0] != 0xFF {
			off++
			continue
		}
		if _, err := r.ReadAt(m[1:], off+1); err != nil {
			break
		}
		if m[1] == 0xFF || m[1] == 0x00 {
			off++
			continue
		}
		marker := m[1]
		off += 2
		switch {
		case marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01:
			continue // no length
		case marker == 0xD9: // EOI before any frame
			return fmt.Errorf("%w: JPEG ends before its frame header", ErrImageHeader)
		}
		var lb [2]byte
		if _, err := r.ReadAt(lb[:], off); err != nil {
			break
		}
		segLen := int64(binary.BigEndian.Uint16(lb[:]))
		if segLen < 2 {
			return fmt.Errorf("%w: JPEG segment %#02x has length %d", ErrImageHeader, marker, segLen)
		}
		body := off + 2
		switch {
		case isSOF(marker):
			var f [5]byte
			if _, err := r.ReadAt(f[:], body); err != nil {
				return fmt.Errorf("%w: JPEG frame header truncated", ErrImageHeader)
			}
			h.Height, h.Width = int(binary.BigEndian.Uint16(f[1:3])), int(binary.BigEndian.Uint16(f[3:5]))
			if h.Height == 0 {
				return fmt.Errorf("%w: JPEG frame height 0 (DNL marker) is not supported", ErrImageHeader)
			}
		case marker == 0xE1 && !seenExif && segLen >= 2+6+8:
			seg := make([]byte, segLen-2)
			if n, _ := r.ReadAt(seg, body); int64(n) == segLen-2 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
				seenExif = true
				h.Orientation = exifOrientation(seg[6:])
			}
		case marker == 0xDA: // start of scan: headers are over
			if h.Width == 0 {
				return fmt.Errorf("%w: JPEG scan before a frame header", ErrImageHeader)
			}
			return nil
		}
		off = body + segLen - 2
	}
	if h.Width == 0 {
		return fmt.Errorf("%w: JPEG truncated before its frame header", ErrImageHeader)
	}
	return nil // frame seen, data truncated: the decoder will say so
}

// isSOF reports whether marker starts a frame (SOF0..SOF15 except DHT, JPG and DAC).
func isSOF(marker byte) bool {
	return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
}

// exifOrientation reads tag 0x0112 from IFD0 of a TIFF-structured EXIF block;
// anything malformed gives 1 (as stored).
func exifOrientation(tiff []byte) int {
	if len(tiff) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(tiff[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	ifd := int64(bo.Uint32(tiff[4:8]))
	if ifd < 8 || ifd+2 > int64(len(tiff)) {
		return 1
	}
	n := int64(bo.Uint16(tiff[ifd:]))
	for i := int64(0); i < n; i++ {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(tiff)) {
			return 1
		}
		if bo.Uint16(tiff[e:]) != 0x0112 {
			continue
		}
		typ, count := bo.Uint16(tiff[e+2:]), bo.Uint32(tiff[e+4:])
		var v int
		switch {
		case typ == 3 && count >= 1: // SHORT, stored in the value field
			v = int(bo.Uint16(tiff[e+8:]))
		case typ == 4 && count >= 1: // LONG, seen in the wild
			v = int(bo.Uint32(tiff[e+8:]))
		default:
			return 1
		}
		if v < 1 || v > 8 {
			return 1
		}
		return v
	}
	return 1
}

// pngOrientation looks for an eXIf chunk before the image data.
func pngOrientation(r io.ReaderAt, size int64) int {
	off := int64(8)
	for chunks := 0; off+8 <= size && chunks < 1000; chunks++ {
		var hdr [8]byte
		if _, err := r.ReadAt(hdr[:], off); err != nil {
			return 1
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		switch string(hdr[4:8]) {
		case "IDAT", "IEND":
			return 1
		case "eXIf":
			if n > 1<<20 || off+8+n > size {
				return 1
			}
			buf := make([]byte, n)
			if _, err := r.ReadAt(buf, off+8); err != nil {
				return 1
			}
			return exifOrientation(buf)
		}
		off += 12 + n
	}
	return 1
}

// bufferedAt serves small reads from a 4 KiB window, so that walking the
// segments of a file (or skipping garbage between them byte by byte) costs
// one system call per window rather than one per read.
type bufferedAt struct {
	r   io.ReaderAt
	off int64 // file offset of buf[0]; -1: empty
	buf []byte
	err error // error of the read that filled buf (io.EOF near the end)
}

func (b *bufferedAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, io.EOF
	}
	if len(p) > 4096 {
		return b.r.ReadAt(p, off)
	}
	if b.off < 0 || off < b.off || off+int64(len(p)) > b.off+int64(len(b.buf)) {
		if cap(b.buf) < 4096 {
			b.buf = make([]byte, 4096)
		}
		n, err := b.r.ReadAt(b.buf[:4096], off)
		b.buf, b.off, b.err = b.buf[:n], off, err
	}
	n := copy(p, b.buf[off-b.off:])
	if n < len(p) {
		if b.err == nil {
			b.err = io.ErrUnexpectedEOF
		}
		return n, b.err
	}
	return n, nil
}

// DecodeHints is the decoder's view of InspectImage (a tfops.Inspector): the EXIF
// orientation and the JPEG decode scale, or an error wrapping ErrImageTooLarge for an
// image too large to decode at any scale. A header it cannot parse is left to the decoder
// (orientation 1, full scale), which then judges the file itself. WebP is refused here:
// TensorFlow 2.21 decodes it but 2.18 does not, and what tfflowers accepts must not depend
// on the TensorFlow it runs on (the dataset scanner skips WebP for the same reason).
func DecodeHints(data []byte) (orientation, scale int, err error) {
	return decodeHints(data, bytes.NewReader(data), int64(len(data)))
}

// decodeHints is DecodeHints for an image whose first bytes are head, read from r (size
// bytes long) as far as its header goes.
func decodeHints(head []byte, r io.ReaderAt, size int64) (orientation, scale int, err error) {
	if SniffFormat(head) == FormatWebP {
		return 1, 1, fmt.Errorf("%s", undecodableReason(head))
	}
	h, err := inspectImage(r, size)
	if err != nil {
		return 1, 1, nil
	}
	if scale, err = h.DecodeScale(); err != nil {
		return 1, 1, err
	}
	return h.Orientation, scale, nil
}

// DecodeHints is DecodeHints of the sample's image. For an image file it reads the
// header alone, not the pixels: a cluster's chief decides how each image is decoded and
// leaves reading it to the worker that decodes it.
func (s Sample) DecodeHints() (orientation, scale int, err error) {
	if s.inRecord || s.path == "" {
		data, err := s.ReadBytes()
		if err != nil {
			return 1, 1, err
		}
		return DecodeHints(data)
	}
	f, err := os.Open(s.path)
	if err != nil {
		return 1, 1, fmt.Errorf("read image %s: %w", s.Name, err)
	}
	defer f.Close() // read-only: a close error cannot lose data
	st, err := f.Stat()
	if err != nil {
		return 1, 1, fmt.Errorf("read image %s: %w", s.Name, err)
	}
	head := make([]byte, sniffLen)
	n, _ := f.ReadAt(head, 0)
	return decodeHints(head[:n], f, st.Size())
}
