package pipeline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Stream constants keep the split and the epoch orders on independent
// random streams even when the caller uses the same seed for both.
const (
	streamSplit = 0x53504c4954 << 24 // "SPLIT"
	streamEpoch = 0x45504f4348 << 24 // "EPOCH"
)

// Split is a seeded stratified split. Within each class, the class's
// samples are shuffled with a PCG generator seeded from (seed, class index)
// and round(valFraction*n) of them go to validation (at least 1 when the
// class has 2 or more samples and valFraction > 0). Both results keep the
// dataset's order (by class, then name), which makes them easy to diff.
//
// It returns an error wrapping ErrBadSplit when valFraction is outside
// [0, 1) or when a class would be left with no training samples.
func Split(d *Dataset, valFraction float64, seed uint64) (train, val []Sample, err error) {
	if d == nil {
		return nil, nil, fmt.Errorf("split: %w: no dataset", ErrBadSplit)
	}
	if !(valFraction >= 0 && valFraction < 1) { // also rejects NaN
		return nil, nil, fmt.Errorf("split: %w: validation fraction %v is outside [0, 1)", ErrBadSplit, valFraction)
	}
	byClass := make([][]int, len(d.Classes))
	for i, s := range d.Samples {
		if s.Label < 0 || s.Label >= len(d.Classes) {
			return nil, nil, fmt.Errorf("split: %w: sample %s has label %d, but there are %d classes", ErrBadSplit, s.Name, s.Label, len(d.Classes))
		}
		byClass[s.Label] = append(byClass[s.Label], i)
	}
	inVal := make([]bool, len(d.Samples))
	nVal := 0
	for c, idx := range byClass {
		n := len(idx)
		k := int(math.Round(valFraction * float64(n)))
		if k == 0 && valFraction > 0 && n >= 2 {
			k = 1 // every class must be measured on validation
		}
		if n-k < 1 {
			return nil, nil, fmt.Errorf("split: %w: class %q has %d sample(s); taking %d for validation (fraction %v) leaves none for training; add images or lower the validation fraction",
				ErrBadSplit, d.Classes[c], n, k, valFraction)
		}
		perm := slices.Clone(idx)
		shuffle(rand.NewPCG(seed, streamSplit|uint64(c)), perm)
		for _, i := range perm[:k] {
			inVal[i] = true
		}
		nVal += k
	}
	train, val = partition(d.Samples, inVal, nVal)
	return train, val, nil
}

// partition splits samples by a mask, keeping their order: picked holds the n samples
// whose mask is set, rest the others. Both splits (validation and test) end this way.
func partition(samples []Sample, mask []bool, n int) (rest, picked []Sample) {
	rest = make([]Sample, 0, len(samples)-n)
	picked = make([]Sample, 0, n)
	for i, s := range samples {
		if mask[i] {
			picked = append(picked, s)
		} else {
			rest = append(rest, s)
		}
	}
	return rest, picked
}

// EpochOrder returns a permutation of [0, n) for the given epoch,
// determined by (seed, epoch) alone. n <= 0 gives an empty slice.
func EpochOrder(n int, seed uint64, epoch int) []int {
	if n <= 0 {
		return []int{}
	}
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	shuffle(rand.NewPCG(seed, streamEpoch^uint64(epoch)), p)
	return p
}

// shuffle is a Fisher-Yates shuffle on top of the raw PCG output. It does
// not use rand.Rand.Shuffle because only the PCG algorithm itself is
// fixed; how Rand maps its output onto ranges is not promised to stay the
// same across Go releases, and the split must be reproducible everywhere.
func shuffle(src *rand.PCG, p []int) {
	for i := len(p) - 1; i > 0; i-- {
		j := int(boundedUint64(src, uint64(i)+1))
		p[i], p[j] = p[j], p[i]
	}
}

// boundedUint64 returns a uniform value in [0, n) for n > 0 by rejection
// sampling, which has no modulo bias.
func boundedUint64(src *rand.PCG, n uint64) uint64 {
	// Largest multiple of n that fits: values at or above it are redrawn.
	limit := math.MaxUint64 - math.MaxUint64%n
	for {
		if v := src.Uint64(); v < limit {
			return v % n
		}
	}
}
