package train

import (
	"encoding/json"
	"path/filepath"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
	"github.com/tfflowers/tfflowers/internal/contract"
	"github.com/tfflowers/tfflowers/internal/report"
)

// EpochMetrics is one epoch's line of metrics.json.
type EpochMetrics struct {
	Epoch        int     `json:"epoch"` // 1-based
	Phase        string  `json:"phase"` // "frozen" or "fine-tune"
	TrainLoss    float64 `json:"train_loss"`
	TrainAcc     float64 `json:"train_accuracy"`
	ValLoss      float64 `json:"val_loss"`
	ValAcc       float64 `json:"val_accuracy"`
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"train_images_per_second"`
	LR           float64 `json:"learning_rate"`
}

// Metrics is metrics.json.
type Metrics struct {
	Tfflowers  string `json:"tfflowers_version"`
	TensorFlow string `json:"tensorflow_version"`
	Device     string `json:"device"`
	Seed       uint64 `json:"seed"`
	// BaseWeights is the base model's WeightsFingerprint: export refuses another base.
	BaseWeights  string         `json:"base_weights_fingerprint,omitempty"`
	Config       map[string]any `json:"config"`
	Classes      []string       `json:"classes"`
	TrainImages  int            `json:"train_images"`
	ValImages    int            `json:"val_images"`
	Skipped      int            `json:"skipped_files"`
	Epochs       []EpochMetrics `json:"epochs"`
	BestEpoch    int            `json:"best_epoch"`
	BestValLoss  float64        `json:"best_val_loss"`
	FinalValAcc  float64        `json:"final_val_accuracy"`
	FinalValLoss float64        `json:"final_val_loss"`
	StoppedEarly bool           `json:"stopped_early"`
	// RestoredBestEpoch is the epoch whose weights the run ended with (--restore-best); 0: the last.
	RestoredBestEpoch int                `json:"restored_best_epoch,omitempty"`
	Confusion         *report.Confusion  `json:"confusion"`
	TotalSeconds      float64            `json:"total_seconds"`
	ResumedFrom       string             `json:"resumed_from,omitempty"`
	Cache             map[string]any     `json:"feature_cache,omitempty"`
	Timings           map[string]float64 `json:"timings"`
}

func writeMetrics(out string, m *Metrics) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(out, contract.MetricsFile), append(raw, '\n'), 0o644)
}

func writeCurves(out string, history []EpochMetrics) error {
	pts := make([]report.EpochPoint, len(history))
	for i, h := range history {
		pts[i] = report.EpochPoint{Epoch: h.Epoch, TrainLoss: h.TrainLoss, TrainAcc: h.TrainAcc, ValLoss: h.ValLoss, ValAcc: h.ValAcc, Phase: h.Phase}
	}
	return report.PlotCurves(filepath.Join(out, contract.CurvesFile), pts)
}
