package train

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tfflowers/tfflowers/internal/cluster"
	"github.com/tfflowers/tfflowers/tfops"
)

// sessionConfig resolves --device (one device) or --devices (in-graph replicas, one per
// device) into the session config the base is loaded with.
func (t *trainer) sessionConfig() (tfops.SessionConfig, error) {
	cfg := t.cfg
	if cfg.Cluster != "" {
		return t.clusterConfig()
	}
	devs, err := tfops.ListDevices(cfg.Threads)
	if err != nil {
		return tfops.SessionConfig{}, err
	}
	if cfg.Devices == "" {
		choice, _ := tfops.ParseDevice(cfg.Device)
		sessCfg, dev, err := choice.Resolve(devs, cfg.Threads)
		if err != nil {
			return sessCfg, fmt.Errorf("--device %s: %w", cfg.Device, err)
		}
		t.device = dev
		return sessCfg, nil
	}
	set, _ := tfops.ParseDevices(cfg.Devices)
	sessCfg, names, err := set.Resolve(devs, cfg.Threads)
	if err != nil {
		return sessCfg, fmt.Errorf("--devices %s: %w", cfg.Devices, err)
	}
	t.replicas = names
	t.device = tfops.Device{Name: strings.Join(names, ","), Type: strings.Split(names[0], ":")[1]}
	return sessCfg, nil
}

// replicate spreads the training graph over the --devices replicas (nothing for one).
func (t *trainer) replicate() error {
	if len(t.replicas) < 2 {
		return nil
	}
	if t.cluster != nil {
		// Each worker reads and decodes its rows' images itself (remote.go).
		cfg := t.cfg
		if err := t.graph.ReplicateWithDeviceInputs(t.base.Session.Graph(), t.replicas, tfops.DeviceInputConfig{
			Size: cfg.ImageSize, Resize: cfg.Resize, Augment: cfg.Augment, BatchSize: cfg.BatchSize, MicroBatch: cfg.MicroBatch,
		}); err != nil {
			return err
		}
	} else if err := t.graph.Replicate(t.base.Session.Graph(), t.replicas); err != nil {
		return err
	}
	t.cfg.Logger.Info("data parallel", "replicas", len(t.replicas), "devices", strings.Join(t.replicas, ","))
	return nil
}

// startInputs readies the workers' input pipelines (nothing without a cluster): their
// banks are zeroed, and every worker must read a training image.
func (t *trainer) startInputs() error {
	if t.src.remote == nil {
		return nil
	}
	if err := t.src.remote.in.Init(t.base.Session); err != nil {
		return err
	}
	if err := t.src.remote.checkWorkers(t.data.train); err != nil {
		return err
	}
	t.cfg.Logger.Info("input pipeline on the workers: the chief reads image headers, each worker reads and decodes its rows' images",
		"workers", t.src.remote.in.Devices(), "batches_in_flight", t.src.remote.in.Banks())
	return nil
}

// extract computes backbone features for the feature cache, over every replica.
func (t *trainer) extract(images []float32, n int) ([]float32, error) {
	return t.graph.ExtractFeatures(t.base.Session, images, n, t.cfg.ImageSize, t.cfg.MicroBatch)
}

// clusterConfig points the session at worker 0's master and places one replica per
// worker task, after every worker answers (or fails naming the one that does not).
func (t *trainer) clusterConfig() (tfops.SessionConfig, error) {
	cfg := t.cfg
	path := cfg.Cluster
	if path == ClusterFromEnv {
		path = ""
	}
	spec, err := cluster.Load(path, cfg.TFConfig)
	if err != nil {
		return tfops.SessionConfig{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if path == "" && spec.IsWorker() {
		// TF_CONFIG belongs to one process; this one was told it is a worker.
		return tfops.SessionConfig{}, fmt.Errorf("%w: %w: TF_CONFIG says this process is worker task %d: run `tfflowers worker` here, or give train a TF_CONFIG whose task is the chief (or none), or unset TF_CONFIG to train on this machine",
			ErrConfig, cluster.ErrSpec, spec.Task.Index)
	}
	wait := cfg.ClusterWait
	if wait <= 0 {
		wait = DefaultClusterWait
	}
	if err := spec.WaitReady(wait); err != nil {
		return tfops.SessionConfig{}, err
	}
	t.cluster = &spec
	sessCfg := cfg.Threads
	sessCfg.Target = spec.Target()
	timeout := cfg.StepTimeout
	if timeout <= 0 {
		timeout = DefaultStepTimeout
	}
	sessCfg.OperationTimeoutMs = timeout.Milliseconds()
	t.replicas = spec.Devices()
	t.device = tfops.Device{Name: strings.Join(t.replicas, ","), Type: "CPU"}
	cfg.Logger.Info("cluster", "workers", strings.Join(spec.Workers(), ","), "target", sessCfg.Target)
	return sessCfg, nil
}

// ClusterFromEnv as Config.Cluster reads the cluster from TF_CONFIG (Config.TFConfig).
const ClusterFromEnv = "TF_CONFIG"

// Cluster defaults: how long train waits for workers to come up, and how long one
// blocking operation (a step, a checkpoint) may wait on them.
const (
	DefaultClusterWait = 60 * time.Second
	DefaultStepTimeout = 5 * time.Minute
)

// ErrWorkerDown marks a cluster run that stopped because a worker went away.
var ErrWorkerDown = errors.New("a cluster worker stopped answering")

// clusterErr names the worker that is down when a cluster run fails; the newest
// checkpoint is what --resume continues from once the worker is back.
func (t *trainer) clusterErr(err error) error {
	if err == nil || t.cluster == nil || errors.Is(err, ErrInterrupted) {
		return err
	}
	down := t.cluster.Down()
	if len(down) == 0 {
		// A probe can find the port answering again (a restarted worker, or another
		// process that took the port); TensorFlow's own error still names the peer
		// whose connection broke.
		down = unavailablePeers(err, len(t.cluster.Workers()))
	}
	if len(down) == 0 {
		return err
	}
	var names []string
	for _, i := range down {
		names = append(names, fmt.Sprintf("task %d (%s)", i, t.cluster.Workers()[i]))
	}
	return fmt.Errorf("%w: worker %s; restart it (tfflowers worker --cluster FILE --task N) and continue with --resume: %w", ErrWorkerDown, strings.Join(names, ", "), err)
}

// unavailablePeer matches the peer named in TensorFlow's gRPC errors ("Additional GRPC
// error information from remote target /job:worker/replica:0/task:1 while calling …").
var unavailablePeer = regexp.MustCompile(`remote target /job:worker/replica:\d+/task:(\d+)`)

// unavailablePeers returns the worker tasks an UNAVAILABLE error names as the remote
// end that failed, sorted and once each; nil for any other error.
func unavailablePeers(err error, workers int) []int {
	msg := err.Error()
	if !strings.Contains(msg, "UNAVAILABLE") {
		return nil
	}
	var tasks []int
	for _, m := range unavailablePeer.FindAllStringSubmatch(msg, -1) {
		if i, convErr := strconv.Atoi(m[1]); convErr == nil && i < workers && !slices.Contains(tasks, i) {
			tasks = append(tasks, i)
		}
	}
	slices.Sort(tasks)
	return tasks
}
