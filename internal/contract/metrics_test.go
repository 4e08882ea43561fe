package contract_test

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfflowers/tfflowers/internal/contract"
)

func writeRecord(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, contract.MetricsFile), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Non-finite values are written as null, not a marshal error that aborts the run.
func TestMetricsNonFiniteAsNull(t *testing.T) {
	m := contract.Metrics{Schema: contract.MetricsSchema, BestValLoss: math.Inf(1), FinalValLoss: math.NaN(), FinalValAcc: 0.5,
		Epochs: []contract.EpochMetrics{{Epoch: 1, TrainLoss: math.NaN(), ValLoss: math.Inf(-1), ValAcc: 0.25, LR: 1e-3}}}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("marshal with NaN/Inf: %v", err)
	}
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back["best_val_loss"] != nil || back["final_val_loss"] != nil || back["final_val_accuracy"] != 0.5 {
		t.Errorf("top-level values %v %v %v", back["best_val_loss"], back["final_val_loss"], back["final_val_accuracy"])
	}
	e := back["epochs"].([]any)[0].(map[string]any)
	if e["train_loss"] != nil || e["val_loss"] != nil || e["val_accuracy"] != 0.25 || e["learning_rate"] != 1e-3 || e["epoch"] != 1.0 {
		t.Errorf("epoch %v", e)
	}
	if strings.Count(string(raw), `"best_val_loss"`) != 1 || strings.Count(string(raw), `"train_loss"`) != 1 {
		t.Errorf("a key appears twice: %s", raw)
	}
}

func TestReadMetrics(t *testing.T) {
	// A run from before the schema field (version 1): same keys, read the same way.
	old := writeRecord(t, `{"config": {"base": "b", "image_size": 192, "head": "gap", "tfrecords": ["x.tfrecord"]}, "epochs": [{"val_accuracy": 0.5}]}`)
	m, err := contract.ReadMetrics(old)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.ImageSize != 192 || m.Config.Head != "gap" || m.Config.TFRecords[0] != "x.tfrecord" || m.Epochs[0].ValAcc != 0.5 {
		t.Errorf("old record read as %+v", m)
	}
	if err := m.CheckExportable(old, false); err != nil {
		t.Errorf("CheckExportable: %v", err)
	}
	// Runs from before --eval-image-size export at their training size.
	if got := m.Config.ExportImageSize(); got != 192 {
		t.Errorf("old record's ExportImageSize = %d, want its image_size 192", got)
	}
	if got := (contract.RunConfig{ImageSize: 192, EvalImageSize: 224}).ExportImageSize(); got != 224 {
		t.Errorf("ExportImageSize with eval_image_size 224 = %d", got)
	}
	for name, tc := range map[string]struct{ body, want string }{
		"newer schema":     {`{"schema": 99}`, "schema 99, newer"},
		"bad json":         {`{"epochs": [`, "metrics.json"},
		"typed mismatch":   {`{"config": {"image_size": "192"}}`, "image_size"},
		"renamed size key": {`{"config": {"base": "b", "head": "gap", "imagesize": 192}}`, "config.image_size 0"},
		"no head":          {`{"config": {"base": "b", "image_size": 192}}`, "config.head"},
		"no base":          {`{"config": {"head": "gap", "image_size": 192}}`, "--base"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeRecord(t, tc.body)
			m, err := contract.ReadMetrics(dir)
			if err == nil {
				err = m.CheckExportable(dir, false)
			}
			if !errors.Is(err, contract.ErrRunRecord) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrRunRecord mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := contract.ReadMetrics(t.TempDir()); !errors.Is(err, contract.ErrRunRecord) || !strings.Contains(err.Error(), "train --out") {
		t.Errorf("missing metrics.json: %v", err)
	}
}
