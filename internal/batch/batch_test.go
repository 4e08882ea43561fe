package batch_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tfflowers/tfflowers/cli"
	"github.com/tfflowers/tfflowers/internal/batch"
	"github.com/tfflowers/tfflowers/internal/tftest"
)

// linkSubset links the first n photos of each class of the shared flower photos into dst.
func linkSubset(t *testing.T, dst string, n int) {
	t.Helper()
	src := tftest.FlowerPhotos(t)
	classes, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range classes {
		if !c.IsDir() {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(src, c.Name(), "*.jpg"))
		sort.Strings(files)
		if err := os.MkdirAll(filepath.Join(dst, c.Name()), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files[:n] {
			if err := os.Symlink(f, filepath.Join(dst, c.Name(), filepath.Base(f))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// sweep writes a jobs file for tiny jobs (12 images per class, 96x96, 2 epochs) into a
// temp dir beside a linked photo subset, and returns the file and the batch root.
func sweep(t *testing.T, jobs string) (file, root string) {
	t.Helper()
	dir := t.TempDir()
	linkSubset(t, filepath.Join(dir, "photos"), 12)
	text := fmt.Sprintf(`out: runs
defaults:
  data: photos            # relative to this file
  base: %s
  image-size: 96
  epochs: 2
  batch-size: 16
  device: cpu
  intra-op-threads: 2
%s`, tftest.ImageNetBase(t), jobs)
	return writeFile(t, dir, "jobs.yaml", text), filepath.Join(dir, "runs")
}

// runCLI runs the tfflowers binary and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(tfflowersBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func status(t *testing.T, root, job string) *batch.Status {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, job, "status.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var st batch.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("%s/status.json: %v\n%s", job, err, raw)
	}
	return &st
}

// summaryRows reads summary.csv as job -> column -> value.
func summaryRows(t *testing.T, root string) map[string]map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "summary.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]map[string]string{}
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, h := range recs[0] {
			row[h] = rec[i]
		}
		rows[rec[0]] = row
	}
	return rows
}

func runInProcess(t *testing.T, file string) (*batch.Result, error, string) {
	t.Helper()
	var out, logs bytes.Buffer
	res, err := batch.Run(context.Background(), batch.Config{
		JobsFile: file, Executable: tfflowersBin, Flags: cli.BatchFlags(), Stdout: &out,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	t.Logf("batch log:\n%s", logs.String())
	return res, err, out.String()
}

func TestBatchRunsSkipsDoneAndRetriesFailed(t *testing.T) {
	file, root := sweep(t, `grid:
  lr: [0.001, 0.01]
jobs:
  - {name: broken, data: no-such-folder}
`)
	code, stdout, stderr := runCLI(t, "batch", file, "--parallel", "2")
	if code != cli.ExitFailure {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, cli.ExitFailure, stdout, stderr)
	}
	for _, want := range []string{"| job | params | best val accuracy | epochs | time | status |", "| lr-0.001 | lr=0.001 |", "| broken | data=no-such-folder |", "failed (exit 2)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary on stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "1 of 3 jobs failed (broken)") {
		t.Errorf("stderr does not say which job failed:\n%s", stderr)
	}
	md, err := os.ReadFile(filepath.Join(root, "summary.md"))
	if err != nil || !strings.HasPrefix(stdout, string(md)) {
		t.Errorf("summary.md (%v) differs from stdout:\n%s", err, md)
	}
	rows := summaryRows(t, root)
	first := map[string]*batch.Status{}
	for _, job := range []string{"lr-0.001", "lr-0.01"} {
		row, st := rows[job], status(t, root, job)
		if row["status"] != "done" || row["epochs"] != "2" || row["best_val_accuracy"] == "" || row["--lr"] != strings.TrimPrefix(job, "lr-") {
			t.Errorf("summary row of %s: %v", job, row)
		}
		if st.Status != batch.StatusDone || *st.ExitCode != 0 || st.Started == nil || st.Finished == nil || st.Seconds <= 0 || st.Attempts != 1 {
			t.Errorf("%s/status.json: %+v", job, st)
		}
		if st.Params["data"] != "photos" || st.Params["epochs"] != 2.0 {
			t.Errorf("%s/status.json params: %v", job, st.Params)
		}
		if _, err := os.Stat(filepath.Join(root, job, "run", "metrics.json")); err != nil {
			t.Error(err)
		}
		log, _ := os.ReadFile(filepath.Join(root, job, "job.log"))
		if !strings.Contains(string(log), `"msg":"epoch done"`) {
			t.Errorf("%s/job.log lacks the child's JSON log lines:\n%s", job, log)
		}
		first[job] = st
	}
	broken := status(t, root, "broken")
	if rows["broken"]["status"] != "failed" || broken.Status != batch.StatusFailed || *broken.ExitCode != cli.ExitUsage ||
		!strings.Contains(broken.Error, "no-such-folder") {
		t.Errorf("broken job: row %v, status %+v", rows["broken"], broken)
	}
	// One cache folder, shared by both jobs.
	if keys, _ := filepath.Glob(filepath.Join(root, ".feature-cache", "*", "key.json")); len(keys) != 1 {
		t.Errorf("feature cache keys: %v", keys)
	}
	var resolved struct {
		Jobs []batch.Job `json:"jobs"`
	}
	raw, _ := os.ReadFile(filepath.Join(root, "jobs.resolved.json"))
	if err := json.Unmarshal(raw, &resolved); err != nil || len(resolved.Jobs) != 3 || resolved.Jobs[2].Name != "broken" {
		t.Errorf("jobs.resolved.json (%v):\n%s", err, raw)
	}

	// Again: the done jobs are skipped (their status is untouched), the failed one re-runs.
	res, err, out := runInProcess(t, file)
	if !errors.Is(err, batch.ErrJobsFailed) || res.Skipped != 2 || res.Failed != 1 {
		t.Fatalf("re-run: err %v, result %+v", err, res)
	}
	for job, st := range first {
		again := status(t, root, job)
		if !again.Started.Equal(*st.Started) || again.Attempts != 1 {
			t.Errorf("%s ran again: %+v", job, again)
		}
	}
	if st := status(t, root, "broken"); st.Attempts != 2 || !st.Started.After(*broken.Started) {
		t.Errorf("broken job not re-run: %+v", st)
	}
	if !strings.Contains(out, "done (earlier run)") {
		t.Errorf("re-run summary:\n%s", out)
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBatchKilledInterruptedAndResumed(t *testing.T) {
	file, root := sweep(t, `jobs:
  - {name: a, lr: 0.001}
  - {name: b, lr: 0.003, epochs: 40}   # still running well after its first checkpoint
  - {name: c, lr: 0.01}
`)
	isStatus := func(job, want string) func() bool {
		return func() bool { st := status(t, root, job); return st != nil && st.Status == want }
	}

	// 1. SIGKILL the batch once job a is done and job b has saved its first checkpoint. The
	// kernel sends b SIGINT (Pdeathsig): it checkpoints and exits, or finishes; its
	// status.json still says running.
	cmd := exec.Command(tfflowersBin, "batch", file)
	var stderr1 bytes.Buffer
	cmd.Stderr = &stderr1
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Two trainings in child processes: ~40 s on 2 quiet cores, over a minute when other
	// work shares them.
	waitFor(t, "job a to be done and job b to checkpoint", 180*time.Second, func() bool {
		return isStatus("a", batch.StatusDone)() && hasCheckpoint(root, "b")
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	t.Logf("killed batch's log:\n%s", stderr1.String())
	a := status(t, root, "a")
	if st := status(t, root, "b"); st.Status != batch.StatusRunning {
		t.Fatalf("job b after the batch was killed: %+v", st)
	}

	// 2. Run again and send SIGINT as soon as job b starts again (after the process left
	// behind by the killed batch has exited): exit 130, b is interrupted, c never starts.
	cmd = exec.Command(tfflowersBin, "batch", file)
	var stderr2 bytes.Buffer
	cmd.Stderr = &stderr2
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "job b to start again", 60*time.Second, func() bool {
		st := status(t, root, "b")
		return st != nil && st.Status == batch.StatusRunning && st.Started.After(started)
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	t.Logf("interrupted batch's log:\n%s", stderr2.String())
	if code := cmd.ProcessState.ExitCode(); code != cli.ExitInterrupted {
		t.Fatalf("SIGINT: exit code %d (%v), want %d", code, err, cli.ExitInterrupted)
	}
	if st := status(t, root, "b"); st.Status != batch.StatusInterrupted || !st.Resumed || !slices.Contains(st.Args, "--resume") {
		t.Fatalf("job b after SIGINT: %+v", st)
	}
	if st := status(t, root, "c"); st != nil {
		t.Fatalf("job c started after SIGINT: %+v", st)
	}
	if !strings.Contains(stderr2.String(), "job already done; skipping") {
		t.Errorf("the re-run does not say it skips job a")
	}
	if rows := summaryRows(t, root); rows["b"]["status"] != "interrupted" || rows["c"]["status"] != "pending" {
		t.Errorf("summary after SIGINT: %v", rows)
	}

	// 3. Run again to the end: everything is done, job a never ran again, b resumed.
	res, err, out := runInProcess(t, file)
	if err != nil || res.Done != 3 {
		t.Fatalf("final run: err %v, result %+v\n%s", err, res, out)
	}
	rows := summaryRows(t, root)
	for job, epochs := range map[string]string{"a": "2", "b": "40", "c": "2"} {
		if row := rows[job]; row["status"] != "done" || row["epochs"] != epochs {
			t.Errorf("summary row of %s: %v", job, row)
		}
	}
	if again := status(t, root, "a"); !again.Started.Equal(*a.Started) || again.Attempts != 1 {
		t.Errorf("job a ran again: %+v", again)
	}
	b := status(t, root, "b")
	var m struct {
		ResumedFrom string `json:"resumed_from"`
	}
	raw, _ := os.ReadFile(filepath.Join(root, "b", "run", "metrics.json"))
	if b.Attempts != 3 || !b.Resumed || json.Unmarshal(raw, &m) != nil || m.ResumedFrom == "" {
		t.Errorf("job b was not resumed: %+v, metrics resumed_from %q", b, m.ResumedFrom)
	}
	if c := status(t, root, "c"); c.Resumed || c.Attempts != 1 {
		t.Errorf("job c: %+v", c)
	}
	// No job process outlives the batches: every job lock is free.
	for _, job := range []string{"a", "b", "c"} {
		f, err := os.OpenFile(filepath.Join(root, job, ".lock"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Errorf("job %s is still locked: %v", job, err)
		}
		f.Close()
	}
}

func hasCheckpoint(root, job string) bool {
	m, _ := filepath.Glob(filepath.Join(root, job, "run", "checkpoints", "step-*"))
	return len(m) > 0
}

func TestBatchUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.yaml", "defaults:\n  data: x\ngrid:\n  lr: [0.1]\n  hed: [gap]\n")
	code, _, stderr := runCLI(t, "batch", bad)
	if code != cli.ExitUsage || !strings.Contains(stderr, "bad.yaml: line 5") || !strings.Contains(stderr, `"hed"`) {
		t.Errorf("unknown flag: exit %d, stderr %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "runs")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an invalid jobs file created the batch root: %v", err)
	}
	for _, args := range [][]string{{"batch"}, {"batch", bad, "extra"}, {"batch", bad, "--parallel", "0"}} {
		if code, _, stderr := runCLI(t, args...); code != cli.ExitUsage {
			t.Errorf("%v: exit %d, stderr %s", args, code, stderr)
		}
	}
}

// A job whose process dies of a signal (as on a crash in TensorFlow's C code) fails alone.
// The executable is a stand-in script, so no TensorFlow runs here.
func TestCrashingJobFailsAlone(t *testing.T) {
	dir := t.TempDir()
	fake := writeFile(t, dir, "fake-tfflowers", `#!/bin/sh
out=""; crash=""
while [ $# -gt 0 ]; do
  case "$1" in --out) out="$2"; shift;; --lr=0.5) crash=1;; esac
  shift
done
if [ -n "$crash" ]; then echo "F tensorflow/core/framework/tensor.cc:1: Check failed: boom" >&2; kill -SEGV $$; fi
mkdir -p "$out"
echo '{"epochs": [{"val_accuracy": 0.5}, {"val_accuracy": 0.75}, {"val_accuracy": 0.625}]}' > "$out/metrics.json"
`)
	if err := os.Chmod(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, dir, "jobs.json", `{"out": "runs", "defaults": {"data": "photos"}, "grid": {"lr": [0.1, 0.5, 0.01]}}`)
	var out bytes.Buffer
	res, err := batch.Run(context.Background(), batch.Config{
		JobsFile: file, Executable: fake, Flags: cli.BatchFlags(), Parallel: 2, Stdout: &out,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if !errors.Is(err, batch.ErrJobsFailed) || res.Done != 2 || res.Failed != 1 {
		t.Fatalf("err %v, result %+v", err, res)
	}
	root := filepath.Join(dir, "runs")
	st := status(t, root, "lr-0.5")
	if st.Status != batch.StatusFailed || *st.ExitCode != 128+11 || !strings.Contains(st.Error, "signal 11") || !strings.Contains(st.Error, "Check failed: boom") {
		t.Errorf("crashed job: %+v", st)
	}
	for _, job := range []string{"lr-0.1", "lr-0.01"} {
		if row := summaryRows(t, root)[job]; row["status"] != "done" || row["best_val_accuracy"] != "0.7500" || row["epochs"] != "3" {
			t.Errorf("summary row of %s: %v", job, row)
		}
	}
	if !strings.Contains(out.String(), "| lr-0.5 | lr=0.5 | - | - |") || !strings.Contains(out.String(), "failed (exit 139)") {
		t.Errorf("summary:\n%s", out.String())
	}
}

// TestEpochsFollowedThroughMetrics: the batch reports a job's epochs from the
// run/metrics.json the job writes, not from its log text: this fake job logs nothing.
func TestEpochsFollowedThroughMetrics(t *testing.T) {
	dir := t.TempDir()
	fake := writeFile(t, dir, "fake-tfflowers", `#!/bin/sh
out=""
while [ $# -gt 0 ]; do
  case "$1" in --out) out="$2"; shift;; esac
  shift
done
mkdir -p "$out"
echo '{"schema": 2, "epochs": [{"epoch": 1, "val_accuracy": 0.5, "val_loss": 1.25}]}' > "$out/.m" && mv "$out/.m" "$out/metrics.json"
sleep 1
echo '{"schema": 2, "epochs": [{"epoch": 1, "val_accuracy": 0.5, "val_loss": 1.25}, {"epoch": 2, "val_accuracy": 0.75, "val_loss": 0.5}]}' > "$out/.m" && mv "$out/.m" "$out/metrics.json"
sleep 1
`)
	if err := os.Chmod(fake, 0o755); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, dir, "jobs.json", `{"out": "runs", "defaults": {"data": "photos"}, "jobs": [{"name": "one"}]}`)
	var logs bytes.Buffer
	_, err := batch.Run(context.Background(), batch.Config{
		JobsFile: file, Executable: fake, Flags: cli.BatchFlags(), Parallel: 1, Stdout: io.Discard,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "job epoch" {
			got = append(got, fmt.Sprintf("%v:%v:%v", rec["epoch"], rec["val_acc"], rec["val_loss"]))
		}
	}
	if want := []string{"1:0.5:1.25", "2:0.75:0.5"}; !slices.Equal(got, want) {
		t.Fatalf("job epoch records %v, want %v\n%s", got, want, logs.String())
	}
}

// A job whose arguments train's own flags refuse fails the whole file before any job runs.
func TestCheckArgsRefusesFile(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "jobs.json", `{"out": "runs", "defaults": {"data": "photos"}, "grid": {"lr": [0.1, 0.5]}}`)
	_, err := batch.Run(context.Background(), batch.Config{
		JobsFile: file, Executable: "/nonexistent", Flags: cli.BatchFlags(), Stdout: io.Discard,
		CheckArgs: func(args []string) error {
			if slices.Contains(args, "--lr=0.5") {
				return errors.New("invalid value for --lr")
			}
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if !errors.Is(err, batch.ErrInvalid) || !strings.Contains(err.Error(), "job lr-0.5: invalid value for --lr") {
		t.Fatalf("err %v, want ErrInvalid naming job lr-0.5", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "runs")); err == nil {
		t.Error("the batch root was created for a refused jobs file")
	}
}
