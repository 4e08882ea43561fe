package tfops

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	avpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/attr_value_go_proto"
	gpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/graph_go_proto"
	ndpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/node_def_go_proto"
	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"github.com/galeone/tensorflow/tensorflow/go/op"
	"google.golang.org/protobuf/proto"

	"github.com/tfflowers/tfflowers/internal/contract"
)

// A few graphs are easier to state as GraphDef nodes than through the op wrappers: a
// while loop needs a back edge (NextIteration -> Merge) that the builder API cannot add,
// while GraphDef import can. These helpers write such nodes.

type attrs map[string]*avpb.AttrValue

func node(name, opType string, a attrs, inputs ...string) *ndpb.NodeDef {
	return &ndpb.NodeDef{Name: name, Op: opType, Input: inputs, Attr: a}
}

func attrType(t typespb.DataType) *avpb.AttrValue {
	return &avpb.AttrValue{Value: &avpb.AttrValue_Type{Type: t}}
}
func attrInt(i int64) *avpb.AttrValue { return &avpb.AttrValue{Value: &avpb.AttrValue_I{I: i}} }
func attrBool(b bool) *avpb.AttrValue { return &avpb.AttrValue{Value: &avpb.AttrValue_B{B: b}} }
func attrString(s string) *avpb.AttrValue {
	return &avpb.AttrValue{Value: &avpb.AttrValue_S{S: []byte(s)}}
}

