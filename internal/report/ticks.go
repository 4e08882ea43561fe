package report

import (
	"math"
	"strconv"
)

// axisRange is the data interval an axis spans together with the positions
// of its labelled ticks.
type axisRange struct {
	min, max float64
	ticks    []float64
	decimals int // digits after the point that tick labels need
}

// niceNum rounds x to 1, 2, 5 or 10 times a power of ten (Heckbert's "nice
// numbers"), so that tick labels read like a human would pick them.
func niceNum(x float64, round bool) float64 {
	exp := math.Floor(math.Log10(x))
	f := x / math.Pow(10, exp)
	var nf float64
	switch {
	case round && f < 1.5:
		nf = 1
	case round && f < 3:
		nf = 2
	case round && f < 7:
		nf = 5
	case round:
		nf = 10
	case f <= 1:
		nf = 1
	case f <= 2:
		nf = 2
	case f <= 5:
		nf = 5
	default:
		nf = 10
	}
	return nf * math.Pow(10, exp)
}

// valueAxis builds a y axis covering [lo, hi], widened outward to whole tick
// steps so the curves never touch an unlabelled edge.
func valueAxis(lo, hi float64, maxTicks int) axisRange {
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) || lo > hi {
		// No finite data: an empty but well-formed axis still tells the
		// reader that the metric was missing rather than zero.
		return niceAxis(0, 1, maxTicks)
	}
	if hi == lo {
		// A constant series needs some span, or every point maps to NaN.
		pad := math.Abs(lo) * 0.1
		if pad == 0 {
			pad = 0.5
		}
		lo, hi = lo-pad, hi+pad
	}
	// A small margin keeps extreme points off the frame, where a marker
	// would be half hidden by the axis line.
	margin := (hi - lo) * 0.05
	return niceAxis(lo-margin, hi+margin, maxTicks)
}

// niceAxis rounds [lo, hi] outward to whole multiples of a nice step.
func niceAxis(lo, hi float64, maxTicks int) axisRange {
	span := niceNum(hi-lo, false)
	step := niceNum(span/float64(maxTicks-1), true)
	minV := math.Floor(lo/step) * step
	maxV := math.Ceil(hi/step) * step
	a := axisRange{min: minV, max: maxV, decimals: decimalsFor(step)}
	// Multiplying instead of accumulating avoids drift such as 0.30000000000000004.
	for i := 0; ; i++ {
		v := minV + float64(i)*step
		if v > maxV+step/2 {
			break
		}
		a.ticks = append(a.ticks, v)
	}
	return a
}

// epochAxis builds an x axis over whole epochs. Unlike valueAxis it does not
// widen the range, because empty epochs at either end would look like missing
// training; a single epoch is centred instead.
func epochAxis(first, last, maxTicks int) axisRange {
	lo, hi := float64(first), float64(last)
	if first == last {
		// Half an epoch either side centres the point and leaves exactly
		// one tick, its own epoch.
		lo, hi = lo-0.5, hi+0.5
	}
	step := math.Max(1, math.Ceil(niceNum((hi-lo)/float64(maxTicks-1), true)))
	a := axisRange{min: lo, max: hi}
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		a.ticks = append(a.ticks, v)
	}
	return a
}

// decimalsFor reports how many fractional digits distinguish ticks step apart.
func decimalsFor(step float64) int {
	d := int(-math.Floor(math.Log10(step)))
	if d < 0 {
		return 0
	}
	return d
}

// label formats a tick value; it normalises -0 so the axis never reads "-0".
func (a axisRange) label(v float64) string {
	s := strconv.FormatFloat(v, 'f', a.decimals, 64)
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == 0 {
		return strconv.FormatFloat(0, 'f', a.decimals, 64)
	}
	return s
}

// fraction maps v to its relative position along the axis, 0 at min and 1 at max.
func (a axisRange) fraction(v float64) float64 {
	return (v - a.min) / (a.max - a.min)
}
