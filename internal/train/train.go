package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tfflowers/tfflowers/internal/cluster"
	"github.com/tfflowers/tfflowers/internal/contract"
	"github.com/tfflowers/tfflowers/internal/report"
	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

// Result summarizes a finished run.
type Result struct {
	Metrics       *Metrics
	Out           string
	ExportDir     string
	ExportVersion int64
}

// trainer is one run's state.
type trainer struct {
	cfg     *Config
	data    *dataSplit
	base    *savedmodel.Base
	graph   *tfops.TrainGraph
	src     *source
	featDim []int64 // the head input's per-image shape: [D] pooled, [h,w,C] for flatten
	// curvesAt is when curves.png was last drawn.
	curvesAt time.Time
	device   tfops.Device
	// replicas are the in-process device names of --devices (empty: one device).
	replicas []string
	cluster  *cluster.Spec // --cluster runs
	state    *runState
	metrics  *Metrics
	start    time.Time
	runLock  *os.File // OUT/.lock, held for the whole Run
}

// Run trains a classifier as cfg says. See the package doc for the contract.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &trainer{cfg: &cfg, start: time.Now()}
	defer t.close()
	defer func() {
		if t.runLock != nil {
			t.runLock.Close()
		}
	}()
	if err := t.prepare(); err != nil {
		return nil, t.clusterErr(err)
	}
	if err := t.loop(ctx); err != nil {
		return nil, t.clusterErr(err)
	}
	if err := t.finish(); err != nil {
		return nil, t.clusterErr(err)
	}
	res := &Result{Metrics: t.metrics, Out: cfg.Out}
	if cfg.Export != "" {
		t.close() // export opens its own sessions; free the training ones first
		dir, version, err := Export(ExportConfig{Run: cfg.Out, ModelBasePath: cfg.Export, Version: cfg.ExportVersion, Force: cfg.ExportForce, Warmup: cfg.ExportWarmup})
		if err != nil {
			return res, fmt.Errorf("training finished (outputs in %s) but the export failed: %w", cfg.Out, err)
		}
		res.ExportDir, res.ExportVersion = dir, version
		cfg.Logger.Info("exported", "dir", dir, "version", version)
	}
	return res, nil
}

