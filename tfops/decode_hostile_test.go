package tfops_test

import (
	"bufio"
	"errors"
	"image/color"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tfflowers/tfflowers/internal/reliability/fixtures"
	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/tfops"
)

func newDecoder(t *testing.T, size int) *tfops.ImageDecoder {
	t.Helper()
	dec, err := tfops.NewImageDecoder(size, tfops.ResizeSquash, tfops.Augment{}, tfops.SessionConfig{}, pipeline.DecodeHints)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dec.Close() })
	return dec
}

// pixel returns the 0..255 RGB of the preprocessed image at (x, y).
func pixel(img []float32, size, x, y int) [3]float64 {
	i := (y*size + x) * 3
	return [3]float64{float64(img[i]+1) * 127.5, float64(img[i+1]+1) * 127.5, float64(img[i+2]+1) * 127.5}
}

func meanRGB(img []float32) [3]float64 {
	var s [3]float64
	for i, v := range img {
		s[i%3] += float64(v+1) * 127.5
	}
	n := float64(len(img) / 3)
	return [3]float64{s[0] / n, s[1] / n, s[2] / n}
}

func near(a [3]float64, b [3]float64, tol float64) bool {
	for i := range a {
		if math.Abs(a[i]-b[i]) > tol {
			return false
		}
	}
	return true
}

// TestDecodeAppliesExifOrientation stores a quadrant image as a camera would for each
// EXIF orientation (pixels per the TIFF definition of the tag, in both byte orders) and
// checks that the decoder returns it upright.
func TestDecodeAppliesExifOrientation(t *testing.T) {
	const size = 32
	dec := newDecoder(t, size)
	up := fixtures.Quadrants(64, 48) // not square: a missing transpose shows
	out := make([]float32, size*size*3)
	for o := 1; o <= 8; o++ {
		for _, be := range []bool{false, true} {
			data := fixtures.OrientedJPEG(up, o, be)
			if h, err := pipeline.InspectImage(data); err != nil || h.Orientation != o {
				t.Fatalf("orientation %d: InspectImage = %+v, %v", o, h, err)
			}
			if err := dec.Decode(data, nil, out); err != nil {
				t.Fatalf("orientation %d: %v", o, err)
			}
			for q, xy := range [4][2]int{{8, 8}, {24, 8}, {8, 24}, {24, 24}} {
				got := pixel(out, size, xy[0], xy[1])
				c := fixtures.Quadrant[q]
				if want := [3]float64{float64(c.R), float64(c.G), float64(c.B)}; !near(got, want, 30) {
					t.Errorf("orientation %d (big-endian %v): quadrant %d is %.0f, want %.0f", o, be, q, got, want)
				}
			}
		}
	}
}

// peakRSS resets and reads the process's peak resident set (Linux).
func resetPeakRSS(t *testing.T) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS counter: %v", err)
	}
}

func peakRSS(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmHWM in /proc/self/status")
	return 0
}

// TestDecodeHugeImagesBounded: a 10000x10000 JPEG is decoded at 1/4 scale (2500x2500, 18 MB)
// without the 300 MB a full RGB decode takes; a 10000x10000 PNG is refused before decoding.
func TestDecodeHugeImagesBounded(t *testing.T) {
	const size = 64
	dec := newDecoder(t, size)
	out := make([]float32, size*size*3)
	jpg := fixtures.HugeGrayJPEG(10000, 10000)
	h, err := pipeline.InspectImage(jpg)
	if err != nil || h.Width != 10000 || h.Height != 10000 {
		t.Fatalf("InspectImage(huge JPEG) = %+v, %v", h, err)
	}
	if r, err := h.DecodeScale(); r != 4 || err != nil {
		t.Fatalf("DecodeScale = %d, %v; want 4 (the smallest reduction within MaxDecodedPixels)", r, err)
	}
	if err := dec.Decode(fixtures.JPEG(fixtures.Quadrants(40, 40)), nil, out); err != nil { // warm the session up
		t.Fatal(err)
	}
	resetPeakRSS(t)
	before := peakRSS(t)
	if err := dec.Decode(jpg, nil, out); err != nil {
		t.Fatalf("decode 10000x10000 JPEG: %v", err)
	}
	grew := peakRSS(t) - before
	t.Logf("10000x10000 JPEG (%d KB): peak RSS grew %d MB", len(jpg)>>10, grew>>20)
	if grew > 150<<20 {
		t.Fatalf("decoding the 10000x10000 JPEG raised peak RSS by %d MB (a full RGB decode is 286 MB)", grew>>20)
	}
	if m := meanRGB(out); !near(m, [3]float64{128, 128, 128}, 2) {
		t.Fatalf("huge grey JPEG decoded to mean %.1f, want 128", m)
	}

	png := fixtures.HugePNG(10000, 10000)
	err = dec.Decode(png, nil, out)
	if !errors.Is(err, pipeline.ErrImageTooLarge) || !errors.Is(err, tfops.ErrDecode) || !strings.Contains(err.Error(), "10000x10000") {
		t.Fatalf("decode 10000x10000 PNG = %v, want ErrDecode+ErrImageTooLarge naming the size", err)
	}
	t.Logf("10000x10000 PNG (%d KB): %v", len(png)>>10, err)
}

// TestDecodeUnusualPixelFormats: 16-bit PNGs, greyscale, palette GIF and BMP decode to the
// colours they hold (16-bit channels scaled to 8 bits, grey replicated to RGB).
func TestDecodeUnusualPixelFormats(t *testing.T) {
	const size = 32
	dec := newDecoder(t, size)
	out := make([]float32, size*size*3)
	quads := fixtures.Quadrants(48, 48)
	cases := []struct {
		name string
		data []byte
		want [3]float64
		tol  float64
	}{
		{"16-bit RGB PNG", fixtures.PNG(fixtures.RGB64(40, 30, color.RGBA64{0x8000, 0x4000, 0xC000, 0xFFFF})), [3]float64{128, 64, 192}, 1.5},
		{"16-bit grey PNG", fixtures.PNG(fixtures.Gray16(40, 30, 0x6000)), [3]float64{96, 96, 96}, 1.5},
		{"grey PNG", fixtures.PNG(fixtures.Gray(40, 30)), fixtures.Mean(fixtures.Gray(40, 30)), 2},
		{"grey JPEG", fixtures.JPEG(fixtures.Gray(40, 30)), fixtures.Mean(fixtures.Gray(40, 30)), 3},
		{"GIF", fixtures.GIF(quads), fixtures.Mean(quads), 6},
		{"BMP", fixtures.BMP(quads), fixtures.Mean(quads), 2},
	}
	for _, tc := range cases {
		if err := dec.Decode(tc.data, nil, out); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := meanRGB(out); !near(got, tc.want, tc.tol) {
			t.Errorf("%s: mean RGB %.1f, want %.1f ± %.1f", tc.name, got, tc.want, tc.tol)
		}
	}
}
