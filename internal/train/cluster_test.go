package train_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tfflowers/tfflowers/internal/cluster"
	"github.com/tfflowers/tfflowers/internal/train"
)

// freeAddrs returns n loopback addresses that were free a moment ago.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// testCluster is a set of worker child processes on loopback ports.
type testCluster struct {
	t     *testing.T
	file  string
	spec  []byte
	procs map[int]*exec.Cmd
	dir   string // the workers' working folder ("": the test's)
}

func newTestCluster(t *testing.T, addrs []string) *testCluster {
	spec, _ := json.Marshal(map[string]any{"cluster": map[string]any{"worker": addrs}})
	file := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(file, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, file: file, spec: spec, procs: map[int]*exec.Cmd{}}
	t.Cleanup(func() {
		for i := range c.procs {
			c.stop(i)
		}
	})
	return c
}

// start runs worker task i as a child process (the test binary, see TestMain).
func (c *testCluster) start(i int) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", workerEnv, i), "TF_CONFIG="+string(c.spec), "TF_CPP_MIN_LOG_LEVEL=2")
	cmd.Stderr, cmd.Dir = os.Stderr, c.dir
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.procs[i] = cmd
}

// stop kills worker i by its PID and waits for it.
func (c *testCluster) stop(i int) {
	if p := c.procs[i]; p != nil {
		p.Process.Kill()
		p.Wait()
		delete(c.procs, i)
	}
}

func clusterConfig(t *testing.T, data string) train.Config {
	cfg := baseConfig(t, data)
	cfg.ImageSize, cfg.BatchSize, cfg.Epochs = 64, 16, 2
	cfg.FineTune, cfg.FineTuneFrom, cfg.FineTuneEpochs, cfg.FineTuneLR = true, "block_16", 2, 1e-4
	cfg.Device = "auto"
	return cfg
}

// TestClusterTrainsAsOneProcess trains on two workers (child processes on loopback, one
// intra-op thread each) and in one process: the same losses every epoch (tolerance as in
// TestMicroBatchesAndDevicesTrainAsOneDevice: the same update up to summation order).
// The frozen phase's features are extracted once per image, spread over the workers.
func TestClusterTrainsAsOneProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("trains on a local cluster; skipped with -short")
	}
	data := subset(t, 8)
	c := newTestCluster(t, freeAddrs(t, 2))
	c.start(0)
	c.start(1)
	one := clusterConfig(t, data)
	want, err := train.Run(context.Background(), one)
	if err != nil {
		t.Fatal(err)
	}
	// The cluster comes from TF_CONFIG as Kubeflow's TFJob writes it for the chief (the
	// fault test below reads a cluster file).
	var spec map[string]any
	json.Unmarshal(c.spec, &spec)
	spec["cluster"].(map[string]any)["chief"] = []string{"127.0.0.1:1"}
	spec["task"] = map[string]any{"type": "chief", "index": 0}
	tfConfig, _ := json.Marshal(spec)
	cfg := clusterConfig(t, data)
	cfg.Cluster, cfg.TFConfig, cfg.ClusterWait = train.ClusterFromEnv, string(tfConfig), 30*time.Second
	got, err := train.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range got.Metrics.Epochs {
		w := want.Metrics.Epochs[i]
		t.Logf("epoch %d (%s): cluster train loss %.6f (one process %.6f), val loss %.6f (%.6f)", e.Epoch, e.Phase, e.TrainLoss, w.TrainLoss, e.ValLoss, w.ValLoss)
		if math.Abs(e.TrainLoss-w.TrainLoss) > 1e-4*w.TrainLoss || math.Abs(e.ValLoss-w.ValLoss) > 1e-4*w.ValLoss {
			t.Fatalf("epoch %d: cluster losses %.6f/%.6f, one process %.6f/%.6f", e.Epoch, e.TrainLoss, e.ValLoss, w.TrainLoss, w.ValLoss)
		}
	}
	m := got.Metrics
	images := int64(m.TrainImages + m.ValImages)
	if c := m.Cache; c == nil || c.Misses != images || c.Writes != images {
		t.Fatalf("cache stats %+v: want each of the %d images extracted once", c, images)
	}
	// Every image was read and decoded on a worker (the chief builds no decoder in a
	// cluster): the frozen phase's extraction once per image, then each fine-tuning epoch's
	// training and validation images, the final validation and the test set.
	decodes := images + int64(cfg.FineTuneEpochs)*images + int64(m.ValImages+m.TestImages)
	if d := m.WorkerDecodes; len(d) != 2 || d[0] == 0 || d[1] == 0 || d[0]+d[1] != decodes {
		t.Fatalf("worker decodes %v, want %d images decoded, spread over both workers", d, decodes)
	}
	t.Logf("images decoded per worker: %v", m.WorkerDecodes)
	if w := want.Metrics.WorkerDecodes; w != nil {
		t.Fatalf("the one-process run reports worker decodes %v", w)
	}
}

