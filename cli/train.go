package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/tfflowers/tfflowers/internal/cluster"
	"github.com/tfflowers/tfflowers/internal/train"
	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

func trainFlags() []ucli.Flag {
	flags := []ucli.Flag{
		&ucli.StringFlag{Name: "data", EnvVars: envFor("data"), Usage: "folder with one sub-folder of images per class"},
		&ucli.StringSliceFlag{Name: "tfrecords", Usage: "TFRecord files or folders (codelab format: image bytes + int64 class) instead of --data"},
		&ucli.StringFlag{Name: "classes", Usage: "comma-separated class names for --tfrecords"},
		&ucli.StringFlag{Name: "labels", Usage: "labels file (one class per line) for --tfrecords"},
		&ucli.StringFlag{Name: "val-dir", Usage: "explicit validation folder (same class folders) instead of --val-split"},
		&ucli.Float64Flag{Name: "val-split", Value: 0.1, Usage: "fraction of each class held out for validation: early stopping, --restore-best (seeded, stratified)"},
		&ucli.Float64Flag{Name: "test-split", Value: 0.1, Usage: "fraction of each class held out as the test set, evaluated once after training (seeded, stratified; 0: none)"},
		&ucli.StringFlag{Name: "test-dir", Usage: "explicit test folder (same class folders) instead of --test-split"},
		&ucli.BoolFlag{Name: "strict", Usage: "stop on unreadable or corrupt images instead of skipping them"},
		&ucli.StringFlag{Name: "base", EnvVars: envFor("base"), Value: "models/base", Usage: "base SavedModel from scripts/export_base_model.py"},
		&ucli.StringFlag{Name: "head", Usage: "classifier head: multi (pooled features of 6 backbone layers; the default without --fine-tune), " +
			"gap (global average pooling of the last layer, the codelab's; the default with --fine-tune) or flatten (the codelab's other head)"},
		&ucli.IntFlag{Name: "image-size", Usage: "images are resized to SIZE x SIZE (default: 224 for the multi head, 192 for gap and flatten)"},
		&ucli.IntFlag{Name: "eval-image-size", Usage: "image size of the final validation, the test set and the export " +
			"(default: --image-size + 32 with --fine-tune, whose zoomed training crops show flowers larger than a whole photo does; else --image-size)"},
		&ucli.StringFlag{Name: "resize", Usage: "crop (the centred square, resized) or squash (the whole image, stretched); default: crop for the multi head, squash for gap and flatten"},
		&ucli.StringFlag{Name: "tta", Usage: "test-time augmentation of the final validation, the test set and the export: none, or flip " +
			"(each image and its mirror, scores averaged: twice the inference cost); default: flip with --fine-tune, else none"},
		&ucli.Float64Flag{Name: "dropout", Value: 0.2, Usage: "dropout rate before the dense layer"},
		&ucli.Float64Flag{Name: "label-smoothing", Usage: "label smoothing of the one-hot targets (0.1 unless given with --fine-tune or the multi head)"},
		&ucli.Float64Flag{Name: "lr", Value: 1e-3, Usage: "Adam learning rate"},
		&ucli.IntFlag{Name: "batch-size", Value: 64, Usage: "images per step"},
		&ucli.IntFlag{Name: "micro-batch", Usage: "run each step as slices of at most N images whose gradients are summed before one update: the same training as --batch-size, with the memory of N (0: whole batches)"},
		&ucli.IntFlag{Name: "epochs", Value: 10, Usage: "epochs with the base frozen (40 unless given for a frozen run with the multi head)"},
		&ucli.Uint64Flag{Name: "seed", Value: 42, Usage: "seed for the split, order, initial weights and dropout"},
		&ucli.IntFlag{Name: "patience", Usage: "stop after N epochs without a better validation loss (0: off)"},
		&ucli.BoolFlag{Name: "restore-best", Usage: "end with (and export) the weights of the epoch with the lowest validation loss (--fine-tune: on unless --restore-best=false)"},
		&ucli.BoolFlag{Name: "augment", Usage: "random flips, zoom and brightness (with --fine-tune: on unless --augment=false, in the fine-tuning phase only; else the feature cache is off)"},
		&ucli.Float64Flag{Name: "augment-zoom", Value: 0.2, Usage: "with --augment: crop away up to this fraction of each side (--fine-tune: 0.3 unless given)"},
		&ucli.Float64Flag{Name: "augment-brightness", Value: 0.1, Usage: "with --augment: brightness shift up to this fraction"},
		&ucli.BoolFlag{Name: "fine-tune", Usage: "after --epochs, also train the backbone (BatchNorm statistics stay frozen); implies --augment --augment-zoom 0.3 --label-smoothing 0.1 --restore-best --micro-batch 16 unless given"},
		&ucli.StringFlag{Name: "fine-tune-from", Value: "block_6", Usage: "first backbone layer trained with --fine-tune (Keras layer name prefix; Conv1: all of it)"},
		&ucli.IntFlag{Name: "fine-tune-epochs", Value: 4, Usage: "epochs of fine-tuning after the frozen phase"},
		&ucli.Float64Flag{Name: "fine-tune-lr", Value: 2e-4, Usage: "Adam learning rate while fine-tuning (the peak of --fine-tune-schedule)"},
		&ucli.StringFlag{Name: "fine-tune-schedule", Value: "cosine", Usage: "fine-tuning learning rate after the warm-up: constant, or cosine (decays to 0 at the last step)"},
		&ucli.Float64Flag{Name: "fine-tune-warmup", Usage: "epochs of linear learning-rate warm-up at the start of fine-tuning"},
		&ucli.BoolFlag{Name: "bf16", Usage: "convolutions and matmuls in bfloat16 (TensorFlow's oneDNN auto mixed precision; variables and the optimizer stay float32) on CPUs with AVX512-BF16 or AMX"},
		&ucli.StringFlag{Name: "cache-dir", EnvVars: envFor("cache-dir"), Usage: "bottleneck feature cache (default: the user cache dir /tfflowers/features)"},
		&ucli.BoolFlag{Name: "no-cache", Usage: "do not use the on-disk feature cache"},
		&ucli.StringFlag{Name: "device", Value: "auto", EnvVars: envFor("device"), Usage: "auto, cpu, gpu, gpu:N or tpu"},
		&ucli.StringFlag{Name: "devices", EnvVars: envFor("devices"), Usage: "data parallel on one machine: all (every GPU), gpu:0,gpu:1, or cpu:0,cpu:1 (logical CPU devices); each device runs its slice of every batch, gradients are averaged into one update"},
		&ucli.StringFlag{Name: "cluster", EnvVars: envFor("cluster"), Usage: "train on a running `tfflowers worker` cluster: TF_CONFIG-style file, or TF_CONFIG to read the variable (the default when TF_CONFIG is set); one replica per worker, this process writes the outputs"},
		&ucli.DurationFlag{Name: "cluster-wait", Value: train.DefaultClusterWait, Usage: "with --cluster: how long to wait for every worker to answer"},
		&ucli.DurationFlag{Name: "step-timeout", Value: train.DefaultStepTimeout, Usage: "with --cluster: a step that waits longer on a worker fails"},
		&ucli.StringFlag{Name: "out", Value: "runs/flowers", Usage: "output folder: metrics.json, curves.png, labels.txt, checkpoints/"},
		&ucli.BoolFlag{Name: "resume", Usage: "continue the run in --out from its last checkpoint"},
		&ucli.StringFlag{Name: "export", Usage: "after training, export a TF Serving SavedModel to BASE_DIR/<version>"},
		&ucli.Int64Flag{Name: "version", Usage: "with --export: version number (default: one more than the highest)"},
		&ucli.BoolFlag{Name: "force", Usage: "with --export: replace an existing --version"},
		&ucli.IntFlag{Name: "warmup", Usage: "with --export: embed N training images as TF Serving warm-up requests"},
	}
	return append(flags, threadFlags()...)
}

func trainCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "train",
		Usage: "train a classifier on a frozen MobileNetV2 base",
		Flags: trainFlags(),
		Action: func(c *ucli.Context) error {
			cfg, err := trainConfig(c)
			if err != nil {
				return err
			}
			res, err := train.Run(c.Context, cfg)
			if err != nil {
				return classify(err)
			}
			m := res.Metrics
			test := "no test set"
			if m.Test != nil {
				test = fmt.Sprintf("test_accuracy %.4f (95%% CI %.4f-%.4f, %d images) test_loss %.4f", m.Test.Accuracy, m.Test.AccuracyCI.Lo, m.Test.AccuracyCI.Hi, m.Test.Images, m.Test.Loss)
			}
			fmt.Fprintf(c.App.Writer, "val_accuracy %.4f val_loss %.4f; %s; after %d epochs in %.1fs; outputs in %s\n",
				m.FinalValAcc, m.FinalValLoss, test, len(m.Epochs), m.TotalSeconds, res.Out)
			if res.ExportDir != "" {
				fmt.Fprintf(c.App.Writer, "exported version %d to %s\n", res.ExportVersion, res.ExportDir)
			}
			return nil
		},
	}
}

func trainConfig(c *ucli.Context) (train.Config, error) {
	cfg := train.Config{
		Version: Version,
		Data:    c.String("data"), TFRecords: c.StringSlice("tfrecords"), ValDir: c.String("val-dir"), ValSplit: c.Float64("val-split"),
		TestDir: c.String("test-dir"), TestSplit: c.Float64("test-split"),
		Strict: c.Bool("strict"), Base: c.String("base"), ImageSize: c.Int("image-size"), EvalImageSize: c.Int("eval-image-size"), Resize: c.String("resize"), Head: c.String("head"), TTA: c.String("tta"),
		Dropout: c.Float64("dropout"), LabelSmoothing: c.Float64("label-smoothing"), LR: c.Float64("lr"),
		BatchSize: c.Int("batch-size"), MicroBatch: c.Int("micro-batch"), Epochs: c.Int("epochs"), Seed: c.Uint64("seed"), Patience: c.Int("patience"), RestoreBest: c.Bool("restore-best"),
		Device: c.String("device"), Devices: c.String("devices"),
		Cluster: c.String("cluster"), ClusterWait: c.Duration("cluster-wait"), StepTimeout: c.Duration("step-timeout"), Out: c.String("out"), Resume: c.Bool("resume"),
		Export: c.String("export"), ExportVersion: c.Int64("version"), ExportForce: c.Bool("force"), ExportWarmup: c.Int("warmup"),
		FineTune: c.Bool("fine-tune"), FineTuneFrom: c.String("fine-tune-from"), FineTuneEpochs: c.Int("fine-tune-epochs"), FineTuneLR: c.Float64("fine-tune-lr"),
		FineTuneSchedule: c.String("fine-tune-schedule"), FineTuneWarmup: c.Float64("fine-tune-warmup"),
		Threads:  tfops.SessionConfig{IntraOpThreads: c.Int("intra-op-threads"), InterOpThreads: c.Int("inter-op-threads"), BF16: c.Bool("bf16")},
		Progress: c.App.ErrWriter,
	}
	// --fine-tune alone is the best fine-tuning recipe measured within the time it must fit
	// (README): augmentation with a stronger zoom, label smoothing and the best epoch's weights,
	// each one flag away from off; the flags above give the layers, epochs and schedule.
	augment, zoom := c.Bool("augment"), c.Float64("augment-zoom")
	if cfg.FineTune {
		if !c.IsSet("augment") {
			augment = true
		}
		if !c.IsSet("augment-zoom") {
			zoom = 0.3
		}
		if !c.IsSet("label-smoothing") {
			cfg.LabelSmoothing = 0.1
		}
		if !c.IsSet("restore-best") {
			cfg.RestoreBest = true
		}

		// The same updates as whole batches in less memory, and faster on a CPU: fine-tuning
		// from Conv1 at --batch-size 64 ran 15 images/s in 3.1 GiB with slices of 16 against
		// 11 images/s in 5.2 GiB whole (README, Scaling).
		if !c.IsSet("micro-batch") {
			cfg.MicroBatch = 16
		}
	}
	// A frozen run with the default multi-layer head trains its head longer, with label
	// smoothing: on cached features epochs cost about 0.3 s, and both gained on validation
	// (README, "How far a frozen base goes").
	if !cfg.FineTune && (cfg.Head == "" || cfg.Head == tfops.HeadMulti) {
		if !c.IsSet("epochs") {
			cfg.Epochs = 40
		}
		if !c.IsSet("label-smoothing") {
			cfg.LabelSmoothing = 0.1
		}
	}
	if augment {
		cfg.Augment = tfops.Augment{Flip: true, Zoom: zoom, Brightness: c.Float64("augment-brightness")}
	}
	if err := clusterFromEnv(c, &cfg); err != nil {
		return cfg, err
	}
	// Mirrored views at test time: +0.3 points of validation accuracy over three seeds
	// (README) for twice the inference cost, which fine-tuning's accuracy-first recipe
	// pays; a frozen run keeps its fast warm re-runs (--tta flip to opt in), and a
	// cluster's images stay on its workers, where the final evaluations cannot mirror them.
	if cfg.FineTune && cfg.Cluster == "" && !c.IsSet("tta") {
		cfg.TTA = tfops.TTAFlip
	}
	if cfg.TestDir != "" {
		if c.IsSet("test-split") {
			return cfg, usagef("give --test-dir or --test-split, not both")
		}
		cfg.TestSplit = 0
	}
	switch {
	case c.String("classes") != "" && c.String("labels") != "":
		return cfg, usagef("give --classes or --labels, not both")
	case c.String("classes") != "":
		for _, s := range strings.Split(c.String("classes"), ",") {
			cfg.Classes = append(cfg.Classes, strings.TrimSpace(s))
		}
	case c.String("labels") != "":
		names, err := pipeline.ReadLabelsFile(c.String("labels"))
		if err != nil {
			return cfg, &UsageError{Err: fmt.Errorf("--labels: %w", err)}
		}
		cfg.Classes = names
	}
	if err := cacheFromFlags(c, &cfg); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, &UsageError{Err: err}
	}
	return cfg, nil
}

