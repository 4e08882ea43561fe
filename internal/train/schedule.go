package train

import "math"

// Learning-rate schedules of the fine-tuning phase (--fine-tune-schedule).
const (
	ScheduleCosine   = "cosine"   // linear warm-up, then cosine decay to 0 at the last step
	ScheduleConstant = "constant" // linear warm-up, then the peak rate
)

// fineTuneLR is the learning rate of fine-tuning step `step` (0-based, counted from the
// first fine-tuning step) out of `total`, with `warmup` warm-up steps rising linearly to
// peak. It depends on the step alone, so an interrupted run resumes on the same curve.
//
// Why warm-up: the fine-tuning phase starts a fresh Adam over the backbone, whose first
// updates (before its second-moment estimates settle) are large enough to undo pretrained
// features; ramping the rate over the first epoch avoids that. Why cosine: most of the
// accuracy gained late in fine-tuning comes from the low-rate end of the schedule.
func fineTuneLR(schedule string, peak float64, step, warmup, total int) float64 {
	if warmup > 0 && step < warmup {
		return peak * float64(step+1) / float64(warmup)
	}
	if schedule != ScheduleCosine || total <= warmup {
		return peak
	}
	progress := float64(step-warmup) / float64(total-warmup)
	return peak * 0.5 * (1 + math.Cos(math.Pi*math.Min(progress, 1)))
}

// stepLR is the learning rate of batch `batch` of epoch `epoch` (0-based) of nBatches.
func (t *trainer) stepLR(fineTune bool, epoch, batch, nBatches int) float64 {
	c := t.cfg
	if !fineTune {
		return c.LR
	}
	step := (epoch-c.Epochs)*nBatches + batch
	warmup := int(math.Round(c.FineTuneWarmup * float64(nBatches)))
	return fineTuneLR(c.FineTuneSchedule, c.FineTuneLR, step, warmup, c.FineTuneEpochs*nBatches)
}
