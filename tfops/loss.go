package tfops

import (
	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// crossEntropy is the mean softmax cross-entropy of logits against one-hot labels with
// label smoothing (on = 1-ls+ls/N, off = ls/N, as Keras's CategoricalCrossentropy).
// SoftmaxCrossEntropyWithLogits has a C++ gradient; the sparse variant does not.
func crossEntropy(s *op.Scope, logits, labels tf.Output, numClasses int, smoothing float64) (mean, perExample tf.Output) {
	on := float32(1 - smoothing + smoothing/float64(numClasses))
	off := float32(smoothing / float64(numClasses))
	onehot := op.OneHot(s.SubScope("one_hot"), labels, op.Const(s.SubScope("depth"), int32(numClasses)),
		op.Const(s.SubScope("on"), on), op.Const(s.SubScope("off"), off))
	perExample, _ = op.SoftmaxCrossEntropyWithLogits(s.SubScope("xent"), logits, onehot)
	mean = op.Mean(s.SubScope("mean"), perExample, op.Const(s.SubScope("axis"), []int32{0}))
	return mean, perExample
}

// correctCount is the number of rows whose arg-max equals the label, as float32.
func correctCount(s *op.Scope, logits, labels tf.Output) tf.Output {
	pred := op.ArgMax(s.SubScope("argmax"), logits, op.Const(s.SubScope("axis"), int32(1)), op.ArgMaxOutputType(tf.Int64))
	eq := op.Cast(s, op.Equal(s, pred, labels), tf.Float)
	return op.Sum(s.SubScope("sum"), eq, op.Const(s.SubScope("axis0"), []int32{0}))
}
