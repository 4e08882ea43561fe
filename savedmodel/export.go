package savedmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
	"github.com/tfflowers/tfflowers/tfops"
)

// ErrVersionExists is returned when the export version directory already exists.
var ErrVersionExists = errors.New("export version exists")

// Signature names and keys of exports, as TF Serving clients use them.
const (
	SignatureDefault = "serving_default"
	SignatureImages  = "predict_images"
	PredictMethod    = "tensorflow/serving/predict"
	ExportMetaPath   = "assets.extra/tfflowers_export.json"
)

// ExportOptions describes one export.
type ExportOptions struct {
	ModelBasePath string // BASE_DIR; the model goes to BASE_DIR/<version>
	Version       int64  // 0: one more than the highest existing version
	Force         bool   // replace an existing version directory
	Base          *Base  // the base the model was trained on
	Head          string
	ImageSize     int
	Labels        []string
	// Checkpoint is the training checkpoint prefix and the variables it holds (head, and
	// backbone variables that were fine-tuned); every other backbone weight comes from Base.
	Checkpoint     string
	CheckpointVars []string
	Info           map[string]any // recorded in assets.extra/tfflowers_export.json
	// Warmup holds a few encoded images written as TF Serving warm-up requests
	// (assets.extra/tf_serving_warmup_requests); none: no warm-up file.
	Warmup [][]byte
}

// ExportInfo is assets.extra/tfflowers_export.json.
type ExportInfo struct {
	Format    string         `json:"format"`
	Version   int64          `json:"version"`
	Labels    []string       `json:"labels"`
	ImageSize int            `json:"image_size"`
	Head      string         `json:"head"`
	TFVersion string         `json:"tensorflow_version"`
	Info      map[string]any `json:"info,omitempty"`
}

// Export writes a self-contained SavedModel for TensorFlow Serving into
// ModelBasePath/<version>: in-graph decoding, the backbone and the trained head, all
// weights in variables/, signatures serving_default (image_bytes) and predict_images.
// The version directory appears atomically (built in a hidden temp dir beside it, fsynced,
// renamed), so a server polling ModelBasePath never sees a partial model.
func Export(o ExportOptions) (dir string, version int64, err error) {
	if o.Base == nil {
		return "", 0, fmt.Errorf("savedmodel: export: no base model")
	}
	if err := os.MkdirAll(o.ModelBasePath, 0o755); err != nil {
		return "", 0, fmt.Errorf("savedmodel: export to %s: %w", o.ModelBasePath, err)
	}
	if version, err = pickVersion(o.ModelBasePath, o.Version, o.Force); err != nil {
		return "", 0, err
	}
	final := filepath.Join(o.ModelBasePath, strconv.FormatInt(version, 10))

	baseDef, err := o.Base.graphDef()
	if err != nil {
		return "", 0, err
	}
	varNames := make([]string, len(o.Base.Meta.Variables))
	for i, v := range o.Base.Meta.Variables {
		varNames[i] = v.Name
	}
	sg, err := tfops.BuildServingGraph(tfops.ServingSpec{
		BaseGraphDef: baseDef, BaseInput: o.Base.Meta.InputTensor, BaseFeatures: o.Base.Meta.FeatureTensor,
		BaseVariables: varNames, ImageSize: o.ImageSize, Head: o.Head, Labels: o.Labels,
	})
	if err != nil {
		return "", 0, fmt.Errorf("savedmodel: export: %w", err)
	}
	sess, err := tfops.NewSession(sg.Graph, tfops.SessionConfig{CPUOnly: true})
	if err != nil {
		return "", 0, err
	}
	defer sess.Close()
	if err := sg.RestoreSubset(sess, filepath.Join(o.Base.Dir, "variables", "variables"), varNames); err != nil {
		return "", 0, fmt.Errorf("savedmodel: export: base weights: %w", err)
	}
	if err := sg.RestoreSubset(sess, o.Checkpoint, o.CheckpointVars); err != nil {
		return "", 0, fmt.Errorf("savedmodel: export: trained weights: %w", err)
	}
	graphDef, err := sg.GraphDef()
	if err != nil {
		return "", 0, err
	}

	tmp, err := os.MkdirTemp(o.ModelBasePath, ".tmp-export-")
	if err != nil {
		return "", 0, fmt.Errorf("savedmodel: export: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := sg.Save(sess, filepath.Join(tmp, "variables", "variables")); err != nil {
		return "", 0, fmt.Errorf("savedmodel: export: %w", err)
	}
	smBytes, err := savedModelProto(sg, graphDef, o)
	if err != nil {
		return "", 0, err
	}
	info, _ := json.MarshalIndent(ExportInfo{Format: "tfflowers-export", Version: version, Labels: o.Labels, ImageSize: o.ImageSize,
		Head: o.Head, TFVersion: tfops.Version(), Info: o.Info}, "", "  ")
	files := map[string][]byte{
		"saved_model.pb":    smBytes,
		"assets/labels.txt": []byte(strings.Join(o.Labels, "\n") + "\n"),
		ExportMetaPath:      append(info, '\n'),
	}
	if len(o.Warmup) > 0 {
		w, err := warmupRequests(filepath.Base(filepath.Clean(o.ModelBasePath)), o.Warmup)
		if err != nil {
			return "", 0, err
		}
		files[WarmupPath] = w
	}
	for name, data := range files {
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", 0, err
		}
		if err := atomicfile.WriteFile(p, data, 0o644); err != nil {
			return "", 0, fmt.Errorf("savedmodel: export: %w", err)
		}
	}
	// MkdirTemp makes 0700 dirs; a serving process running as another user must read it.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", 0, fmt.Errorf("savedmodel: export: %w", err)
	}
	if err := atomicfile.SyncTree(tmp); err != nil {
		return "", 0, fmt.Errorf("savedmodel: export: %w", err)
	}
	if _, err := os.Stat(final); err == nil {
		old := tmp + "-old"
		if err := os.Rename(final, old); err != nil {
			return "", 0, fmt.Errorf("savedmodel: export: replace %s: %w", final, err)
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", 0, fmt.Errorf("savedmodel: export: %w", err)
	}
	if err := atomicfile.SyncDir(o.ModelBasePath); err != nil {
		return "", 0, fmt.Errorf("savedmodel: export: %w", err)
	}
	return final, version, nil
}

