package train

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/tfflowers/tfflowers/internal/contract"
	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

// prepare readies a run: the data split, the claimed --out folder, the training graph,
// the batch source, the run's first outputs and the starting weights (fresh or resumed).
func (t *trainer) prepare() error {
	cfg := t.cfg
	var err error
	if t.data, err = loadData(cfg); err != nil {
		return err
	}
	if t.runLock, err = claimRun(cfg.Out); err != nil {
		return err
	}
	if !cfg.Resume && len(listCheckpoints(cfg.Out)) > 0 {
		return fmt.Errorf("%w: --out %s already holds a training run; pass --resume to continue it or choose another --out", ErrConfig, cfg.Out)
	}
	if err := t.buildGraph(); err != nil {
		return err
	}
	if err := t.openSource(); err != nil {
		return err
	}
	if err := t.startOutputs(); err != nil {
		return err
	}
	if err := t.startWeights(); err != nil {
		return err
	}
	return t.startInputs()
}

// buildGraph loads the base on the resolved device(s) and adds the head, the loss and
// the optimizer (for the fine-tuned backbone variables too) to its graph.
func (t *trainer) buildGraph() error {
	cfg := t.cfg
	sessCfg, err := t.sessionConfig()
	if err != nil {
		return err
	}
	if t.base, err = savedmodel.LoadBase(cfg.Base, sessCfg); err != nil {
		return err
	}
	mapShape, err := t.base.CheckImageSize(cfg.ImageSize)
	if err != nil {
		return err
	}
	if cfg.EvalImageSize != cfg.ImageSize {
		if _, err := t.base.CheckImageSize(cfg.EvalImageSize); err != nil {
			return fmt.Errorf("--eval-image-size: %w", err)
		}
	}
	headLayers, err := tfops.HeadLayers(cfg.Head)
	if err != nil {
		return err
	}
	layers, err := t.base.Layers(headLayers)
	if err != nil {
		return err
	}
	headIn, err := tfops.AddHeadInput(t.base.Session.Graph(), cfg.Head, layers)
	if err != nil {
		return err
	}
	if t.featDim, err = tfops.HeadInputShape(headIn, mapShape); err != nil {
		return err
	}
	ftVars, err := t.fineTuneVariables()
	if err != nil {
		return err
	}
	t.graph, err = tfops.BuildTrainGraph(t.base.Session.Graph(), t.base.Input, headIn, tfops.HeadConfig{
		Kind: cfg.Head, FeatureShape: t.featDim, NumClasses: len(t.data.classes), Dropout: cfg.Dropout, LabelSmoothing: cfg.LabelSmoothing, Seed: cfg.Seed,
		FineTune: ftVars, BackboneScope: savedmodel.BackboneScope,
	})
	if err != nil {
		return err
	}
	return t.replicate()
}

// fineTuneVariables are the backbone variables --fine-tune trains (none without it).
func (t *trainer) fineTuneVariables() ([]string, error) {
	cfg := t.cfg
	if !cfg.FineTune {
		return nil, nil
	}
	vars, err := t.base.FineTuneVariables(cfg.FineTuneFrom)
	if err != nil {
		return nil, fmt.Errorf("%w: --fine-tune-from: %w", ErrConfig, err)
	}
	cfg.Logger.Info("fine-tuning planned", "from", cfg.FineTuneFrom, "variables", len(vars), "epochs", cfg.FineTuneEpochs, "lr", cfg.FineTuneLR,
		"schedule", cfg.FineTuneSchedule, "warmup_epochs", cfg.FineTuneWarmup)
	return vars, nil
}

// openSource opens the image decoder (the workers' input pipelines in a cluster) and the
// feature cache the batches come from.
func (t *trainer) openSource() error {
	cfg := t.cfg
	var dec *tfops.ImageDecoder // the workers decode in a cluster
	if t.cluster == nil {
		var err error
		if dec, err = tfops.NewImageDecoder(cfg.ImageSize, cfg.Resize, cfg.Augment, cfg.Threads, pipeline.DecodeHints); err != nil {
			return err
		}
	}
	featLen := 1
	for _, d := range t.featDim {
		featLen *= int(d)
	}
	t.src = newSource(t.extract, dec, t.openCache(), cfg.ImageSize, featLen, cfg.Seed, cfg.Strict, cfg.Logger)
	if in := t.graph.DeviceInputs(); in != nil {
		t.src.remote = &remoteInput{in: in, sess: t.base.Session, workers: t.cluster.Workers(),
			extract: func(b *tfops.DeviceBatch) ([]float32, error) { return t.graph.ExtractDeviceFeatures(t.base.Session, b) }}
		// Each decode is a round trip to a worker: keep several in flight per worker.
		t.src.workers = max(t.src.workers, 4*in.Devices())
	}
	return nil
}

