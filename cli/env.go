package cli

import (
	"fmt"
	"strings"
)

// envVar is one environment variable tfflowers reads. Those that back a flag are
// parsed by the flag (typed, with the flag's validation); the rest are read where noted.
// This table is the only place a name is written: flags take theirs from envFor, and
// `tfflowers --help` lists them all (as ollama's envconfig does).
type envVar struct {
	Name  string
	Flag  string // the flag it sets; "" when read directly
	Usage string
}

var envVars = []envVar{
	{"TFFLOWERS_LOG_LEVEL", "log-level", "log level (debug, info, warn, error); debug also keeps TensorFlow's own info lines"},
	{"TFFLOWERS_LOG_FORMAT", "log-format", "text or json (for batch jobs)"},
	{"TFFLOWERS_DATA", "data", "train --data: folder with one sub-folder of images per class"},
	{"TFFLOWERS_BASE", "base", "train --base: the base SavedModel"},
	{"TFFLOWERS_CACHE_DIR", "cache-dir", "train --cache-dir: bottleneck feature cache"},
	{"TFFLOWERS_DEVICE", "device", "train --device: auto, cpu, gpu, gpu:N or tpu"},
	{"TFFLOWERS_DEVICES", "devices", "train --devices: all, gpu:0,gpu:1 or cpu:0,cpu:1 (data parallel on one machine)"},
	{"TFFLOWERS_CLUSTER", "cluster", "train --cluster: TF_CONFIG-style cluster file of running `tfflowers worker`s"},
	{"TF_CONFIG", "", "worker and train (when --cluster is not given): TensorFlow's cluster JSON, {\"cluster\": {\"worker\": [...]}, \"task\": {...}}"},
	{"TFFLOWERS_INTRA_OP_THREADS", "intra-op-threads", "TensorFlow threads inside one op (0: all cores)"},
	{"TFFLOWERS_INTER_OP_THREADS", "inter-op-threads", "TensorFlow ops run in parallel (0: TensorFlow's default)"},
	{"TFFLOWERS_MODEL", "model", "serve --model: the model base path"},
	{"TFFLOWERS_GRPC_PORT", "grpc-port", "serve --grpc-port: TF Serving's gRPC API port (0: none)"},
	{"TF_CPU_ALLOCATOR_USE_BFC", "", "TensorFlow's pooling CPU allocator; when unset, tfflowers sets true (reuses freed tensor memory: 2x faster feature extraction)"},
	{"TF_CPP_MIN_LOG_LEVEL", "", "TensorFlow's C++ log level; when unset, tfflowers sets 2 (0 with --log-level debug)"},
}

// envFor returns the environment variable of a flag, for its EnvVars. A flag missing
// from the table is a programming error that TestEnvTable reports.
func envFor(flag string) []string {
	for _, e := range envVars {
		if e.Flag == flag {
			return []string{e.Name}
		}
	}
	return nil
}

// envHelp is the ENVIRONMENT section of `tfflowers --help`.
func envHelp() string {
	var b strings.Builder
	b.WriteString("ENVIRONMENT:\n")
	for _, e := range envVars {
		fmt.Fprintf(&b, "   %-28s %s\n", e.Name, e.Usage)
	}
	return b.String()
}
