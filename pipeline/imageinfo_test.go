package pipeline

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfflowers/tfflowers/internal/reliability/fixtures"
)

// pngWithExif inserts an eXIf chunk (orientation o) right after a PNG's IHDR.
func pngWithExif(p []byte, o int) []byte {
	app1 := fixtures.ExifAPP1(o, true)
	tiff := app1[4+6:] // drop marker, length and "Exif\0\0"
	var chunk bytes.Buffer
	binary.Write(&chunk, binary.BigEndian, uint32(len(tiff)))
	chunk.WriteString("eXIf")
	chunk.Write(tiff)
	binary.Write(&chunk, binary.BigEndian, uint32(0)) // CRC is not checked by the header reader
	end := 8 + 8 + 13 + 4
	return append(append(append([]byte{}, p[:end]...), chunk.Bytes()...), p[end:]...)
}

func TestInspectImage(t *testing.T) {
	quads := fixtures.Quadrants(64, 48)
	jpg := fixtures.JPEG(quads)
	xmp := append([]byte{0xFF, 0xE1, 0x00, 0x10}, "http://ns.adob"...) // an APP1 that is not EXIF
	withXMP := append(append(append([]byte{}, jpg[:2]...), xmp...), fixtures.WithExif(jpg, 6, false)[2:]...)
	fill := append(append([]byte{}, jpg[:2]...), append([]byte{0xFF, 0xFF, 0x00, 0x12}, fixtures.WithExif(jpg, 3, true)[2:]...)...)
	bmpTopDown := fixtures.BMP(quads)
	binary.LittleEndian.PutUint32(bmpTopDown[22:], uint32(0xFFFFFFD0)) // height -48
	cases := []struct {
		name         string
		data         []byte
		format       Format
		w, h, orient int
		err          error
	}{
		{"jpeg", jpg, FormatJPEG, 64, 48, 1, nil},
		{"jpeg exif 6 little-endian", fixtures.WithExif(jpg, 6, false), FormatJPEG, 64, 48, 6, nil},
		{"jpeg exif 8 big-endian", fixtures.WithExif(jpg, 8, true), FormatJPEG, 64, 48, 8, nil},
		{"jpeg exif out of range", fixtures.WithExif(jpg, 9, true), FormatJPEG, 64, 48, 1, nil},
		{"jpeg exif 0", fixtures.WithExif(jpg, 0, false), FormatJPEG, 64, 48, 1, nil},
		{"jpeg xmp before exif", withXMP, FormatJPEG, 64, 48, 6, nil},
		{"jpeg fill bytes and garbage", fill, FormatJPEG, 64, 48, 3, nil},
		{"huge jpeg", fixtures.HugeGrayJPEG(10000, 10000), FormatJPEG, 10000, 10000, 1, nil},
		{"jpeg truncated in its headers", jpg[:40], FormatJPEG, 0, 0, 1, ErrImageHeader},
		{"jpeg truncated in its data", fixtures.Truncated(jpg), FormatJPEG, 64, 48, 1, nil},
		{"fake jpeg", fakeJPEG("x"), FormatJPEG, 0, 0, 1, ErrImageHeader},
		{"png", fixtures.PNG(quads), FormatPNG, 64, 48, 1, nil},
		{"png eXIf 6", pngWithExif(fixtures.PNG(quads), 6), FormatPNG, 64, 48, 6, nil},
		{"png 16-bit", fixtures.PNG(fixtures.RGB64(5, 7, color.RGBA64{})), FormatPNG, 5, 7, 1, nil},
		{"gif", fixtures.GIF(quads), FormatGIF, 64, 48, 1, nil},
		{"bmp", fixtures.BMP(quads), FormatBMP, 64, 48, 1, nil},
		{"bmp top-down", bmpTopDown, FormatBMP, 64, 48, 1, nil},
		{"bmp truncated", []byte("BM1234"), FormatBMP, 0, 0, 1, ErrImageHeader},
		{"webp", []byte("RIFF\x24\x00\x00\x00WEBPVP8 "), FormatWebP, 0, 0, 1, ErrImageHeader},
		{"text", []byte("hello"), FormatUnknown, 0, 0, 1, ErrImageHeader},
		{"empty", nil, FormatUnknown, 0, 0, 1, ErrImageHeader},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := InspectImage(tc.data)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("InspectImage error = %v, want %v", err, tc.err)
			}
			if h.Format != tc.format || h.Orientation != tc.orient || (err == nil && (h.Width != tc.w || h.Height != tc.h)) {
				t.Fatalf("InspectImage = %+v, want %v %dx%d orientation %d", h, tc.format, tc.w, tc.h, tc.orient)
			}
		})
	}
}

