package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"

	"github.com/tfflowers/tfflowers/tfops"
)

// MinWorkerInterOpThreads is the fewest inter-op threads a worker gets. The chief's feeds
// for every worker (an image path, a bank slot) enter the cluster through task 0, the
// master, in a small run of its own there; with one inter-op thread, TensorFlow's thread
// pool runs that run only after everything the worker's current step has queued, so the
// other workers sit idle in turn (measured: two one-core workers took turns, at 72 images/s
// for extraction against 102 with two threads). The second thread costs no compute: the
// intra-op limit still bounds the kernels.
const MinWorkerInterOpThreads = 2

// workerThreads raises an inter-op thread limit below MinWorkerInterOpThreads and says
// whether it did. 0, TensorFlow's default, is one thread per core: raised on a one-core
// machine only.
func workerThreads(c *tfops.SessionConfig) bool {
	n := c.InterOpThreads
	if n == 0 {
		n = runtime.NumCPU()
	}
	if n < MinWorkerInterOpThreads {
		c.InterOpThreads = MinWorkerInterOpThreads
		return true
	}
	return false
}

// Serve runs worker task of s until ctx is cancelled (SIGTERM: a pod being stopped) or the
// server fails. TensorFlow's gRPC server has no clean stop, so the caller ends the process
// when Serve returns. ready, if not nil, is called once the server listens.
func Serve(ctx context.Context, s Spec, task int, threads tfops.SessionConfig, log *slog.Logger, ready func(target string)) error {
	if task < 0 || task >= len(s.Workers()) {
		return fmt.Errorf("%w: --task %d: the cluster has workers 0..%d", ErrSpec, task, len(s.Workers())-1)
	}
	if s.IsChief() {
		return fmt.Errorf("%w: the cluster's task is the chief (type \"chief\"): the chief runs `tfflowers train --cluster`, not a worker", ErrSpec)
	}
	// The servers know the worker job only: the chief runs no server, and a master that
	// listed it would wait for its devices.
	jobs := map[string][]string{JobWorker: s.Workers()}
	if raised := workerThreads(&threads); raised {
		log.Warn("inter-op threads raised to the least a worker runs well with", "inter_op_threads", threads.InterOpThreads,
			"why", "with one, the small runs that carry the chief's feeds for the other workers wait behind this worker's whole step")
	}
	srv, err := tfops.NewServer(tfops.ServerSpec{Jobs: jobs, Job: JobWorker, Task: task, Session: threads})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("worker task %d (%s): %w", task, s.Workers()[task], err)
	}
	log.Info("worker serving", "task", task, "address", s.Workers()[task], "target", srv.Target(), "workers", len(s.Workers()))
	if ready != nil {
		ready(srv.Target())
	}
	joined := make(chan error, 1)
	go func() { joined <- srv.Join() }()
	select {
	case err := <-joined:
		return err
	case <-ctx.Done():
		log.Info("worker stopping", "task", task)
		return nil
	}
}
