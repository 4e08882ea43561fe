package report

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

const (
	// defaultLogInterval keeps non-interactive logs (CI, files, journald)
	// informative without flooding them.
	defaultLogInterval = 10 * time.Second
	// redrawInterval caps terminal redraws at about 10 per second; faster
	// redraws cost time in the training loop and are unreadable anyway.
	redrawInterval = 100 * time.Millisecond
	barWidth       = 30
)

// Progress reports how far a training epoch has got. On a terminal it
// redraws a single status line in place; anywhere else it emits periodic
// structured log lines, because carriage returns make a mess of log files.
// All methods are safe for concurrent use.
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	logger   *slog.Logger
	label    string
	total    int
	interval time.Duration
	terminal bool
	now      func() time.Time // injectable so tests need not sleep

	start    time.Time
	lastDraw time.Time
	lastLog  time.Time
	drawn    bool // whether any bar has been drawn yet
	lineLen  int  // length of the last bar, to blank leftovers when it shrinks
	done     int
	loss     float64
	acc      float64
	finished bool
}

// NewProgress returns a reporter for an epoch of total images, labelled for
// example "epoch 3/10". If w is a terminal it draws a bar on w; otherwise it
// logs through logger (slog.Default when nil) at most once per interval
// (10s when interval <= 0) and once more on Finish. The epoch's clock starts
// now, so call it just before the first batch.
func NewProgress(w io.Writer, logger *slog.Logger, label string, total int, interval time.Duration) *Progress {
	return newProgress(w, logger, label, total, interval, time.Now)
}

func newProgress(w io.Writer, logger *slog.Logger, label string, total int, interval time.Duration, now func() time.Time) *Progress {
	if logger == nil {
		logger = slog.Default()
	}
	if interval <= 0 {
		interval = defaultLogInterval
	}
	start := now()
	return &Progress{
		w:        w,
		logger:   logger,
		label:    label,
		total:    total,
		interval: interval,
		terminal: isTerminal(w),
		now:      now,
		start:    start,
		lastLog:  start,
		loss:     math.NaN(),
		acc:      math.NaN(),
	}
}

// isTerminal reports whether w is an *os.File attached to a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ForceTerminal overrides terminal detection. tfflowers itself never calls it (the
// writer decides); tests use it to draw bars into a buffer.
func (p *Progress) ForceTerminal(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.terminal = on
}

// Interactive reports whether the progress is drawn as a bar on a terminal
// rather than logged. Callers use it to avoid saying the same thing twice:
// on a terminal the bar's summary line already shows the epoch's results.
func (p *Progress) Interactive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.terminal
}

// Update records that done images of this epoch have been processed, with
// the running loss and accuracy. Output is rate limited, so it is cheap to
// call after every batch. Calls after Finish are ignored.
func (p *Progress) Update(done int, loss, acc float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.done, p.loss, p.acc = done, loss, acc
	now := p.now()
	if p.terminal {
		// Always draw the first update and the completed epoch so the bar
		// never lingers at a stale value.
		if p.drawn && now.Sub(p.lastDraw) < redrawInterval && (p.total <= 0 || done < p.total) {
			return
		}
		p.drawBar(now, "")
		return
	}
	if now.Sub(p.lastLog) < p.interval {
		return
	}
	p.lastLog = now
	p.logger.Info("progress", p.attrs(now)...)
}

// Finish prints the final state with summary (which may be empty): on a
// terminal the bar is redrawn and terminated with a newline, followed by the
// summary line; otherwise a single log line is emitted. Later calls do nothing.
func (p *Progress) Finish(summary string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	now := p.now()
	if p.terminal {
		p.drawBar(now, "\n")
		if summary != "" {
			p.write(summary + "\n")
		}
		return
	}
	attrs := p.attrs(now)
	attrs = append(attrs, slog.Duration("elapsed", now.Sub(p.start).Round(time.Millisecond)))
	if summary != "" {
		attrs = append(attrs, slog.String("summary", summary))
	}
	p.logger.Info("finished", attrs...)
}

// drawBar redraws the status line in place; p.mu must be held.
func (p *Progress) drawBar(now time.Time, suffix string) {
	line := p.barLine(now)
	n := len(line)
	// '\r' only moves the cursor, so a shorter line must overwrite the tail
	// of the previous one with spaces.
	if n < p.lineLen {
		line += strings.Repeat(" ", p.lineLen-n)
	}
	p.lineLen = n
	p.lastDraw = now
	p.drawn = true
	p.write("\r" + line + suffix)
}

// barLine renders e.g.
// "epoch 3/10 [=====>    ] 640/2347 212.4 img/s loss 0.4312 acc 0.8721 ETA 8s".
func (p *Progress) barLine(now time.Time) string {
	rate := p.rate(now)
	var b strings.Builder
	if p.label != "" {
		b.WriteString(p.label)
		b.WriteByte(' ')
	}
	if p.total > 0 {
		b.WriteString(bar(float64(p.done)/float64(p.total), barWidth))
		fmt.Fprintf(&b, " %d/%d", p.done, p.total)
	} else {
		// Without a total there is nothing to fill a bar against.
		fmt.Fprintf(&b, "%d", p.done)
	}
	fmt.Fprintf(&b, " %.1f img/s loss %.4f acc %.4f", rate, p.loss, p.acc)
	if eta, ok := p.eta(rate); ok {
		fmt.Fprintf(&b, " ETA %s", eta)
	}
	return b.String()
}

// write sends s to the terminal. A failed write is deliberately ignored:
// losing a progress line must never abort training.
func (p *Progress) write(s string) {
	_, _ = io.WriteString(p.w, s)
}

// attrs are the structured fields of a log line; p.mu must be held.
func (p *Progress) attrs(now time.Time) []any {
	rate := p.rate(now)
	attrs := []any{
		slog.String("label", p.label),
		slog.Int("done", p.done),
		slog.Int("total", p.total),
		// One decimal is all the precision a throughput figure deserves.
		slog.Float64("img_per_s", math.Round(rate*10)/10),
		slog.Float64("loss", p.loss),
		slog.Float64("acc", p.acc),
	}
	if eta, ok := p.eta(rate); ok && p.done < p.total {
		attrs = append(attrs, slog.Duration("eta", eta))
	}
	return attrs
}

// rate is the mean throughput since the epoch started, in images per second.
func (p *Progress) rate(now time.Time) float64 {
	elapsed := now.Sub(p.start).Seconds()
	if elapsed <= 0 || p.done <= 0 {
		return 0
	}
	return float64(p.done) / elapsed
}

// eta extrapolates the mean rate to the remaining images, rounded to whole
// seconds; it is unknown before any throughput is measured.
func (p *Progress) eta(rate float64) (time.Duration, bool) {
	if p.total <= 0 || rate <= 0 {
		return 0, false
	}
	remaining := max(0, p.total-p.done)
	secs := float64(remaining) / rate
	return time.Duration(secs * float64(time.Second)).Round(time.Second), true
}

// bar draws a fraction (clamped to [0, 1]) as "[=====>    ]" of the given width.
func bar(frac float64, width int) string {
	if math.IsNaN(frac) {
		frac = 0
	}
	frac = min(max(frac, 0), 1)
	filled := int(frac * float64(width))
	if filled >= width {
		return "[" + strings.Repeat("=", width) + "]"
	}
	return "[" + strings.Repeat("=", filled) + ">" + strings.Repeat(" ", width-filled-1) + "]"
}
