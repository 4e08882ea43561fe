package batch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrInvalid wraps every problem with the jobs file itself (exit code 2 in the CLI).
var ErrInvalid = errors.New("invalid jobs file")

// Kind is the type of a train flag's value.
type Kind int

// Flag value kinds.
const (
	String Kind = iota
	Int
	Uint
	Float
	Bool
	List // a repeatable flag: one value or a list of values
)

// Flag describes one `tfflowers train` flag that a jobs file may set.
type Flag struct {
	Kind Kind
	Path bool // relative values are resolved against the jobs file's folder
}

// reserved are train flags that the batch sets itself.
var reserved = map[string]string{
	"out":    "each job's --out is ROOT/NAME/run; set the batch root with the top-level out: or --out",
	"resume": "the batch passes --resume itself when a job's run folder holds checkpoints",
}

// Job is one expanded job of a jobs file.
type Job struct {
	Name string `json:"name"`
	// Params are the job's own settings: its grid point or the keys of its jobs: entry.
	// Generated names come from them, and the summary shows them.
	Params map[string]any `json:"params"`
	// Flags are the defaults merged with Params, values as written in the file.
	Flags map[string]any `json:"flags"`
	// Args are the train flags passed to the child (paths resolved), without
	// --out, --cache-dir and --resume, which the batch adds.
	Args []string `json:"args"`
	// CacheDir is the job's own cache-dir flag, if it sets one (resolved).
	CacheDir string `json:"-"`
}

// Plan is a loaded, validated jobs file.
type Plan struct {
	File     string // absolute path of the jobs file
	Root     string // absolute batch root from the file's out: ("" if absent)
	CacheDir string // absolute shared cache dir from the file's cache_dir: ("" if absent)
	Jobs     []Job
}

// problems collects validation errors with their line numbers.
type problems struct {
	file string
	list []string
}

func (p *problems) add(n *yaml.Node, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		msg = fmt.Sprintf("line %d: %s", n.Line, msg)
	}
	p.list = append(p.list, msg)
}

func (p *problems) err() error {
	switch len(p.list) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%w %s: %s", ErrInvalid, p.file, p.list[0])
	}
	return fmt.Errorf("%w %s: %d problems:\n  %s", ErrInvalid, p.file, len(p.list), strings.Join(p.list, "\n  "))
}

// Load reads and validates a jobs file (.yaml, .yml or .json):
//
//	out: runs/sweep          # batch root, relative to the jobs file
//	cache_dir: ...           # optional shared feature cache (default ROOT/.feature-cache)
//	defaults: {FLAG: VALUE}  # any `tfflowers train` flag name without -- (data, base, epochs, ...)
//	grid: {FLAG: [V1, V2]}   # optional cartesian product; names like head-gap_lr-0.001
//	jobs:                    # optional explicit jobs, merged over defaults
//	  - {name: codelab, head: flatten, dropout: 0}
//
// The jobs are the grid's points followed by the explicit jobs. Flag names may use _ for -.
// Path flags (data, base, val-dir, labels, tfrecords, cache-dir, export) are resolved
// against the jobs file's folder. flags lists the train flags; every problem is reported,
// wrapped in ErrInvalid, with the file and line.
func Load(path string, flags map[string]Flag) (*Plan, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrInvalid, path, err)
	}
	raw, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	root, err := parse(path, raw)
	if err != nil {
		return nil, err
	}
	l := &loader{p: &problems{file: path}, flags: flags, dir: filepath.Dir(abs)}
	plan := l.load(root)
	if err := l.p.err(); err != nil {
		return nil, err
	}
	plan.File = abs
	return plan, nil
}

// parse returns the document's root node. JSON is checked with encoding/json first (YAML
// would accept more), then read through yaml.v3, which keeps line numbers.
func parse(path string, raw []byte) (*yaml.Node, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				line := 1 + strings.Count(string(raw[:min(int(se.Offset), len(raw))]), "\n")
				return nil, fmt.Errorf("%w %s: line %d: %v", ErrInvalid, path, line, err)
			}
			return nil, fmt.Errorf("%w %s: %v", ErrInvalid, path, err)
		}
		// JSON may be indented with tabs, which YAML forbids: they are whitespace
		// outside strings in JSON, and a tab inside a JSON string is always escaped.
		raw = []byte(strings.ReplaceAll(string(raw), "\t", " "))
	case ".yaml", ".yml":
	default:
		return nil, fmt.Errorf("%w %s: want a .yaml, .yml or .json file", ErrInvalid, path)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrInvalid, path, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%w %s: the file is empty; want out:, defaults:, grid: and/or jobs:", ErrInvalid, path)
	}
	return doc.Content[0], nil
}

