package train

import (
	"context"
	"fmt"

	"github.com/tfflowers/tfflowers/internal/report"
	"github.com/tfflowers/tfflowers/pipeline"
)

// validation is one pass over the validation (or test) set.
type validation struct {
	loss  float64
	conf  *report.Confusion
	preds []valPrediction // in the set's order
}

// evaluate runs samples (the validation or the test set) through the model. Once the
// backbone is being fine-tuned, cached features are stale, so images go through the
// whole network.
func (t *trainer) evaluate(samples []pipeline.Sample, throughBackbone bool) (*validation, error) {
	cfg := t.cfg
	order := make([]int, len(samples))
	for i := range order {
		order[i] = i
	}
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v := &validation{conf: report.NewConfusion(t.data.classes), preds: make([]valPrediction, 0, len(order))}
	nc := len(t.data.classes)
	lossSum, seen := 0.0, 0
	for r := range t.src.stream(runCtx, samples, order, cfg.BatchSize, 0, -1, throughBackbone) {
		if r.err != nil {
			return nil, r.err
		}
		if r.b.n() == 0 {
			continue
		}
		probs, loss, err := t.graph.EvaluateSlices(t.base.Session, t.stepBatch(r.b), cfg.MicroBatch)
		r.b.done()
		if err != nil {
			return nil, err
		}
		for i, label := range r.b.labels {
			row := probs[i*nc : (i+1)*nc : (i+1)*nc]
			best := argmax(row)
			if err := v.conf.Add(int(label), best); err != nil {
				return nil, err
			}
			v.preds = append(v.preds, valPrediction{name: r.b.names[i], label: int(label), predicted: best, probs: row}) // each batch's probs are its own
		}
		lossSum += loss * float64(r.b.n())
		seen += r.b.n()
	}
	if seen == 0 {
		return nil, fmt.Errorf("no image of the set (%d, first %s) could be decoded", len(samples), samples[0].Name)
	}
	v.loss = lossSum / float64(seen)
	return v, nil
}

// argmax is the index of row's largest value (the first of equals).
func argmax(row []float32) int {
	best := 0
	for c := 1; c < len(row); c++ {
		if row[c] > row[best] {
			best = c
		}
	}
	return best
}
