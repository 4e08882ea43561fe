package batch

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
)

// summarize reads every job's status.json and run/metrics.json.
func (r *runner) summarize(skipped []bool) *Result {
	res := &Result{Root: r.root}
	for i, j := range r.plan.Jobs {
		dir := filepath.Join(r.root, j.Name)
		jr := JobResult{Name: j.Name, Params: j.Params, Status: StatusPending, Skipped: skipped[i], Dir: dir}
		if st, err := readStatus(dir); err == nil && st != nil {
			jr.Status, jr.Seconds, jr.ExitCode, jr.Error = st.Status, st.Seconds, st.ExitCode, st.Error
			if st.Status == StatusRunning { // only after a crash of this process
				jr.Status = StatusInterrupted
			}
		}
		if best, epochs, ok := readMetrics(filepath.Join(dir, runDirName)); ok {
			jr.BestValAcc, jr.Epochs = &best, epochs
		}
		switch jr.Status {
		case StatusDone:
			res.Done++
			if jr.Skipped {
				res.Skipped++
			}
		case StatusFailed:
			res.Failed++
		case StatusInterrupted:
			res.Interrupted++
		default:
			res.Pending++
		}
		res.Jobs = append(res.Jobs, jr)
	}
	return res
}

func (r *runner) writeSummary(res *Result) error {
	md := Markdown(res)
	if err := atomicfile.WriteFile(filepath.Join(r.root, summaryMD), []byte(md), 0o644); err != nil {
		return err
	}
	raw, err := CSV(res)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(r.root, summaryCSV), raw, 0o644); err != nil {
		return err
	}
	if r.cfg.Stdout != nil {
		fmt.Fprint(r.cfg.Stdout, md)
	}
	r.log.Info("batch finished", "done", res.Done, "failed", res.Failed, "interrupted", res.Interrupted,
		"not_started", res.Pending, "summary", filepath.Join(r.root, summaryMD))
	return nil
}

// paramKeys are the keys of every job's own params, sorted.
func paramKeys(res *Result) []string {
	set := map[string]bool{}
	for _, j := range res.Jobs {
		for k := range j.Params {
			set[k] = true
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func fmtValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []string:
		return strings.Join(x, ",")
	}
	return fmt.Sprint(v)
}

func fmtParams(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + fmtValue(p[k])
	}
	return strings.Join(parts, " ")
}

func fmtSeconds(s float64) string {
	if s <= 0 {
		return "-"
	}
	if s < 60 {
		return fmt.Sprintf("%.1fs", s)
	}
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}

func statusCell(j JobResult) string {
	s := j.Status
	if j.Status == StatusFailed && j.ExitCode != nil {
		s += fmt.Sprintf(" (exit %d)", *j.ExitCode)
	}
	if j.Skipped {
		s += " (earlier run)"
	}
	return s
}

// Markdown is summary.md: one table row per job, then the failed jobs' errors.
func Markdown(res *Result) string {
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var b strings.Builder
	b.WriteString("| job | params | best val accuracy | epochs | time | status |\n")
	b.WriteString("|---|---|---:|---:|---:|---|\n")
	for _, j := range res.Jobs {
		acc, epochs := "-", "-"
		if j.BestValAcc != nil {
			acc, epochs = fmt.Sprintf("%.4f", *j.BestValAcc), strconv.Itoa(j.Epochs)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", esc(j.Name), esc(fmtParams(j.Params)), acc, epochs, fmtSeconds(j.Seconds), statusCell(j))
	}
	first := true
	for _, j := range res.Jobs {
		if j.Status != StatusFailed {
			continue
		}
		if first {
			b.WriteString("\nFailed jobs:\n\n")
			first = false
		}
		fmt.Fprintf(&b, "- %s: %s (log: %s)\n", j.Name, j.Error, filepath.Join(j.Dir, logFile))
	}
	return b.String()
}

// CSV is summary.csv: job, status, best_val_accuracy, epochs, seconds, exit_code, one
// column per param key (named --KEY), error.
func CSV(res *Result) ([]byte, error) {
	keys := paramKeys(res)
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	header := []string{"job", "status", "best_val_accuracy", "epochs", "seconds", "exit_code"}
	for _, k := range keys {
		header = append(header, "--"+k) // --epochs, the flag, is not epochs, the count
	}
	if err := w.Write(append(header, "error")); err != nil {
		return nil, err
	}
	for _, j := range res.Jobs {
		acc, epochs, code := "", "", ""
		if j.BestValAcc != nil {
			acc, epochs = strconv.FormatFloat(*j.BestValAcc, 'f', 4, 64), strconv.Itoa(j.Epochs)
		}
		if j.ExitCode != nil {
			code = strconv.Itoa(*j.ExitCode)
		}
		row := []string{j.Name, j.Status, acc, epochs, strconv.FormatFloat(j.Seconds, 'f', 1, 64), code}
		for _, k := range keys {
			row = append(row, fmtValue(j.Params[k]))
		}
		if err := w.Write(append(row, j.Error)); err != nil {
			return nil, err
		}
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}
