package report

import (
	"fmt"
	"math"
)

// Interval is a confidence interval for a proportion.
type Interval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// z95 is the standard normal quantile for a two-sided 95 % interval.
const z95 = 1.959963984540054

// Wilson95 is the 95 % Wilson score interval for k successes in n trials.
// Unlike the normal approximation (p ± 1.96·sqrt(p(1-p)/n)) it stays inside
// [0, 1] and keeps its coverage near p = 0 or 1, where accuracies near 95 %
// on a few hundred test images live. n = 0 gives [0, 1]: nothing is known.
func Wilson95(k, n int) (Interval, error) {
	if n < 0 || k < 0 || k > n {
		return Interval{}, fmt.Errorf("wilson interval: %d successes in %d trials", k, n)
	}
	if n == 0 {
		return Interval{0, 1}, nil
	}
	p, nf, z2 := float64(k)/float64(n), float64(n), z95*z95
	centre := (p + z2/(2*nf)) / (1 + z2/nf)
	half := z95 / (1 + z2/nf) * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return Interval{Lo: math.Max(0, centre-half), Hi: math.Min(1, centre+half)}, nil
}

// Correct is the number of examples on the diagonal.
func (c *Confusion) Correct() int {
	correct := 0
	for i := range c.Counts {
		correct += c.Counts[i][i]
	}
	return correct
}

// AccuracyInterval is the 95 % Wilson interval of Accuracy.
func (c *Confusion) AccuracyInterval() Interval {
	iv, _ := Wilson95(c.Correct(), c.Total()) // Correct <= Total by construction
	return iv
}
