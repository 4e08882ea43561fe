package cli

import (
	ucli "github.com/urfave/cli/v2"
)

// Flags shared by several commands. Environment variables are named in env.go only.

func globalFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "log-level", Value: "info", EnvVars: envFor("log-level"), Usage: "debug, info, warn or error"},
		&ucli.StringFlag{Name: "log-format", Value: "text", EnvVars: envFor("log-format"), Usage: "text or json (for batch jobs)"},
	}
}

func threadFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.IntFlag{Name: "intra-op-threads", EnvVars: envFor("intra-op-threads"), Usage: "TensorFlow threads inside one op (0: all cores)"},
		&ucli.IntFlag{Name: "inter-op-threads", EnvVars: envFor("inter-op-threads"), Usage: "TensorFlow ops run in parallel (0: TensorFlow's default)"},
	}
}
