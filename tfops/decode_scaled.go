package tfops

import (
	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// decodeScaled decodes one encoded image (a string scalar) into uint8 [h,w,3] with the
// training decoder's rule: a JPEG whose pixels exceed maxPixels is decoded at 1/2, 1/4
// or 1/8 scale, the first that fits (1/8 when none does; training refuses those, and
// tfflowers serve refuses them before they reach the graph), by libjpeg's DCT scaling as
// DecodeJpeg's ratio does it; everything else goes through DecodeImage, as in training.
// The size comes from ExtractJpegShape (the frame header, nothing decoded). The five
// decoders are TF1 cond branches (Switch/Merge), so only the chosen one runs; the
// branches that are not taken carry dead tensors, which Merge drops.
func decodeScaled(s *op.Scope, contents tf.Output, maxPixels int64) tf.Output {
	c := func(name string, v any) tf.Output { return op.Const(s.SubScope(name), v) }
	isJPEG := op.Equal(s.SubScope("is_jpeg"), op.Substr(s.SubScope("magic"), contents, c("magic_pos", int32(0)), c("magic_len", int32(3))), c("jpeg_magic", "\xff\xd8\xff"))
	other, jpeg := op.Switch(s.SubScope("by_format"), contents, isJPEG)

	hw := op.Cast(s.SubScope("hw"), op.Slice(s.SubScope("hw"), op.ExtractJpegShape(s.SubScope("shape"), jpeg),
		c("hw_begin", []int32{0}), c("hw_size", []int32{2})), tf.Int64)
	fits := func(r int64) tf.Output {
		ss := s.SubScope("fits")
		// ceil(h/r) * ceil(w/r) <= maxPixels, as pipeline's DecodeScale computes it.
		k := func(v any) tf.Output { return op.Const(ss.SubScope("c"), v) }
		scaled := op.FloorDiv(ss, op.Add(ss, hw, k(r-1)), k(r))
		return op.LessEqual(ss, op.Prod(ss, scaled, k(int32(0))), k(maxPixels))
	}
	f1, f2, f4 := fits(1), fits(2), fits(4) // f1 implies f2 implies f4
	not := func(x tf.Output) tf.Output { return op.LogicalNot(s.SubScope("not"), x) }
	and := func(x, y tf.Output) tf.Output { return op.LogicalAnd(s.SubScope("and"), x, y) }
	branch := func(name string, pred tf.Output) tf.Output {
		_, taken := op.Switch(s.SubScope(name), jpeg, pred)
		return taken
	}
	decodeImage := func(name string, in tf.Output) tf.Output {
		return op.DecodeImage(s.SubScope(name), in, op.DecodeImageChannels(3), op.DecodeImageExpandAnimations(false))
	}
	decodeJPEG := func(r int64, in tf.Output) tf.Output {
		return op.DecodeJpeg(s.SubScope("jpeg_scaled"), in, op.DecodeJpegChannels(3), op.DecodeJpegRatio(r))
	}
	out, _ := op.Merge(s.SubScope("decoded"), []tf.Output{
		decodeImage("other", other),
		decodeImage("jpeg_full", branch("full", f1)),
		decodeJPEG(2, branch("half", and(not(f1), f2))),
		decodeJPEG(4, branch("quarter", and(not(f2), f4))),
		decodeJPEG(8, branch("eighth", not(f4))),
	})
	return out
}
