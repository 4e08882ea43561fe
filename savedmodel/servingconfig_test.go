package savedmodel_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tfflowers/tfflowers/internal/serve"
	"github.com/tfflowers/tfflowers/savedmodel"
)

// TestWriteServingConfig: models.config is a model config TF Serving's parser (and
// tfflowers serve's) reads, and an edited file is kept.
func TestWriteServingConfig(t *testing.T) {
	base := filepath.Join(t.TempDir(), "flowers")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := savedmodel.WriteServingConfig(base); err != nil {
		t.Fatal(err)
	}
	models, err := serve.ReadModelConfigFile(filepath.Join(base, savedmodel.ModelsConfigFile))
	if err != nil || len(models) != 1 || models[0].Name != "flowers" || models[0].BaseDir != "/models/flowers" {
		t.Fatalf("models.config: %+v %v", models, err)
	}
	raw, _ := os.ReadFile(filepath.Join(base, savedmodel.BatchingFile))
	for _, f := range []string{"max_batch_size { value: 32 }", "batch_timeout_micros { value: 5000 }"} {
		if !strings.Contains(string(raw), f) {
			t.Errorf("batching_parameters.txt lacks %q:\n%s", f, raw)
		}
	}
	edited := []byte("model_config_list { config { name: \"x\" base_path: \"/y\" } }\n")
	os.WriteFile(filepath.Join(base, savedmodel.ModelsConfigFile), edited, 0o644)
	if err := savedmodel.WriteServingConfig(base); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(base, savedmodel.ModelsConfigFile)); string(got) != string(edited) {
		t.Errorf("an edited models.config was overwritten")
	}
}
