package tfops

import (
	"fmt"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// Resize modes: how an image of any aspect ratio becomes the square model input.
const (
	// ResizeSquash stretches the whole image to size x size (the codelab's tf.image.resize).
	ResizeSquash = "squash"
	// ResizeCrop resizes the centred square of side min(h,w): shapes keep their
	// proportions, the ends of the longer side are lost (Keras's image_dataset_from_directory
	// crop_to_aspect_ratio, and ImageNet evaluation practice).
	ResizeCrop = "crop"
)

// Preprocessing describes how an encoded image becomes a model input with ResizeSquash;
// it is part of the feature-cache key, so any change to the graph below must change it.
const Preprocessing = "decode_image(rgb);exif_orientation;jpeg_scale(max_pixels=16777216);resize_bilinear(half_pixel);x/127.5-1"

// PreprocessingFor is Preprocessing for a resize mode (the cache key's preprocessing).
func PreprocessingFor(resize string) (string, error) {
	switch resize {
	case ResizeSquash:
		return Preprocessing, nil
	case ResizeCrop:
		return strings.Replace(Preprocessing, "resize_bilinear", "centre_square;resize_bilinear", 1), nil
	}
	return "", fmt.Errorf("tfops: resize mode %q unknown: want %s or %s", resize, ResizeSquash, ResizeCrop)
}

// CentreSquare cuts the centred square of side min(h,w) out of an image [h,w,c] (offsets
// rounded down). The training decoder and the export's decode loop both call it.
func CentreSquare(s *op.Scope, img tf.Output) tf.Output {
	shape := op.Shape(s.SubScope("shape"), img, op.ShapeOutType(tf.Int32))
	dim := func(name string, i int32) tf.Output {
		return op.GatherV2(s.SubScope(name), shape, op.Const(s.SubScope(name+"_index"), i), op.Const(s.SubScope(name+"_axis"), int32(0)))
	}
	h, w := dim("height", 0), dim("width", 1)
	side := op.Minimum(s.SubScope("side"), h, w)
	two := op.Const(s.SubScope("two"), int32(2))
	oy := op.FloorDiv(s.SubScope("offset_y"), op.Sub(s.SubScope("slack_y"), h, side), two)
	ox := op.FloorDiv(s.SubScope("offset_x"), op.Sub(s.SubScope("slack_x"), w, side), two)
	zero := op.Const(s.SubScope("zero"), int32(0))
	all := op.Const(s.SubScope("all"), int32(-1))
	begin := op.Pack(s.SubScope("begin"), []tf.Output{oy, ox, zero})
	size := op.Pack(s.SubScope("size"), []tf.Output{side, side, all})
	return op.Slice(s.SubScope("slice"), img, begin, size)
}

// Augment selects the random augmentations applied while training.
type Augment struct {
	Flip       bool    // random left-right flip
	Zoom       float64 // random crop keeping at least 1-Zoom of each side (0: off)
	Brightness float64 // random brightness delta in [-Brightness, Brightness] on the 0..1 scale (0: off)
}

// Enabled reports whether any augmentation is on.
func (a Augment) Enabled() bool { return a.Flip || a.Zoom > 0 || a.Brightness > 0 }

func resizeTo(s *op.Scope, img tf.Output, size int) tf.Output {
	batched := op.ExpandDims(s.SubScope("batch"), img, op.Const(s.SubScope("axis"), int32(0)))
	resized := op.ResizeBilinear(s.SubScope("resize"), batched, op.Const(s.SubScope("size"), []int32{int32(size), int32(size)}),
		op.ResizeBilinearHalfPixelCenters(true))
	return op.Squeeze(s.SubScope("unbatch"), resized, op.SqueezeAxis([]int64{0}))
}

// normalize maps 0..255 pixels to MobileNetV2's [-1, 1].
func normalize(s *op.Scope, pixels tf.Output) tf.Output {
	return op.Sub(s.SubScope("shift"), op.Div(s.SubScope("scale"), pixels, op.Const(s.SubScope("c127_5"), float32(127.5))),
		op.Const(s.SubScope("one"), float32(1)))
}

// ImageDecoder turns encoded images into preprocessed model inputs on its own session.
// Decode is safe for concurrent use; the data pipeline calls it from several goroutines.
//
// Before anything is decoded, the image's header is read in Go (the Inspector):
// images whose pixels would exceed the pixel budget are refused, except JPEGs,
// which are decoded at 1/2, 1/4 or 1/8 scale instead (DecodeJpeg's ratio); the EXIF
// orientation is fed to the graph, which transposes and flips the decoded pixels so that
// the image is upright, as photo viewers show it, before resizing and augmentation.
type ImageDecoder struct {
	size        int
	sess        *Session
	contents    tf.Output
	orientation tf.Output // int32 scalar, EXIF orientation 1..8 (default 1)
	seed        tf.Output // int64 [2], seeds the stateless random augmentations
	plain       [4]tf.Output
	augm        [4]tf.Output // zero Outputs when augmentation is off
	inspect     Inspector
}

// decodeScales are the JPEG scale denominators the decoder has a path for, indexed
// like ImageDecoder.plain.
var decodeScales = [4]int{1, 2, 4, 8}

// Inspector reads an encoded image's header before decoding: its EXIF orientation (1-8)
// and the JPEG scale denominator (1, 2, 4 or 8) that keeps the decoded pixels bounded. An
// error refuses the image. The data pipeline provides it (pipeline.DecodeHints); taking
// it as a function keeps tfops free of the pipeline package.
type Inspector func(data []byte) (orientation, scale int, err error)

// NewImageDecoder builds the decode graph for images of size x size, resized as resize
// says (ResizeSquash or ResizeCrop; augmentation crops within what resize keeps). With a
// nil inspect, images are decoded as stored, at full size.
func NewImageDecoder(size int, resize string, aug Augment, cfg SessionConfig, inspect Inspector) (dec *ImageDecoder, err error) {
	if size < 32 {
		return nil, fmt.Errorf("tfops: image size %d too small (MobileNetV2 needs >= 32)", size)
	}
	if _, err := PreprocessingFor(resize); err != nil {
		return nil, err
	}
	s := op.NewScope()
	defer guard("build image decoder", s, &err)
	d := &ImageDecoder{size: size, inspect: inspect}
	d.contents = op.Placeholder(s.SubScope("contents"), tf.String, op.PlaceholderShape(tf.ScalarShape()))
	d.orientation = op.PlaceholderWithDefault(s.SubScope("orientation"), op.Const(s.SubScope("upright"), int32(1)), tf.ScalarShape())
	if aug.Enabled() {
		d.seed = op.Placeholder(s.SubScope("seed"), tf.Int64, op.PlaceholderShape(tf.MakeShape(2)))
	}
	d.plain, d.augm = decodeBranches(s, d.contents, d.orientation, d.seed, size, resize, aug)
	g, ferr := s.Finalize()
	if ferr != nil {
		return nil, &GraphError{Step: "build image decoder", Err: ferr}
	}
	// Decoding runs on the CPU whatever device the model uses: it is per image and branchy.
	cpu := cfg
	cpu.CPUOnly = true
	if d.sess, err = NewSession(g, cpu); err != nil {
		return nil, err
	}
	return d, nil
}

// decodeBranches builds the preprocessing of one encoded image (contents, a string
// scalar) for each of decodeScales: decode (JPEGs at 1/r scale), orient, crop as resize
// says, then resize and normalize (plain) or augment with seed (augm, when aug is on).
// The local decoder and the workers' input pipelines (device_input.go) both call it, so
// an image becomes the same model input wherever it is decoded.
func decodeBranches(s *op.Scope, contents, orientation, seed tf.Output, size int, resize string, aug Augment) (plain, augm [4]tf.Output) {
	for i, r := range decodeScales {
		ss := s.SubScope(fmt.Sprintf("scale%d", r))
		var img tf.Output
		if r == 1 {
			img = op.DecodeImage(ss.SubScope("decode"), contents, op.DecodeImageChannels(3), op.DecodeImageExpandAnimations(false))
		} else {
			img = op.DecodeJpeg(ss.SubScope("decode"), contents, op.DecodeJpegChannels(3), op.DecodeJpegRatio(int64(r)))
		}
		img = OrientImage(ss.SubScope("orient"), img, orientation)
		if resize == ResizeCrop {
			img = CentreSquare(ss.SubScope("centre_square"), img)
		}
		plain[i] = normalize(ss.SubScope("plain"), resizeTo(ss.SubScope("plain"), img, size))
		if aug.Enabled() {
			augm[i] = normalize(ss.SubScope("augmented"), augmentOps(ss.SubScope("augment"), img, seed, size, aug))
		}
	}
	return plain, augm
}

// scaleIndex is the index in decodeScales of a JPEG scale denominator (0 for anything
// else: full scale).
func scaleIndex(r int) int {
	for i, v := range decodeScales {
		if v == r {
			return i
		}
	}
	return 0
}

// OrientImage applies an EXIF orientation (int32 scalar, 1..8) to a decoded [h,w,c]
// image without control flow: a transpose whose permutation is looked up by orientation
// (identity for 1-4, swap of rows and columns for 5-8), then a ReverseV2 over the axes
// the orientation flips. Values outside 1..8 must not be fed.
func OrientImage(s *op.Scope, img, orientation tf.Output) tf.Output {
	// Index 0 is unused; EXIF orientation o maps to (transpose, flip rows, flip columns):
	// 1 (),  2 flip cols,  3 flip both (180°),  4 flip rows,
	// 5 transpose,  6 transpose+flip cols (90° CW),  7 transpose+flip both,  8 transpose+flip rows (90° CCW).
	transpose := op.Const(s.SubScope("transpose_table"), []int32{0, 0, 0, 0, 0, 1, 1, 1, 1})
	flipRows := op.Const(s.SubScope("flip_rows_table"), []bool{false, false, false, true, true, false, false, true, true})
	flipCols := op.Const(s.SubScope("flip_cols_table"), []bool{false, false, true, true, false, false, true, true, false})
	perms := op.Const(s.SubScope("perms"), [][]int32{{0, 1, 2}, {1, 0, 2}})
	axis0 := op.Const(s.SubScope("axis0"), int32(0))
	pick := func(name string, table tf.Output) tf.Output {
		return op.GatherV2(s.SubScope(name), table, orientation, axis0)
	}
	perm := op.GatherV2(s.SubScope("perm"), perms, pick("pick_transpose", transpose), axis0)
	out := op.Transpose(s.SubScope("transpose"), img, perm)
	mask := op.Pack(s.SubScope("flip_mask"), []tf.Output{pick("pick_rows", flipRows), pick("pick_cols", flipCols), op.Const(s.SubScope("no"), false)})
	axes := op.Reshape(s.SubScope("flip_axes"), op.Where(s.SubScope("where"), mask), op.Const(s.SubScope("flat"), []int32{-1}))
	return op.ReverseV2(s.SubScope("flip"), out, axes)
}

// augmentOps crops a random box, resizes it, flips and shifts brightness, all with
// stateless random ops so the result depends only on (seed, image).
//
// Every op gets its own sub-scope: the bindings name an op namespace/Type, so two ops of
// one type in one scope would collide (SubScope names are made unique, op names are not).
func augmentOps(s *op.Scope, img tf.Output, seed tf.Output, size int, aug Augment) tf.Output {
	rnd := op.StatelessRandomUniform(s.SubScope("uniform"), op.Const(s.SubScope("n"), []int32{5}), seed)
	at := func(i int64) tf.Output {
		return op.Squeeze(s.SubScope("pick"), op.Slice(s.SubScope("slice"), rnd, op.Const(s.SubScope("b"), []int64{i}), op.Const(s.SubScope("l"), []int64{1})))
	}
	f32 := func(v float64) tf.Output { return op.Const(s.SubScope("c"), float32(v)) }
	// Box [y1, x1, y2, x2] in relative coordinates: side = 1 - zoom*u, offset uniform in the slack.
	sideY := op.Sub(s.SubScope("sub"), f32(1), op.Mul(s.SubScope("mul"), f32(aug.Zoom), at(0)))
	sideX := op.Sub(s.SubScope("sub"), f32(1), op.Mul(s.SubScope("mul"), f32(aug.Zoom), at(1)))
	y1 := op.Mul(s.SubScope("mul"), op.Sub(s.SubScope("sub"), f32(1), sideY), at(2))
	x1 := op.Mul(s.SubScope("mul"), op.Sub(s.SubScope("sub"), f32(1), sideX), at(3))
	box := op.Pack(s.SubScope("box"), []tf.Output{y1, x1, op.Add(s.SubScope("add"), y1, sideY), op.Add(s.SubScope("add"), x1, sideX)})
	batched := op.ExpandDims(s.SubScope("expanddims"), op.Cast(s.SubScope("cast"), img, tf.Float), op.Const(s.SubScope("axis"), int32(0)))
	crop := op.CropAndResize(s.SubScope("crop"), batched, op.ExpandDims(s.SubScope("expanddims"), box, op.Const(s.SubScope("axis"), int32(0))),
		op.Const(s.SubScope("boxind"), []int32{0}), op.Const(s.SubScope("size"), []int32{int32(size), int32(size)}))
	out := op.Squeeze(s.SubScope("squeeze"), crop, op.SqueezeAxis([]int64{0}))
	if aug.Flip {
		flipped := op.ReverseV2(s.SubScope("flip"), out, op.Const(s.SubScope("axis"), []int32{1}))
		// out*(1-f) + flipped*f with f in {0,1}: a scalar condition without control flow.
		f := op.Cast(s.SubScope("cast"), op.Less(s.SubScope("less"), at(4), f32(0.5)), tf.Float)
		out = op.Add(s.SubScope("maybe_flip"), op.Mul(s.SubScope("mul"), out, op.Sub(s.SubScope("sub"), f32(1), f)), op.Mul(s.SubScope("mul"), flipped, f))
	}
	if aug.Brightness > 0 {
		// Reuse draw 0 scaled to [-b, b]*255; independent enough for augmentation purposes and keeps one RNG call.
		delta := op.Mul(s.SubScope("mul"), op.Sub(s.SubScope("sub"), op.Mul(s.SubScope("mul"), at(0), f32(2)), f32(1)), f32(aug.Brightness*255))
		out = op.ClipByValue(s.SubScope("clip"), op.Add(s.SubScope("add"), out, delta), f32(0), f32(255))
	}
	return out
}

// Size is the side of the images Decode produces.
func (d *ImageDecoder) Size() int { return d.size }

// Decode decodes one encoded image into dst ([size*size*3] floats, preprocessed).
// With seed non-nil and augmentation configured, the image is augmented with that seed.
// Images the inspector refuses (too large even at reduced scale) fail with an error
// wrapping ErrDecode and the inspector's error, before any decoding.
func (d *ImageDecoder) Decode(data []byte, seed *[2]int64, dst []float32) error {
	scale, orientation := 0, int32(1)
	if d.inspect != nil {
		o, r, err := d.inspect(data)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrDecode, err)
		}
		scale = scaleIndex(r)
		if o >= 1 && o <= 8 {
			orientation = int32(o)
		}
	}
	in, err := tf.NewTensor(string(data))
	if err != nil {
		return fmt.Errorf("tfops: image bytes tensor: %w", err)
	}
	ot, err := tf.NewTensor(orientation)
	if err != nil {
		return err
	}
	feeds := map[tf.Output]*tf.Tensor{d.contents: in, d.orientation: ot}
	fetch := d.plain[scale]
	if seed != nil && d.augm[scale].Op != nil {
		st, err := tf.NewTensor(seed[:])
		if err != nil {
			return err
		}
		feeds[d.seed] = st
		fetch = d.augm[scale]
	}
	out, err := d.sess.Run("decode image", feeds, []tf.Output{fetch}, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDecode, err)
	}
	return CopyFloat32(out[0], dst)
}

// Close releases the decoder's session.
func (d *ImageDecoder) Close() error { return d.sess.Close() }
