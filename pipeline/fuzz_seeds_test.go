package pipeline

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tfflowers/tfflowers/internal/reliability/fixtures"
)

// exifSeeds are the committed seed inputs of FuzzExifOrientation, made from the Go
// fixtures. TestFuzzExifOrientationSeeds checks that each is committed (not byte for
// byte: Go's encoders may change between releases);
// TFFLOWERS_WRITE_FUZZ_SEEDS=1 go test -run TestFuzzExifOrientationSeeds ./pipeline
// rewrites them.
func exifSeeds() map[string][]byte {
	small := fixtures.Quadrants(16, 12)
	jpg := fixtures.JPEG(small)
	huge := fixtures.HugeGrayJPEG(10000, 10000)
	hugePNG := fixtures.HugePNG(10000, 10000)
	return map[string][]byte{
		"jpeg_plain":        jpg,
		"jpeg_exif6_le":     fixtures.WithExif(jpg, 6, false),
		"jpeg_exif8_be":     fixtures.WithExif(jpg, 8, true),
		"jpeg_exif_only":    append([]byte{0xFF, 0xD8}, fixtures.ExifAPP1(5, true)...),
		"jpeg_huge_headers": huge[:200],
		"jpeg_truncated":    jpg[:30],
		"png_exif3":         pngWithExif(fixtures.PNG(small), 3),
		"png_huge_header":   hugePNG[:33],
		"gif":               fixtures.GIF(small),
		"bmp":               fixtures.BMP(fixtures.Quadrants(4, 3)),
		"bmp_core_header":   []byte("BM\x00\x00\x00\x00\x00\x00\x00\x00\x1a\x00\x00\x00\x0c\x00\x00\x00\x10\x00\x0c\x00\x01\x00\x18\x00"),
		"webp":              []byte("RIFF\x24\x00\x00\x00WEBPVP8 "),
		"text":              []byte("not an image"),
	}
}

func TestFuzzExifOrientationSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzExifOrientation")
	write := os.Getenv("TFFLOWERS_WRITE_FUZZ_SEEDS") == "1"
	for name, data := range exifSeeds() {
		want := []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data))
		p := filepath.Join(dir, name)
		if write {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.HasPrefix(got, []byte("go test fuzz v1\n[]byte(")) {
			t.Errorf("seed %s is missing or malformed (%v): rerun with TFFLOWERS_WRITE_FUZZ_SEEDS=1", p, err)
		}
	}
}
