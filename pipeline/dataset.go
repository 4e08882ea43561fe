package pipeline

import (
	"fmt"
	"slices"
	"strings"
)

// Dataset is a set of labelled samples plus the files that were found but
// could not be used.
type Dataset struct {
	// Classes are the class names, sorted; a Sample's Label indexes it.
	Classes []string
	// Samples are in a deterministic order: by class, then by name in
	// byte order (TFRecord samples: by class, then file, then record).
	Samples []Sample
	// Skipped lists files or records that were not usable, with why.
	Skipped []Skipped
}

// CountPerClass returns how many samples each class has, indexed like
// Classes. Samples with a label outside Classes are not counted.
func (d *Dataset) CountPerClass() []int {
	if d == nil {
		return nil
	}
	counts := make([]int, len(d.Classes))
	for _, s := range d.Samples {
		if s.Label >= 0 && s.Label < len(counts) {
			counts[s.Label]++
		}
	}
	return counts
}

// CheckSameClasses returns an error wrapping ErrClassMismatch when the
// training and validation datasets (for example from two ScanFolders calls)
// do not have identical class lists, because then the same label would
// mean different classes in the two sets.
func CheckSameClasses(train, val *Dataset) error {
	if train == nil || val == nil {
		return fmt.Errorf("compare classes: %w: missing dataset (train nil: %t, validation nil: %t)", ErrClassMismatch, train == nil, val == nil)
	}
	if slices.Equal(train.Classes, val.Classes) {
		return nil
	}
	var onlyTrain, onlyVal []string
	for _, c := range train.Classes {
		if !slices.Contains(val.Classes, c) {
			onlyTrain = append(onlyTrain, c)
		}
	}
	for _, c := range val.Classes {
		if !slices.Contains(train.Classes, c) {
			onlyVal = append(onlyVal, c)
		}
	}
	detail := ""
	if len(onlyTrain) > 0 {
		detail += "; only in training: " + strings.Join(onlyTrain, ", ")
	}
	if len(onlyVal) > 0 {
		detail += "; only in validation: " + strings.Join(onlyVal, ", ")
	}
	return fmt.Errorf("compare classes: %w: training has [%s], validation has [%s]%s; both folders need the same class sub-folders",
		ErrClassMismatch, strings.Join(train.Classes, ", "), strings.Join(val.Classes, ", "), detail)
}
