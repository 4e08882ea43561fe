package train

import (
	"encoding/json"
	"path/filepath"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
	"github.com/tfflowers/tfflowers/internal/contract"
	"github.com/tfflowers/tfflowers/internal/report"
)

// The run record's types are the contract's: export, batch and tests read metrics.json
// through them.
type (
	EpochMetrics = contract.EpochMetrics
	Metrics      = contract.Metrics
	TestMetrics  = contract.TestMetrics
)

func writeMetrics(out string, m *Metrics) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(out, contract.MetricsFile), append(raw, '\n'), 0o644)
}

func writeCurves(out string, history []EpochMetrics) error {
	pts := make([]report.EpochPoint, len(history))
	for i, h := range history {
		pts[i] = report.EpochPoint{Epoch: h.Epoch, TrainLoss: h.TrainLoss, TrainAcc: h.TrainAcc, ValLoss: h.ValLoss, ValAcc: h.ValAcc, Phase: h.Phase}
	}
	return report.PlotCurves(filepath.Join(out, contract.CurvesFile), pts)
}
