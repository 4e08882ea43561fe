package cli

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	ucli "github.com/urfave/cli/v2"

	"github.com/tfflowers/tfflowers/internal/serve"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

func serveCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "serve",
		Usage: "serve exports over TensorFlow Serving's REST API (POST /v1/models/NAME:predict) and, with --grpc-port, its gRPC API",
		Flags: append([]ucli.Flag{
			&ucli.StringFlag{Name: "model", Required: true, EnvVars: envFor("model"), Usage: "model base path holding <version>/ exports; new versions are picked up while serving"},
			&ucli.StringFlag{Name: "name", Value: "flowers", Usage: "model name in the URLs"},
			&ucli.StringFlag{Name: "host", Value: "0.0.0.0", Usage: "address to listen on"},
			&ucli.IntFlag{Name: "port", Value: 8501, Usage: "REST port (TF Serving's default is 8501)"},
			&ucli.IntFlag{Name: "grpc-port", Value: 0, EnvVars: envFor("grpc-port"), Usage: "gRPC port for TF Serving's PredictionService and ModelService (TF Serving's is 8500); 0: no gRPC"},
			&ucli.IntFlag{Name: "max-batch", Value: serve.DefaultMaxBatch, Usage: "images per model run, batched across clients"},
			&ucli.DurationFlag{Name: "batch-timeout", Value: serve.DefaultBatchTimeout, Usage: "how long a batch waits to fill"},
			&ucli.IntFlag{Name: "queue-size", Value: serve.DefaultQueueSize, Usage: "images waiting at most; beyond, requests get 503"},
			&ucli.Int64Flag{Name: "max-body-bytes", Value: serve.DefaultMaxBodyBytes, Usage: "request body limit (413 beyond)"},
			&ucli.IntFlag{Name: "max-instances", Value: serve.DefaultMaxInstances, Usage: "instances per request (400 beyond)"},
			&ucli.DurationFlag{Name: "poll-interval", Value: serve.DefaultPollInterval, Usage: "how often --model is scanned for new versions"},
		}, threadFlags()...),
		Action: func(c *ucli.Context) error {
			if p := c.Int("port"); p < 0 || p > 65535 {
				return usagef("--port %d: want 0-65535", p)
			}
			if p := c.Int("grpc-port"); p < 0 || p > 65535 {
				return usagef("--grpc-port %d: want 0-65535 (0: no gRPC)", p)
			} else if p != 0 && p == c.Int("port") {
				return usagef("--grpc-port %d is also --port: the REST and gRPC APIs need two ports", p)
			}
			sess := tfops.SessionConfig{IntraOpThreads: c.Int("intra-op-threads"), InterOpThreads: c.Int("inter-op-threads")}
			load := func(dir string, _ int64) (serve.Model, error) { return savedmodel.LoadExport(dir, sess) }
			srv, err := serve.New(serve.Config{
				BaseDir: c.String("model"), Name: c.String("name"), MaxBatch: c.Int("max-batch"), BatchTimeout: c.Duration("batch-timeout"),
				QueueSize: c.Int("queue-size"), MaxBodyBytes: c.Int64("max-body-bytes"), MaxInstances: c.Int("max-instances"),
				PollInterval: c.Duration("poll-interval"), Logger: slog.Default(),
			}, load)
			if err != nil {
				return &UsageError{Err: fmt.Errorf("--model %s: %w", c.String("model"), err)}
			}
			addr := net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port")))
			grpcAddr := ""
			if p := c.Int("grpc-port"); p != 0 {
				grpcAddr = net.JoinHostPort(c.String("host"), strconv.Itoa(p))
			}
			slog.Info("serving", "model", c.String("model"), "name", c.String("name"), "addr", addr, "grpc_addr", grpcAddr,
				"predict", fmt.Sprintf("POST http://%s/v1/models/%s:predict", addr, c.String("name")))
			return srv.Run(c.Context, addr, grpcAddr)
		},
	}
}
