package pipeline

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
)

// streamTest keeps the test split's ranking independent of Split's and
// EpochOrder's streams under the same seed.
const streamTest = 0x54455354 // "TEST"

// SplitTest holds out a seeded, stratified test set: within each class,
// samples are ranked by a keyed hash of (seed, name relative to the
// dataset's common folder) and the first round(testFraction*n) go to test
// (at least 1 when the class has 2 or more samples and testFraction > 0).
// Both results keep the dataset's order.
//
// Ranking by a hash of each name, rather than shuffling the list, keeps
// the test set stable: it depends neither on where the dataset folder
// lives nor on the images' contents, and adding or removing one file
// moves at most one other file across the boundary. The rest is what
// Split then divides into training and validation, so no choice made on
// validation ever sees a test image.
//
// It returns an error wrapping ErrBadSplit when testFraction is outside
// [0, 1) or a class would keep no sample for training.
func SplitTest(d *Dataset, testFraction float64, seed uint64) (rest, test []Sample, err error) {
	if d == nil {
		return nil, nil, fmt.Errorf("test split: %w: no dataset", ErrBadSplit)
	}
	if !(testFraction >= 0 && testFraction < 1) {
		return nil, nil, fmt.Errorf("test split: %w: test fraction %v is outside [0, 1)", ErrBadSplit, testFraction)
	}
	prefix := commonFolder(d.Samples)
	byClass := make([][]int, len(d.Classes))
	for i, s := range d.Samples {
		if s.Label < 0 || s.Label >= len(d.Classes) {
			return nil, nil, fmt.Errorf("test split: %w: sample %s has label %d, but there are %d classes", ErrBadSplit, s.Name, s.Label, len(d.Classes))
		}
		byClass[s.Label] = append(byClass[s.Label], i)
	}
	inTest := make([]bool, len(d.Samples))
	nTest := 0
	for c, idx := range byClass {
		n := len(idx)
		k := int(math.Round(testFraction * float64(n)))
		if k == 0 && testFraction > 0 && n >= 2 {
			k = 1 // every class is measured on test
		}
		if n-k < 1 {
			return nil, nil, fmt.Errorf("test split: %w: class %q has %d sample(s); taking %d for test (fraction %v) leaves none for training; add images or lower --test-split",
				ErrBadSplit, d.Classes[c], n, k, testFraction)
		}
		keys := make(map[int]uint64, n)
		for _, i := range idx {
			keys[i] = rankKey(seed, strings.TrimPrefix(d.Samples[i].Name, prefix))
		}
		ranked := slices.Clone(idx)
		slices.SortFunc(ranked, func(a, b int) int {
			if keys[a] != keys[b] {
				if keys[a] < keys[b] {
					return -1
				}
				return 1
			}
			return strings.Compare(d.Samples[a].Name, d.Samples[b].Name)
		})
		for _, i := range ranked[:k] {
			inTest[i] = true
		}
		nTest += k
	}
	rest, test = partition(d.Samples, inTest, nTest)
	return rest, test, nil
}

// rankKey is FNV-1a over (seed, stream, name) finished with SplitMix64's mixer, so
// that names differing in one character land far apart.
func rankKey(seed uint64, name string) uint64 {
	h := fnv.New64a()
	var buf [16]byte
	binary.LittleEndian.PutUint64(buf[:8], seed)
	binary.LittleEndian.PutUint64(buf[8:], streamTest)
	h.Write(buf[:])
	h.Write([]byte(name))
	z := h.Sum64()
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// commonFolder is the longest prefix of every sample name that ends in a path
// separator: the dataset root for class folders, the TFRecords' folder for records.
func commonFolder(samples []Sample) string {
	if len(samples) == 0 {
		return ""
	}
	p := samples[0].Name
	for _, s := range samples[1:] {
		for !strings.HasPrefix(s.Name, p) {
			p = p[:len(p)-1]
		}
	}
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[:i+1]
	}
	return ""
}
