package tfops

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// Gradient accumulation and replicas: a batch runs as slices, over one or more towers
// (replicas.go) and one or more runs (micro-batches), and one Adam update applies the sum
// of their gradients. Each slice of n rows out of N feeds its tower's GradScale = n/N, so
// the sum of d(mean loss of the slice)/dw * n/N is d(mean loss of the batch)/dw: the update
// of the whole batch, up to float summation order. Nothing else in a step depends on how
// the batch is cut: dropout masks are drawn for the whole batch (RowOffset/BatchRows),
// augmentation is seeded per image, and the backbone's BatchNorm runs in inference mode.
//
// A batch's first run assigns its gradients to the accumulators, middle runs add theirs,
// and the last run adds its own and applies the update; a batch of one run applies its
// gradients directly. An interrupted batch leaves nothing behind.

// phaseOps are the update ops of one phase (frozen: head only; fine-tune: head and
// backbone variables).
type phaseOps struct {
	start, add, apply, direct *tf.Operation
}

// accumulation holds the accumulators and the ops of both phases.
type accumulation struct {
	accs      []*Variable // one per trained variable; no initializer, no checkpoint: each batch's first run assigns them
	head, all phaseOps
}

// buildAccumulation adds one accumulator per trained variable and the update ops.
func (t *TrainGraph) buildAccumulation(s *op.Scope) error {
	t.acc = &accumulation{}
	for _, v := range t.trained {
		t.acc.accs = append(t.acc.accs, newVariable(s, "accumulator/"+v.Name, v.Shape, false, zerosInit))
	}
	return t.buildPhases(s)
}

// buildPhases (re)builds the update ops over the current towers.
func (t *TrainGraph) buildPhases(s *op.Scope) error {
	// summed[i] is the gradient of variable i over every tower, each weighted by its share.
	summed := make([]tf.Output, len(t.trained))
	for i := range t.trained {
		var parts []tf.Output
		for _, tw := range t.towers {
			parts = append(parts, op.Mul(s.SubScope("scaled"), tw.grads[i], tw.gradScale))
		}
		summed[i] = parts[0]
		if len(parts) > 1 {
			summed[i] = op.AddN(s.SubScope("sum_towers"), parts)
		}
	}
	build := func(ps *op.Scope, n int, opt *adam, direct *tf.Operation) (phaseOps, error) {
		var starts, adds []*tf.Operation
		totals := make([]tf.Output, n)
		for i := 0; i < n; i++ {
			acc := t.acc.accs[i]
			starts = append(starts, op.AssignVariableOp(ps.SubScope("start"), acc.Handle, summed[i]))
			adds = append(adds, op.AssignAddVariableOp(ps.SubScope("add"), acc.Handle, summed[i]))
			totals[i] = op.Add(ps.SubScope("total"), op.ReadVariableOp(ps.SubScope("read"), acc.Handle, tf.Float), summed[i])
		}
		apply, err := opt.update(ps.SubScope("apply"), totals)
		if err != nil {
			return phaseOps{}, err
		}
		if direct == nil { // several towers: the direct update also sums them
			if direct, err = opt.update(ps.SubScope("direct"), summed[:n]); err != nil {
				return phaseOps{}, err
			}
		}
		return phaseOps{start: op.NoOp(ps.WithControlDependencies(starts...).SubScope("start_all")),
			add: op.NoOp(ps.WithControlDependencies(adds...).SubScope("add_all")), apply: apply, direct: direct}, nil
	}
	headDirect, ftDirect := t.Train, t.FineTune
	if len(t.towers) > 1 {
		headDirect, ftDirect = nil, nil
	}
	var err error
	if t.acc.head, err = build(s.SubScope("frozen"), len(t.headOpt.vars), t.headOpt, headDirect); err != nil {
		return err
	}
	if t.ftOpt != nil {
		if t.acc.all, err = build(s.SubScope("fine_tune"), len(t.trained), t.ftOpt, ftDirect); err != nil {
			return err
		}
	}
	if s.Err() != nil {
		return &GraphError{Step: "build gradient accumulation", Err: s.Err()}
	}
	return nil
}

// slice returns rows [lo, hi) of b, sharing its buffers.
func (b Batch) slice(lo, hi int) Batch {
	out := b
	out.Labels = b.Labels[lo:hi]
	if b.Images != nil {
		per := b.ImageSize * b.ImageSize * 3
		out.Images = b.Images[lo*per : hi*per]
		out.Features = nil
		return out
	}
	per := 1
	for _, d := range b.FeatShape {
		per *= int(d)
	}
	out.Features = b.Features[lo*per : hi*per]
	return out
}

