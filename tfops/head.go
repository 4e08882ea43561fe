package tfops

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
	tg "github.com/galeone/tfgo"
)

// Head kinds.
const (
	HeadGAP     = "gap"     // global average pooling (default, what Keras recommends)
	HeadFlatten = "flatten" // the codelab's Flatten
)

// head is the classifier on top of the backbone features.
type head struct {
	kernel, bias *Variable
	logits       tf.Output
	probs        tf.Output
}

// buildHead adds dropout, dense and softmax on the head input: pooled features [B,D] (the
// gap and multi heads, pooled by HeadInput), or backbone features [B,h,w,C], pooled here
// (gap) or flattened (flatten).
// drop holds the dropout inputs; a zero drop.Rate Output leaves dropout out.
// featShape [h,w,C] fills in what the graph leaves unknown (a base with a dynamic input
// size): the caller knows it from the image size it feeds.
func buildHead(s *op.Scope, features tf.Output, featShape []int64, kind string, numClasses int, drop dropoutInputs) (*head, error) {
	var x tf.Output
	var dim int64
	switch rank := features.Shape().NumDimensions(); {
	case rank == 2 && (kind == HeadGAP || kind == HeadMulti):
		if dim = features.Shape().Size(1); dim < 0 {
			return nil, fmt.Errorf("%w: pooled feature width unknown in %v", ErrShape, features.Shape())
		}
		x = features
	case rank != 4:
		return nil, fmt.Errorf("%w: head %s: backbone features must be rank 4 [batch,h,w,channels] (or pooled [batch,d]), got %v", ErrShape, kind, features.Shape())
	default:
		shape := make([]int64, 4)
		for i := range shape {
			shape[i] = features.Shape().Size(i)
			if i > 0 && shape[i] < 0 && len(featShape) == 3 {
				shape[i] = featShape[i-1]
			}
		}
		switch kind {
		case HeadGAP:
			if shape[3] < 0 {
				return nil, fmt.Errorf("%w: feature channels unknown in %v", ErrShape, features.Shape())
			}
			dim = shape[3]
			x = op.Mean(s.SubScope("global_average_pooling"), features, op.Const(s.SubScope("spatial_axes"), []int32{1, 2}))
		case HeadFlatten:
			if shape[1] < 0 || shape[2] < 0 || shape[3] < 0 {
				return nil, fmt.Errorf("%w: flatten needs the feature shape, got %v", ErrShape, features.Shape())
			}
			dim = shape[1] * shape[2] * shape[3]
			x = op.Reshape(s.SubScope("flatten"), features, op.Const(s.SubScope("flat_shape"), []int64{-1, dim}))
		case HeadMulti:
			return nil, fmt.Errorf("%w: the multi head takes pooled features [batch,d] (HeadInput), got %v", ErrShape, features.Shape())
		default:
			return nil, fmt.Errorf("head %q unknown: want one of %v", kind, HeadKinds)
		}
	}
	if drop.Rate.Op != nil { // inference-only graphs (exports) have no dropout at all
		x = dropout(s.SubScope("dropout"), x, drop)
	}
	h := &head{
		kernel: newVariable(s, "dense/kernel", []int64{dim, int64(numClasses)}, true, glorotUniform(dim, int64(numClasses))),
		bias:   newVariable(s, "dense/bias", []int64{int64(numClasses)}, true, zerosInit),
	}
	// tfgo's chainable tensor keeps the dense layer readable; its panics end in guard.
	dense := tg.NewTensor(s.SubScope("dense"), x).MatMul(h.kernel.Read).Add(h.bias.Read)
	h.logits = op.Identity(s.SubScope("logits"), dense.Output)
	h.probs = op.Softmax(s.SubScope("probabilities"), h.logits)
	return h, nil
}

// dropoutInputs are the scalars that make one step's dropout mask.
type dropoutInputs struct {
	Rate tf.Output // float32 scalar; 0 at inference
	Seed tf.Output // int64[2]; seeds the mask of one step
	// Rows and Offset (int32 scalars) place the fed rows inside the whole batch: the mask is
	// drawn for Rows rows and rows [Offset, Offset+n) are used, so a batch run as
	// micro-batches or split over replicas gets the very mask of the unsplit batch.
	Rows, Offset tf.Output
}

// dropout zeroes each unit with probability rate and scales the rest by 1/(1-rate); with
// rate 0 the mask is all ones, so the same graph serves training and inference.
func dropout(s *op.Scope, x tf.Output, d dropoutInputs) tf.Output {
	keep := op.Sub(s, op.Const(s.SubScope("one"), float32(1)), d.Rate)
	xShape := op.Shape(s, x, op.ShapeOutType(tf.Int32))
	rest := op.Slice(s.SubScope("unit_dims"), xShape, op.Const(s.SubScope("b1"), []int32{1}), op.Const(s.SubScope("s1"), []int32{-1}))
	full := op.ConcatV2(s.SubScope("mask_shape"), []tf.Output{op.Reshape(s.SubScope("rows"), d.Rows, op.Const(s.SubScope("vec"), []int32{1})), rest},
		op.Const(s.SubScope("axis"), int32(0)))
	u := op.StatelessRandomUniform(s.SubScope("uniform"), full, d.Seed)
	zeros := op.ZerosLike(s, rest)
	begin := op.ConcatV2(s.SubScope("begin"), []tf.Output{op.Reshape(s.SubScope("offset"), d.Offset, op.Const(s.SubScope("vec1"), []int32{1})), zeros},
		op.Const(s.SubScope("axis1"), int32(0)))
	u = op.Slice(s.SubScope("window"), u, begin, xShape)
	mask := op.Floor(s, op.Add(s, u, keep))
	return op.Mul(s.SubScope("scale"), op.Mul(s, x, mask), op.Reciprocal(s, keep))
}

// HeadVariables are the checkpoint keys of the head's weights (what an export needs from
// a training checkpoint besides fine-tuned backbone weights).
func HeadVariables() []string { return []string{"dense/kernel", "dense/bias"} }
