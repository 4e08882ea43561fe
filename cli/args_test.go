package cli

import (
	"io"
	"slices"
	"testing"
)

func TestHoistFlags(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	cases := []struct{ in, want []string }{
		{ // flags after the files move in front, values with them, orders kept
			[]string{"tfflowers", "predict", "a.jpg", "--json", "b", "--model", "m", "--top-k=2"},
			[]string{"tfflowers", "predict", "--json", "--model", "m", "--top-k=2", "a.jpg", "b"}},
		{ // global flags before the command stay where they are
			[]string{"tfflowers", "--log-format", "json", "batch", "jobs.yaml", "--parallel", "2"},
			[]string{"tfflowers", "--log-format", "json", "batch", "--parallel", "2", "jobs.yaml"}},
		{ // already in order: unchanged
			[]string{"tfflowers", "train", "--data", "d", "--epochs", "3"},
			[]string{"tfflowers", "train", "--data", "d", "--epochs", "3"}},
		{ // after "--" everything is positional; "--" kept when a file starts with "-"
			[]string{"tfflowers", "predict", "x.jpg", "--model", "m", "--", "-odd.jpg", "--json"},
			[]string{"tfflowers", "predict", "--model", "m", "--", "x.jpg", "-odd.jpg", "--json"}},
		{ // an unknown flag moves too, so urfave/cli reports it instead of taking it for a file
			[]string{"tfflowers", "predict", "a.jpg", "--jsno"},
			[]string{"tfflowers", "predict", "--jsno", "a.jpg"}},
		{ // a value flag at the very end (value missing) is left for urfave/cli to report
			[]string{"tfflowers", "predict", "a.jpg", "--model"},
			[]string{"tfflowers", "predict", "--model", "a.jpg"}},
		{ // unknown command: untouched
			[]string{"tfflowers", "nope", "a", "--x"},
			[]string{"tfflowers", "nope", "a", "--x"}},
		{[]string{"tfflowers"}, []string{"tfflowers"}},
	}
	for _, tc := range cases {
		if got := hoistFlags(app, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("hoistFlags(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
