// Command tfflowers trains, exports and serves flower classifiers on MobileNetV2 through
// TensorFlow's C API.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tfflowers/tfflowers/cli"
)

func main() {
	// The first SIGINT/SIGTERM cancels ctx (training finishes its step and saves);
	// stop() restores the default so a second one kills the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }()
	os.Exit(cli.Run(ctx, os.Args, os.Stdout, os.Stderr))
}
