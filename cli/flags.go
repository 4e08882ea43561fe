package cli

import (
	ucli "github.com/urfave/cli/v2"
)

// Every flag with an environment variable is declared here, once.

func globalFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"TFFLOWERS_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
		&ucli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"TFFLOWERS_LOG_FORMAT"}, Usage: "text or json (for batch jobs)"},
	}
}

func threadFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.IntFlag{Name: "intra-op-threads", EnvVars: []string{"TFFLOWERS_INTRA_OP_THREADS"}, Usage: "TensorFlow threads inside one op (0: all cores)"},
		&ucli.IntFlag{Name: "inter-op-threads", EnvVars: []string{"TFFLOWERS_INTER_OP_THREADS"}, Usage: "TensorFlow ops run in parallel (0: TensorFlow's default)"},
	}
}
