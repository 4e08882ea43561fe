package tfops

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// The export graph gets encoded images from TF Serving clients and has no Go code to read
// their headers, so it reads the EXIF orientation with tensor ops, mirroring
// pipeline.InspectImage (the training side) on the JPEGs that cameras write:
//
//   - the first exifSegments marker segments after SOI are walked (APP0 JFIF, APP2 ICC, …
//     may precede APP1); the first complete APP1 starting "Exif\0\0" is used;
//   - in its TIFF block (either byte order), the first exifEntries entries of IFD0 are
//     searched for tag 0x0112 (SHORT, or LONG as seen in the wild; value 1..8).
//
// Anything else (PNG eXIf, fill bytes between segments, segments past the first
// exifWindow bytes, an orientation tag further down IFD0, malformed data) gives 1, the
// image as stored. There is no control flow: reads are gathers at clipped indices from
// the first exifWindow bytes padded with zeros, decisions are selects, and IFD0's entries
// are read all at once, so the ~200 small ops cost little inside the export's decode loop.
const (
	exifSegments = 4
	exifEntries  = 32
	exifWindow   = 1 << 17 // an APP1 with its thumbnail is up to 64 KiB, and an ICC profile may precede it
)

// exifBuilder gives every op its own scope: the bindings name ops namespace/Type, so two
// ops of one type in one scope would collide.
type exifBuilder struct {
	s     *op.Scope
	bytes tf.Output // int32 [exifWindow+16]: the image's first bytes, zero-padded
	k     int
}

func (b *exifBuilder) sub() *op.Scope {
	b.k++
	return b.s.SubScope(fmt.Sprintf("x%d", b.k))
}

func (b *exifBuilder) c(v any) tf.Output            { return op.Const(b.sub(), v) }
func (b *exifBuilder) add(x, y tf.Output) tf.Output { return op.AddV2(b.sub(), x, y) }
func (b *exifBuilder) addc(x tf.Output, v int32) tf.Output {
	return b.add(x, b.c(v))
}
func (b *exifBuilder) and(xs ...tf.Output) tf.Output {
	out := xs[0]
	for _, x := range xs[1:] {
		out = op.LogicalAnd(b.sub(), out, x)
	}
	return out
}
func (b *exifBuilder) or(x, y tf.Output) tf.Output { return op.LogicalOr(b.sub(), x, y) }
func (b *exifBuilder) not(x tf.Output) tf.Output   { return op.LogicalNot(b.sub(), x) }
func (b *exifBuilder) eqc(x tf.Output, v int32) tf.Output {
	return op.Equal(b.sub(), x, b.c(v))
}
func (b *exifBuilder) gec(x tf.Output, v int32) tf.Output {
	return op.GreaterEqual(b.sub(), x, b.c(v))
}
func (b *exifBuilder) sel(cond, x, y tf.Output) tf.Output { return op.Select(b.sub(), cond, x, y) }

// read gathers the bytes at off+delta[...] (any shape); offsets past the window read 0.
func (b *exifBuilder) read(off tf.Output, delta any) tf.Output {
	idx := op.ClipByValue(b.sub(), b.add(off, b.c(delta)), b.c(int32(0)), b.c(int32(exifWindow+15)))
	return op.GatherV2(b.sub(), b.bytes, idx, b.c(int32(0)))
}

// matches reports whether the bytes g equal want where want is not -1.
func (b *exifBuilder) matches(g tf.Output, want []int32) tf.Output {
	mask := make([]int32, len(want))
	n := int32(0)
	for i, w := range want {
		if w >= 0 {
			mask[i], n = 1, n+1
		}
	}
	eq := op.Cast(b.sub(), op.Equal(b.sub(), g, b.c(want)), tf.Int32)
	return b.eqc(op.Sum(b.sub(), op.Mul(b.sub(), eq, b.c(mask)), b.c(int32(0))), n)
}

