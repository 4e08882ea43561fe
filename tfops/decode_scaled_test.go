package tfops

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/tfflowers/tfflowers/internal/reliability/fixtures"
	"github.com/tfflowers/tfflowers/internal/tftest"
	"github.com/tfflowers/tfflowers/pipeline"
)

// gradientJPEG is a w x h JPEG whose pixels all differ a little (so that decoding at the
// wrong scale shows in the resized pixels), made without keeping more than the image.
func gradientJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x ^ y) & 0xff), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestExportDecodeMatchesTraining: the export graph's decode loop gives the training
// decoder's pixels (max |diff| <= 1/255 of the range) on odd images, large JPEGs decoded at
// reduced scale among them.
func TestExportDecodeMatchesTraining(t *testing.T) {
	const size = 96
	pil := tftest.PillowImages(t)
	for _, resize := range []string{ResizeSquash, ResizeCrop} {
		t.Run(resize, func(t *testing.T) {
			loop, err := decodeLoopGraphDef(size, resize)
			if err != nil {
				t.Fatal(err)
			}
			g := tf.NewGraph()
			if err := g.ImportWithOptions(loop, tf.GraphImportOptions{Prefix: "d"}); err != nil {
				t.Fatal(err)
			}
			sess, err := tf.NewSession(g, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			cmyk, err := os.ReadFile(filepath.Join(pil, "cmyk.jpg"))
			if err != nil {
				t.Fatal(err)
			}
			dec, err := NewImageDecoder(size, resize, Augment{}, SessionConfig{CPUOnly: true}, pipeline.DecodeHints)
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()

			corpus := []struct {
				name string
				data []byte
			}{
				{"EXIF-rotated PNG (eXIf)", fixtures.OrientedPNG(fixtures.Quadrants(40, 30), 6, false)},
				{"EXIF-rotated PNG (eXIf), big-endian", fixtures.OrientedPNG(fixtures.Quadrants(40, 30), 7, true)},
				{"EXIF-rotated JPEG, APP1 behind a 600 KB ICC profile", fixtures.BehindICC(fixtures.OrientedJPEG(fixtures.Quadrants(40, 30), 8, false))},
				{"CMYK JPEG (Adobe, inverted)", cmyk},
				{"20 MP JPEG (training decodes at 1/2)", gradientJPEG(t, 5000, 4000)},
				{"108 MP JPEG (1/4)", fixtures.HugeGrayJPEG(12000, 9000)},
				{"EXIF-rotated JPEG", fixtures.OrientedJPEG(fixtures.Quadrants(40, 30), 6, false)},
				{"EXIF-rotated JPEG, big-endian", fixtures.OrientedJPEG(fixtures.Quadrants(40, 30), 8, true)},
				{"small JPEG", gradientJPEG(t, 300, 200)},
				{"grayscale PNG", fixtures.PNG(fixtures.Gray(50, 40))},
				{"16-bit PNG", fixtures.PNG(fixtures.Gray16(30, 30, 40000))},
				{"64-bit RGBA PNG", fixtures.PNG(fixtures.RGB64(20, 10, color.RGBA64{R: 60000, G: 1000, B: 30000, A: 65535}))},
				{"palette GIF", fixtures.GIF(fixtures.Quadrants(33, 17))},
				{"BMP", fixtures.BMP(fixtures.Quadrants(17, 33))},
			}
			bytesIn, images := g.Operation("d/bytes").Output(0), g.Operation("d/images").Output(0)
			for _, c := range corpus {
				in, err := tf.NewTensor([]string{string(c.data)})
				if err != nil {
					t.Fatal(err)
				}
				out, err := sess.Run(map[tf.Output]*tf.Tensor{bytesIn: in}, []tf.Output{images}, nil)
				if err != nil {
					t.Errorf("%s: export decode: %v", c.name, err)
					continue
				}
				got := out[0].Value().([][][][]float32)[0]
				want := make([]float32, size*size*3)
				if err := dec.Decode(c.data, nil, want); err != nil {
					t.Errorf("%s: training decode: %v", c.name, err)
					continue
				}
				worst := 0.0
				for y := range got {
					for x := range got[y] {
						for k, v := range got[y][x] {
							// The training decoder's output is normalized to [-1, 1].
							d := math.Abs(float64(v/127.5-1) - float64(want[(y*size+x)*3+k]))
							worst = max(worst, d*127.5) // in 0..255 units
						}
					}
				}
				t.Logf("%s: max |diff| %.3g/255", c.name, worst)
				if worst > 1 {
					t.Errorf("%s: export and training pixels differ by %.3g/255 > 1/255", c.name, worst)
				}
			}
		})
	}
}
