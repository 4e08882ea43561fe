package report

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock so rate, ETA and throttling can be
// tested without sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestProgressTerminal(t *testing.T) {
	clock := newFakeClock()
	var out bytes.Buffer
	p := newProgress(&out, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)), "epoch 3/10", 2000, 0, clock.Now)
	p.ForceTerminal(true)

	clock.Advance(2 * time.Second)
	p.Update(400, 0.43121, 0.87209) // 200 img/s, 1600 left: ETA 8s
	first := out.String()
	for _, want := range []string{
		"\repoch 3/10 [======>                       ] 400/2000",
		"200.0 img/s",
		"loss 0.4312",
		"acc 0.8721",
		"ETA 8s",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("bar %q lacks %q", first, want)
		}
	}

	// A second update within the redraw interval must not redraw.
	clock.Advance(50 * time.Millisecond)
	p.Update(410, 0.43, 0.87)
	if out.String() != first {
		t.Errorf("redrew within %v: %q", redrawInterval, out.String()[len(first):])
	}

	clock.Advance(100 * time.Millisecond)
	p.Update(420, 0.42, 0.88)
	if n := strings.Count(out.String(), "\r"); n != 2 {
		t.Errorf("got %d redraws, want 2", n)
	}

	// Completing the epoch is always drawn, even right after another draw.
	p.Update(2000, 0.40, 0.90)
	if !strings.Contains(out.String(), "2000/2000") {
		t.Errorf("completed epoch not drawn: %q", out.String())
	}

	p.Finish("val_loss 0.3812 val_acc 0.9012")
	got := out.String()
	if !strings.HasSuffix(got, "\nval_loss 0.3812 val_acc 0.9012\n") {
		t.Errorf("output does not end with newline-terminated bar and summary: %q", got)
	}
	if !strings.Contains(got, "[==============================]") {
		t.Errorf("final bar is not full: %q", got)
	}

	// Finish is final: neither Update nor a second Finish may write more.
	p.Update(10, 1, 0)
	p.Finish("again")
	if out.String() != got {
		t.Errorf("wrote after Finish: %q", out.String()[len(got):])
	}
}

func TestProgressTerminalShorterLineIsPadded(t *testing.T) {
	clock := newFakeClock()
	var out bytes.Buffer
	p := newProgress(&out, nil, "e", 100, 0, clock.Now)
	p.ForceTerminal(true)
	clock.Advance(time.Second)
	p.Update(50, 12345.6789, 0.5) // wide loss
	first := strings.TrimPrefix(out.String(), "\r")
	out.Reset()
	clock.Advance(time.Second)
	p.Update(60, 0.1, 0.5)
	second := strings.TrimPrefix(out.String(), "\r")
	if len(second) < len(first) {
		t.Errorf("shorter redraw %q (len %d) would leave the tail of %q (len %d) visible",
			second, len(second), first, len(first))
	}
}

func TestProgressLog(t *testing.T) {
	clock := newFakeClock()
	var logs, out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	p := newProgress(&out, logger, "epoch 1/5", 1000, 10*time.Second, clock.Now)

	steps := []struct {
		advance  time.Duration
		done     int
		wantLogs int // cumulative log lines after this update
	}{
		{1 * time.Second, 100, 0},
		{8 * time.Second, 500, 0},
		{1 * time.Second, 600, 1}, // 10s since start
		{5 * time.Second, 700, 1},
		{5 * time.Second, 800, 2},
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		p.Update(s.done, 0.5, 0.75)
		if n := countLines(logs.String()); n != s.wantLogs {
			t.Fatalf("step %d: %d log lines, want %d:\n%s", i, n, s.wantLogs, logs.String())
		}
	}
	first := strings.SplitN(logs.String(), "\n", 2)[0]
	for _, want := range []string{"msg=progress", `label="epoch 1/5"`, "done=600", "total=1000", "img_per_s=60", "loss=0.5", "acc=0.75", "eta="} {
		if !strings.Contains(first, want) {
			t.Errorf("log line %q lacks %q", first, want)
		}
	}

	p.Finish("val_acc=0.8")
	if n := countLines(logs.String()); n != 3 {
		t.Fatalf("%d log lines after Finish, want 3:\n%s", n, logs.String())
	}
	last := strings.Split(strings.TrimSpace(logs.String()), "\n")[2]
	for _, want := range []string{"msg=finished", "done=800", "loss=0.5", "acc=0.75", "elapsed=20s", `summary="val_acc=0.8"`} {
		if !strings.Contains(last, want) {
			t.Errorf("final log line %q lacks %q", last, want)
		}
	}
	if out.Len() != 0 {
		t.Errorf("non-terminal mode wrote to w: %q", out.String())
	}
}

func TestProgressNotTerminalForNonFile(t *testing.T) {
	p := NewProgress(&bytes.Buffer{}, nil, "x", 1, 0)
	if p.terminal {
		t.Error("bytes.Buffer detected as a terminal")
	}
	if p.interval != defaultLogInterval {
		t.Errorf("interval = %v, want default %v", p.interval, defaultLogInterval)
	}
	if p.Interactive() {
		t.Error("Interactive() true for a bytes.Buffer")
	}
	p.ForceTerminal(true)
	if !p.Interactive() {
		t.Error("Interactive() false after ForceTerminal(true)")
	}
}

func TestProgressConcurrentUpdates(t *testing.T) {
	clock := newFakeClock()
	var out bytes.Buffer
	p := newProgress(&out, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)), "e", 8000, time.Millisecond, clock.Now)
	p.ForceTerminal(true)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				clock.Advance(time.Millisecond)
				p.Update(g*1000+i, 0.1, 0.9)
			}
		})
	}
	wg.Wait()
	p.Finish("")
	if !strings.HasSuffix(out.String(), "\n") {
		t.Errorf("final output not newline terminated")
	}
}

func TestBar(t *testing.T) {
	tests := []struct {
		frac float64
		want string
	}{
		{0, "[>         ]"},
		{0.55, "[=====>    ]"},
		{1, "[==========]"},
		{1.7, "[==========]"},
		{-1, "[>         ]"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.frac), func(t *testing.T) {
			if got := bar(tt.frac, 10); got != tt.want {
				t.Errorf("bar(%v) = %q, want %q", tt.frac, got, tt.want)
			}
		})
	}
}

func TestProgressUnknownTotal(t *testing.T) {
	clock := newFakeClock()
	var out bytes.Buffer
	p := newProgress(&out, nil, "eval", 0, 0, clock.Now)
	p.ForceTerminal(true)
	clock.Advance(time.Second)
	p.Update(64, 0.2, 0.9)
	got := out.String()
	if strings.Contains(got, "[") || strings.Contains(got, "ETA") {
		t.Errorf("bar or ETA drawn without a total: %q", got)
	}
	if !strings.Contains(got, "64.0 img/s") {
		t.Errorf("rate missing: %q", got)
	}
}

func countLines(s string) int { return strings.Count(s, "\n") }
