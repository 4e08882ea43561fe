package serve

import (
	"context"

	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
)

// Model is one loaded model version.
type Model interface {
	// Predict classifies encoded images (JPEG/PNG/GIF/BMP bytes). It returns, per image, the softmax
	// scores, the top class id and label. A bad image fails only that image: errs[i] != nil
	// (and the other rows are valid). A non-nil error means the whole call failed.
	Predict(ctx context.Context, images [][]byte) (scores [][]float32, classIDs []int64, classes []string, errs []error, err error)
	// PredictPixels classifies decoded images: float32 [n][h*w*3] in 0..255 with h=w=ImageSize().
	PredictPixels(ctx context.Context, pixels [][]float32) (scores [][]float32, classIDs []int64, classes []string, err error)
	// SignatureDefs returns the SignatureDefs stored in the export's
	// MetaGraph, which metadata requests are answered with (TF Serving
	// prints them as stored, tensor names included).
	SignatureDefs() (map[string]*pb.SignatureDef, error)
	Labels() []string
	ImageSize() int
	Version() int64
	Close() error
}

// Loader loads the model in dir (BASE_DIR/<version>).
type Loader func(dir string, version int64) (Model, error)
