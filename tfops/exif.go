package tfops

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// The export graph gets encoded images from TF Serving clients and has no Go code to read
// their headers, so it reads the EXIF orientation with tensor ops, mirroring
// pipeline.DecodeHints (the training side) on the JPEGs that cameras write:
//
//   - the first exifSegments marker segments after SOI are walked (APP0 JFIF, APP2 ICC, …
//     may precede APP1); the first complete APP1 starting "Exif\0\0" is used;
//   - in its TIFF block (either byte order), the first exifEntries entries of IFD0 are
//     searched for tag 0x0112 (SHORT or LONG, value 1..8).
//
// Anything else (PNG eXIf, fill bytes between segments, an orientation tag further down
// IFD0, malformed data) gives 1, the image as stored. Without control flow: every read is
// a gather at a clipped index from the first exifWindow bytes padded with zeros, and
// every decision a select, so the ops run inside the export's decode loop as they are.
const (
	exifSegments = 8
	exifEntries  = 32
	exifWindow   = 1 << 17 // an APP1 segment is at most 64 KiB, after at most a few others
)

// exifBuilder gives every op its own scope: the bindings name ops namespace/Type, so two
// ops of one type in one scope would collide.
type exifBuilder struct {
	s     *op.Scope
	bytes tf.Output // int64 [exifWindow+16]: the image's first bytes, zero-padded
	n     tf.Output // int64 scalar: how many of them are real
	k     int
}

func (b *exifBuilder) sub() *op.Scope {
	b.k++
	return b.s.SubScope(fmt.Sprintf("x%d", b.k))
}

func (b *exifBuilder) c(v int64) tf.Output { return op.Const(b.sub(), v) }
func (b *exifBuilder) add(x, y tf.Output) tf.Output {
	return op.AddV2(b.sub(), x, y)
}
func (b *exifBuilder) addc(x tf.Output, v int64) tf.Output { return b.add(x, b.c(v)) }
func (b *exifBuilder) mulc(x tf.Output, v int64) tf.Output { return op.Mul(b.sub(), x, b.c(v)) }
func (b *exifBuilder) and(xs ...tf.Output) tf.Output {
	out := xs[0]
	for _, x := range xs[1:] {
		out = op.LogicalAnd(b.sub(), out, x)
	}
	return out
}
func (b *exifBuilder) eqc(x tf.Output, v int64) tf.Output { return op.Equal(b.sub(), x, b.c(v)) }
func (b *exifBuilder) le(x, y tf.Output) tf.Output        { return op.LessEqual(b.sub(), x, y) }
func (b *exifBuilder) sel(cond, x, y tf.Output) tf.Output {
	return op.Select(b.sub(), cond, x, y)
}

// at reads the byte at offset off (int64 scalar); offsets past the window read 0.
func (b *exifBuilder) at(off tf.Output) tf.Output {
	idx := op.ClipByValue(b.sub(), off, b.c(0), b.c(exifWindow+15))
	return op.GatherV2(b.sub(), b.bytes, idx, b.c(0))
}

func (b *exifBuilder) atc(off tf.Output, delta int64) tf.Output { return b.at(b.addc(off, delta)) }

// u16/u32 read unsigned integers at off in the TIFF block's byte order (le: bool scalar).
func (b *exifBuilder) u16(off, le tf.Output) tf.Output {
	b0, b1 := b.at(off), b.atc(off, 1)
	return b.sel(le, b.add(b0, b.mulc(b1, 256)), b.add(b.mulc(b0, 256), b1))
}

func (b *exifBuilder) u32(off, le tf.Output) tf.Output {
	lo, hi := b.u16(off, le), b.u16(b.addc(off, 2), le)
	return b.sel(le, b.add(lo, b.mulc(hi, 65536)), b.add(b.mulc(lo, 65536), hi))
}

// bytesEqual reports whether the bytes at off are want.
func (b *exifBuilder) bytesEqual(off tf.Output, want string) tf.Output {
	conds := make([]tf.Output, len(want))
	for i := range want {
		conds[i] = b.eqc(b.atc(off, int64(i)), int64(want[i]))
	}
	return b.and(conds...)
}

