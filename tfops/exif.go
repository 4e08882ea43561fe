package tfops

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	gpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/graph_go_proto"
	ndpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/node_def_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"github.com/galeone/tensorflow/tensorflow/go/op"
	"google.golang.org/protobuf/proto"
)

// The export graph gets encoded images from TF Serving clients and has no Go code to read
// their headers, so it reads the EXIF orientation with tensor ops, giving what
// pipeline.InspectImage (the training side) gives on every file the Go reader parses:
//
//   - JPEG: the marker segments are walked from SOI as Go walks them (fill bytes and
//     garbage between segments skipped, no-length markers stepped over) up to the start of
//     scan, however far that is; the first complete APP1 starting "Exif\0\0" is used, and
//     a file Go refuses (EOI or a segment length < 2 before the scan, a bad or missing
//     frame header, no frame before the scan) gives 1, as DecodeHints does;
//   - PNG: the chunks are walked from the signature (at most 1000, as in Go) up to IDAT
//     or IEND; an eXIf chunk of at most 1 MiB that the file holds whole is used;
//   - in the TIFF block (either byte order) every entry of IFD0 that lies inside the
//     block is searched for tag 0x0112 (SHORT, or LONG as seen in the wild; value 1..8).
//
// The walk is a TF1 while loop (no custom op and no function library, so stock TF
// Serving runs it) with the walk's state in one int64 vector. Walking one segment per
// iteration would let a file of 4-byte segments cost an iteration per 4 bytes, so each
// iteration takes a window of exifWindow bytes, computes for every position where the walk
// goes next, and follows those links by pointer doubling (exifRounds gathers) to the first
// position that needs a decision: an APP1 candidate, a frame header that fails, the scan,
// an error or a hop past the window. A JPEG costs about one iteration per exifWindow bytes
// of headers plus one per APP1 candidate, whatever its segments (every flower photo takes
// one); a PNG one per chunk before its image data.
const (
	exifWindow   = 1024 // measured: wider windows cost more per iteration than they save in iterations
	exifRounds   = 10   // 2^10 >= exifWindow-1: the most hops a walk can make inside a window
	pngMaxChunks = 1000
	pngMaxExif   = 1 << 20
	exifFrame    = "tfflowers_exif_walk"
)

// The loop state, an int64 vector.
const (
	stPos     = iota // where the walk stands (bytes from the file's start)
	stDone           // 1: the walk is over
	stFound          // 1: an EXIF block was found
	stTIFF           // the EXIF TIFF block's offset
	stTIFFLen        // and length
	stErr            // 1: Go's reader refuses the file (orientation 1)
	stWidthOK        // 1: the last JPEG frame header seen has a width
	stChunks         // PNG chunks walked
	stFormat         // fmtOther, fmtJPEG, fmtPNG
	stSize           // the file's length
	stateLen
)

const (
	fmtOther = iota
	fmtJPEG
	fmtPNG
)

// ib builds small int64 ops, each in its own scope: the bindings name ops
// namespace/Type, so two ops of one type in one scope would collide.
type ib struct {
	s *op.Scope
	k int
}

func (b *ib) sub() *op.Scope {
	b.k++
	return b.s.SubScope(fmt.Sprintf("x%d", b.k))
}

