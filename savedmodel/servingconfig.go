package savedmodel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
)

// Files Export writes beside the version folders, for tensorflow_model_server.
const (
	ModelsConfigFile = "models.config"
	BatchingFile     = "batching_parameters.txt"
)

// WriteServingConfig writes TF Serving's --model_config_file (one model named after
// the base folder, served from /models/NAME as the tensorflow/serving image mounts it)
// and a --batching_parameters_file with tfflowers serve's batching defaults into
// basePath, so that `tensorflow_model_server --model_config_file … --enable_batching
// --batching_parameters_file …` runs the export as it is. A file that exists is kept:
// it may have been edited (labels, pinned versions).
func WriteServingConfig(basePath string) error {
	abs, err := filepath.Abs(basePath)
	if err != nil {
		return fmt.Errorf("savedmodel: serving config: %w", err)
	}
	name := strings.NewReplacer(":", "_", " ", "_", "\"", "_").Replace(filepath.Base(abs))
	config := fmt.Sprintf(`# TensorFlow Serving model config, written by tfflowers export beside the version folders:
#   docker run -p 8500:8500 -p 8501:8501 -v "$PWD/%[1]s:/models/%[1]s" tensorflow/serving \
#     --model_config_file=/models/%[1]s/%[2]s --enable_batching --batching_parameters_file=/models/%[1]s/%[3]s
# base_path is where the container sees this folder; edit it for another layout. Add
# model_version_policy { specific { versions: 1 versions: 2 } } and
# version_labels { key: "stable" value: 1 } to pin versions and name them.
model_config_list {
  config {
    name: "%[1]s"
    base_path: "/models/%[1]s"
    model_platform: "tensorflow"
  }
}
`, name, ModelsConfigFile, BatchingFile)
	batching := `# TensorFlow Serving --batching_parameters_file, written by tfflowers export: the batching
# tfflowers serve does by default (up to 32 images per run, 5 ms to fill a batch). Set
# num_batch_threads to the number of cores serving the model.
max_batch_size { value: 32 }
batch_timeout_micros { value: 5000 }
max_enqueued_batches { value: 32 }
num_batch_threads { value: 4 }
`
	for file, text := range map[string]string{ModelsConfigFile: config, BatchingFile: batching} {
		p := filepath.Join(basePath, file)
		if _, err := os.Lstat(p); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("savedmodel: serving config: %w", err)
		}
		if err := atomicfile.WriteFile(p, []byte(text), 0o644); err != nil {
			return fmt.Errorf("savedmodel: serving config: %w", err)
		}
	}
	return nil
}
