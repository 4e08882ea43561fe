package train

import (
	"fmt"
	"path/filepath"

	"github.com/tfflowers/tfflowers/internal/contract"
	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/savedmodel"
	"github.com/tfflowers/tfflowers/tfops"
)

// ExportConfig exports a finished (or interrupted) run for TensorFlow Serving.
type ExportConfig struct {
	Run           string // the training --out folder
	ModelBasePath string // BASE_DIR; the model goes to BASE_DIR/<version>
	Version       int64  // 0: next
	Force         bool
	Base          string // override the base model folder recorded in the run
	Warmup        int    // encoded images from the run's data to embed as TF Serving warm-up requests
}

// Export writes the newest intact checkpoint of a run as a SavedModel version.
func Export(cfg ExportConfig) (string, int64, error) {
	m, err := contract.ReadMetrics(cfg.Run)
	if err != nil {
		return "", 0, fmt.Errorf("%w: --checkpoint %s: %w", ErrConfig, cfg.Run, err)
	}
	if err := m.CheckExportable(cfg.Run, cfg.Base != ""); err != nil {
		return "", 0, fmt.Errorf("%w: --checkpoint %s: %w", ErrConfig, cfg.Run, err)
	}
	labels, err := pipeline.ReadLabelsFile(filepath.Join(cfg.Run, contract.LabelsFile))
	if err != nil {
		return "", 0, fmt.Errorf("--checkpoint %s: %w", cfg.Run, err)
	}
	baseDir := cfg.Base
	if baseDir == "" {
		baseDir = m.Config.Base
	}
	resize := m.Config.Resize
	if resize == "" { // runs from before --resize existed squashed
		resize = tfops.ResizeSquash
	}
	st, prefix := exportCheckpoint(cfg.Run, m.RestoredBestEpoch > 0)
	if st == nil {
		return "", 0, fmt.Errorf("%w: --checkpoint %s holds no intact checkpoint", ErrConfig, cfg.Run)
	}
	base, err := savedmodel.LoadBase(baseDir, tfops.SessionConfig{CPUOnly: true})
	if err != nil {
		return "", 0, err
	}
	defer base.Close()
	if m.BaseWeights != "" && m.BaseWeights != base.WeightsFingerprint {
		return "", 0, fmt.Errorf("%w: --checkpoint %s was trained on a base model with other weights than %s holds now "+
			"(weights fingerprint %.12s…, the run recorded %.12s…): pass --base with the base it was trained on, or train again",
			ErrConfig, cfg.Run, baseDir, base.WeightsFingerprint, m.BaseWeights)
	}
	var warmup [][]byte
	if cfg.Warmup > 0 {
		if warmup, err = warmupImages(m.Config, labels, cfg.Warmup); err != nil {
			return "", 0, fmt.Errorf("--warmup: %w", err)
		}
	}
	return savedmodel.Export(savedmodel.ExportOptions{
		Warmup:        warmup,
		ModelBasePath: cfg.ModelBasePath, Version: cfg.Version, Force: cfg.Force, Base: base,
		Head: m.Config.Head, ImageSize: m.Config.ExportImageSize(), Resize: resize, TTA: m.Config.TTA, Labels: labels, Checkpoint: prefix, CheckpointVars: modelWeights(base, st.Variables),
		Info: map[string]any{"run": cfg.Run, "epochs": len(st.History), "global_step": st.GlobalStep,
			"final_val_accuracy": m.FinalValAcc, "base_weights": base.Meta.Weights},
	})
}

// exportCheckpoint is the checkpoint an export takes: the best epoch's when the run
// ended on it (restoredBest), else the newest intact one; nil when there is none.
func exportCheckpoint(run string, restoredBest bool) (st *runState, prefix string) {
	if restoredBest { // the run ended on its best epoch's weights: export those
		if p, s, err := bestCheckpoint(run); err == nil && len(s.Variables) > 0 {
			return s, p
		}
	}
	for _, dir := range listCheckpoints(run) {
		s, err := readState(dir)
		if err == nil {
			err = verifyFiles(dir, s.Files)
		}
		if err == nil && len(s.Variables) > 0 {
			return s, filepath.Join(dir, checkpointName)
		}
	}
	return nil, ""
}

// modelWeights are the checkpoint variables an export keeps: the base's and the head's
// weights, not the optimizer state the checkpoint also holds.
func modelWeights(base *savedmodel.Base, checkpointVars []string) []string {
	wanted := map[string]bool{}
	for _, v := range base.Meta.Variables {
		wanted[v.Name] = true
	}
	for _, n := range tfops.HeadVariables() {
		wanted[n] = true
	}
	var weights []string
	for _, n := range checkpointVars {
		if wanted[n] {
			weights = append(weights, n)
		}
	}
	return weights
}

// warmupImages reads n images spread over the run's data (every class first), for
// TF Serving's warm-up file.
func warmupImages(config contract.RunConfig, classes []string, n int) ([][]byte, error) {
	var ds *pipeline.Dataset
	var err error
	if config.Data != "" {
		ds, err = pipeline.ScanFolders(config.Data, pipeline.ScanOptions{})
	} else {
		ds, err = pipeline.ReadTFRecords(config.TFRecords, classes, pipeline.ScanOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("the run's training data is needed for warm-up images: %w", err)
	}
	// Round-robin over classes so a few requests already cover every label.
	byClass := make([][]pipeline.Sample, len(ds.Classes))
	for _, s := range ds.Samples {
		byClass[s.Label] = append(byClass[s.Label], s)
	}
	var out [][]byte
	for k := 0; len(out) < n; k++ {
		progressed := false
		for _, list := range byClass {
			if k < len(list) && len(out) < n {
				b, err := list[k].ReadBytes()
				if err != nil {
					return nil, err
				}
				out, progressed = append(out, b), true
			}
		}
		if !progressed {
			break
		}
	}
	return out, nil
}
