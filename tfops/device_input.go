package tfops

import (
	"errors"
	"fmt"
	"sync/atomic"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// Device-side input pipelines. With a cluster, every replica's images are read, decoded
// and resized on the replica's own device (its worker), from a file path (or the encoded
// bytes, for images inside TFRecord files) that the client feeds: decoded pixels never
// travel from the client. Decoding stays one image per run, as in ImageDecoder, so that
// a corrupt image fails alone and is dropped from its batch; each run writes its result
// into a slot of a bank, a variable on the worker, and the step's tower gathers its rows
// from there. A batch holds one bank from its decoding until its step has run, so
// decoding the next batches overlaps the step (DeviceInputConfig.Banks in flight).
//
// The client decides everything an image's header says before it is decoded (the EXIF
// orientation and the JPEG scale that keeps within the pixel budget, the Inspector's
// rules) and feeds it with the path: the decode graph is decodeBranches, the one the
// local ImageDecoder runs, so an image is the same model input wherever it is decoded.

// DefaultInputBanks is how many batches a device input pipeline holds at once.
const DefaultInputBanks = 4

// DeviceInputConfig configures the device input pipelines of ReplicateWithDeviceInputs.
type DeviceInputConfig struct {
	Size    int    // images are Size x Size
	Resize  string // ResizeSquash or ResizeCrop
	Augment Augment
	// BatchSize is the most rows a batch has; MicroBatch cuts it into runs as
	// StepOptions.MicroBatch does (0: one run). Device batches keep this cut whatever
	// micro-batch size a step or an evaluation is later given.
	BatchSize, MicroBatch int
	Banks                 int // batches in flight (0: DefaultInputBanks)
}

// ErrDeviceRead marks an image file that a device could not read (its worker does not see
// the data, or the file went away); ErrDecode marks one that was read but not decoded.
var ErrDeviceRead = errors.New("tfops: a device could not read an image file")

// EncodedImage is one image to decode on a device, with what its header says.
type EncodedImage struct {
	// Path is read on the device (the file must be there at this path) unless Contents,
	// the encoded bytes, are given.
	Path     string
	Contents []byte
	// Orientation is the EXIF orientation 1..8 (other values: 1); Scale the JPEG decode
	// scale 1, 2, 4 or 8 (other values: 1). See Inspector.
	Orientation, Scale int
	Seed               *[2]int64 // augmentation seed; nil: not augmented
}

// deviceInput is one device's pipeline.
type deviceInput struct {
	device                         string
	path, contents, length         tf.Output // contents = ReadFile(path), fed directly when given; length = its byte count
	orientation, seed, slot, index tf.Output
	images                         tf.Output // ResourceGather(bank, index): the tower's input
	plain, augm                    [4]*tf.Operation
	init                           *tf.Operation
	decoded                        atomic.Int64
}

// DeviceInputs are the input pipelines of a replicated training graph, one per tower.
type DeviceInputs struct {
	t      *TrainGraph
	cfg    DeviceInputConfig
	inputs []*deviceInput
	cap    int // slots per bank on each device
}

// ReplicateWithDeviceInputs is Replicate with an input pipeline on every device: each
// replica's backbone reads the images its device decoded (see DeviceInputs). Call Init
// after the variables are initialized or restored, before the first batch.
func (t *TrainGraph) ReplicateWithDeviceInputs(g *tf.Graph, devices []string, cfg DeviceInputConfig) (err error) {
	if cfg.Size < 32 || cfg.BatchSize < 1 {
		return fmt.Errorf("tfops: device inputs: image size %d, batch size %d", cfg.Size, cfg.BatchSize)
	}
	if _, err := PreprocessingFor(cfg.Resize); err != nil {
		return err
	}
	if cfg.Banks <= 0 {
		cfg.Banks = DefaultInputBanks
	}
	d := &DeviceInputs{t: t, cfg: cfg}
	// The most rows any tower gets from a batch of at most BatchSize rows.
	nt := len(devices)
	for n := 1; n <= cfg.BatchSize; n++ {
		rows := make([]int, nt)
		for _, run := range planRuns(n, cfg.MicroBatch, nt) {
			for k, sl := range run {
				if !sl.pad {
					rows[k] += sl.hi - sl.lo
				}
			}
		}
		for _, r := range rows {
			d.cap = max(d.cap, r)
		}
	}
	root := op.NewScopeWithGraph(g).SubScope("tfflowers").SubScope("device_inputs")
	defer guard("build device input pipelines", root, &err)
	overrides := make([]tf.Output, nt)
	for k, dev := range devices {
		in := d.build(root.SubScope(fmt.Sprintf("device_%d", k)).WithDevice(dev), k, dev)
		d.inputs = append(d.inputs, in)
		overrides[k] = in.images
	}
	if root.Err() != nil {
		return &GraphError{Step: "build device input pipelines", Err: root.Err()}
	}
	if err := t.replicate(g, devices, overrides); err != nil {
		return err
	}
	t.devIn = d
	return nil
}

// build adds device k's pipeline under s (which carries the device).
func (d *DeviceInputs) build(s *op.Scope, k int, dev string) *deviceInput {
	size := int64(d.cfg.Size)
	rows := int64(d.cfg.Banks * d.cap)
	in := &deviceInput{device: dev}
	in.path = op.Placeholder(s.SubScope("path"), tf.String, op.PlaceholderShape(tf.ScalarShape()))
	in.contents = op.ReadFile(s.SubScope("read"), in.path)
	in.length = op.StringLength(s.SubScope("length"), in.contents)
	in.orientation = op.PlaceholderWithDefault(s.SubScope("orientation"), op.Const(s.SubScope("upright"), int32(1)), tf.ScalarShape())
	if d.cfg.Augment.Enabled() {
		in.seed = op.Placeholder(s.SubScope("seed"), tf.Int64, op.PlaceholderShape(tf.MakeShape(2)))
	}
	in.slot = op.Placeholder(s.SubScope("slot"), tf.Int32, op.PlaceholderShape(tf.MakeShape(1)))
	in.index = op.Placeholder(s.SubScope("index"), tf.Int32, op.PlaceholderShape(tf.MakeShape(-1)))
	// The bank lives on the worker and is never checkpointed; its name is the device's, so
	// workers that serve several runs in turn reuse it (Init resets it to the run's shape).
	bs := s.SubScope("bank")
	bank := op.VarHandleOp(bs, tf.Float, tf.MakeShape(rows, size, size, 3), op.VarHandleOpSharedName(fmt.Sprintf("tfflowers_input_bank_%d", k)))
	zeros := op.Fill(bs.SubScope("zeros"), op.Const(bs.SubScope("shape"), []int64{rows, size, size, 3}), op.Const(bs.SubScope("zero"), float32(0)))
	in.init = op.AssignVariableOp(bs.SubScope("init"), bank, zeros)
	in.images = op.ResourceGather(s.SubScope("gather"), bank, in.index, tf.Float)
	plain, augm := decodeBranches(s.SubScope("decode"), in.contents, in.orientation, in.seed, d.cfg.Size, d.cfg.Resize, d.cfg.Augment)
	axis := op.Const(s.SubScope("axis"), int32(0))
	for i := range plain {
		ws := s.SubScope(fmt.Sprintf("write_scale%d", decodeScales[i]))
		in.plain[i] = op.ResourceScatterUpdate(ws.SubScope("plain"), bank, in.slot, op.ExpandDims(ws.SubScope("plain_row"), plain[i], axis))
		if augm[i].Op != nil {
			in.augm[i] = op.ResourceScatterUpdate(ws.SubScope("augmented"), bank, in.slot, op.ExpandDims(ws.SubScope("augmented_row"), augm[i], axis))
		}
	}
	return in
}

// DeviceInputs returns the device input pipelines (nil unless ReplicateWithDeviceInputs).
func (t *TrainGraph) DeviceInputs() *DeviceInputs { return t.devIn }

// Banks is how many batches may hold a bank at once.
func (d *DeviceInputs) Banks() int { return d.cfg.Banks }

// Devices is the number of device pipelines (one per tower).
func (d *DeviceInputs) Devices() int { return len(d.inputs) }

// Init zeroes every bank (run it after initializing or restoring the variables).
func (d *DeviceInputs) Init(sess *Session) error {
	var ops []*tf.Operation
	for _, in := range d.inputs {
		ops = append(ops, in.init)
	}
	_, err := sess.Run("initialize the device input banks", nil, nil, ops)
	return err
}

// Decoded returns how many images each device has decoded so far.
func (d *DeviceInputs) Decoded() []int64 {
	out := make([]int64, len(d.inputs))
	for k, in := range d.inputs {
		out[k] = in.decoded.Load()
	}
	return out
}

// CheckRead reads path on device k, as a decode would, and returns an error wrapping
// ErrDeviceRead if the device cannot (a worker that does not see the data).
func (d *DeviceInputs) CheckRead(sess *Session, k int, path string) error {
	in := d.inputs[k]
	p, err := tf.NewTensor(path)
	if err != nil {
		return err
	}
	if _, err := sess.Run("read an image on a worker", map[tf.Output]*tf.Tensor{in.path: p}, []tf.Output{in.length}, nil); err != nil {
		return fmt.Errorf("%w: %s on %s: %w", ErrDeviceRead, path, in.device, err)
	}
	return nil
}

// DeviceBatch is one batch decoded on the devices: which tower each row belongs to and
// where its image sits in that device's bank. Rows are assigned when the batch is made,
// so each file is read and decoded once, on the device that runs its row.
type DeviceBatch struct {
	d     *DeviceInputs
	bank  int
	tower []int   // row -> tower
	slot  []int32 // row -> slot in its tower's bank
	runs  [][]towerSlice
	n     int // rows, after Keep
	kept  bool
}

// NewBatch assigns n rows (1 <= n <= BatchSize) to the towers, in bank (0 <= bank < Banks).
// The caller holds the bank until the batch's step or evaluation has run.
func (d *DeviceInputs) NewBatch(bank, n int) (*DeviceBatch, error) {
	if n < 1 || n > d.cfg.BatchSize || bank < 0 || bank >= d.cfg.Banks {
		return nil, fmt.Errorf("tfops: device batch of %d rows in bank %d (want 1..%d rows, bank 0..%d)", n, bank, d.cfg.BatchSize, d.cfg.Banks-1)
	}
	b := &DeviceBatch{d: d, bank: bank, tower: make([]int, n), slot: make([]int32, n), runs: planRuns(n, d.cfg.MicroBatch, len(d.inputs)), n: n}
	used := make([]int, len(d.inputs))
	base := int32(bank * d.cap)
	for r, run := range b.runs {
		for k, sl := range run {
			if sl.pad {
				b.runs[r][k].slots = []int32{base} // any finite image: its weight is 0
				continue
			}
			slots := make([]int32, 0, sl.hi-sl.lo)
			for row := sl.lo; row < sl.hi; row++ {
				b.tower[row], b.slot[row] = k, base+int32(used[k])
				slots = append(slots, b.slot[row])
				used[k]++
			}
			b.runs[r][k].slots = slots
		}
	}
	return b, nil
}

// Tower is the tower (the device, the worker task) that row is decoded on and runs on.
func (b *DeviceBatch) Tower(row int) int { return b.tower[row] }

// Len is the number of rows (after Keep, those that decoded).
func (b *DeviceBatch) Len() int { return b.n }

// Decode decodes row's image on its tower's device, into the row's slot. It is safe to
// call for different rows at once. An image that was read but not decoded fails with an
// error wrapping ErrDecode, a file the device cannot read with one wrapping ErrDeviceRead;
// anything else (the worker is gone) is the run's failure.
func (b *DeviceBatch) Decode(sess *Session, row int, img EncodedImage) error {
	in := b.d.inputs[b.tower[row]]
	feeds := map[tf.Output]*tf.Tensor{}
	src := in.path
	var v any = img.Path
	if img.Contents != nil {
		src, v = in.contents, string(img.Contents)
	}
	t, err := tf.NewTensor(v)
	if err != nil {
		return err
	}
	feeds[src] = t
	o := int32(img.Orientation)
	if o < 1 || o > 8 {
		o = 1
	}
	if feeds[in.orientation], err = tf.NewTensor(o); err != nil {
		return err
	}
	if feeds[in.slot], err = tf.NewTensor([]int32{b.slot[row]}); err != nil {
		return err
	}
	target := in.plain[scaleIndex(img.Scale)]
	if img.Seed != nil && in.seed.Op != nil {
		if feeds[in.seed], err = tf.NewTensor(img.Seed[:]); err != nil {
			return err
		}
		target = in.augm[scaleIndex(img.Scale)]
	}
	if _, err := sess.Run("decode an image on a worker", feeds, nil, []*tf.Operation{target}); err != nil {
		return b.classify(sess, in, src, t, err)
	}
	in.decoded.Add(1)
	return nil
}

// classify tells a bad image from a device that cannot read it or is gone, by reading
// the image again (or, for fed bytes, an empty string) without decoding it: TensorFlow's
// Go bindings give no error codes to tell them apart by.
func (b *DeviceBatch) classify(sess *Session, in *deviceInput, src tf.Output, fed *tf.Tensor, runErr error) error {
	empty, _ := tf.NewTensor("")
	length := func(src tf.Output, v *tf.Tensor) error {
		_, err := sess.Run("probe a worker", map[tf.Output]*tf.Tensor{src: v}, []tf.Output{in.length}, nil)
		return err
	}
	if src == in.path {
		if err := length(in.path, fed); err == nil {
			return fmt.Errorf("%w: %v", ErrDecode, runErr)
		} else if length(in.contents, empty) == nil {
			return fmt.Errorf("%w: %v on %s: %w", ErrDeviceRead, fed.Value(), in.device, err)
		}
	} else if length(in.contents, empty) == nil {
		return fmt.Errorf("%w: %v", ErrDecode, runErr)
	}
	return fmt.Errorf("tfops: %s does not answer: %w", in.device, runErr) // the worker is gone
}

// Keep drops the rows whose ok is false (their images did not decode), keeping the
// others in order: each tower runs its surviving rows, and the cut of the batch into
// towers and runs is that of the survivors (any cut gives the same update, see
// accumulate.go). Call it once, after every row's Decode.
func (b *DeviceBatch) Keep(ok []bool) error {
	if len(ok) != len(b.tower) || b.kept {
		return fmt.Errorf("tfops: keep %d of a device batch of %d rows (kept already: %v)", len(ok), len(b.tower), b.kept)
	}
	b.kept = true
	newRow := make([]int, len(ok)) // old row -> row among the survivors
	n := 0
	for i, keep := range ok {
		newRow[i] = n
		if keep {
			n++
		}
	}
	var runs [][]towerSlice
	for _, run := range b.runs {
		out := make([]towerSlice, len(run))
		first := -1
		for k, sl := range run {
			if sl.pad {
				out[k] = towerSlice{pad: true, slots: sl.slots}
				continue
			}
			var slots []int32
			lo := -1
			for row := sl.lo; row < sl.hi; row++ {
				if ok[row] {
					if lo < 0 {
						lo = newRow[row]
					}
					slots = append(slots, b.slot[row])
				}
			}
			if lo < 0 {
				out[k] = towerSlice{pad: true, slots: []int32{int32(b.bank * b.d.cap)}}
				continue
			}
			out[k] = towerSlice{lo: lo, hi: lo + len(slots), slots: slots}
			if first < 0 {
				first = lo
			}
		}
		if first < 0 {
			continue // nothing of this run decoded
		}
		for k := range out {
			if out[k].pad {
				out[k].lo, out[k].hi = first, first+1
			}
		}
		runs = append(runs, out)
	}
	b.runs, b.n = runs, n
	return nil
}
