package batch

import (
	"strconv"
	"strings"

	"github.com/xrash/smetrics"
	"gopkg.in/yaml.v3"
)

// value checks one value of flag name against its kind.
func (l *loader) value(name string, f Flag, v *yaml.Node, what string) (param, bool) {
	v = deref(v)
	p := param{key: name, node: v}
	if f.Kind == List && v.Kind == yaml.SequenceNode {
		var items, texts []string
		for _, it := range v.Content {
			it = deref(it)
			if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
				l.p.add(it, "%s: %s: want a list of plain values", what, name)
				return p, false
			}
			items = append(items, l.maybePath(f, it.Value))
			texts = append(texts, it.Value)
		}
		if len(items) == 0 {
			l.p.add(v, "%s: %s: empty list", what, name)
			return p, false
		}
		p.raw, p.text, p.args = texts, strings.Join(texts, ","), items
		return p, true
	}
	if v.Kind != yaml.ScalarNode {
		l.p.add(v, "%s: %s: want a single value", what, name)
		return p, false
	}
	if v.Tag == "!!null" {
		l.p.add(v, "%s: %s: no value", what, name)
		return p, false
	}
	s := v.Value
	p.text = s
	switch f.Kind {
	case Bool:
		var b bool
		if err := v.Decode(&b); err != nil {
			l.p.add(v, "%s: %s: %q is not true or false", what, name, s)
			return p, false
		}
		p.raw, p.args = b, []string{strconv.FormatBool(b)}
		return p, true
	case Int:
		n, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			l.p.add(v, "%s: %s: %q is not an integer", what, name, s)
			return p, false
		}
		p.raw = n
	case Uint:
		n, err := strconv.ParseUint(s, 0, 64)
		if err != nil {
			l.p.add(v, "%s: %s: %q is not a non-negative integer", what, name, s)
			return p, false
		}
		p.raw = n
	case Float:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			l.p.add(v, "%s: %s: %q is not a number", what, name, s)
			return p, false
		}
		p.raw = x
	case List:
		p.raw = []string{s}
	default:
		p.raw = s
	}
	p.args = []string{l.maybePath(f, s)}
	return p, true
}

func (l *loader) maybePath(f Flag, s string) string {
	if f.Path && s != "" {
		return l.resolve(s)
	}
	return s
}

// closest returns the known flag nearest to name, if it is close.
func closest(name string, flags map[string]Flag) string {
	best, bestD := "", 3
	for k := range flags {
		if d := smetrics.WagnerFischer(name, k, 1, 1, 1); d < bestD || d == bestD && best != "" && k < best {
			best, bestD = k, d
		}
	}
	return best
}
