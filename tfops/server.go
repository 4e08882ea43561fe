package tfops

/*
#cgo LDFLAGS: -ltensorflow
#include <stdlib.h>
#include "tensorflow/c/c_api.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// The pinned Go bindings have no server API; TensorFlow's C API has one (TF_NewServer and
// friends, exported by the wheel's libtensorflow_cc.so.2 with the gRPC runtime), and this
// file is the one place that calls it.

// ServerSpec is one task of a TensorFlow cluster: the cluster's jobs (job name -> task
// addresses "host:port", in task order) and which task this server is.
type ServerSpec struct {
	Jobs    map[string][]string
	Job     string
	Task    int
	Session SessionConfig // default config of sessions the server's master creates
}

// Server is an in-process TensorFlow gRPC server (a worker of a cluster).
type Server struct {
	mu     sync.Mutex
	s      *C.TF_Server
	target string
}

// NewServer creates (but does not start) the server for spec.
func NewServer(spec ServerSpec) (*Server, error) {
	addrs, ok := spec.Jobs[spec.Job]
	if !ok || spec.Task < 0 || spec.Task >= len(addrs) {
		return nil, fmt.Errorf("tfops: server: the cluster has no task %s:%d", spec.Job, spec.Task)
	}
	cluster := &pb.ClusterDef{}
	names := make([]string, 0, len(spec.Jobs))
	for name := range spec.Jobs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		tasks := map[int32]string{}
		for i, a := range spec.Jobs[name] {
			tasks[int32(i)] = a
		}
		cluster.Job = append(cluster.Job, &pb.JobDef{Name: name, Tasks: tasks})
	}
	raw, err := spec.Session.Options()
	if err != nil {
		return nil, err
	}
	cfg := &pb.ConfigProto{}
	if err := proto.Unmarshal(raw.Config, cfg); err != nil {
		return nil, fmt.Errorf("tfops: server: session config: %w", err)
	}
	def := &pb.ServerDef{Cluster: cluster, JobName: spec.Job, TaskIndex: int32(spec.Task), Protocol: "grpc", DefaultSessionConfig: cfg}
	buf, err := proto.Marshal(def)
	if err != nil {
		return nil, fmt.Errorf("tfops: server: encode ServerDef: %w", err)
	}
	st := C.TF_NewStatus()
	defer C.TF_DeleteStatus(st)
	p := C.CBytes(buf)
	defer C.free(p)
	s := C.TF_NewServer(p, C.size_t(len(buf)), st)
	if err := statusErr(st); err != nil {
		return nil, fmt.Errorf("tfops: start server %s:%d at %s: %w", spec.Job, spec.Task, addrs[spec.Task], err)
	}
	return &Server{s: s, target: C.GoString(C.TF_ServerTarget(s))}, nil
}

// ErrServerClosed is returned by a closed server's methods.
var ErrServerClosed = errors.New("tfops: server is closed")

// Start starts serving.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s == nil {
		return ErrServerClosed
	}
	st := C.TF_NewStatus()
	defer C.TF_DeleteStatus(st)
	C.TF_ServerStart(s.s, st)
	return statusErr(st)
}

// Target is the session target that reaches this server, e.g. grpc://localhost:2222.
func (s *Server) Target() string { return s.target }

// Join blocks until the server stops. TensorFlow's gRPC server cannot be stopped
// cleanly (TF_ServerStop is unimplemented for it), so a worker ends with its process.
func (s *Server) Join() error {
	s.mu.Lock()
	srv := s.s
	s.mu.Unlock()
	if srv == nil {
		return ErrServerClosed
	}
	st := C.TF_NewStatus()
	defer C.TF_DeleteStatus(st)
	C.TF_ServerJoin(srv, st)
	return statusErr(st)
}

func statusErr(st *C.TF_Status) error {
	if C.TF_GetCode(st) == C.TF_OK {
		return nil
	}
	return errors.New(C.GoString(C.TF_Message(st)))
}
