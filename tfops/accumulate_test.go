package tfops_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/tfflowers/tfflowers/internal/tftest"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

// weightGap is the largest |got-full| over the variables, the largest |full-init| (how
// far the full-batch run moved the weights) and ||got-full|| / ||full-init||, so a
// tolerance can be stated relative to the update itself.
func weightGap(t *testing.T, read func(string) []float32, names []string, init, full map[string][]float32) (gap, moved, rel float64) {
	t.Helper()
	var d2, m2 float64
	for _, name := range names {
		got := read(name)
		for i := range got {
			d, m := float64(got[i]-full[name][i]), float64(full[name][i]-init[name][i])
			gap, moved = math.Max(gap, math.Abs(d)), math.Max(moved, math.Abs(m))
			d2, m2 = d2+d*d, m2+m*m
		}
	}
	return gap, moved, math.Sqrt(d2 / m2)
}

// TestMicroBatchesGiveTheFullBatchUpdate trains the head with dropout for a few steps on
// the whole batch and again as micro-batches of 4 (4+2 rows) and of 1: the losses, the
// numbers correct and the weights must agree. The gradients differ only by float
// summation order (relative 1e-7); Adam divides by sqrt(v), so an element whose
// gradient is itself at rounding level may move by up to a few lr. With lr 0.01 and
// 3 steps, a gap of 1e-4 is a hundredth of one step, far below what any slicing error
// (a wrong scale, a different dropout mask) gives: those move weights by ~lr.
func TestMicroBatchesGiveTheFullBatchUpdate(t *testing.T) {
	names := []string{"dense/kernel", "dense/bias", "adam/dense/kernel/m", "adam/dense/kernel/v"}
	run := func(micro int) (*headHarness, []float64, []int) {
		h := newHeadHarness(t, tfops.HeadFlatten, 0.1)
		var losses []float64
		var correct []int
		for step := 0; step < 3; step++ {
			l, c, err := h.graph.TrainStep(h.sess, h.batch, tfops.StepOptions{LR: 0.01, Dropout: 0.5, Seed: [2]int64{9, int64(step)}, MicroBatch: micro})
			if err != nil {
				t.Fatal(err)
			}
			losses, correct = append(losses, l), append(correct, c)
		}
		return h, losses, correct
	}
	init := map[string][]float32{}
	h0 := newHeadHarness(t, tfops.HeadFlatten, 0.1)
	for _, n := range names {
		init[n], _ = h0.graph.ReadVariable(h0.sess, n)
	}
	full, fullLoss, fullCorrect := run(0)
	want := map[string][]float32{}
	for _, n := range names {
		want[n], _ = full.graph.ReadVariable(full.sess, n)
	}
	for _, micro := range []int{4, 1} {
		h, losses, correct := run(micro)
		for i := range losses {
			if math.Abs(losses[i]-fullLoss[i]) > 1e-5*math.Abs(fullLoss[i]) || correct[i] != fullCorrect[i] {
				t.Fatalf("micro-batch %d step %d: loss %.7f correct %d, full batch %.7f correct %d", micro, i, losses[i], correct[i], fullLoss[i], fullCorrect[i])
			}
		}
		read := func(n string) []float32 { v, _ := h.graph.ReadVariable(h.sess, n); return v }
		gap, moved, rel := weightGap(t, read, names[:2], init, want)
		t.Logf("micro-batch %d: largest weight gap to the full batch %.2g (full batch moved weights by up to %.2g; relative L2 %.2g)", micro, gap, moved, rel)
		if gap > 1e-4 || moved < 0.01 {
			t.Fatalf("micro-batch %d: weights differ from the full batch by %.3g (tolerance 1e-4; full batch moved them %.3g)", micro, gap, moved)
		}
	}
}

// TestMicroBatchFineTuneMatchesFullBatch runs two fine-tune steps through the ImageNet
// MobileNetV2 (from block_16, 64 px, 6 images) on the whole batch and as micro-batches
// of 2, from the same checkpoint, and compares every trained backbone and head weight.
// Tolerance: lr 1e-4, two steps; Adam's first steps move each weight by ~lr whatever the
// gradient's size, so an element whose gradient is at rounding level (the backbone's
// backward pass sums 6 rows in another order) can move differently by a fraction of lr.
// Measured: largest gap 1.2e-6 (1 % of a step), relative L2 gap 3e-5. Asserted: the
// relative L2 gap of the update <= 1e-3 and no weight off by more than 0.1 lr; any
// real difference in the update (scale, masks, which rows) is ~lr on most weights.
func TestMicroBatchFineTuneMatchesFullBatch(t *testing.T) {
	base, err := savedmodel.LoadBase(tftest.ImageNetBase(t), tfops.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	ft, err := base.FineTuneVariables("block_16")
	if err != nil {
		t.Fatal(err)
	}
	tg, err := tfops.BuildTrainGraph(base.Session.Graph(), base.Input, base.Features, tfops.HeadConfig{
		Kind: tfops.HeadGAP, NumClasses: 3, Dropout: 0.3, Seed: 3, FineTune: ft, BackboneScope: savedmodel.BackboneScope,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Initialize(base.Session); err != nil {
		t.Fatal(err)
	}
	const size, n = 64, 6
	rng := rand.New(rand.NewPCG(5, 6))
	b := tfops.Batch{Images: make([]float32, n*size*size*3), ImageSize: size, Labels: []int64{0, 1, 2, 0, 1, 2}}
	for i := range b.Images {
		b.Images[i] = float32(rng.Float64()*2 - 1)
	}
	prefix := filepath.Join(t.TempDir(), "start")
	if err := tg.Save(base.Session, prefix); err != nil {
		t.Fatal(err)
	}
	names := append([]string{"dense/kernel", "dense/bias"}, ft...)
	snapshot := func() map[string][]float32 {
		m := map[string][]float32{}
		for _, name := range names {
			if m[name], err = tg.ReadVariable(base.Session, name); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	init := snapshot()
	steps := func(micro int) []float64 {
		if err := tg.Restore(base.Session, prefix); err != nil {
			t.Fatal(err)
		}
		var losses []float64
		for step := 0; step < 2; step++ {
			l, _, err := tg.TrainStep(base.Session, b, tfops.StepOptions{LR: 1e-4, Dropout: 0.3, Seed: [2]int64{1, int64(step)}, FineTune: true, MicroBatch: micro})
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, l)
		}
		return losses
	}
	fullLoss := steps(0)
	full := snapshot()
	microLoss := steps(2)
	for i := range fullLoss {
		if math.Abs(microLoss[i]-fullLoss[i]) > 1e-5*math.Abs(fullLoss[i]) {
			t.Fatalf("step %d: micro-batch loss %.7f, full batch %.7f", i, microLoss[i], fullLoss[i])
		}
	}
	read := func(name string) []float32 { v, _ := tg.ReadVariable(base.Session, name); return v }
	gap, moved, rel := weightGap(t, read, names, init, full)
	t.Logf("%d variables: micro-batch 2 vs full batch: largest gap %.2g, relative L2 gap of the update %.2g (full batch moved weights by up to %.2g)", len(names), gap, rel, moved)
	if rel > 1e-3 || gap > 1e-5 || moved < 1e-4 {
		t.Fatalf("micro-batches differ from the full batch: relative L2 %.3g (tolerance 1e-3), largest %.3g (tolerance 1e-5); the full batch moved weights %.3g", rel, gap, moved)
	}
}
