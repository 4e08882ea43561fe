package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// hoistFlags lets flags follow the positional arguments, as users type them
// (`tfflowers predict rose.jpg --json --model m`): urfave/cli v2, like Go's flag package,
// stops parsing flags at the first positional argument, and would then take "--json" for
// a file name. hoistFlags moves every flag of the command (with its value, for flags that
// take one) in front of the positional arguments, keeping both orders. Anything after a
// "--" stays positional, so a file named "-x.jpg" is given as `-- -x.jpg`. A "--" is put
// between the flags and the positional arguments when one of those starts with "-".
func hoistFlags(app *ucli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	for _, a := range args {
		if a == "--generate-bash-completion" { // urfave/cli looks for it at the end
			return args
		}
	}
	out := []string{args[0]}
	i := 1
	// Global flags, up to the command name.
	for i < len(args) && isFlagToken(args[i]) {
		n := flagTokens(app.Flags, args[i:])
		out = append(out, args[i:i+n]...)
		i += n
	}
	if i >= len(args) {
		return out
	}
	cmd := app.Command(args[i])
	out = append(out, args[i])
	i++
	if cmd == nil || len(cmd.Subcommands) > 0 {
		return append(out, args[i:]...)
	}
	var flags, positional []string
	dashInPositional := false
	for i < len(args) {
		a := args[i]
		if a == "--" {
			for _, p := range args[i+1:] {
				dashInPositional = dashInPositional || strings.HasPrefix(p, "-")
			}
			positional = append(positional, args[i+1:]...)
			break
		}
		if isFlagToken(a) {
			n := flagTokens(cmd.Flags, args[i:])
			flags = append(flags, args[i:i+n]...)
			i += n
			continue
		}
		positional = append(positional, a)
		i++
	}
	out = append(out, flags...)
	if dashInPositional {
		out = append(out, "--")
	}
	return append(out, positional...)
}

// isFlagToken reports whether a looks like a flag: "-x", "--name", "--name=value".
func isFlagToken(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

// flagTokens returns how many tokens of args (args[0] being a flag token) the flag uses:
// 2 for a known flag that takes a value given as the next token, else 1 (bool flags,
// "--name=value", unknown flags, which urfave/cli then reports).
func flagTokens(defined []ucli.Flag, args []string) int {
	name := strings.TrimLeft(args[0], "-")
	if strings.Contains(name, "=") || len(args) < 2 {
		return 1
	}
	for _, f := range defined {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			if v, ok := f.(ucli.DocGenerationFlag); ok && v.TakesValue() {
				return 2
			}
			return 1
		}
	}
	return 1
}
