package contract

// A training run's output folder (train --out), as train writes it and export,
// batch and tests read it:
//
//	OUT/metrics.json            the typed run record (see internal/train Metrics)
//	OUT/labels.txt              class names in class-id order
//	OUT/curves.png              loss and accuracy per epoch
//	OUT/val_predictions.csv     every validation image's prediction
//	OUT/test_predictions.csv    every test image's prediction (runs with a test set)
//	OUT/checkpoints/step-N/     the newest checkpoints; checkpoints/best: the best epoch's
//	OUT/.lock                   held (flock) by the one process writing the run
const (
	MetricsFile         = "metrics.json"
	LabelsFile          = "labels.txt"
	CurvesFile          = "curves.png"
	ValPredictionsFile  = "val_predictions.csv"
	TestPredictionsFile = "test_predictions.csv"
	CheckpointsDir      = "checkpoints"
	CheckpointPrefix    = "step-"
	BestCheckpointDir   = "best"
	RunLockFile         = ".lock"
)

// CLIErrorPrefix starts the one line a failing tfflowers command prints on stderr
// ("tfflowers: <error>"); tfflowers batch reports that line as the job's error.
const CLIErrorPrefix = "tfflowers: "
