package tfops

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// rssMiB is the process's resident set size, from /proc/self/statm.
func rssMiB(t *testing.T) float64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	pages, err := strconv.ParseInt(strings.Fields(string(raw))[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return float64(pages*int64(os.Getpagesize())) / (1 << 20)
}

// TestRunMemoryStaysFlat runs 1,000 batches of 2 MiB in and 2 MiB out, as predict does
// with a reused input buffer (so the Go heap hardly grows and the collector alone would
// almost never run), then 2,000 more from 8 goroutines as a serve load: C memory held
// by dead tensors must stay bounded by the budget instead of growing by ~4 MiB a batch.
func TestRunMemoryStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 2,000 batches; skipped with -short")
	}
	const n = 512 * 1024 // float32s: 2 MiB a batch
	s := op.NewScope()
	in := op.Placeholder(s.SubScope("in"), tf.Float, op.PlaceholderShape(tf.MakeShape(n)))
	outOp := op.Add(s.SubScope("add"), in, op.Const(s.SubScope("one"), float32(1)))
	g, err := s.Finalize()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := NewSession(g, SessionConfig{CPUOnly: true, IntraOpThreads: 1, InterOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	buf := make([]float32, n) // reused, like predict's batch buffer
	run := func() {
		x, err := tf.NewTensor(buf)
		if err != nil {
			t.Error(err)
			return
		}
		out, err := sess.Run("memory test", map[tf.Output]*tf.Tensor{in: x}, []tf.Output{outOp}, nil)
		if err != nil || len(out) != 1 {
			t.Errorf("run: %v", err)
		}
	}
	serve := func(total int) { // a serve load: 8 goroutines at once
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range total / 8 {
					run()
				}
			}()
		}
		wg.Wait()
	}
	for range 50 {
		run()
	}
	collections := forcedCollections.Load()
	rss := []float64{rssMiB(t)}
	for range 2 {
		for range 500 {
			run()
		}
		rss = append(rss, rssMiB(t))
	}
	for range 2 {
		serve(1000)
		rss = append(rss, rssMiB(t))
	}
	t.Logf("RSS (MiB) after warm-up, 500 and 1,000 batches, then 1,000 and 2,000 more from 8 goroutines: %.0f; %d forced collections",
		rss, forcedCollections.Load()-collections)
	if forcedCollections.Load() == collections {
		t.Error("the tensor budget never forced a collection")
	}
	// Flat once warm: the second half of each phase adds less than the budget (without
	// it, each half adds ~2 GiB). The allocator's per-thread arenas make the serve phase
	// start higher, which is why each phase is judged on its own second half.
	limit := float64(tensorBudget >> 20)
	if d := rss[2] - rss[1]; d > limit {
		t.Errorf("RSS grew %.0f MiB over batches 500-1,000, more than the %v MiB budget", d, limit)
	}
	if d := rss[4] - rss[3]; d > limit {
		t.Errorf("RSS grew %.0f MiB over the second 1,000 serve batches, more than the %v MiB budget", d, limit)
	}
}

func TestTensorBytes(t *testing.T) {
	f, _ := tf.NewTensor([][]float32{{1, 2, 3}, {4, 5, 6}})
	i, _ := tf.NewTensor([]int64{1, 2})
	str, _ := tf.NewTensor([]string{"a", "b", "c"})
	scalar, _ := tf.NewTensor(float32(1))
	for name, tc := range map[string]struct {
		t    *tf.Tensor
		want int64
	}{"float32 2x3": {f, 24}, "int64 x2": {i, 16}, "string x3": {str, 3 * stringElementEstimate}, "scalar": {scalar, 4}, "nil": {nil, 0}} {
		if got := tensorBytes(tc.t); got != tc.want {
			t.Errorf("%s: %d bytes, want %d", name, got, tc.want)
		}
	}
}
