package cli

import (
	"encoding/json"
	"fmt"
	"runtime"

	ucli "github.com/urfave/cli/v2"

	"github.com/tfflowers/tfflowers/tfops"
)

func versionCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print tfflowers, TensorFlow (from the C API) and Go versions",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *ucli.Context) error {
			v := map[string]string{"tfflowers": Version, "tensorflow": tfops.Version(), "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH}
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(v)
			}
			_, err := fmt.Fprintf(c.App.Writer, "tfflowers %s\ntensorflow %s\ngo %s %s\n", v["tfflowers"], v["tensorflow"], v["go"], v["platform"])
			return err
		},
	}
}
