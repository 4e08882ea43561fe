package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfflowers/tfflowers/cli"
	"github.com/tfflowers/tfflowers/internal/tftest"
)

func run(args ...string) (int, string, string) {
	var out, errw bytes.Buffer
	code := cli.Run(context.Background(), append([]string{"tfflowers", "--log-level", "warn"}, args...), &out, &errw)
	return code, out.String(), errw.String()
}

func TestVersionAndDevices(t *testing.T) {
	code, out, _ := run("version", "--json")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || !strings.HasPrefix(v["tensorflow"], "2.") {
		t.Fatalf("version --json: code %d, output %q", code, out)
	}
	code, out, _ = run("devices", "--json")
	var devs []struct{ Name, Type string }
	if code != 0 || json.Unmarshal([]byte(out), &devs) != nil || len(devs) == 0 || devs[0].Type != "CPU" {
		t.Fatalf("devices --json: code %d, output %q", code, out)
	}
}

func TestTrainUsageErrors(t *testing.T) {
	tmp := t.TempDir()
	shared := tftest.FlowerPhotos(t)
	cases := map[string]struct {
		args []string
		want string // part of the message
	}{
		"unknown flag":       {[]string{"train", "--nope"}, "nope"},
		"missing data":       {[]string{"train", "--data", filepath.Join(tmp, "missing"), "--out", filepath.Join(tmp, "o")}, "missing"},
		"bad split":          {[]string{"train", "--data", shared, "--val-split", "1.5", "--out", filepath.Join(tmp, "o")}, "--val-split"},
		"bad test split":     {[]string{"train", "--data", shared, "--test-split", "1", "--out", filepath.Join(tmp, "o")}, "--test-split"},
		"splits sum to 1":    {[]string{"train", "--data", shared, "--val-split", "0.5", "--test-split", "0.5", "--out", filepath.Join(tmp, "o")}, "sum must be below 1"},
		"test dir and split": {[]string{"train", "--data", shared, "--test-dir", tmp, "--test-split", "0.2", "--out", filepath.Join(tmp, "o")}, "--test-dir or --test-split"},
		"bad device":         {[]string{"train", "--data", shared, "--device", "quantum", "--out", filepath.Join(tmp, "o")}, "device"},
		"missing base":       {[]string{"train", "--data", shared, "--base", filepath.Join(tmp, "nobase"), "--out", filepath.Join(tmp, "o")}, "export_base_model.py"},
		"both labels":        {[]string{"train", "--tfrecords", tmp, "--classes", "a,b", "--labels", "x.txt", "--out", filepath.Join(tmp, "o")}, "--labels"},
		"labels needed":      {[]string{"train", "--tfrecords", tmp, "--out", filepath.Join(tmp, "o")}, "--classes"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			code, _, stderr := run(tc.args...)
			if code != cli.ExitUsage {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, cli.ExitUsage, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q does not mention %q", stderr, tc.want)
			}
		})
	}
}

// TestFlagsAfterArguments: flags typed after the files are parsed as flags, not taken
// for file names (the checks below run before any model is loaded).
func TestFlagsAfterArguments(t *testing.T) {
	code, _, stderr := run("predict", "rose.jpg", "--top-k", "0", "--model", "m")
	if code != cli.ExitUsage || !strings.Contains(stderr, "--top-k must be at least 1") {
		t.Fatalf("predict FILE --top-k 0: exit %d, stderr %q; want the --top-k error", code, stderr)
	}
	code, _, stderr = run("predict", "rose.jpg", "--jsno", "--model", "m")
	if code != cli.ExitUsage || !strings.Contains(stderr, "jsno") {
		t.Fatalf("predict FILE --jsno: exit %d, stderr %q; want an unknown-flag error", code, stderr)
	}
	code, _, stderr = run("batch", "jobs.yaml", "--parallel", "0")
	if code != cli.ExitUsage || !strings.Contains(stderr, "--parallel 0") {
		t.Fatalf("batch FILE --parallel 0: exit %d, stderr %q", code, stderr)
	}
}
