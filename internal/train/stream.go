package train

import (
	"context"

	"github.com/tfflowers/tfflowers/pipeline"
)

// stream produces the batches of one pass over samples (in order) on two goroutines:
// one reads, checks the cache and decodes batch k+1 while the other runs the backbone on
// batch k, and results queue two ahead of the training step, so decoding, the backbone
// and the step overlap.
func (s *source) stream(ctx context.Context, samples []pipeline.Sample, order []int, batchSize, startBatch, augmentEpoch int, withImages bool) <-chan result {
	prepared := make(chan *pending, 1)
	out := make(chan result, 2)
	var prepErr error
	var pool bankPool
	if s.remote != nil {
		s.remote.running.Wait()
		s.remote.running.Add(2)
		pool = newBankPool(s.remote.in.Banks())
	}
	exited := func() {
		if s.remote != nil {
			s.remote.running.Done()
		}
	}
	go func() {
		defer exited()
		defer close(prepared)
		for bi := startBatch; bi*batchSize < len(order); bi++ {
			end := min((bi+1)*batchSize, len(order))
			picked := make([]pipeline.Sample, 0, end-bi*batchSize)
			for _, k := range order[bi*batchSize : end] {
				picked = append(picked, samples[k])
			}
			p, err := s.prepare(ctx, bi, picked, augmentEpoch, withImages, pool)
			if err != nil {
				prepErr = err // read after prepared is closed
				return
			}
			select {
			case prepared <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		defer exited()
		defer close(out)
		send := func(r result) bool {
			select {
			case out <- r:
				return r.err == nil
			case <-ctx.Done():
				return false
			}
		}
		for p := range prepared {
			b, err := s.finish(p)
			if !send(result{b, err}) {
				for range prepared { // let the first stage exit
				}
				return
			}
		}
		if prepErr != nil {
			send(result{nil, prepErr})
		}
	}()
	return out
}

type result struct {
	b   *batch
	err error
}
