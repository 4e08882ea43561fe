package tfops

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// Gradient accumulation: a batch runs as slices, and one Adam update applies the sum of
// their gradients. Each slice of n rows out of N feeds GradScale = n/N, so the sum of
// d(mean loss of the slice)/dw * n/N is d(mean loss of the batch)/dw: the update of the
// whole batch, up to float summation order. Nothing else in a step depends on how the
// batch is cut: dropout masks are drawn for the whole batch (RowOffset/BatchRows),
// augmentation is seeded per image, and the backbone's BatchNorm runs in inference mode.
//
// The first slice assigns its gradients to the accumulators, middle slices add theirs,
// and the last slice's run adds its own and applies the update, so an interrupted batch
// leaves nothing behind and a batch of two slices costs two runs.

// accumulation holds the accumulators and the ops of one phase each (frozen: head only;
// fine-tune: head and backbone variables).
type accumulation struct {
	head, all phaseAccumulation
}

type phaseAccumulation struct {
	start, add, apply *tf.Operation
}

// buildAccumulation adds one accumulator per trained variable and the start/add/apply ops.
func (t *TrainGraph) buildAccumulation(s *op.Scope, headVars []*Variable) error {
	scaled := make([]tf.Output, len(t.grads))
	accs := make([]*Variable, len(t.trained))
	for i, v := range t.trained {
		scaled[i] = op.Mul(s.SubScope("scaled"), t.grads[i], t.GradScale)
		accs[i] = newVariable(s, "accumulator/"+v.Name, v.Shape, false, zerosInit)
	}
	// The accumulators need no initializer and no checkpoint: a batch's first slice assigns
	// them, and checkpoints are taken between batches.
	build := func(ps *op.Scope, n int, opt *adam) (phaseAccumulation, error) {
		var starts, adds []*tf.Operation
		totals := make([]tf.Output, n)
		for i := 0; i < n; i++ {
			starts = append(starts, op.AssignVariableOp(ps.SubScope("start"), accs[i].Handle, scaled[i]))
			adds = append(adds, op.AssignAddVariableOp(ps.SubScope("add"), accs[i].Handle, scaled[i]))
			// A fresh read: accs[i].Read is shared with the checkpoint path.
			totals[i] = op.Add(ps.SubScope("total"), op.ReadVariableOp(ps.SubScope("read"), accs[i].Handle, tf.Float), scaled[i])
		}
		apply, err := opt.update(ps.SubScope("apply"), totals)
		if err != nil {
			return phaseAccumulation{}, err
		}
		return phaseAccumulation{start: op.NoOp(ps.WithControlDependencies(starts...).SubScope("start_all")),
			add: op.NoOp(ps.WithControlDependencies(adds...).SubScope("add_all")), apply: apply}, nil
	}
	a := &accumulation{}
	var err error
	if a.head, err = build(s.SubScope("frozen"), len(headVars), t.headOpt); err != nil {
		return err
	}
	if t.ftOpt != nil {
		if a.all, err = build(s.SubScope("fine_tune"), len(t.trained), t.ftOpt); err != nil {
			return err
		}
	}
	t.acc = a
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

// accumulatedStep runs b as slices of at most o.MicroBatch rows and applies one update.
// The loss and number correct are those of the whole batch.
func (t *TrainGraph) accumulatedStep(sess *Session, b Batch, o StepOptions) (loss float64, correct int, err error) {
	phase := t.acc.head
	if o.FineTune {
		if t.FineTune == nil {
			return 0, 0, fmt.Errorf("tfops: fine-tune step requested but no backbone variables are trainable")
		}
		if b.Images == nil {
			return 0, 0, fmt.Errorf("tfops: fine-tune steps need images, not cached features")
		}
		phase = t.acc.all
	}
	n := len(b.Labels)
	lr, _ := tf.NewTensor(float32(o.LR))
	rate, _ := tf.NewTensor(float32(o.Dropout))
	seed, _ := tf.NewTensor(o.Seed[:])
	rows, _ := tf.NewTensor(int32(n))
	var lossSum float64
	for lo := 0; lo < n; lo += o.MicroBatch {
		hi := min(lo+o.MicroBatch, n)
		feeds, err := t.feeds(b.slice(lo, hi))
		if err != nil {
			return 0, 0, err
		}
		offset, _ := tf.NewTensor(int32(lo))
		scale, _ := tf.NewTensor(float32(hi-lo) / float32(n))
		feeds[t.LR], feeds[t.Dropout], feeds[t.DropSeed] = lr, rate, seed
		feeds[t.BatchRows], feeds[t.RowOffset], feeds[t.GradScale] = rows, offset, scale
		target := phase.add
		switch {
		case lo == 0:
			target = phase.start
		case hi == n:
			target = phase.apply
		}
		out, err := sess.Run(fmt.Sprintf("train step (rows %d-%d of %d)", lo, hi, n), feeds, []tf.Output{t.Loss, t.Correct}, []*tf.Operation{target})
		if err != nil {
			return 0, 0, err
		}
		l, err := Scalar(out[0])
		if err != nil {
			return 0, 0, err
		}
		c, err := Scalar(out[1])
		if err != nil {
			return 0, 0, err
		}
		lossSum += float64(l) * float64(hi-lo)
		correct += int(c)
	}
	return lossSum / float64(n), correct, nil
}

// EvaluateSlices is Evaluate run on slices of at most micro rows (0: the whole batch), so
// evaluation keeps within the memory that training with micro-batches uses.
func (t *TrainGraph) EvaluateSlices(sess *Session, b Batch, micro int) (probs []float32, loss float64, err error) {
	n := len(b.Labels)
	if micro <= 0 || n <= micro {
		return t.Evaluate(sess, b)
	}
	probs = make([]float32, 0, n*t.cfg.NumClasses)
	for lo := 0; lo < n; lo += micro {
		hi := min(lo+micro, n)
		p, l, err := t.Evaluate(sess, b.slice(lo, hi))
		if err != nil {
			return nil, 0, err
		}
		probs = append(probs, p...)
		loss += l * float64(hi-lo)
	}
	return probs, loss / float64(n), nil
}
