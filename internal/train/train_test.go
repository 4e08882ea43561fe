package train_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tfflowers/tfflowers/internal/tftest"
	"github.com/tfflowers/tfflowers/internal/train"
	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/savedmodel"
)

// subset links the first n photos of each shared class into a temp dataset.
func subset(t *testing.T, n int) string {
	t.Helper()
	src := tftest.FlowerPhotos(t)
	dst := t.TempDir()
	classes, _ := os.ReadDir(src)
	for _, c := range classes {
		files, _ := filepath.Glob(filepath.Join(src, c.Name(), "*.jpg"))
		sort.Strings(files)
		os.MkdirAll(filepath.Join(dst, c.Name()), 0o755)
		for _, f := range files[:n] {
			if err := os.Symlink(f, filepath.Join(dst, c.Name(), filepath.Base(f))); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

func baseConfig(t *testing.T, data string) train.Config {
	return train.Config{
		Data: data, ValSplit: 0.2, Base: tftest.ImageNetBase(t), ImageSize: 128, Head: "gap", Dropout: 0.2,
		LR: 1e-3, BatchSize: 32, Epochs: 3, Seed: 42, CacheDir: filepath.Join(t.TempDir(), "cache"),
		Device: "cpu", Out: filepath.Join(t.TempDir(), "run"), Progress: io.Discard,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func readMetrics(t *testing.T, out string) train.Metrics {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m train.Metrics
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTrainEndToEndAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("trains; skipped with -short")
	}
	data := subset(t, 40)
	cfg := baseConfig(t, data)
	cfg.Epochs = 5
	full, err := train.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := full.Metrics
	t.Logf("5 epochs on 40/class at 128: %+v", m.Epochs[len(m.Epochs)-1])
	if len(m.Epochs) != 5 {
		t.Fatalf("%d epochs recorded, want 5", len(m.Epochs))
	}
	if !(m.Epochs[4].TrainLoss < m.Epochs[0].TrainLoss) || !(m.Epochs[4].ValLoss < m.Epochs[0].ValLoss) {
		t.Fatalf("loss did not decrease: first %+v last %+v", m.Epochs[0], m.Epochs[4])
	}
	if m.FinalValAcc < 0.5 {
		t.Fatalf("val accuracy %.3f, want >= 0.5 (chance 0.2)", m.FinalValAcc)
	}
	for _, f := range []string{"metrics.json", "curves.png", "labels.txt"} {
		if st, err := os.Stat(filepath.Join(cfg.Out, f)); err != nil || st.Size() == 0 {
			t.Fatalf("output %s missing or empty: %v", f, err)
		}
	}
	if labels, err := pipeline.ReadLabelsFile(filepath.Join(cfg.Out, "labels.txt")); err != nil || len(labels) != 5 || labels[0] != "daisy" {
		t.Fatalf("labels.txt = %v, %v", labels, err)
	}
	if m.Confusion == nil || m.Confusion.Total() != m.ValImages {
		t.Fatalf("confusion matrix missing or incomplete: %+v", m.Confusion)
	}
	if ck, _ := filepath.Glob(filepath.Join(cfg.Out, "checkpoints", "step-*", "ckpt.index")); len(ck) == 0 {
		t.Fatal("no checkpoint written")
	}
	if readMetrics(t, cfg.Out).FinalValAcc != m.FinalValAcc {
		t.Fatal("metrics.json differs from the returned metrics")
	}
	checkValPredictions(t, cfg.Out, data, m)

	// Interrupted at once, then resumed, then extended: the same numbers as one run.
	cut := cfg
	cut.Out = filepath.Join(t.TempDir(), "cut")
	cut.Epochs = 3
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := train.Run(ctx, cut); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("cancelled run returned %v, want ErrInterrupted", err)
	}
	cut.Resume = true
	if _, err := train.Run(context.Background(), cut); err != nil {
		t.Fatalf("resume after interrupt: %v", err)
	}
	cut.Epochs = 5
	resumed, err := train.Run(context.Background(), cut)
	if err != nil {
		t.Fatalf("resume to 5 epochs: %v", err)
	}
	r := resumed.Metrics
	if len(r.Epochs) != 5 {
		t.Fatalf("resumed run has %d epochs, want 5", len(r.Epochs))
	}
	for i := range r.Epochs {
		if d := math.Abs(r.Epochs[i].ValLoss - m.Epochs[i].ValLoss); d > 1e-4 {
			t.Fatalf("epoch %d val loss %.6f after interrupt+resume, %.6f uninterrupted", i+1, r.Epochs[i].ValLoss, m.Epochs[i].ValLoss)
		}
	}
	if r.Cache == nil || r.Cache.Hits == 0 {
		t.Fatal("the resumed run did not use the feature cache")
	}

	// A damaged newest checkpoint falls back to the previous one.
	cks, _ := filepath.Glob(filepath.Join(cut.Out, "checkpoints", "step-*"))
	sort.Strings(cks)
	data0, _ := filepath.Glob(filepath.Join(cks[len(cks)-1], "ckpt.data-*"))
	if err := os.WriteFile(data0[0], []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	cut.Epochs = 6
	if _, err := train.Run(context.Background(), cut); err != nil {
		t.Fatalf("resume with a damaged newest checkpoint: %v", err)
	}

	// Reusing an output folder without --resume is refused.
	if _, err := train.Run(context.Background(), cfg); !errors.Is(err, train.ErrConfig) {
		t.Fatalf("second run into the same --out returned %v, want ErrConfig", err)
	}
}

func TestTrainRejectsBadInputs(t *testing.T) {
	mk := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, content := range files {
			p := filepath.Join(dir, name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if content != "<dir>" {
				os.WriteFile(p, []byte(content), 0o644)
			}
		}
		return dir
	}
	jpeg := "\xff\xd8\xff\xe0 not really a jpeg"
	cases := map[string]struct {
		mutate func(t *testing.T, c *train.Config)
		want   error
	}{
		"no data flag":   {func(t *testing.T, c *train.Config) { c.Data = "" }, train.ErrConfig},
		"missing folder": {func(t *testing.T, c *train.Config) { c.Data = filepath.Join(t.TempDir(), "nope") }, pipeline.ErrNotDir},
		"empty class": {func(t *testing.T, c *train.Config) {
			c.Data = mk(t, map[string]string{"a/1.jpg": jpeg, "a/2.jpg": jpeg, "b/<dir>": "<dir>"})
		}, pipeline.ErrEmptyClass},
		"single class": {func(t *testing.T, c *train.Config) {
			c.Data = mk(t, map[string]string{"a/1.jpg": jpeg, "a/2.jpg": jpeg})
		}, pipeline.ErrSingleClass},
		"no images":    {func(t *testing.T, c *train.Config) { c.Data = mk(t, map[string]string{"a/readme.txt": "x"}) }, pipeline.ErrNoImages},
		"missing base": {func(t *testing.T, c *train.Config) { c.Base = filepath.Join(t.TempDir(), "nobase") }, savedmodel.ErrNotSavedModel},
		"tiny images":  {func(t *testing.T, c *train.Config) { c.ImageSize = 16 }, train.ErrConfig},
		"bad device":   {func(t *testing.T, c *train.Config) { c.Device = "gpu:x" }, train.ErrConfig},
		"bad head":     {func(t *testing.T, c *train.Config) { c.Head = "mlp" }, train.ErrConfig},
	}
	good := mk(t, map[string]string{"a/1.jpg": jpeg, "a/2.jpg": jpeg, "a/3.jpg": jpeg, "b/1.jpg": jpeg, "b/2.jpg": jpeg, "b/3.jpg": jpeg})
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := baseConfig(t, good)
			cfg.Base = filepath.Join(tftest.Root(t), "build", "testdata", "base-imagenet")
			tc.mutate(t, &cfg)
			_, err := train.Run(context.Background(), cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Run = %v, want %v", err, tc.want)
			}
			if _, statErr := os.Stat(filepath.Join(cfg.Out, "checkpoints")); statErr == nil {
				t.Fatal("a checkpoint was written for a run that should not start")
			}
		})
	}
}

// TestTrainFromTFRecords trains from codelab-format TFRecords written from real photos.
func TestTrainFromTFRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("trains; skipped with -short")
	}
	src := tftest.FlowerPhotos(t)
	classes := []string{"daisy", "dandelion", "roses", "sunflowers", "tulips"}
	dir := t.TempDir()
	for shard := 0; shard < 2; shard++ {
		f, err := os.Create(filepath.Join(dir, "flowers"+string(rune('0'+shard))+".tfrec"))
		if err != nil {
			t.Fatal(err)
		}
		for c, name := range classes {
			files, _ := filepath.Glob(filepath.Join(src, name, "*.jpg"))
			sort.Strings(files)
			for _, p := range files[shard*12 : shard*12+12] {
				img, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := pipeline.WriteRecord(f, pipeline.EncodeExample(img, int64(c))); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.Close()
	}
	cfg := baseConfig(t, "")
	cfg.Data, cfg.TFRecords, cfg.Classes, cfg.Epochs, cfg.TestSplit = "", []string{dir}, classes, 4, 0.125
	res, err := train.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	if m.TrainImages+m.ValImages+m.TestImages != 120 || m.Skipped != 0 {
		t.Fatalf("read %d+%d+%d records (%d skipped), want 120", m.TrainImages, m.ValImages, m.TestImages, m.Skipped)
	}
	// The test split takes round(0.125*24) = 3 records of each class, named file.tfrec#N.
	if m.Test == nil || m.TestImages != 15 || m.Test.Confusion.Total() != 15 {
		t.Fatalf("TFRecords test set: %d images, %+v; want 15", m.TestImages, m.Test)
	}
	if !(m.Epochs[3].TrainLoss < m.Epochs[0].TrainLoss) {
		t.Fatalf("loss did not decrease on TFRecord data: %+v", m.Epochs)
	}
	t.Logf("TFRecords: val accuracy %.3f after 4 epochs", m.FinalValAcc)
}

// TestRestoreBest ends a run on its best epoch's weights: with a learning rate high enough
// to make validation loss bounce, the final figures and the export are those of the epoch
// with the lowest validation loss, not the last one.
func TestRestoreBest(t *testing.T) {
	if testing.Short() {
		t.Skip("trains; skipped with -short")
	}
	cfg := baseConfig(t, subset(t, 20))
	cfg.LR, cfg.Epochs, cfg.RestoreBest = 0.05, 6, true
	cfg.Export = filepath.Join(t.TempDir(), "m")
	res, err := train.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics
	best, bestLoss := 0, math.Inf(1)
	for i, e := range m.Epochs {
		if e.ValLoss < bestLoss {
			best, bestLoss = i+1, e.ValLoss
		}
	}
	t.Logf("val losses by epoch: %v; best epoch %d", func() (v []float64) {
		for _, e := range m.Epochs {
			v = append(v, e.ValLoss)
		}
		return v
	}(), best)
	if best == len(m.Epochs) {
		t.Fatalf("the last epoch was the best; raise the learning rate so this test exercises the restore")
	}
	if m.RestoredBestEpoch != best {
		t.Fatalf("restored epoch %d, best epoch %d", m.RestoredBestEpoch, best)
	}
	if math.Abs(m.FinalValLoss-bestLoss) > 1e-4 {
		t.Fatalf("final val loss %.6f, best epoch's %.6f", m.FinalValLoss, bestLoss)
	}
	raw, err := os.ReadFile(filepath.Join(res.ExportDir, "assets.extra", "tfflowers_export.json"))
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Info struct {
			Epochs int `json:"epochs"`
		} `json:"info"`
	}
	if err := json.Unmarshal(raw, &info); err != nil || info.Info.Epochs != best {
		t.Fatalf("the export holds the weights after %d epochs (%v), want the best epoch %d", info.Info.Epochs, err, best)
	}
}

