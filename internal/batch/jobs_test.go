package batch_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tfflowers/tfflowers/cli"
	"github.com/tfflowers/tfflowers/internal/batch"
	"github.com/tfflowers/tfflowers/internal/tftest"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func names(p *batch.Plan) []string {
	var out []string
	for _, j := range p.Jobs {
		out = append(out, j.Name)
	}
	return out
}

func TestTrainFlagHelpers(t *testing.T) {
	names := cli.TrainFlagNames()
	for _, want := range []string{"data", "lr", "head", "epochs", "image-size", "cache-dir", "tfrecords"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("TrainFlagNames() lacks %q: %v", want, names)
		}
	}
	flags := cli.BatchFlags()
	if len(flags) != len(names) {
		t.Errorf("BatchFlags has %d flags, TrainFlagNames %d", len(flags), len(names))
	}
	for name, want := range map[string]batch.Flag{
		"epochs": {Kind: batch.Int}, "seed": {Kind: batch.Uint}, "lr": {Kind: batch.Float}, "augment": {Kind: batch.Bool},
		"head": {Kind: batch.String}, "data": {Kind: batch.String, Path: true}, "tfrecords": {Kind: batch.List, Path: true},
	} {
		if flags[name] != want {
			t.Errorf("BatchFlags()[%q] = %+v, want %+v", name, flags[name], want)
		}
	}
}

const sweepYAML = `# a comment
out: runs/sweep
defaults:
  data: ../photos
  base: /models/base
  epochs: 10
  image_size: 96
grid:
  lr: [0.001, 3e-4]
  head: [gap, flatten]
jobs:
  - {name: codelab, head: flatten, dropout: 0, epochs: 5}
  - {augment: true, tfrecords: [a.tfrec, /abs/b.tfrec], classes: "a,b"}
`

const sweepJSON = `{
	"out": "runs/sweep",
	"defaults": {"data": "../photos", "base": "/models/base", "epochs": 10, "image-size": 96},
	"grid": {"head": ["gap", "flatten"], "lr": [0.001, 3e-4]},
	"jobs": [
		{"name": "codelab", "head": "flatten", "dropout": 0, "epochs": 5},
		{"augment": true, "tfrecords": ["a.tfrec", "/abs/b.tfrec"], "classes": "a,b"}
	]
}
`

