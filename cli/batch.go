package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"

	ucli "github.com/urfave/cli/v2"

	"github.com/tfflowers/tfflowers/internal/batch"
)

// pathFlags are the train flags whose values are paths; in a jobs file they are relative
// to the file's folder.
var pathFlags = map[string]bool{"data": true, "tfrecords": true, "labels": true, "val-dir": true, "base": true, "cache-dir": true, "export": true}

// TrainFlagNames lists the flags of `tfflowers train` (without --), sorted.
func TrainFlagNames() []string {
	var names []string
	for _, f := range trainFlags() {
		names = append(names, f.Names()...)
	}
	sort.Strings(names)
	return names
}

// BatchFlags describes the train flags for jobs files (batch.Config.Flags).
func BatchFlags() map[string]batch.Flag {
	out := map[string]batch.Flag{}
	for _, f := range trainFlags() {
		var kind batch.Kind
		switch f.(type) {
		case *ucli.BoolFlag:
			kind = batch.Bool
		case *ucli.IntFlag, *ucli.Int64Flag:
			kind = batch.Int
		case *ucli.UintFlag, *ucli.Uint64Flag:
			kind = batch.Uint
		case *ucli.Float64Flag:
			kind = batch.Float
		case *ucli.StringSliceFlag:
			kind = batch.List
		default:
			kind = batch.String
		}
		for _, name := range f.Names() {
			out[name] = batch.Flag{Kind: kind, Path: pathFlags[name]}
		}
	}
	return out
}

// CheckTrainArgs parses train arguments with train's own flag definitions, as the child
// process will: batch.Config.CheckArgs.
func CheckTrainArgs(args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, f := range trainFlags() {
		if err := f.Apply(fs); err != nil {
			return err
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func batchCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "batch",
		Usage:     "run a sweep of train jobs from a YAML or JSON jobs file, each in its own process",
		ArgsUsage: "JOBS_FILE",
		Description: `JOBS_FILE (.yaml, .yml or .json) holds out: (the root of the job folders, relative to
the file), optional cache_dir:, defaults: (train flag -> value), grid: (flag -> list of values,
expanded as a cartesian product) and jobs: (explicit jobs merged over defaults, each with an
optional name:). See scripts/sweep_flowers.yaml.

Each job runs "tfflowers train --out ROOT/NAME/run ..." with its output in ROOT/NAME/job.log
and its state in ROOT/NAME/status.json. Running the same command again skips done jobs,
resumes interrupted ones from their checkpoints and re-runs failed ones. At the end,
ROOT/summary.md (printed) and ROOT/summary.csv list every job. Exit codes: 0 all done,
1 a job failed, 2 bad jobs file, 130 interrupted.`,
		Flags: []ucli.Flag{
			&ucli.IntFlag{Name: "parallel", Value: 1, Usage: "jobs run at a time"},
			&ucli.StringFlag{Name: "out", Usage: "root of the job folders (overrides the jobs file's out:)"},
		},
		Action: func(c *ucli.Context) error {
			// Flags after JOBS_FILE are fine: Run hoists them (hoistFlags).
			if c.NArg() != 1 {
				return usagef("batch: want one JOBS_FILE argument, got %d", c.NArg())
			}
			if c.Int("parallel") < 1 {
				return usagef("--parallel %d: want 1 or more", c.Int("parallel"))
			}
			level := ""
			if c.IsSet("log-level") {
				level = c.String("log-level")
			}
			_, err := batch.Run(c.Context, batch.Config{
				JobsFile: c.Args().First(), Out: c.String("out"), Parallel: c.Int("parallel"),
				Flags: BatchFlags(), CheckArgs: CheckTrainArgs, LogLevel: level, Stdout: c.App.Writer,
			})
			switch {
			case err == nil:
				return nil
			case errors.Is(err, batch.ErrInvalid):
				return &UsageError{Err: err}
			case errors.Is(err, batch.ErrInterrupted):
				return fmt.Errorf("%w: %w", ErrInterrupted, err)
			}
			return err
		},
	}
}
