package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	tfs "github.com/tfflowers/tfflowers/internal/tfservingpb"
)

// grpcServer runs s with both APIs on free loopback ports and returns the
// REST URL and a gRPC connection; the server is stopped by the test.
func grpcServer(t *testing.T, s *Server) (string, *grpc.ClientConn, func() error) {
	t.Helper()
	rest, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, rest, gln) }()
	conn, err := grpc.NewClient(gln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(1<<30)))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var serr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serr = <-errc:
			case <-time.After(10 * time.Second):
				serr = fmt.Errorf("serve did not return")
			}
			conn.Close()
		})
		return serr
	}
	t.Cleanup(func() { _ = stop() })
	return "http://" + rest.Addr().String(), conn, stop
}

func stringTensor(vals ...string) *tensorpb.TensorProto {
	bs := make([][]byte, len(vals))
	for i, v := range vals {
		bs[i] = []byte(v)
	}
	return &tensorpb.TensorProto{Dtype: typespb.DataType_DT_STRING, StringVal: bs,
		TensorShape: &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: int64(len(vals))}}}}
}

func spec(name string, version int64, label string) *tfs.ModelSpec {
	ms := &tfs.ModelSpec{Name: name}
	switch {
	case version > 0:
		ms.VersionChoice = &tfs.ModelSpec_Version{Version: wrapperspb.Int64(version)}
	case label != "":
		ms.VersionChoice = &tfs.ModelSpec_VersionLabel{VersionLabel: label}
	}
	return ms
}

func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Errorf("%s: got %v %q, want %v containing %q", what, st.Code(), st.Message(), code, msg)
	}
}

