package train

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tfflowers/tfflowers/tfops"
)

// Config is a training run, validated by the CLI.
type Config struct {
	Data      string   // folder of class folders
	TFRecords []string // TFRecord files or dirs (instead of Data)
	Classes   []string // class names for TFRecords
	ValDir    string   // explicit validation folder (instead of ValSplit)
	ValSplit  float64  // fraction of each class for validation (of the whole dataset)
	// The test set is held out before anything else and evaluated once, after training:
	// TestDir (a folder with the same classes) or TestSplit (fraction of each class; 0: none).
	TestDir   string
	TestSplit float64
	Strict    bool

	Base      string
	ImageSize int // 0: DefaultImageSize(Head)
	// EvalImageSize is the image size of the final validation, the test set and the
	// export (0: DefaultEvalImageSize). Epoch validations stay at ImageSize.
	EvalImageSize int
	Resize        string // tfops.ResizeSquash or ResizeCrop; "": DefaultResize(Head)
	Head          string // tfops.HeadMulti, HeadGAP or HeadFlatten; "": DefaultHead(FineTune)
	// TTA (tfops.TTANone or TTAFlip; "": none) is the test-time augmentation of the final
	// validation and test evaluations and of the export; epochs validate without it.
	TTA            string
	Dropout        float64
	LabelSmoothing float64
	LR             float64
	BatchSize      int
	// MicroBatch > 0 runs every step (and every evaluation batch) as slices of at most
	// MicroBatch images: the same updates as BatchSize, with a slice's memory.
	MicroBatch  int
	Epochs      int
	Seed        uint64
	Patience    int  // early stopping on validation loss; 0: off
	RestoreBest bool // end with the weights of the epoch with the lowest validation loss
	Augment     tfops.Augment

	// Fine-tuning: after Epochs with the base frozen, FineTuneEpochs more train the backbone
	// from layer FineTuneFrom on at FineTuneLR (BatchNorm statistics stay frozen).
	FineTune       bool
	FineTuneFrom   string
	FineTuneEpochs int
	FineTuneLR     float64
	// FineTuneSchedule shapes FineTuneLR over the phase (ScheduleCosine, ScheduleConstant;
	// "": constant), after FineTuneWarmup epochs of linear warm-up.
	FineTuneSchedule string
	FineTuneWarmup   float64

	CacheDir string // bottleneck cache root; "" disables the on-disk cache
	Device   string
	// Devices ("all", "gpu:0,gpu:1", "cpu:0,cpu:1") spreads every step over one replica per
	// device, gradients summed into one update; "" trains on Device alone.
	Devices string
	// Cluster is a TF_CONFIG-style cluster file (or ClusterFromEnv): one replica per worker
	// task of a running `tfflowers worker` cluster; this process is the chief and alone
	// writes checkpoints, metrics and exports.
	Cluster string
	// TFConfig is the value of the TF_CONFIG variable, which Cluster = ClusterFromEnv reads
	// (the caller reads the environment).
	TFConfig    string
	ClusterWait time.Duration // how long to wait for the workers (0: DefaultClusterWait)
	StepTimeout time.Duration // bound on one blocking operation in a cluster (0: DefaultStepTimeout)
	Threads     tfops.SessionConfig

	Out    string
	Resume bool

	Export        string // BASE_DIR for a TF Serving export after training ("": none)
	ExportVersion int64
	ExportForce   bool
	ExportWarmup  int // TF Serving warm-up requests to embed in the export (0: none)

	Version  string    // tfflowers' version, recorded in metrics.json
	Progress io.Writer // where progress bars go (stderr)
	Logger   *slog.Logger
}

// ErrInterrupted is returned when the context was cancelled; a checkpoint was saved.
var ErrInterrupted = errors.New("training interrupted; checkpoint saved, continue with --resume")

// ErrConfig marks invalid configurations.
var ErrConfig = errors.New("invalid training configuration")

// DefaultHead is the head a run gets without --head: the multi-layer probe for a frozen
// run (the most accurate frozen head we measured), gap with --fine-tune (whose recipe was
// chosen with it).
func DefaultHead(fineTune bool) string {
	if fineTune {
		return tfops.HeadGAP
	}
	return tfops.HeadMulti
}

