package train_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/tfflowers/tfflowers/internal/tftest"
	"github.com/tfflowers/tfflowers/internal/train"
)

// readCSV returns every row of a CSV file (a predictions file: its header first).
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// readPredictions returns the files and the correct count of a predictions CSV.
func readPredictions(t *testing.T, path string) (files []string, correct int) {
	t.Helper()
	for _, r := range readCSV(t, path)[1:] {
		files = append(files, r[0])
		if ok, _ := strconv.ParseBool(r[4]); ok {
			correct++
		}
	}
	return files, correct
}

// subsetFrom links photos [from, from+n) of each shared class into a temp dataset.
func subsetFrom(t *testing.T, from, n int) string {
	t.Helper()
	dst := t.TempDir()
	for _, c := range []string{"daisy", "dandelion", "roses", "sunflowers", "tulips"} {
		files, _ := filepath.Glob(filepath.Join(tftest.FlowerPhotos(t), c, "*.jpg"))
		sort.Strings(files)
		os.MkdirAll(filepath.Join(dst, c), 0o755)
		for _, f := range files[from : from+n] {
			if err := os.Symlink(f, filepath.Join(dst, c, filepath.Base(f))); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

// checkpointBytes is the newest checkpoint's variable data (weights and Adam slots).
func checkpointBytes(t *testing.T, out string) []byte {
	t.Helper()
	data, _ := filepath.Glob(filepath.Join(out, "checkpoints", "step-*", "ckpt.data-*"))
	if len(data) == 0 {
		t.Fatalf("no checkpoint data in %s", out)
	}
	sort.Strings(data)
	raw, err := os.ReadFile(data[len(data)-1])
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestHeldOutTestSet fine-tunes end to end with a test split, then replaces every test
// image with a photo of another class and trains again: the test set is disjoint from
// training and validation, reported with its interval, and never influences training
// (bit-identical losses and checkpointed weights), while its own figures do change.
func TestHeldOutTestSet(t *testing.T) {
	if testing.Short() {
		t.Skip("trains; skipped with -short")
	}
	data := subset(t, 30)
	cfg := baseConfig(t, data)
	cfg.ImageSize, cfg.Epochs, cfg.ValSplit, cfg.TestSplit = 96, 3, 0.2, 0.2
	cfg.FineTune, cfg.FineTuneFrom, cfg.FineTuneEpochs, cfg.FineTuneLR = true, "block_16", 1, 1e-4
	cfg.Augment.Flip = true
	first, err := train.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := first.Metrics
	if m.TestImages != 30 || m.Test == nil || m.Test.Images != 30 || m.ValImages != 30 || m.TrainImages != 90 {
		t.Fatalf("train/val/test = %d/%d/%d (test metrics %+v), want 90/30/30", m.TrainImages, m.ValImages, m.TestImages, m.Test)
	}
	testFiles, correct := readPredictions(t, filepath.Join(cfg.Out, "test_predictions.csv"))
	valFiles, _ := readPredictions(t, filepath.Join(cfg.Out, "val_predictions.csv"))
	if len(testFiles) != 30 || float64(correct)/30 != m.Test.Accuracy {
		t.Fatalf("test_predictions.csv: %d rows, %d correct; metrics.json: accuracy %v", len(testFiles), correct, m.Test.Accuracy)
	}
	if ci := m.Test.AccuracyCI; !(ci.Lo <= m.Test.Accuracy && m.Test.Accuracy <= ci.Hi && ci.Hi-ci.Lo > 0.1) {
		t.Fatalf("test accuracy %v outside or at its 95%% interval %+v (30 images)", m.Test.Accuracy, ci)
	}
	if m.Test.Confusion == nil || m.Test.Confusion.Total() != 30 {
		t.Fatalf("test confusion matrix %+v", m.Test.Confusion)
	}
	perClass := map[string]int{}
	for _, f := range testFiles {
		if slices.Contains(valFiles, f) {
			t.Fatalf("%s is in both the validation and the test set", f)
		}
		perClass[filepath.Base(filepath.Dir(f))]++
	}
	for c, n := range perClass {
		if n != 6 {
			t.Fatalf("class %s has %d test images, want 6 (stratified): %v", c, n, perClass)
		}
	}
	t.Logf("fine-tuned on 90 images: val %.3f, test %.3f [%.3f, %.3f]", m.FinalValAcc, m.Test.Accuracy, m.Test.AccuracyCI.Lo, m.Test.AccuracyCI.Hi)

	// Every test image becomes a photo of the next class (not in the subset), under its old name.
	classes := m.Classes
	pool := map[string][]string{}
	for _, c := range classes {
		files, _ := filepath.Glob(filepath.Join(tftest.FlowerPhotos(t), c, "*.jpg"))
		sort.Strings(files)
		pool[c] = files[100:]
	}
	for i, f := range testFiles {
		c := slices.Index(classes, filepath.Base(filepath.Dir(f)))
		other := pool[classes[(c+1)%len(classes)]][i]
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(other, f); err != nil {
			t.Fatal(err)
		}
	}
	again := cfg
	again.Out = filepath.Join(t.TempDir(), "again")
	second, err := train.Run(context.Background(), again)
	if err != nil {
		t.Fatal(err)
	}
	m2 := second.Metrics
	for i := range m.Epochs {
		a, b := m.Epochs[i], m2.Epochs[i]
		if a.TrainLoss != b.TrainLoss || a.ValLoss != b.ValLoss || a.ValAcc != b.ValAcc {
			t.Fatalf("epoch %d changed when only the test images did: %+v vs %+v", i+1, a, b)
		}
	}
	if !bytes.Equal(checkpointBytes(t, cfg.Out), checkpointBytes(t, again.Out)) {
		t.Fatal("the trained weights changed when only the test images did")
	}
	testFiles2, _ := readPredictions(t, filepath.Join(again.Out, "test_predictions.csv"))
	if !slices.Equal(testFiles, testFiles2) {
		t.Fatal("the same seed and file names gave another test set")
	}
	if !(m2.Test.Accuracy < m.Test.Accuracy) {
		t.Fatalf("test accuracy %.3f with every test photo from another class, %.3f before: the test set was not evaluated on its own images",
			m2.Test.Accuracy, m.Test.Accuracy)
	}
}

// TestTestSetOptions: --test-split 0 trains without a test set; --test-dir takes a folder;
// a --test-dir that is the training data itself is refused.
func TestTestSetOptions(t *testing.T) {
	if testing.Short() {
		t.Skip("trains; skipped with -short")
	}
	data := subset(t, 12)
	cfg := baseConfig(t, data)
	cfg.Epochs, cfg.ImageSize = 1, 64
	res, err := train.Run(context.Background(), cfg) // baseConfig: TestSplit 0
	if err != nil {
		t.Fatal(err)
	}
	if res.Metrics.Test != nil || res.Metrics.TestImages != 0 || res.Metrics.TrainImages+res.Metrics.ValImages != 60 {
		t.Fatalf("--test-split 0: test %+v, %d train + %d val images", res.Metrics.Test, res.Metrics.TrainImages, res.Metrics.ValImages)
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, "test_predictions.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("test_predictions.csv without a test set: %v", err)
	}

	withDir := baseConfig(t, data)
	withDir.Epochs, withDir.ImageSize, withDir.TestDir = 1, 64, subsetFrom(t, 12, 4)
	res, err = train.Run(context.Background(), withDir)
	if err != nil {
		t.Fatal(err)
	}
	if res.Metrics.Test == nil || res.Metrics.Test.Images != 20 {
		t.Fatalf("--test-dir with 20 images: %+v", res.Metrics.Test)
	}

	same := baseConfig(t, data)
	same.TestDir = subsetFrom(t, 8, 4) // symlinks to four training or validation photos per class
	if _, err := train.Run(context.Background(), same); !errors.Is(err, train.ErrConfig) {
		t.Fatalf("--test-dir = --data: %v, want ErrConfig", err)
	}
	both := baseConfig(t, data)
	both.TestDir, both.TestSplit = data, 0.1
	if _, err := train.Run(context.Background(), both); !errors.Is(err, train.ErrConfig) {
		t.Fatalf("--test-dir and --test-split: %v, want ErrConfig", err)
	}
}
