package savedmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/tfflowers/tfflowers/internal/atomicfile"
	"github.com/tfflowers/tfflowers/internal/contract"
	"github.com/tfflowers/tfflowers/tfops"
)

// ErrVersionExists is returned when the export version directory already exists.
var ErrVersionExists = errors.New("export version exists")

// ExportOptions describes one export.
type ExportOptions struct {
	ModelBasePath string // BASE_DIR; the model goes to BASE_DIR/<version>
	Version       int64  // 0: one more than the highest existing version
	Force         bool   // replace an existing version directory
	Base          *Base  // the base the model was trained on
	Head          string
	ImageSize     int
	Resize        string // tfops.ResizeSquash or ResizeCrop, as the run trained
	Labels        []string
	TTA           string // tfops.TTANone (or "") or TTAFlip, as the run evaluated
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
	Format    string   `json:"format"`
	Version   int64    `json:"version"`
	Labels    []string `json:"labels"`
	ImageSize int      `json:"image_size"`
	Resize    string   `json:"resize"`
	Head      string   `json:"head"`
	TTA       string   `json:"tta,omitempty"` // test-time augmentation built into the graph
	// HeadLayers are the backbone layers whose pooled activations the head reads.
	HeadLayers []string       `json:"head_layers"`
	TFVersion  string         `json:"tensorflow_version"`
	Info       map[string]any `json:"info,omitempty"`
}

// Export writes a self-contained SavedModel for TensorFlow Serving into
// ModelBasePath/<version>: in-graph decoding, the backbone and the trained head, all
// weights in variables/, signatures serving_default (image_bytes) and predict_images.
// The version directory appears atomically (built in a hidden temp dir beside it, fsynced,
// renamed), so a server polling ModelBasePath never sees a partial model. The rename
// claims the version: of two exports racing for one number, one gets it and the other
// takes the next free number (no Version given) or fails with ErrVersionExists.
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
	tmp, err := os.MkdirTemp(o.ModelBasePath, ".tmp-export-")
	if err != nil {
		return "", 0, fmt.Errorf("savedmodel: export: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := writeModel(tmp, o); err != nil {
		return "", 0, err
	}
	if err := writeInfo(tmp, o, version); err != nil {
		return "", 0, err
	}
	// MkdirTemp makes 0700 dirs; a serving process running as another user must read it.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", 0, fmt.Errorf("savedmodel: export: %w", err)
	}
	if err := atomicfile.SyncTree(tmp); err != nil {
		return "", 0, fmt.Errorf("savedmodel: export: %w", err)
	}
	if err := WriteServingConfig(o.ModelBasePath); err != nil {
		return "", 0, err
	}
	return placeVersion(tmp, o, version)
}

// writeModel builds the serving graph, restores base and trained weights and writes
// saved_model.pb, variables/, labels and the warm-up requests into dir.
func writeModel(dir string, o ExportOptions) error {
	sg, baseVars, err := servingGraph(o)
	if err != nil {
		return err
	}
	sess, err := tfops.NewSession(sg.Graph, tfops.SessionConfig{CPUOnly: true})
	if err != nil {
		return err
	}
	defer sess.Close()
	if err := sg.RestoreSubset(sess, filepath.Join(o.Base.Dir, contract.VariablesDir, "variables"), baseVars); err != nil {
		return fmt.Errorf("savedmodel: export: base weights: %w", err)
	}
	if err := sg.RestoreSubset(sess, o.Checkpoint, o.CheckpointVars); err != nil {
		return fmt.Errorf("savedmodel: export: trained weights: %w", err)
	}
	graphDef, err := sg.GraphDef()
	if err != nil {
		return err
	}
	if err := sg.Save(sess, filepath.Join(dir, contract.VariablesDir, "variables")); err != nil {
		return fmt.Errorf("savedmodel: export: %w", err)
	}
	return writeAssets(dir, sg, graphDef, o)
}

// servingGraph builds the serving graph of o's head over the base's graph, and returns
// it with the names of the base variables it holds.
func servingGraph(o ExportOptions) (*tfops.ServingGraph, []string, error) {
	varNames := make([]string, len(o.Base.Meta.Variables))
	for i, v := range o.Base.Meta.Variables {
		varNames[i] = v.Name
	}
	layers, err := tfops.HeadLayers(o.Head)
	if err != nil {
		return nil, nil, fmt.Errorf("savedmodel: export: %w", err)
	}
	tensors := make([]string, len(layers))
	for i, l := range layers {
		if tensors[i], err = o.Base.LayerTensor(l); err != nil {
			return nil, nil, err
		}
	}
	baseDef, err := o.Base.graphDef(tensors...)
	if err != nil {
		return nil, nil, err
	}
	sg, err := tfops.BuildServingGraph(tfops.ServingSpec{
		BaseGraphDef: baseDef, BaseInput: o.Base.Meta.InputTensor, BaseFeatures: o.Base.Meta.FeatureTensor,
		BaseVariables: varNames, HeadLayers: tensors, ImageSize: o.ImageSize, Resize: o.Resize, Head: o.Head, Labels: o.Labels, TTA: o.TTA,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("savedmodel: export: %w", err)
	}
	return sg, varNames, nil
}

// writeAssets writes saved_model.pb, the labels and the warm-up requests into dir.
func writeAssets(dir string, sg *tfops.ServingGraph, graphDef []byte, o ExportOptions) error {
	smBytes, err := savedModelProto(sg, graphDef, o)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		contract.SavedModelFile: smBytes,
		contract.LabelsAsset:    []byte(strings.Join(o.Labels, "\n") + "\n"),
	}
	if len(o.Warmup) > 0 {
		w, err := warmupRequests(filepath.Base(filepath.Clean(o.ModelBasePath)), o.Warmup)
		if err != nil {
			return err
		}
		files[contract.WarmupPath] = w
	}
	for name, data := range files {
		if err := writeAsset(dir, name, data); err != nil {
			return err
		}
	}
	return nil
}

