package train_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/tfflowers/tfflowers/internal/train"
)

// TestConcurrentRunsOnOneOut starts two trainings on one --out together, as a batch
// script might: one trains to the end, the other fails at once with ErrRunBusy instead of
// interleaving its checkpoints and metrics.json with the first's.
func TestConcurrentRunsOnOneOut(t *testing.T) {
	if testing.Short() {
		t.Skip("trains; skipped with -short")
	}
	cfg := baseConfig(t, subset(t, 10))
	cfg.Epochs = 1
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = train.Run(context.Background(), cfg)
		}()
	}
	close(start)
	wg.Wait()
	busy, ok := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, train.ErrRunBusy):
			busy++
		default:
			t.Errorf("run failed: %v", err)
		}
	}
	if ok != 1 || busy != 1 {
		t.Fatalf("results %v: want one finished run and one ErrRunBusy", errs)
	}
	if m := readMetrics(t, cfg.Out); len(m.Epochs) != 1 {
		t.Fatalf("metrics.json has %d epochs, want 1", len(m.Epochs))
	}
	// The lock goes with the run: the folder can be resumed afterwards.
	cfg.Resume = true
	if _, err := train.Run(context.Background(), cfg); err != nil {
		t.Fatalf("--resume after both ended: %v", err)
	}
}
