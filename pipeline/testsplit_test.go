package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// rooted is syntheticDataset with every name under root.
func rooted(root string, counts ...int) *Dataset {
	d := syntheticDataset(counts...)
	for i := range d.Samples {
		d.Samples[i].Name = root + d.Samples[i].Name
	}
	return d
}

func TestSplitTestDisjointStratifiedStable(t *testing.T) {
	counts := []int{633, 898, 641, 699, 799} // flower_photos' full class sizes
	d := rooted("/data/flower_photos/", counts...)
	rest, test, err := SplitTest(d, 0.1, 7)
	if err != nil {
		t.Fatal(err)
	}
	testDS := &Dataset{Classes: d.Classes, Samples: test}
	if got, want := testDS.CountPerClass(), []int{63, 90, 64, 70, 80}; !slices.Equal(got, want) {
		t.Fatalf("test per class = %v, want %v", got, want)
	}
	train, val, err := Split(&Dataset{Classes: d.Classes, Samples: rest}, 0.1, 7)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for set, ss := range map[string][]Sample{"train": train, "val": val, "test": test} {
		for _, s := range ss {
			if other, dup := seen[s.Name]; dup {
				t.Fatalf("%s is in both %s and %s", s.Name, other, set)
			}
			seen[s.Name] = set
		}
	}
	if len(seen) != len(d.Samples) {
		t.Fatalf("train+val+test hold %d samples, the dataset %d", len(seen), len(d.Samples))
	}

	// Same seed: same test set, wherever the folder is; another seed: another set.
	_, again, _ := SplitTest(rooted("/elsewhere/copy/", counts...), 0.1, 7)
	for i := range test {
		if test[i].Name[len("/data/flower_photos/"):] != again[i].Name[len("/elsewhere/copy/"):] {
			t.Fatalf("moving the dataset changed the test set at %d: %s vs %s", i, test[i].Name, again[i].Name)
		}
	}
	_, other, _ := SplitTest(d, 0.1, 8)
	if slices.Equal(names(test), names(other)) {
		t.Fatal("seeds 7 and 8 gave the same test set")
	}

	// Removing one image that is not in the test set leaves the test set as it was.
	var drop int
	for i, s := range d.Samples {
		if !slices.Contains(names(test), s.Name) && s.Label == 0 {
			drop = i
			break
		}
	}
	fewer := &Dataset{Classes: d.Classes, Samples: slices.Delete(slices.Clone(d.Samples), drop, drop+1)}
	_, test2, _ := SplitTest(fewer, 0.1, 7)
	moved := 0
	for _, n := range names(test2) {
		if !slices.Contains(names(test), n) {
			moved++
		}
	}
	if moved > 1 {
		t.Fatalf("removing one training image moved %d test images", moved)
	}
}

func TestSplitTestEdges(t *testing.T) {
	d := syntheticDataset(3, 4)
	rest, test, err := SplitTest(d, 0, 1)
	if err != nil || len(test) != 0 || len(rest) != 7 {
		t.Fatalf("fraction 0: %d rest, %d test, %v; want everything in rest", len(rest), len(test), err)
	}
	_, test, _ = SplitTest(syntheticDataset(2, 50), 0.01, 1)
	if got := (&Dataset{Classes: []string{"a", "b"}, Samples: test}).CountPerClass(); !slices.Equal(got, []int{1, 1}) {
		t.Fatalf("small fraction: test per class %v, want at least one each", got)
	}
	for _, f := range []float64{-0.1, 1, 1.5} {
		if _, _, err := SplitTest(d, f, 1); !errors.Is(err, ErrBadSplit) {
			t.Errorf("fraction %v: %v, want ErrBadSplit", f, err)
		}
	}
	if _, _, err := SplitTest(syntheticDataset(1, 5), 0.6, 1); !errors.Is(err, ErrBadSplit) {
		t.Errorf("a class left with no training sample: %v, want ErrBadSplit", err)
	}
	// TFRecord-style names ("file.tfrec#N") rank like any other name.
	recs := &Dataset{Classes: []string{"a", "b"}}
	for i := range 20 {
		recs.Samples = append(recs.Samples, Sample{Name: fmt.Sprintf("/r/train.tfrec#%d", i), Label: i % 2})
	}
	slices.SortStableFunc(recs.Samples, func(a, b Sample) int { return a.Label - b.Label })
	if _, test, err := SplitTest(recs, 0.2, 3); err != nil || len(test) != 4 {
		t.Fatalf("tfrecord names: %d test samples, %v; want 4", len(test), err)
	}
}