func TestDecodeScale(t *testing.T) {
	cases := []struct {
		h    ImageHeader
		want int
		err  bool
	}{
		{ImageHeader{Format: FormatJPEG, Width: 320, Height: 240}, 1, false},
		{ImageHeader{Format: FormatJPEG, Width: 4096, Height: 4096}, 1, false},
		{ImageHeader{Format: FormatJPEG, Width: 6000, Height: 4000}, 2, false}, // 24 MP camera
		{ImageHeader{Format: FormatJPEG, Width: 10000, Height: 10000}, 4, false},
		{ImageHeader{Format: FormatJPEG, Width: 30000, Height: 20000}, 8, false},
		{ImageHeader{Format: FormatJPEG, Width: 65535, Height: 65535}, 0, true},
		{ImageHeader{Format: FormatPNG, Width: 4096, Height: 4096}, 1, false},
		{ImageHeader{Format: FormatPNG, Width: 4097, Height: 4096}, 0, true},
		{ImageHeader{Format: FormatBMP, Width: 1 << 30, Height: 1 << 30}, 0, true},
		{ImageHeader{Format: FormatGIF, Width: 10000, Height: 10000}, 0, true},
	}
	for _, tc := range cases {
		got, err := tc.h.DecodeScale()
		if got != tc.want || (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrImageTooLarge)) {
			t.Errorf("%v %dx%d: DecodeScale = %d, %v; want %d (error %v)", tc.h.Format, tc.h.Width, tc.h.Height, got, err, tc.want, tc.err)
		}
	}
}

// TestScanFoldersHugeImages: a 10000x10000 PNG is skipped at scan time with its size in
// the reason (decoding it would take 300 MB); a 10000x10000 JPEG is kept (it is decoded
// at 1/4 scale).
func TestScanFoldersHugeImages(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string][]byte{
		"a/ok.jpg":   fakeJPEG("a"),
		"a/huge.png": fixtures.HugePNG(10000, 10000),
		"b/huge.jpg": fixtures.HugeGrayJPEG(10000, 10000),
	})
	d := scanWithTimeout(t, root, ScanOptions{})
	if len(d.Samples) != 2 || len(d.Skipped) != 1 || d.Skipped[0].Name != filepath.Join(root, "a", "huge.png") ||
		!strings.Contains(d.Skipped[0].Reason, "10000x10000") || !strings.Contains(d.Skipped[0].Reason, "image too large") {
		t.Fatalf("samples %v, skipped %+v; want huge.png skipped as too large", names(d.Samples), d.Skipped)
	}
	if _, err := ScanFolders(root, ScanOptions{Strict: true}); !errors.Is(err, ErrUnreadable) {
		t.Fatalf("strict scan = %v, want ErrUnreadable", err)
	}
	// The same PNG inside a TFRecord is skipped with the same reason.
	rec := filepath.Join(t.TempDir(), "x.tfrec")
	os.WriteFile(rec, tfrecordBytes(t, EncodeExample(fakeJPEG("a"), 0), EncodeExample(fixtures.HugePNG(10000, 10000), 1), EncodeExample(fakeJPEG("b"), 1)), 0o644)
	d, err := ReadTFRecords([]string{rec}, []string{"a", "b"}, ScanOptions{})
	if err != nil || len(d.Skipped) != 1 || !strings.Contains(d.Skipped[0].Reason, "image too large") {
		t.Fatalf("ReadTFRecords = %v, skipped %+v; want the huge PNG skipped", err, d.Skipped)
	}
	if _, err := ReadTFRecords([]string{rec}, []string{"a", "b"}, ScanOptions{Strict: true}); !errors.Is(err, ErrImageTooLarge) {
		t.Fatalf("strict ReadTFRecords = %v, want ErrImageTooLarge", err)
	}
}

// TestSampleDecodeHints: a sample's hints, read from its file's header alone, are those
// of its whole bytes, for an upright, a rotated, a huge and a WebP file.
func TestSampleDecodeHints(t *testing.T) {
	root := t.TempDir()
	webp := append([]byte("RIFF\x10\x00\x00\x00WEBPVP8 "), make([]byte, 16)...)
	writeFiles(t, root, map[string][]byte{
		"a/up.jpg":      fakeJPEG("a"),
		"a/rotated.jpg": fixtures.WithExif(fixtures.JPEG(fixtures.Quadrants(64, 48)), 6, false),
		"b/huge.jpg":    fixtures.HugeGrayJPEG(10000, 10000),
		"b/x.webp":      webp,
	})
	for _, name := range []string{"a/up.jpg", "a/rotated.jpg", "b/huge.jpg", "b/x.webp"} {
		path := filepath.Join(root, name)
		data, _ := os.ReadFile(path)
		wo, ws, werr := DecodeHints(data)
		s := Sample{Name: path, path: path}
		o, sc, err := s.DecodeHints()
		if o != wo || sc != ws || (err == nil) != (werr == nil) {
			t.Errorf("%s: Sample.DecodeHints = %d, %d, %v; DecodeHints = %d, %d, %v", name, o, sc, err, wo, ws, werr)
		}
		if s.File() != path {
			t.Errorf("%s: File() = %q", name, s.File())
		}
	}
	if o, sc, _ := (Sample{Name: "r", path: filepath.Join(root, "a/rotated.jpg")}).DecodeHints(); o != 6 || sc != 1 {
		t.Errorf("rotated: orientation %d scale %d, want 6, 1", o, sc)
	}
	if _, sc, _ := (Sample{Name: "h", path: filepath.Join(root, "b/huge.jpg")}).DecodeHints(); sc != 4 {
		t.Errorf("huge JPEG: scale %d, want 4", sc)
	}
	if _, _, err := (Sample{Name: "w", path: filepath.Join(root, "b/x.webp")}).DecodeHints(); err == nil {
		t.Error("WebP: no error")
	}
	if (Sample{Name: "r#0", path: "r.tfrec", inRecord: true}).File() != "" {
		t.Error("a TFRecord sample has a File")
	}
}
