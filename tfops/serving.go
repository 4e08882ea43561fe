package tfops

import (
	"bytes"
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// ServingSpec describes the model to export for TensorFlow Serving.
type ServingSpec struct {
	BaseGraphDef  []byte   // the base SavedModel's GraphDef (pruned or not)
	BaseInput     string   // its input tensor, "images:0"
	BaseFeatures  string   // its feature tensor, "features:0"
	BaseVariables []string // its variables (VarHandleOp names = checkpoint keys)
	// HeadLayers are the base tensors the head reads, in HeadLayers(Head) order
	// ("features:0" for the last layer; see savedmodel.Base.LayerTensor).
	HeadLayers []string
	ImageSize  int
	Resize     string // ResizeSquash or ResizeCrop, as in training
	Head       string
	Labels     []string
	TTA        string // TTANone or TTAFlip: the scores average the image and its mirror
}

// Test-time augmentation modes (train --tta). TTAFlip runs every image and its left-right
// mirror through the model as one batch and averages the two score vectors: the model
// was trained on flipped images too, and the mirror's errors are partly its own.
const (
	TTANone = "none"
	TTAFlip = "flip"
)

// CheckTTA returns an error for a --tta mode that is neither TTANone nor TTAFlip.
func CheckTTA(mode string) error {
	if mode != TTANone && mode != TTAFlip {
		return fmt.Errorf("tfops: test-time augmentation %q unknown: want %s or %s", mode, TTANone, TTAFlip)
	}
	return nil
}

// baseImportPrefix keeps the backbone's node names clear of the serving graph's.
const baseImportPrefix = "base"

// TensorName is the "op:index" name of o, as signatures record it.
func TensorName(o tf.Output) string { return fmt.Sprintf("%s:%d", o.Op.Name(), o.Index) }

// GraphDef returns the serving graph without the ops only export itself needed,
// ready to be written into a MetaGraphDef.
func (sg *ServingGraph) GraphDef() ([]byte, error) {
	var buf bytes.Buffer
	if _, err := sg.Graph.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("tfops: serialize serving graph: %w", err)
	}
	keep := []string{sg.ImageBytes.Op.Name(), sg.Images.Op.Name(), sg.Scores.Op.Name(), sg.Classes.Op.Name(),
		sg.ClassIDs.Op.Name(), sg.saver.restore.Name(), sg.saver.saved.Op.Name()}
	return PruneGraphDef(buf.Bytes(), keep...)
}

// ServingGraph is one self-contained inference graph: encoded bytes or 0..255 pixels in,
// scores, top label and top id out; the backbone and head read resource variables
// that one checkpoint (the SavedModel's variables/) holds.
type ServingGraph struct {
	Graph      *tf.Graph
	ImageBytes tf.Output // string [-1]
	Images     tf.Output // float32 [-1,S,S,3], 0..255; defaults to the decoded ImageBytes
	Scores     tf.Output // float32 [-1,N]
	Classes    tf.Output // string [-1]
	ClassIDs   tf.Output // int64 [-1]

	vars     []*Variable
	saver    *saver
	baseKeys map[string]bool
	restores int // RestoreSubset calls so far; names each call's ops apart
}

// BuildServingGraph builds the export graph for spec.
func BuildServingGraph(spec ServingSpec) (sg *ServingGraph, err error) {
	if len(spec.Labels) < 2 {
		return nil, fmt.Errorf("tfops: export needs at least 2 labels, got %d", len(spec.Labels))
	}
	if spec.TTA == "" {
		spec.TTA = TTANone
	}
	if err := CheckTTA(spec.TTA); err != nil {
		return nil, err
	}
	g := tf.NewGraph()
	s := op.NewScopeWithGraph(g)
	defer guard("build serving graph", s, &err)
	sg = &ServingGraph{Graph: g, baseKeys: map[string]bool{}}
	input, err := sg.addInputs(s, spec)
	if err != nil {
		return nil, err
	}

	baseOpts := tf.GraphImportOptions{Prefix: baseImportPrefix}
	inName, inIdx, err := SplitTensorName(spec.BaseInput)
	if err != nil {
		return nil, err
	}
	baseOpts.AddInputMapping(inName, inIdx, input)
	if err := g.ImportWithOptions(spec.BaseGraphDef, baseOpts); err != nil {
		return nil, &GraphError{Step: "import base graph", Err: err}
	}
	features, err := GraphOutput(g, baseImportPrefix+"/"+spec.BaseFeatures)
	if err != nil {
		return nil, err
	}
	for _, name := range spec.BaseVariables {
		h := g.Operation(baseImportPrefix + "/" + name)
		if h == nil || h.Type() != "VarHandleOp" {
			return nil, fmt.Errorf("tfops: base graph has no variable %q", name)
		}
		vs := s.SubScope("base_read")
		sg.vars = append(sg.vars, &Variable{Name: name, Handle: h.Output(0), Read: op.ReadVariableOp(vs, h.Output(0), tf.Float)})
		sg.baseKeys[name] = true
	}

	layers := make([]tf.Output, len(spec.HeadLayers))
	for i, name := range spec.HeadLayers {
		if layers[i], err = GraphOutput(g, baseImportPrefix+"/"+name); err != nil {
			return nil, err
		}
	}
	headIn, err := HeadInput(s.SubScope("head_input"), spec.Head, layers)
	if err != nil {
		return nil, err
	}
	hs := s.SubScope("head")
	side := int64((spec.ImageSize + 31) / 32) // MobileNetV2's output stride, rounding up
	h, err := buildHead(hs, headIn, []int64{side, side, features.Shape().Size(3)}, spec.Head, len(spec.Labels), dropoutInputs{})
	if err != nil {
		return nil, err
	}
	sg.vars = append(sg.vars, h.kernel, h.bias)
	sg.addOutputs(s, spec, h.probs)
	sg.saver = buildSaver(s.SubScope("saver"), sg.vars)
	if s.Err() != nil {
		return nil, &GraphError{Step: "build serving graph", Err: s.Err()}
	}
	return sg, nil
}

