package train

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/tfflowers/tfflowers/internal/report"
	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/tfops"
)

// epochPlan is what one epoch runs as: its index, phase and learning rate.
type epochPlan struct {
	index    int // 0-based, over both phases
	total    int // epochs of the whole run (frozen + fine-tuning)
	nBatches int
	fineTune bool
	phase    string  // "frozen" or "fine-tune"
	lr       float64 // the phase's rate, then the rate of the epoch's latest step
}

// loop runs the epochs from the current state (0, or where a resumed run stopped) to the
// end of the run, early stopping or an interruption.
func (t *trainer) loop(ctx context.Context) error {
	cfg, log := t.cfg, t.cfg.Logger
	log.Info("training", "device", t.device.Short(), "classes", len(t.data.classes), "train", len(t.data.train), "val", len(t.data.val), "test", len(t.data.test),
		"head", cfg.Head, "features", t.featDim, "image_size", cfg.ImageSize, "resize", cfg.Resize, "batch", cfg.BatchSize, "epochs", cfg.Epochs, "cache", t.src.cache != nil && (!cfg.Augment.Enabled() || cfg.FineTune))
	total := cfg.Epochs
	if cfg.FineTune {
		total += cfg.FineTuneEpochs
	}
	for ; t.state.Epoch < total; t.state.Epoch++ {
		ep, stop := t.planEpoch(total)
		if stop {
			break
		}
		prog, err := t.runEpoch(ctx, ep)
		if err != nil {
			return err
		}
		if err := t.endEpoch(ep, prog); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ErrInterrupted
		}
	}
	return nil
}

// planEpoch decides the phase of the epoch t.state.Epoch, applying --patience: it stops
// the run (stop), or with --fine-tune ends the frozen phase early and moves the state on
// to the first fine-tuning epoch.
func (t *trainer) planEpoch(total int) (ep *epochPlan, stop bool) {
	cfg, log := t.cfg, t.cfg.Logger
	ep = &epochPlan{index: t.state.Epoch, total: total, nBatches: (len(t.data.train) + cfg.BatchSize - 1) / cfg.BatchSize}
	ep.setPhase(ep.index >= cfg.Epochs, cfg)
	if cfg.Patience > 0 && t.state.Stale >= cfg.Patience {
		if !cfg.FineTune || ep.fineTune {
			t.metrics.StoppedEarly = true
			log.Info("early stopping", "epochs_without_improvement", t.state.Stale, "best_epoch", t.state.BestEpoch)
			return nil, true
		}
		// Patience ends the frozen phase early; fine-tuning still runs.
		log.Info("frozen phase stopped early; fine-tuning", "best_epoch", t.state.BestEpoch)
		t.state.Epoch, ep.index = cfg.Epochs, cfg.Epochs
		ep.setPhase(true, cfg)
		t.state.Stale = 0
	}
	if ep.fineTune && ep.index == cfg.Epochs && t.state.Batch == 0 {
		t.state.Stale = 0
		log.Info("fine-tuning the backbone", "from", cfg.FineTuneFrom, "lr", ep.lr, "epochs", cfg.FineTuneEpochs)
	}
	return ep, false
}

func (ep *epochPlan) setPhase(fineTune bool, cfg *Config) {
	ep.fineTune, ep.phase, ep.lr = fineTune, "frozen", cfg.LR
	if fineTune {
		ep.phase, ep.lr = "fine-tune", cfg.FineTuneLR
	}
}

// runEpoch trains on the epoch's batches from t.state.Batch on. When ctx ends it saves a
// checkpoint at the batch reached and returns ErrInterrupted.
func (t *trainer) runEpoch(ctx context.Context, ep *epochPlan) (*report.Progress, error) {
	cfg := t.cfg
	epochStart := time.Now()
	order := pipeline.EpochOrder(len(t.data.train), cfg.Seed, ep.index)
	augEpoch := -1
	// With --fine-tune, the frozen phase trains on cached features and augmentation
	// applies to the fine-tuning phase, which runs the backbone anyway.
	if cfg.Augment.Enabled() && (ep.fineTune || !cfg.FineTune) {
		augEpoch = ep.index
	}
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batches := t.src.stream(runCtx, t.data.train, order, cfg.BatchSize, t.state.Batch, augEpoch, ep.fineTune)
	prog := report.NewProgress(cfg.Progress, cfg.Logger, fmt.Sprintf("epoch %d/%d (%s)", ep.index+1, ep.total, ep.phase), len(order), 10*time.Second)
	p := &t.state.Partial
	interrupted := false
	for r := range batches {
		if r.err != nil {
			return nil, r.err
		}
		if err := t.step(ep, r.b); err != nil {
			return nil, err
		}
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
			return nil, fmt.Errorf("interrupted, and the checkpoint failed: %w", err)
		}
		return nil, ErrInterrupted
	}
	if t.state.Batch < ep.nBatches {
		return nil, fmt.Errorf("epoch %d ended after %d of %d batches", ep.index+1, t.state.Batch, ep.nBatches)
	}
	return prog, nil
}