// DefaultImageSize is the image size without --image-size: 224, MobileNetV2's ImageNet
// size, for the multi head; the codelab's 192 for gap and flatten.
func DefaultImageSize(head string) int {
	if head == tfops.HeadMulti {
		return 224
	}
	return 192
}

// EvalSizeStep is how much larger than --image-size a fine-tuned model is evaluated and
// exported by default: one step of MobileNetV2's output stride.
const EvalSizeStep = 32

// DefaultEvalImageSize is the evaluation size without --eval-image-size. Zoom augmentation
// trains on crops, where a flower fills more of the frame than in a whole photo; at the
// training size the model then sees objects smaller than it learned them, and evaluating
// at a larger size matches the apparent sizes again ("FixRes", Touvron et al. 2019).
// Measured on three seeds of the default --fine-tune (192 px): validation 0.9240 at 192,
// 0.9297 at 208, 0.9331 at 224, 0.9274 at 240, 0.9308 at 256; 224 it is. Runs that do not
// fine-tune with zoom (the frozen heads train on cached whole-photo features), use a
// cluster (its workers decode at one size) or use the flatten head (its dense layer is
// sized for one feature map) keep --image-size.
func DefaultEvalImageSize(c *Config) int {
	if c.FineTune && c.Augment.Zoom > 0 && c.Cluster == "" && c.Head != tfops.HeadFlatten {
		return c.ImageSize + EvalSizeStep
	}
	return c.ImageSize
}

// DefaultResize is the resize mode without --resize: the centred square for the multi
// head (no stretched flowers), the codelab's squash for gap and flatten.
func DefaultResize(head string) string {
	if head == tfops.HeadMulti {
		return tfops.ResizeCrop
	}
	return tfops.ResizeSquash
}

