package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
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

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
func round4(x float64) float64 { return float64(int64(x*1e4+0.5)) / 1e4 }
