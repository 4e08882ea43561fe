package tfops_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/tfflowers/tfflowers/internal/tftest"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

// TestReplicasRunOnTheirDevices checks that the session config exposes the logical CPU
// devices and that every replica's copy of the loss and gradients asks for its device.
func TestReplicasRunOnTheirDevices(t *testing.T) {
	devs, err := tfops.ListDevices(tfops.SessionConfig{CPUDevices: 3, CPUOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 3 {
		t.Fatalf("CPUDevices 3 gave devices %v", devs)
	}
	h := newReplicatedHarness(t, tfops.HeadGAP, 3)
	counts := map[string]int{}
	for _, o := range h.sess.Graph().Operations() {
		if strings.HasPrefix(o.Name(), "tfflowers/replica_") {
			counts[o.Device()]++
		}
	}
	for k := 0; k < 3; k++ {
		dev := fmt.Sprintf("/device:CPU:%d", k)
		if counts[dev] < 10 {
			t.Fatalf("replica %d: %d ops on %s (devices of replica ops: %v)", k, counts[dev], dev, counts)
		}
	}
	if len(counts) != 3 {
		t.Fatalf("replica ops ask for devices %v, want the 3 CPUs only", counts)
	}
}

// newReplicatedHarness is newHeadHarness with the head replicated on nDev logical CPUs.
func newReplicatedHarness(t *testing.T, kind string, nDev int) *headHarness {
	t.Helper()
	g := tf.NewGraph()
	s := op.NewScopeWithGraph(g)
	feats := op.Placeholder(s.SubScope("features"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, 2, 2, 3)))
	tg, err := tfops.BuildTrainGraph(g, feats, feats, tfops.HeadConfig{Kind: kind, NumClasses: 4, LabelSmoothing: 0.1, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	var devices []string
	for k := 0; k < nDev; k++ {
		devices = append(devices, fmt.Sprintf("/device:CPU:%d", k))
	}
	if err := tg.Replicate(g, devices); err != nil {
		t.Fatal(err)
	}
	sess, err := tfops.NewSession(g, tfops.SessionConfig{CPUDevices: nDev, CPUOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	if err := tg.Initialize(sess); err != nil {
		t.Fatal(err)
	}
	h := newHeadHarness(t, kind, 0.1) // the same batch
	return &headHarness{sess: sess, graph: tg, batch: h.batch}
}

// TestReplicasGiveTheOneDeviceUpdate trains the head with dropout for 3 steps on one
// device and replicated on 2 and 4 logical CPUs (6 rows: 3+3; 2+2+2+0 with a padded
// replica), with and without micro-batches, and compares losses and weights. Tolerance as
// for micro-batches (accumulate_test.go): only the summation order differs.
func TestReplicasGiveTheOneDeviceUpdate(t *testing.T) {
	train := func(h *headHarness, micro int) []float64 {
		var losses []float64
		for step := 0; step < 3; step++ {
			l, _, err := h.graph.TrainStep(h.sess, h.batch, tfops.StepOptions{LR: 0.01, Dropout: 0.5, Seed: [2]int64{9, int64(step)}, MicroBatch: micro})
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, l)
		}
		return losses
	}
	names := []string{"dense/kernel", "dense/bias"}
	one := newHeadHarness(t, tfops.HeadFlatten, 0.1)
	init := map[string][]float32{}
	for _, n := range names {
		init[n], _ = one.graph.ReadVariable(one.sess, n)
	}
	wantLoss := train(one, 0)
	want := map[string][]float32{}
	for _, n := range names {
		want[n], _ = one.graph.ReadVariable(one.sess, n)
	}
	for _, c := range []struct{ devices, micro int }{{2, 0}, {4, 0}, {2, 2}} {
		h := newReplicatedHarness(t, tfops.HeadFlatten, c.devices)
		if h.graph.Replicas() != c.devices {
			t.Fatalf("%d replicas, want %d", h.graph.Replicas(), c.devices)
		}
		losses := train(h, c.micro)
		for i := range losses {
			if math.Abs(losses[i]-wantLoss[i]) > 1e-5*math.Abs(wantLoss[i]) {
				t.Fatalf("%d devices, micro-batch %d, step %d: loss %.7f, one device %.7f", c.devices, c.micro, i, losses[i], wantLoss[i])
			}
		}
		read := func(n string) []float32 { v, _ := h.graph.ReadVariable(h.sess, n); return v }
		gap, moved, rel := weightGap(t, read, names, init, want)
		t.Logf("%d devices, micro-batch %d: largest weight gap to one device %.2g (moved %.2g, relative L2 %.2g)", c.devices, c.micro, gap, moved, rel)
		if gap > 1e-4 || moved < 0.01 {
			t.Fatalf("%d devices: weights differ from one device by %.3g (tolerance 1e-4)", c.devices, gap)
		}
		probs, loss, err := h.graph.EvaluateSlices(h.sess, h.batch, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantProbs, wantL, _ := one.graph.Evaluate(one.sess, one.batch)
		if len(probs) != len(wantProbs) || math.Abs(loss-wantL) > 1e-4 {
			t.Fatalf("%d devices: evaluate gave %d probabilities, loss %.6f; one device %d, %.6f", c.devices, len(probs), loss, len(wantProbs), wantL)
		}
	}
}

// TestReplicatedFineTuneMatchesOneDevice fine-tunes MobileNetV2 from block_16 for two
// steps at 64 px on 2 logical CPUs and on one, from the same weights, and compares every
// trained weight and the features extracted for the cache. Tolerance as for micro-batches
// (accumulate_test.go).
func TestReplicatedFineTuneMatchesOneDevice(t *testing.T) {
	const size, n = 64, 5
	rng := rand.New(rand.NewPCG(5, 6))
	b := tfops.Batch{Images: make([]float32, n*size*size*3), ImageSize: size, Labels: []int64{0, 1, 2, 0, 1}}
	for i := range b.Images {
		b.Images[i] = float32(rng.Float64()*2 - 1)
	}
	run := func(devices int) (map[string][]float32, []float64, []float32) {
		cfg := tfops.SessionConfig{CPUOnly: true, CPUDevices: devices}
		base, err := savedmodel.LoadBase(tftest.ImageNetBase(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer base.Close()
		ft, err := base.FineTuneVariables("block_16")
		if err != nil {
			t.Fatal(err)
		}
		g := base.Session.Graph()
		tg, err := tfops.BuildTrainGraph(g, base.Input, base.Features, tfops.HeadConfig{
			Kind: tfops.HeadGAP, NumClasses: 3, Dropout: 0.3, Seed: 3, FineTune: ft, BackboneScope: savedmodel.BackboneScope,
		})
		if err != nil {
			t.Fatal(err)
		}
		if devices > 1 {
			if err := tg.Replicate(g, []string{"/device:CPU:0", "/device:CPU:1"}); err != nil {
				t.Fatal(err)
			}
			checkLocalCopies(t, g, ft)
		}
		if err := tg.Initialize(base.Session); err != nil {
			t.Fatal(err)
		}
		feats, err := tg.ExtractFeatures(base.Session, b.Images, n, size, 0)
		if err != nil {
			t.Fatal(err)
		}
		var losses []float64
		for step := 0; step < 2; step++ {
			l, _, err := tg.TrainStep(base.Session, b, tfops.StepOptions{LR: 1e-4, Dropout: 0.3, Seed: [2]int64{1, int64(step)}, FineTune: true})
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, l)
		}
		w := map[string][]float32{}
		for _, name := range append([]string{"dense/kernel", "dense/bias"}, ft...) {
			if w[name], err = tg.ReadVariable(base.Session, name); err != nil {
				t.Fatal(err)
			}
		}
		return w, losses, feats
	}
	want, wantLoss, wantFeats := run(1)
	got, losses, feats := run(2)
	for i := range losses {
		if math.Abs(losses[i]-wantLoss[i]) > 1e-5*math.Abs(wantLoss[i]) {
			t.Fatalf("step %d: 2 devices loss %.7f, one device %.7f", i, losses[i], wantLoss[i])
		}
	}
	if len(feats) != len(wantFeats) {
		t.Fatalf("2 devices extracted %d features, one device %d", len(feats), len(wantFeats))
	}
	for i := range feats {
		if math.Abs(float64(feats[i]-wantFeats[i])) > 1e-4*(1+math.Abs(float64(wantFeats[i]))) {
			t.Fatalf("feature %d: 2 devices %v, one device %v", i, feats[i], wantFeats[i])
		}
	}
	var d2, w2, gap float64
	for name, w := range want {
		for i := range w {
			d := float64(got[name][i] - w[i])
			d2, w2, gap = d2+d*d, w2+float64(w[i])*float64(w[i]), math.Max(gap, math.Abs(d))
		}
	}
	t.Logf("%d variables: 2 devices vs one: largest gap %.2g, relative L2 gap of the weights %.2g", len(want), gap, math.Sqrt(d2/w2))
	if gap > 1e-5 {
		t.Fatalf("2 devices differ from one: largest weight gap %.3g (tolerance 1e-5, a tenth of one Adam step at lr 1e-4)", gap)
	}
}

// checkLocalCopies: each replica holds its own copy of every frozen backbone variable, on
// its device, and none of a trained one (those must stay shared: a copy would go stale
// after the first update).
func checkLocalCopies(t *testing.T, g *tf.Graph, trained []string) {
	t.Helper()
	copies := map[string]int{}
	for _, o := range g.Operations() {
		if o.Type() != "VarHandleOp" || !strings.HasPrefix(o.Name(), "tfflowers/replicas/local/") {
			continue
		}
		copies[o.Device()]++
		name, err := o.Attr("shared_name")
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range trained {
			if strings.HasSuffix(name.(string), v) {
				t.Fatalf("replica copy %s (%s) of a trained variable", o.Name(), name)
			}
		}
	}
	if copies["/device:CPU:0"] < 100 || copies["/device:CPU:1"] != copies["/device:CPU:0"] {
		t.Fatalf("replica copies of the frozen variables per device: %v (want the same 100+ on each)", copies)
	}
}
