package savedmodel

import (
	"bytes"
	"fmt"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tfflowers/tfflowers/internal/contract"
	"github.com/tfflowers/tfflowers/pipeline"
)

// warmupRequests encodes one TF Serving PredictionLog per image, as a TFRecord file:
// PredictionLog{predict_log(6): PredictLog{request(1): PredictRequest{
// model_spec(1): ModelSpec{name(1), signature_name(3)}, inputs(2): {"image_bytes": TensorProto}}}}.
// TF Serving replays them when it loads the version, so the first real request does not
// pay for graph initialisation. The serving protos are not among the Go packages we build
// on, so the few fields are written with protowire; scripts/verify_export.py parses the
// file with tensorflow-serving-api's own classes.
func warmupRequests(model string, images [][]byte) ([]byte, error) {
	var out bytes.Buffer
	for i, img := range images {
		tensor, err := proto.Marshal(&tensorpb.TensorProto{
			Dtype:       typespb.DataType_DT_STRING,
			TensorShape: &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: 1}}},
			StringVal:   [][]byte{img},
		})
		if err != nil {
			return nil, fmt.Errorf("savedmodel: warm-up request %d: %w", i, err)
		}
		var spec, entry, req, log, rec []byte
		spec = protowire.AppendTag(spec, 1, protowire.BytesType)
		spec = protowire.AppendString(spec, model)
		spec = protowire.AppendTag(spec, 3, protowire.BytesType)
		spec = protowire.AppendString(spec, contract.SignatureDefault)
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, contract.InputBytes)
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendBytes(entry, tensor)
		req = protowire.AppendTag(req, 1, protowire.BytesType)
		req = protowire.AppendBytes(req, spec)
		req = protowire.AppendTag(req, 2, protowire.BytesType)
		req = protowire.AppendBytes(req, entry)
		log = protowire.AppendTag(log, 1, protowire.BytesType)
		log = protowire.AppendBytes(log, req)
		rec = protowire.AppendTag(rec, 6, protowire.BytesType)
		rec = protowire.AppendBytes(rec, log)
		if err := pipeline.WriteRecord(&out, rec); err != nil {
			return nil, err
		}
	}
	return out.Bytes(), nil
}