type loader struct {
	p     *problems
	flags map[string]Flag
	dir   string
}

// param is one flag setting.
type param struct {
	key  string
	node *yaml.Node
	raw  any      // the value, typed, for the JSON outputs
	text string   // the value as written, for job names
	args []string // values passed to the child
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// pairs returns a mapping's keys and values, reporting duplicate keys.
func (l *loader) pairs(n *yaml.Node, what string) ([]*yaml.Node, []*yaml.Node) {
	n = deref(n)
	if n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		l.p.add(n, "%s: want a mapping (key: value lines)", what)
		return nil, nil
	}
	var keys, vals []*yaml.Node
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.p.add(k, "%s: keys must be plain names", what)
			continue
		}
		norm := normKey(k.Value)
		if first, ok := seen[norm]; ok {
			l.p.add(k, "%s: %q given twice (first at line %d)", what, k.Value, first)
			continue
		}
		seen[norm] = k.Line
		keys, vals = append(keys, k), append(vals, v)
	}
	return keys, vals
}

// normKey lets image_size stand for image-size.
func normKey(k string) string { return strings.ReplaceAll(strings.TrimPrefix(k, "--"), "_", "-") }

func (l *loader) load(root *yaml.Node) *Plan {
	plan := &Plan{}
	var defaults, grid, jobs *yaml.Node
	if deref(root).Kind != yaml.MappingNode {
		l.p.add(root, "want a mapping with out:, defaults:, grid: and/or jobs:")
		return plan
	}
	keys, vals := l.pairs(root, "top level")
	for i, k := range keys {
		v := deref(vals[i])
		switch normKey(k.Value) {
		case "out":
			plan.Root = l.pathValue(k.Value, v)
		case "cache-dir":
			plan.CacheDir = l.pathValue(k.Value, v)
		case "defaults":
			defaults = v
		case "grid":
			grid = v
		case "jobs":
			jobs = v
		default:
			l.p.add(k, "unknown top-level key %q: want out, cache_dir, defaults, grid or jobs", k.Value)
		}
	}
	base := l.params(defaults, "defaults")
	points := l.grid(grid)
	names := map[string]int{}
	addJob := func(j Job, where *yaml.Node) {
		if first, ok := names[j.Name]; ok {
			l.p.add(where, "job name %q used twice (first at line %d)", j.Name, first)
			return
		}
		names[j.Name] = where.Line
		plan.Jobs = append(plan.Jobs, j)
	}
	for _, pt := range points {
		addJob(l.job(generatedName(pt, 0), base, pt), grid)
	}
	for i, n := range l.explicit(jobs) {
		name, own := l.jobEntry(n)
		if name == "" {
			name = generatedName(own, i+1)
		}
		addJob(l.job(name, base, own), n)
	}
	if len(l.p.list) == 0 && len(plan.Jobs) == 0 {
		l.p.add(root, "no jobs: give a grid: or a jobs: list")
	}
	return plan
}

func (l *loader) pathValue(key string, v *yaml.Node) string {
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" || v.Value == "" {
		l.p.add(v, "%s: want a folder path", key)
		return ""
	}
	return l.resolve(v.Value)
}

// resolve makes a path from the jobs file absolute, relative to the file's folder.
func (l *loader) resolve(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, p[1:])
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(l.dir, p)
	}
	return filepath.Clean(p)
}

// params reads a mapping of flag settings.
func (l *loader) params(n *yaml.Node, what string) []param {
	keys, vals := l.pairs(n, what)
	var out []param
	for i, k := range keys {
		if p, ok := l.param(k, vals[i], what); ok {
			out = append(out, p)
		}
	}
	return out
}

// flag checks a flag name and returns its canonical form.
func (l *loader) flag(k *yaml.Node, what string) (string, Flag, bool) {
	name := normKey(k.Value)
	if why, ok := reserved[name]; ok {
		l.p.add(k, "%s: %q cannot be set here: %s", what, k.Value, why)
		return "", Flag{}, false
	}
	f, ok := l.flags[name]
	if !ok {
		msg := fmt.Sprintf("%s: unknown train flag %q", what, k.Value)
		if s := closest(name, l.flags); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		l.p.add(k, "%s; see tfflowers train --help", msg)
		return "", Flag{}, false
	}
	return name, f, true
}

func (l *loader) param(k, v *yaml.Node, what string) (param, bool) {
	name, f, ok := l.flag(k, what)
	if !ok {
		return param{}, false
	}
	return l.value(name, f, v, what)
}
