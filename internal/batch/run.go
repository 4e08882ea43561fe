package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
	"github.com/tfflowers/tfflowers/internal/contract"
)

// Errors Run returns besides ErrInvalid.
var (
	ErrJobsFailed  = errors.New("jobs failed")
	ErrInterrupted = errors.New("batch interrupted")
)

// Config is a batch run.
type Config struct {
	JobsFile string
	Out      string // batch root; overrides the jobs file's out: (relative to the working dir)
	Parallel int    // jobs at a time (<= 0: 1)
	// Executable is the tfflowers binary that runs each job (default os.Executable()).
	Executable string
	Flags      map[string]Flag // the train flags a jobs file may set
	// CheckArgs parses one job's train arguments with the real train flag definitions
	// (nil: no check), so a value train would refuse fails the whole file up front.
	CheckArgs func(args []string) error
	LogLevel  string       // passed on to the jobs as --log-level when not empty
	Env       []string     // the jobs' environment (nil: this process's)
	Stdout    io.Writer    // where the summary table is printed (nil: nowhere)
	Logger    *slog.Logger // the batch's own log lines (nil: slog.Default())
}

// checkJobArgs runs check on every job's arguments and lists the jobs train would refuse.
func checkJobArgs(plan *Plan, check func([]string) error) error {
	if check == nil {
		return nil
	}
	var bad []string
	for _, j := range plan.Jobs {
		if err := check(j.Args); err != nil {
			bad = append(bad, fmt.Sprintf("job %s: %v", j.Name, err))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, plan.File, strings.Join(bad, "; "))
	}
	return nil
}

// JobResult is one row of the summary.
type JobResult struct {
	Name       string         `json:"name"`
	Params     map[string]any `json:"params"`
	Status     string         `json:"status"`
	Skipped    bool           `json:"skipped"` // done before this run
	BestValAcc *float64       `json:"best_val_accuracy"`
	Epochs     int            `json:"epochs"`
	Seconds    float64        `json:"seconds"`
	ExitCode   *int           `json:"exit_code"`
	Error      string         `json:"error"`
	Dir        string         `json:"dir"`
}

// Result is what a batch run did.
type Result struct {
	Root string
	Jobs []JobResult
	// Counts by final status; Skipped counts done jobs that this run did not start.
	Done, Failed, Interrupted, Pending, Skipped int
}

// resolved is jobs.resolved.json.
type resolved struct {
	JobsFile string `json:"jobs_file"`
	Root     string `json:"root"`
	CacheDir string `json:"cache_dir"`
	Jobs     []Job  `json:"jobs"`
}

type runner struct {
	cfg   Config
	plan  *Plan
	root  string
	cache string
	exe   string
	log   *slog.Logger
}

// Run loads the jobs file, runs the jobs that are not done yet (cfg.Parallel at a time) and
// writes the summary. A failing job does not stop the others. When ctx is cancelled, the
// running jobs get SIGINT (they checkpoint and exit) and are marked interrupted; no new job
// starts. The error wraps ErrInvalid (nothing ran), ErrInterrupted or ErrJobsFailed;
// the Result is non-nil whenever jobs were considered.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	plan, err := Load(cfg.JobsFile, cfg.Flags)
	if err != nil {
		return nil, err
	}
	if err := checkJobArgs(plan, cfg.CheckArgs); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, plan: plan, log: cfg.Logger, exe: cfg.Executable}
	if r.log == nil {
		r.log = slog.Default()
	}
	switch {
	case cfg.Out != "":
		if r.root, err = filepath.Abs(cfg.Out); err != nil {
			return nil, err
		}
	case plan.Root != "":
		r.root = plan.Root
	default:
		stem := strings.TrimSuffix(filepath.Base(plan.File), filepath.Ext(plan.File))
		r.root = filepath.Join(filepath.Dir(plan.File), "runs", stem)
	}
	r.cache = plan.CacheDir
	if r.cache == "" {
		r.cache = filepath.Join(r.root, cacheDirName)
	}
	if r.exe == "" {
		if r.exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("batch: cannot find the tfflowers binary: %w", err)
		}
	}
	if r.cfg.Parallel <= 0 {
		r.cfg.Parallel = 1
	}
	if err := os.MkdirAll(r.root, 0o755); err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	unlock, err := r.lockRoot()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := r.writeResolved(); err != nil {
		return nil, err
	}
	return r.run(ctx)
}

