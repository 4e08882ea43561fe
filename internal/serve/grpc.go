package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	tfs "github.com/tfflowers/tfflowers/internal/tfservingpb"
)

// TF Serving's method names of SignatureDefs besides contract.PredictMethod.
const (
	methodClassify = "tensorflow/serving/classify"
	methodRegress  = "tensorflow/serving/regress"
)

// grpcService answers TF Serving's gRPC API (tensorflow.serving.PredictionService
// and ModelService) from the same registry, batchers and queue as the REST API,
// with TF Serving's status codes and messages.
type grpcService struct {
	tfs.UnimplementedPredictionServiceServer
	tfs.UnimplementedModelServiceServer
	s *Server
}

// newGRPCServer builds the gRPC server. A message over MaxBodyBytes is refused by
// grpc-go itself with RESOURCE_EXHAUSTED before it is read into memory, the REST
// body limit's counterpart (TF Serving allows 2 GiB).
func (s *Server) newGRPCServer() *grpc.Server {
	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(int(min(s.cfg.MaxBodyBytes, 1<<31-1))),
		grpc.ChainUnaryInterceptor(s.grpcInterceptor),
	)
	svc := &grpcService{s: s}
	tfs.RegisterPredictionServiceServer(g, svc)
	tfs.RegisterModelServiceServer(g, svc)
	return g
}

// grpcInterceptor logs each call, turns a handler panic into INTERNAL (the
// server keeps serving) and maps the errors handlers return to gRPC statuses.
func (s *Server) grpcInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("gRPC handler panicked", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			resp, err = nil, status.Errorf(codes.Internal, "internal server error: %v", p)
		}
		code := status.Code(err)
		level := slog.LevelDebug
		if code == codes.Internal || code == codes.Unknown || code == codes.Unavailable {
			level = slog.LevelWarn
		}
		s.log.Log(ctx, level, "gRPC request", "method", info.FullMethod, "code", code.String(), "duration", time.Since(start))
	}()
	resp, err = h(ctx, req)
	if err != nil {
		err = grpcError(ctx, err)
	}
	return resp, err
}

// grpcError maps the errors shared with the REST API to gRPC codes: each
// httpError's HTTP status has its TF Serving counterpart, except where the
// error names its gRPC code itself (overload is RESOURCE_EXHAUSTED, not 503's
// UNAVAILABLE, so that clients back off rather than retry at once).
func grpcError(ctx context.Context, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, errClientGone) || ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	var he *httpError
	if !errors.As(err, &he) {
		return status.Error(codes.Internal, err.Error())
	}
	if he.grpc != codes.OK {
		return status.Error(he.grpc, he.msg)
	}
	code := codes.Internal
	switch he.code {
	case 400:
		code = codes.InvalidArgument
	case 404:
		code = codes.NotFound
	case 408:
		code = codes.DeadlineExceeded
	case 413:
		code = codes.ResourceExhausted
	case 503:
		code = codes.Unavailable
	}
	return status.Error(code, he.msg)
}

// invalid and failedPrecondition are TF Serving's INVALID_ARGUMENT and
// FAILED_PRECONDITION, which its REST API answers with 400.
func invalid(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, grpc: codes.InvalidArgument, msg: fmt.Sprintf(format, args...)}
}

func failedPrecondition(format string, args ...any) error {
	return &httpError{code: http.StatusBadRequest, grpc: codes.FailedPrecondition, msg: fmt.Sprintf(format, args...)}
}

// specOf reads a ModelSpec as TF Serving's ServerCore does.
func specOf(ms *tfs.ModelSpec) (string, versionSpec, error) {
	if ms == nil {
		return "", versionSpec{}, invalid("Missing ModelSpec")
	}
	if ms.GetName() == "" {
		return "", versionSpec{}, invalid("ModelSpec has no name specified.")
	}
	var spec versionSpec
	switch vc := ms.GetVersionChoice().(type) {
	case *tfs.ModelSpec_Version:
		spec = versionSpec{num: vc.Version.GetValue(), specific: true}
	case *tfs.ModelSpec_VersionLabel:
		spec = versionSpec{label: vc.VersionLabel}
	}
	return ms.GetName(), spec, nil
}

