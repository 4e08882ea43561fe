package cluster

import (
	"fmt"
	"log/slog"

	"github.com/tfflowers/tfflowers/tfops"
)

// Serve runs worker task of s until the process ends (TensorFlow's gRPC server has no
// clean stop). ready, if not nil, is called once the server listens.
func Serve(s Spec, task int, threads tfops.SessionConfig, log *slog.Logger, ready func(target string)) error {
	if task < 0 || task >= len(s.Workers()) {
		return fmt.Errorf("%w: --task %d: the cluster has workers 0..%d", ErrSpec, task, len(s.Workers())-1)
	}
	srv, err := tfops.NewServer(tfops.ServerSpec{Jobs: s.Cluster, Job: JobWorker, Task: task, Session: threads})
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
	return srv.Join()
}
