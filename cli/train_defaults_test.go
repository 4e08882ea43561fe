package cli

import (
	"errors"
	"strings"
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
	if ft.FineTuneFrom != "block_6" || ft.FineTuneEpochs != 4 || ft.FineTuneLR != 2e-4 || ft.Augment != want ||
		ft.LabelSmoothing != 0.1 || !ft.RestoreBest || ft.MicroBatch != 16 || ft.FineTuneSchedule != train.ScheduleCosine || ft.FineTuneWarmup != 0 || ft.TTA != tfops.TTAFlip {
		t.Fatalf("--fine-tune alone: %+v", ft)
	}
	off := parseTrain(t, "--fine-tune", "--augment=false", "--label-smoothing", "0", "--restore-best=false", "--augment-zoom", "0.1", "--micro-batch", "0", "--tta", "none")
	if off.Augment.Enabled() || off.LabelSmoothing != 0 || off.RestoreBest || off.MicroBatch != 0 || off.TTA != tfops.TTANone {
		t.Fatalf("--fine-tune with the recipe switched off: %+v", off)
	}
	if c := parseTrain(t, "--fine-tune", "--cluster", "c.json"); c.TTA == tfops.TTAFlip {
		t.Fatalf("--fine-tune --cluster defaulted to --tta flip, which a cluster cannot run")
	}
	zoom := parseTrain(t, "--fine-tune", "--augment-zoom", "0.1")
	if zoom.Augment.Zoom != 0.1 {
		t.Fatalf("--augment-zoom 0.1 with --fine-tune gave zoom %v", zoom.Augment.Zoom)
	}
	frozen := parseTrain(t)
	if frozen.FineTune || frozen.Augment.Enabled() || frozen.RestoreBest || frozen.MicroBatch != 0 || frozen.ValSplit != 0.1 || frozen.TestSplit != 0.1 ||
		(frozen.TTA != "" && frozen.TTA != tfops.TTANone) {
		t.Fatalf("frozen defaults changed: %+v", frozen)
	}
	// A fine-tuned model is evaluated and exported one stride above its training size
	// (train.DefaultEvalImageSize); every other run, and any explicit size, keeps its own.
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--fine-tune"}, 224},
		{[]string{"--fine-tune", "--eval-image-size", "192"}, 192},
		{[]string{"--fine-tune", "--image-size", "160"}, 192},
		{[]string{"--fine-tune", "--augment=false"}, 192},
		{[]string{"--fine-tune", "--cluster", "c.json"}, 192},
		{[]string{"--fine-tune", "--head", "flatten"}, 192},
		{nil, 224},
		{[]string{"--head", "gap"}, 192},
	} {
		cfg := parseTrain(t, c.args...)
		if err := cfg.Validate(); err != nil || cfg.EvalImageSize != c.want {
			t.Fatalf("%v: eval image size %d (%v), want %d", c.args, cfg.EvalImageSize, err, c.want)
		}
	}
	for _, args := range [][]string{
		{"--head", "flatten", "--eval-image-size", "224"},
		{"--fine-tune", "--cluster", "c.json", "--eval-image-size", "224"},
		{"--eval-image-size", "16"},
	} {
		app := &ucli.App{Flags: trainFlags(), Action: func(c *ucli.Context) error { _, err := trainConfig(c); return err }}
		err := app.Run(append([]string{"train", "--data", "d", "--base", "b", "--no-cache"}, args...))
		if err == nil || !strings.Contains(err.Error(), "--eval-image-size") {
			t.Fatalf("%v: gave %v, want an error naming --eval-image-size", args, err)
		}
	}
	// bfloat16 is slower on CPUs without AMX (README), so it is never on unless asked.
	if frozen.Threads.BF16 || ft.Threads.BF16 || !parseTrain(t, "--bf16").Threads.BF16 {
		t.Fatalf("--bf16: off by default and on with the flag; got frozen %v, fine-tune %v", frozen.Threads.BF16, ft.Threads.BF16)
	}
}

