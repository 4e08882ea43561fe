package cli

import (
	"context"
	"io"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

// TestEnvTable: every flag's environment variable comes from the one table, every table
// entry for a flag is used, and `tfflowers --help` lists every variable.
func TestEnvTable(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	used := map[string]bool{}
	check := func(where string, flags []ucli.Flag) {
		for _, f := range flags {
			df, ok := f.(ucli.DocGenerationFlag)
			if !ok {
				continue
			}
			for _, name := range df.GetEnvVars() {
				want := envFor(f.Names()[0])
				if len(want) != 1 || want[0] != name {
					t.Errorf("%s --%s reads %s, which the env table does not give it", where, f.Names()[0], name)
				}
				used[name] = true
			}
		}
	}
	check("global", app.Flags)
	for _, c := range app.Commands {
		check(c.Name, c.Flags)
	}
	var help strings.Builder
	if code := Run(context.Background(), []string{"tfflowers", "--help"}, &help, io.Discard); code != ExitOK {
		t.Fatalf("--help exit %d", code)
	}
	for _, e := range envVars {
		if e.Flag != "" && !used[e.Name] {
			t.Errorf("%s is in the env table for --%s, but no flag reads it", e.Name, e.Flag)
		}
		if !strings.Contains(help.String(), e.Name) {
			t.Errorf("--help does not list %s", e.Name)
		}
	}
}
