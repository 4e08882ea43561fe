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
			&ucli.StringFlag{Name: "model", EnvVars: envFor("model"), Usage: "model base path holding <version>/ exports; new versions are picked up while serving"},
			&ucli.StringFlag{Name: "name", Value: "flowers", Usage: "model name in the URLs"},
			&ucli.StringFlag{Name: "model-config-file", Usage: "TF Serving's --model_config_file (text model_config_list: several models, version policies, version labels) instead of --model/--name"},
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
			cfg := serve.Config{
				MaxBatch: c.Int("max-batch"), BatchTimeout: c.Duration("batch-timeout"),
				QueueSize: c.Int("queue-size"), MaxBodyBytes: c.Int64("max-body-bytes"), MaxInstances: c.Int("max-instances"),
				PollInterval: c.Duration("poll-interval"), Logger: slog.Default(),
			}
			what := "--model " + c.String("model")
			switch file := c.String("model-config-file"); {
			case file != "" && c.String("model") != "":
				return usagef("give --model or --model-config-file, not both")
			case file != "":
				models, err := serve.ReadModelConfigFile(file)
				if err != nil {
					return &UsageError{Err: fmt.Errorf("--model-config-file: %w", err)}
				}
				cfg.Models, what = models, "--model-config-file "+file
			case c.String("model") == "":
				return usagef("--model BASE_DIR or --model-config-file FILE is required")
			default:
				cfg.BaseDir, cfg.Name = c.String("model"), c.String("name")
			}
			srv, err := serve.New(cfg, load)
			if err != nil {
				return &UsageError{Err: fmt.Errorf("%s: %w", what, err)}
			}
			addr := net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port")))
			grpcAddr := ""
			if p := c.Int("grpc-port"); p != 0 {
				grpcAddr = net.JoinHostPort(c.String("host"), strconv.Itoa(p))
			}
			slog.Info("serving", "addr", addr, "grpc_addr", grpcAddr, "predict", fmt.Sprintf("POST http://%s/v1/models/NAME:predict", addr))
			return srv.Run(c.Context, addr, grpcAddr)
		},
	}
}