func (b *ib) c(v any) tf.Output                   { return op.Const(b.sub(), v) }
func (b *ib) i(v int64) tf.Output                 { return op.Const(b.sub(), v) }
func (b *ib) add(x, y tf.Output) tf.Output        { return op.AddV2(b.sub(), x, y) }
func (b *ib) addc(x tf.Output, v int64) tf.Output { return b.add(x, b.i(v)) }
func (b *ib) minus(x, y tf.Output) tf.Output      { return op.Sub(b.sub(), x, y) }
func (b *ib) mulc(x tf.Output, v int64) tf.Output {
	return op.Mul(b.sub(), x, b.i(v))
}
func (b *ib) and(xs ...tf.Output) tf.Output {
	out := xs[0]
	for _, x := range xs[1:] {
		out = op.LogicalAnd(b.sub(), out, x)
	}
	return out
}
func (b *ib) or(xs ...tf.Output) tf.Output {
	out := xs[0]
	for _, x := range xs[1:] {
		out = op.LogicalOr(b.sub(), out, x)
	}
	return out
}
func (b *ib) not(x tf.Output) tf.Output                   { return op.LogicalNot(b.sub(), x) }
func (b *ib) eq(x, y tf.Output) tf.Output                 { return op.Equal(b.sub(), x, y) }
func (b *ib) eqc(x tf.Output, v int64) tf.Output          { return b.eq(x, b.i(v)) }
func (b *ib) nec(x tf.Output, v int64) tf.Output          { return op.NotEqual(b.sub(), x, b.i(v)) }
func (b *ib) le(x, y tf.Output) tf.Output                 { return op.LessEqual(b.sub(), x, y) }
func (b *ib) lt(x, y tf.Output) tf.Output                 { return op.Less(b.sub(), x, y) }
func (b *ib) gec(x tf.Output, v int64) tf.Output          { return op.GreaterEqual(b.sub(), x, b.i(v)) }
func (b *ib) lec(x tf.Output, v int64) tf.Output          { return op.LessEqual(b.sub(), x, b.i(v)) }
func (b *ib) sel(cond, x, y tf.Output) tf.Output          { return op.Select(b.sub(), cond, x, y) }
func (b *ib) bool64(x tf.Output) tf.Output                { return op.Cast(b.sub(), x, tf.Int64) }
func (b *ib) is(x tf.Output) tf.Output                    { return b.nec(x, 0) }
func (b *ib) gather(x, idx tf.Output) tf.Output           { return op.GatherV2(b.sub(), x, idx, b.c(int32(0))) }
func (b *ib) min(x, y tf.Output) tf.Output                { return op.Minimum(b.sub(), x, y) }
func (b *ib) inRange(x tf.Output, lo, hi int64) tf.Output { return b.and(b.gec(x, lo), b.lec(x, hi)) }

// be16 and u32 combine bytes, the first given most significant.
func (b *ib) be16(hi, lo tf.Output) tf.Output { return b.add(b.mulc(hi, 256), lo) }
func (b *ib) u32(x ...tf.Output) tf.Output {
	v := x[0]
	for _, y := range x[1:4] {
		v = b.add(b.mulc(v, 256), y)
	}
	return v
}

// bytesAt reads contents[pos : pos+n] as int64 values, zero-padded to n+pad values;
// pos is clipped to the string's length (Substr refuses a start past the end).
func (b *ib) bytesAt(contents, pos, size tf.Output, n int64, pad int64) tf.Output {
	return b.bytesAtN(contents, b.min(pos, size), b.i(n), n+pad)
}

// bytesAtN reads contents[pos : pos+n] (n a tensor) zero-padded to at least total values
// (exactly total when n <= total).
func (b *ib) bytesAtN(contents, pos, n tf.Output, total int64) tf.Output {
	raw := op.Cast(b.sub(), op.DecodeRaw(b.sub(), op.Substr(b.sub(), contents, pos, n), tf.Uint8), tf.Int64)
	got := op.Size(b.sub(), raw, op.SizeOutType(tf.Int64))
	fill := op.Maximum(b.sub(), b.minus(b.i(total), got), b.i(0))
	return op.Pad(b.sub(), raw, op.Pack(b.sub(), []tf.Output{op.Pack(b.sub(), []tf.Output{b.i(0), fill})}))
}

// matches reports whether the values g[0..len(want)) equal want where want is not -1.
func (b *ib) matches(g []tf.Output, want []int64) tf.Output {
	var conds []tf.Output
	for i, w := range want {
		if w >= 0 {
			conds = append(conds, b.eqc(g[i], w))
		}
	}
	return b.and(conds...)
}