// TestFrozenDefaults: a frozen run trains the multi-layer head (its Head, ImageSize and
// Resize are filled in by train.Config.Validate) for 40 epochs with label smoothing 0.1;
// --head gap is the codelab's run (10 epochs, no smoothing, 192 px squash), and each
// default gives way to its flag.
func TestFrozenDefaults(t *testing.T) {
	frozen := parseTrain(t)
	if (frozen.Head != "" && frozen.Head != tfops.HeadMulti) || frozen.Epochs != 40 || frozen.LabelSmoothing != 0.1 {
		t.Fatalf("frozen defaults: head %q, %d epochs, label smoothing %v; want the multi head's 40 and 0.1", frozen.Head, frozen.Epochs, frozen.LabelSmoothing)
	}
	if err := frozen.Validate(); err != nil || frozen.Head != tfops.HeadMulti || frozen.ImageSize != 224 || frozen.Resize != tfops.ResizeCrop {
		t.Fatalf("frozen defaults resolve to head %q, size %d, resize %q (%v); want multi, 224, crop", frozen.Head, frozen.ImageSize, frozen.Resize, err)
	}
	gap := parseTrain(t, "--head", "gap")
	if err := gap.Validate(); err != nil || gap.Epochs != 10 || gap.LabelSmoothing != 0 || gap.ImageSize != 192 || gap.Resize != tfops.ResizeSquash {
		t.Fatalf("--head gap: %d epochs, label smoothing %v, size %d, resize %q (%v); want the codelab's 10, 0, 192, squash",
			gap.Epochs, gap.LabelSmoothing, gap.ImageSize, gap.Resize, err)
	}
	own := parseTrain(t, "--epochs", "7", "--label-smoothing", "0", "--image-size", "160", "--resize", "squash")
	if err := own.Validate(); err != nil || own.Epochs != 7 || own.LabelSmoothing != 0 || own.ImageSize != 160 || own.Resize != tfops.ResizeSquash {
		t.Fatalf("flags given with the multi head: %+v (%v)", own, err)
	}
	if ft := parseTrain(t, "--fine-tune"); ft.Epochs != 10 || ft.Validate() != nil || ft.Head != tfops.HeadGAP {
		t.Fatalf("--fine-tune: frozen phase %d epochs, head %q; want 10 with gap", ft.Epochs, ft.Head)
	}
}

// TestClusterFromTFConfig: with TF_CONFIG set and no --cluster, train runs on TF_CONFIG's
// cluster (as TensorFlow's multi-worker training does); --cluster FILE wins over it, and
// --devices with an implied cluster is refused naming TF_CONFIG.
func TestClusterFromTFConfig(t *testing.T) {
	const spec = `{"cluster": {"worker": ["a:2222", "b:2222"]}}`
	t.Setenv("TF_CONFIG", "")
	if cfg := parseTrain(t); cfg.Cluster != "" {
		t.Fatalf("no TF_CONFIG: cluster %q, want none", cfg.Cluster)
	}
	t.Setenv("TF_CONFIG", spec)
	if cfg := parseTrain(t); cfg.Cluster != train.ClusterFromEnv || cfg.TFConfig != spec {
		t.Fatalf("TF_CONFIG set: cluster %q (TF_CONFIG %q), want %q", cfg.Cluster, cfg.TFConfig, train.ClusterFromEnv)
	}
	if cfg := parseTrain(t, "--cluster", "c.json"); cfg.Cluster != "c.json" {
		t.Fatalf("--cluster c.json with TF_CONFIG set: cluster %q", cfg.Cluster)
	}
	app := &ucli.App{Flags: trainFlags(), Action: func(c *ucli.Context) error { _, err := trainConfig(c); return err }}
	err := app.Run([]string{"train", "--data", "d", "--base", "b", "--no-cache", "--devices", "cpu:0,cpu:1"})
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "TF_CONFIG") {
		t.Fatalf("--devices with TF_CONFIG set returned %v, want a usage error naming TF_CONFIG", err)
	}
}

// TestTTAFlag: --tta takes none or flip, and names itself in the error otherwise.
func TestTTAFlag(t *testing.T) {
	if got := parseTrain(t, "--tta", "flip").TTA; got != tfops.TTAFlip {
		t.Fatalf("--tta flip gave %q", got)
	}
	app := &ucli.App{Flags: trainFlags(), Action: func(c *ucli.Context) error {
		_, err := trainConfig(c)
		return err
	}}
	err := app.Run([]string{"train", "--data", "d", "--base", "b", "--no-cache", "--tta", "mirror"})
	if err == nil || !strings.Contains(err.Error(), "--tta") {
		t.Fatalf("--tta mirror: got %v, want an error naming --tta", err)
	}
}
