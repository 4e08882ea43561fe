package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/tfflowers/tfflowers/internal/cluster"
	"github.com/tfflowers/tfflowers/tfops"
)

func workerCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "worker",
		Usage: "run one TensorFlow worker of a training cluster (train --cluster places a replica on each)",
		Description: "The cluster is TF_CONFIG JSON, {\"cluster\": {\"worker\": [\"host:port\", ...]}}, from --cluster FILE or the TF_CONFIG\n" +
			"variable; --task (or TF_CONFIG's task.index) says which worker this is. The worker serves until it is stopped.",
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "cluster", Usage: "TF_CONFIG-style cluster file (default: the TF_CONFIG variable)"},
			&ucli.IntFlag{Name: "task", Value: -1, Usage: "this worker's index in cluster.worker (default: TF_CONFIG's task.index)"},
		}, threadFlags()...),
		Action: func(c *ucli.Context) error {
			spec, err := cluster.Load(c.String("cluster"), os.Getenv(cluster.EnvVar))
			if err != nil {
				return &UsageError{Err: err}
			}
			task := c.Int("task")
			if task < 0 {
				if !spec.IsWorker() {
					return usagef("--task N is required (or a TF_CONFIG with \"task\": {\"type\": \"worker\", \"index\": N})")
				}
				task = spec.Task.Index
			}
			threads := tfops.SessionConfig{IntraOpThreads: c.Int("intra-op-threads"), InterOpThreads: c.Int("inter-op-threads")}
			err = cluster.Serve(c.Context, spec, task, threads, slog.Default(), func(target string) {
				fmt.Fprintf(c.App.Writer, "worker %d serving on %s\n", task, spec.Workers()[task])
			})
			if errors.Is(err, cluster.ErrSpec) {
				return &UsageError{Err: err}
			}
			return err
		},
	}
}
