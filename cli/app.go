// Package cli holds tfflowers' commands (urfave/cli v2, imported as ucli). It parses and
// validates flags and TFFLOWERS_* environment variables into the Config structs of the
// packages below, sets up logging, and maps errors to exit codes. It never touches
// TensorFlow types.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	ucli "github.com/urfave/cli/v2"
)

// Version is the tfflowers version, set at build time with -ldflags "-X ...cli.Version=...".
var Version = "0.1.0-dev"

// Exit codes.
const (
	ExitOK          = 0
	ExitFailure     = 1 // the job failed
	ExitUsage       = 2 // bad flags or input: fix the command line or the data
	ExitInterrupted = 130
)

// UsageError marks errors the user fixes by changing the command or its inputs.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usagef(format string, args ...any) error { return &UsageError{Err: fmt.Errorf(format, args...)} }

// Run runs the tfflowers command line and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	hoisted, err := hoistFlags(app, args)
	if err == nil {
		err = app.RunContext(ctx, hoisted)
	}
	if err == nil {
		return ExitOK
	}
	printError(stderr, err)
	var ue *UsageError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, ErrInterrupted):
		return ExitInterrupted
	case errors.As(err, &ue):
		return ExitUsage
	default:
		return ExitFailure
	}
}

// ErrInterrupted is returned when a signal stopped a command after it saved its state.
var ErrInterrupted = errors.New("interrupted")

func newApp(stdout, stderr io.Writer) *ucli.App {
	onUsage := func(c *ucli.Context, err error, _ bool) error { return &UsageError{Err: err} }
	app := &ucli.App{
		Name:                 "tfflowers",
		Usage:                "transfer learning on MobileNetV2 through TensorFlow's C API",
		Version:              Version,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		Flags:                globalFlags(),
		Before: func(c *ucli.Context) error {
			return setupLogging(c, stderr)
		},
		// urfave/cli prints usage errors itself; Run prints everything else once.
		OnUsageError:   onUsage,
		ExitErrHandler: func(*ucli.Context, error) {},
		Commands: []*ucli.Command{
			versionCommand(),
			devicesCommand(),
			trainCommand(),
			exportCommand(),
			predictCommand(),
			batchCommand(),
			serveCommand(),
			workerCommand(),
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsage
	}
	app.CustomAppHelpTemplate = ucli.AppHelpTemplate + "\n" + envHelp()
	return app
}

func setupLogging(c *ucli.Context, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return usagef("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch c.String("log-format") {
	case "text":
		h = slog.NewTextHandler(stderr, opts)
	case "json":
		h = slog.NewJSONHandler(stderr, opts)
	default:
		return usagef("--log-format %q: want text or json", c.String("log-format"))
	}
	// TensorFlow's own log level (TF_CPP_MIN_LOG_LEVEL) is read when its library loads;
	// cmd/tfflowers sets it before that, by re-executing itself.
	slog.SetDefault(slog.New(h))
	return nil
}
