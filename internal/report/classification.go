package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxClassNameWidth bounds class-name columns so that a matrix over long
// names like "pink-yellow dahlia" still fits a terminal.
const maxClassNameWidth = 12

// Confusion is a confusion matrix: Counts[true][pred].
type Confusion struct {
	Classes []string `json:"classes"`
	Counts  [][]int  `json:"counts"`
}

// ClassStats holds the one-vs-rest metrics of a single class.
type ClassStats struct {
	Class     string  `json:"class"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int     `json:"support"` // number of examples whose true label is Class
}

// NewConfusion returns an all-zero matrix over classes; the slice is copied
// so later edits by the caller cannot desynchronise names and counts.
func NewConfusion(classes []string) *Confusion {
	n := len(classes)
	counts := make([][]int, n)
	for i := range counts {
		counts[i] = make([]int, n)
	}
	return &Confusion{Classes: append([]string(nil), classes...), Counts: counts}
}

// Add records one example with true label trueLabel predicted as predLabel.
func (c *Confusion) Add(trueLabel, predLabel int) error {
	n := len(c.Classes)
	if trueLabel < 0 || trueLabel >= n {
		return fmt.Errorf("add to confusion matrix: true label %d out of range [0, %d)", trueLabel, n)
	}
	if predLabel < 0 || predLabel >= n {
		return fmt.Errorf("add to confusion matrix: predicted label %d out of range [0, %d)", predLabel, n)
	}
	c.Counts[trueLabel][predLabel]++
	return nil
}

// PerClass returns precision, recall, F1 and support for every class, in
// class order. A ratio with a zero denominator (a class never predicted, or
// absent from the data) is reported as 0 rather than NaN, because NaN breaks
// JSON encoding and averages.
func (c *Confusion) PerClass() []ClassStats {
	n := len(c.Classes)
	predicted := make([]int, n)
	for _, row := range c.Counts {
		for p, v := range row {
			predicted[p] += v
		}
	}
	stats := make([]ClassStats, n)
	for i, name := range c.Classes {
		tp := c.Counts[i][i]
		support := sum(c.Counts[i])
		prec := ratio(tp, predicted[i])
		rec := ratio(tp, support)
		f1 := 0.0
		if prec+rec > 0 {
			f1 = 2 * prec * rec / (prec + rec)
		}
		stats[i] = ClassStats{Class: name, Precision: prec, Recall: rec, F1: f1, Support: support}
	}
	return stats
}

// Total is the number of examples recorded.
func (c *Confusion) Total() int {
	total := 0
	for _, row := range c.Counts {
		total += sum(row)
	}
	return total
}

// Accuracy is the fraction of examples on the diagonal, 0 for an empty matrix.
func (c *Confusion) Accuracy() float64 { return ratio(c.Correct(), c.Total()) }

// MarshalJSON adds the derived per-class metrics and accuracy to the raw
// counts, so a saved report is readable without recomputing anything. It has
// a value receiver so that a Confusion embedded by value in a larger report
// struct marshals the same way as a *Confusion.
func (c Confusion) MarshalJSON() ([]byte, error) {
	// The alias drops this method, avoiding infinite recursion.
	type plain Confusion
	return json.Marshal(struct {
		plain
		PerClass []ClassStats `json:"per_class"`
		Accuracy float64      `json:"accuracy"`
	}{plain(c), c.PerClass(), c.Accuracy()})
}

// Format writes a human-readable report: per-class metrics with macro and
// support-weighted averages, then the confusion matrix with true classes as
// rows and predicted classes as columns.
func (c *Confusion) Format(w io.Writer) error {
	ew := &errWriter{w: w}
	stats := c.PerClass()

	names := make([]string, len(c.Classes))
	nameW := len("weighted avg")
	for i, name := range c.Classes {
		names[i] = truncate(name, maxClassNameWidth)
		nameW = max(nameW, utf8.RuneCountInString(names[i]))
	}

	ew.printf("%s %9s %9s %9s %9s\n", pad("class", nameW), "precision", "recall", "f1", "support")
	for i, s := range stats {
		ew.printf("%s %9.4f %9.4f %9.4f %9d\n", pad(names[i], nameW), s.Precision, s.Recall, s.F1, s.Support)
	}
	total := c.Total()
	macro, weighted := averages(stats, total)
	ew.printf("\n")
	ew.printf("%s %9.4f %9.4f %9.4f %9d\n", pad("macro avg", nameW), macro.Precision, macro.Recall, macro.F1, total)
	ew.printf("%s %9.4f %9.4f %9.4f %9d\n", pad("weighted avg", nameW), weighted.Precision, weighted.Recall, weighted.F1, total)
	ew.printf("%s %9s %9s %9.4f %9d\n", pad("accuracy", nameW), "", "", c.Accuracy(), total)

	// Each column is as wide as its header or its largest count, so the
	// matrix stays aligned however the counts grow.
	colW := make([]int, len(names))
	for j, name := range names {
		colW[j] = utf8.RuneCountInString(name)
		for i := range c.Counts {
			colW[j] = max(colW[j], len(strconv.Itoa(c.Counts[i][j])))
		}
	}
	const corner = "true\\pred"
	rowW := max(nameW, len(corner))
	ew.printf("\nconfusion matrix (rows: true, columns: predicted)\n")
	ew.printf("%s", pad(corner, rowW))
	for j, name := range names {
		ew.printf(" %s", padLeft(name, colW[j]))
	}
	ew.printf("\n")
	for i, row := range c.Counts {
		ew.printf("%s", pad(names[i], rowW))
		for j, v := range row {
			ew.printf(" %*d", colW[j], v)
		}
		ew.printf("\n")
	}
	if ew.err != nil {
		return fmt.Errorf("format confusion matrix: %w", ew.err)
	}
	return nil
}

// averages returns the unweighted mean of the per-class metrics and the mean
// weighted by support; the latter matches what a class-imbalanced dataset
// looks like to a user, the former exposes weak minority classes.
func averages(stats []ClassStats, total int) (macro, weighted ClassStats) {
	if len(stats) == 0 {
		return macro, weighted
	}
	for _, s := range stats {
		macro.Precision += s.Precision
		macro.Recall += s.Recall
		macro.F1 += s.F1
		if total > 0 {
			wt := float64(s.Support) / float64(total)
			weighted.Precision += wt * s.Precision
			weighted.Recall += wt * s.Recall
			weighted.F1 += wt * s.F1
		}
	}
	n := float64(len(stats))
	macro.Precision /= n
	macro.Recall /= n
	macro.F1 /= n
	return macro, weighted
}

// errWriter remembers the first write error so Format can stay linear
// instead of checking every line.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}

func ratio(num, den int) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

// truncate shortens s to at most n runes, marking the cut with '~' so a
// reader knows the name continues.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "~"
}

// pad and padLeft count runes, not bytes, because fmt's width verbs would
// misalign non-ASCII class names.
func pad(s string, width int) string {
	return s + strings.Repeat(" ", max(0, width-utf8.RuneCountInString(s)))
}

func padLeft(s string, width int) string {
	return strings.Repeat(" ", max(0, width-utf8.RuneCountInString(s))) + s
}
