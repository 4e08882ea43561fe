package tfops_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfflowers/tfflowers/internal/tftest"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

func writeF32(t *testing.T, path string, v []float32) {
	t.Helper()
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v
}

// TestBackboneGradientsMatchGradientTape checks Graph.AddGradients through the flat
// MobileNetV2 graph against TensorFlow Python's GradientTape on the Keras model.
func TestBackboneGradientsMatchGradientTape(t *testing.T) {
	base, err := savedmodel.LoadBase(tftest.ImageNetBase(t), tfops.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	ft, err := base.FineTuneVariables("block_15")
	if err != nil {
		t.Fatal(err)
	}
	const classes, size, n = 5, 64, 2
	tg, err := tfops.BuildTrainGraph(base.Session.Graph(), base.Input, base.Features, tfops.HeadConfig{
		Kind: tfops.HeadGAP, NumClasses: classes, Seed: 3, FineTune: ft, BackboneScope: savedmodel.BackboneScope,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Initialize(base.Session); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	b := tfops.Batch{Images: make([]float32, n*size*size*3), ImageSize: size, Labels: []int64{1, 3}}
	for i := range b.Images {
		b.Images[i] = float32(rng.Float64()*2 - 1)
	}
	grads, err := tg.Gradients(base.Session, b)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kernel, bias, err := tg.HeadWeights(base.Session)
	if err != nil {
		t.Fatal(err)
	}
	writeF32(t, filepath.Join(dir, "images.f32"), b.Images)
	writeF32(t, filepath.Join(dir, "kernel.f32"), kernel)
	writeF32(t, filepath.Join(dir, "bias.f32"), bias)
	meta, _ := json.Marshal(map[string]any{"labels": b.Labels, "classes": classes})
	os.WriteFile(filepath.Join(dir, "labels.json"), meta, 0o644)
	check := []string{"block_15_expand/kernel", "block_15_depthwise/kernel", "block_16_project_BN/gamma", "Conv_1/kernel", "Conv_1_bn/beta"}
	npy := filepath.Join(tftest.Shared(t), "models", "mobilenet_v2_1.0_224_imagenet_npy")
	tftest.RunPython(t, "keras_gradients.py", "--weights-npy", npy, "--dir", dir, "--size", "64", "--vars", strings.Join(check, ","))
	for _, name := range check {
		goG, ok := grads[name]
		if !ok {
			t.Fatalf("no Go gradient for %s (fine-tuned: %v)", name, ft)
		}
		pyG := readF32(t, filepath.Join(dir, strings.ReplaceAll(name, "/", "__")+".grad.f32"))
		if len(pyG) != len(goG) {
			t.Fatalf("%s: %d Go values, %d Python values", name, len(goG), len(pyG))
		}
		var diff, norm float64
		for i := range goG {
			d := float64(goG[i] - pyG[i])
			diff += d * d
			norm += float64(pyG[i]) * float64(pyG[i])
		}
		rel := math.Sqrt(diff / norm)
		t.Logf("%-28s |g| %.3g  relative error vs GradientTape %.2g", name, math.Sqrt(norm), rel)
		if norm == 0 || rel > 1e-3 {
			t.Fatalf("%s: relative error %.3g > 1e-3 (|g| %.3g)", name, rel, math.Sqrt(norm))
		}
	}
}