// TestClusterWorkerWithoutData: a worker that does not see the training data at the
// chief's path stops train before it trains, with an error naming the worker. The data's
// path goes through /proc/self/cwd, which each process resolves in its own working
// folder: the chief's holds the data, the workers' does not (a worker without the shared
// volume).
func TestClusterWorkerWithoutData(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local cluster; skipped with -short")
	}
	data := subset(t, 2)
	cfg := clusterConfig(t, data)
	chief := t.TempDir()
	if err := os.Symlink(data, filepath.Join(chief, "data")); err != nil {
		t.Fatal(err)
	}
	addrs := freeAddrs(t, 2)
	c := newTestCluster(t, addrs)
	c.dir = t.TempDir()
	c.start(0)
	c.start(1)
	t.Chdir(chief)
	cfg.Data = "/proc/self/cwd/data"
	cfg.Cluster, cfg.ClusterWait = c.file, 30*time.Second
	_, err := train.Run(context.Background(), cfg)
	if !errors.Is(err, train.ErrWorkerData) || !strings.Contains(err.Error(), "task 0 ("+addrs[0]+")") || !strings.Contains(err.Error(), "same path on every worker") {
		t.Fatalf("train with workers that do not see the data returned %v, want ErrWorkerData naming task 0", err)
	}
	if cks, _ := filepath.Glob(filepath.Join(cfg.Out, "checkpoints", "step-*")); len(cks) != 0 {
		t.Fatalf("checkpoints written before the data check failed: %v", cks)
	}
}

// TestClusterTFConfigRefused: a TF_CONFIG that is not JSON, or that says this process is
// a worker, stops train before any training with an error naming TF_CONFIG.
func TestClusterTFConfigRefused(t *testing.T) {
	data := subset(t, 2)
	for name, tc := range map[string]struct{ tfConfig, want string }{
		"malformed": {`{"cluster": {"worker": [`, "TF_CONFIG variable"},
		"worker":    {`{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}`, "TF_CONFIG says this process is worker task 0"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := clusterConfig(t, data)
			cfg.Cluster, cfg.TFConfig = train.ClusterFromEnv, tc.tfConfig
			_, err := train.Run(context.Background(), cfg)
			if !errors.Is(err, train.ErrConfig) || !errors.Is(err, cluster.ErrSpec) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("train with TF_CONFIG %s returned %v, want ErrConfig/ErrSpec saying %q", tc.tfConfig, err, tc.want)
			}
		})
	}
}

// TestClusterWorkerFaults: a worker that never comes up stops train within --cluster-wait
// naming the task; one killed during training stops it naming the task with the newest
// checkpoint intact, and --resume finishes the run once the worker is back.
func TestClusterWorkerFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("trains on a local cluster; skipped with -short")
	}
	data := subset(t, 8)
	addrs := freeAddrs(t, 2)
	c := newTestCluster(t, addrs)
	c.start(0) // task 1 never starts
	// Task 0 up first, so that the 2 s below time task 1 alone (a worker takes seconds to
	// start on a loaded machine).
	up, _ := cluster.Parse([]byte(`{"cluster": {"worker": ["`+addrs[0]+`"]}}`), "test")
	if err := up.WaitReady(time.Minute); err != nil {
		t.Fatal(err)
	}
	cfg := clusterConfig(t, data)
	cfg.Cluster, cfg.ClusterWait = c.file, 2*time.Second
	start := time.Now()
	_, err := train.Run(context.Background(), cfg)
	if !errors.Is(err, cluster.ErrUnreachable) || !strings.Contains(err.Error(), "task 1 ("+addrs[1]+")") {
		t.Fatalf("train with task 1 missing returned %v, want ErrUnreachable naming task 1", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("train took %s to give up on a missing worker (--cluster-wait 2s)", d)
	}

	c.start(1)
	cfg.ClusterWait, cfg.StepTimeout = 30*time.Second, 20*time.Second
	cfg.FineTuneEpochs = 4
	done := make(chan error, 1)
	go func() { _, err := train.Run(context.Background(), cfg); done <- err }()
	// Kill task 1 as soon as the first epoch's checkpoint is written.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if cks, _ := filepath.Glob(filepath.Join(cfg.Out, "checkpoints", "step-*", "state.json")); len(cks) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint within 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.stop(1)
	killed := time.Now()
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("train did not stop within 3 minutes of a worker's death")
	}
	t.Logf("train stopped %s after the worker was killed: %v", time.Since(killed).Round(time.Millisecond), err)
	if !errors.Is(err, train.ErrWorkerDown) || !strings.Contains(err.Error(), "task 1 ("+addrs[1]+")") {
		t.Fatalf("train after killing task 1 returned %v, want ErrWorkerDown naming task 1", err)
	}
	c.start(1)
	cfg.Resume = true
	res, err := train.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("--resume after the worker came back: %v", err)
	}
	if n := len(res.Metrics.Epochs); n != cfg.Epochs+cfg.FineTuneEpochs {
		t.Fatalf("resumed run has %d epochs, want %d", n, cfg.Epochs+cfg.FineTuneEpochs)
	}
	if res.Metrics.ResumedFrom == "" {
		t.Fatal("the run after the fault did not resume from a checkpoint")
	}
}
