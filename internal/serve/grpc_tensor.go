package serve

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"

	"github.com/tfflowers/tfflowers/internal/contract"
	tfs "github.com/tfflowers/tfflowers/internal/tfservingpb"
)

// Output names of both signatures.
const (
	outputScores   = contract.OutputScores
	outputClasses  = contract.OutputClasses
	outputClassIDs = contract.OutputClassIDs
)

// predictRequestFromProto turns a gRPC PredictRequest into the request the
// batchers take, checking its inputs against the signature with TF Serving's
// messages (predict_util.cc) and the shapes as the REST parser does.
func predictRequestFromProto(r *tfs.PredictRequest, imageSize, maxInstances int) (*predictRequest, error) {
	sig := r.GetModelSpec().GetSignatureName()
	if sig == "" {
		sig = sigBytes
	}
	input := map[string]string{sigBytes: inputBytes, sigPixels: inputPixels}[sig]
	if input == "" {
		return nil, failedPrecondition("Serving signature key \"%s\" not found.", sig)
	}
	if len(r.GetInputs()) != 1 {
		got := make([]string, 0, len(r.GetInputs()))
		var extra []string
		for k := range r.GetInputs() {
			got = append(got, k)
			if k != input {
				extra = append(extra, k)
			}
		}
		slices.Sort(got)
		slices.Sort(extra)
		missing := input
		if _, ok := r.GetInputs()[input]; ok {
			missing = ""
		}
		return nil, invalid("input size does not match signature: %d!=1 len({%s}) != len({%s}). Sent extra: {%s}. Missing but required: {%s}.",
			len(got), strings.Join(got, ","), input, strings.Join(extra, ","), missing)
	}
	tp, ok := r.GetInputs()[input]
	if !ok {
		for k := range r.GetInputs() {
			return nil, invalid("input tensor alias not found in signature: %s. Inputs expected to be in the set {%s}.", k, input)
		}
	}
	req := &predictRequest{signature: sig}
	var err error
	if sig == sigBytes {
		req.images, err = imagesFromTensor(tp, maxInstances)
	} else {
		req.pixels, err = pixelsFromTensor(tp, imageSize, maxInstances)
	}
	if err != nil {
		return nil, err
	}
	return req, nil
}

func dims(tp *tensorpb.TensorProto) []int64 {
	var out []int64
	for _, d := range tp.GetTensorShape().GetDim() {
		out = append(out, d.GetSize())
	}
	return out
}

// batchSize checks the leading dimension against the instance limit.
func batchSize(tp *tensorpb.TensorProto, want []int64, what string, maxInstances int) (int, error) {
	d := dims(tp)
	ok := !tp.GetTensorShape().GetUnknownRank() && len(d) == len(want)
	for i := 1; ok && i < len(d); i++ {
		ok = d[i] == want[i]
	}
	if !ok {
		shape := make([]string, len(want))
		for i, w := range want {
			shape[i] = fmt.Sprint(w)
		}
		shape[0] = "n"
		return 0, invalid("%s must have shape [%s], got %v", what, strings.Join(shape, ","), d)
	}
	switch n := d[0]; {
	case n <= 0:
		return 0, invalid("%s is empty", what)
	case n > int64(maxInstances):
		return 0, invalid("too many instances: %d, the limit is %d per request", n, maxInstances)
	default:
		return int(n), nil
	}
}

func wrongDtype(what string, got typespb.DataType, want string) error {
	// TF's own message for a fed tensor of the wrong type.
	return invalid("Expects arg[0] to be %s but %s is provided (input %s)", want, strings.ToLower(strings.TrimPrefix(got.String(), "DT_")), what)
}

