package tfops

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// SessionConfig is what tfflowers sets on every TensorFlow session.
type SessionConfig struct {
	IntraOpThreads int  // 0: TensorFlow's default (all cores)
	InterOpThreads int  // 0: TensorFlow's default
	CPUOnly        bool // hide GPUs from this session
	// VisibleGPUs restricts TensorFlow to these GPU indices ("1" for gpu:1), so unpinned
	// nodes land on the chosen card; empty means all.
	VisibleGPUs string
	// GPU memory grows on demand instead of being grabbed whole, so tfflowers can share a card.
	// It is always on; the field exists so tests can see the config that is used.
	AllowGrowth bool
	// CPUDevices > 1 splits the host into that many logical CPU devices (/device:CPU:0..N-1),
	// TensorFlow's virtual-device configuration: in-graph replicas (--devices cpu:0,cpu:1)
	// then run the code path of several accelerators on any machine.
	CPUDevices int
	// Target is the runtime a session connects to: "" in-process, grpc://host:port for a
	// TensorFlow cluster's master (tfops.Server, `tfflowers worker`).
	Target string
	// OperationTimeoutMs > 0 bounds every blocking operation of a session (a step that waits
	// on a worker that hangs fails instead of waiting for ever).
	OperationTimeoutMs int64
	// BF16 turns on Grappler's oneDNN auto mixed precision: convolutions, matmuls and their
	// gradients run in bfloat16 where the CPU has native support (AVX512-BF16, AMX), with the
	// variables, the loss and the optimizer in float32. Measured slower than float32 on a CPU
	// with AVX512-BF16 and no AMX (README), hence off unless asked for.
	BF16 bool
}

// Options returns the tf.SessionOptions for c.
func (c SessionConfig) Options() (*tf.SessionOptions, error) {
	cfg := &pb.ConfigProto{
		IntraOpParallelismThreads: int32(c.IntraOpThreads),
		InterOpParallelismThreads: int32(c.InterOpThreads),
		AllowSoftPlacement:        true,
		GpuOptions:                &pb.GPUOptions{AllowGrowth: true, VisibleDeviceList: c.VisibleGPUs},
		OperationTimeoutInMs:      c.OperationTimeoutMs,
	}
	if c.BF16 {
		cfg.GraphOptions = &pb.GraphOptions{RewriteOptions: &pb.RewriterConfig{
			AutoMixedPrecisionOnednnBfloat16: pb.RewriterConfig_ON}}
	}
	if c.CPUOnly || c.CPUDevices > 1 {
		cfg.DeviceCount = map[string]int32{}
	}
	if c.CPUOnly {
		cfg.DeviceCount["GPU"] = 0
	}
	if c.CPUDevices > 1 {
		cfg.DeviceCount["CPU"] = int32(c.CPUDevices)
	}
	if c.IntraOpThreads < 0 || c.InterOpThreads < 0 {
		return nil, fmt.Errorf("tfops: thread counts must be >= 0 (got intra %d, inter %d)", c.IntraOpThreads, c.InterOpThreads)
	}
	b, err := proto.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("tfops: encode session config: %w", err)
	}
	return &tf.SessionOptions{Target: c.Target, Config: b}, nil
}