// ImportExifOrientation adds to g the ops that read the EXIF orientation (int32 scalar,
// 1..8) of the encoded image contents (string scalar), as the export graph reads it; node
// names start with prefix. Tests and tools use it; the export builds the same loop inside
// its decode loop.
func ImportExifOrientation(g *tf.Graph, prefix string, contents tf.Output) (tf.Output, error) {
	nodes, out, err := exifOrientationNodes("exif", "contents", "")
	if err != nil {
		return tf.Output{}, err
	}
	ph := node("contents", "Placeholder", attrs{"dtype": attrType(typespb.DataType_DT_STRING), "shape": attrShape()})
	def, err := proto.Marshal(&gpb.GraphDef{Node: append([]*ndpb.NodeDef{ph}, nodes...)})
	if err != nil {
		return tf.Output{}, err
	}
	opts := tf.GraphImportOptions{Prefix: prefix}
	opts.AddInputMapping("contents", 0, contents)
	if err := g.ImportWithOptions(def, opts); err != nil {
		return tf.Output{}, &GraphError{Step: "import EXIF reader", Err: err}
	}
	return GraphOutput(g, prefix+"/"+out)
}

// exifOrientationNodes is the EXIF reader as GraphDef nodes named prefix/...: the walk's
// initial state, the TF1 loop and the TIFF reading after it. contents names the encoded
// image (string scalar); pivot is the enclosing loop body's pivot ("" at top level),
// which the nodes outside the walk's own frame hang their constants on. It returns the
// nodes and the name of the orientation tensor (int32 scalar).
func exifOrientationNodes(prefix, contents, pivot string) ([]*ndpb.NodeDef, string, error) {
	str, i64 := typespb.DataType_DT_STRING, typespb.DataType_DT_INT64
	stateShape := tf.MakeShape(stateLen)
	n := func(name string) string { return prefix + "/" + name }
	init, initOut, err := frameSubgraph(n("init"), pivot, []frameInput{{contents, tf.String, tf.ScalarShape()}},
		func(s *op.Scope, in []tf.Output) tf.Output { return (&ib{s: s}).walkStart(in[0]) })
	if err != nil {
		return nil, "", err
	}
	enter := func(name, in string, t typespb.DataType, constant bool) *ndpb.NodeDef {
		return node(n(name), "Enter", attrs{"T": attrType(t), "frame_name": attrString(exifFrame), "is_constant": attrBool(constant), "parallel_iterations": attrInt(1)}, in)
	}
	cond, condOut, err := frameSubgraph(n("cond"), n("merge"), []frameInput{{n("merge"), tf.Int64, stateShape}},
		func(s *op.Scope, in []tf.Output) tf.Output {
			b := &ib{s: s}
			return b.eqc(b.gather(in[0], b.i(stDone)), 0)
		})
	if err != nil {
		return nil, "", err
	}
	step, stepOut, err := frameSubgraph(n("step"), n("body"), []frameInput{{n("body"), tf.Int64, stateShape}, {n("enter_contents"), tf.String, tf.ScalarShape()}},
		func(s *op.Scope, in []tf.Output) tf.Output { return (&ib{s: s}).walkStep(in[0], in[1]) })
	if err != nil {
		return nil, "", err
	}
	final, finalOut, err := frameSubgraph(n("tiff"), pivot, []frameInput{{n("exit"), tf.Int64, stateShape}, {contents, tf.String, tf.ScalarShape()}},
		func(s *op.Scope, in []tf.Output) tf.Output { return (&ib{s: s}).tiffOrientation(in[0], in[1]) })
	if err != nil {
		return nil, "", err
	}
	nodes := []*ndpb.NodeDef{
		enter("enter_state", initOut, i64, false),
		enter("enter_contents", contents, str, true),
		node(n("merge"), "Merge", attrs{"T": attrType(i64), "N": attrInt(2)}, n("enter_state"), n("next")),
		node(n("loop_cond"), "LoopCond", nil, condOut),
		node(n("switch"), "Switch", attrs{"T": attrType(i64)}, n("merge"), n("loop_cond")),
		node(n("exit"), "Exit", attrs{"T": attrType(i64)}, n("switch")),
		node(n("body"), "Identity", attrs{"T": attrType(i64)}, n("switch")+":1"),
		node(n("next"), "NextIteration", attrs{"T": attrType(i64)}, stepOut),
	}
	for _, part := range [][]*ndpb.NodeDef{init, cond, step, final} {
		nodes = append(nodes, part...)
	}
	return nodes, finalOut, nil
}