func writeAsset(dir, name string, data []byte) error {
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("savedmodel: export: %w", err)
	}
	if err := atomicfile.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("savedmodel: export: %w", err)
	}
	return nil
}

// writeInfo writes assets.extra/tfflowers_export.json, which records the version number.
func writeInfo(dir string, o ExportOptions, version int64) error {
	layers, _ := tfops.HeadLayers(o.Head) // writeModel has refused an unknown head
	info, err := json.MarshalIndent(ExportInfo{Format: "tfflowers-export", Version: version, Labels: o.Labels, ImageSize: o.ImageSize,
		Resize: o.Resize, Head: o.Head, TTA: o.TTA, HeadLayers: layers, TFVersion: tfops.Version(), Info: o.Info}, "", "  ")
	if err != nil {
		return fmt.Errorf("savedmodel: export: encode %s: %w", contract.ExportMetaPath, err)
	}
	return writeAsset(dir, contract.ExportMetaPath, append(info, '\n'))
}

// maxClaimTries bounds how many taken numbers an export without --version skips.
const maxClaimTries = 1000

// placeVersion renames the finished tmp to BASE/<version>. With Force it replaces an
// existing version (the old one is put back if that fails). Otherwise the rename
// refuses to replace: a version another export claimed meanwhile is never overwritten.
func placeVersion(tmp string, o ExportOptions, version int64) (string, int64, error) {
	for try := 0; ; try++ {
		final := contract.VersionDir(o.ModelBasePath, version)
		if o.Force {
			if err := atomicfile.ReplaceDir(tmp, final); err != nil {
				return "", 0, fmt.Errorf("savedmodel: export: %w", err)
			}
			return final, version, nil
		}
		err := atomicfile.RenameDirNoReplace(tmp, final)
		switch {
		case err == nil:
			return final, version, nil
		case !errors.Is(err, fs.ErrExist):
			return "", 0, fmt.Errorf("savedmodel: export: %w", err)
		case o.Version != 0:
			return "", 0, fmt.Errorf("savedmodel: export: %w: %s appeared while exporting (another export?); pick another --version or pass --force", ErrVersionExists, final)
		case try == maxClaimTries:
			return "", 0, fmt.Errorf("savedmodel: export: %w: %d versions after %d were taken while exporting", ErrVersionExists, maxClaimTries, version-maxClaimTries)
		}
		version++
		if err := writeInfo(tmp, o, version); err != nil {
			return "", 0, err
		}
	}
}

// pickVersion returns the version to export: want, or one more than the highest
// version name in base (complete or not: a claimed number is never reused).
func pickVersion(base string, want int64, force bool) (int64, error) {
	if want < 0 {
		return 0, fmt.Errorf("savedmodel: export: --version %d must be positive", want)
	}
	existing, err := contract.VersionNames(base)
	if err != nil {
		return 0, fmt.Errorf("savedmodel: export: %w", err)
	}
	if want == 0 {
		if len(existing) == 0 {
			return 1, nil
		}
		return existing[len(existing)-1] + 1, nil
	}
	if slices.Contains(existing, want) && !force {
		return 0, fmt.Errorf("savedmodel: export: %w: %s already exists; pick another --version or pass --force", ErrVersionExists, contract.VersionDir(base, want))
	}
	return want, nil
}

func savedModelProto(sg *tfops.ServingGraph, graphDef []byte, o ExportOptions) ([]byte, error) {
	mg := &pb.MetaGraphDef{MetaInfoDef: &pb.MetaGraphDef_MetaInfoDef{Tags: []string{contract.ServeTag}, TensorflowVersion: tfops.Version(),
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
		contract.OutputScores:   tensorInfo(tfops.TensorName(sg.Scores), typespb.DataType_DT_FLOAT, -1, n),
		contract.OutputClasses:  tensorInfo(tfops.TensorName(sg.Classes), typespb.DataType_DT_STRING, -1),
		contract.OutputClassIDs: tensorInfo(tfops.TensorName(sg.ClassIDs), typespb.DataType_DT_INT64, -1),
	}
	mg.SignatureDef = map[string]*pb.SignatureDef{
		contract.SignatureDefault: {MethodName: contract.PredictMethod, Outputs: outputs,
			Inputs: map[string]*pb.TensorInfo{contract.InputBytes: tensorInfo(tfops.TensorName(sg.ImageBytes), typespb.DataType_DT_STRING, -1)}},
		contract.SignatureImages: {MethodName: contract.PredictMethod, Outputs: outputs,
			Inputs: map[string]*pb.TensorInfo{contract.InputImages: tensorInfo(tfops.TensorName(sg.Images), typespb.DataType_DT_FLOAT, -1, s, s, 3)}},
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
