package train_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tfflowers/tfflowers/internal/cluster"
	"github.com/tfflowers/tfflowers/tfops"
)

// workerEnv makes the test binary a cluster worker (task N of TF_CONFIG's cluster), so the
// cluster tests start workers as child processes without building the CLI.
const workerEnv = "TFFLOWERS_TEST_WORKER_TASK"

func TestMain(m *testing.M) {
	if v := os.Getenv(workerEnv); v != "" {
		os.Exit(runTestWorker(v))
	}
	os.Exit(m.Run())
}

func runTestWorker(task string) int {
	n, err := strconv.Atoi(task)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad", workerEnv, task)
		return 2
	}
	spec, err := cluster.Load("", os.Getenv(cluster.EnvVar))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// A worker whose test process is gone has nobody to stop it: leave with the parent.
	parent := os.Getppid()
	go func() {
		for range time.Tick(500 * time.Millisecond) {
			if os.Getppid() != parent {
				os.Exit(3)
			}
		}
	}()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := cluster.Serve(context.Background(), spec, n, tfops.SessionConfig{IntraOpThreads: 1}, log, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
