package tfops_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/tfops"
)

func gradientPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(255 * x / w), uint8(255 * y / h), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecoderPlainAndAugmented(t *testing.T) {
	dec, err := tfops.NewImageDecoder(32, tfops.ResizeSquash, tfops.Augment{Flip: true, Zoom: 0.3, Brightness: 0.2}, tfops.SessionConfig{}, pipeline.DecodeHints)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	data := gradientPNG(t, 80, 60)
	plain := make([]float32, 32*32*3)
	if err := dec.Decode(data, nil, plain); err != nil {
		t.Fatal(err)
	}
	for _, v := range plain {
		if v < -1 || v > 1 {
			t.Fatalf("preprocessed value %v outside [-1,1]", v)
		}
	}
	// Red grows left to right in the source; the plain decode keeps that orientation.
	if !(plain[0] < plain[(31)*3]) {
		t.Fatalf("left red %v should be below right red %v", plain[0], plain[31*3])
	}
	a1, a2, b := make([]float32, len(plain)), make([]float32, len(plain)), make([]float32, len(plain))
	seedA, seedB := [2]int64{1, 2}, [2]int64{1, 3}
	if err := dec.Decode(data, &seedA, a1); err != nil {
		t.Fatal(err)
	}
	dec.Decode(data, &seedA, a2)
	dec.Decode(data, &seedB, b)
	same, differ := true, false
	for i := range a1 {
		same = same && a1[i] == a2[i]
		differ = differ || a1[i] != b[i]
		if a1[i] < -1-1e-6 || a1[i] > 1+1e-6 {
			t.Fatalf("augmented value %v outside [-1,1]", a1[i])
		}
	}
	if !same || !differ {
		t.Fatalf("augmentation must depend only on the seed: same seed equal=%v, other seed differs=%v", same, differ)
	}
	if err := dec.Decode([]byte("not an image"), nil, plain); err == nil {
		t.Fatal("decoding garbage succeeded")
	}
}

// bandsPNG is w x h: green, with red bands of width band at both ends of the longer side.
func bandsPNG(t *testing.T, w, h, band int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{0, 255, 0, 255}
			if (w > h && (x < band || x >= w-band)) || (h > w && (y < band || y >= h-band)) {
				c = color.RGBA{255, 0, 0, 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDecoderCentreCrop: ResizeCrop keeps the centred square (the red ends of the longer
// side are cut, landscape or portrait), ResizeSquash keeps the whole image.
func TestDecoderCentreCrop(t *testing.T) {
	crop, err := tfops.NewImageDecoder(32, tfops.ResizeCrop, tfops.Augment{}, tfops.SessionConfig{}, pipeline.DecodeHints)
	if err != nil {
		t.Fatal(err)
	}
	defer crop.Close()
	squash, err := tfops.NewImageDecoder(32, tfops.ResizeSquash, tfops.Augment{}, tfops.SessionConfig{}, pipeline.DecodeHints)
	if err != nil {
		t.Fatal(err)
	}
	defer squash.Close()
	for _, wh := range [][2]int{{80, 60}, {60, 80}, {81, 60}, {64, 64}} {
		data := bandsPNG(t, wh[0], wh[1], 10)
		out := make([]float32, 32*32*3)
		if err := crop.Decode(data, nil, out); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(out); i += 3 {
			if out[i] > -0.99 || out[i+1] < 0.99 { // red -1, green 1 after x/127.5-1
				t.Fatalf("%dx%d crop: pixel %d is (%v,%v), want pure green: the centred square has no red", wh[0], wh[1], i/3, out[i], out[i+1])
			}
		}
		if err := squash.Decode(data, nil, out); err != nil {
			t.Fatal(err)
		}
		if wh[0] != wh[1] && out[0] < 0.99 {
			t.Fatalf("%dx%d squash: corner red %v, want the red band kept", wh[0], wh[1], out[0])
		}
	}
	if _, err := tfops.NewImageDecoder(32, "stretch", tfops.Augment{}, tfops.SessionConfig{}, nil); err == nil {
		t.Fatal("unknown resize mode accepted")
	}
}