// towerSlice is the rows [lo, hi) of a batch that one tower runs; pad marks a tower that
// has no rows in this run and repeats one with a zero weight (a tower cannot run empty:
// the mean loss of no rows is NaN, and NaN*0 is NaN).
type towerSlice struct {
	lo, hi int
	pad    bool
	slots  []int32 // device batches: where the rows' images sit in the tower's bank
}

// plan cuts n rows into runs of at most micro rows per tower (micro 0: one run).
func (t *TrainGraph) plan(n, micro int) [][]towerSlice { return planRuns(n, micro, len(t.towers)) }

// runs is b's cut into runs and towers: a device batch's own, else plan's.
func (t *TrainGraph) runs(b Batch, micro int) [][]towerSlice {
	if b.Device != nil {
		return b.Device.runs
	}
	return t.plan(len(b.Labels), micro)
}

// planRuns cuts n rows into runs of at most micro rows for each of nt towers.
func planRuns(n, micro, nt int) [][]towerSlice {
	if micro <= 0 {
		micro = (n + nt - 1) / nt
	}
	var runs [][]towerSlice
	for lo := 0; lo < n; lo += micro * nt {
		hi := min(lo+micro*nt, n)
		per := (hi - lo + nt - 1) / nt
		run := make([]towerSlice, nt)
		for k := range run {
			a, b := min(lo+k*per, hi), min(lo+(k+1)*per, hi)
			if a == b {
				run[k] = towerSlice{lo: lo, hi: lo + 1, pad: true}
				continue
			}
			run[k] = towerSlice{lo: a, hi: b}
		}
		runs = append(runs, run)
	}
	return runs
}

// towerFeeds adds tower tw's inputs for rows sl of b (n rows in all).
func (t *TrainGraph) towerFeeds(feeds map[tf.Output]*tf.Tensor, tw tower, b Batch, sl towerSlice, n int) error {
	if b.Device != nil {
		// The images are on the tower's device already: feed where they sit.
		labels, err := Int64Tensor(b.Labels[sl.lo:sl.hi], int64(sl.hi-sl.lo))
		if err != nil {
			return err
		}
		idx, err := tf.NewTensor(sl.slots)
		if err != nil {
			return err
		}
		feeds[tw.labels], feeds[t.devIn.inputs[tw.index].index] = labels, idx
	} else {
		part, err := t.feedsFor(tw, b.slice(sl.lo, sl.hi))
		if err != nil {
			return err
		}
		for k, v := range part {
			feeds[k] = v
		}
	}
	weight := float32(sl.hi-sl.lo) / float32(n)
	if sl.pad {
		weight = 0
	}
	offset, _ := tf.NewTensor(int32(sl.lo))
	rows, _ := tf.NewTensor(int32(n))
	scale, _ := tf.NewTensor(weight)
	feeds[tw.rowOffset], feeds[tw.batchRows], feeds[tw.gradScale] = offset, rows, scale
	return nil
}

// slicedStep runs b over the towers in runs of at most o.MicroBatch rows per tower and
// applies one update. The loss and number correct are those of the whole batch.
func (t *TrainGraph) slicedStep(sess *Session, b Batch, o StepOptions) (loss float64, correct int, err error) {
	phase := t.acc.head
	if o.FineTune {
		if t.FineTune == nil {
			return 0, 0, fmt.Errorf("tfops: fine-tune step requested but no backbone variables are trainable")
		}
		if b.Images == nil && b.Device == nil {
			return 0, 0, fmt.Errorf("tfops: fine-tune steps need images, not cached features")
		}
		phase = t.acc.all
	}
	n := len(b.Labels)
	lr, _ := tf.NewTensor(float32(o.LR))
	rate, _ := tf.NewTensor(float32(o.Dropout))
	seed, _ := tf.NewTensor(o.Seed[:])
	runs := t.runs(b, o.MicroBatch)
	var lossSum float64
	for r, run := range runs {
		feeds := map[tf.Output]*tf.Tensor{t.LR: lr, t.Dropout: rate, t.DropSeed: seed}
		var fetches []tf.Output
		for k, sl := range run {
			if err := t.towerFeeds(feeds, t.towers[k], b, sl, n); err != nil {
				return 0, 0, err
			}
			fetches = append(fetches, t.towers[k].loss, t.towers[k].correct)
		}
		target := phase.add
		switch {
		case len(runs) == 1:
			target = phase.direct
		case r == 0:
			target = phase.start
		case r == len(runs)-1:
			target = phase.apply
		}
		out, err := sess.Run(fmt.Sprintf("train step (run %d of %d)", r+1, len(runs)), feeds, fetches, []*tf.Operation{target})
		if err != nil {
			return 0, 0, err
		}
		for k, sl := range run {
			if sl.pad {
				continue
			}
			l, err := Scalar(out[2*k])
			if err != nil {
				return 0, 0, err
			}
			c, err := Scalar(out[2*k+1])
			if err != nil {
				return 0, 0, err
			}
			lossSum += float64(l) * float64(sl.hi-sl.lo)
			correct += int(c)
		}
	}
	return lossSum / float64(n), correct, nil
}