func responseSpec(name string, v *version, signature string) *tfs.ModelSpec {
	return &tfs.ModelSpec{
		Name:          name,
		VersionChoice: &tfs.ModelSpec_Version{Version: wrapperspb.Int64(v.num)},
		SignatureName: signature,
	}
}

// Predict answers PredictionService.Predict for both signatures.
func (g *grpcService) Predict(ctx context.Context, r *tfs.PredictRequest) (*tfs.PredictResponse, error) {
	s := g.s
	name, spec, err := specOf(r.GetModelSpec())
	if err != nil {
		return nil, err
	}
	v, err := s.acquire(name, spec)
	if err != nil {
		return nil, err
	}
	defer s.release(v)
	req, err := predictRequestFromProto(r, v.imageSize, s.cfg.MaxInstances)
	if err != nil {
		return nil, err
	}
	outs, err := outputFilter(r.GetOutputFilter())
	if err != nil {
		return nil, err
	}
	if err := s.inspect(req); err != nil {
		return nil, err
	}
	results, err := v.predict(ctx, req)
	if err != nil {
		return nil, s.predictError(ctx, err)
	}
	for i, res := range results {
		if res.err != nil {
			return nil, invalid("instance %d: %v", i, res.err)
		}
	}
	return &tfs.PredictResponse{
		ModelSpec: responseSpec(name, v, req.signature),
		Outputs:   outputTensors(results, len(v.labels), outs),
	}, nil
}

// outputFilter checks PredictRequest.output_filter as TF Serving's
// PreProcessPrediction does; empty means every output.
func outputFilter(filter []string) ([]string, error) {
	all := []string{outputScores, outputClasses, outputClassIDs}
	if len(filter) == 0 {
		return all, nil
	}
	seen := map[string]bool{}
	for _, alias := range filter {
		if !slices.Contains(all, alias) {
			sorted := slices.Clone(all)
			slices.Sort(sorted)
			return nil, invalid("output tensor alias not found in signature: %s Outputs expected to be in the set {%s}.", alias, strings.Join(sorted, ","))
		}
		if seen[alias] {
			return nil, invalid("duplicate output tensor alias: %s", alias)
		}
		seen[alias] = true
	}
	return filter, nil
}

// GetModelMetadata answers with the SignatureDefs stored in the loaded export.
func (g *grpcService) GetModelMetadata(_ context.Context, r *tfs.GetModelMetadataRequest) (*tfs.GetModelMetadataResponse, error) {
	if r.GetModelSpec() == nil {
		return nil, invalid("Missing ModelSpec")
	}
	if len(r.GetMetadataField()) == 0 {
		return nil, invalid("GetModelMetadataRequest must specify at least one metadata_field")
	}
	for _, f := range r.GetMetadataField() {
		if f != "signature_def" {
			return nil, invalid("Metadata field %s is not supported", f)
		}
	}
	name, spec, err := specOf(r.GetModelSpec())
	if err != nil {
		return nil, err
	}
	v, err := g.s.acquire(name, spec)
	if err != nil {
		return nil, err
	}
	defer g.s.release(v)
	packed, err := anypb.New(&tfs.SignatureDefMap{SignatureDef: v.signatures})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "pack signature defs: %v", err)
	}
	return &tfs.GetModelMetadataResponse{
		ModelSpec: &tfs.ModelSpec{Name: name, VersionChoice: &tfs.ModelSpec_Version{Version: wrapperspb.Int64(v.num)}},
		Metadata:  map[string]*anypb.Any{"signature_def": packed},
	}, nil
}