func attrShape(dims ...int64) *avpb.AttrValue {
	sp := &shapepb.TensorShapeProto{}
	for _, d := range dims {
		sp.Dim = append(sp.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
	}
	return &avpb.AttrValue{Value: &avpb.AttrValue_Shape{Shape: sp}}
}

func constInt32(name string, values []int32, scalar bool, ctrl ...string) *ndpb.NodeDef {
	tp := &tensorpb.TensorProto{Dtype: typespb.DataType_DT_INT32, TensorShape: &shapepb.TensorShapeProto{}, IntVal: values}
	if !scalar {
		tp.TensorShape.Dim = []*shapepb.TensorShapeProto_Dim{{Size: int64(len(values))}}
	}
	return constNode(name, typespb.DataType_DT_INT32, tp, ctrl...)
}

func constNode(name string, dt typespb.DataType, tp *tensorpb.TensorProto, ctrl ...string) *ndpb.NodeDef {
	in := make([]string, len(ctrl))
	for i, c := range ctrl {
		in[i] = "^" + c
	}
	return node(name, "Const", attrs{"dtype": attrType(dt), "value": {Value: &avpb.AttrValue_Tensor{Tensor: tp}}}, in...)
}

// decodeLoopGraphDef is a TF1 while loop that decodes a batch of encoded images
// (string [n], node "bytes", mapped on import) into float32 [n,size,size,3] in 0..255
// (node "images"), one image per iteration, with the same decoding (decodeScaled), EXIF
// orientation and bilinear resize as the training pipeline. Each iteration writes its image to a
// TensorArray, gathered once after the loop: updating one [n,size,size,3] tensor per
// iteration would copy it every time (quadratic in n: 0.87 ms per image at n = 8, 1.76 ms
// at 64). TF1 loops need no function library, so the exported graph stays loadable by any
// TensorFlow 1.x/2.x runtime and TF Serving. resize is the training decoder's mode
// (ResizeSquash or ResizeCrop).
func decodeLoopGraphDef(size int, resize string) ([]byte, error) {
	const frame = "tfflowers_decode_images"
	i32, f32, str, u8, res := typespb.DataType_DT_INT32, typespb.DataType_DT_FLOAT, typespb.DataType_DT_STRING, typespb.DataType_DT_UINT8, typespb.DataType_DT_RESOURCE
	s := int32(size)
	enter := func(name, in string, t typespb.DataType, constant bool) *ndpb.NodeDef {
		return node(name, "Enter", attrs{"T": attrType(t), "frame_name": attrString(frame), "is_constant": attrBool(constant), "parallel_iterations": attrInt(8)}, in)
	}
	// Decoding as the training pipeline decodes (large JPEGs at reduced scale).
	decode, decoded, err := frameSubgraph("decode", "body_i", []frameInput{{"element", tf.String, tf.ScalarShape()}},
		func(s *op.Scope, in []tf.Output) tf.Output { return decodeScaled(s, in[0], contract.MaxDecodedPixels) })
	if err != nil {
		return nil, err
	}
	// EXIF orientation, as the training pipeline applies it (see exifOrientationNodes):
	// its own loop, nested in this one.
	exif, orientation, err := exifOrientationNodes("exif", "element", "body_i")
	if err != nil {
		return nil, err
	}
	orient, upright, err := frameSubgraph("orient", "body_i", []frameInput{
		{orientation, tf.Int32, tf.ScalarShape()}, {decoded, tf.Uint8, tf.MakeShape(-1, -1, 3)},
	}, func(s *op.Scope, in []tf.Output) tf.Output {
		return OrientImage(s.SubScope("apply"), in[1], in[0])
	})
	if err != nil {
		return nil, err
	}
	shaped, crop, err := resizeModeNodes(resize, upright)
	if err != nil {
		return nil, err
	}
	element := attrShape(1, int64(size), int64(size), 3)
	nodes := []*ndpb.NodeDef{
		node("bytes", "Placeholder", attrs{"dtype": attrType(str), "shape": attrShape(-1)}),
		node("n", "Size", attrs{"T": attrType(str), "out_type": attrType(i32)}, "bytes"),
		constInt32("zero_i", []int32{0}, true),
		constInt32("step", []int32{1}, true),
		constInt32("shape", []int32{-1, s, s, 3}, false),
		node("array", "TensorArrayV3", attrs{"dtype": attrType(f32), "element_shape": element, "dynamic_size": attrBool(false),
			"clear_after_read": attrBool(true), "identical_element_shapes": attrBool(true), "tensor_array_name": attrString("")}, "n"),
		enter("enter_i", "zero_i", i32, false),
		enter("enter_flow", "array:1", f32, false),
		enter("enter_array", "array", res, true),
		enter("enter_bytes", "bytes", str, true),
		enter("enter_n", "n", i32, true),
		node("merge_i", "Merge", attrs{"T": attrType(i32), "N": attrInt(2)}, "enter_i", "next_i"),
		node("merge_flow", "Merge", attrs{"T": attrType(f32), "N": attrInt(2)}, "enter_flow", "next_flow"),
		node("less", "Less", attrs{"T": attrType(i32)}, "merge_i", "enter_n"),
		node("cond", "LoopCond", nil, "less"),
		node("switch_i", "Switch", attrs{"T": attrType(i32)}, "merge_i", "cond"),
		node("switch_flow", "Switch", attrs{"T": attrType(f32)}, "merge_flow", "cond"),
		node("exit_i", "Exit", attrs{"T": attrType(i32)}, "switch_i"),
		node("exit_flow", "Exit", attrs{"T": attrType(f32)}, "switch_flow"),
		node("body_i", "Identity", attrs{"T": attrType(i32)}, "switch_i:1"),
		node("body_flow", "Identity", attrs{"T": attrType(f32)}, "switch_flow:1"),
		// Constants inside the frame hang on the pivot by a control edge.
		constInt32("axis0", []int32{0}, true, "body_i"),
		constInt32("size", []int32{s, s}, false, "body_i"),
		constInt32("one", []int32{1}, true, "body_i"),
		node("element", "GatherV2", attrs{"Tparams": attrType(str), "Tindices": attrType(i32), "Taxis": attrType(i32), "batch_dims": attrInt(0)}, "enter_bytes", "body_i", "axis0"),
		node("batched", "ExpandDims", attrs{"T": attrType(u8), "Tdim": attrType(i32)}, shaped, "axis0"),
		node("resized", "ResizeBilinear", attrs{"T": attrType(u8), "align_corners": attrBool(false), "half_pixel_centers": attrBool(true)}, "batched", "size"),
		node("write", "TensorArrayWriteV3", attrs{"T": attrType(f32)}, "enter_array", "body_i", "resized", "body_flow"),
		node("i_next", "AddV2", attrs{"T": attrType(i32)}, "body_i", "one"),
		node("next_i", "NextIteration", attrs{"T": attrType(i32)}, "i_next"),
		node("next_flow", "NextIteration", attrs{"T": attrType(f32)}, "write"),
		// After the loop: every image, [n,1,size,size,3] -> [n,size,size,3].
		node("indices", "Range", attrs{"Tidx": attrType(i32)}, "zero_i", "n", "step"),
		node("gathered", "TensorArrayGatherV3", attrs{"dtype": attrType(f32), "element_shape": element}, "array", "indices", "exit_flow"),
		node("images", "Reshape", attrs{"T": attrType(f32), "Tshape": attrType(i32)}, "gathered", "shape"),
	}
	nodes = append(append(nodes, decode...), exif...)
	return proto.Marshal(&gpb.GraphDef{Node: append(append(nodes, orient...), crop...)})
}

// resizeModeNodes are the loop-body nodes that give the resize its input as the training
// decoder does for resize: the upright image itself (ResizeSquash) or its centred square
// (ResizeCrop, CentreSquare). It returns the tensor to resize and the nodes to add.
func resizeModeNodes(resize, upright string) (string, []*ndpb.NodeDef, error) {
	switch resize {
	case ResizeSquash:
		return upright, nil, nil
	case ResizeCrop:
		nodes, out, err := frameSubgraph("centre_square", "body_i", []frameInput{{upright, tf.Uint8, tf.MakeShape(-1, -1, 3)}},
			func(s *op.Scope, in []tf.Output) tf.Output { return CentreSquare(s, in[0]) })
		return out, nodes, err
	}
	return "", nil, fmt.Errorf("tfops: resize mode %q unknown: want %s or %s", resize, ResizeSquash, ResizeCrop)
}

// frameInput is a tensor of the loop body that a frameSubgraph reads.
type frameInput struct {
	tensor string // "node" or "node:index" in the loop's GraphDef
	dtype  tf.DataType
	shape  tf.Shape
}

// frameSubgraph builds ops with the builder API and returns them as GraphDef nodes for
// the body of a TF1 while loop, with the name of build's result: node names get prefix,
// the builder's placeholders become the given loop tensors, and every node without
// inputs (the constants) hangs on the loop's pivot by a control edge, as ops inside a
// frame must (pivot "": the nodes are outside any loop).
func frameSubgraph(prefix, pivot string, inputs []frameInput, build func(s *op.Scope, in []tf.Output) tf.Output) (nodes []*ndpb.NodeDef, output string, err error) {
	s := op.NewScope()
	defer guard("build "+prefix, s, &err)
	phs := make([]tf.Output, len(inputs))
	for i, in := range inputs {
		phs[i] = op.Placeholder(s.SubScope(fmt.Sprintf("input%d", i)), in.dtype, op.PlaceholderShape(in.shape))
	}
	out := op.Identity(s.SubScope("output"), build(s.SubScope("body"), phs))
	g, err := s.Finalize()
	if err != nil {
		return nil, "", &GraphError{Step: "build " + prefix, Err: err}
	}
	var buf bytes.Buffer
	if _, err := g.WriteTo(&buf); err != nil {
		return nil, "", err
	}
	var gd gpb.GraphDef
	if err := proto.Unmarshal(buf.Bytes(), &gd); err != nil {
		return nil, "", err
	}
	mapped := map[string]string{}
	for i, p := range phs {
		mapped[p.Op.Name()] = inputs[i].tensor
	}
	for _, n := range gd.Node {
		if _, ok := mapped[n.Name]; ok {
			continue
		}
		n.Name = prefix + "/" + n.Name
		for i, in := range n.Input {
			name := strings.TrimPrefix(in, "^")
			ctrl := len(name) != len(in)
			idx := ""
			if j := strings.IndexByte(name, ':'); j >= 0 {
				name, idx = name[:j], name[j:]
			}
			ref := prefix + "/" + name + idx
			if t, ok := mapped[name]; ok {
				ref = t
			}
			if ctrl { // a control edge names an op, not a tensor
				ref = "^" + strings.SplitN(ref, ":", 2)[0]
			}
			n.Input[i] = ref
		}
		if len(n.Input) == 0 && pivot != "" {
			n.Input = []string{"^" + pivot}
		}
		nodes = append(nodes, n)
	}
	return nodes, prefix + "/" + out.Op.Name(), nil
}

// PruneGraphDef keeps only the nodes that the given nodes depend on (data and control
// inputs), dropping savers, initializers and anything else a SavedModel carries beside
// the forward pass.
func PruneGraphDef(def []byte, keep ...string) ([]byte, error) {
	var gd gpb.GraphDef
	if err := proto.Unmarshal(def, &gd); err != nil {
		return nil, fmt.Errorf("tfops: parse GraphDef: %w", err)
	}
	byName := make(map[string]*ndpb.NodeDef, len(gd.Node))
	for _, n := range gd.Node {
		byName[n.Name] = n
	}
	seen := map[string]bool{}
	stack := append([]string(nil), keep...)
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[name] {
			continue
		}
		n, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("tfops: GraphDef has no node %q", name)
		}
		seen[name] = true
		for _, in := range n.Input {
			in = strings.TrimPrefix(in, "^")
			if i := strings.IndexByte(in, ':'); i >= 0 {
				in = in[:i]
			}
			stack = append(stack, in)
		}
	}
	out := &gpb.GraphDef{Versions: gd.Versions, Library: gd.Library}
	for _, n := range gd.Node {
		if seen[n.Name] {
			out.Node = append(out.Node, n)
		}
	}
	return proto.Marshal(out)
}

// ErrNoTensor means a tensor name does not resolve in a graph.
var ErrNoTensor = errors.New("tensor not in the graph")

// SplitTensorName splits "op:index" (index 0 when omitted).
func SplitTensorName(name string) (string, int, error) {
	i := strings.LastIndexByte(name, ':')
	if i < 0 {
		return name, 0, nil
	}
	idx, err := strconv.Atoi(name[i+1:])
	if err != nil || idx < 0 {
		return "", 0, fmt.Errorf("%w: bad tensor name %q", ErrNoTensor, name)
	}
	return name[:i], idx, nil
}

// GraphOutput finds tensor "op:index" in g.
func GraphOutput(g *tf.Graph, name string) (tf.Output, error) {
	opName, idx, err := SplitTensorName(name)
	if err != nil {
		return tf.Output{}, err
	}
	o := g.Operation(opName)
	if o == nil || idx >= o.NumOutputs() {
		return tf.Output{}, fmt.Errorf("%w: %q", ErrNoTensor, name)
	}
	return o.Output(idx), nil
}
