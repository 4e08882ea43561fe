package serve

import (
	"fmt"

	"github.com/tfflowers/tfflowers/pipeline"
)

// Inspector checks one encoded image before it is queued, so that an image
// the model must not decode is refused at once and alone: it never joins a
// batch, where decoding it would cost every client memory and time.
type Inspector func(image []byte) error

// InspectImage is the default Inspector: training's header reader
// (pipeline.InspectImage) and pixel budget, read from the header alone. A
// PNG, GIF or BMP over pipeline.MaxDecodedPixels (a decompression bomb: a
// 485 KB PNG can hold 20000x20000 pixels) or a JPEG over it even at 1/8 scale
// is refused (the export graph decodes large JPEGs at reduced scale, as
// training does); so is anything that is not JPEG, PNG, GIF or BMP. A known
// format whose header cannot be read is left to the decoder, as in training.
func InspectImage(image []byte) error {
	h, err := pipeline.InspectImage(image)
	if err != nil {
		switch h.Format {
		case pipeline.FormatUnknown:
			return fmt.Errorf("cannot decode image: not a JPEG, PNG, GIF or BMP (%d bytes)", len(image))
		case pipeline.FormatWebP:
			return fmt.Errorf("cannot decode image: WebP is not supported; send JPEG, PNG, GIF or BMP")
		}
		return nil
	}
	_, err = h.DecodeScale()
	return err
}

// inspect runs the inspector over a request's encoded images, naming the
// first bad one as TF Serving names a failed instance.
func (s *Server) inspect(req *predictRequest) error {
	if req.signature != sigBytes {
		return nil
	}
	for i, img := range req.images {
		if err := s.cfg.Inspect(img); err != nil {
			return invalid("instance %d: %v", i, err)
		}
	}
	return nil
}