// cacheFromFlags sets the feature cache's folder from --cache-dir and --no-cache.
func cacheFromFlags(c *ucli.Context, cfg *train.Config) error {
	// Augmented steps run the backbone, so the cache only serves runs whose frozen phase is
	// not augmented: no --augment, or --augment with --fine-tune (augmentation then applies to fine-tuning).
	if c.Bool("no-cache") || (cfg.Augment.Enabled() && !cfg.FineTune) {
		return nil
	}
	cfg.CacheDir = c.String("cache-dir")
	if cfg.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return usagef("no user cache dir (%v): pass --cache-dir or --no-cache", err)
		}
		cfg.CacheDir = filepath.Join(dir, "tfflowers", "features")
	}
	return nil
}

// clusterFromEnv makes a TF_CONFIG in the environment the cluster when --cluster is not
// given, as TensorFlow's own multi-worker training does.
func clusterFromEnv(c *ucli.Context, cfg *train.Config) error {
	cfg.TFConfig = os.Getenv(cluster.EnvVar)
	if cfg.Cluster != "" || strings.TrimSpace(cfg.TFConfig) == "" {
		return nil
	}
	if d := strings.ToLower(cfg.Device); cfg.Devices != "" || (d != "" && d != "auto") {
		return usagef("TF_CONFIG is set, so train runs on its cluster, which does not combine with --device or --devices: unset TF_CONFIG to train on this machine")
	}
	cfg.Cluster = train.ClusterFromEnv
	return nil
}

// classify marks errors caused by the user's inputs as usage errors (exit code 2).
func classify(err error) error {
	if errors.Is(err, train.ErrInterrupted) {
		return fmt.Errorf("%w: %w", ErrInterrupted, err)
	}
	for _, target := range []error{train.ErrConfig, pipeline.ErrNotDir, pipeline.ErrNoImages, pipeline.ErrEmptyClass,
		pipeline.ErrSingleClass, pipeline.ErrImagesInRoot, pipeline.ErrUnreadable, pipeline.ErrCorruptRecord,
		pipeline.ErrLabelRange, pipeline.ErrLabelsFile, pipeline.ErrBadSplit, pipeline.ErrClassMismatch,
		cluster.ErrSpec, savedmodel.ErrNotSavedModel, savedmodel.ErrNotBase, savedmodel.ErrImageSize, savedmodel.ErrVersionExists, tfops.ErrNoDevice} {
		if errors.Is(err, target) {
			return &UsageError{Err: err}
		}
	}
	return err
}
