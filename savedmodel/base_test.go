package savedmodel_test

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/tfflowers/tfflowers/internal/tftest"
	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

// decodeFiles preprocesses image files at size with the product's own decoder.
func decodeFiles(t *testing.T, files []string, size int) []float32 {
	t.Helper()
	dec, err := tfops.NewImageDecoder(size, tfops.ResizeSquash, tfops.Augment{}, tfops.SessionConfig{}, pipeline.DecodeHints)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	per := size * size * 3
	out := make([]float32, len(files)*per)
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := dec.Decode(b, nil, out[i*per:(i+1)*per]); err != nil {
			t.Fatalf("decode %s: %v", f, err)
		}
	}
	return out
}

// flowerFiles returns the first n files (sorted) of each class.
func flowerFiles(t *testing.T, n int) (files []string, labels []int, classes []string) {
	t.Helper()
	root := tftest.FlowerPhotos(t)
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		classes = append(classes, e.Name())
		got, _ := filepath.Glob(filepath.Join(root, e.Name(), "*.jpg"))
		sort.Strings(got)
		if len(got) < n {
			t.Fatalf("class %s has %d images, need %d", e.Name(), len(got), n)
		}
		for _, f := range got[:n] {
			files = append(files, f)
			labels = append(labels, len(classes)-1)
		}
	}
	return files, labels, classes
}

func loadBase(t *testing.T, dir string) *savedmodel.Base {
	t.Helper()
	b, err := savedmodel.LoadBase(dir, tfops.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBaseFeaturesShapeAndDeterminism(t *testing.T) {
	base := loadBase(t, tftest.ImageNetBase(t))
	files, _, _ := flowerFiles(t, 1)
	images := decodeFiles(t, files[:2], 192)
	f1, shape, err := base.Extract(images, 2, 192)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{2, 6, 6, 1280}
	if len(shape) != 4 || shape[0] != want[0] || shape[1] != want[1] || shape[2] != want[2] || shape[3] != want[3] {
		t.Fatalf("feature shape %v, want %v", shape, want)
	}
	f2, _, err := base.Extract(images, 2, 192)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f1 {
		if f1[i] != f2[i] {
			t.Fatalf("two runs differ at %d: %v vs %v", i, f1[i], f2[i])
		}
	}
	if got, err := base.CheckImageSize(192); err != nil || got[0] != 6 || got[2] != 1280 {
		t.Fatalf("CheckImageSize(192) = %v, %v", got, err)
	}
}

func TestBaseFeaturesMatchKeras(t *testing.T) {
	base := loadBase(t, tftest.ImageNetBase(t))
	files, _, _ := flowerFiles(t, 1)
	const size = 192
	images := decodeFiles(t, files, size)
	goFeats, _, err := base.Extract(images, len(files), size)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "images.f32"), filepath.Join(dir, "keras.f32")
	raw := make([]byte, 4*len(images))
	for i, v := range images {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(in, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	npy := filepath.Join(tftest.Shared(t), "models", "mobilenet_v2_1.0_224_imagenet_npy")
	tftest.RunPython(t, "keras_reference.py", "--weights-npy", npy, "--images", in, "--size", "192", "--out", out)
	kb, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(kb) != 4*len(goFeats) {
		t.Fatalf("keras wrote %d floats, Go has %d", len(kb)/4, len(goFeats))
	}
	maxDiff, maxAbs := 0.0, 0.0
	for i, g := range goFeats {
		k := math.Float32frombits(binary.LittleEndian.Uint32(kb[4*i:]))
		maxDiff = math.Max(maxDiff, math.Abs(float64(g-k)))
		maxAbs = math.Max(maxAbs, math.Abs(float64(k)))
	}
	t.Logf("Go vs Keras features: max |diff| %.3g over %d values (max |value| %.3g)", maxDiff, len(goFeats), maxAbs)
	// Keras computes inference BatchNorm as x*rsqrt(var+eps)*gamma + (beta - mean*...); the
	// export's FusedBatchNormV3 (folded into the convolutions by Grappler) rounds in another
	// order, so the two agree to float32 rounding carried through 52 layers: relative 1e-4.
	if limit := 1e-4 * math.Max(1, maxAbs); maxDiff > limit {
		t.Fatalf("Go features differ from Keras model.predict by %.3g > %.3g", maxDiff, limit)
	}
	if maxAbs == 0 {
		t.Fatal("all features are zero")
	}
}

// TestImageNetWeightsSeparateFlowers is a linear sanity check of the weight mapping:
// nearest class mean on pooled features, fitted on 30 and tested on 20 images per class.
func TestImageNetWeightsSeparateFlowers(t *testing.T) {
	if testing.Short() {
		t.Skip("extracts 250 images; skipped with -short")
	}
	base := loadBase(t, tftest.ImageNetBase(t))
	files, labels, classes := flowerFiles(t, 50)
	const size, fit = 192, 30
	pooled := make([][]float64, len(files))
	for start := 0; start < len(files); start += 50 {
		end := min(start+50, len(files))
		feats, shape, err := base.Extract(decodeFiles(t, files[start:end], size), end-start, size)
		if err != nil {
			t.Fatal(err)
		}
		per, ch := int(shape[1]*shape[2]*shape[3]), int(shape[3])
		for i := 0; i < end-start; i++ {
			p := make([]float64, ch)
			for j := 0; j < per; j++ {
				p[j%ch] += float64(feats[i*per+j])
			}
			pooled[start+i] = p
		}
	}
	means := make([][]float64, len(classes))
	for c := range means {
		means[c] = make([]float64, len(pooled[0]))
	}
	for i, p := range pooled {
		if i%50 < fit {
			for j, v := range p {
				means[labels[i]][j] += v / fit
			}
		}
	}
	correct, total := 0, 0
	for i, p := range pooled {
		if i%50 < fit {
			continue
		}
		best, bestD := -1, math.Inf(1)
		for c, m := range means {
			d := 0.0
			for j := range p {
				d += (p[j] - m[j]) * (p[j] - m[j])
			}
			if d < bestD {
				best, bestD = c, d
			}
		}
		total++
		if best == labels[i] {
			correct++
		}
	}
	acc := float64(correct) / float64(total)
	t.Logf("nearest-class-mean accuracy on %d held-out images: %.3f (chance %.3f)", total, acc, 1/float64(len(classes)))
	if acc < 0.6 {
		t.Fatalf("ImageNet features separate flowers at %.3f, want >= 0.6: weights mapped wrong?", acc)
	}
}

func TestLoadBaseErrors(t *testing.T) {
	empty := t.TempDir()
	noMeta := t.TempDir()
	if err := os.WriteFile(filepath.Join(noMeta, "saved_model.pb"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	badMeta := t.TempDir()
	os.WriteFile(filepath.Join(badMeta, "saved_model.pb"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(badMeta, "assets.extra"), 0o755)
	os.WriteFile(filepath.Join(badMeta, savedmodel.MetadataPath), []byte("{not json"), 0o644)
	cases := map[string]struct {
		dir  string
		want error
	}{
		"missing dir":      {filepath.Join(empty, "nope"), savedmodel.ErrNotSavedModel},
		"not a savedmodel": {empty, savedmodel.ErrNotSavedModel},
		"no metadata":      {noMeta, savedmodel.ErrNotBase},
		"corrupt metadata": {badMeta, savedmodel.ErrNotBase},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := savedmodel.LoadBase(tc.dir, tfops.SessionConfig{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("LoadBase(%s) = %v, want %v", tc.dir, err, tc.want)
			}
		})
	}
}