// Validate checks the configuration before anything is loaded, filling in the
// head-dependent defaults (Head, ImageSize, Resize) left empty.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if c.Head == "" {
		c.Head = DefaultHead(c.FineTune)
	}
	if c.ImageSize == 0 {
		c.ImageSize = DefaultImageSize(c.Head)
	}
	if c.Resize == "" {
		c.Resize = DefaultResize(c.Head)
	}
	if c.EvalImageSize == 0 {
		c.EvalImageSize = DefaultEvalImageSize(c)
	}
	switch {
	case c.Data == "" && len(c.TFRecords) == 0:
		return bad("--data or --tfrecords is required")
	case c.Data != "" && len(c.TFRecords) > 0:
		return bad("give --data or --tfrecords, not both")
	case len(c.TFRecords) > 0 && len(c.Classes) == 0:
		return bad("--tfrecords needs class names: --classes a,b,c or --labels labels.txt")
	case c.Base == "":
		return bad("--base is required: a base SavedModel from scripts/export_base_model.py")
	case c.Out == "":
		return bad("--out is required")
	case c.ImageSize < 32:
		return bad("--image-size %d: must be at least 32", c.ImageSize)
	case c.EvalImageSize < 32:
		return bad("--eval-image-size %d: must be at least 32", c.EvalImageSize)
	case c.EvalImageSize != c.ImageSize && c.Head == tfops.HeadFlatten:
		return bad("--eval-image-size %d with --head %s: the flatten head's dense layer is sized for --image-size %d; evaluate at that size or use --head %s",
			c.EvalImageSize, c.Head, c.ImageSize, tfops.HeadGAP)
	case c.EvalImageSize != c.ImageSize && c.Cluster != "":
		return bad("--eval-image-size %d does not combine with --cluster (the workers decode at --image-size %d): leave it out", c.EvalImageSize, c.ImageSize)
	case c.BatchSize < 1:
		return bad("--batch-size %d: must be at least 1", c.BatchSize)
	case c.MicroBatch < 0:
		return bad("--micro-batch %d: must be >= 0 (0: whole batches)", c.MicroBatch)
	case c.Epochs < 1:
		return bad("--epochs %d: must be at least 1", c.Epochs)
	case c.LR <= 0:
		return bad("--lr %v: must be positive", c.LR)
	case c.Dropout < 0 || c.Dropout >= 1:
		return bad("--dropout %v: must be in [0, 1)", c.Dropout)
	case c.LabelSmoothing < 0 || c.LabelSmoothing >= 1:
		return bad("--label-smoothing %v: must be in [0, 1)", c.LabelSmoothing)
	case c.ValDir == "" && (c.ValSplit <= 0 || c.ValSplit >= 1):
		return bad("--val-split %v: must be in (0, 1), or give --val-dir", c.ValSplit)
	case !(c.TestSplit >= 0 && c.TestSplit < 1):
		return bad("--test-split %v: must be in [0, 1) (0: no test set)", c.TestSplit)
	case c.TestDir != "" && c.TestSplit > 0:
		return bad("give --test-dir or --test-split, not both")
	case c.ValDir == "" && c.ValSplit+c.TestSplit >= 1:
		return bad("--val-split %v and --test-split %v leave nothing to train on: their sum must be below 1", c.ValSplit, c.TestSplit)
	case c.Patience < 0:
		return bad("--patience %d: must be >= 0", c.Patience)
	case !slices.Contains(tfops.HeadKinds, c.Head):
		return bad("--head %q: want one of %s", c.Head, strings.Join(tfops.HeadKinds, ", "))
	case c.Resize != tfops.ResizeSquash && c.Resize != tfops.ResizeCrop:
		return bad("--resize %q: want %s or %s", c.Resize, tfops.ResizeSquash, tfops.ResizeCrop)
	case c.FineTune && (c.FineTuneEpochs < 1 || c.FineTuneLR <= 0 || c.FineTuneFrom == ""):
		return bad("--fine-tune needs --fine-tune-epochs >= 1, --fine-tune-lr > 0 and --fine-tune-from LAYER")
	case c.FineTuneSchedule != "" && c.FineTuneSchedule != ScheduleCosine && c.FineTuneSchedule != ScheduleConstant:
		return bad("--fine-tune-schedule %q: want %s or %s", c.FineTuneSchedule, ScheduleCosine, ScheduleConstant)
	case c.FineTuneWarmup < 0 || (c.FineTune && c.FineTuneWarmup > float64(c.FineTuneEpochs)):
		return bad("--fine-tune-warmup %v: must be between 0 and --fine-tune-epochs (%d)", c.FineTuneWarmup, c.FineTuneEpochs)
	case c.Augment.Zoom < 0 || c.Augment.Zoom >= 1:
		return bad("--augment-zoom %v: must be in [0, 1)", c.Augment.Zoom)
	case c.Augment.Brightness < 0 || c.Augment.Brightness > 1:
		return bad("--augment-brightness %v: must be in [0, 1]", c.Augment.Brightness)
	}
	if _, err := tfops.ParseDevice(c.Device); err != nil {
		return bad("--%v", err)
	}
	if c.FineTuneSchedule == "" {
		c.FineTuneSchedule = ScheduleConstant
	}
	if c.Devices != "" {
		if _, err := tfops.ParseDevices(c.Devices); err != nil {
			return bad("--%v", err)
		}
		if d := strings.ToLower(c.Device); d != "" && d != "auto" {
			return bad("give --device (one device) or --devices (several), not both")
		}
	}
	if c.Cluster != "" && (c.Devices != "" || (c.Device != "" && strings.ToLower(c.Device) != "auto")) {
		return bad("--cluster places one replica per worker task; it does not combine with --device or --devices")
	}
	if err := c.validateTTA(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}

// validateTTA checks --tta and fills in its default (none).
func (c *Config) validateTTA() error {
	if c.TTA == "" {
		c.TTA = tfops.TTANone
	}
	if err := tfops.CheckTTA(c.TTA); err != nil {
		return fmt.Errorf("--tta: %w", err)
	}
	// A cluster's images stay on its workers, where the final evaluations cannot mirror them.
	if c.TTA == tfops.TTAFlip && c.Cluster != "" {
		return fmt.Errorf("--tta %s does not combine with --cluster (the images stay on the workers): use --tta %s", c.TTA, tfops.TTANone)
	}
	return nil
}
