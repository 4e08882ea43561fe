package reliability_test

import (
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/tfops"
)

// TestDecodeMatchesPillow: CMYK JPEGs (Adobe, as Pillow and Photoshop write them), a
// progressive JPEG and a Pillow-written EXIF-rotated JPEG decode to what Pillow's
// ImageOps.exif_transpose(img).convert("RGB") shows (mean colour within 3/255, quadrants
// upright); a WebP named .jpg fails with a clear decode error rather than garbage.
func TestDecodeMatchesPillow(t *testing.T) {
	dir, refs := pillowFixtures(t)
	const size = 32
	dec, err := tfops.NewImageDecoder(size, tfops.ResizeSquash, tfops.Augment{}, tfops.SessionConfig{}, pipeline.DecodeHints)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out := make([]float32, size*size*3)
	for _, name := range []string{"cmyk.jpg", "cmyk_gray.jpg", "progressive.jpg", "exif6_pil.jpg"} {
		var want [3]float64
		if err := json.Unmarshal(refs[name], &want); err != nil {
			t.Fatal(err)
		}
		if err := dec.Decode(readFile(t, filepath.Join(dir, name)), nil, out); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var got [3]float64
		for i, v := range out {
			got[i%3] += float64(v+1) * 127.5 / float64(size*size)
		}
		for c := range got {
			if math.Abs(got[c]-want[c]) > 3 {
				t.Errorf("%s: mean RGB %.1f, Pillow %.1f", name, got, want)
				break
			}
		}
		t.Logf("%s: mean RGB %.1f, Pillow %.1f", name, got, want)
	}
	var quads [4][3]float64
	if err := json.Unmarshal(refs["exif6_pil.jpg:quadrants"], &quads); err != nil {
		t.Fatal(err)
	}
	dec.Decode(readFile(t, filepath.Join(dir, "exif6_pil.jpg")), nil, out)
	for q, xy := range [4][2]int{{8, 8}, {24, 8}, {8, 24}, {24, 24}} {
		i := (xy[1]*size + xy[0]) * 3
		for c := 0; c < 3; c++ {
			if got := float64(out[i+c]+1) * 127.5; math.Abs(got-quads[q][c]) > 30 {
				t.Errorf("exif6_pil.jpg quadrant %d channel %d: %.0f, Pillow upright %.0f", q, c, got, quads[q][c])
			}
		}
	}
	err = dec.Decode(readFile(t, filepath.Join(dir, "webp_named.jpg")), nil, out)
	if !errors.Is(err, tfops.ErrDecode) {
		t.Fatalf("WebP bytes: Decode = %v, want ErrDecode", err)
	}
	t.Logf("WebP bytes: %v", err)
}