// ExifOrientation returns the EXIF orientation (int32 scalar, 1..8) of the encoded image
// contents (string scalar); see the comment above for what it reads.
func ExifOrientation(s *op.Scope, contents tf.Output) tf.Output {
	b := &exifBuilder{s: s}
	head := op.Substr(b.sub(), contents, b.c(int32(0)), b.c(int32(exifWindow)))
	raw := op.Cast(b.sub(), op.DecodeRaw(b.sub(), head, tf.Uint8), tf.Int32)
	n := op.Size(b.sub(), raw, op.SizeOutType(tf.Int32))
	padding := op.Pack(b.sub(), []tf.Output{op.Pack(b.sub(), []tf.Output{b.c(int32(0)), op.Sub(b.sub(), b.c(int32(exifWindow+16)), n)})})
	b.bytes = op.Pad(b.sub(), raw, padding)
	found, app, segLen := b.exifSegment(n)
	t := b.addc(app, 10) // the TIFF block: after "Exif\0\0", to the segment's end
	tiffLen := b.addc(segLen, -8)
	le, ifd, entries, valid := b.tiffHeader(t, tiffLen, found)
	v, ok := b.orientationEntry(t, tiffLen, le, ifd, entries)
	return b.sel(b.and(valid, ok), v, b.c(int32(1)))
}

