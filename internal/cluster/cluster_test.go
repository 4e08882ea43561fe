package cluster_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tfflowers/tfflowers/internal/cluster"
	"github.com/tfflowers/tfflowers/tfops"
)

func TestParse(t *testing.T) {
	good := `{"cluster": {"worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 1}}`
	s, err := cluster.Parse([]byte(good), "x")
	if err != nil {
		t.Fatal(err)
	}
	if s.Target() != "grpc://a:2222" || len(s.Devices()) != 2 || s.Devices()[1] != "/job:worker/replica:0/task:1/device:CPU:0" || s.Task.Index != 1 {
		t.Fatalf("parsed %+v: target %s devices %v", s, s.Target(), s.Devices())
	}
	for name, bad := range map[string]string{
		"not json":       `{"cluster":`,
		"no workers":     `{"cluster": {"worker": []}}`,
		"no port":        `{"cluster": {"worker": ["a"]}}`,
		"duplicate":      `{"cluster": {"worker": ["a:1", "a:1"]}}`,
		"other job":      `{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}}`,
		"task too large": `{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}`,
		"two chiefs":     `{"cluster": {"worker": ["a:1"], "chief": ["b:1", "c:1"]}}`,
		"chief no port":  `{"cluster": {"worker": ["a:1"], "chief": ["b"]}}`,
		"chief task 1":   `{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 1}}`,
		"ps task":        `{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}`,
		"no cluster":     `{"task": {"type": "worker", "index": 0}}`,
	} {
		if _, err := cluster.Parse([]byte(bad), name); !errors.Is(err, cluster.ErrSpec) {
			t.Errorf("%s: Parse returned %v, want ErrSpec", name, err)
		}
	}
}

func TestLoadFromFileAndEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(file, []byte(`{"cluster": {"worker": ["127.0.0.1:1"]}}`), 0o644)
	env := `{"cluster": {"worker": ["127.0.0.1:2", "127.0.0.1:3"]}}`
	if s, err := cluster.Load(file, env); err != nil || len(s.Workers()) != 1 {
		t.Fatalf("Load(file) = %+v, %v", s, err)
	}
	if s, err := cluster.Load("", env); err != nil || len(s.Workers()) != 2 {
		t.Fatalf("Load from TF_CONFIG = %+v, %v", s, err)
	}
	if _, err := cluster.Load("", " "); !errors.Is(err, cluster.ErrSpec) {
		t.Fatalf("Load without a cluster returned %v", err)
	}
	// A malformed TF_CONFIG is named as the variable, so the user knows where to look.
	if _, err := cluster.Load("", `{"cluster": `); !errors.Is(err, cluster.ErrSpec) || !strings.Contains(err.Error(), "TF_CONFIG variable") {
		t.Fatalf("Load of a malformed TF_CONFIG returned %v, want ErrSpec naming the TF_CONFIG variable", err)
	}
	if _, err := cluster.Load(filepath.Join(t.TempDir(), "missing.json"), env); !errors.Is(err, cluster.ErrSpec) || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("Load of a missing file returned %v, want ErrSpec naming it", err)
	}
}

// TestChiefInTFConfig: a TF_CONFIG listing the chief (as Kubeflow's TFJob writes it) is
// accepted, the chief's task reads as the chief, and the workers' servers and replicas
// are the worker job's alone.
func TestChiefInTFConfig(t *testing.T) {
	s, err := cluster.Parse([]byte(`{"cluster": {"chief": ["c:2222"], "worker": ["a:2222", "b:2222"]}, "task": {"type": "chief", "index": 0}}`), "TF_CONFIG")
	if err != nil {
		t.Fatal(err)
	}
	if !s.IsChief() || s.IsWorker() || len(s.Devices()) != 2 || s.Target() != "grpc://a:2222" {
		t.Fatalf("chief TF_CONFIG parsed as %+v (chief %v, devices %v, target %s)", s, s.IsChief(), s.Devices(), s.Target())
	}
	w, err := cluster.Parse([]byte(`{"cluster": {"chief": ["c:2222"], "worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 1}}`), "TF_CONFIG")
	if err != nil || !w.IsWorker() || w.Task.Index != 1 {
		t.Fatalf("worker TF_CONFIG parsed as %+v, %v", w, err)
	}
	err = cluster.Serve(context.Background(), s, 0, tfops.SessionConfig{}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if !errors.Is(err, cluster.ErrSpec) || !strings.Contains(err.Error(), "chief") {
		t.Fatalf("Serve with the chief's TF_CONFIG returned %v, want ErrSpec saying it is the chief", err)
	}
}

func TestWaitReadyNamesTheMissingTask(t *testing.T) {
	s, _ := cluster.Parse([]byte(`{"cluster": {"worker": ["127.0.0.1:1"]}}`), "x")
	start := time.Now()
	err := s.WaitReady(500 * time.Millisecond)
	if !errors.Is(err, cluster.ErrUnreachable) || time.Since(start) > 5*time.Second {
		t.Fatalf("WaitReady on a closed port: %v after %s", err, time.Since(start))
	}
	if d := s.Down(); len(d) != 1 || d[0] != 0 {
		t.Fatalf("Down() = %v, want [0]", d)
	}
}

// TestServeStopsOnCancel: a worker told to stop (SIGTERM cancels the CLI's context)
// returns, so its process exits; TensorFlow's server itself cannot be stopped.
func TestServeStopsOnCancel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s, err := cluster.Parse([]byte(`{"cluster": {"worker": ["`+addr+`"]}}`), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- cluster.Serve(ctx, s, 0, tfops.SessionConfig{IntraOpThreads: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)), func(string) { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve returned before serving: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the worker did not start within 30 s")
	}
	if err := s.WaitReady(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10 s of the cancel")
	}
}
