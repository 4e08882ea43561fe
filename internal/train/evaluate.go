package train

import (
	"context"
	"fmt"

	"github.com/tfflowers/tfflowers/internal/report"
	"github.com/tfflowers/tfflowers/pipeline"
	"github.com/tfflowers/tfflowers/tfops"
)

// validation is one pass over the validation (or test) set.
type validation struct {
	loss  float64
	conf  *report.Confusion
	preds []valPrediction // in the set's order
}

// evaluate runs samples (the validation or the test set) through the model. Once the
// backbone is being fine-tuned, cached features are stale, so images go through the
// whole network. With tta (--tta flip, the final evaluations only) every image is also
// run mirrored and the two score vectors averaged, as the export's graph does. src is
// t.src, or for the final evaluations t.evalSource(); images at another size than the
// training's always go through the backbone (the cache holds --image-size features).
func (t *trainer) evaluate(src *source, samples []pipeline.Sample, throughBackbone, tta bool) (*validation, error) {
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
	throughBackbone = throughBackbone || src.size != cfg.ImageSize
	for r := range src.stream(runCtx, samples, order, cfg.BatchSize, 0, -1, throughBackbone || tta) {
		if r.err != nil {
			return nil, r.err
		}
		if r.b.n() == 0 {
			continue
		}
		probs, loss, err := t.evaluateBatch(r.b, throughBackbone, tta)
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

// evalSource is the source of the final validation and the test set: t.src, or when
// --eval-image-size differs from --image-size a second one (opened once) that decodes
// whole images at that size, without augmentation or feature cache.
func (t *trainer) evalSource() (*source, error) {
	cfg := t.cfg
	if t.evalSrc != nil {
		return t.evalSrc, nil
	}
	if cfg.EvalImageSize == cfg.ImageSize { // always so in a cluster (Validate), whose workers decode
		t.evalSrc = t.src
		return t.src, nil
	}
	dec, err := tfops.NewImageDecoder(cfg.EvalImageSize, cfg.Resize, tfops.Augment{}, cfg.Threads, pipeline.DecodeHints)
	if err != nil {
		return nil, err
	}
	t.evalSrc = newSource(t.extract, dec, nil, cfg.EvalImageSize, t.src.featLen, cfg.Seed, cfg.Strict, cfg.Logger)
	cfg.Logger.Info("final evaluations and export at their own image size", "eval_image_size", cfg.EvalImageSize, "image_size", cfg.ImageSize)
	return t.evalSrc, nil
}

// evaluateBatch returns b's scores and mean loss. With tta, b holds images: they and
// their mirrors each go through the model (the backbone's features first, for a graph
// that reads features), and the scores and losses of the two views are averaged.
func (t *trainer) evaluateBatch(b *batch, throughBackbone, tta bool) ([]float32, float64, error) {
	sess, micro := t.base.Session, t.cfg.MicroBatch
	if !tta {
		return t.graph.EvaluateSlices(sess, t.stepBatch(b), micro)
	}
	var probs []float32
	loss := 0.0
	for _, view := range [][]float32{b.images, mirror(b.images, b.size)} {
		vb := tfops.Batch{Images: view, ImageSize: b.size, FeatShape: t.featDim, Labels: b.labels}
		if !throughBackbone {
			f, err := t.src.extract(view, b.n())
			if err != nil {
				return nil, 0, err
			}
			vb = tfops.Batch{Features: f, FeatShape: t.featDim, Labels: b.labels}
		}
		p, l, err := t.graph.EvaluateSlices(sess, vb, micro)
		if err != nil {
			return nil, 0, err
		}
		if probs == nil {
			probs = make([]float32, len(p))
		}
		for i, v := range p {
			probs[i] += v / 2
		}
		loss += l / 2
	}
	return probs, loss, nil
}

// mirror returns images (n x size x size x 3, row-major) flipped left to right, as
// tfops.TTAFlip's ReverseV2 over the width axis flips them in the export.
func mirror(images []float32, size int) []float32 {
	out := make([]float32, len(images))
	row := size * 3
	for off := 0; off+row <= len(images); off += row {
		for x := 0; x < size; x++ {
			copy(out[off+x*3:off+x*3+3], images[off+(size-1-x)*3:off+(size-x)*3])
		}
	}
	return out
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
