package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/tfflowers/tfflowers/internal/report"
)

// MetricsSchema is the version of metrics.json this tfflowers writes. Version 1 (runs
// from before the field existed) has the same keys and is read the same way; a newer
// version is refused, since its meaning may have changed.
const MetricsSchema = 2

// ErrRunRecord means metrics.json is missing, unreadable, from a newer tfflowers or
// lacks a setting an export needs.
var ErrRunRecord = errors.New("unusable run record")

// RunConfig is the resolved training configuration, recorded in metrics.json and read
// back by export (base, head, image size) and warm-up (data, tfrecords).
type RunConfig struct {
	Data      string   `json:"data"`
	TFRecords []string `json:"tfrecords"`
	ValDir    string   `json:"val_dir"`
	ValSplit  float64  `json:"val_split"`
	TestDir   string   `json:"test_dir"`
	TestSplit float64  `json:"test_split"`
	Base      string   `json:"base"`
	ImageSize int      `json:"image_size"`
	// EvalImageSize is the size of the final evaluations and the export; 0 (runs from
	// before it existed): ImageSize. Use ExportImageSize.
	EvalImageSize  int     `json:"eval_image_size,omitempty"`
	Resize         string  `json:"resize,omitempty"` // "crop" or "squash"; runs from before it squashed
	Head           string  `json:"head"`
	TTA            string  `json:"tta,omitempty"` // test-time augmentation of the final evaluation and the export
	Dropout        float64 `json:"dropout"`
	LabelSmoothing float64 `json:"label_smoothing"`
	LR             float64 `json:"lr"`
	BatchSize      int     `json:"batch_size"`
	MicroBatch     int     `json:"micro_batch,omitempty"` // 0: whole batches
	Epochs         int     `json:"epochs"`
	Seed           uint64  `json:"seed"`
	Patience       int     `json:"patience"`
	RestoreBest    bool    `json:"restore_best"`
	Augment        Augment `json:"augment"`
	FineTune       bool    `json:"fine_tune"`
	FineTuneFrom   string  `json:"fine_tune_from"`
	FineTuneEpochs int     `json:"fine_tune_epochs"`
	FineTuneLR     float64 `json:"fine_tune_lr"`
	// FineTuneSchedule and FineTuneWarmup shape FineTuneLR (absent before: constant, no warm-up).
	FineTuneSchedule string  `json:"fine_tune_schedule,omitempty"`
	FineTuneWarmup   float64 `json:"fine_tune_warmup"`
	CacheDir         string  `json:"cache_dir"`
	Device           string  `json:"device"`
	Devices          string  `json:"devices,omitempty"` // --devices: one replica per device
	Cluster          string  `json:"cluster,omitempty"` // --cluster: one replica per worker task
	IntraOpThreads   int     `json:"intra_op_threads"`
	InterOpThreads   int     `json:"inter_op_threads"`
	BF16             bool    `json:"bf16,omitempty"` // --bf16: oneDNN auto mixed precision
}

// ExportImageSize is the image size the run's model is evaluated and exported at.
func (c RunConfig) ExportImageSize() int {
	if c.EvalImageSize > 0 {
		return c.EvalImageSize
	}
	return c.ImageSize
}

// Augment is the training-time augmentation of RunConfig.
type Augment struct {
	Flip       bool    `json:"flip"`
	Zoom       float64 `json:"zoom"`
	Brightness float64 `json:"brightness"`
}

// EpochMetrics is one epoch's line of metrics.json. Values that are not finite
// (a diverged loss) are written as null: JSON has no NaN.
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

// TestMetrics is the one evaluation of the final model on the test set, which no
// decision of the run (early stopping, --restore-best, the schedule) has seen.
type TestMetrics struct {
	Images     int               `json:"images"`
	Accuracy   float64           `json:"accuracy"`
	AccuracyCI report.Interval   `json:"accuracy_ci95"` // Wilson score interval
	Loss       float64           `json:"loss"`
	Confusion  *report.Confusion `json:"confusion"`
}

// CacheStats is the feature cache's use during the run.
type CacheStats struct {
	Dir     string `json:"dir"`
	Hits    int64  `json:"hits"`
	Misses  int64  `json:"misses"`
	Corrupt int64  `json:"corrupt"`
	Writes  int64  `json:"writes"`
	Errors  int64  `json:"errors"`
	// EntryBytes is one image's entry on disk; EntryShape the features it holds (the
	// head's input: [D] pooled, or [h,w,C] for the flatten head).
	EntryBytes int     `json:"entry_bytes,omitempty"`
	EntryShape []int64 `json:"entry_shape,omitempty"`
}

