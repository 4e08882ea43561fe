package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"

	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"

	"github.com/tfflowers/tfflowers/internal/contract"
)

// Signature names, as exported by tfflowers and listed in the metadata.
const (
	sigBytes  = contract.SignatureDefault // input image_bytes: encoded images
	sigPixels = contract.SignatureImages  // input images: float32 [n][h][w][3] in 0..255
)

// version is one loaded model version with its two batchers. Its reference
// count and retired flag live in the registry, under the registry's lock.
type version struct {
	num        int64
	dir        string
	model      Model
	labels     []string
	imageSize  int
	signatures map[string]*pb.SignatureDef // as stored in the export; read-only
	bytes      *batcher[[]byte]
	pixels     *batcher[[]float32]
	log        *slog.Logger

	reg *registry // the registry that holds it

	// Guarded by registry.mu.
	refs    int
	retired bool
}

func newVersion(ctx context.Context, num int64, dir string, m Model, sigs map[string]*pb.SignatureDef, cfg Config, q *queue, log *slog.Logger) *version {
	log = log.With("version", num)
	v := &version{
		num:   num,
		dir:   dir,
		model: m,
		// Copied once so that metadata never depends on the model returning
		// the same slice (or staying usable) later.
		labels:     slices.Clone(m.Labels()),
		imageSize:  m.ImageSize(),
		signatures: sigs,
		log:        log,
	}
	v.bytes = newBatcher(ctx, sigBytes, predictBytes(m), cfg, q, log)
	v.pixels = newBatcher(ctx, sigPixels, predictPixels(m), cfg, q, log)
	return v
}

// predict runs req through the batcher for its signature and waits.
func (v *version) predict(ctx context.Context, req *predictRequest) ([]result, error) {
	var (
		c    *call
		err  error
		gone <-chan struct{}
	)
	switch req.signature {
	case sigBytes:
		c, err = v.bytes.submit(ctx, req.images)
		gone = v.bytes.done
	case sigPixels:
		c, err = v.pixels.submit(ctx, req.pixels)
		gone = v.pixels.done
	default:
		return nil, fmt.Errorf("no batcher for signature %q", req.signature)
	}
	if err != nil {
		return nil, err
	}
	return c.wait(gone)
}

// shutdown stops the batchers (finishing the batch in flight) and then
// closes the model, so the model is never closed under a running Predict.
func (v *version) shutdown() (err error) {
	v.bytes.stop()
	v.pixels.stop()
	defer func() {
		if p := recover(); p != nil {
			v.log.Error("model Close panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("close model version %d: panic: %v", v.num, p)
		}
	}()
	if err := v.model.Close(); err != nil {
		return fmt.Errorf("close model version %d: %w", v.num, err)
	}
	return nil
}

// predictBytes adapts Model.Predict to a batcher.
func predictBytes(m Model) runFunc[[]byte] {
	return func(ctx context.Context, images [][]byte) ([]result, error) {
		scores, ids, classes, errs, err := m.Predict(ctx, images)
		if err != nil {
			return nil, fmt.Errorf("prediction failed: %w", err)
		}
		// errs may be nil when every image decoded.
		if errs != nil && len(errs) != len(images) {
			return nil, fmt.Errorf("model returned %d image errors for %d images", len(errs), len(images))
		}
		return zipResults(len(images), scores, ids, classes, errs)
	}
}

// predictPixels adapts Model.PredictPixels to a batcher.
func predictPixels(m Model) runFunc[[]float32] {
	return func(ctx context.Context, pixels [][]float32) ([]result, error) {
		scores, ids, classes, err := m.PredictPixels(ctx, pixels)
		if err != nil {
			return nil, fmt.Errorf("prediction failed: %w", err)
		}
		return zipResults(len(pixels), scores, ids, classes, nil)
	}
}

// zipResults checks the model's parallel slices before indexing them: a
// model bug must become an error, not an index-out-of-range panic.
func zipResults(n int, scores [][]float32, ids []int64, classes []string, errs []error) ([]result, error) {
	if len(scores) != n || len(ids) != n || len(classes) != n {
		return nil, errors.New("model returned outputs whose lengths do not match the batch")
	}
	out := make([]result, n)
	for i := range out {
		if errs != nil && errs[i] != nil {
			out[i].err = errs[i]
			continue
		}
		out[i] = result{scores: scores[i], classID: ids[i], class: classes[i]}
	}
	return out, nil
}