// imagesFromTensor reads image_bytes: a DT_STRING tensor [n], as
// tf.make_tensor_proto builds it from a list of encoded images.
func imagesFromTensor(tp *tensorpb.TensorProto, maxInstances int) ([][]byte, error) {
	if tp.GetDtype() != typespb.DataType_DT_STRING {
		return nil, wrongDtype(inputBytes, tp.GetDtype(), "string")
	}
	n, err := batchSize(tp, []int64{-1}, inputBytes, maxInstances)
	if err != nil {
		return nil, err
	}
	if len(tp.GetStringVal()) != n {
		return nil, invalid("tensor parsing error: %s (shape [%d] with %d string values)", inputBytes, n, len(tp.GetStringVal()))
	}
	return tp.GetStringVal(), nil
}

// pixelsFromTensor reads images: a DT_FLOAT tensor [n,size,size,3] in
// 0..255, from tensor_content (numpy arrays) or float_val (lists), with
// TensorFlow's rule that a single float_val fills the tensor.
func pixelsFromTensor(tp *tensorpb.TensorProto, size, maxInstances int) ([][]float32, error) {
	if tp.GetDtype() != typespb.DataType_DT_FLOAT {
		return nil, wrongDtype(inputPixels, tp.GetDtype(), "float")
	}
	n, err := batchSize(tp, []int64{-1, int64(size), int64(size), 3}, inputPixels, maxInstances)
	if err != nil {
		return nil, err
	}
	per := size * size * 3
	flat := make([]float32, n*per)
	switch content, vals := tp.GetTensorContent(), tp.GetFloatVal(); {
	case len(content) > 0:
		if len(content) != 4*len(flat) {
			return nil, invalid("tensor parsing error: %s (tensor_content has %d bytes, shape needs %d)", inputPixels, len(content), 4*len(flat))
		}
		for i := range flat {
			flat[i] = math.Float32frombits(binary.LittleEndian.Uint32(content[4*i:]))
		}
	case len(vals) == len(flat):
		copy(flat, vals)
	case len(vals) == 1:
		for i := range flat {
			flat[i] = vals[0]
		}
	default:
		return nil, invalid("tensor parsing error: %s (%d float values for %d elements)", inputPixels, len(vals), len(flat))
	}
	out := make([][]float32, n)
	for i := range out {
		out[i] = flat[i*per : (i+1)*per : (i+1)*per]
		for j, v := range out[i] {
			// As in the REST API: values outside 0..255 mean the client
			// preprocessed already, which the signature does itself.
			if !(v >= 0 && v <= 255) {
				p := j / 3
				return nil, invalid("instance %d: %s pixel [%d][%d] has value %v; want 0..255", i, inputPixels, p/size, p%size, v)
			}
		}
	}
	return out, nil
}

// outputTensors builds the response's outputs as TF Serving's
// Tensor::AsProtoField does: typed value fields, not tensor_content.
func outputTensors(results []result, classes int, names []string) map[string]*tensorpb.TensorProto {
	n := int64(len(results))
	shape := func(ds ...int64) *shapepb.TensorShapeProto {
		s := &shapepb.TensorShapeProto{}
		for _, d := range ds {
			s.Dim = append(s.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
		}
		return s
	}
	out := map[string]*tensorpb.TensorProto{}
	for _, name := range names {
		switch name {
		case outputScores:
			vals := make([]float32, 0, len(results)*classes)
			for _, r := range results {
				vals = append(vals, r.scores...)
			}
			out[name] = &tensorpb.TensorProto{Dtype: typespb.DataType_DT_FLOAT, TensorShape: shape(n, int64(classes)), FloatVal: vals}
		case outputClasses:
			vals := make([][]byte, len(results))
			for i, r := range results {
				vals[i] = []byte(r.class)
			}
			out[name] = &tensorpb.TensorProto{Dtype: typespb.DataType_DT_STRING, TensorShape: shape(n), StringVal: vals}
		case outputClassIDs:
			vals := make([]int64, len(results))
			for i, r := range results {
				vals[i] = r.classID
			}
			out[name] = &tensorpb.TensorProto{Dtype: typespb.DataType_DT_INT64, TensorShape: shape(n), Int64Val: vals}
		}
	}
	return out
}
