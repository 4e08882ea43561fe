package tfops

import (
	"testing"

	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// decodeConfig is the ConfigProto a SessionConfig hands to TensorFlow.
func decodeConfig(t *testing.T, c SessionConfig) *pb.ConfigProto {
	t.Helper()
	opts, err := c.Options()
	if err != nil {
		t.Fatal(err)
	}
	var cfg pb.ConfigProto
	if err := proto.Unmarshal(opts.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// TestBF16Option: --bf16 is Grappler's oneDNN auto mixed precision and nothing else;
// without it the rewriter is left at TensorFlow's defaults.
func TestBF16Option(t *testing.T) {
	on := decodeConfig(t, SessionConfig{BF16: true, IntraOpThreads: 1})
	if got := on.GetGraphOptions().GetRewriteOptions().GetAutoMixedPrecisionOnednnBfloat16(); got != pb.RewriterConfig_ON {
		t.Fatalf("BF16: auto_mixed_precision_onednn_bfloat16 = %v, want ON", got)
	}
	if on.IntraOpParallelismThreads != 1 {
		t.Fatalf("BF16 lost the thread setting: %v", on.IntraOpParallelismThreads)
	}
	if off := decodeConfig(t, SessionConfig{}); off.GetGraphOptions() != nil {
		t.Fatalf("without BF16 the graph options must stay TensorFlow's defaults, got %v", off.GetGraphOptions())
	}
}
