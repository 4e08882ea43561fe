// Package batch runs scripted sweeps of `tfflowers train` jobs described in a YAML or JSON
// jobs file (see Load for the format). Each job runs as a child process of the tfflowers
// binary, so a crash inside TensorFlow's C code takes down one job, not the batch.
//
// Layout under the batch root (ROOT):
//
//	ROOT/jobs.resolved.json   the expanded job list and each job's train arguments
//	ROOT/.feature-cache/      the bottleneck cache shared by every job (unless cache_dir is set)
//	ROOT/NAME/status.json     running, done, failed or interrupted; params, times, exit code, error
//	ROOT/NAME/job.log         the child's stdout and stderr (JSON log lines), appended per attempt
//	ROOT/NAME/run/            the train --out folder: metrics.json, checkpoints/, ...
//	ROOT/summary.csv, summary.md
//
// A re-run skips done jobs, resumes (--resume) jobs whose run folder holds checkpoints and
// re-runs the others. The package never touches TensorFlow itself: it is pure Go.
//
// Jobs are followed through the files their runs write (internal/contract): progress from
// run/metrics.json after each epoch, results from it at the end; of the log, only the CLI's
// final error line (contract.CLIErrorPrefix) and the last lines are kept for status.json.
// Job values are typed by the train flags (Config.Flags) and each job's arguments are
// parsed by train's own flag definitions (Config.CheckArgs) before anything runs.
package batch
