package tfops

import (
	"runtime"
	"sync/atomic"

	tf "github.com/galeone/tensorflow/tensorflow/go"
)

// The bindings free a tensor's C memory only in its finalizer, and the Go garbage
// collector neither sees the C heap nor knows that a tiny *tf.Tensor holds megabytes of
// it: a loop feeding ~10 MB batches would grow the process by gigabytes between
// collections. The pinned bindings give no way to delete a tensor explicitly (its C
// pointer is unexported; deleting through unsafe would leave a dangling pointer in a
// value callers may still hold). So every Session.Run — training, validation, predict,
// serve, export — charges the bytes of the tensors it fed and fetched to one
// process-wide budget, and a collection (which runs the finalizers of the tensors no
// longer referenced) is forced each time the budget fills. C memory held by dead tensors
// is bounded by about the budget, without a GC every few batches.

// tensorBudget is the C memory (bytes) allowed to pass through runs between collections.
const tensorBudget = 256 << 20

// stringElementEstimate is what one element of a string tensor is charged: its payload
// is not visible through the bindings without decoding it; encoded photos are ~10-200 KB.
const stringElementEstimate = 32 << 10

// pendingTensorBytes is what runs charged since the last forced collection.
var pendingTensorBytes atomic.Int64

// forcedCollections counts collections the budget forced (tests read it).
var forcedCollections atomic.Int64

// chargeTensors adds the tensors' bytes to the budget and collects when it is full.
func chargeTensors(feeds map[tf.Output]*tf.Tensor, out []*tf.Tensor) {
	var n int64
	for _, t := range feeds {
		n += tensorBytes(t)
	}
	for _, t := range out {
		n += tensorBytes(t)
	}
	if pendingTensorBytes.Add(n) < tensorBudget {
		return
	}
	// Of runs crossing the limit together, the one that resets the count collects.
	if pendingTensorBytes.Swap(0) >= tensorBudget {
		forcedCollections.Add(1)
		runtime.GC()
	}
}

// tensorBytes is t's C memory: elements times the element size.
func tensorBytes(t *tf.Tensor) int64 {
	if t == nil {
		return 0
	}
	n := int64(1)
	for _, d := range t.Shape() {
		n *= max(d, 0)
	}
	switch t.DataType() {
	case tf.String:
		return n * stringElementEstimate
	case tf.Double, tf.Int64, tf.Uint64, tf.Complex64:
		return n * 8
	case tf.Float, tf.Int32, tf.Uint32:
		return n * 4
	case tf.Half, tf.Bfloat16, tf.Int16, tf.Uint16:
		return n * 2
	case tf.Complex128:
		return n * 16
	default:
		return n
	}
}
