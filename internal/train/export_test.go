package train_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tfflowers/tfflowers/cli"
	"github.com/tfflowers/tfflowers/internal/reliability/fixtures"
	"github.com/tfflowers/tfflowers/internal/tftest"
	"github.com/tfflowers/tfflowers/internal/train"
	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

// trainedScores recomputes, in process, what the trained model says about files (their
// mirror images with mirrored): the base, the run's head input (pooling) and training
// graph restored from the run's newest checkpoint, the training decoder with the run's
// resize mode.
func trainedScores(t *testing.T, run, base string, size, classes int, files []string, mirrored bool) [][]float32 {
	t.Helper()
	m := readMetrics(t, run)
	head, resize := m.Config.Head, m.Config.Resize
	b, err := savedmodel.LoadBase(base, tfops.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	names, err := tfops.HeadLayers(head)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := b.Layers(names)
	if err != nil {
		t.Fatal(err)
	}
	headIn, err := tfops.AddHeadInput(b.Session.Graph(), head, layers)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := tfops.BuildTrainGraph(b.Session.Graph(), b.Input, headIn, tfops.HeadConfig{Kind: head, NumClasses: classes})
	if err != nil {
		t.Fatal(err)
	}
	cks, _ := filepath.Glob(filepath.Join(run, "checkpoints", "step-*"))
	sort.Strings(cks)
	if err := tg.Restore(b.Session, filepath.Join(cks[len(cks)-1], "ckpt")); err != nil {
		t.Fatal(err)
	}
	dec, err := tfops.NewImageDecoder(size, resize, tfops.Augment{}, tfops.SessionConfig{}, pipeline.DecodeHints)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	per := size * size * 3
	imgs := make([]float32, len(files)*per)
	for i, f := range files {
		raw, _ := os.ReadFile(f)
		if err := dec.Decode(raw, nil, imgs[i*per:(i+1)*per]); err != nil {
			t.Fatal(err)
		}
		if mirrored {
			img := imgs[i*per : (i+1)*per]
			for y := 0; y < size; y++ {
				row := img[y*size*3 : (y+1)*size*3]
				for x := 0; x < size/2; x++ {
					for c := 0; c < 3; c++ {
						row[x*3+c], row[(size-1-x)*3+c] = row[(size-1-x)*3+c], row[x*3+c]
					}
				}
			}
		}
	}
	probs, _, err := tg.Evaluate(b.Session, tfops.Batch{Images: imgs, ImageSize: size, Labels: make([]int64, len(files))})
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, len(files))
	for i := range out {
		out[i] = probs[i*classes : (i+1)*classes]
	}
	return out
}

