package train_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/tfflowers/tfflowers/internal/tftest"
	"github.com/tfflowers/tfflowers/internal/train"
)

// TestFrozenCeilingStudyReadsTheRun runs scripts/frozen_ceiling.py (the Keras study of
// what a frozen base can reach) on a small run, with one seed: it must find the run's
// validation files in its data folder, split as tfflowers did, and score every variant.
func TestFrozenCeilingStudyReadsTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains and runs Keras; skipped with -short")
	}
	cfg := baseConfig(t, subset(t, 20))
	cfg.Epochs = 10 // as the study's heads
	res, err := train.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	out := filepath.Join(t.TempDir(), "study.json")
	npy := filepath.Join(tftest.Shared(t), "models", "mobilenet_v2_1.0_224_imagenet_npy")
	tftest.RunPython(t, "frozen_ceiling.py", "--run", cfg.Out, "--weights-npy", npy, "--seeds", "1", "--json-out", out)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var study struct {
		TfflowersValAccuracy float64 `json:"tfflowers_val_accuracy"`
		Train, Val           int
		Rows                 []struct {
			Study          string
			Dims           int
			Mean, Min, Max float64
		}
	}
	if err := json.Unmarshal(raw, &study); err != nil {
		t.Fatal(err)
	}
	if study.Train != m.TrainImages || study.Val != m.ValImages || study.TfflowersValAccuracy != m.FinalValAcc {
		t.Fatalf("study split %d/%d (tfflowers %.4f), run %d/%d (%.4f)", study.Train, study.Val, study.TfflowersValAccuracy, m.TrainImages, m.ValImages, m.FinalValAcc)
	}
	if len(study.Rows) != 10 {
		t.Fatalf("%d study rows, want 10", len(study.Rows))
	}
	for _, r := range study.Rows {
		if r.Dims != 1280 && r.Dims != 3392 || r.Min > r.Mean || r.Mean > r.Max || r.Min < 0 || r.Max > 1 {
			t.Fatalf("row %+v", r)
		}
	}
	// The first row is tfflowers' own setup in Keras: on the same 20 images, near the Go
	// run (one image is 0.05; seeds and dropout differ).
	if d := math.Abs(study.Rows[0].Mean - m.FinalValAcc); d > 0.2 {
		t.Fatalf("Keras with tfflowers' defaults %.3f, the Go run %.3f", study.Rows[0].Mean, m.FinalValAcc)
	}
	t.Logf("study on %d validation images: defaults %.3f (Go %.3f), best %s %.3f", study.Val, study.Rows[0].Mean, m.FinalValAcc, study.Rows[9].Study, study.Rows[9].Mean)
}
