package train

import (
	"bytes"
	"encoding/csv"
	"path/filepath"
	"strconv"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
	"github.com/tfflowers/tfflowers/internal/contract"
)

// valPredictionsFile and testPredictionsFile list the final model's prediction for every
// validation and test image, so that a user can look at the photos it gets wrong and a
// reference run (Keras, another tool) can be trained and scored on exactly the same split.
const (
	valPredictionsFile  = contract.ValPredictionsFile
	testPredictionsFile = contract.TestPredictionsFile
)

// valPrediction is the final model's answer for one validation or test image.
type valPrediction struct {
	name      string // as pipeline.Sample.Name: a path, or file.tfrec#index
	label     int
	predicted int
	probs     []float32 // one per class
}

// writePredictions writes file (val_predictions.csv, test_predictions.csv): file, label,
// predicted, confidence, correct, then one probability column per class (p_<class>). Rows
// keep the set's order, which is the seeded split's and the same on every machine.
func writePredictions(out, file string, classes []string, preds []valPrediction) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	header := []string{"file", "label", "predicted", "confidence", "correct"}
	for _, c := range classes {
		header = append(header, "p_"+c)
	}
	if err := w.Write(header); err != nil {
		return err
	}
	row := make([]string, len(header))
	for _, p := range preds {
		row[0], row[1], row[2] = p.name, classes[p.label], classes[p.predicted]
		row[3] = strconv.FormatFloat(float64(p.probs[p.predicted]), 'f', 6, 32)
		row[4] = strconv.FormatBool(p.label == p.predicted)
		for c, v := range p.probs {
			row[5+c] = strconv.FormatFloat(float64(v), 'f', 6, 32)
		}
		if err := w.Write(row); err != nil {
			return err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(out, file), buf.Bytes(), 0o644)
}
