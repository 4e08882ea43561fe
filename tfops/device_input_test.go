package tfops_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/tfflowers/tfflowers/internal/reliability/fixtures"
	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/tfops"
)

// deviceInputHarness is a tiny "backbone" (a 16x16 average pool of 32x32 images, so the
// features are [2,2,3]) under a GAP head, replicated on 2 logical CPUs with an input
// pipeline on each.
type deviceInputHarness struct {
	sess  *tfops.Session
	graph *tfops.TrainGraph
	in    *tfops.DeviceInputs
}

func newDeviceInputHarness(t *testing.T, batch, micro int, aug tfops.Augment) *deviceInputHarness {
	t.Helper()
	g := tf.NewGraph()
	s := op.NewScopeWithGraph(g)
	input := op.Placeholder(s.SubScope("input"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, 32, 32, 3)))
	feats := op.AvgPool(s.SubScope("backbone"), input, []int64{1, 16, 16, 1}, []int64{1, 16, 16, 1}, "VALID")
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	tg, err := tfops.BuildTrainGraph(g, input, feats, tfops.HeadConfig{Kind: tfops.HeadGAP, NumClasses: 4, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	devices := []string{"/device:CPU:0", "/device:CPU:1"}
	if err := tg.ReplicateWithDeviceInputs(g, devices, tfops.DeviceInputConfig{Size: 32, Resize: tfops.ResizeSquash, Augment: aug, BatchSize: batch, MicroBatch: micro}); err != nil {
		t.Fatal(err)
	}
	sess, err := tfops.NewSession(g, tfops.SessionConfig{CPUDevices: 2, CPUOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	if err := tg.Initialize(sess); err != nil {
		t.Fatal(err)
	}
	in := tg.DeviceInputs()
	if err := in.Init(sess); err != nil {
		t.Fatal(err)
	}
	return &deviceInputHarness{sess: sess, graph: tg, in: in}
}

// writeImages writes JPEGs of different sizes and orientations (one stored sideways with
// EXIF orientation 6) and returns their paths.
func writeImages(t *testing.T, n int) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i := 0; i < n; i++ {
		img := fixtures.JPEG(fixtures.Quadrants(40+8*i, 32+4*i))
		if i%3 == 1 {
			img = fixtures.OrientedJPEG(fixtures.Quadrants(40+8*i, 32+4*i), 6, false)
		}
		p := filepath.Join(dir, fmt.Sprintf("%d.jpg", i))
		if err := os.WriteFile(p, img, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// encoded is how the chief describes the image at path (its header read in Go).
func encoded(t *testing.T, path string) tfops.EncodedImage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	o, scale, err := pipeline.DecodeHints(data)
	if err != nil {
		t.Fatal(err)
	}
	return tfops.EncodedImage{Path: path, Orientation: o, Scale: scale}
}

// TestDeviceInputsDecodeOnTheirDevices: the images a device batch decodes on the towers'
// devices are the local decoder's, bit for bit: features, probabilities and loss equal
// those of the same images decoded in the client and fed as pixels. Read and decode ops
// are placed on their tower's device, rows are spread over both, and the counts say so.
func TestDeviceInputsDecodeOnTheirDevices(t *testing.T) {
	const n = 5
	h := newDeviceInputHarness(t, 8, 2, tfops.Augment{})
	paths := writeImages(t, n)
	placed := map[string]bool{}
	for _, o := range h.sess.Graph().Operations() {
		if o.Type() == "ReadFile" || o.Type() == "DecodeJpeg" || o.Type() == "ResourceScatterUpdate" {
			if !strings.HasPrefix(o.Name(), "tfflowers/device_inputs/device_") {
				t.Fatalf("%s %s outside the device pipelines", o.Type(), o.Name())
			}
			k := o.Name()[len("tfflowers/device_inputs/device_")]
			if want := "/device:CPU:" + string(k); o.Device() != want {
				t.Fatalf("%s %s is placed on %q, want %q", o.Type(), o.Name(), o.Device(), want)
			}
			placed[o.Device()] = true
		}
	}
	if len(placed) != 2 {
		t.Fatalf("read/decode ops on devices %v, want both", placed)
	}
	db, err := h.in.NewBatch(1, n)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range paths {
		if err := db.Decode(h.sess, i, encoded(t, p)); err != nil {
			t.Fatalf("decode %s: %v", p, err)
		}
	}
	if err := db.Keep([]bool{true, true, true, true, true}); err != nil {
		t.Fatal(err)
	}
	if d := h.in.Decoded(); d[0] == 0 || d[1] == 0 || d[0]+d[1] != n {
		t.Fatalf("decoded per device %v, want %d spread over both", d, n)
	}
	got, err := h.graph.ExtractDeviceFeatures(h.sess, db)
	if err != nil {
		t.Fatal(err)
	}
	// The same images decoded in the client and fed.
	dec, err := tfops.NewImageDecoder(32, tfops.ResizeSquash, tfops.Augment{}, tfops.SessionConfig{}, pipeline.DecodeHints)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	pixels := make([]float32, n*32*32*3)
	for i, p := range paths {
		data, _ := os.ReadFile(p)
		if err := dec.Decode(data, nil, pixels[i*32*32*3:(i+1)*32*32*3]); err != nil {
			t.Fatal(err)
		}
	}
	want, err := h.graph.ExtractFeatures(h.sess, pixels, n, 32, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d features from the devices, %d from fed pixels", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("feature %d: %v decoded on the device, %v decoded in the client", i, got[i], want[i])
		}
	}
	labels := []int64{0, 1, 2, 3, 0}
	pd, ld, err := h.graph.EvaluateSlices(h.sess, tfops.Batch{Device: db, Labels: labels}, 2)
	if err != nil {
		t.Fatal(err)
	}
	pf, lf, err := h.graph.EvaluateSlices(h.sess, tfops.Batch{Images: pixels, ImageSize: 32, Labels: labels}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if ld != lf || len(pd) != len(pf) {
		t.Fatalf("device batch loss %v (%d probs), fed pixels %v (%d)", ld, len(pd), lf, len(pf))
	}
	for i := range pd {
		if pd[i] != pf[i] {
			t.Fatalf("prob %d: %v device, %v fed", i, pd[i], pf[i])
		}
	}
}

// TestDeviceBatchDropsBadImages: a corrupt image fails its Decode alone (ErrDecode), a
// file the device cannot read fails with ErrDeviceRead, and after Keep the batch is the
// survivors: its step gives the loss of those images fed as pixels (any cut of a batch
// gives the same update), and an all-failed run of a micro-batched batch is skipped.
func TestDeviceBatchDropsBadImages(t *testing.T) {
	const n = 6
	h := newDeviceInputHarness(t, 8, 2, tfops.Augment{})
	paths := writeImages(t, n)
	bad := filepath.Join(filepath.Dir(paths[0]), "bad.jpg")
	os.WriteFile(bad, fixtures.CorruptJPEGHeader(fixtures.JPEG(fixtures.Quadrants(40, 32))), 0o644)
	imgs := make([]tfops.EncodedImage, n)
	for i, p := range paths {
		imgs[i] = encoded(t, p)
	}
	imgs[1] = tfops.EncodedImage{Path: bad}
	imgs[4] = tfops.EncodedImage{Path: filepath.Join(filepath.Dir(paths[0]), "missing.jpg")}
	db, err := h.in.NewBatch(0, n)
	if err != nil {
		t.Fatal(err)
	}
	ok := make([]bool, n)
	for i, img := range imgs {
		err := db.Decode(h.sess, i, img)
		switch i {
		case 1:
			if !errors.Is(err, tfops.ErrDecode) {
				t.Fatalf("corrupt image: %v, want ErrDecode", err)
			}
		case 4:
			if !errors.Is(err, tfops.ErrDeviceRead) || !strings.Contains(err.Error(), "missing.jpg") {
				t.Fatalf("missing file: %v, want ErrDeviceRead naming it", err)
			}
		default:
			if err != nil {
				t.Fatalf("image %d: %v", i, err)
			}
			ok[i] = true
		}
	}
	if err := db.Keep(ok); err != nil || db.Len() != 4 {
		t.Fatalf("Keep: %v, %d rows left; want 4", err, db.Len())
	}
	if err := db.Keep(ok); err == nil {
		t.Fatal("a second Keep was accepted")
	}
	dec, err := tfops.NewImageDecoder(32, tfops.ResizeSquash, tfops.Augment{}, tfops.SessionConfig{}, pipeline.DecodeHints)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var pixels []float32
	for i, p := range paths {
		if ok[i] {
			data, _ := os.ReadFile(p)
			px := make([]float32, 32*32*3)
			if err := dec.Decode(data, nil, px); err != nil {
				t.Fatal(err)
			}
			pixels = append(pixels, px...)
		}
	}
	labels := []int64{0, 2, 3, 1}
	_, ld, err := h.graph.EvaluateSlices(h.sess, tfops.Batch{Device: db, Labels: labels}, 2)
	if err != nil {
		t.Fatal(err)
	}
	_, lf, err := h.graph.EvaluateSlices(h.sess, tfops.Batch{Images: pixels, ImageSize: 32, Labels: labels}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(ld-lf) > 1e-6*math.Abs(lf) {
		t.Fatalf("survivors' loss %v on the devices, %v fed", ld, lf)
	}
	step := tfops.StepOptions{LR: 1e-2, MicroBatch: 2}
	if _, _, err := h.graph.TrainStep(h.sess, tfops.Batch{Device: db, Labels: labels}, step); err != nil {
		t.Fatalf("train step on the survivors: %v", err)
	}
	// A batch whose every image failed decodes to nothing.
	db2, _ := h.in.NewBatch(2, 2)
	if err := db2.Decode(h.sess, 0, tfops.EncodedImage{Path: bad}); !errors.Is(err, tfops.ErrDecode) {
		t.Fatalf("corrupt image: %v", err)
	}
	if err := db2.Keep([]bool{false, false}); err != nil || db2.Len() != 0 {
		t.Fatalf("Keep nothing: %v, %d rows", err, db2.Len())
	}
	if _, err := h.in.NewBatch(4, 2); err == nil {
		t.Fatal("bank 4 of 4 was accepted")
	}
	if _, err := h.in.NewBatch(0, 9); err == nil {
		t.Fatal("a batch over BatchSize was accepted")
	}
	if err := h.in.CheckRead(h.sess, 1, paths[0]); err != nil {
		t.Fatalf("CheckRead of a file the device sees: %v", err)
	}
	if err := h.in.CheckRead(h.sess, 1, imgs[4].Path); !errors.Is(err, tfops.ErrDeviceRead) {
		t.Fatalf("CheckRead of a missing file: %v", err)
	}
}
