package report

import (
	"math"
	"testing"
)

func TestWilson95(t *testing.T) {
	// Newcombe (1998), "Two-sided confidence intervals for the single proportion",
	// Table I, method 3 (Wilson score, no continuity correction).
	cases := []struct {
		k, n   int
		lo, hi float64
	}{
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0, 0.1611},
		{1, 29, 0.0061, 0.1718},
		{20, 20, 1 - 0.1611, 1}, // symmetry
	}
	for _, c := range cases {
		iv, err := Wilson95(c.k, c.n)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(iv.Lo-c.lo) > 1e-4 || math.Abs(iv.Hi-c.hi) > 1e-4 {
			t.Errorf("Wilson95(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", c.k, c.n, iv.Lo, iv.Hi, c.lo, c.hi)
		}
	}
	if iv, _ := Wilson95(0, 0); iv != (Interval{0, 1}) {
		t.Errorf("n = 0: %v, want [0, 1]", iv)
	}
	if _, err := Wilson95(3, 2); err == nil {
		t.Error("k > n accepted")
	}
}