// GetModelStatus answers ModelService.GetModelStatus like the REST status
// endpoint. As in TF Serving, a version_label is ignored (all versions).
func (g *grpcService) GetModelStatus(_ context.Context, r *tfs.GetModelStatusRequest) (*tfs.GetModelStatusResponse, error) {
	ms := r.GetModelSpec()
	if ms == nil {
		return nil, invalid("Missing ModelSpec")
	}
	spec := versionSpec{}
	if v, ok := ms.GetVersionChoice().(*tfs.ModelSpec_Version); ok {
		spec = versionSpec{num: v.Version.GetValue(), specific: true}
	}
	states, err := g.s.versionStates(ms.GetName(), spec)
	if err != nil {
		return nil, err
	}
	out := &tfs.GetModelStatusResponse{}
	for _, st := range states {
		out.ModelVersionStatus = append(out.ModelVersionStatus, &tfs.ModelVersionStatus{
			Version: st.num,
			State:   tfs.ModelVersionStatus_State(tfs.ModelVersionStatus_State_value[st.state]),
			Status:  &tfs.StatusProto{},
		})
	}
	return out, nil
}

// Classify answers as TF Serving does for a model whose signatures are all
// predict signatures: the servable is looked up first (NOT_FOUND), then the
// signature's method is checked (INVALID_ARGUMENT).
func (g *grpcService) Classify(_ context.Context, r *tfs.ClassificationRequest) (*tfs.ClassificationResponse, error) {
	return nil, g.wrongMethod(r.GetModelSpec(), "classification", methodClassify)
}

// Regress: see Classify.
func (g *grpcService) Regress(_ context.Context, r *tfs.RegressionRequest) (*tfs.RegressionResponse, error) {
	return nil, g.wrongMethod(r.GetModelSpec(), "regression", methodRegress)
}

// MultiInference runs classify and regress tasks only, so it fails like them.
func (g *grpcService) MultiInference(_ context.Context, r *tfs.MultiInferenceRequest) (*tfs.MultiInferenceResponse, error) {
	if len(r.GetTasks()) == 0 {
		return nil, invalid("Expected at least one task")
	}
	t := r.GetTasks()[0]
	switch t.GetMethodName() {
	case methodClassify:
		return nil, g.wrongMethod(t.GetModelSpec(), "classification", methodClassify)
	case methodRegress:
		return nil, g.wrongMethod(t.GetModelSpec(), "regression", methodRegress)
	}
	if _, _, err := g.lookup(t.GetModelSpec()); err != nil {
		return nil, err
	}
	return nil, invalid("Unrecognized signature method_name: %s", t.GetMethodName())
}

func (g *grpcService) lookup(ms *tfs.ModelSpec) (*version, string, error) {
	name, spec, err := specOf(ms)
	if err != nil {
		return nil, "", err
	}
	v, err := g.s.acquire(name, spec)
	if err != nil {
		return nil, "", err
	}
	return v, name, nil
}

func (g *grpcService) wrongMethod(ms *tfs.ModelSpec, kind, want string) error {
	name, spec, err := specOf(ms)
	if err != nil {
		return err
	}
	return g.s.wrongMethod(name, spec, ms.GetSignatureName(), kind, want)
}

// wrongMethod is TF Serving's answer to a classify or regress call on a
// predict signature: NOT_FOUND for an unknown servable, else INVALID_ARGUMENT.
func (s *Server) wrongMethod(name string, spec versionSpec, sig, kind, want string) error {
	v, err := s.acquire(name, spec)
	if err != nil {
		return err
	}
	defer s.release(v)
	if sig == "" {
		sig = sigBytes
	}
	def, ok := v.signatures[sig]
	if !ok {
		return invalid("No signature was found with the name: %s", sig)
	}
	return invalid("Expected %s signature method_name to be %s. Was: %s", kind, want, def.GetMethodName())
}

// signatureDefs returns the SignatureDefs stored in the model, which
// metadata answers with as TF Serving does; both signatures must be there.
func signatureDefs(m Model) (map[string]*pb.SignatureDef, error) {
	defs, err := m.SignatureDefs()
	if err != nil {
		return nil, fmt.Errorf("read signature defs: %w", err)
	}
	for _, sig := range []string{sigBytes, sigPixels} {
		if defs[sig] == nil {
			return nil, fmt.Errorf("model has no %q signature", sig)
		}
	}
	return defs, nil
}
