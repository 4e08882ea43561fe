package pipeline

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCountPerClass(t *testing.T) {
	d := &Dataset{
		Classes: []string{"a", "b", "c"},
		Samples: []Sample{{Label: 0}, {Label: 2}, {Label: 2}, {Label: 7}, {Label: -1}},
	}
	if got := d.CountPerClass(); !slices.Equal(got, []int{1, 0, 2}) {
		t.Errorf("CountPerClass = %v, want [1 0 2]", got)
	}
	var nilDS *Dataset
	if got := nilDS.CountPerClass(); got != nil {
		t.Errorf("nil CountPerClass = %v, want nil", got)
	}
}

func TestCheckSameClasses(t *testing.T) {
	ds := func(c ...string) *Dataset { return &Dataset{Classes: c} }
	tests := []struct {
		name       string
		train, val *Dataset
		wantErr    []string
	}{
		{name: "same", train: ds("a", "b"), val: ds("a", "b")},
		{name: "extra in val", train: ds("a", "b"), val: ds("a", "b", "c"), wantErr: []string{"training has [a, b]", "validation has [a, b, c]", "only in validation: c"}},
		{name: "renamed", train: ds("a", "b"), val: ds("a", "x"), wantErr: []string{"only in training: b", "only in validation: x"}},
		{name: "nil", train: ds("a"), val: nil, wantErr: []string{"missing dataset"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSameClasses(tc.train, tc.val)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrClassMismatch) {
				t.Fatalf("error = %v, want ErrClassMismatch", err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