// addInputs adds the serving inputs: ImageBytes, decoded in a loop of the encoded images
// (decode_images/), and Images, the decoded pixels that the predict_images signature may
// feed instead. It returns the backbone's input: the normalized images, followed by
// their mirrors with TTAFlip (one backbone run for both views). Called by
// BuildServingGraph, whose guard covers the panics of op.
func (sg *ServingGraph) addInputs(s *op.Scope, spec ServingSpec) (tf.Output, error) {
	g := sg.Graph
	size := int64(spec.ImageSize)
	sg.ImageBytes = op.Placeholder(s.SubScope("image_bytes"), tf.String, op.PlaceholderShape(tf.MakeShape(-1)))
	loop, err := decodeLoopGraphDef(spec.ImageSize, spec.Resize)
	if err != nil {
		return tf.Output{}, err
	}
	opts := tf.GraphImportOptions{Prefix: "decode_images"}
	opts.AddInputMapping("bytes", 0, sg.ImageBytes)
	if err := g.ImportWithOptions(loop, opts); err != nil {
		return tf.Output{}, &GraphError{Step: "import decode loop", Err: err}
	}
	decoded, err := GraphOutput(g, "decode_images/images:0")
	if err != nil {
		return tf.Output{}, err
	}
	sg.Images = op.PlaceholderWithDefault(s.SubScope("images"), decoded, tf.MakeShape(-1, size, size, 3))
	input := normalize(s.SubScope("preprocess"), sg.Images)
	if spec.TTA == TTAFlip {
		ts := s.SubScope("tta")
		mirrored := op.ReverseV2(ts.SubScope("mirror"), input, op.Const(ts.SubScope("width_axis"), []int32{2}))
		input = op.ConcatV2(ts.SubScope("views"), []tf.Output{input, mirrored}, op.Const(ts.SubScope("batch_axis"), int32(0)))
	}
	return input, nil
}

// addOutputs adds Scores (the head's probabilities; with TTAFlip the mean of each image's
// and its mirror's), ClassIDs and Classes.
func (sg *ServingGraph) addOutputs(s *op.Scope, spec ServingSpec, probs tf.Output) {
	if spec.TTA == TTAFlip { // rows 0..n-1 are the images, n..2n-1 their mirrors
		ts := s.SubScope("tta_mean")
		views := op.Reshape(ts.SubScope("views"), probs, op.Const(ts.SubScope("shape"), []int32{2, -1, int32(len(spec.Labels))}))
		probs = op.Mean(ts, views, op.Const(ts.SubScope("view_axis"), int32(0)))
	}
	sg.Scores = op.Identity(s.SubScope("scores"), probs)
	sg.ClassIDs = op.ArgMax(s.SubScope("class_ids"), probs, op.Const(s.SubScope("axis"), int32(1)), op.ArgMaxOutputType(tf.Int64))
	sg.Classes = op.GatherV2(s.SubScope("classes"), op.Const(s.SubScope("labels"), spec.Labels), sg.ClassIDs, op.Const(s.SubScope("axis0"), int32(0)))
}

// SaverDef returns the names the SavedModel loader uses to restore variables.
func (sg *ServingGraph) SaverDef() (filenameTensor, saveTensor, restoreOp string) {
	return sg.saver.prefix.Op.Name() + ":0", sg.saver.saveOutput().Op.Name() + ":0", sg.saver.restore.Name()
}

// RestoreSubset assigns the variables named in keys from the checkpoint at prefix. Export
// uses it twice: backbone weights from the base model, then the trained head (and any
// fine-tuned backbone weights) from the training checkpoint. It adds ops to the graph,
// so it must run before the graph is written out.
func (sg *ServingGraph) RestoreSubset(sess *Session, prefix string, keys []string) (err error) {
	var vars []*Variable
	for _, k := range keys {
		found := false
		for _, v := range sg.vars {
			if v.Name == k {
				vars, found = append(vars, v), true
				break
			}
		}
		if !found {
			return fmt.Errorf("tfops: export graph has no variable %q", k)
		}
	}
	sg.restores++
	s := op.NewScopeWithGraph(sg.Graph).SubScope(fmt.Sprintf("export_restore_%d", sg.restores))
	defer guard("restore for export", s, &err)
	pr := buildSaver(s, vars)
	if s.Err() != nil {
		return &GraphError{Step: "restore for export", Err: s.Err()}
	}
	return pr.run(sess, "restore "+prefix, pr.restore, prefix)
}

// VariableNames lists every variable the export checkpoint holds.
func (sg *ServingGraph) VariableNames() []string { return append([]string(nil), sg.saver.names...) }

// Save writes the export checkpoint (variables/variables) at prefix.
func (sg *ServingGraph) Save(sess *Session, prefix string) error {
	return sg.saver.run(sess, "save export variables", sg.saver.save, prefix)
}