// exportScores loads the export in Go and returns its scores for the encoded files.
func exportScores(t *testing.T, export string, files []string) [][]float32 {
	t.Helper()
	m, err := savedmodel.LoadExport(export, tfops.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	raw := make([][]byte, len(files))
	for i, f := range files {
		if raw[i], err = os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
	}
	got, _, _, _, err := m.Predict(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func maxDiff(a, b [][]float32) float64 {
	d := 0.0
	for i := range a {
		for j := range a[i] {
			d = math.Max(d, math.Abs(float64(a[i][j]-b[i][j])))
		}
	}
	return d
}

func TestExportIsServableAndMatchesTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("trains and exports; skipped with -short")
	}
	data := subset(t, 30)
	cfg := baseConfig(t, data)
	// The default head: pooled features of several backbone layers on centre crops.
	cfg.Head, cfg.Resize = "", ""
	cfg.Export = filepath.Join(t.TempDir(), "models", "flowers")
	cfg.ExportWarmup = 3
	res, err := train.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The feature cache stores what the head consumes: pooled features, not the maps.
	headDim := 0
	if shape := res.Metrics.Cache.EntryShape; len(shape) == 1 {
		headDim = int(shape[0])
	}
	if headDim != 3392 {
		t.Fatalf("default head input %v, want the 3392 pooled features of 6 layers", res.Metrics.Cache.EntryShape)
	}
	cached := 0
	filepath.WalkDir(cfg.CacheDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".tffc") {
			cached++
			if st, _ := d.Info(); st == nil || float64(st.Size()) > 1.1*4*float64(headDim) {
				t.Fatalf("cache entry %s is %v bytes for a %d-float head input", p, st.Size(), headDim)
			}
		}
		return nil
	})
	if cached != res.Metrics.TrainImages+res.Metrics.ValImages {
		t.Fatalf("%d cache entries for %d images", cached, res.Metrics.TrainImages+res.Metrics.ValImages)
	}
	if res.ExportVersion != 1 || res.ExportDir != filepath.Join(cfg.Export, "1") {
		t.Fatalf("first export is version %d at %s, want 1", res.ExportVersion, res.ExportDir)
	}
	for _, f := range []string{"saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001", "assets/labels.txt"} {
		if _, err := os.Stat(filepath.Join(res.ExportDir, f)); err != nil {
			t.Fatalf("export lacks %s (TF Serving layout model_base_path/<int>/...): %v", f, err)
		}
	}
	all, _ := filepath.Glob(filepath.Join(data, "*", "*.jpg"))
	sort.Strings(all)
	var files []string
	for i := 0; i < len(all); i += 15 {
		files = append(files, all[i])
	}
	// Photos from a camera held sideways (EXIF orientation 6 and 8, both byte orders):
	// training turns them upright; the export graph must too, to give the same scores.
	for k, o := range []int{6, 8} {
		raw, err := os.ReadFile(files[k])
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), fmt.Sprintf("sideways-%d.jpg", o))
		if err := os.WriteFile(p, fixtures.WithExif(raw, o, k == 1), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	// The same as a PNG with an eXIf chunk (training reads its orientation too), behind a
	// 600 KB ICC profile (APP1 far from the start of the file), and a CMYK JPEG.
	photoBytes, err := os.ReadFile(files[2])
	if err != nil {
		t.Fatal(err)
	}
	photo, err := jpeg.Decode(bytes.NewReader(photoBytes))
	if err != nil {
		t.Fatal(err)
	}
	odd := map[string][]byte{
		"sideways-6.png":   fixtures.OrientedPNG(photo, 6, false),
		"sideways-icc.jpg": fixtures.BehindICC(fixtures.OrientedJPEG(photo, 8, true)),
	}
	if odd["cmyk.jpg"], err = os.ReadFile(filepath.Join(tftest.PillowImages(t), "cmyk.jpg")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sideways-6.png", "sideways-icc.jpg", "cmyk.jpg"} {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, odd[name], 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	// A 20-megapixel photo, which training decodes at 1/2 scale: so must the export graph.
	big := filepath.Join(t.TempDir(), "20mp.jpg")
	if err := os.WriteFile(big, fixtures.JPEG(fixtures.Quadrants(5000, 4000)), 0o644); err != nil {
		t.Fatal(err)
	}
	files = append(files, big)
	want := trainedScores(t, cfg.Out, cfg.Base, cfg.ImageSize, 5, files, false)

	// Reloaded in Go through the C API's SavedModel loader.
	m, err := savedmodel.LoadExport(cfg.Export, tfops.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	raw := make([][]byte, len(files))
	for i, f := range files {
		raw[i], _ = os.ReadFile(f)
	}
	got, ids, classes, errs, err := m.Predict(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	for i := range errs {
		if errs[i] != nil {
			t.Fatalf("image %s: %v", files[i], errs[i])
		}
		if classes[i] != m.Labels()[ids[i]] {
			t.Fatalf("class %q does not match id %d", classes[i], ids[i])
		}
	}
	d := maxDiff(want, got)
	t.Logf("export vs in-process scores: max |diff| %.3g over %d images", d, len(files))
	if d > 1e-5 {
		t.Fatalf("exported model's scores differ from the trained model's by %.3g > 1e-5", d)
	}
	// Bad images among good ones fail alone; the good ones get their batch scores.
	mixed := append([][]byte{}, raw...)
	bad := map[int]bool{1: true, len(mixed) - 1: true}
	for i := range bad {
		mixed[i] = []byte("not an image")
	}
	mScores, _, _, errs, err := m.Predict(context.Background(), mixed)
	if err != nil {
		t.Fatal(err)
	}
	for i := range mixed {
		if (errs[i] != nil) != bad[i] {
			t.Fatalf("mixed batch: image %d error %v, bad %v", i, errs[i], bad[i])
		}
		if !bad[i] && maxDiff(mScores[i:i+1], got[i:i+1]) > 1e-5 {
			t.Fatalf("mixed batch: image %d scores %v, alone in its batch %v", i, mScores[i], got[i])
		}
	}

	// Reloaded by TensorFlow's Python loaders (saved_model_cli show/run, tf.saved_model.load).
	out := tftest.RunPython(t, "verify_export.py", append([]string{"--model", res.ExportDir, "--size", strconv.Itoa(cfg.ImageSize)}, files...)...)
	var py struct {
		Scores  [][]float32 `json:"scores"`
		Classes []string    `json:"classes"`
		Warmups int         `json:"warmup_requests"`
	}
	if err := json.Unmarshal([]byte(out), &py); err != nil {
		t.Fatalf("verify_export.py output %q: %v", out, err)
	}
	if py.Warmups != 3 {
		t.Fatalf("TF Serving's PredictionLog parser read %d warm-up requests, want 3", py.Warmups)
	}
	d = maxDiff(want, py.Scores)
	t.Logf("Python tf.saved_model.load vs in-process scores: max |diff| %.3g", d)
	if d > 1e-5 {
		t.Fatalf("Python-loaded scores differ by %.3g > 1e-5", d)
	}

	// Versions: the next export is 2; an existing version is refused without --force.
	_, v, err := train.Export(train.ExportConfig{Run: cfg.Out, ModelBasePath: cfg.Export})
	if err != nil || v != 2 {
		t.Fatalf("second export: version %d, %v; want 2", v, err)
	}
	if _, _, err := train.Export(train.ExportConfig{Run: cfg.Out, ModelBasePath: cfg.Export, Version: 1}); !errors.Is(err, savedmodel.ErrVersionExists) {
		t.Fatalf("export over version 1 returned %v, want ErrVersionExists", err)
	}
	if _, _, err := train.Export(train.ExportConfig{Run: cfg.Out, ModelBasePath: cfg.Export, Version: 1, Force: true}); err != nil {
		t.Fatalf("--force export over version 1: %v", err)
	}
	// A base with other weights than the run was trained on is refused, and nothing is written.
	_, _, err = train.Export(train.ExportConfig{Run: cfg.Out, ModelBasePath: cfg.Export, Base: tftest.RandomBase(t)})
	if !errors.Is(err, train.ErrConfig) || !strings.Contains(err.Error(), "other weights") {
		t.Fatalf("export with a random-weights --base returned %v, want ErrConfig naming the weights", err)
	}
	entries, _ := os.ReadDir(cfg.Export)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// The versions, and TF Serving's model config and batching parameters beside them.
	if want := []string{"1", "2", savedmodel.BatchingFile, savedmodel.ModelsConfigFile}; !slices.Equal(names, want) {
		t.Fatalf("export base path holds %v, want %v", names, want)
	}

	// `tfflowers predict FOLDER --json` (a flag after the folder) lists every image of
	// the folder once, with the export's answer for it.
	var stdout, stderr bytes.Buffer
	folder := filepath.Join(data, "daisy")
	if code := cli.Run(context.Background(), []string{"tfflowers", "predict", "--model", cfg.Export, folder, "--json", "--top-k", "1"}, &stdout, &stderr); code != 0 {
		t.Fatalf("predict exit %d: %s", code, stderr.String())
	}
	daisies, _ := filepath.Glob(filepath.Join(folder, "*.jpg"))
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var r struct {
			File  string
			Top   []struct{ Label string }
			Error string
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Error != "" || len(r.Top) != 1 || !slices.Contains(m.Labels(), r.Top[0].Label) {
			t.Fatalf("predict line %q: %v", line, err)
		}
		seen[r.File] = true
	}
	for _, f := range daisies {
		if !seen[f] {
			t.Fatalf("predict %s --json did not list %s (%d lines for %d images)", folder, f, len(seen), len(daisies))
		}
	}
	if len(seen) != len(daisies) {
		t.Fatalf("predict listed %d files, the folder has %d images", len(seen), len(daisies))
	}
}

// TestFlattenHeadOnDynamicBase trains and exports the codelab's Flatten head on the
// dynamic-size base: the feature shape comes from --image-size.
func TestFlattenHeadOnDynamicBase(t *testing.T) {
	if testing.Short() {
		t.Skip("trains; skipped with -short")
	}
	cfg := baseConfig(t, subset(t, 12))
	cfg.Head, cfg.Dropout, cfg.Epochs, cfg.ImageSize = "flatten", 0, 2, 96
	cfg.Export = filepath.Join(t.TempDir(), "flat")
	res, err := train.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := savedmodel.LoadExport(res.ExportDir, tfops.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	scores, _, _, err := m.PredictPixels(context.Background(), [][]float32{make([]float32, 96*96*3)})
	if err != nil || len(scores) != 1 || len(scores[0]) != 5 {
		t.Fatalf("flatten export predict: %v %v", scores, err)
	}
}

// TestCodelabHeadExportMatchesTraining: --head gap (squash to the size, pooled last layer)
// is one flag away from the default and exports the scores it trained to.
func TestCodelabHeadExportMatchesTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("trains; skipped with -short")
	}
	data := subset(t, 12)
	cfg := baseConfig(t, data)
	cfg.Head, cfg.ImageSize, cfg.Resize, cfg.Epochs = "gap", 0, "", 2
	cfg.Export = filepath.Join(t.TempDir(), "gap")
	res, err := train.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mt := readMetrics(t, cfg.Out)
	if mt.Config.Resize != tfops.ResizeSquash || mt.Config.ImageSize != 192 {
		t.Fatalf("--head gap ran with resize %v, size %v; want the codelab's squash to 192", mt.Config.Resize, mt.Config.ImageSize)
	}
	all, _ := filepath.Glob(filepath.Join(data, "*", "*.jpg"))
	sort.Strings(all)
	files := []string{all[0], all[13], all[26], all[40]}
	want := trainedScores(t, cfg.Out, cfg.Base, 192, 5, files, false)
	got := exportScores(t, res.ExportDir, files)
	if d := maxDiff(want, got); d > 1e-5 {
		t.Fatalf("gap export's scores differ from training's by %.3g > 1e-5", d)
	}
}