// ExifOrientation returns the EXIF orientation (int32 scalar, 1..8) of the encoded image
// contents (string scalar); see the comment above for what it reads.
func ExifOrientation(s *op.Scope, contents tf.Output) tf.Output {
	b := &exifBuilder{s: s}
	head := op.Substr(s.SubScope("head"), contents, b.c(0), b.c(exifWindow))
	raw := op.Cast(s.SubScope("widen"), op.DecodeRaw(s.SubScope("bytes"), head, tf.Uint8), tf.Int64)
	b.n = op.Cast(s.SubScope("n"), op.Size(s.SubScope("size"), raw), tf.Int64)
	padding := op.Pack(s.SubScope("padding"), []tf.Output{op.Pack(s.SubScope("pad_row"), []tf.Output{b.c(0), op.Sub(s.SubScope("pad_len"), b.c(exifWindow+16), b.n)})})
	b.bytes = op.Pad(s.SubScope("pad"), raw, padding)

	zero, one := b.c(0), b.c(1)
	soi := b.and(b.eqc(b.atc(zero, 0), 0xFF), b.eqc(b.atc(zero, 1), 0xD8))
	// Walk the segments: at p, 0xFF marker, then a big-endian length that counts itself.
	p, walking := b.c(2), soi
	found, app, segLen := op.Const(b.sub(), false), zero, zero
	for i := 0; i < exifSegments; i++ {
		marker := b.atc(p, 1)
		length := b.add(b.mulc(b.atc(p, 2), 256), b.atc(p, 3))
		ok := b.and(walking, b.eqc(b.at(p), 0xFF), op.GreaterEqual(b.sub(), length, b.c(2)),
			op.LogicalNot(b.sub(), b.eqc(marker, 0xDA))) // start of scan: headers are over
		isExif := b.and(ok, op.LogicalNot(b.sub(), found), b.eqc(marker, 0xE1),
			op.GreaterEqual(b.sub(), length, b.c(2+6+8)),
			b.le(b.add(b.addc(p, 2), length), b.n), // the whole segment is there
			b.bytesEqual(b.addc(p, 4), "Exif\x00\x00"))
		app = b.sel(isExif, p, app)
		segLen = b.sel(isExif, length, segLen)
		found = op.LogicalOr(b.sub(), found, isExif)
		walking = ok
		p = b.add(b.addc(p, 2), length)
	}
	// The TIFF block: after "Exif\0\0", up to the segment's end.
	t := b.addc(app, 10)
	tiffLen := b.addc(segLen, -8)
	le := b.bytesEqual(t, "II*\x00")
	be := b.bytesEqual(t, "MM\x00*")
	ifd := b.u32(b.addc(t, 4), le)
	valid := b.and(found, op.LogicalOr(b.sub(), le, be), op.GreaterEqual(b.sub(), ifd, b.c(8)), b.le(b.addc(ifd, 2), tiffLen))
	entries := b.u16(b.add(t, ifd), le)
	// The first entry that is the tag or lies past the block decides (as in Go).
	decided := op.Const(b.sub(), false)
	result := one
	for i := int64(0); i < exifEntries; i++ {
		e := b.addc(ifd, 2+12*i)
		inList := op.Less(b.sub(), b.c(i), entries)
		outside := op.Greater(b.sub(), b.addc(e, 12), tiffLen)
		abs := b.add(t, e)
		isTag := b.eqc(b.u16(abs, le), 0x0112)
		typ, count := b.u16(b.addc(abs, 2), le), b.u32(b.addc(abs, 4), le)
		hasOne := op.GreaterEqual(b.sub(), count, one)
		v := b.sel(b.eqc(typ, 3), b.u16(b.addc(abs, 8), le), b.u32(b.addc(abs, 8), le))
		typeOK := b.and(hasOne, op.LogicalOr(b.sub(), b.eqc(typ, 3), b.eqc(typ, 4)))
		inRange := b.and(typeOK, op.GreaterEqual(b.sub(), v, one), b.le(v, b.c(8)))
		here := b.and(op.LogicalNot(b.sub(), decided), inList, op.LogicalOr(b.sub(), outside, isTag))
		value := b.sel(b.and(op.LogicalNot(b.sub(), outside), inRange), v, one)
		result = b.sel(here, value, result)
		decided = op.LogicalOr(b.sub(), decided, here)
	}
	return op.Cast(s.SubScope("orientation"), b.sel(valid, result, one), tf.Int32)
}
