package train

import (
	"errors"
	"fmt"
	"math"
)

// ErrDiverged means the loss became NaN or infinite; the run stops without saving the
// bad weights, so the newest checkpoint on disk is the last good one.
var ErrDiverged = errors.New("training diverged")

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// diverged is the error for a non-finite value at epoch (1-based) and step (1-based
// batch of that epoch). Non-finite gradients show here too: they make the weights, and so
// the next step's loss (or the validation loss after an epoch's last step), non-finite.
func (t *trainer) diverged(epoch, step int, what string, v float64) error {
	kept := "newest good checkpoint kept"
	if len(listCheckpoints(t.cfg.Out)) == 0 {
		kept = "no checkpoint had been saved yet"
	}
	t.cfg.Logger.Error("training diverged", "epoch", epoch, "step", step, "global_step", t.state.GlobalStep, what, fmt.Sprint(v))
	return fmt.Errorf("%w at epoch %d step %d (%s %v); %s; try a lower --lr", ErrDiverged, epoch, step, what, nanName(v), kept)
}

func nanName(v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	return fmt.Sprint(v) // +Inf, -Inf
}
