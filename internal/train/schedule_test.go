package train

import (
	"math"
	"testing"
)

func TestFineTuneLR(t *testing.T) {
	const peak = 1e-3
	// 10 warm-up steps of 100: 1/10, 2/10, … of the peak, then a cosine from the peak to 0.
	for _, c := range []struct {
		step int
		want float64
	}{{0, peak / 10}, {4, peak / 2}, {9, peak}, {10, peak}, {55, peak / 2}, {99, peak * 0.5 * (1 + math.Cos(math.Pi*89/90))}} {
		if got := fineTuneLR(ScheduleCosine, peak, c.step, 10, 100); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("cosine step %d: %g, want %g", c.step, got, c.want)
		}
	}
	prev := math.Inf(1)
	for s := 10; s < 100; s++ {
		lr := fineTuneLR(ScheduleCosine, peak, s, 10, 100)
		if lr > prev || lr < 0 {
			t.Fatalf("cosine step %d: %g after %g: not decreasing within [0, peak]", s, lr, prev)
		}
		prev = lr
	}
	if got := fineTuneLR(ScheduleConstant, peak, 50, 10, 100); got != peak {
		t.Errorf("constant after warm-up: %g, want %g", got, peak)
	}
	if got := fineTuneLR(ScheduleCosine, peak, 0, 0, 1); got != peak {
		t.Errorf("one step, no warm-up: %g, want the peak", got)
	}
}
