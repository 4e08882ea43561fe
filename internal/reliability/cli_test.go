package reliability_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tfflowers/tfflowers/internal/tftest"
)

// proc is a running tfflowers command whose stderr is collected line by line.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	seen  chan string // lines, for waiting on one
	done  chan struct{}
	err   error
}

func startCLI(t *testing.T, cred *syscall.Credential, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(cliBin, args...)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2", "TFFLOWERS_LOG_LEVEL=info")
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Env = append(cmd.Env, "HOME=/tmp")
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	p := &proc{cmd: cmd, seen: make(chan string, 10000), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.seen <- sc.Text():
			default:
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitFor blocks until a stderr line contains s; the process exiting first fails the test.
func (p *proc) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	if !p.waitOrExit(t, s, timeout) {
		t.Fatalf("tfflowers exited (%v) before printing %q:\n%s", p.err, s, p.stderr())
	}
}

// waitOrExit blocks until a stderr line contains s (true) or the process exits (false).
func (p *proc) waitOrExit(t *testing.T, s string, timeout time.Duration) bool {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line := <-p.seen:
			if strings.Contains(line, s) {
				return true
			}
		case <-p.done:
			return false
		case <-deadline:
			t.Fatalf("no %q on stderr within %v:\n%s", s, timeout, p.stderr())
		}
	}
}

// wait returns the exit code, or -1 and the signal when the process was killed.
func (p *proc) wait(t *testing.T, timeout time.Duration) (int, syscall.Signal) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("tfflowers did not exit within %v:\n%s", timeout, p.stderr())
	}
	ws := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return -1, ws.Signal()
	}
	return ws.ExitStatus(), 0
}

func trainArgs(data, out, cache string, epochs int, extra ...string) []string {
	args := []string{"train", "--data", data, "--base", "", "--out", out, "--image-size", "32", "--batch-size", "4",
		"--epochs", fmt.Sprint(epochs), "--seed", "11", "--val-split", "0.25", "--device", "cpu"}
	if cache == "" {
		args = append(args, "--no-cache")
	} else {
		args = append(args, "--cache-dir", cache)
	}
	return append(args, extra...)
}

type cliState struct {
	Epoch      int `json:"epoch"`
	Batch      int `json:"batch"`
	GlobalStep int `json:"global_step"`
}

func newestCheckpoint(t *testing.T, out string) (string, cliState) {
	t.Helper()
	cks, _ := filepath.Glob(filepath.Join(out, "checkpoints", "step-*"))
	if len(cks) == 0 {
		t.Fatalf("no checkpoint in %s", out)
	}
	dir := cks[len(cks)-1]
	var st cliState
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "state.json")), &st); err != nil {
		t.Fatal(err)
	}
	return dir, st
}

