package batch

// One job: its lock, the child process, following it and recording how it ended.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
	"github.com/tfflowers/tfflowers/internal/contract"
)

// lockJob takes ROOT/NAME/.lock, waiting while a job process left behind by a killed batch
// still holds it. The lock is inherited by the job's process.
func (r *runner) lockJob(ctx context.Context, name, dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for said := false; ; said = true {
		busy, err := atomicfile.TryLock(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		if !busy {
			return f, nil
		}
		if !said {
			r.log.Info("waiting for an earlier process of the job to exit", "job", name)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runJob runs one job to its end and records its status. Problems are recorded in the
// job's status.json, never returned.
func (r *runner) runJob(ctx context.Context, j Job, n, total int) {
	if ctx.Err() != nil {
		return
	}
	log := r.log.With("job", j.Name)
	dir := filepath.Join(r.root, j.Name)
	run := filepath.Join(dir, runDirName)
	prev, _ := readStatus(dir)
	st := &Status{Status: StatusRunning, Params: j.Flags, Attempts: 1}
	if prev != nil {
		st.Attempts = prev.Attempts + 1
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Error("job failed", "err", err)
		return
	}
	lock, err := r.lockJob(ctx, j.Name, dir)
	if err != nil {
		if ctx.Err() == nil {
			failJob(log, dir, st, fmt.Errorf("lock: %w", err))
		}
		return
	}
	defer lock.Close()

	st.Resumed = hasCheckpoints(run)
	st.Args = r.jobArgs(j, run, st.Resumed)
	started := time.Now()
	st.Started = &started
	if err := writeStatus(dir, st); err != nil {
		failJob(log, dir, st, err)
		return
	}
	if err := r.execJob(ctx, log, dir, st, lock, n, total); err != nil {
		failJob(log, dir, st, err)
	}
}

// failJob records a job that could not be run (or followed) as failed.
func failJob(log *slog.Logger, dir string, st *Status, err error) {
	now := time.Now()
	code := -1
	if st.Started == nil {
		st.Started = &now
	}
	st.Status, st.Finished, st.ExitCode, st.Error = StatusFailed, &now, &code, err.Error()
	log.Error("job failed", "err", err)
	if werr := writeStatus(dir, st); werr != nil {
		log.Error("cannot write status.json", "err", werr)
	}
}

// execJob starts the job's `tfflowers train` with st.Args, its output appended to the
// job's log, follows its epochs until it exits (interrupting it when ctx ends) and
// records how it ended. An error means the job could not be started.
func (r *runner) execJob(ctx context.Context, log *slog.Logger, dir string, st *Status, lock *os.File, n, total int) error {
	run := filepath.Join(dir, runDirName)
	logf, err := os.OpenFile(filepath.Join(dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== tfflowers batch: attempt %d at %s: %s %s\n", st.Attempts, st.Started.Format(time.RFC3339), r.exe, strings.Join(st.Args, " "))
	tap := &logTap{}
	epochs := &epochWatch{run: run, report: func(e contract.EpochMetrics) {
		log.Info("job epoch", "epoch", e.Epoch, "val_acc", round4(e.ValAcc), "val_loss", round4(e.ValLoss))
	}}
	epochs.seen = epochs.count() // a resumed job reports only its new epochs

	cmd := exec.Command(r.exe, st.Args...)
	cmd.Env = r.cfg.Env
	// The job writes to its log file itself, not through a pipe: if the batch dies, the job
	// can still log while it saves its checkpoint. The batch follows the file.
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{lock} // held until the job's process is gone too
	childAttrs(cmd)
	offset, err := logf.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	// Pdeathsig fires when the thread that forked the child exits: keep it alive.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", r.exe, err)
	}
	if st.Resumed {
		log.Info("job resumed", "n", n, "of", total, "log", logf.Name())
	} else {
		log.Info("job started", "n", n, "of", total, "log", logf.Name())
	}
	exited := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			log.Info("interrupting job")
			if err := interrupt(cmd.Process); err != nil {
				log.Warn("cannot signal the job", "err", err)
			}
		case <-exited:
		}
	}()
	following := follow(logf.Name(), offset, tap, epochs, exited)
	werr := cmd.Wait()
	close(exited)
	<-following

	r.recordExit(ctx, log, dir, logf, st, tap, werr, *st.Started)
	return nil
}

// jobArgs is the child's command line after the binary: JSON logs, the job's run folder,
// the shared cache unless the job has its own, --resume when there are checkpoints.
func (r *runner) jobArgs(j Job, run string, resume bool) []string {
	args := []string{"--log-format", "json"}
	if r.cfg.LogLevel != "" {
		args = append(args, "--log-level", r.cfg.LogLevel)
	}
	args = append(args, "train", "--out", run)
	if j.CacheDir == "" {
		args = append(args, "--cache-dir", r.cache)
	}
	if resume {
		args = append(args, "--resume")
	}
	return append(args, j.Args...)
}

// recordExit writes the finished attempt's status.json (done, interrupted or failed, with
// the CLI's error line) and logs the outcome.
func (r *runner) recordExit(ctx context.Context, log *slog.Logger, dir string, logf io.Writer, st *Status, tap *logTap, werr error, started time.Time) {
	run := filepath.Join(dir, runDirName)
	finished := time.Now()
	code, detail := 0, ""
	if werr != nil {
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			code, detail = exitInfo(ee)
		} else {
			code, detail = -1, werr.Error()
		}
	}
	st.Finished, st.ExitCode = &finished, &code
	st.Seconds = round1(finished.Sub(started).Seconds())
	switch {
	case code == 0:
		st.Status, st.Error = StatusDone, ""
	case ctx.Err() != nil || code == 130:
		st.Status, st.Error = StatusInterrupted, "interrupted"
	default:
		st.Status = StatusFailed
		st.Error = tap.errorMessage(detail, code)
	}
	fmt.Fprintf(logf, "=== tfflowers batch: %s (exit code %d) after %.1fs\n", st.Status, code, st.Seconds)
	if err := writeStatus(dir, st); err != nil {
		log.Error("cannot write status.json", "err", err)
	}
	switch st.Status {
	case StatusDone:
		attrs := []any{"seconds", st.Seconds}
		if best, epochs, ok := readMetrics(run); ok {
			attrs = append(attrs, "best_val_acc", round4(best), "epochs", epochs)
		}
		log.Info("job done", attrs...)
	case StatusInterrupted:
		log.Warn("job interrupted", "exit_code", code, "seconds", st.Seconds)
	default:
		log.Error("job failed", "exit_code", code, "err", st.Error, "log", filepath.Join(dir, logFile))
	}
}
