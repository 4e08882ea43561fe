package cli

import (
	"context"
	"io"
	"slices"
	"strings"
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
		{ // a value flag at the very end with no file before it: left for urfave/cli to report
			[]string{"tfflowers", "predict", "--model"},
			[]string{"tfflowers", "predict", "--model"}},
		{ // unknown command: untouched
			[]string{"tfflowers", "nope", "a", "--x"},
			[]string{"tfflowers", "nope", "a", "--x"}},
		{[]string{"tfflowers"}, []string{"tfflowers"}},
	}
	for _, tc := range cases {
		if got, err := hoistFlags(app, tc.in); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("hoistFlags(%q)\n got %q, %v\nwant %q", tc.in, got, err, tc.want)
		}
	}
}

// A value flag left without its value after a file is reported as such (exit 2), not
// moved in front where it would take the file for its value ("give image files").
func TestDanglingValueFlag(t *testing.T) {
	for _, args := range [][]string{
		{"tfflowers", "predict", "a.jpg", "--model"},
		{"tfflowers", "predict", "a.jpg", "--json", "--top-k"},
		{"tfflowers", "batch", "jobs.yaml", "--parallel"},
	} {
		var stderr strings.Builder
		code := Run(context.Background(), args, io.Discard, &stderr)
		if code != ExitUsage || !strings.Contains(stderr.String(), "flag needs an argument: "+args[len(args)-1]) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and flag needs an argument", args, code, stderr.String(), ExitUsage)
		}
	}
}