// checkValPredictions checks val_predictions.csv against the run's metrics: one row per
// validation image, each a file of the dataset, probabilities that sum to 1 and whose
// argmax is the predicted class, and the accuracy metrics.json reports.
func checkValPredictions(t *testing.T, out, data string, m *train.Metrics) {
	t.Helper()
	rows := readCSV(t, filepath.Join(out, "val_predictions.csv"))
	want := append([]string{"file", "label", "predicted", "confidence", "correct"}, "p_daisy", "p_dandelion", "p_roses", "p_sunflowers", "p_tulips")
	if !slices.Equal(rows[0], want) {
		t.Fatalf("header %q, want %q", rows[0], want)
	}
	rows = rows[1:]
	if len(rows) != m.ValImages {
		t.Fatalf("%d rows, want %d validation images", len(rows), m.ValImages)
	}
	correct, seen := 0, map[string]bool{}
	for _, r := range rows {
		if seen[r[0]] {
			t.Fatalf("%s listed twice", r[0])
		}
		seen[r[0]] = true
		if !strings.HasPrefix(r[0], data) || filepath.Base(filepath.Dir(r[0])) != r[1] {
			t.Fatalf("row %q: file not in its class folder of %s", r, data)
		}
		sum, best, bestP := 0.0, -1, -1.0
		for c, v := range r[5:] {
			p, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			sum += p
			if p > bestP {
				best, bestP = c, p
			}
		}
		if math.Abs(sum-1) > 1e-4 || m.Classes[best] != r[2] || r[3] != r[5+best] {
			t.Fatalf("row %q: probabilities sum to %v, argmax %s", r, sum, m.Classes[best])
		}
		if (r[1] == r[2]) != (r[4] == "true") {
			t.Fatalf("row %q: correct column wrong", r)
		}
		if r[4] == "true" {
			correct++
		}
	}
	if acc := float64(correct) / float64(len(rows)); math.Abs(acc-m.FinalValAcc) > 1e-9 {
		t.Fatalf("val_predictions.csv accuracy %.4f, metrics.json %.4f", acc, m.FinalValAcc)
	}
}
