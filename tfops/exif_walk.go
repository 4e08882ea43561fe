package tfops

import (
	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// jpegStep walks the JPEG segments in a window of exifWindow bytes from the walk's
// position as pipeline.inspectJPEG walks
// them, to the first position that needs a decision, and makes it. For every position i
// of the window it computes where Go goes next (i+1 past a byte that starts no marker,
// i+2 past a no-length marker, i+2+length past a segment) and whether Go stops or decides
// there; pointer doubling then finds the first such position from 0, and the last frame
// header on the way (its width decides whether the file has a frame).
func (b *ib) jpegStep(state, contents tf.Output) tf.Output {
	st := op.Unpack(b.sub(), state, stateLen)
	avail := b.minus(st[stSize], st[stPos]) // bytes from the walk's position to the end
	w := b.bytesAt(contents, st[stPos], st[stSize], exifWindow, 16)
	idx := make([]int64, exifWindow)
	for k := range idx {
		idx[k] = int64(k)
	}
	i := b.c(idx)
	at := func(k int64) tf.Output { return op.Slice(b.sub(), w, b.c([]int64{k}), b.c([]int64{exifWindow})) } // w[i+k]
	by := make([]tf.Output, 10)
	for k := range by {
		by[k] = at(int64(k))
	}
	left := b.minus(avail, i) // bytes of the file from i on
	within := func(k int64) tf.Output { return b.gec(left, k) }
	// One lookup classifies the byte after 0xFF, instead of a dozen comparisons per
	// iteration (a typical photo takes one iteration, so its op count is the cost).
	class := b.gather(b.c(markerClasses()), by[1])
	inFile, hasNext := within(1), within(2)
	isFF := b.and(b.eqc(by[0], 0xFF), inFile)
	isMarker := b.and(isFF, hasNext, b.is(class))
	noLen := b.and(isMarker, b.eqc(class, mNoLength))
	isEOI := b.and(isMarker, b.eqc(class, mEOI))
	lenMarker := b.and(isMarker, b.gec(class, mSOS))
	lenAvail := within(4)
	segLen := b.be16(by[2], by[3])
	lenOK := b.and(lenMarker, lenAvail, b.gec(segLen, 2))
	isSOF := b.and(lenOK, b.eqc(class, mSOF))
	sofOK := b.and(isSOF, within(9), b.is(b.add(by[5], by[6]))) // the frame header is there, height != 0
	isSOS := b.and(lenOK, b.eqc(class, mSOS))
	exifSig := b.u32(by[4:8]...)
	isExif := b.and(lenOK, b.eqc(class, mAPP1), b.eqc(st[stFound], 0), b.gec(segLen, 2+6+8),
		b.le(b.addc(segLen, 2), left), b.eqc(exifSig, 'E'<<24|'x'<<16|'i'<<8|'f'), b.eqc(b.add(by[8], by[9]), 0))
	ended := b.or(b.not(inFile), b.and(isFF, b.not(hasNext)), b.and(lenMarker, b.not(lenAvail)))
	failed := b.or(isEOI, b.and(lenMarker, lenAvail, b.not(b.gec(segLen, 2))), b.and(isSOF, b.not(sofOK)))
	stop := b.or(ended, failed, isSOS, isExif)
	next := b.sel(noLen, b.addc(i, 2), b.sel(lenMarker, b.add(b.addc(i, 2), segLen), b.addc(i, 1)))
	jump := b.sel(b.or(stop, b.gec(next, exifWindow)), i, next)
	lastSOF := b.sel(sofOK, i, b.c(filled(exifWindow, -1)))
	for r := 0; r < exifRounds; r++ {
		lastSOF = op.Maximum(b.sub(), lastSOF, b.gather(lastSOF, jump))
		jump = b.gather(jump, jump)
	}
	zero := b.i(0)
	g := b.gather(jump, zero) // where this iteration's walk ends
	pick := func(x tf.Output) tf.Output { return b.gather(x, g) }
	sof := b.gather(lastSOF, zero)
	sofWidth := b.be16(b.gather(w, b.addc(b.min(sof, b.i(exifWindow)), 7)), b.gather(w, b.addc(b.min(sof, b.i(exifWindow)), 8)))
	widthOK := b.sel(b.gec(sof, 0), b.bool64(b.is(sofWidth)), st[stWidthOK])

	leave, exif := b.not(pick(stop)), pick(isExif)
	finish := b.or(pick(isSOS), pick(ended)) // Go returns the header: no frame is an error
	segEnd := b.add(b.add(st[stPos], b.addc(g, 2)), pick(segLen))
	out := append([]tf.Output(nil), st...)
	out[stPos] = b.sel(leave, b.add(st[stPos], pick(next)), segEnd)
	out[stDone] = b.bool64(b.not(b.or(leave, exif)))
	out[stFound] = b.sel(exif, b.i(1), st[stFound])
	out[stTIFF] = b.sel(exif, b.add(st[stPos], b.addc(g, 10)), st[stTIFF])
	out[stTIFFLen] = b.sel(exif, b.addc(pick(segLen), -8), st[stTIFFLen])
	out[stWidthOK] = widthOK
	out[stErr] = b.sel(finish, b.bool64(b.eqc(widthOK, 0)), b.sel(b.or(leave, exif), st[stErr], b.i(1)))
	return op.Pack(b.sub(), out)
}

// Classes of the byte after 0xFF (pipeline.inspectJPEG's cases): 0 starts no marker.
const (
	mNone     = iota // 0x00 (stuffing), 0xFF (fill)
	mNoLength        // SOI, RST0..7, TEM: no length follows
	mEOI
	mSOS // from here on, a length follows
	mSOF
	mAPP1
	mOther
)

func markerClasses() []int64 {
	t := make([]int64, 256)
	for m := range t {
		switch {
		case m == 0x00 || m == 0xFF:
			t[m] = mNone
		case m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01:
			t[m] = mNoLength
		case m == 0xD9:
			t[m] = mEOI
		case m == 0xDA:
			t[m] = mSOS
		case m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC:
			t[m] = mSOF
		case m == 0xE1:
			t[m] = mAPP1
		default:
			t[m] = mOther
		}
	}
	return t
}

// filled is n copies of v.
func filled(n int, v int64) []int64 {
	out := make([]int64, n)
	for k := range out {
		out[k] = v
	}
	return out
}

// tiffOrientation reads the orientation from the TIFF block the walk found, as
// pipeline.exifOrientation does: the byte order, IFD0's offset and entry count, then
// every entry inside the block at once (rows of 12 bytes turned into their fields by a
// matrix product per byte order); the first orientation entry decides. Anything the Go
// reader gives 1 for gives 1.
func (b *ib) tiffOrientation(state, contents tf.Output) tf.Output {
	ok := b.and(b.is(b.gather(state, b.i(stFound))), b.eqc(b.gather(state, b.i(stErr)), 0))
	// A TF1 cond: most files have no EXIF, and they skip the reading below. The constant 1
	// hangs on the untaken side's pivot, so that only one input of the Merge is alive.
	none, some := op.Switch(b.sub(), state, ok)
	pivot := op.Identity(b.sub(), none)
	one := op.Const(b.sub().WithControlDependencies(pivot.Op), int32(1))
	v, _ := op.Merge(b.sub(), []tf.Output{one, b.readTIFF(some, contents)})
	return v
}

// readTIFF reads the orientation from the TIFF block the walk found.
func (b *ib) readTIFF(state, contents tf.Output) tf.Output {
	st := op.Unpack(b.sub(), state, stateLen)
	start, n := st[stTIFF], st[stTIFFLen]
	tiff := b.bytesAtN(contents, start, n, 0)
	tiff = op.Pad(b.sub(), tiff, b.c([][]int64{{0, 16}}))
	read := func(off tf.Output, delta any) tf.Output {
		return b.gather(tiff, op.ClipByValue(b.sub(), b.add(off, b.c(delta)), b.i(0), b.addc(n, 15)))
	}
	h := op.Unpack(b.sub(), read(b.i(0), []int64{0, 1, 2, 3, 4, 5, 6, 7}), 8)
	le := b.matches(h, []int64{'I', 'I', '*', 0})
	be := b.matches(h, []int64{'M', 'M', 0, '*'})
	ifd := b.sel(le, b.u32(h[7], h[6], h[5], h[4]), b.u32(h[4:8]...))
	valid := b.and(b.gec(n, 8), b.or(le, be), b.gec(ifd, 8), b.le(b.addc(ifd, 2), n))
	cnt := op.Unpack(b.sub(), read(ifd, []int64{0, 1}), 2)
	entries := b.sel(le, b.be16(cnt[1], cnt[0]), b.be16(cnt[0], cnt[1]))
	// Entries past the block's end end Go's search with 1; so does not finding the tag.
	fit := op.FloorDiv(b.sub(), b.minus(n, b.addc(ifd, 2)), b.i(12))
	m := b.sel(valid, b.min(entries, fit), b.i(0))
	k := op.Range(b.sub(), b.i(0), b.addc(m, 1), b.i(1)) // one row more: ArgMax needs one
	cols := make([]int64, 12)
	for j := range cols {
		cols[j] = int64(j)
	}
	rowStart := b.add(b.addc(ifd, 2), b.mulc(k, 12))
	offs := b.add(op.ExpandDims(b.sub(), rowStart, b.c(int32(1))), op.ExpandDims(b.sub(), b.c(cols), b.c(int32(0))))
	block := op.Cast(b.sub(), read(offs, int64(0)), tf.Int32) // [m+1, 12]
	fields := b.sel(le, op.MatMul(b.sub(), block, b.c(entryWeights(true))), op.MatMul(b.sub(), block, b.c(entryWeights(false))))
	f := op.Unpack(b.sub(), fields, 6, op.UnpackAxis(1))
	decisive := b.and(b.lt(k, m), op.Equal(b.sub(), f[0], b.c(int32(0x0112))))
	first := op.ArgMax(b.sub(), op.Cast(b.sub(), decisive, tf.Int32), b.c(int32(0)), op.ArgMaxOutputType(tf.Int64))
	row := op.Unpack(b.sub(), b.gather(fields, first), 6)
	typ, countSum, short, longLow, longHigh := row[1], row[2], row[3], row[4], row[5]
	i32 := func(v int32) tf.Output { return b.c(v) }
	isShort := op.Equal(b.sub(), typ, i32(3))
	isLong := b.and(op.Equal(b.sub(), typ, i32(4)), op.Equal(b.sub(), longHigh, i32(0)))
	v := b.sel(isShort, short, b.sel(isLong, longLow, i32(0)))
	good := b.and(valid, op.Any(b.sub(), decisive, b.c(int32(0))), op.Greater(b.sub(), countSum, i32(0)),
		op.GreaterEqual(b.sub(), v, i32(1)), op.LessEqual(b.sub(), v, i32(8)))
	return b.sel(good, v, i32(1))
}

// entryWeights is the [12][6] matrix that turns an IFD entry's bytes into its fields
// (tag, type, count bytes' sum, SHORT value, LONG value's low byte, LONG value's other
// bytes' sum) for one byte order.
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
