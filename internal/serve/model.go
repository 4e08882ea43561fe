package serve

import "context"

// Model is one loaded model version.
type Model interface {
	// Predict classifies encoded images (JPEG/PNG/GIF/BMP bytes). It returns, per image, the softmax
	// scores, the top class id and label. A bad image fails only that image: errs[i] != nil
	// (and the other rows are valid). A non-nil error means the whole call failed.
	Predict(ctx context.Context, images [][]byte) (scores [][]float32, classIDs []int64, classes []string, errs []error, err error)
	// PredictPixels classifies decoded images: float32 [n][h*w*3] in 0..255 with h=w=ImageSize().
	PredictPixels(ctx context.Context, pixels [][]float32) (scores [][]float32, classIDs []int64, classes []string, err error)
	Labels() []string
	ImageSize() int
	Version() int64
	Close() error
}

// Loader loads the model in dir (BASE_DIR/<version>).
type Loader func(dir string, version int64) (Model, error)
