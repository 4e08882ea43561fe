package cli

import (
	"testing"

	ucli "github.com/urfave/cli/v2"

	"github.com/tfflowers/tfflowers/internal/train"
	"github.com/tfflowers/tfflowers/tfops"
)

// parseTrain returns the training configuration the flags give, without training.
func parseTrain(t *testing.T, args ...string) train.Config {
	t.Helper()
	var cfg train.Config
	app := &ucli.App{Flags: trainFlags(), Action: func(c *ucli.Context) (err error) {
		cfg, err = trainConfig(c)
		return err
	}}
	if err := app.Run(append([]string{"train", "--data", "d", "--base", "b", "--no-cache"}, args...)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestFineTuneDefaults: --fine-tune alone is the README's fine-tuning recipe, and every
// part of it is one flag away from off; without --fine-tune nothing of it applies.
func TestFineTuneDefaults(t *testing.T) {
	ft := parseTrain(t, "--fine-tune")
	want := tfops.Augment{Flip: true, Zoom: 0.3, Brightness: 0.1}
	if ft.FineTuneFrom != "Conv1" || ft.FineTuneEpochs != 15 || ft.FineTuneLR != 1e-4 || ft.Augment != want ||
		ft.LabelSmoothing != 0.1 || !ft.RestoreBest || ft.MicroBatch != 16 || ft.FineTuneSchedule != train.ScheduleConstant || ft.FineTuneWarmup != 0 {
		t.Fatalf("--fine-tune alone: %+v", ft)
	}
	off := parseTrain(t, "--fine-tune", "--augment=false", "--label-smoothing", "0", "--restore-best=false", "--augment-zoom", "0.1", "--micro-batch", "0")
	if off.Augment.Enabled() || off.LabelSmoothing != 0 || off.RestoreBest || off.MicroBatch != 0 {
		t.Fatalf("--fine-tune with the recipe switched off: %+v", off)
	}
	zoom := parseTrain(t, "--fine-tune", "--augment-zoom", "0.1")
	if zoom.Augment.Zoom != 0.1 {
		t.Fatalf("--augment-zoom 0.1 with --fine-tune gave zoom %v", zoom.Augment.Zoom)
	}
	frozen := parseTrain(t)
	if frozen.FineTune || frozen.Augment.Enabled() || frozen.LabelSmoothing != 0 || frozen.RestoreBest || frozen.MicroBatch != 0 || frozen.ValSplit != 0.1 || frozen.TestSplit != 0.1 {
		t.Fatalf("frozen defaults changed: %+v", frozen)
	}
}