// Metrics is metrics.json, the typed record of a training run.
type Metrics struct {
	Schema     int    `json:"schema"` // MetricsSchema
	Tfflowers  string `json:"tfflowers_version"`
	TensorFlow string `json:"tensorflow_version"`
	Device     string `json:"device"`
	Seed       uint64 `json:"seed"`
	// BaseWeights is the base model's WeightsFingerprint: export refuses another base.
	BaseWeights string    `json:"base_weights_fingerprint,omitempty"`
	Config      RunConfig `json:"config"`
	Classes     []string  `json:"classes"`
	TrainImages int       `json:"train_images"`
	ValImages   int       `json:"val_images"`
	TestImages  int       `json:"test_images"`
	Skipped     int       `json:"skipped_files"`
	// WorkerDecodes is how many images each cluster worker read and decoded (--cluster: the
	// input pipeline runs on the workers; the chief reads headers only).
	WorkerDecodes []int64        `json:"worker_decodes,omitempty"`
	Epochs        []EpochMetrics `json:"epochs"`
	BestEpoch     int            `json:"best_epoch"`
	BestValLoss   float64        `json:"best_val_loss"`
	FinalValAcc   float64        `json:"final_val_accuracy"`
	FinalValLoss  float64        `json:"final_val_loss"`
	// FinalValAccCI is the 95 % Wilson interval of FinalValAcc.
	FinalValAccCI report.Interval `json:"final_val_accuracy_ci95"`
	// Test is the held-out test set's one evaluation of the final model; nil without a test set.
	Test         *TestMetrics `json:"test,omitempty"`
	StoppedEarly bool         `json:"stopped_early"`
	// RestoredBestEpoch is the epoch whose weights the run ended with (--restore-best); 0: the last.
	RestoredBestEpoch int               `json:"restored_best_epoch,omitempty"`
	Confusion         *report.Confusion `json:"confusion"`
	TotalSeconds      float64           `json:"total_seconds"`
	ResumedFrom       string            `json:"resumed_from,omitempty"`
	Cache             *CacheStats       `json:"feature_cache,omitempty"`
}

// finite is v, or nil (JSON null) when v is NaN or infinite.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// MarshalJSON writes non-finite values as null instead of failing.
func (e EpochMetrics) MarshalJSON() ([]byte, error) {
	type plain EpochMetrics
	return json.Marshal(struct {
		plain
		TrainLoss    *float64 `json:"train_loss"`
		TrainAcc     *float64 `json:"train_accuracy"`
		ValLoss      *float64 `json:"val_loss"`
		ValAcc       *float64 `json:"val_accuracy"`
		ImagesPerSec *float64 `json:"train_images_per_second"`
	}{plain(e), finite(e.TrainLoss), finite(e.TrainAcc), finite(e.ValLoss), finite(e.ValAcc), finite(e.ImagesPerSec)})
}

// MarshalJSON writes non-finite values as null instead of failing.
func (m Metrics) MarshalJSON() ([]byte, error) {
	type plain Metrics
	return json.Marshal(struct {
		plain
		BestValLoss  *float64 `json:"best_val_loss"`
		FinalValAcc  *float64 `json:"final_val_accuracy"`
		FinalValLoss *float64 `json:"final_val_loss"`
	}{plain(m), finite(m.BestValLoss), finite(m.FinalValAcc), finite(m.FinalValLoss)})
}

// ReadMetrics reads OUT/metrics.json. Errors wrap ErrRunRecord and name the file: a
// missing file (not a train --out folder), bad JSON, a newer schema.
func ReadMetrics(out string) (*Metrics, error) {
	path := filepath.Join(out, MetricsFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w (is %s a tfflowers train --out folder?)", ErrRunRecord, path, err, out)
	}
	var m Metrics
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRunRecord, path, err)
	}
	if m.Schema > MetricsSchema {
		return nil, fmt.Errorf("%w: %s has schema %d, newer than this tfflowers reads (%d): use the tfflowers that trained it or a newer one",
			ErrRunRecord, path, m.Schema, MetricsSchema)
	}
	return &m, nil
}

// CheckExportable reports what an export of this run lacks: the base folder (unless the
// caller overrides it), the head and the image size.
func (m *Metrics) CheckExportable(out string, baseOverride bool) error {
	path := filepath.Join(out, MetricsFile)
	switch {
	case m.Config.Base == "" && !baseOverride:
		return fmt.Errorf("%w: %s records no config.base; pass --base with the base model the run was trained on", ErrRunRecord, path)
	case m.Config.Head == "":
		return fmt.Errorf("%w: %s records no config.head", ErrRunRecord, path)
	case m.Config.ImageSize <= 0:
		return fmt.Errorf("%w: %s records config.image_size %d; want a positive size", ErrRunRecord, path, m.Config.ImageSize)
	}
	return nil
}

// MarshalJSON writes a non-finite loss (a diverged run) as null instead of failing.
func (t TestMetrics) MarshalJSON() ([]byte, error) {
	type plain TestMetrics
	return json.Marshal(struct {
		plain
		Loss *float64 `json:"loss"`
	}{plain(t), finite(t.Loss)})
}
