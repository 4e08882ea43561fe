package report

import (
	"math"
	"slices"
	"testing"
)

func TestValueAxis(t *testing.T) {
	tests := []struct {
		name      string
		lo, hi    float64
		wantTicks []string
	}{
		{"loss range", 0.1, 1.65, []string{"0.0", "0.5", "1.0", "1.5", "2.0"}},
		{"accuracy range", 0.48, 0.94, []string{"0.4", "0.6", "0.8", "1.0"}},
		{"constant series", 1, 1, []string{"0.8", "0.9", "1.0", "1.1", "1.2"}},
		{"constant zero", 0, 0, []string{"-1.0", "-0.5", "0.0", "0.5", "1.0"}},
		{"no finite data", math.NaN(), math.NaN(), []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{"negative range", -3, -1, []string{"-4", "-3", "-2", "-1", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := valueAxis(tt.lo, tt.hi, maxYTicks)
			var got []string
			for _, v := range a.ticks {
				got = append(got, a.label(v))
			}
			if !slices.Equal(got, tt.wantTicks) {
				t.Errorf("ticks = %q, want %q", got, tt.wantTicks)
			}
			if finite(tt.lo) && (a.min > tt.lo || a.max < tt.hi) {
				t.Errorf("axis [%g, %g] does not cover data [%g, %g]", a.min, a.max, tt.lo, tt.hi)
			}
		})
	}
}

func TestEpochAxis(t *testing.T) {
	tests := []struct {
		name        string
		first, last int
		want        []float64
	}{
		{"single epoch", 1, 1, []float64{1}},
		{"twelve epochs", 1, 12, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		{"many epochs", 1, 100, []float64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := epochAxis(tt.first, tt.last, maxXTicks).ticks; !slices.Equal(got, tt.want) {
				t.Errorf("ticks = %v, want %v", got, tt.want)
			}
		})
	}
}