// step runs one training step on b (nothing for a batch whose images all failed to
// decode) and adds it to the epoch's running totals.
func (t *trainer) step(ep *epochPlan, b *batch) error {
	cfg, p := t.cfg, &t.state.Partial
	ep.lr = t.stepLR(ep.fineTune, ep.index, b.index, ep.nBatches)
	if b.n() > 0 {
		loss, correct, err := t.graph.TrainStep(t.base.Session, t.stepBatch(b), tfops.StepOptions{
			LR: ep.lr, Dropout: cfg.Dropout, Seed: [2]int64{int64(cfg.Seed), int64(t.state.GlobalStep)}, FineTune: ep.fineTune,
			MicroBatch: cfg.MicroBatch,
		})
		b.done()
		if err != nil {
			return err
		}
		if !isFinite(loss) {
			return t.diverged(ep.index+1, b.index+1, "loss", loss)
		}
		p.LossSum += loss * float64(b.n())
		p.Correct += correct
		p.Seen += b.n()
	}
	t.state.Batch = b.index + 1
	t.state.GlobalStep++
	return nil
}

// endEpoch validates the epoch's weights, records the epoch, checkpoints it (as the best
// too, under --restore-best, when the validation loss improved) and rewrites the outputs.
func (t *trainer) endEpoch(ep *epochPlan, prog *report.Progress) error {
	cfg := t.cfg
	v, err := t.evaluate(t.src, t.data.val, ep.fineTune, false) // --tta: the final evaluations only
	if err != nil {
		return err
	}
	if !isFinite(v.loss) { // the epoch's last updates made the weights non-finite
		return t.diverged(ep.index+1, ep.nBatches, "validation loss", v.loss)
	}
	p := &t.state.Partial
	m := EpochMetrics{Epoch: ep.index + 1, Phase: ep.phase, TrainLoss: p.LossSum / math.Max(1, float64(p.Seen)),
		TrainAcc: float64(p.Correct) / math.Max(1, float64(p.Seen)), ValLoss: v.loss, ValAcc: v.conf.Accuracy(),
		Seconds: p.Seconds, ImagesPerSec: float64(p.Seen) / math.Max(1e-9, p.Seconds), LR: ep.lr}
	t.logEpoch(prog, m)
	t.state.History = append(t.state.History, m)
	improved := m.ValLoss < t.state.BestLoss
	if improved {
		t.state.BestLoss, t.state.BestEpoch, t.state.Stale = m.ValLoss, ep.index+1, 0
	} else {
		t.state.Stale++
	}
	t.state.Partial = epochTotals{}
	t.state.Batch = 0
	t.state.Epoch = ep.index + 1
	dir, err := t.saveCheckpoint()
	if err != nil {
		return err
	}
	if improved && cfg.RestoreBest {
		if err := keepBest(cfg.Out, dir); err != nil {
			return err
		}
	}
	t.state.Epoch = ep.index // the loop's increment moves it on
	return t.writeOutputs(nil)
}

// logEpoch writes one line per epoch: the bar's summary on a terminal, else the
// structured log line that log collectors read.
func (t *trainer) logEpoch(prog *report.Progress, m EpochMetrics) {
	level := slog.LevelInfo
	if prog.Interactive() {
		prog.Finish(fmt.Sprintf("loss %.4f acc %.4f val_loss %.4f val_acc %.4f", m.TrainLoss, m.TrainAcc, m.ValLoss, m.ValAcc))
		level = slog.LevelDebug
	}
	t.cfg.Logger.Log(context.Background(), level, "epoch done", "epoch", m.Epoch, "train_loss", round4(m.TrainLoss), "train_acc", round4(m.TrainAcc),
		"val_loss", round4(m.ValLoss), "val_acc", round4(m.ValAcc), "seconds", round4(m.Seconds), "img_per_s", round4(m.ImagesPerSec))
}