// TestSignalsCheckpointAndExit130: SIGINT or SIGTERM during training finishes the step in
// flight, saves a checkpoint of it, prints that it was interrupted and exits with 130;
// --resume continues from that checkpoint.
func TestSignalsCheckpointAndExit130(t *testing.T) {
	base := tftest.ImageNetBase(t)
	data := t.TempDir()
	flowerSet(t, data, 8, "daisy", "roses")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			args := trainArgs(data, out, filepath.Join(t.TempDir(), "cache"), 1000)
			args[4] = base
			p := startCLI(t, nil, args...)
			p.waitFor(t, "epoch done", 60*time.Second)
			time.Sleep(150 * time.Millisecond) // land inside a later epoch
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			code, _ := p.wait(t, 30*time.Second)
			stderr := p.stderr()
			if code != 130 {
				t.Fatalf("exit code %d after %v, want 130:\n%s", code, sig, stderr)
			}
			contains(t, "stderr", stderr, "training interrupted; checkpoint saved, continue with --resume")
			dir, st := newestCheckpoint(t, out)
			if want := fmt.Sprintf("step-%08d", st.GlobalStep); filepath.Base(dir) != want || st.GlobalStep != st.Epoch*3+st.Batch {
				t.Fatalf("newest checkpoint %s holds %+v; want the last complete step (3 steps per epoch)", dir, st)
			}
			t.Logf("%v: exit 130, checkpoint %s (epoch %d, batch %d); last line: %s", sig, filepath.Base(dir), st.Epoch+1, st.Batch, stderr[strings.LastIndex(stderr, "\n")+1:])

			args = trainArgs(data, out, filepath.Join(t.TempDir(), "cache"), st.Epoch+1, "--resume")
			args[4] = base
			p = startCLI(t, nil, args...)
			if code, _ := p.wait(t, 60*time.Second); code != 0 {
				t.Fatalf("--resume exited %d:\n%s", code, p.stderr())
			}
			m := readMetrics(t, out)
			if len(m.Epochs) != st.Epoch+1 || !strings.HasPrefix(m.ResumedFrom, fmt.Sprintf("epoch %d batch %d", st.Epoch+1, st.Batch)) {
				t.Fatalf("after --resume: %d epochs, resumed from %q; want %d epochs from epoch %d batch %d", len(m.Epochs), m.ResumedFrom, st.Epoch+1, st.Epoch+1, st.Batch)
			}
		})
	}
}

// TestKill9ThenResumeMatches: kill -9 at three random moments of a run (cache on, 4
// epochs), resuming each time; the final metrics equal an uninterrupted run's with the
// same seed (validation loss within 1e-4 every epoch).
func TestKill9ThenResumeMatches(t *testing.T) {
	if testing.Short() {
		t.Skip("four training processes; skipped with -short")
	}
	base := tftest.ImageNetBase(t)
	data := t.TempDir()
	flowerSet(t, data, 12, "daisy", "roses")
	args := func(out, cache string) []string {
		a := trainArgs(data, out, cache, 4, "--resume")
		a[4] = base
		return a
	}
	refOut := filepath.Join(t.TempDir(), "ref")
	p := startCLI(t, nil, args(refOut, filepath.Join(t.TempDir(), "refcache"))...)
	p.waitFor(t, "msg=training", 60*time.Second)
	start := time.Now()
	if code, _ := p.wait(t, 120*time.Second); code != 0 {
		t.Fatalf("reference run exited %d:\n%s", code, p.stderr())
	}
	full := time.Since(start) // training alone, without process start and model loading
	ref := readMetrics(t, refOut)

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	out, cache := filepath.Join(t.TempDir(), "killed"), filepath.Join(t.TempDir(), "cache")
	killed := 0
	for i := 0; i < 3; i++ {
		if m, err := os.ReadFile(filepath.Join(out, "metrics.json")); err == nil && strings.Contains(string(m), `"epoch": 4,`) {
			t.Logf("the run completed after %d kill -9s; no further rounds", killed)
			break
		}
		p := startCLI(t, nil, args(out, cache)...)
		p.waitFor(t, "msg=training", 60*time.Second)
		// Round 1: a random moment of the training's first 70 % (mostly the first epoch:
		// backbone runs, cache writes). Later rounds: a random moment within 150 ms after an epoch ends,
		// while or after its checkpoint, metrics.json and curves.png are written.
		var when string
		if i == 0 {
			// Within the first 70 %: the same run with its cache as cold can finish a little
			// sooner than the reference did (seen in CI: killed 1.66 s into a 2.05 s run
			// that had already exited 0), and then nothing was killed.
			d := time.Duration(0.7 * float64(full) * rng.Float64())
			time.Sleep(d)
			when = fmt.Sprintf("%v into training", d.Round(time.Millisecond))
		} else {
			p.waitOrExit(t, "epoch done", 60*time.Second)
			d := time.Duration(150 * rng.Float64() * float64(time.Millisecond))
			time.Sleep(d)
			when = fmt.Sprintf("%v after an epoch ended", d.Round(time.Millisecond))
		}
		p.cmd.Process.Signal(syscall.SIGKILL)
		code, sig := p.wait(t, 60*time.Second)
		if sig == syscall.SIGKILL {
			killed++
		}
		cks, _ := filepath.Glob(filepath.Join(out, "checkpoints", "step-*"))
		tmps, _ := filepath.Glob(filepath.Join(out, "checkpoints", ".tmp-*"))
		t.Logf("kill -9 %s (seed %d): exit %d signal %v; then %d checkpoints, %d temp folders", when, seed, code, sig, len(cks), len(tmps))
	}
	if killed == 0 {
		t.Fatalf("no run was still going when killed (full run takes %v)", full)
	}
	p = startCLI(t, nil, args(out, cache)...)
	if code, _ := p.wait(t, 120*time.Second); code != 0 {
		t.Fatalf("final --resume exited %d:\n%s", code, p.stderr())
	}
	if tmps, _ := filepath.Glob(filepath.Join(out, "checkpoints", ".tmp-*")); len(tmps) != 0 {
		t.Errorf("temp folders of killed checkpoint saves remain after a complete run: %v", tmps)
	}
	got := readMetrics(t, out)
	if len(got.Epochs) != 4 || len(ref.Epochs) != 4 {
		t.Fatalf("%d epochs after kills and resumes, reference %d", len(got.Epochs), len(ref.Epochs))
	}
	for i := range ref.Epochs {
		if d := math.Abs(got.Epochs[i].ValLoss - ref.Epochs[i].ValLoss); d > 1e-4 {
			t.Errorf("epoch %d: val loss %.6f after %d kill -9s, %.6f uninterrupted", i+1, got.Epochs[i].ValLoss, killed, ref.Epochs[i].ValLoss)
		}
	}
	t.Logf("%d kill -9s, then resume: final val loss %.6f, uninterrupted %.6f (one run: %v)", killed, got.FinalValLoss, ref.FinalValLoss, full.Round(time.Millisecond))
}

