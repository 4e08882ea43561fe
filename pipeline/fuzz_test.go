package pipeline

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReadTFRecord feeds arbitrary bytes to the record scanner and the
// tf.train.Example parser. Beyond "no panic, no hang" it checks that every
// record the scanner accepts re-frames to exactly the bytes it came from,
// and that every example the parser accepts survives EncodeExample.
// Seed inputs live in testdata/fuzz/FuzzReadTFRecord.
func FuzzReadTFRecord(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		sc := newRecordScanner(bytes.NewReader(in), int64(len(in)))
		for n := 0; ; n++ {
			if n > len(in)/recordHeaderLen+1 {
				t.Fatalf("scanner returned %d records from %d bytes", n, len(in))
			}
			rec, ok := sc.next()
			if !ok {
				break
			}
			end := rec.offset + recordHeaderLen + int64(rec.length) + recordFooterLen
			if rec.offset < 0 || end > int64(len(in)) || uint64(len(rec.data)) != rec.length {
				t.Fatalf("record %d: offset %d length %d outside input of %d bytes", rec.index, rec.offset, rec.length, len(in))
			}
			if rec.err == nil {
				var buf bytes.Buffer
				if err := WriteRecord(&buf, rec.data); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(buf.Bytes(), in[rec.offset:end]) {
					t.Fatalf("record %d does not re-frame to its input bytes", rec.index)
				}
			}
			// The parser must cope with whatever the record holds, valid
			// CRC or not.
			checkExampleRoundTrip(t, rec.data)
			_, _, _ = checkRecord(rec, 5)
		}
		if sc.Err() == nil && sc.IOErr() == nil && sc.off != int64(len(in)) {
			t.Fatalf("clean end of scan at offset %d of %d", sc.off, len(in))
		}
		// The raw input is also a plausible Example payload.
		checkExampleRoundTrip(t, in)
	})
}

func checkExampleRoundTrip(t *testing.T, data []byte) {
	t.Helper()
	ex, err := parseExample(data)
	if err != nil || ex.image == nil || !ex.hasLabel {
		return
	}
	again, err := parseExample(EncodeExample(ex.image, ex.label))
	if err != nil {
		t.Fatalf("re-encoded example does not parse: %v", err)
	}
	if !bytes.Equal(again.image, ex.image) || again.label != ex.label || !again.hasLabel {
		t.Fatalf("example round trip changed it: image %q label %d → image %q label %d", ex.image, ex.label, again.image, again.label)
	}
}

// FuzzSniffFormat checks that sniffing never panics, only depends on the
// first sniffLen bytes, and agrees with DecodableByTF and String.
func FuzzSniffFormat(f *testing.F) {
	for _, seed := range [][]byte{
		nil, []byte("\xff\xd8\xff"), []byte("\x89PNG\r\n\x1a\n"), []byte("GIF89a"), []byte("BM"),
		[]byte("RIFF\x00\x00\x00\x00WEBP"), []byte("RIFF\x00\x00\x00\x00WAVE"), []byte("hello"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got := SniffFormat(in)
		if len(in) > sniffLen {
			if head := SniffFormat(in[:sniffLen]); head != got {
				t.Fatalf("SniffFormat depends on bytes past %d: %v vs %v", sniffLen, got, head)
			}
		}
		if got.DecodableByTF() != (got != FormatUnknown && got != FormatWebP) {
			t.Fatalf("%v.DecodableByTF() = %v", got, got.DecodableByTF())
		}
		if got.String() == "" {
			t.Fatal("empty String()")
		}
		if (undecodableReason(in) == "") != got.DecodableByTF() {
			t.Fatalf("undecodableReason disagrees with DecodableByTF for %v", got)
		}
	})
}

// FuzzExifOrientation feeds arbitrary bytes to InspectImage (the JPEG segment walker, the
// EXIF/TIFF reader, the PNG chunk walker and the GIF/BMP headers) and checks that it never
// panics or hangs, reports an orientation in 1..8, a positive size when it succeeds, and
// a decode scale that keeps the decoded pixels within MaxDecodedPixels.
// Seed inputs live in testdata/fuzz/FuzzExifOrientation (see TestFuzzExifOrientationSeeds).
func FuzzExifOrientation(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := InspectImage(in)
		if h.Orientation < 1 || h.Orientation > 8 {
			t.Fatalf("orientation %d outside 1..8", h.Orientation)
		}
		if h.Format != SniffFormat(in) {
			t.Fatalf("format %v, SniffFormat says %v", h.Format, SniffFormat(in))
		}
		if err != nil {
			if !errors.Is(err, ErrImageHeader) {
				t.Fatalf("error %v does not wrap ErrImageHeader", err)
			}
			return
		}
		if h.Width <= 0 || h.Height <= 0 {
			t.Fatalf("size %dx%d accepted", h.Width, h.Height)
		}
		r, err := h.DecodeScale()
		if err != nil {
			if !errors.Is(err, ErrImageTooLarge) {
				t.Fatalf("DecodeScale error %v does not wrap ErrImageTooLarge", err)
			}
			return
		}
		if r != 1 && (h.Format != FormatJPEG || (r != 2 && r != 4 && r != 8)) {
			t.Fatalf("scale %d for %v", r, h.Format)
		}
		if w, ht := (int64(h.Width)+int64(r)-1)/int64(r), (int64(h.Height)+int64(r)-1)/int64(r); w*ht > MaxDecodedPixels {
			t.Fatalf("%dx%d at 1/%d decodes to %d pixels", h.Width, h.Height, r, w*ht)
		}
		// The TIFF reader alone, on the same bytes.
		if o := exifOrientation(in); o < 1 || o > 8 {
			t.Fatalf("exifOrientation = %d", o)
		}
	})
}
