package train

import (
	"fmt"

	"github.com/tfflowers/tfflowers/tfops"
)

// test evaluates the final model once on the held-out test set and records it in the
// metrics and test_predictions.csv. Nothing before it reads the test images: they cannot
// influence the weights, the early stopping or which epoch --restore-best keeps.
func (t *trainer) test() (*TestMetrics, error) {
	if len(t.data.test) == 0 {
		t.metrics.Test = nil
		return nil, nil
	}
	src, err := t.evalSource()
	if err != nil {
		return nil, err
	}
	v, err := t.evaluate(src, t.data.test, t.cfg.FineTune, t.cfg.TTA == tfops.TTAFlip)
	if err != nil {
		return nil, fmt.Errorf("test set: %w", err)
	}
	if err := writePredictions(t.cfg.Out, testPredictionsFile, t.data.classes, v.preds); err != nil {
		return nil, fmt.Errorf("write %s: %w", testPredictionsFile, err)
	}
	m := &TestMetrics{Images: v.conf.Total(), Accuracy: v.conf.Accuracy(), AccuracyCI: v.conf.AccuracyInterval(), Loss: v.loss, Confusion: v.conf}
	t.metrics.Test = m
	ci := m.AccuracyCI
	t.cfg.Logger.Info("test set (held out, evaluated once)", "images", m.Images, "test_acc", round4(m.Accuracy),
		"ci95_lo", round4(ci.Lo), "ci95_hi", round4(ci.Hi), "test_loss", round4(m.Loss),
		"val_acc", round4(t.metrics.FinalValAcc))
	return m, nil
}
