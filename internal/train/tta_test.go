package train_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tfflowers/tfflowers/internal/train"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

// TestFlipTTAExportMatchesTraining: with --tta flip the test set's scores in
// test_predictions.csv are the mean of each image's and its mirror's scores, and the
// export's graph gives the same scores from the encoded files.
func TestFlipTTAExportMatchesTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("trains; skipped with -short")
	}
	cfg := baseConfig(t, subset(t, 10))
	cfg.Resize, cfg.Epochs, cfg.TestSplit, cfg.TTA = tfops.ResizeSquash, 2, 0.2, tfops.TTAFlip
	cfg.Export = filepath.Join(t.TempDir(), "tta")
	res, err := train.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := readMetrics(t, cfg.Out).Config.TTA; got != tfops.TTAFlip {
		t.Fatalf("metrics.json config.tta = %q, want %q", got, tfops.TTAFlip)
	}
	files, recorded := readScores(t, filepath.Join(cfg.Out, "test_predictions.csv"))
	if len(files) < 5 {
		t.Fatalf("test_predictions.csv has %d rows; want the test split's images", len(files))
	}
	plain := trainedScores(t, cfg.Out, cfg.Base, cfg.ImageSize, 5, files, false)
	mirrored := trainedScores(t, cfg.Out, cfg.Base, cfg.ImageSize, 5, files, true)
	mean := make([][]float32, len(files))
	for i := range mean {
		mean[i] = make([]float32, 5)
		for c := range mean[i] {
			mean[i][c] = (plain[i][c] + mirrored[i][c]) / 2
		}
	}
	// The CSV keeps 6 decimals; float32 sums of the two views differ in the last bits.
	if d := maxDiff(mean, recorded); d > 2e-6 {
		t.Fatalf("test_predictions.csv differs from the mean of the image's and its mirror's scores by %.3g", d)
	}
	if d := maxDiff(plain, mean); d < 1e-4 {
		t.Fatalf("the mirrors changed no score by more than %.3g: the test does not tell TTA from none", d)
	}
	if d := maxDiff(mean, exportScores(t, res.ExportDir, files)); d > 1e-5 {
		t.Fatalf("the --tta flip export's scores differ from training's by %.3g > 1e-5", d)
	}
}

// readScores returns a predictions CSV's files and their p_* columns.
func readScores(t *testing.T, path string) ([]string, [][]float32) {
	t.Helper()
	var files []string
	var scores [][]float32
	for _, r := range readCSV(t, path)[1:] {
		files = append(files, r[0])
		var p []float32
		for _, v := range r[5:] {
			x, err := strconv.ParseFloat(v, 32)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			p = append(p, float32(x))
		}
		scores = append(scores, p)
	}
	return files, scores
}

// TestEvalImageSizeExportMatchesTraining: with --eval-image-size above --image-size the
// test set is scored at the evaluation size (the final weights on images decoded at that
// size, not the training size's), and the export takes and scores images at that size too.
func TestEvalImageSizeExportMatchesTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("trains; skipped with -short")
	}
	cfg := baseConfig(t, subset(t, 10))
	cfg.Resize, cfg.Epochs, cfg.TestSplit, cfg.EvalImageSize = tfops.ResizeSquash, 2, 0.2, 160
	cfg.Export = filepath.Join(t.TempDir(), "eval-size")
	res, err := train.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m := readMetrics(t, cfg.Out); m.Config.EvalImageSize != 160 || m.Config.ImageSize != 128 {
		t.Fatalf("metrics.json config: image_size %d, eval_image_size %d; want 128 and 160", m.Config.ImageSize, m.Config.EvalImageSize)
	}
	files, recorded := readScores(t, filepath.Join(cfg.Out, "test_predictions.csv"))
	if len(files) < 5 {
		t.Fatalf("test_predictions.csv has %d rows; want the test split's images", len(files))
	}
	atEval := trainedScores(t, cfg.Out, cfg.Base, 160, 5, files, false)
	if d := maxDiff(atEval, recorded); d > 2e-6 {
		t.Fatalf("test_predictions.csv differs from the final weights' scores at 160 px by %.3g", d)
	}
	if d := maxDiff(trainedScores(t, cfg.Out, cfg.Base, 128, 5, files, false), atEval); d < 1e-4 {
		t.Fatalf("scores at 128 and 160 px differ by %.3g only: the test does not tell the sizes apart", d)
	}
	m, err := savedmodel.LoadExport(res.ExportDir, tfops.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	size := m.ImageSize()
	m.Close()
	if size != 160 {
		t.Fatalf("the export takes %d px images, want --eval-image-size 160", size)
	}
	if d := maxDiff(atEval, exportScores(t, res.ExportDir, files)); d > 1e-5 {
		t.Fatalf("the export's scores differ from the test set's by %.3g > 1e-5", d)
	}
}