// openCache opens --cache-dir, or returns nil (no cache) when there is none or it
// cannot be opened.
func (t *trainer) openCache() *pipeline.FeatureCache {
	cfg := t.cfg
	if cfg.CacheDir == "" {
		return nil
	}
	cacheShape := make([]int, len(t.featDim))
	for i, d := range t.featDim {
		cacheShape[i] = int(d)
	}
	// The cache holds the head's input (pooled features for gap and multi: 5-13 KB an
	// image, not the 184 KB map), so its key names the pooling as well as the pixels.
	prep, _ := tfops.PreprocessingFor(cfg.Resize)
	pooled, _ := tfops.HeadInputID(cfg.Head)
	if cfg.Threads.BF16 {
		// bfloat16 features differ from float32 ones in the third digit: their own entries.
		pooled += ";bf16"
	}
	cache, err := pipeline.OpenFeatureCache(cfg.CacheDir, pipeline.CacheKey{
		BaseModel: t.base.Fingerprint, ImageSize: cfg.ImageSize, Preprocessing: prep + ";" + pooled,
		FeatureShape: cacheShape,
	})
	if err != nil {
		// The cache only saves time; a cache folder that cannot be created (disk full,
		// read-only, not a folder) must not stop the training it would have sped up.
		cfg.Logger.Warn("feature cache unavailable; training without it", "dir", cfg.CacheDir, "error", err)
		return nil
	}
	return cache
}

// startOutputs creates --out with its labels.txt and the run's metrics record.
func (t *trainer) startOutputs() error {
	cfg := t.cfg
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return fmt.Errorf("--out %s: %w", cfg.Out, err)
	}
	if err := pipeline.WriteLabelsFile(filepath.Join(cfg.Out, contract.LabelsFile), t.data.classes); err != nil {
		return fmt.Errorf("--out %s: %w", cfg.Out, err)
	}
	t.metrics = &Metrics{
		TensorFlow: tfops.Version(), Device: t.device.Name, Seed: cfg.Seed, BaseWeights: t.base.WeightsFingerprint, Classes: t.data.classes,
		TrainImages: len(t.data.train), ValImages: len(t.data.val), TestImages: len(t.data.test), Skipped: len(t.data.skipped),
		Config: t.runConfig(), Schema: contract.MetricsSchema, Tfflowers: cfg.Version,
	}
	return nil
}

// startWeights restores the newest good checkpoint under --resume, or initializes the
// variables of a fresh run.
func (t *trainer) startWeights() error {
	cfg, log := t.cfg, t.cfg.Logger
	t.state = &runState{Identity: t.identity(), BestLoss: math.MaxFloat64} // JSON has no +Inf
	if !cfg.Resume {
		return t.graph.Initialize(t.base.Session)
	}
	st, problems, err := loadCheckpoint(cfg.Out, t.state.Identity, func(p string) error { return t.graph.Restore(t.base.Session, p) })
	for _, p := range problems {
		log.Warn("skipping damaged checkpoint", "problem", p)
	}
	switch {
	case errors.Is(err, errNoCheckpoint) && len(problems) == 0:
		log.Info("--resume: no checkpoint yet, starting fresh", "out", cfg.Out)
		return t.graph.Initialize(t.base.Session)
	case err != nil && len(problems) > 0 && errors.Is(err, errNoCheckpoint):
		return fmt.Errorf("--resume: every checkpoint in %s is damaged: %s", cfg.Out, strings.Join(problems, "; "))
	case err != nil:
		return err
	}
	t.state = st
	t.metrics.ResumedFrom = fmt.Sprintf("epoch %d batch %d", st.Epoch+1, st.Batch)
	log.Info("resumed", "epoch", st.Epoch+1, "batch", st.Batch, "global_step", st.GlobalStep)
	return nil
}

// identity is what a resumed run must share with the checkpoint it continues.
func (t *trainer) identity() string {
	c := t.cfg
	ft := "off"
	if c.FineTune {
		ft = fmt.Sprintf("from %s after %d epochs, %s", c.FineTuneFrom, c.Epochs, c.FineTuneSchedule)
	}
	return fmt.Sprintf("base=%s;size=%d;resize=%s;head=%s;classes=%s;batch=%d;seed=%d;train=%d;val=%d;test=%d;fine-tune=%s",
		t.base.Fingerprint[:16], c.ImageSize, c.Resize, c.Head, strings.Join(t.data.classes, ","), c.BatchSize, c.Seed, len(t.data.train), len(t.data.val), len(t.data.test), ft)
}

// runConfig is the resolved configuration as metrics.json records it.
func (t *trainer) runConfig() contract.RunConfig {
	c := t.cfg
	return contract.RunConfig{
		Data: c.Data, TFRecords: c.TFRecords, ValDir: c.ValDir, ValSplit: c.ValSplit, TestDir: c.TestDir, TestSplit: c.TestSplit, Base: c.Base,
		ImageSize: c.ImageSize, EvalImageSize: c.EvalImageSize, Resize: c.Resize, Head: c.Head, TTA: c.TTA, Dropout: c.Dropout, LabelSmoothing: c.LabelSmoothing,
		LR: c.LR, BatchSize: c.BatchSize, MicroBatch: c.MicroBatch, Epochs: c.Epochs, Seed: c.Seed, Patience: c.Patience, RestoreBest: c.RestoreBest,
		Augment:  contract.Augment{Flip: c.Augment.Flip, Zoom: c.Augment.Zoom, Brightness: c.Augment.Brightness},
		FineTune: c.FineTune, FineTuneFrom: c.FineTuneFrom, FineTuneEpochs: c.FineTuneEpochs, FineTuneLR: c.FineTuneLR,
		FineTuneSchedule: c.FineTuneSchedule, FineTuneWarmup: c.FineTuneWarmup,
		CacheDir: c.CacheDir, Device: c.Device, Devices: c.Devices, Cluster: c.Cluster, IntraOpThreads: c.Threads.IntraOpThreads, InterOpThreads: c.Threads.InterOpThreads,
		BF16: c.Threads.BF16,
	}
}