// Versions lists the integer version directories in a model base path, ascending.
// Hidden directories (in-progress exports) and other names are ignored.
func Versions(base string) ([]int64, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if v, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && v > 0 {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func pickVersion(base string, want int64, force bool) (int64, error) {
	existing, err := Versions(base)
	if err != nil {
		return 0, fmt.Errorf("savedmodel: export to %s: %w", base, err)
	}
	if want < 0 {
		return 0, fmt.Errorf("savedmodel: export: --version %d must be positive", want)
	}
	if want == 0 {
		if len(existing) == 0 {
			return 1, nil
		}
		return existing[len(existing)-1] + 1, nil
	}
	for _, v := range existing {
		if v == want && !force {
			return 0, fmt.Errorf("savedmodel: export: %w: %s/%d already exists; pick another --version or pass --force", ErrVersionExists, base, want)
		}
	}
	return want, nil
}

func savedModelProto(sg *tfops.ServingGraph, graphDef []byte, o ExportOptions) ([]byte, error) {
	mg := &pb.MetaGraphDef{MetaInfoDef: &pb.MetaGraphDef_MetaInfoDef{Tags: []string{ServeTag}, TensorflowVersion: tfops.Version(),
		MetaGraphVersion: "tfflowers"}}
	if err := proto.Unmarshal(graphDef, mgGraph(mg)); err != nil {
		return nil, fmt.Errorf("savedmodel: export: %w", err)
	}
	filename, save, restore := sg.SaverDef()
	mg.SaverDef = &pb.SaverDef{FilenameTensorName: filename, SaveTensorName: save, RestoreOpName: restore, MaxToKeep: 5,
		KeepCheckpointEveryNHours: 10000, Version: pb.SaverDef_V2}
	n := int64(len(o.Labels))
	s := int64(o.ImageSize)
	outputs := map[string]*pb.TensorInfo{
		"scores":    tensorInfo(tfops.TensorName(sg.Scores), typespb.DataType_DT_FLOAT, -1, n),
		"classes":   tensorInfo(tfops.TensorName(sg.Classes), typespb.DataType_DT_STRING, -1),
		"class_ids": tensorInfo(tfops.TensorName(sg.ClassIDs), typespb.DataType_DT_INT64, -1),
	}
	mg.SignatureDef = map[string]*pb.SignatureDef{
		SignatureDefault: {MethodName: PredictMethod, Outputs: outputs,
			Inputs: map[string]*pb.TensorInfo{"image_bytes": tensorInfo(tfops.TensorName(sg.ImageBytes), typespb.DataType_DT_STRING, -1)}},
		SignatureImages: {MethodName: PredictMethod, Outputs: outputs,
			Inputs: map[string]*pb.TensorInfo{"images": tensorInfo(tfops.TensorName(sg.Images), typespb.DataType_DT_FLOAT, -1, s, s, 3)}},
	}
	b, err := proto.Marshal(&pb.SavedModel{SavedModelSchemaVersion: 1, MetaGraphs: []*pb.MetaGraphDef{mg}})
	if err != nil {
		return nil, fmt.Errorf("savedmodel: export: encode saved_model.pb: %w", err)
	}
	return b, nil
}

func tensorInfo(name string, dt typespb.DataType, dims ...int64) *pb.TensorInfo {
	shape := &shapepb.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
	}
	return &pb.TensorInfo{Encoding: &pb.TensorInfo_Name{Name: name}, Dtype: dt, TensorShape: shape}
}