func TestLoadExpandsGridAndJobs(t *testing.T) {
	dir := t.TempDir()
	flags := cli.BatchFlags()
	var plans []*batch.Plan
	for name, text := range map[string]string{"sweep.yaml": sweepYAML, "sweep.json": sweepJSON} {
		p, err := batch.Load(writeFile(t, dir, name, text), flags)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		plans = append(plans, p)
	}
	p := plans[0]
	want := []string{"head-gap_lr-0.001", "head-gap_lr-3e-4", "head-flatten_lr-0.001", "head-flatten_lr-3e-4", "codelab",
		"augment-true_classes-a-b_tfrecords-a.tfrec-abs-b.tfrec"}
	if got := names(p); !reflect.DeepEqual(got, want) {
		t.Fatalf("job names %v, want %v", got, want)
	}
	if p.Root != filepath.Join(dir, "runs", "sweep") {
		t.Errorf("root %q", p.Root)
	}
	grid := p.Jobs[1]
	wantArgs := []string{"--base=/models/base", "--data=" + filepath.Join(filepath.Dir(dir), "photos"), "--epochs=10", "--head=gap", "--image-size=96", "--lr=3e-4"}
	if !reflect.DeepEqual(grid.Args, wantArgs) {
		t.Errorf("args %q, want %q", grid.Args, wantArgs)
	}
	if !reflect.DeepEqual(grid.Params, map[string]any{"head": "gap", "lr": 3e-4}) {
		t.Errorf("params %v", grid.Params)
	}
	codelab := p.Jobs[4]
	if codelab.Flags["epochs"] != int64(5) || codelab.Flags["dropout"] != 0.0 || codelab.Flags["data"] != "../photos" {
		t.Errorf("codelab flags %v", codelab.Flags)
	}
	last := p.Jobs[5]
	if !reflect.DeepEqual(last.Args[:3], []string{"--augment=true", "--base=/models/base", "--classes=a,b"}) ||
		!reflect.DeepEqual(last.Args[len(last.Args)-2:], []string{"--tfrecords=" + filepath.Join(dir, "a.tfrec"), "--tfrecords=/abs/b.tfrec"}) {
		t.Errorf("explicit job args %q", last.Args)
	}
	// The JSON file says the same thing.
	j0, _ := json.Marshal(plans[0].Jobs)
	j1, _ := json.Marshal(plans[1].Jobs)
	if string(j0) != string(j1) {
		t.Errorf("YAML and JSON plans differ:\n%+v\n%+v", plans[0].Jobs, plans[1].Jobs)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	flags := cli.BatchFlags()
	cases := []struct {
		name, file, text string
		want             []string // parts of the message
	}{
		{"unknown flag", "a.yaml", "defaults:\n  data: x\n  lrr: 1\ngrid:\n  lr: [1]\n", []string{"a.yaml", "line 3", `"lrr"`, `did you mean "lr"`}},
		{"unknown grid flag", "a.yaml", "grid:\n  hed: [gap]\n", []string{"line 2", `"hed"`}},
		{"unknown job flag", "a.yaml", "jobs:\n  - {name: x, nope: 1}\n", []string{"line 2", `"nope"`}},
		{"duplicate names", "a.yaml", "jobs:\n  - {name: x, lr: 1}\n  - {name: x, lr: 2}\n", []string{"line 3", `"x" used twice`, "line 2"}},
		{"duplicate generated names", "a.yaml", "grid:\n  head: [gap]\njobs:\n  - {head: gap}\n", []string{`"head-gap" used twice`}},
		{"empty", "a.yaml", "defaults:\n  lr: 1\n", []string{"a.yaml", "no jobs"}},
		{"empty file", "a.yaml", "# nothing\n", []string{"a.yaml", "empty"}},
		{"empty grid", "a.yaml", "grid: {lr: []}\n", []string{"line 1", "empty"}},
		{"bad yaml", "a.yaml", "defaults:\n  lr: [1, 2\ngrid:\n", []string{"a.yaml", "line"}},
		{"bad json", "a.json", "{\n  \"jobs\": [\n    {\"lr\": 1,}\n  ]\n}\n", []string{"a.json", "line 3"}},
		{"duplicate json key", "a.json", "{\"jobs\": [{\"lr\": 1, \"lr\": 2}]}", []string{"a.json", `"lr" given twice`}},
		{"duplicate key spelling", "a.yaml", "jobs:\n  - {image_size: 96, image-size: 64}\n", []string{"given twice"}},
		{"reserved out", "a.yaml", "defaults: {out: x}\njobs: [{lr: 1}]\n", []string{"line 1", `"out" cannot be set`}},
		{"reserved resume", "a.yaml", "jobs: [{resume: true}]\n", []string{`"resume" cannot be set`}},
		{"bad int", "a.yaml", "jobs: [{epochs: ten}]\n", []string{"line 1", "not an integer"}},
		{"bad float", "a.yaml", "grid: {lr: [0.1, fast]}\n", []string{"not a number"}},
		{"bad bool", "a.yaml", "jobs: [{augment: maybe}]\n", []string{"not true or false"}},
		{"list for scalar", "a.yaml", "jobs: [{lr: [1, 2]}]\n", []string{"single value"}},
		{"no value", "a.yaml", "jobs: [{lr: }]\n", []string{"no value"}},
		{"bad name", "a.yaml", "jobs: [{name: ../x, lr: 1}]\n", []string{`name "../x"`}},
		{"unknown top-level", "a.yaml", "jbos: []\n", []string{"line 1", `"jbos"`}},
		{"not a mapping", "a.yaml", "- lr: 1\n", []string{"want a mapping"}},
		{"extension", "a.toml", "x = 1\n", []string{"a.toml", ".yaml"}},
		{"two problems", "a.yaml", "jobs: [{lrr: 1}, {epochs: x}]\n", []string{"2 problems", "lrr", "not an integer"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := batch.Load(writeFile(t, dir, tc.file, tc.text), flags)
			if !errors.Is(err, batch.ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := batch.Load(filepath.Join(dir, "missing.yaml"), flags); !errors.Is(err, batch.ErrInvalid) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// The example sweep stays valid: 3 x 2 grid jobs and 2 explicit ones, with the data path
// resolved against scripts/ to the shared flower photos beside the repository.
func TestExampleSweepLoads(t *testing.T) {
	root := tftest.Root(t)
	p, err := batch.Load(filepath.Join(root, "scripts", "sweep_flowers.yaml"), cli.BatchFlags())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"head-gap_lr-0.003", "head-gap_lr-0.001", "head-gap_lr-0.0003",
		"head-flatten_lr-0.003", "head-flatten_lr-0.001", "head-flatten_lr-0.0003", "codelab", "gap-smoothing"}
	if got := names(p); !reflect.DeepEqual(got, want) {
		t.Errorf("jobs %v, want %v", got, want)
	}
	if p.Root != filepath.Join(root, "runs", "sweep") {
		t.Errorf("root %s", p.Root)
	}
	data := filepath.Join(filepath.Dir(root), "shared", "data", "flower_photos")
	if !slices.Contains(p.Jobs[0].Args, "--data="+data) || !slices.Contains(p.Jobs[0].Args, "--base="+filepath.Join(root, "models", "base")) {
		t.Errorf("args %q", p.Jobs[0].Args)
	}
}
