// Package tfops builds and runs TensorFlow graphs for tfflowers through the C API
// (github.com/galeone/tensorflow/tensorflow/go and github.com/galeone/tfgo).
//
// It holds every graph builder of the product: image decoding and preprocessing,
// the classification head (pooling, dropout, dense, softmax), the loss, gradients from
// Graph.AddGradients, Adam on resource variables, metrics and checkpoint save/restore ops.
// It is, with package savedmodel, the only code that touches cgo.
//
// # Error handling
//
// Builders record the first failure on their *op.Scope; the low-level bindings and tfgo
// may also panic on a malformed graph. The entry points that build graphs
// (BuildTrainGraph, NewImageDecoder, BuildServingGraph with its loop subgraphs,
// ImportExifOrientation, ServingGraph.RestoreSubset) recover such panics (see guard) and
// return a *GraphError naming the build step, wrapping the scope's first error when there
// is one (the root cause) or the panic value. OrientImage and CentreSquare are
// scope-first builders like tfgo's: they return no error, record failures on the
// caller's Scope and are meant to run inside one of those entry points. The other exported functions build no ops and
// call only error-returning bindings, so they return errors without a recover.
// Session runs return TensorFlow's status as an error wrapped with what was being run.
//
// # Ownership
//
// A Session owns its tf.Session and must be closed; the graph it runs belongs to it.
// Tensors returned by the bindings free their C memory in a finalizer only, which the
// Go garbage collector cannot size: every Session.Run charges the bytes it fed and
// fetched to a process-wide budget and forces a collection when it fills (memory.go),
// so no caller has to remember to release anything.
//
// # Concurrency
//
// An *op.Scope and graph building are not safe for concurrent use. Session.Run is:
// the image decoder and the training loop run sessions from many goroutines.
package tfops