// EvaluateSlices is Evaluate spread over the towers in runs of at most micro rows per
// tower (0: one run), so evaluation keeps within the memory that training uses.
func (t *TrainGraph) EvaluateSlices(sess *Session, b Batch, micro int) (probs []float32, loss float64, err error) {
	n := len(b.Labels)
	if len(t.towers) == 1 && (micro <= 0 || n <= micro) {
		return t.Evaluate(sess, b)
	}
	probs = make([]float32, 0, n*t.cfg.NumClasses)
	for _, run := range t.runs(b, micro) {
		feeds := map[tf.Output]*tf.Tensor{}
		var fetches []tf.Output
		for k, sl := range run {
			if err := t.towerFeeds(feeds, t.towers[k], b, sl, n); err != nil {
				return nil, 0, err
			}
			fetches = append(fetches, t.towers[k].probs, t.towers[k].loss)
		}
		out, err := sess.Run("evaluate", feeds, fetches, nil)
		if err != nil {
			return nil, 0, err
		}
		for k, sl := range run {
			if sl.pad {
				continue
			}
			p, err := Float32s(out[2*k])
			if err != nil {
				return nil, 0, err
			}
			l, err := Scalar(out[2*k+1])
			if err != nil {
				return nil, 0, err
			}
			probs = append(probs, p...)
			loss += float64(l) * float64(sl.hi-sl.lo)
		}
	}
	return probs, loss / float64(n), nil
}

// ExtractFeatures runs the backbone on n preprocessed images (n*size*size*3 floats),
// spread over the towers in runs of at most micro images per tower (0: one run), and
// returns n*h*w*C features.
func (t *TrainGraph) ExtractFeatures(sess *Session, images []float32, n, size, micro int) ([]float32, error) {
	b := Batch{Images: images, ImageSize: size, Labels: make([]int64, n)}
	var feats []float32
	for _, run := range t.plan(n, micro) {
		feeds := map[tf.Output]*tf.Tensor{}
		for k, sl := range run {
			part := b.slice(sl.lo, sl.hi)
			in, err := Float32Tensor(part.Images, int64(sl.hi-sl.lo), int64(size), int64(size), 3)
			if err != nil {
				return nil, err
			}
			feeds[t.towers[k].input] = in
		}
		var err error
		if feats, err = t.runFeatures(sess, run, feeds, feats); err != nil {
			return nil, err
		}
	}
	return feats, nil
}

// runFeatures runs one run's towers on feeds and appends the features of the slices that
// are not padding to feats, in tower order.
func (t *TrainGraph) runFeatures(sess *Session, run []towerSlice, feeds map[tf.Output]*tf.Tensor, feats []float32) ([]float32, error) {
	fetches := make([]tf.Output, len(run))
	for k := range run {
		fetches[k] = t.towers[k].features
	}
	out, err := sess.Run("extract features", feeds, fetches, nil)
	if err != nil {
		return nil, err
	}
	for k, sl := range run {
		if sl.pad {
			continue
		}
		f, err := Float32s(out[k])
		if err != nil {
			return nil, err
		}
		feats = append(feats, f...)
	}
	return feats, nil
}

// ExtractDeviceFeatures runs the backbone on a device batch's images where they were
// decoded and returns its rows' features (Len()*h*w*C), in row order.
func (t *TrainGraph) ExtractDeviceFeatures(sess *Session, b *DeviceBatch) ([]float32, error) {
	var feats []float32
	for _, run := range b.runs {
		feeds := map[tf.Output]*tf.Tensor{}
		for k, sl := range run {
			idx, err := tf.NewTensor(sl.slots)
			if err != nil {
				return nil, err
			}
			feeds[t.devIn.inputs[k].index] = idx
		}
		var err error
		if feats, err = t.runFeatures(sess, run, feeds, feats); err != nil {
			return nil, err
		}
	}
	return feats, nil
}