// TestGRPCPredictMatchesREST: the same images get the same scores, classes
// and ids over gRPC as over REST, from the same batchers.
func TestGRPCPredictMatchesREST(t *testing.T) {
	cfg := testConfig(t)
	writeVersion(t, cfg.BaseDir, 2)
	l := newFakeLoader(nil)
	s, err := New(cfg, l.load)
	if err != nil {
		t.Fatal(err)
	}
	url, conn, stop := grpcServer(t, s)
	client := tfs.NewPredictionServiceClient(conn)
	ctx := context.Background()

	resp, err := client.Predict(ctx, &tfs.PredictRequest{ModelSpec: spec("flowers", 0, ""),
		Inputs: map[string]*tensorpb.TensorProto{"image_bytes": stringTensor("\x00a", "\x01b", "\x02c")}})
	if err != nil {
		t.Fatal(err)
	}
	code, body := do(t, "POST", url+"/v1/models/flowers:predict",
		fmt.Sprintf(`{"instances": [{"b64": %q}, {"b64": %q}, {"b64": %q}]}`, b64("\x00a"), b64("\x01b"), b64("\x02c")))
	if code != 200 {
		t.Fatalf("REST: %d %s", code, body)
	}
	var rest struct {
		Predictions []struct {
			Scores   []float32 `json:"scores"`
			Classes  string    `json:"classes"`
			ClassIDs int64     `json:"class_ids"`
		} `json:"predictions"`
	}
	if err := json.Unmarshal([]byte(body), &rest); err != nil {
		t.Fatal(err)
	}
	out := resp.GetOutputs()
	if got := resp.GetModelSpec(); got.GetName() != "flowers" || got.GetVersion().GetValue() != 2 || got.GetSignatureName() != "serving_default" {
		t.Errorf("model_spec %v, want flowers version 2 serving_default", got)
	}
	sc := out["scores"]
	if d := sc.GetTensorShape().GetDim(); len(d) != 2 || d[0].GetSize() != 3 || d[1].GetSize() != 3 || sc.GetDtype() != typespb.DataType_DT_FLOAT {
		t.Fatalf("scores tensor %v", sc)
	}
	for i, p := range rest.Predictions {
		for k, want := range p.Scores {
			if got := sc.GetFloatVal()[i*3+k]; got != want {
				t.Errorf("image %d score %d: gRPC %v, REST %v", i, k, got, want)
			}
		}
		if got := string(out["classes"].GetStringVal()[i]); got != p.Classes {
			t.Errorf("image %d class: gRPC %q, REST %q", i, got, p.Classes)
		}
		if got := out["class_ids"].GetInt64Val()[i]; got != p.ClassIDs {
			t.Errorf("image %d class id: gRPC %d, REST %d", i, got, p.ClassIDs)
		}
	}

	// A specific version, and pixels through predict_images (float_val and
	// tensor_content alike), with an output filter.
	px := &tensorpb.TensorProto{Dtype: typespb.DataType_DT_FLOAT, FloatVal: make([]float32, 12),
		TensorShape: &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: 1}, {Size: 2}, {Size: 2}, {Size: 3}}}}
	px.FloatVal[0] = 1
	ms := spec("flowers", 2, "")
	ms.SignatureName = "predict_images"
	resp, err = client.Predict(ctx, &tfs.PredictRequest{ModelSpec: ms, OutputFilter: []string{"classes"},
		Inputs: map[string]*tensorpb.TensorProto{"images": px}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetModelSpec(); got.GetVersion().GetValue() != 2 || got.GetSignatureName() != "predict_images" {
		t.Errorf("model_spec %v, want version 2 predict_images", got)
	}
	if len(resp.GetOutputs()) != 1 || string(resp.GetOutputs()["classes"].GetStringVal()[0]) != "roses" {
		t.Errorf("outputs %v, want only classes = roses", resp.GetOutputs())
	}
	content := make([]byte, 48)
	content[0], content[1], content[2], content[3] = 0, 0, 0x80, 0x3f // 1.0f little-endian
	px.FloatVal, px.TensorContent = nil, content
	resp, err = client.Predict(ctx, &tfs.PredictRequest{ModelSpec: ms, Inputs: map[string]*tensorpb.TensorProto{"images": px}})
	if err != nil || string(resp.GetOutputs()["classes"].GetStringVal()[0]) != "roses" {
		t.Errorf("tensor_content: %v %v", resp.GetOutputs()["classes"], err)
	}
	if err := stop(); err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestGRPCErrors(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxInstances = 4
	cfg.QueueSize = 4
	cfg.MaxBodyBytes = 64 << 10
	s, err := New(cfg, newFakeLoader(nil).load)
	if err != nil {
		t.Fatal(err)
	}
	_, conn, _ := grpcServer(t, s)
	client := tfs.NewPredictionServiceClient(conn)
	models := tfs.NewModelServiceClient(conn)
	ctx := context.Background()
	in := func(ts ...string) map[string]*tensorpb.TensorProto {
		return map[string]*tensorpb.TensorProto{"image_bytes": stringTensor(ts...)}
	}
	predict := func(ms *tfs.ModelSpec, inputs map[string]*tensorpb.TensorProto) error {
		_, err := client.Predict(ctx, &tfs.PredictRequest{ModelSpec: ms, Inputs: inputs})
		return err
	}
	floats := &tensorpb.TensorProto{Dtype: typespb.DataType_DT_FLOAT, FloatVal: []float32{1},
		TensorShape: &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: 1}}}}
	cases := []struct {
		what string
		err  error
		code codes.Code
		msg  string
	}{
		{"no model spec", predict(nil, in("\x00")), codes.InvalidArgument, "Missing ModelSpec"},
		{"unknown model", predict(spec("tulips", 0, ""), in("\x00")), codes.NotFound, "Servable not found for request: Latest(tulips)"},
		{"unknown version", predict(spec("flowers", 7, ""), in("\x00")), codes.NotFound, "Servable not found for request: Specific(flowers, 7)"},
		{"unknown label", predict(spec("flowers", 0, "canary"), in("\x00")), codes.InvalidArgument, "Unrecognized servable version label: canary"},
		{"unknown signature", predict(&tfs.ModelSpec{Name: "flowers", SignatureName: "nope"}, in("\x00")), codes.FailedPrecondition, `Serving signature key "nope" not found.`},
		{"wrong input", predict(spec("flowers", 0, ""), map[string]*tensorpb.TensorProto{"images": stringTensor("\x00")}), codes.InvalidArgument, "input tensor alias not found in signature: images"},
		{"extra input", predict(spec("flowers", 0, ""), map[string]*tensorpb.TensorProto{"image_bytes": stringTensor("\x00"), "x": stringTensor("\x00")}), codes.InvalidArgument, "input size does not match signature: 2!=1 len({image_bytes,x}) != len({image_bytes}). Sent extra: {x}. Missing but required: {}."},
		{"wrong dtype", predict(spec("flowers", 0, ""), map[string]*tensorpb.TensorProto{"image_bytes": floats}), codes.InvalidArgument, "Expects arg[0] to be string but float is provided"},
		{"bad image", predict(spec("flowers", 0, ""), in("\x00", "bad")), codes.InvalidArgument, "instance 1: cannot decode image"},
		{"too many", predict(spec("flowers", 0, ""), in("1", "2", "3", "4", "5")), codes.InvalidArgument, "too many instances: 5, the limit is 4"},
		{"too large", predict(spec("flowers", 0, ""), in(strings.Repeat("x", 70<<10))), codes.ResourceExhausted, "larger than max"},
	}
	for _, c := range cases {
		wantCode(t, c.what, c.err, c.code, c.msg)
	}
	_, err = client.Classify(ctx, &tfs.ClassificationRequest{ModelSpec: spec("flowers", 0, "")})
	wantCode(t, "classify", err, codes.InvalidArgument, "Expected classification signature method_name to be tensorflow/serving/classify. Was: tensorflow/serving/predict")
	_, err = client.Regress(ctx, &tfs.RegressionRequest{ModelSpec: spec("tulips", 0, "")})
	wantCode(t, "regress unknown model", err, codes.NotFound, "Servable not found")
	_, err = client.Regress(ctx, &tfs.RegressionRequest{ModelSpec: &tfs.ModelSpec{Name: "flowers", SignatureName: "nope"}})
	wantCode(t, "regress unknown signature", err, codes.InvalidArgument, "No signature was found with the name: nope")
	_, err = client.GetModelMetadata(ctx, &tfs.GetModelMetadataRequest{ModelSpec: spec("flowers", 0, "")})
	wantCode(t, "metadata without fields", err, codes.InvalidArgument, "must specify at least one metadata_field")
	_, err = models.GetModelStatus(ctx, &tfs.GetModelStatusRequest{ModelSpec: spec("flowers", 3, "")})
	wantCode(t, "status of unknown version", err, codes.NotFound, "Could not find version 3 of model flowers")
	_, err = models.GetModelStatus(ctx, &tfs.GetModelStatusRequest{ModelSpec: spec("tulips", 0, "")})
	wantCode(t, "status of unknown model", err, codes.NotFound, "Could not find any versions of model tulips")

}

