package train_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tfflowers/tfflowers/internal/train"
)

// TestDivergenceStopsAndKeepsCheckpoint trains one good epoch, then resumes at a
// learning rate that overflows the weights: the run stops with ErrDiverged and the issue's
// message, writes no checkpoint of the bad weights, and metrics.json still reads back
// (before, the NaN loss made json.Marshal fail at the next checkpoint).
func TestDivergenceStopsAndKeepsCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("trains; skipped with -short")
	}
	cfg := baseConfig(t, subset(t, 10))
	cfg.Epochs = 1
	if _, err := train.Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	before, _ := filepath.Glob(filepath.Join(cfg.Out, "checkpoints", "step-*"))
	cfg.Epochs, cfg.Resume, cfg.LR = 3, true, 1e38
	_, err := train.Run(context.Background(), cfg)
	if !errors.Is(err, train.ErrDiverged) {
		t.Fatalf("run at --lr 1e38 returned %v, want ErrDiverged", err)
	}
	msg := err.Error()
	for _, want := range []string{"training diverged at epoch 2 step ", "(loss NaN)", "newest good checkpoint kept", "try a lower --lr"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	after, _ := filepath.Glob(filepath.Join(cfg.Out, "checkpoints", "step-*"))
	if !slices.Equal(before, after) {
		t.Errorf("checkpoints %v after divergence, want the good ones %v", after, before)
	}
	if m := readMetrics(t, cfg.Out); len(m.Epochs) != 1 {
		t.Errorf("metrics.json has %d epochs, want the 1 good one", len(m.Epochs))
	}
}