// walkStart is the walk's initial state: the format as pipeline.SniffFormat and
// InspectImage judge it (a PNG needs an IHDR chunk with a non-zero size), the first
// position (after SOI, after the PNG signature), and done for any other file.
func (b *ib) walkStart(contents tf.Output) tf.Output {
	size := op.Cast(b.sub(), op.StringLength(b.sub(), contents), tf.Int64)
	h := op.Unpack(b.sub(), b.bytesAt(contents, b.i(0), size, 24, 0), 24)
	isJPEG := b.matches(h, []int64{0xFF, 0xD8, 0xFF})
	isPNG := b.and(b.matches(h, []int64{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', -1, -1, -1, -1, 'I', 'H', 'D', 'R'}),
		b.gec(size, 24), b.is(b.u32(h[16:20]...)), b.is(b.u32(h[20:24]...)))
	format := b.sel(isJPEG, b.i(fmtJPEG), b.sel(isPNG, b.i(fmtPNG), b.i(fmtOther)))
	st := make([]tf.Output, stateLen)
	for k := range st {
		st[k] = b.i(0)
	}
	st[stPos] = b.sel(isJPEG, b.i(2), b.i(8))
	st[stDone] = b.bool64(b.not(b.or(isJPEG, isPNG)))
	st[stFormat], st[stSize] = format, size
	return op.Pack(b.sub(), st)
}

// walkStep is one iteration of the walk: the JPEG or the PNG step, by format. A TF1
// cond (Switch, Merge) runs only the step of the file's format.
func (b *ib) walkStep(state, contents tf.Output) tf.Output {
	isJPEG := b.eqc(b.gather(state, b.i(stFormat)), fmtJPEG)
	png, jpeg := op.Switch(b.sub(), state, isJPEG)
	out, _ := op.Merge(b.sub(), []tf.Output{b.jpegStep(jpeg, contents), b.pngStep(png, contents)})
	return out
}

// pngStep reads the chunk header at the walk's position (pipeline.pngOrientation).
func (b *ib) pngStep(state, contents tf.Output) tf.Output {
	st := op.Unpack(b.sub(), state, stateLen)
	avail := b.minus(st[stSize], st[stPos]) // bytes from the walk's position to the end
	h := op.Unpack(b.sub(), b.bytesAt(contents, st[stPos], st[stSize], 8, 0), 8)
	n, typ := b.u32(h[0:4]...), b.u32(h[4:8]...)
	chunk := func(name string) int64 {
		return int64(name[0])<<24 | int64(name[1])<<16 | int64(name[2])<<8 | int64(name[3])
	}
	over := b.or(b.lt(avail, b.i(8)), b.gec(st[stChunks], pngMaxChunks))
	isExif := b.eqc(typ, chunk("eXIf"))
	found := b.and(b.not(over), isExif, b.lec(n, pngMaxExif), b.le(b.addc(n, 8), avail))
	out := append([]tf.Output(nil), st...)
	out[stDone] = b.bool64(b.or(over, isExif, b.eqc(typ, chunk("IDAT")), b.eqc(typ, chunk("IEND"))))
	out[stFound] = b.bool64(found)
	out[stTIFF] = b.addc(st[stPos], 8)
	out[stTIFFLen] = n
	out[stPos] = b.add(b.addc(st[stPos], 12), n)
	out[stChunks] = b.addc(st[stChunks], 1)
	return op.Pack(b.sub(), out)
}
