package report

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// fill builds a confusion matrix from explicit counts, indexed [true][pred].
func fill(t *testing.T, classes []string, counts [][]int) *Confusion {
	t.Helper()
	c := NewConfusion(classes)
	for tr, row := range counts {
		for pr, n := range row {
			for range n {
				if err := c.Add(tr, pr); err != nil {
					t.Fatalf("Add(%d, %d): %v", tr, pr, err)
				}
			}
		}
	}
	return c
}

func TestConfusionAddRange(t *testing.T) {
	tests := []struct {
		name      string
		tr, pr    int
		wantError bool
	}{
		{"in range", 1, 2, false},
		{"negative true", -1, 0, true},
		{"true too large", 3, 0, true},
		{"negative pred", 0, -1, true},
		{"pred too large", 0, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConfusion([]string{"a", "b", "c"})
			err := c.Add(tt.tr, tt.pr)
			if (err != nil) != tt.wantError {
				t.Fatalf("Add(%d, %d) error = %v, want error %v", tt.tr, tt.pr, err, tt.wantError)
			}
			if err == nil && c.Counts[tt.tr][tt.pr] != 1 {
				t.Errorf("Counts[%d][%d] = %d, want 1", tt.tr, tt.pr, c.Counts[tt.tr][tt.pr])
			}
			if err != nil && c.Total() != 0 {
				t.Errorf("rejected Add changed the matrix: total %d", c.Total())
			}
		})
	}
}

func TestConfusionMetrics(t *testing.T) {
	tests := []struct {
		name    string
		classes []string
		counts  [][]int
		want    []ClassStats
		wantAcc float64
		wantTot int
	}{
		{
			name:    "two classes",
			classes: []string{"cat", "dog"},
			// cat: 8 right, 2 called dog; dog: 6 right, 4 called cat.
			counts: [][]int{{8, 2}, {4, 6}},
			want: []ClassStats{
				{Class: "cat", Precision: 8.0 / 12, Recall: 0.8, F1: 2 * (8.0 / 12) * 0.8 / (8.0/12 + 0.8), Support: 10},
				{Class: "dog", Precision: 0.75, Recall: 0.6, F1: 2 * 0.75 * 0.6 / 1.35, Support: 10},
			},
			wantAcc: 0.7,
			wantTot: 20,
		},
		{
			name:    "class never predicted and class absent",
			classes: []string{"a", "b", "c"},
			// b is never predicted (precision 0, not NaN); c never occurs (recall 0).
			counts: [][]int{{3, 0, 1}, {2, 0, 0}, {0, 0, 0}},
			want: []ClassStats{
				{Class: "a", Precision: 0.6, Recall: 0.75, F1: 2 * 0.6 * 0.75 / 1.35, Support: 4},
				{Class: "b", Precision: 0, Recall: 0, F1: 0, Support: 2},
				{Class: "c", Precision: 0, Recall: 0, F1: 0, Support: 0},
			},
			wantAcc: 0.5,
			wantTot: 6,
		},
		{
			name:    "empty matrix",
			classes: []string{"a", "b"},
			counts:  [][]int{{0, 0}, {0, 0}},
			want:    []ClassStats{{Class: "a"}, {Class: "b"}},
			wantAcc: 0,
			wantTot: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fill(t, tt.classes, tt.counts)
			got := c.PerClass()
			if len(got) != len(tt.want) {
				t.Fatalf("PerClass returned %d rows, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Class != w.Class || g.Support != w.Support ||
					!near(g.Precision, w.Precision) || !near(g.Recall, w.Recall) || !near(g.F1, w.F1) {
					t.Errorf("PerClass()[%d] = %+v, want %+v", i, g, w)
				}
			}
			if acc := c.Accuracy(); !near(acc, tt.wantAcc) {
				t.Errorf("Accuracy() = %v, want %v", acc, tt.wantAcc)
			}
			if tot := c.Total(); tot != tt.wantTot {
				t.Errorf("Total() = %d, want %d", tot, tt.wantTot)
			}
		})
	}
}

