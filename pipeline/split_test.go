package pipeline

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// syntheticDataset has counts[c] samples in class c.
func syntheticDataset(counts ...int) *Dataset {
	d := &Dataset{}
	for c, n := range counts {
		d.Classes = append(d.Classes, fmt.Sprintf("class%d", c))
		for i := range n {
			d.Samples = append(d.Samples, Sample{Name: fmt.Sprintf("class%d/%03d.jpg", c, i), Label: c})
		}
	}
	return d
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name    string
		counts  []int
		frac    float64
		wantVal []int // per class
	}{
		{name: "fifth", counts: []int{10, 20, 7}, frac: 0.2, wantVal: []int{2, 4, 1}},
		{name: "rounds half away from zero", counts: []int{5, 15}, frac: 0.1, wantVal: []int{1, 2}},
		{name: "at least one", counts: []int{2, 3, 100}, frac: 0.01, wantVal: []int{1, 1, 1}},
		{name: "zero fraction", counts: []int{3, 4}, frac: 0, wantVal: []int{0, 0}},
		{name: "singleton class with small fraction", counts: []int{1, 10}, frac: 0.2, wantVal: []int{0, 2}},
		{name: "flowers", counts: []int{506, 718, 512, 559, 639}, frac: 0.2, wantVal: []int{101, 144, 102, 112, 128}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := syntheticDataset(tc.counts...)
			train, val, err := Split(d, tc.frac, 42)
			if err != nil {
				t.Fatal(err)
			}
			valDS := &Dataset{Classes: d.Classes, Samples: val}
			if got := valDS.CountPerClass(); !slices.Equal(got, tc.wantVal) {
				t.Errorf("validation per class = %v, want %v", got, tc.wantVal)
			}
			trainDS := &Dataset{Classes: d.Classes, Samples: train}
			for c, n := range trainDS.CountPerClass() {
				if n != tc.counts[c]-tc.wantVal[c] {
					t.Errorf("class %d: %d training samples, want %d", c, n, tc.counts[c]-tc.wantVal[c])
				}
			}
			// No overlap, and together they are exactly the dataset.
			all := append(names(train), names(val)...)
			slices.Sort(all)
			want := names(d.Samples)
			slices.Sort(want)
			if !slices.Equal(all, want) {
				t.Error("train ∪ validation is not exactly the dataset (overlap or loss)")
			}
			// Both keep dataset order.
			for _, part := range [][]Sample{train, val} {
				if !slices.IsSortedFunc(part, func(a, b Sample) int { return strings.Compare(a.Name, b.Name) }) {
					t.Error("split result is not in dataset order")
				}
			}
		})
	}
}

func TestSplitDeterminism(t *testing.T) {
	d := syntheticDataset(50, 30, 20)
	_, val1, err := Split(d, 0.2, 7)
	if err != nil {
		t.Fatal(err)
	}
	_, val2, err := Split(d, 0.2, 7)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names(val1), names(val2)) {
		t.Fatal("same seed gave different splits")
	}
	_, val3, err := Split(d, 0.2, 8)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(names(val1), names(val3)) {
		t.Error("seeds 7 and 8 gave identical splits")
	}
	// Pinned: guards against an accidental change of the PRNG, its
	// seeding or the shuffle, which would silently change every user's
	// validation set. Class 2 with seed 7 must always pick these.
	want := []string{"class2/000.jpg", "class2/010.jpg", "class2/011.jpg", "class2/013.jpg"}
	var got []string
	for _, s := range val1 {
		if s.Label == 2 {
			got = append(got, s.Name)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("class2 validation with seed 7 = %q, want %q", got, want)
	}
}

// TestSplitClassIndependence: adding a class must not change how the
// existing classes are split, because each class has its own stream.
func TestSplitClassIndependence(t *testing.T) {
	_, valA, err := Split(syntheticDataset(40, 40), 0.25, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, valB, err := Split(syntheticDataset(40, 40, 40), 0.25, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names(valA), names(valB)[:len(valA)]) {
		t.Error("adding a third class changed the split of the first two")
	}
}

func TestSplitErrors(t *testing.T) {
	tests := []struct {
		name    string
		d       *Dataset
		frac    float64
		wantErr string
	}{
		{name: "negative", d: syntheticDataset(5, 5), frac: -0.1, wantErr: "outside [0, 1)"},
		{name: "one", d: syntheticDataset(5, 5), frac: 1, wantErr: "outside [0, 1)"},
		{name: "NaN", d: syntheticDataset(5, 5), frac: math.NaN(), wantErr: "outside [0, 1)"},
		{name: "singleton class, half", d: syntheticDataset(1, 5), frac: 0.5, wantErr: `class "class0" has 1 sample(s)`},
		{name: "tiny class, large fraction", d: syntheticDataset(10, 3), frac: 0.9, wantErr: `class "class1" has 3 sample(s); taking 3`},
		{name: "empty class", d: syntheticDataset(5, 0), frac: 0.2, wantErr: `class "class1" has 0 sample(s)`},
		{name: "label out of range", d: &Dataset{Classes: []string{"a"}, Samples: []Sample{{Name: "x", Label: 3}}}, wantErr: "has label 3"},
		{name: "nil", wantErr: "no dataset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Split(tc.d, tc.frac, 1)
			if !errors.Is(err, ErrBadSplit) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want ErrBadSplit containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestEpochOrder(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{
		{"zero", 0}, {"negative", -3}, {"one", 1}, {"two", 2}, {"hundred", 100}, {"flowers", 2934},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := EpochOrder(tc.n, 99, 0)
			if p == nil {
				t.Fatal("EpochOrder returned nil")
			}
			want := max(tc.n, 0)
			sorted := slices.Sorted(slices.Values(p))
			if len(p) != want {
				t.Fatalf("len = %d, want %d", len(p), want)
			}
			for i, v := range sorted {
				if v != i {
					t.Fatalf("not a permutation of [0,%d): sorted[%d] = %d", want, i, v)
				}
			}
			if !slices.Equal(p, EpochOrder(tc.n, 99, 0)) {
				t.Error("same (seed, epoch) gave different orders")
			}
			if tc.n >= 100 {
				if slices.Equal(p, EpochOrder(tc.n, 99, 1)) {
					t.Error("epochs 0 and 1 gave the same order")
				}
				if slices.Equal(p, EpochOrder(tc.n, 100, 0)) {
					t.Error("seeds 99 and 100 gave the same order")
				}
				if slices.IsSorted(p) {
					t.Error("order is the identity: not shuffled")
				}
			}
		})
	}
}

// TestEpochOrderUniform is a coarse check that the shuffle is unbiased:
// over many epochs each element lands in position 0 about equally often.
func TestEpochOrderUniform(t *testing.T) {
	const n, epochs = 5, 20000
	var first [n]int
	for e := range epochs {
		first[EpochOrder(n, 3, e)[0]]++
	}
	for i, c := range first {
		// Expected 4000, sd ≈ 57; 6 sd slack keeps this from flaking.
		if c < epochs/n-350 || c > epochs/n+350 {
			t.Errorf("element %d first in %d of %d epochs, want about %d (counts %v)", i, c, epochs, epochs/n, first)
		}
	}
}
