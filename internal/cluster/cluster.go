// Package cluster reads the cluster that `tfflowers worker` and `tfflowers train --cluster`
// share: TensorFlow's TF_CONFIG format, from a file or the TF_CONFIG environment variable
// (which the caller reads: env is read only in cli), and runs a worker's TensorFlow server. TensorFlow's own distributed runtime does the rest
// (tfops.Server, a gRPC session target, replicas placed on /job:worker/task:N).
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// ErrSpec marks a cluster file or TF_CONFIG that cannot be used.
var ErrSpec = errors.New("invalid cluster spec")

// ErrUnreachable marks a worker that does not answer.
var ErrUnreachable = errors.New("cluster worker unreachable")

// JobWorker is the job whose tasks run the replicas.
const JobWorker = "worker"

// JobChief is the job of the process running train. It runs no TensorFlow server (it is
// the client of worker 0's master), so its address is accepted, for TF_CONFIGs written by
// tools that list the chief (Kubeflow's TFJob), and otherwise unused.
const JobChief = "chief"

// EnvVar is the environment variable TensorFlow (and tfflowers) read the cluster from.
const EnvVar = "TF_CONFIG"

// Spec is a TF_CONFIG: {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": N}}.
// Task is optional (a cluster file shared by every process leaves it out); "chief" is
// accepted as a job of one task and as a task type.
type Spec struct {
	Cluster map[string][]string `json:"cluster"`
	Task    *Task               `json:"task,omitempty"`
}

// Task is TF_CONFIG's "task".
type Task struct {
	Type  string `json:"type"`
	Index int    `json:"index"`
}

// Load reads the spec from path, or when path is "" from tfConfig, the value of the
// TF_CONFIG variable (which the caller reads).
func Load(path, tfConfig string) (Spec, error) {
	raw, from := []byte(tfConfig), "the "+EnvVar+" variable"
	if path != "" {
		var err error
		if raw, err = os.ReadFile(path); err != nil {
			return Spec{}, fmt.Errorf("%w: --cluster %s: %v", ErrSpec, path, err)
		}
		from = path
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return Spec{}, fmt.Errorf("%w: no cluster: pass --cluster FILE or set TF_CONFIG", ErrSpec)
	}
	return Parse(raw, from)
}

// Parse decodes and checks a spec; from names its source in errors.
func Parse(raw []byte, from string) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("%w: %s is not TF_CONFIG-style JSON (want {\"cluster\": {\"worker\": [\"host:port\", ...]}}): %v", ErrSpec, from, err)
	}
	workers := s.Cluster[JobWorker]
	if len(workers) == 0 {
		return Spec{}, fmt.Errorf("%w: %s lists no workers: want {\"cluster\": {\"worker\": [\"host:port\", ...]}}", ErrSpec, from)
	}
	seen := map[string]int{}
	for i, w := range workers {
		host, port, err := net.SplitHostPort(w)
		if err != nil || host == "" || port == "" {
			return Spec{}, fmt.Errorf("%w: %s: worker %d address %q: want host:port", ErrSpec, from, i, w)
		}
		if j, dup := seen[w]; dup {
			return Spec{}, fmt.Errorf("%w: %s: workers %d and %d share the address %s", ErrSpec, from, j, i, w)
		}
		seen[w] = i
	}
	for job, addrs := range s.Cluster {
		switch job {
		case JobWorker:
		case JobChief:
			if len(addrs) != 1 {
				return Spec{}, fmt.Errorf("%w: %s: job \"chief\" lists %d addresses; a cluster has one chief (the process running train)", ErrSpec, from, len(addrs))
			}
			if _, _, err := net.SplitHostPort(addrs[0]); err != nil {
				return Spec{}, fmt.Errorf("%w: %s: chief address %q: want host:port", ErrSpec, from, addrs[0])
			}
		default:
			return Spec{}, fmt.Errorf("%w: %s: job %q: tfflowers runs replicas on \"worker\" tasks only, with no parameter servers (the process running train is the chief)", ErrSpec, from, job)
		}
	}
	if t := s.Task; t != nil {
		switch {
		case t.Type == JobWorker && (t.Index < 0 || t.Index >= len(workers)):
			return Spec{}, fmt.Errorf("%w: %s: task index %d is not one of the %d workers (0..%d)", ErrSpec, from, t.Index, len(workers), len(workers)-1)
		case t.Type == JobChief && t.Index != 0:
			return Spec{}, fmt.Errorf("%w: %s: chief task index %d: the chief is task 0", ErrSpec, from, t.Index)
		case t.Type != JobWorker && t.Type != JobChief:
			return Spec{}, fmt.Errorf("%w: %s: task type %q: want \"worker\" (tfflowers worker) or \"chief\" (tfflowers train)", ErrSpec, from, t.Type)
		}
	}
	return s, nil
}

// IsWorker reports whether the spec's task says this process is a worker.
func (s Spec) IsWorker() bool { return s.Task != nil && s.Task.Type == JobWorker }

// IsChief reports whether the spec's task says this process is the chief.
func (s Spec) IsChief() bool { return s.Task != nil && s.Task.Type == JobChief }

// Workers returns the worker addresses in task order.
func (s Spec) Workers() []string { return s.Cluster[JobWorker] }

// Target is the session target of a training run: worker 0's master.
func (s Spec) Target() string { return "grpc://" + s.Workers()[0] }

// Devices are the replicas' devices, one per worker task.
func (s Spec) Devices() []string {
	out := make([]string, len(s.Workers()))
	for i := range out {
		out[i] = fmt.Sprintf("/job:%s/replica:0/task:%d/device:CPU:0", JobWorker, i)
	}
	return out
}

// WaitReady waits up to timeout for every worker to accept connections and returns an
// error naming the first task that never did.
func (s Spec) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i, addr := range s.Workers() {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%w: task %d (%s) did not answer within %s: start it with `tfflowers worker --cluster FILE --task %d` (%v)", ErrUnreachable, i, addr, timeout, i, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

// Down returns the tasks that do not accept a connection now (a quick probe after a
// failed step, so the error can name the worker that went away).
func (s Spec) Down() []int {
	var down []int
	for i, addr := range s.Workers() {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			down = append(down, i)
			continue
		}
		c.Close()
	}
	return down
}
