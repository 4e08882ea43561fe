package serve

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// result is one image's prediction, or the reason that image failed.
type result struct {
	scores  []float32
	classID int64
	class   string
	err     error // this image only (e.g. undecodable); the request answers 400
}

// runFunc calls the model on one batch. A non-nil error fails every image of
// the batch; otherwise it returns exactly one result per input.
type runFunc[In any] func(ctx context.Context, in []In) ([]result, error)

// call is one request's share of batched work. Its images may be spread
// over several batches; done is closed once every image has a result.
type call struct {
	ctx     context.Context
	results []result // written by the batcher goroutine, read after done
	pending atomic.Int64
	done    chan struct{}

	mu  sync.Mutex
	err error // first whole-batch failure that touched this call
}

func newCall(ctx context.Context, n int) *call {
	c := &call{ctx: ctx, results: make([]result, n), done: make(chan struct{})}
	c.pending.Store(int64(n))
	return c
}

// finish records the outcome of image idx; batchErr, when set, is a failure
// of the whole batch the image was in.
func (c *call) finish(idx int, r result, batchErr error) {
	if batchErr != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = batchErr
		}
		c.mu.Unlock()
	} else {
		c.results[idx] = r
	}
	if c.pending.Add(-1) == 0 {
		close(c.done)
	}
}

// wait blocks until every image has a result, the client goes away, or the
// batcher stops (gone is its done channel).
func (c *call) wait(gone <-chan struct{}) ([]result, error) {
	select {
	case <-c.done:
	case <-c.ctx.Done():
		// The batcher may still write results later; nobody reads them,
		// and the call is garbage once the batcher drops its items.
		return nil, c.ctx.Err()
	case <-gone:
		// Only reachable if the version was shut down while this request
		// still held it, which refcounting rules out; kept so that a bug
		// there shows up as an error instead of a hung request.
		select {
		case <-c.done:
		default:
			return nil, errVersionUnloaded
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	return c.results, nil
}

// item is one image waiting in a batcher's queue.
type item[In any] struct {
	in  In
	c   *call
	idx int
}

// batcher merges the images of concurrent requests for one model version
// and signature into batches of up to max images, waiting at most timeout
// for a batch to fill, and runs them one at a time.
type batcher[In any] struct {
	name    string // for logs: signature name
	ch      chan item[In]
	run     runFunc[In]
	max     int
	timeout time.Duration
	q       *queue
	ctx     context.Context // passed to the model; cancelled by Server.Close
	log     *slog.Logger

	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newBatcher[In any](ctx context.Context, name string, run runFunc[In], cfg Config, q *queue, log *slog.Logger) *batcher[In] {
	b := &batcher[In]{
		name: name,
		// The queue admits at most q.limit images in total, so a channel of
		// that capacity never blocks a sender that has reserved its room.
		ch:      make(chan item[In], q.limit),
		run:     run,
		max:     cfg.MaxBatch,
		timeout: cfg.BatchTimeout,
		q:       q,
		ctx:     ctx,
		log:     log,
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go b.loop()
	return b
}

// submit queues ins for prediction, or fails with errOverloaded when the
// shared queue has no room for all of them.
func (b *batcher[In]) submit(ctx context.Context, ins []In) (*call, error) {
	if !b.q.reserve(len(ins)) {
		return nil, errOverloaded
	}
	c := newCall(ctx, len(ins))
	for i, in := range ins {
		b.ch <- item[In]{in: in, c: c, idx: i}
	}
	return c, nil
}

// stop makes the loop finish its current batch, fail whatever is still
// queued, and exit; it returns once the loop has exited, so the model is no
// longer in use.
func (b *batcher[In]) stop() {
	b.stopOnce.Do(func() { close(b.quit) })
	<-b.done
}

func (b *batcher[In]) loop() {
	defer close(b.done)
	batch := make([]item[In], 0, b.max)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-b.quit:
			b.drain()
			return
		case it := <-b.ch:
			b.q.release(1)
			batch = append(batch, it)
		}
		if len(batch) < b.max {
			timer.Reset(b.timeout)
		fill:
			for len(batch) < b.max {
				select {
				case it := <-b.ch:
					b.q.release(1)
					batch = append(batch, it)
				case <-timer.C:
					break fill
				}
			}
			timer.Stop()
		}
		b.process(batch)
		clear(batch) // drop references to finished calls and image data
		batch = batch[:0]
	}
}

// drain fails every queued item; the version is going away.
func (b *batcher[In]) drain() {
	for {
		select {
		case it := <-b.ch:
			b.q.release(1)
			it.c.finish(it.idx, result{}, errVersionUnloaded)
		default:
			return
		}
	}
}

// process runs one batch and fans the results back to the calls.
func (b *batcher[In]) process(batch []item[In]) {
	ins := make([]In, 0, len(batch))
	live := make([]item[In], 0, len(batch))
	for _, it := range batch {
		if err := it.c.ctx.Err(); err != nil {
			// The client left: don't spend model time on its images.
			it.c.finish(it.idx, result{}, err)
			continue
		}
		ins = append(ins, it.in)
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	results, err := b.safeRun(ins)
	for i, it := range live {
		var r result
		if err == nil {
			r = results[i]
		}
		it.c.finish(it.idx, r, err)
	}
}

// safeRun calls the model, turning a panic into an error so that one bad
// batch fails its requests with 500 instead of killing the server.
func (b *batcher[In]) safeRun(ins []In) (results []result, err error) {
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("model panicked", "signature", b.name, "batch", len(ins), "panic", p, "stack", string(debug.Stack()))
			results, err = nil, &panicError{value: p}
		}
	}()
	results, err = b.run(b.ctx, ins)
	if err == nil && len(results) != len(ins) {
		err = fmt.Errorf("model returned %d results for %d images", len(results), len(ins))
	}
	if err != nil {
		return nil, err
	}
	return results, nil
}

// panicError is a recovered panic from the model.
type panicError struct{ value any }

func (e *panicError) Error() string { return fmt.Sprintf("model panicked: %v", e.value) }
