package serve

import "sync/atomic"

// queue bounds the number of images waiting for a batch, across every model
// version and signature, so that a burst of clients gets a fast 503 instead
// of unbounded memory growth and ever-longer latencies.
type queue struct {
	limit   int64
	waiting atomic.Int64
}

// reserve admits n more waiting images, all or none: a request is never
// half-queued, so a rejected one has nothing to undo.
func (q *queue) reserve(n int) bool {
	for {
		cur := q.waiting.Load()
		if cur+int64(n) > q.limit {
			return false
		}
		if q.waiting.CompareAndSwap(cur, cur+int64(n)) {
			return true
		}
	}
}

// release is called as images leave the queue (taken into a batch or
// discarded), making room for new requests.
func (q *queue) release(n int) { q.waiting.Add(-int64(n)) }
