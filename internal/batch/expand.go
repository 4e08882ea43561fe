package batch

// How a jobs file's grid: and jobs: expand into jobs, and the jobs' folder names.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// grid returns the cartesian product of the grid's values, keys sorted, the last key
// varying fastest, values in file order.
func (l *loader) grid(n *yaml.Node) [][]param {
	keys, vals := l.pairs(n, "grid")
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return normKey(keys[order[a]].Value) < normKey(keys[order[b]].Value) })
	var axes [][]param
	for _, i := range order {
		if values, ok := l.gridAxis(keys[i], deref(vals[i])); ok {
			axes = append(axes, values)
		}
	}
	if len(axes) == 0 {
		return nil
	}
	points := [][]param{nil}
	for _, values := range axes {
		var next [][]param
		for _, pt := range points {
			for _, v := range values {
				next = append(next, append(append([]param(nil), pt...), v))
			}
		}
		points = next
	}
	return points
}

// gridAxis reads one grid key's values (a list, or one value); ok is false when the key
// is not a train flag or lists no value.
func (l *loader) gridAxis(k, v *yaml.Node) (values []param, ok bool) {
	name, f, ok := l.flag(k, "grid")
	if !ok {
		return nil, false
	}
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	if len(items) == 0 {
		l.p.add(v, "grid: %s: empty list of values", k.Value)
		return nil, false
	}
	seen := map[string]bool{}
	for _, it := range items {
		if p, ok := l.value(name, f, it, "grid"); ok {
			if seen[p.text] {
				l.p.add(it, "grid: %s: value %q listed twice", k.Value, p.text)
				continue
			}
			seen[p.text] = true
			values = append(values, p)
		}
	}
	return values, true
}

// explicit returns the entries of jobs:.
func (l *loader) explicit(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		l.p.add(n, "jobs: want a list of jobs (- name: ...)")
		return nil
	}
	var out []*yaml.Node
	for _, it := range n.Content {
		it = deref(it)
		if it.Kind != yaml.MappingNode {
			l.p.add(it, "jobs: each job is a mapping of flag: value (and an optional name:)")
			continue
		}
		out = append(out, it)
	}
	return out
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+=,@-]*$`)

// reservedNames are files in ROOT that a job folder must not shadow.
var reservedNames = map[string]bool{"summary.csv": true, "summary.md": true, "jobs.resolved.json": true}

// jobEntry reads one jobs: entry: its name (or "") and its own params.
func (l *loader) jobEntry(n *yaml.Node) (string, []param) {
	keys, vals := l.pairs(n, "jobs")
	var name string
	var own []param
	for i, k := range keys {
		if k.Value == "name" {
			v := deref(vals[i])
			switch {
			case v.Kind != yaml.ScalarNode || v.Tag == "!!null" || v.Value == "":
				l.p.add(v, "jobs: name: want a folder name")
			case !nameRE.MatchString(v.Value) || len(v.Value) > 200 || reservedNames[v.Value]:
				l.p.add(v, "jobs: name %q: use letters, digits and . _ + = , @ - (not first), at most 200 characters", v.Value)
			default:
				name = v.Value
			}
			continue
		}
		if p, ok := l.param(k, vals[i], "jobs"); ok {
			own = append(own, p)
		}
	}
	return name, own
}

// job merges own over base.
func (l *loader) job(name string, base, own []param) Job {
	merged := map[string]param{}
	for _, p := range base {
		merged[p.key] = p
	}
	j := Job{Name: name, Params: map[string]any{}, Flags: map[string]any{}}
	for _, p := range own {
		merged[p.key] = p
		j.Params[p.key] = p.raw
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := merged[k]
		j.Flags[k] = p.raw
		if k == "cache-dir" {
			j.CacheDir = p.args[0]
		}
		for _, a := range p.args {
			j.Args = append(j.Args, "--"+k+"="+a)
		}
	}
	return j
}

// generatedName is key-value pairs sorted by key, joined by _, made filesystem-safe:
// head=gap,lr=0.001 gives head-gap_lr-0.001. With no params it is job-N.
func generatedName(ps []param, n int) string {
	sorted := append([]param(nil), ps...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].key < sorted[b].key })
	parts := make([]string, 0, len(sorted))
	for _, p := range sorted {
		parts = append(parts, safe(p.key+"-"+p.text))
	}
	name := strings.Join(parts, "_")
	if name == "" {
		return fmt.Sprintf("job-%d", n)
	}
	if len(name) > 120 {
		sum := sha256.Sum256([]byte(name))
		name = name[:100] + "-" + hex.EncodeToString(sum[:])[:12]
	}
	return name
}

// safe keeps letters, digits, . + and -, turns runs of anything else into one -, and
// never starts with . or -.
func safe(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '+' || r == '-'
		if !ok || r == '-' {
			if !dash {
				b.WriteByte('-')
			}
			dash = true
			continue
		}
		b.WriteRune(r)
		dash = false
	}
	out := strings.TrimLeft(b.String(), ".-")
	if out == "" {
		out = "x"
	}
	return out
}