// lockRoot keeps two batches out of the same root.
func (r *runner) lockRoot() (func(), error) {
	f, err := os.OpenFile(filepath.Join(r.root, rootLockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("batch: %w", err)
	}
	busy, err := atomicfile.TryLock(f)
	if err != nil || busy {
		f.Close()
		if busy {
			return nil, fmt.Errorf("batch: another tfflowers batch is running in %s", r.root)
		}
		return nil, fmt.Errorf("batch: lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func (r *runner) writeResolved() error {
	raw, err := json.MarshalIndent(resolved{JobsFile: r.plan.File, Root: r.root, CacheDir: r.cache, Jobs: r.plan.Jobs}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(r.root, resolvedFile), append(raw, '\n'), 0o644)
}

// run runs the jobs not done yet, then summarizes the batch.
func (r *runner) run(ctx context.Context) (*Result, error) {
	todo, skipped := r.pending()
	r.log.Info("batch", "jobs", len(r.plan.Jobs), "to_run", len(todo), "done_before", len(r.plan.Jobs)-len(todo),
		"parallel", r.cfg.Parallel, "root", r.root, "cache_dir", r.cache)
	r.dispatch(ctx, todo)
	res := r.summarize(skipped)
	if err := r.writeSummary(res); err != nil {
		r.log.Error("writing the summary failed", "err", err)
	}
	return res, outcome(ctx, res, r.root)
}

// pending lists the jobs to run (todo, by index) and marks those an earlier batch
// finished (skipped).
func (r *runner) pending() (todo []int, skipped []bool) {
	jobs := r.plan.Jobs
	skipped = make([]bool, len(jobs))
	for i, j := range jobs {
		dir := filepath.Join(r.root, j.Name)
		st, err := readStatus(dir)
		if err != nil {
			r.log.Warn("unreadable status; running the job again", "job", j.Name, "err", err)
		}
		if st != nil && st.Status == StatusDone {
			skipped[i] = true
			r.log.Info("job already done; skipping", "job", j.Name, "finished", fmtTime(st.Finished), "dir", dir)
			if !sameParams(st.Params, j.Flags) {
				r.log.Warn("the job's params changed since it ran; delete its folder to run it again", "job", j.Name, "dir", dir)
			}
			continue
		}
		if st != nil && st.Status == StatusRunning {
			r.log.Info("job was left running by an earlier batch that did not finish", "job", j.Name)
		}
		todo = append(todo, i)
	}
	return todo, skipped
}

// dispatch runs the todo jobs, cfg.Parallel at a time, and returns when they have all
// ended; once ctx ends no new job starts.
func (r *runner) dispatch(ctx context.Context, todo []int) {
	jobs := r.plan.Jobs
	queue := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(r.cfg.Parallel, max(len(todo), 1)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				r.runJob(ctx, jobs[i], i+1, len(jobs))
			}
		}()
	}
feed:
	for _, i := range todo {
		select {
		case queue <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
}

// outcome is the batch's error: interrupted, failed jobs, or jobs left to run (nil when
// every job is done).
func outcome(ctx context.Context, res *Result, root string) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%w: %d done, %d interrupted, %d not started; run the same command again to resume",
			ErrInterrupted, res.Done, res.Interrupted, res.Pending)
	case res.Failed > 0:
		var names []string
		for _, j := range res.Jobs {
			if j.Status == StatusFailed {
				names = append(names, j.Name)
			}
		}
		return fmt.Errorf("%w: %d of %d jobs failed (%s); logs in %s",
			ErrJobsFailed, res.Failed, len(res.Jobs), strings.Join(names, ", "), filepath.Join(root, "NAME", logFile))
	case res.Interrupted+res.Pending > 0:
		return fmt.Errorf("%w: %d jobs interrupted or not started; run the same command again to resume",
			ErrInterrupted, res.Interrupted+res.Pending)
	}
	return nil
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339)
}

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

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
func round4(x float64) float64 { return float64(int64(x*1e4+0.5)) / 1e4 }
