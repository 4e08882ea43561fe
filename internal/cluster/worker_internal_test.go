package cluster

import (
	"runtime"
	"testing"

	"github.com/tfflowers/tfflowers/tfops"
)

// TestWorkerThreads: a worker never runs with one inter-op thread (the other workers would
// wait on task 0 in turn), and every other limit is kept.
func TestWorkerThreads(t *testing.T) {
	for _, c := range []struct{ in, want int }{{1, MinWorkerInterOpThreads}, {2, 2}, {3, 3}} {
		cfg := tfops.SessionConfig{IntraOpThreads: 1, InterOpThreads: c.in}
		raised := workerThreads(&cfg)
		if cfg.InterOpThreads != c.want || raised != (c.in != c.want) || cfg.IntraOpThreads != 1 {
			t.Errorf("inter-op %d: got %d (raised %v), intra %d", c.in, cfg.InterOpThreads, raised, cfg.IntraOpThreads)
		}
	}
	cfg := tfops.SessionConfig{}
	raised := workerThreads(&cfg)
	if wantRaised := runtime.NumCPU() < MinWorkerInterOpThreads; raised != wantRaised || (!raised && cfg.InterOpThreads != 0) {
		t.Errorf("default on %d cores: inter-op %d, raised %v", runtime.NumCPU(), cfg.InterOpThreads, raised)
	}
}
