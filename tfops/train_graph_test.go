package tfops_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"

	"github.com/tfflowers/tfflowers/tfops"
)

// headHarness is a training graph over a placeholder "backbone" of shape [B,2,2,3], so
// the head, loss, gradients and Adam can be checked in isolation against formulas.
type headHarness struct {
	sess  *tfops.Session
	graph *tfops.TrainGraph
	batch tfops.Batch
}

func newHeadHarness(t *testing.T, kind string, smoothing float64) *headHarness {
	t.Helper()
	g := tf.NewGraph()
	s := op.NewScopeWithGraph(g)
	feats := op.Placeholder(s.SubScope("features"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, 2, 2, 3)))
	if s.Err() != nil {
		t.Fatal(s.Err())
	}
	tg, err := tfops.BuildTrainGraph(g, feats, feats, tfops.HeadConfig{Kind: kind, NumClasses: 4, LabelSmoothing: smoothing, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := tfops.NewSession(g, tfops.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	if err := tg.Initialize(sess); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 6
	b := tfops.Batch{Features: make([]float32, n*12), FeatShape: []int64{2, 2, 3}, Labels: make([]int64, n)}
	for i := range b.Features {
		b.Features[i] = float32(rng.NormFloat64())
	}
	for i := range b.Labels {
		b.Labels[i] = int64(i % 4)
	}
	return &headHarness{sess: sess, graph: tg, batch: b}
}

func (h *headHarness) loss(t *testing.T) float64 {
	t.Helper()
	_, l, err := h.graph.Evaluate(h.sess, h.batch)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestHeadGradientsMatchFiniteDifferences(t *testing.T) {
	for _, kind := range []string{tfops.HeadGAP, tfops.HeadFlatten} {
		t.Run(kind, func(t *testing.T) {
			h := newHeadHarness(t, kind, 0.1)
			grads, err := h.graph.Gradients(h.sess, h.batch)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"dense/kernel", "dense/bias"} {
				w, err := h.graph.ReadVariable(h.sess, name)
				if err != nil {
					t.Fatal(err)
				}
				g := grads[name]
				if len(g) != len(w) {
					t.Fatalf("%s: gradient has %d values, variable %d", name, len(g), len(w))
				}
				const eps = 1e-2
				worst := 0.0
				for i := range w {
					orig := w[i]
					w[i] = orig + eps
					h.graph.AssignVariable(h.sess, name, w)
					lp := h.loss(t)
					w[i] = orig - eps
					h.graph.AssignVariable(h.sess, name, w)
					lm := h.loss(t)
					w[i] = orig
					numeric := (lp - lm) / (2 * eps)
					diff := math.Abs(numeric-float64(g[i])) / math.Max(1e-2, math.Abs(numeric)+math.Abs(float64(g[i])))
					worst = math.Max(worst, diff)
				}
				if err := h.graph.AssignVariable(h.sess, name, w); err != nil {
					t.Fatal(err)
				}
				t.Logf("%s %s: worst relative difference analytic vs finite differences %.2g", kind, name, worst)
				if worst > 2e-2 {
					t.Fatalf("%s: gradient differs from finite differences (relative %.3g)", name, worst)
				}
			}
		})
	}
}

func TestAdamStepMatchesFormula(t *testing.T) {
	h := newHeadHarness(t, tfops.HeadGAP, 0)
	const lr = 0.01
	b1, b2, eps := tfops.DefaultAdam.Beta1, tfops.DefaultAdam.Beta2, tfops.DefaultAdam.Epsilon
	w, _ := h.graph.ReadVariable(h.sess, "dense/kernel")
	m := make([]float64, len(w))
	v := make([]float64, len(w))
	for step := 1; step <= 3; step++ {
		grads, err := h.graph.Gradients(h.sess, h.batch)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.graph.TrainStep(h.sess, h.batch, tfops.StepOptions{LR: lr}); err != nil {
			t.Fatal(err)
		}
		got, _ := h.graph.ReadVariable(h.sess, "dense/kernel")
		lrT := lr * math.Sqrt(1-math.Pow(b2, float64(step))) / (1 - math.Pow(b1, float64(step)))
		for i, g := range grads["dense/kernel"] {
			m[i] = b1*m[i] + (1-b1)*float64(g)
			v[i] = b2*v[i] + (1-b2)*float64(g)*float64(g)
			want := float64(w[i]) - lrT*m[i]/(math.Sqrt(v[i])+eps)
			if d := math.Abs(float64(got[i]) - want); d > 1e-5 {
				t.Fatalf("step %d kernel[%d] = %.7f, Adam formula gives %.7f", step, i, got[i], want)
			}
		}
		w = got
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	h := newHeadHarness(t, tfops.HeadGAP, 0)
	prefix := filepath.Join(t.TempDir(), "ckpt")
	before, _ := h.graph.ReadVariable(h.sess, "dense/kernel")
	if err := h.graph.Save(h.sess, prefix); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.graph.TrainStep(h.sess, h.batch, tfops.StepOptions{LR: 0.1}); err != nil {
		t.Fatal(err)
	}
	moved, _ := h.graph.ReadVariable(h.sess, "dense/kernel")
	if moved[0] == before[0] {
		t.Fatal("a train step did not change the kernel")
	}
	if err := h.graph.Restore(h.sess, prefix); err != nil {
		t.Fatal(err)
	}
	after, _ := h.graph.ReadVariable(h.sess, "dense/kernel")
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("restored kernel[%d] = %v, saved %v", i, after[i], before[i])
		}
	}
	if step, _ := h.graph.ReadVariable(h.sess, "adam/step"); step[0] != 0 {
		t.Fatalf("restored adam step = %v, want 0", step[0])
	}
	if err := h.graph.Restore(h.sess, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("restoring a missing checkpoint succeeded")
	}
}

func TestTrainingReducesLoss(t *testing.T) {
	h := newHeadHarness(t, tfops.HeadFlatten, 0)
	first := h.loss(t)
	for i := 0; i < 50; i++ {
		if _, _, err := h.graph.TrainStep(h.sess, h.batch, tfops.StepOptions{LR: 0.05, Dropout: 0.2, Seed: [2]int64{1, int64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if last := h.loss(t); !(last < first/4) {
		t.Fatalf("loss went from %.4f to %.4f after 50 steps on 6 examples; want at least 4x lower", first, last)
	}
}

func TestBuildTrainGraphRejectsBadConfig(t *testing.T) {
	// Each case builds in a graph of its own: sharing one made every case after the
	// first fail on a name collision, whatever its config, and the cases ran in map order.
	type input func(s *op.Scope) tf.Output
	feats := func(s *op.Scope) tf.Output {
		return op.Placeholder(s.SubScope("features"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, 2, 2, 3)))
	}
	pooled := func(s *op.Scope) tf.Output { // what the cache feeds the gap and multi heads
		return op.Placeholder(s.SubScope("pooled"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, 3)))
	}
	rank3 := func(s *op.Scope) tf.Output {
		return op.Placeholder(s.SubScope("rank3"), tf.Float, op.PlaceholderShape(tf.MakeShape(-1, 2, 3)))
	}
	cases := map[string]struct {
		in  input
		cfg tfops.HeadConfig
	}{
		"one class":             {feats, tfops.HeadConfig{Kind: tfops.HeadGAP, NumClasses: 1}},
		"unknown head":          {feats, tfops.HeadConfig{Kind: "mlp", NumClasses: 3}},
		"dropout 1":             {feats, tfops.HeadConfig{Kind: tfops.HeadGAP, NumClasses: 3, Dropout: 1}},
		"pooled input, flatten": {pooled, tfops.HeadConfig{Kind: tfops.HeadFlatten, NumClasses: 3}},
		"rank 3 input":          {rank3, tfops.HeadConfig{Kind: tfops.HeadGAP, NumClasses: 3}},
		"unknown layer":         {feats, tfops.HeadConfig{Kind: tfops.HeadGAP, NumClasses: 3, FineTune: []string{"block_99/kernel"}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := tf.NewGraph()
			in := tc.in(op.NewScopeWithGraph(g))
			if _, err := tfops.BuildTrainGraph(g, in, in, tc.cfg); err == nil {
				t.Fatal("BuildTrainGraph accepted a bad config")
			}
		})
	}
	// The same graph builds once the config is good, so the refusals above are the config's.
	g := tf.NewGraph()
	in := pooled(op.NewScopeWithGraph(g))
	if _, err := tfops.BuildTrainGraph(g, in, in, tfops.HeadConfig{Kind: tfops.HeadGAP, NumClasses: 3}); err != nil {
		t.Fatalf("a pooled input with the gap head: %v", err)
	}
}
