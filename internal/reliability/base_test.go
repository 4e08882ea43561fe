package reliability_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tfflowers/tfflowers/internal/tftest"
	"github.com/tfflowers/tfflowers/savedmodel"
)

// baseCopy links a base's SavedModel files into a new folder and writes its metadata
// after edit, so a test can break the contract without re-exporting 9 MB of weights.
func baseCopy(t *testing.T, base string, edit func(m map[string]any)) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"saved_model.pb", "variables"} {
		if err := os.Symlink(filepath.Join(base, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	var meta map[string]any
	if err := json.Unmarshal(readFile(t, filepath.Join(base, savedmodel.MetadataPath)), &meta); err != nil {
		t.Fatal(err)
	}
	edit(meta)
	raw, _ := json.Marshal(meta)
	write(t, filepath.Join(dir, savedmodel.MetadataPath), raw)
	return dir
}

// TestTrainRejectsBrokenBaseModels: each broken --base stops the run before training
// with an error that says what was expected.
func TestTrainRejectsBrokenBaseModels(t *testing.T) {
	data := t.TempDir()
	flowerSet(t, data, 4, "daisy", "roses")
	good := tftest.ImageNetBase(t)
	tiny := t.TempDir()
	cmd := exec.Command(tftest.Python(t), filepath.Join("testdata", "tiny_savedmodel.py"), tiny)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tiny_savedmodel.py: %v\n%s", err, out)
	}
	garbage := t.TempDir()
	write(t, filepath.Join(garbage, "saved_model.pb"), []byte("not a protobuf"))
	write(t, filepath.Join(garbage, savedmodel.MetadataPath), readFile(t, filepath.Join(good, savedmodel.MetadataPath)))
	noMeta := t.TempDir()
	os.Symlink(filepath.Join(tiny, "other_names", "saved_model.pb"), filepath.Join(noMeta, "saved_model.pb"))

	cases := []struct {
		name string
		base string
		size int
		want error
		says []string
	}{
		{"missing dir", filepath.Join(t.TempDir(), "nope"), 32, savedmodel.ErrNotSavedModel, []string{"does not exist", "export_base_model.py"}},
		{"empty dir", t.TempDir(), 32, savedmodel.ErrNotSavedModel, []string{"expected", "saved_model.pb"}},
		{"SavedModel without tfflowers metadata", noMeta, 32, savedmodel.ErrNotBase, []string{"missing assets.extra/tfflowers_base.json"}},
		{"saved_model.pb is garbage", garbage, 32, savedmodel.ErrNotSavedModel, []string{"TensorFlow cannot load it", `tag "serve"`}},
		{"other signature", filepath.Join(tiny, "other_signature"), 32, savedmodel.ErrNotBase, []string{`no signature "serving_default"`, "predict"}},
		{"other tensor names", filepath.Join(tiny, "other_names"), 32, savedmodel.ErrNotBase, []string{`must have input "images" and output "features" (has inputs [x], outputs [y])`}},
		{"input not an image batch", filepath.Join(tiny, "flat_input"), 32, savedmodel.ErrNotBase, []string{"must be float32 [batch,h,w,3], is float32 [?, 10]"}},
		{"metadata names other tensors", baseCopy(t, good, func(m map[string]any) { m["input_tensor"] = "input_1:0" }), 32, savedmodel.ErrNotBase,
			[]string{"images:0/features:0 differ from the metadata's input_1:0/features:0"}},
		{"metadata signature missing", baseCopy(t, good, func(m map[string]any) { m["signature"] = "classify" }), 32, savedmodel.ErrNotBase,
			[]string{`no signature "classify"`, "serving_default"}},
		{"other format", baseCopy(t, good, func(m map[string]any) { m["format_version"] = 3 }), 32, savedmodel.ErrNotBase, []string{"want tfflowers-base version 1 to 2", "re-export the base"}},
		{"fixed 224 input, asked 32", baseCopy(t, good, func(m map[string]any) { m["dynamic_size"], m["image_size"] = false, 224 }), 32, savedmodel.ErrImageSize,
			[]string{"exported for 224x224, got --image-size 32"}},
		{"below the minimum size", baseCopy(t, good, func(m map[string]any) { m["min_image_size"] = 96 }), 64, savedmodel.ErrImageSize, []string{"below the minimum 96"}},
		{"format 1 base for the multi-layer head", formatOneBase(t, good), 32, savedmodel.ErrNoLayer,
			[]string{"exposes no intermediate layers (format version 1)", "re-export the base with scripts/export_base_model.py", "--head gap"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig(t, data, nil)
			cfg.Base, cfg.ImageSize = tc.base, tc.size
			if errors.Is(tc.want, savedmodel.ErrNoLayer) {
				cfg.Head = "" // the default head
			}
			_, err := run(t, cfg)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Run = %v, want %v", err, tc.want)
			}
			contains(t, "error", err.Error(), append(tc.says, tc.base)...)
			if _, statErr := os.Stat(filepath.Join(cfg.Out, "checkpoints")); statErr == nil {
				t.Error("a checkpoint was written")
			}
			t.Logf("%v", err)
		})
	}
}

// formatOneBase is good as scripts/export_base_model.py wrote bases before format version
// 2: the last layer (features:0) only.
func formatOneBase(t *testing.T, good string) string {
	return baseCopy(t, good, func(m map[string]any) {
		m["format_version"] = 1
		delete(m, "layer_tensors")
	})
}

// TestFormatOneBaseStillTrainsTheCodelabHeads: an old base stays usable with --head gap.
func TestFormatOneBaseStillTrainsTheCodelabHeads(t *testing.T) {
	data := t.TempDir()
	flowerSet(t, data, 4, "daisy", "roses")
	cfg := smallConfig(t, data, nil)
	cfg.Base = formatOneBase(t, tftest.ImageNetBase(t))
	if _, err := run(t, cfg); err != nil {
		t.Fatalf("--head gap on a format 1 base: %v", err)
	}
}