// TestGRPCOverloadAndDrain: one request holds the model, a second fills the
// queue, a third does not fit and is refused at once with RESOURCE_EXHAUSTED;
// a shutdown then lets both in-flight requests finish before serve returns.
func TestGRPCOverloadAndDrain(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxInstances = 4
	cfg.QueueSize = 4
	block := make(chan struct{})
	fake := newFake(1)
	fake.block = block
	fake.entered = make(chan struct{}, 1)
	s, err := New(cfg, newFakeLoader(func(int64) (*fakeModel, error) { return fake, nil }).load)
	if err != nil {
		t.Fatal(err)
	}
	_, conn, stop := grpcServer(t, s)
	client := tfs.NewPredictionServiceClient(conn)
	predict := func(ts ...string) error {
		_, err := client.Predict(context.Background(), &tfs.PredictRequest{ModelSpec: spec("flowers", 0, ""),
			Inputs: map[string]*tensorpb.TensorProto{"image_bytes": stringTensor(ts...)}})
		return err
	}
	errs := make(chan error, 2)
	go func() { errs <- predict("\x00") }()
	<-fake.entered
	go func() { errs <- predict("1", "2", "3", "4") }()
	eventually(t, 5*time.Second, "queue full", func() bool { return s.queue.waiting.Load() == 4 })
	wantCode(t, "overloaded", predict("\x00"), codes.ResourceExhausted, "server overloaded")
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(100 * time.Millisecond) // let the shutdown begin while both wait
	close(block)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("request in flight during shutdown: %v", err)
		}
	}
	if err := <-stopped; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestGRPCMetadataAndStatus(t *testing.T) {
	cfg := testConfig(t)
	s, err := New(cfg, newFakeLoader(nil).load)
	if err != nil {
		t.Fatal(err)
	}
	_, conn, _ := grpcServer(t, s)
	ctx := context.Background()
	md, err := tfs.NewPredictionServiceClient(conn).GetModelMetadata(ctx, &tfs.GetModelMetadataRequest{
		ModelSpec: spec("flowers", 0, ""), MetadataField: []string{"signature_def"}})
	if err != nil {
		t.Fatal(err)
	}
	var defs tfs.SignatureDefMap
	if err := md.GetMetadata()["signature_def"].UnmarshalTo(&defs); err != nil {
		t.Fatal(err)
	}
	if got := defs.GetSignatureDef()["serving_default"].GetInputs()["image_bytes"].GetName(); got != "image_bytes/Placeholder:0" {
		t.Errorf("image_bytes tensor %q, want the stored image_bytes/Placeholder:0", got)
	}
	if md.GetModelSpec().GetVersion().GetValue() != 1 {
		t.Errorf("model spec %v", md.GetModelSpec())
	}
	st, err := tfs.NewModelServiceClient(conn).GetModelStatus(ctx, &tfs.GetModelStatusRequest{ModelSpec: spec("flowers", 0, "")})
	if err != nil {
		t.Fatal(err)
	}
	if vs := st.GetModelVersionStatus(); len(vs) != 1 || vs[0].GetVersion() != 1 || vs[0].GetState() != tfs.ModelVersionStatus_AVAILABLE {
		t.Errorf("status %v", vs)
	}
}