func TestNewConfusionCopiesClasses(t *testing.T) {
	classes := []string{"a", "b"}
	c := NewConfusion(classes)
	classes[0] = "changed"
	if c.Classes[0] != "a" {
		t.Errorf("Classes[0] = %q after caller edit, want %q", c.Classes[0], "a")
	}
}

func TestConfusionJSON(t *testing.T) {
	c := fill(t, []string{"daisy", "rose"}, [][]int{{3, 1}, {0, 2}})
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	// Embedded by value, as in a larger report, it must marshal identically.
	byValue, err := json.Marshal(struct{ C Confusion }{*c})
	if err != nil {
		t.Fatalf("Marshal by value: %v", err)
	}
	if want := `{"C":` + string(data) + `}`; string(byValue) != want {
		t.Errorf("by value = %s, want %s", byValue, want)
	}
	var got struct {
		Classes  []string         `json:"classes"`
		Counts   [][]int          `json:"counts"`
		PerClass []map[string]any `json:"per_class"`
		Accuracy float64          `json:"accuracy"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("Unmarshal %s: %v", data, err)
	}
	if strings.Join(got.Classes, ",") != "daisy,rose" || got.Counts[0][1] != 1 || got.Counts[1][1] != 2 {
		t.Errorf("round trip lost data: %s", data)
	}
	if len(got.PerClass) != 2 || got.PerClass[1]["class"] != "rose" || got.PerClass[1]["support"] != 2.0 {
		t.Errorf("per_class = %v", got.PerClass)
	}
	for _, key := range []string{"precision", "recall", "f1"} {
		if _, ok := got.PerClass[0][key]; !ok {
			t.Errorf("per_class entry lacks %q: %v", key, got.PerClass[0])
		}
	}
	if !near(got.Accuracy, 5.0/6) {
		t.Errorf("accuracy = %v, want %v", got.Accuracy, 5.0/6)
	}

	// The plain fields must still decode straight into a Confusion.
	var back Confusion
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("Unmarshal into Confusion: %v", err)
	}
	if back.Accuracy() != c.Accuracy() {
		t.Errorf("decoded accuracy = %v, want %v", back.Accuracy(), c.Accuracy())
	}
}

func TestConfusionFormat(t *testing.T) {
	c := fill(t, []string{"daisy", "a-very-long-class-name", "rose"},
		[][]int{{1234, 5, 0}, {3, 40, 1}, {0, 0, 7}})
	var b strings.Builder
	if err := c.Format(&b); err != nil {
		t.Fatalf("Format: %v", err)
	}
	out := b.String()
	t.Logf("\n%s", out)

	for _, want := range []string{"precision", "recall", "f1", "support", "accuracy", "true\\pred", "a-very-long~", "1234"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "a-very-long-") {
		t.Errorf("long class name not truncated to %d characters", maxClassNameWidth)
	}

	// Every row of a section must be the same width for the table to align.
	sections := strings.Split(strings.TrimRight(out, "\n"), "\n\n")
	if len(sections) != 3 {
		t.Fatalf("got %d blank-line separated sections, want 3", len(sections))
	}
	matrix := strings.Split(sections[2], "\n")[1:] // drop the caption
	for _, lines := range [][]string{strings.Split(sections[0], "\n"), matrix} {
		for _, l := range lines[1:] {
			if len(l) != len(lines[0]) {
				t.Errorf("misaligned row %q: width %d, header width %d", l, len(l), len(lines[0]))
			}
		}
	}
	if len(matrix) != 4 {
		t.Errorf("matrix has %d lines, want header + 3 rows", len(matrix))
	}
}

func TestConfusionFormatWriteError(t *testing.T) {
	c := NewConfusion([]string{"a"})
	errBoom := errors.New("boom")
	err := c.Format(failWriter{errBoom})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Format error = %v, want wrapping %v", err, errBoom)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