// exifSegment walks the JPEG segments from after SOI: at p, 0xFF marker, a big-endian
// length that counts itself, and for APP1 EXIF the "Exif\0\0" signature. It returns
// whether one was found, where it starts and its length. n is the window's real length.
func (b *exifBuilder) exifSegment(n tf.Output) (found, app, segLen tf.Output) {
	zero := b.c(int32(0))
	walking := b.matches(b.read(zero, []int32{0, 1}), []int32{0xFF, 0xD8})
	p := b.c(int32(2))
	found, app, segLen = b.c(false), zero, zero
	exifHeader := []int32{0xFF, 0xE1, -1, -1, 'E', 'x', 'i', 'f', 0, 0}
	for i := 0; i < exifSegments; i++ {
		g := b.read(p, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
		f := op.Unpack(b.sub(), g, 10)
		length := b.add(op.Mul(b.sub(), f[2], b.c(int32(256))), f[3])
		next := b.add(b.addc(p, 2), length)
		ok := b.and(walking, b.eqc(f[0], 0xFF), b.gec(length, 2),
			op.NotEqual(b.sub(), f[1], b.c(int32(0xDA)))) // start of scan: headers are over
		isExif := b.and(ok, b.not(found), b.matches(g, exifHeader), b.gec(length, 2+6+8),
			op.LessEqual(b.sub(), next, n)) // the whole segment is there
		app, segLen = b.sel(isExif, p, app), b.sel(isExif, length, segLen)
		found, walking, p = b.or(found, isExif), ok, next
	}
	return found, app, segLen
}

// tiffHeader reads the TIFF header at t: the byte order (le), IFD0's offset and entry
// count, and whether they are usable. Unsigned 32-bit values that wrap to negative int32
// fail the range checks, as the Go reader's bounds checks fail them.
func (b *exifBuilder) tiffHeader(t, tiffLen, found tf.Output) (le, ifd, entries, valid tf.Output) {
	h := b.read(t, []int32{0, 1, 2, 3, 4, 5, 6, 7})
	le = b.matches(h, []int32{'I', 'I', '*', 0, -1, -1, -1, -1})
	be := b.matches(h, []int32{'M', 'M', 0, '*', -1, -1, -1, -1})
	hb := op.Unpack(b.sub(), h, 8)
	u32 := func(x0, x1, x2, x3 tf.Output) tf.Output { // x0 least significant
		v := x3
		for _, x := range []tf.Output{x2, x1, x0} {
			v = b.add(op.Mul(b.sub(), v, b.c(int32(256))), x)
		}
		return v
	}
	ifd = b.sel(le, u32(hb[4], hb[5], hb[6], hb[7]), u32(hb[7], hb[6], hb[5], hb[4]))
	valid = b.and(found, b.or(le, be), b.gec(ifd, 8), op.LessEqual(b.sub(), b.addc(ifd, 2), tiffLen))
	cnt := op.Unpack(b.sub(), b.read(b.add(t, ifd), []int32{0, 1}), 2)
	entries = b.sel(le, b.add(cnt[0], op.Mul(b.sub(), cnt[1], b.c(int32(256)))), b.add(op.Mul(b.sub(), cnt[0], b.c(int32(256))), cnt[1]))
	return le, ifd, entries, valid
}

// orientationEntry reads every IFD0 entry at once: rows of 12 bytes, turned into (tag,
// type, count bytes' sum, SHORT value, LONG value's low byte, LONG value's other bytes'
// sum) by a matrix product per byte order. The first entry that is the orientation tag or
// lies past the block decides, as in Go; ok says its value is a valid orientation.
func (b *exifBuilder) orientationEntry(t, tiffLen, le, ifd, entries tf.Output) (v, ok tf.Output) {
	zero := b.c(int32(0))
	ks := make([]int32, exifEntries)
	rows := make([][]int32, exifEntries)
	for k := range ks {
		ks[k] = int32(k)
		rows[k] = make([]int32, 12)
		for j := range rows[k] {
			rows[k][j] = int32(2 + 12*k + j)
		}
	}
	block := b.read(b.add(t, ifd), rows) // [entries, 12]
	fields := b.sel(le, op.MatMul(b.sub(), block, b.c(entryWeights(true))), op.MatMul(b.sub(), block, b.c(entryWeights(false))))
	tag := op.Unpack(b.sub(), fields, 6, op.UnpackAxis(1))[0]
	start := b.add(ifd, b.c(int32(2))) // relative to t
	entryEnd := b.add(b.add(start, op.Mul(b.sub(), b.c(ks), b.c(int32(12)))), b.c(int32(12)))
	outside := op.Greater(b.sub(), entryEnd, tiffLen)
	decisive := b.and(op.Less(b.sub(), b.c(ks), entries), b.or(outside, b.eqc(tag, 0x0112)))
	first := op.ArgMax(b.sub(), op.Cast(b.sub(), decisive, tf.Int32), b.c(int32(0)), op.ArgMaxOutputType(tf.Int32))
	row := op.Unpack(b.sub(), op.GatherV2(b.sub(), fields, first, b.c(int32(0))), 6)
	typ, countSum, short, longLow, longHigh := row[1], row[2], row[3], row[4], row[5]
	isShort, isLong := b.eqc(typ, 3), b.and(b.eqc(typ, 4), b.eqc(longHigh, 0))
	v = b.sel(isShort, short, b.sel(isLong, longLow, zero))
	ok = b.and(op.Any(b.sub(), decisive, b.c(int32(0))),
		b.not(op.GatherV2(b.sub(), outside, first, b.c(int32(0)))),
		op.Greater(b.sub(), countSum, zero), b.gec(v, 1), op.LessEqual(b.sub(), v, b.c(int32(8))))
	return v, ok
}

// entryWeights is the [12][6] matrix that turns an IFD entry's bytes into its fields, for
// one byte order.
func entryWeights(little bool) [][]int32 {
	w := make([][]int32, 12)
	for j := range w {
		w[j] = make([]int32, 6)
	}
	lo, hi := 0, 1
	if !little {
		lo, hi = 1, 0
	}
	w[0+lo][0], w[0+hi][0] = 1, 256 // tag
	w[2+lo][1], w[2+hi][1] = 1, 256 // type
	for j := 4; j < 8; j++ {
		w[j][2] = 1 // count != 0 iff its bytes' sum != 0
	}
	w[8+lo][3], w[8+hi][3] = 1, 256 // SHORT value
	low := 8
	if !little {
		low = 11
	}
	for j := 8; j < 12; j++ {
		if j == low {
			w[j][4] = 1
		} else {
			w[j][5] = 1
		}
	}
	return w
}