// TestUnreadableFilesAsNobody runs the CLI as nobody (the tests run as root, who can read
// mode-0000 files) over a dataset with an unreadable photo and an unlistable sub-folder:
// both are skipped with "permission denied" and training finishes.
func TestUnreadableFilesAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a process as nobody; as a normal user, the pipeline's own unreadable-file test covers this")
	}
	const nobody = 65534
	root, err := os.MkdirTemp("", "tfflowers-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	os.Chmod(root, 0o755)
	data := filepath.Join(root, "data")
	flowerSet(t, data, 6, "daisy", "roses")
	secret := filepath.Join(data, "roses", "secret.jpg")
	write(t, secret, readFile(t, photos(t, "roses", 7)[6]))
	os.Chmod(secret, 0)
	locked := filepath.Join(data, "daisy", "locked")
	write(t, filepath.Join(locked, "hidden.jpg"), readFile(t, photos(t, "daisy", 7)[6]))
	os.Chmod(locked, 0)
	out := filepath.Join(root, "out")
	os.Mkdir(out, 0o755)
	if err := os.Chown(out, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	args := trainArgs(data, out, "", 1)
	args[4] = tftest.ImageNetBase(t)
	p := startCLI(t, &syscall.Credential{Uid: nobody, Gid: nobody}, args...)
	code, _ := p.wait(t, 120*time.Second)
	stderr := p.stderr()
	if code != 0 {
		t.Fatalf("training as nobody exited %d:\n%s", code, stderr)
	}
	contains(t, "stderr", stderr, "skipped unusable files", "count=2", "secret.jpg (cannot read: permission denied)", "locked (cannot list folder: permission denied)")
	if m := readMetrics(t, out); m.Skipped != 2 || m.TrainImages+m.ValImages+m.TestImages != 12 {
		t.Fatalf("metrics: %d skipped, %d images; want 2 and 12", m.Skipped, m.TrainImages+m.ValImages+m.TestImages)
	}
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "skipped") {
			t.Logf("%s", l)
		}
	}
}
