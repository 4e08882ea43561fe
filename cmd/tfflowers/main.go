// Command tfflowers trains, exports and serves flower classifiers on MobileNetV2 through
// TensorFlow's C API.
package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tfflowers/tfflowers/cli"
)

func main() {
	quietTensorFlow()
	// The first SIGINT/SIGTERM cancels ctx (training finishes its step and saves);
	// stop() restores the default so a second one kills the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }()
	os.Exit(cli.Run(ctx, os.Args, os.Stdout, os.Stderr))
}

// quietTensorFlow re-executes tfflowers once with TF_CPP_MIN_LOG_LEVEL set. TensorFlow
// reads it when its shared library loads, before main runs, and keeps that level: set
// later (as the cli package once did), it cannot silence the info lines TensorFlow prints
// at every SavedModel load and first session.
// The line TensorFlow prints while its library loads into this first process stays.
// Level 2 keeps errors; --log-level debug (or TFFLOWERS_LOG_LEVEL=debug) keeps everything.
// A variable the user set is left alone. If the exec fails, tfflowers runs on, only
// noisier.
func quietTensorFlow() {
	if _, set := os.LookupEnv("TF_CPP_MIN_LOG_LEVEL"); set {
		return
	}
	level := "2"
	if debugLogging(os.Args[1:], os.Getenv("TFFLOWERS_LOG_LEVEL")) {
		level = "0"
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL="+level))
}

// debugLogging reports whether the command line (or the environment's value) asks for
// debug logs: --log-level debug, --log-level=debug, with one or two dashes.
func debugLogging(args []string, env string) bool {
	debug := strings.EqualFold(env, "debug")
	for i, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "log-level" {
			continue
		}
		if !hasValue && i+1 < len(args) {
			value = args[i+1]
		}
		debug = strings.EqualFold(value, "debug")
	}
	return debug
}
