package cluster

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tfflowers/tfflowers/tfops"
)

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