func (t *trainer) close() {
	if t.src != nil && t.src.dec != nil {
		t.src.dec.Close()
		t.src.dec = nil
	}
	if t.base != nil {
		t.base.Close()
		t.base = nil
	}
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

func (t *trainer) prepare() error {
	cfg, log := t.cfg, t.cfg.Logger
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
	sessCfg, err := t.sessionConfig()
	if err != nil {
		return err
	}
	dev := t.device
	if t.base, err = savedmodel.LoadBase(cfg.Base, sessCfg); err != nil {
		return err
	}
	mapShape, err := t.base.CheckImageSize(cfg.ImageSize)
	if err != nil {
		return err
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
	var ftVars []string
	if cfg.FineTune {
		if ftVars, err = t.base.FineTuneVariables(cfg.FineTuneFrom); err != nil {
			return fmt.Errorf("%w: --fine-tune-from: %w", ErrConfig, err)
		}
		log.Info("fine-tuning planned", "from", cfg.FineTuneFrom, "variables", len(ftVars), "epochs", cfg.FineTuneEpochs, "lr", cfg.FineTuneLR,
			"schedule", cfg.FineTuneSchedule, "warmup_epochs", cfg.FineTuneWarmup)
	}
	t.graph, err = tfops.BuildTrainGraph(t.base.Session.Graph(), t.base.Input, headIn, tfops.HeadConfig{
		Kind: cfg.Head, FeatureShape: t.featDim, NumClasses: len(t.data.classes), Dropout: cfg.Dropout, LabelSmoothing: cfg.LabelSmoothing, Seed: cfg.Seed,
		FineTune: ftVars, BackboneScope: savedmodel.BackboneScope,
	})
	if err != nil {
		return err
	}
	if err := t.replicate(); err != nil {
		return err
	}
	dec, err := tfops.NewImageDecoder(cfg.ImageSize, cfg.Resize, cfg.Augment, cfg.Threads, pipeline.DecodeHints)
	if err != nil {
		return err
	}
	featLen, cacheShape := 1, make([]int, len(t.featDim))
	for i, d := range t.featDim {
		featLen *= int(d)
		cacheShape[i] = int(d)
	}
	var cache *pipeline.FeatureCache
	if cfg.CacheDir != "" {
		// The cache holds the head's input (pooled features for gap and multi: 5-13 KB an
		// image, not the 184 KB map), so its key names the pooling as well as the pixels.
		prep, _ := tfops.PreprocessingFor(cfg.Resize)
		pooled, _ := tfops.HeadInputID(cfg.Head)
		cache, err = pipeline.OpenFeatureCache(cfg.CacheDir, pipeline.CacheKey{
			BaseModel: t.base.Fingerprint, ImageSize: cfg.ImageSize, Preprocessing: prep + ";" + pooled,
			FeatureShape: cacheShape,
		})
		if err != nil {
			// The cache only saves time; a cache folder that cannot be created (disk full,
			// read-only, not a folder) must not stop the training it would have sped up.
			log.Warn("feature cache unavailable; training without it", "dir", cfg.CacheDir, "error", err)
			cache = nil
		}
	}
	t.src = newSource(t.extract, dec, cache, cfg.ImageSize, featLen, cfg.Seed, cfg.Strict, log)
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return fmt.Errorf("--out %s: %w", cfg.Out, err)
	}
	if err := pipeline.WriteLabelsFile(filepath.Join(cfg.Out, contract.LabelsFile), t.data.classes); err != nil {
		return fmt.Errorf("--out %s: %w", cfg.Out, err)
	}
	t.metrics = &Metrics{
		TensorFlow: tfops.Version(), Device: dev.Name, Seed: cfg.Seed, BaseWeights: t.base.WeightsFingerprint, Classes: t.data.classes,
		TrainImages: len(t.data.train), ValImages: len(t.data.val), TestImages: len(t.data.test), Skipped: len(t.data.skipped),
		Config: t.runConfig(), Schema: contract.MetricsSchema, Tfflowers: cfg.Version,
	}
	t.state = &runState{Identity: t.identity(), BestLoss: math.MaxFloat64} // JSON has no +Inf
	if cfg.Resume {
		st, problems, err := loadCheckpoint(cfg.Out, t.state.Identity, func(p string) error { return t.graph.Restore(t.base.Session, p) })
		for _, p := range problems {
			log.Warn("skipping damaged checkpoint", "problem", p)
		}
		switch {
		case errors.Is(err, errNoCheckpoint) && len(problems) == 0:
			log.Info("--resume: no checkpoint yet, starting fresh", "out", cfg.Out)
		case err != nil && len(problems) > 0 && errors.Is(err, errNoCheckpoint):
			return fmt.Errorf("--resume: every checkpoint in %s is damaged: %s", cfg.Out, strings.Join(problems, "; "))
		case err != nil:
			return err
		default:
			t.state = st
			t.metrics.ResumedFrom = fmt.Sprintf("epoch %d batch %d", st.Epoch+1, st.Batch)
			log.Info("resumed", "epoch", st.Epoch+1, "batch", st.Batch, "global_step", st.GlobalStep)
			return nil
		}
	}
	return t.graph.Initialize(t.base.Session)
}

func (t *trainer) runConfig() contract.RunConfig {
	c := t.cfg
	return contract.RunConfig{
		Data: c.Data, TFRecords: c.TFRecords, ValDir: c.ValDir, ValSplit: c.ValSplit, TestDir: c.TestDir, TestSplit: c.TestSplit, Base: c.Base,
		ImageSize: c.ImageSize, Resize: c.Resize, Head: c.Head, Dropout: c.Dropout, LabelSmoothing: c.LabelSmoothing,
		LR: c.LR, BatchSize: c.BatchSize, MicroBatch: c.MicroBatch, Epochs: c.Epochs, Seed: c.Seed, Patience: c.Patience, RestoreBest: c.RestoreBest,
		Augment:  contract.Augment{Flip: c.Augment.Flip, Zoom: c.Augment.Zoom, Brightness: c.Augment.Brightness},
		FineTune: c.FineTune, FineTuneFrom: c.FineTuneFrom, FineTuneEpochs: c.FineTuneEpochs, FineTuneLR: c.FineTuneLR,
		FineTuneSchedule: c.FineTuneSchedule, FineTuneWarmup: c.FineTuneWarmup,
		CacheDir: c.CacheDir, Device: c.Device, Devices: c.Devices, Cluster: c.Cluster, IntraOpThreads: c.Threads.IntraOpThreads, InterOpThreads: c.Threads.InterOpThreads,
	}
}

func (t *trainer) checkpoint() error {
	_, err := t.saveCheckpoint()
	return err
}

func (t *trainer) saveCheckpoint() (string, error) {
	t.state.Variables = t.graph.CheckpointNames()
	dir, err := saveCheckpoint(t.cfg.Out, t.state, func(p string) error { return t.graph.Save(t.base.Session, p) })
	if err == nil {
		t.cfg.Logger.Debug("checkpoint saved", "dir", dir)
	}
	return dir, err
}

func (t *trainer) loop(ctx context.Context) error {
	cfg, log := t.cfg, t.cfg.Logger
	log.Info("training", "device", t.device.Short(), "classes", len(t.data.classes), "train", len(t.data.train), "val", len(t.data.val), "test", len(t.data.test),
		"head", cfg.Head, "features", t.featDim, "image_size", cfg.ImageSize, "resize", cfg.Resize, "batch", cfg.BatchSize, "epochs", cfg.Epochs, "cache", t.src.cache != nil && (!cfg.Augment.Enabled() || cfg.FineTune))
	nBatches := (len(t.data.train) + cfg.BatchSize - 1) / cfg.BatchSize
	total := cfg.Epochs
	if cfg.FineTune {
		total += cfg.FineTuneEpochs
	}
	for ; t.state.Epoch < total; t.state.Epoch++ {
		epoch := t.state.Epoch
		fineTune := epoch >= cfg.Epochs
		phase, lr := "frozen", cfg.LR
		if fineTune {
			phase, lr = "fine-tune", cfg.FineTuneLR
		}
		if cfg.Patience > 0 && t.state.Stale >= cfg.Patience {
			if !cfg.FineTune || fineTune {
				t.metrics.StoppedEarly = true
				log.Info("early stopping", "epochs_without_improvement", t.state.Stale, "best_epoch", t.state.BestEpoch)
				break
			}
			// Patience ends the frozen phase early; fine-tuning still runs.
			log.Info("frozen phase stopped early; fine-tuning", "best_epoch", t.state.BestEpoch)
			t.state.Epoch, epoch, fineTune, phase, lr = cfg.Epochs, cfg.Epochs, true, "fine-tune", cfg.FineTuneLR
			t.state.Stale = 0
		}
		if fineTune && epoch == cfg.Epochs && t.state.Batch == 0 {
			t.state.Stale = 0
			log.Info("fine-tuning the backbone", "from", cfg.FineTuneFrom, "lr", lr, "epochs", cfg.FineTuneEpochs)
		}
		epochStart := time.Now()
		order := pipeline.EpochOrder(len(t.data.train), cfg.Seed, epoch)
		augEpoch := -1
		// With --fine-tune, the frozen phase trains on cached features and augmentation
		// applies to the fine-tuning phase, which runs the backbone anyway.
		if cfg.Augment.Enabled() && (fineTune || !cfg.FineTune) {
			augEpoch = epoch
		}
		runCtx, cancel := context.WithCancel(context.Background())
		batches := t.src.stream(runCtx, t.data.train, order, cfg.BatchSize, t.state.Batch, augEpoch, fineTune)
		prog := report.NewProgress(cfg.Progress, log, fmt.Sprintf("epoch %d/%d (%s)", epoch+1, total, phase), len(order), 10*time.Second)
		p := &t.state.Partial
		interrupted := false
		for r := range batches {
			if r.err != nil {
				cancel()
				return r.err
			}
			b := r.b
			lr = t.stepLR(fineTune, epoch, b.index, nBatches)
			if b.n() > 0 {
				loss, correct, err := t.graph.TrainStep(t.base.Session, t.stepBatch(b), tfops.StepOptions{
					LR: lr, Dropout: cfg.Dropout, Seed: [2]int64{int64(cfg.Seed), int64(t.state.GlobalStep)}, FineTune: fineTune,
					MicroBatch: cfg.MicroBatch,
				})
				if err != nil {
					cancel()
					return err
				}
				if !isFinite(loss) {
					cancel()
					return t.diverged(epoch+1, b.index+1, "loss", loss)
				}
				p.LossSum += loss * float64(b.n())
				p.Correct += correct
				p.Seen += b.n()
			}
			t.state.Batch = b.index + 1
			t.state.GlobalStep++
			prog.Update(min(t.state.Batch*cfg.BatchSize, len(order)), p.LossSum/math.Max(1, float64(p.Seen)), float64(p.Correct)/math.Max(1, float64(p.Seen)))
			if ctx.Err() != nil {
				interrupted = true
				break
			}
		}
		cancel()
		p.Seconds += time.Since(epochStart).Seconds()
		if interrupted {
			prog.Finish("interrupted")
			if err := t.checkpoint(); err != nil {
				return fmt.Errorf("interrupted, and the checkpoint failed: %w", err)
			}
			return ErrInterrupted
		}
		if t.state.Batch < nBatches {
			return fmt.Errorf("epoch %d ended after %d of %d batches", epoch+1, t.state.Batch, nBatches)
		}
		v, err := t.evaluate(t.data.val, fineTune)
		if err != nil {
			return err
		}
		if !isFinite(v.loss) { // the epoch's last updates made the weights non-finite
			return t.diverged(epoch+1, nBatches, "validation loss", v.loss)
		}
		valLoss, valAcc := v.loss, v.conf.Accuracy()
		m := EpochMetrics{Epoch: epoch + 1, Phase: phase, TrainLoss: p.LossSum / math.Max(1, float64(p.Seen)),
			TrainAcc: float64(p.Correct) / math.Max(1, float64(p.Seen)), ValLoss: valLoss, ValAcc: valAcc,
			Seconds: p.Seconds, ImagesPerSec: float64(p.Seen) / math.Max(1e-9, p.Seconds), LR: lr}
		// One line per epoch: the bar's summary on a terminal, else the structured log
		// line that `tfflowers batch` and log collectors read.
		level := slog.LevelInfo
		if prog.Interactive() {
			prog.Finish(fmt.Sprintf("loss %.4f acc %.4f val_loss %.4f val_acc %.4f", m.TrainLoss, m.TrainAcc, m.ValLoss, m.ValAcc))
			level = slog.LevelDebug
		}
		log.Log(context.Background(), level, "epoch done", "epoch", m.Epoch, "train_loss", round4(m.TrainLoss), "train_acc", round4(m.TrainAcc),
			"val_loss", round4(m.ValLoss), "val_acc", round4(m.ValAcc), "seconds", round4(m.Seconds), "img_per_s", round4(m.ImagesPerSec))
		t.state.History = append(t.state.History, m)
		improved := valLoss < t.state.BestLoss
		if improved {
			t.state.BestLoss, t.state.BestEpoch, t.state.Stale = valLoss, epoch+1, 0
		} else {
			t.state.Stale++
		}
		t.state.Partial = epochTotals{}
		t.state.Batch = 0
		t.state.Epoch = epoch + 1
		dir, err := t.saveCheckpoint()
		if err != nil {
			return err
		}
		if improved && cfg.RestoreBest {
			if err := keepBest(cfg.Out, dir); err != nil {
				return err
			}
		}
		t.state.Epoch = epoch // the loop's increment moves it on
		if err := t.writeOutputs(nil); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ErrInterrupted
		}
	}
	return nil
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

func (t *trainer) stepBatch(b *batch) tfops.Batch {
	return tfops.Batch{Features: b.features, FeatShape: t.featDim, Images: b.images, ImageSize: t.cfg.ImageSize, Labels: b.labels}
}

// validation is one pass over the validation (or test) set.
type validation struct {
	loss  float64
	conf  *report.Confusion
	preds []valPrediction // in the set's order
}

// evaluate runs samples (the validation or the test set) through the model. Once the
// backbone is being fine-tuned, cached features are stale, so images go through the
// whole network.
func (t *trainer) evaluate(samples []pipeline.Sample, throughBackbone bool) (*validation, error) {
	cfg := t.cfg
	order := make([]int, len(samples))
	for i := range order {
		order[i] = i
	}
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := &validation{conf: report.NewConfusion(t.data.classes), preds: make([]valPrediction, 0, len(order))}
	nc := len(t.data.classes)
	lossSum, seen := 0.0, 0
	for r := range t.src.stream(runCtx, samples, order, cfg.BatchSize, 0, -1, throughBackbone) {
		if r.err != nil {
			return nil, r.err
		}
		if r.b.n() == 0 {
			continue
		}
		probs, loss, err := t.graph.EvaluateSlices(t.base.Session, t.stepBatch(r.b), cfg.MicroBatch)
		if err != nil {
			return nil, err
		}
		for i, label := range r.b.labels {
			row := probs[i*nc : (i+1)*nc : (i+1)*nc]
			best := 0
			for c := 1; c < nc; c++ {
				if row[c] > row[best] {
					best = c
				}
			}
			if err := v.conf.Add(int(label), best); err != nil {
				return nil, err
			}
			v.preds = append(v.preds, valPrediction{name: r.b.names[i], label: int(label), predicted: best, probs: row}) // each batch's probs are its own
		}
		lossSum += loss * float64(r.b.n())
		seen += r.b.n()
	}
	if seen == 0 {
		return nil, fmt.Errorf("no image of the set (%d, first %s) could be decoded", len(samples), samples[0].Name)
	}
	v.loss = lossSum / float64(seen)
	return v, nil
}

func (t *trainer) writeOutputs(conf *report.Confusion) error {
	m := t.metrics
	m.Epochs = t.state.History
	m.BestEpoch, m.BestValLoss = t.state.BestEpoch, t.state.BestLoss
	if m.BestValLoss == math.MaxFloat64 {
		m.BestValLoss = 0
	}
	if n := len(m.Epochs); n > 0 && conf == nil { // finish() sets them from its own validation
		m.FinalValAcc, m.FinalValLoss = m.Epochs[n-1].ValAcc, m.Epochs[n-1].ValLoss
	}
	if conf != nil {
		m.Confusion = conf
	}
	m.TotalSeconds = time.Since(t.start).Seconds()
	if c := t.src.cache; c != nil {
		st := c.Stats()
		m.Cache = &contract.CacheStats{Dir: c.Dir(), Hits: st.Hits, Misses: st.Misses, Corrupt: st.Corrupt, Writes: st.Writes,
			Errors: t.src.cacheErrs.Load(), EntryBytes: c.EntryBytes(), EntryShape: t.featDim}
	}
	if err := writeMetrics(t.cfg.Out, m); err != nil {
		return fmt.Errorf("write metrics.json: %w", err)
	}
	// curves.png after the first epoch, then at most every curvesEvery and at the end:
	// drawing it costs more than a cached epoch (8% of a 40-epoch warm run's CPU).
	if len(m.Epochs) > 0 && (conf != nil || t.curvesAt.IsZero() || time.Since(t.curvesAt) >= curvesEvery) {
		if err := writeCurves(t.cfg.Out, m.Epochs); err != nil {
			return fmt.Errorf("write curves.png: %w", err)
		}
		t.curvesAt = time.Now()
	}
	return nil
}

// curvesEvery is how often a running training redraws curves.png.
const curvesEvery = 10 * time.Second

// finish evaluates the final model on the validation set and writes the reports.
func (t *trainer) finish() error {
	if t.cfg.RestoreBest && t.state.BestEpoch > 0 && t.state.BestEpoch < len(t.state.History) {
		prefix, st, err := bestCheckpoint(t.cfg.Out)
		if err != nil {
			return fmt.Errorf("--restore-best: the best epoch's checkpoint is unusable: %w", err)
		}
		if err := t.graph.Restore(t.base.Session, prefix); err != nil {
			return fmt.Errorf("--restore-best: %w", err)
		}
		t.metrics.RestoredBestEpoch = len(st.History)
		t.cfg.Logger.Info("restored the best epoch's weights", "epoch", len(st.History), "val_loss", round4(t.state.BestLoss))
	}
	v, err := t.evaluate(t.data.val, t.cfg.FineTune)
	if err != nil {
		return err
	}
	conf := v.conf
	// The final figures are those of the model as it leaves training (best or last epoch).
	t.metrics.FinalValAcc, t.metrics.FinalValLoss, t.metrics.FinalValAccCI = conf.Accuracy(), v.loss, conf.AccuracyInterval()
	if err := writePredictions(t.cfg.Out, valPredictionsFile, t.data.classes, v.preds); err != nil {
		return fmt.Errorf("write %s: %w", valPredictionsFile, err)
	}
	test, err := t.test()
	if err != nil {
		return err
	}
	if n, names := t.src.badCount(); n > 0 {
		t.cfg.Logger.Warn("images that could not be decoded were skipped", "count", n, "first", strings.Join(names[:min(3, n)], ", "))
		t.metrics.Skipped += n
	}
	if err := t.writeOutputs(conf); err != nil {
		return err
	}
	var sb strings.Builder
	if err := conf.Format(&sb); err == nil {
		fmt.Fprintf(t.cfg.Progress, "\nvalidation (%d images):\n%s", conf.Total(), sb.String())
	}
	if test != nil {
		sb.Reset()
		if err := test.Confusion.Format(&sb); err == nil {
			fmt.Fprintf(t.cfg.Progress, "\ntest (%d images, held out until now):\n%s", test.Images, sb.String())
		}
	}
	return nil
}
