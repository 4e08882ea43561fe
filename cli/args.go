package cli

import (
	"slices"
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
// A value flag given last without its value is a usage error here: moved in front, it
// would take the first file name as its value.
func hoistFlags(app *ucli.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	for _, a := range args {
		if a == "--generate-bash-completion" { // urfave/cli looks for it at the end
			return args, nil
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
		return out, nil
	}
	cmd := app.Command(args[i])
	out = append(out, args[i])
	i++
	if cmd == nil || len(cmd.Subcommands) > 0 {
		return append(out, args[i:]...), nil
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
			if i == len(args)-1 && len(positional) > 0 && takesValue(cmd.Flags, a) {
				return nil, usagef("flag needs an argument: %s", a)
			}
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
	return append(out, positional...), nil
}

// isFlagToken reports whether a looks like a flag: "-x", "--name", "--name=value".
func isFlagToken(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

// flagTokens returns how many tokens of args (args[0] being a flag token) the flag uses:
// 2 for a known flag that takes a value given as the next token, else 1 (bool flags,
// "--name=value", unknown flags, which urfave/cli then reports).
func flagTokens(defined []ucli.Flag, args []string) int {
	if len(args) >= 2 && takesValue(defined, args[0]) {
		return 2
	}
	return 1
}

// takesValue reports whether the flag token a (without "=value") names a defined flag
// that takes a value.
func takesValue(defined []ucli.Flag, a string) bool {
	name := strings.TrimLeft(a, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range defined {
		if slices.Contains(f.Names(), name) {
			v, ok := f.(ucli.DocGenerationFlag)
			return ok && v.TakesValue()
		}
	}
	return false
}
