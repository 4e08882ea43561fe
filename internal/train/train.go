package train

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/tfflowers/tfflowers/internal/cluster"
	"github.com/tfflowers/tfflowers/internal/contract"
	"github.com/tfflowers/tfflowers/internal/report"
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
	cfg   *Config
	data  *dataSplit
	base  *savedmodel.Base
	graph *tfops.TrainGraph
	src   *source
	// evalSrc decodes the final evaluations' images at --eval-image-size: src itself when
	// that is --image-size (evalSource).
	evalSrc *source
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
	if t.evalSrc != nil && t.evalSrc != t.src {
		t.evalSrc.close()
	}
	if t.src != nil {
		t.src.close()
	}
	if t.base != nil {
		t.base.Close()
		t.base = nil
	}
}

// checkpoint saves the run's state and weights as the newest checkpoint.
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

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

func (t *trainer) stepBatch(b *batch) tfops.Batch {
	return tfops.Batch{Features: b.features, FeatShape: t.featDim, Images: b.images, ImageSize: b.size, Labels: b.labels, Device: b.device}
}

// writeOutputs rewrites metrics.json (and curves.png when due) from the run's state;
// conf is the final validation's confusion matrix, nil while training.
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
	if t.src.remote != nil {
		m.WorkerDecodes = t.src.remote.in.Decoded()
	}
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
	final, err := t.evalSource()
	if err != nil {
		return err
	}
	v, err := t.evaluate(final, t.data.val, t.cfg.FineTune, t.cfg.TTA == tfops.TTAFlip)
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
	if n, names := t.badCount(); n > 0 {
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
