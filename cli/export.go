package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"

	"github.com/tfflowers/tfflowers/internal/train"
)

func exportCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "export",
		Usage: "export a training run's newest checkpoint as a TF Serving SavedModel (BASE_DIR/<version>)",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "checkpoint", Required: true, Usage: "the training run folder (train --out)"},
			&ucli.StringFlag{Name: "export", Required: true, Usage: "model base path; the model goes to BASE_DIR/<version>"},
			&ucli.Int64Flag{Name: "version", Usage: "version number (default: one more than the highest)"},
			&ucli.BoolFlag{Name: "force", Usage: "replace an existing --version"},
			&ucli.StringFlag{Name: "base", Usage: "base model folder, if it moved since training"},
			&ucli.IntFlag{Name: "warmup", Usage: "embed N images of the run's data as TF Serving warm-up requests"},
		},
		Action: func(c *ucli.Context) error {
			dir, v, err := train.Export(train.ExportConfig{Run: c.String("checkpoint"), ModelBasePath: c.String("export"),
				Version: c.Int64("version"), Force: c.Bool("force"), Base: c.String("base"), Warmup: c.Int("warmup")})
			if err != nil {
				return classify(err)
			}
			_, err = fmt.Fprintf(c.App.Writer, "exported version %d to %s\n", v, dir)
			return err
		},
	}
}
