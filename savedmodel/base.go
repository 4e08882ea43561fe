package savedmodel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/tfflowers/tfflowers/internal/contract"
	"github.com/tfflowers/tfflowers/tfops"
)

// Errors matched with errors.Is.
var (
	ErrNotSavedModel = errors.New("not a SavedModel directory")
	ErrNotBase       = errors.New("not a tfflowers base model")
	ErrImageSize     = errors.New("image size not accepted by the base model")
)

// MetadataPath is where the base export records its contract, relative to the model dir.
const MetadataPath = "assets.extra/tfflowers_base.json"

// BackboneScope prefixes the backbone's forward ops in a base export (import_graph_def's name).
const BackboneScope = "backbone/"

// BaseVariable describes one backbone weight.
type BaseVariable struct {
	Name      string  `json:"name"`  // VarHandleOp name, e.g. block_13_expand/kernel
	Layer     string  `json:"layer"` // Keras layer, e.g. block_13_expand
	Shape     []int64 `json:"shape"`
	Trainable bool    `json:"trainable"` // false for BatchNorm moving statistics
}

// BaseLayer is one backbone activation a head may read (format version 2): the Keras
// layer, its tensor in the base graph, and its shape [h,w,C] at the base's ImageSize.
type BaseLayer struct {
	Layer  string  `json:"layer"`
	Tensor string  `json:"tensor"`
	Shape  []int64 `json:"shape"`
}

// Base format versions LoadBase reads: 1 exposes the last layer (features:0) alone; 2 adds
// LayerTensors, the intermediate activations that the multi-layer head pools.
const (
	baseFormatOldest = 1
	baseFormatNewest = 2
)

// OutputLayer is the Keras name of the backbone's last activation, the base's features:0.
const OutputLayer = "out_relu"

// BaseMeta is assets.extra/tfflowers_base.json.
type BaseMeta struct {
	Format        string         `json:"format"`
	FormatVersion int            `json:"format_version"`
	Architecture  string         `json:"architecture"`
	Alpha         float64        `json:"alpha"`
	Weights       string         `json:"weights"`
	Signature     string         `json:"signature"`
	InputTensor   string         `json:"input_tensor"`
	FeatureTensor string         `json:"feature_tensor"`
	DynamicSize   bool           `json:"dynamic_size"`
	ImageSize     int            `json:"image_size"`
	MinImageSize  int            `json:"min_image_size"`
	FeatureShape  []int64        `json:"feature_shape"`
	LayerTensors  []BaseLayer    `json:"layer_tensors,omitempty"`
	Preprocessing string         `json:"preprocessing"`
	Variables     []BaseVariable `json:"variables"`
	TFVersion     string         `json:"tensorflow_version"`
	KerasVersion  string         `json:"keras_version"`
}

// Base is a loaded backbone: a session over its graph, with the input and feature tensors.
type Base struct {
	Dir         string
	Meta        BaseMeta
	Fingerprint string // sha256 over saved_model.pb and variables/*: keys the feature cache
	// WeightsFingerprint is sha256 over variables/* alone: the same weights exported again
	// (another graph form, another exporter version) keep it; other weights change it.
	// A run records it so that an export can refuse a base its head was not trained on.
	WeightsFingerprint string
	Session            *tfops.Session
	Input              tf.Output // float32 [B,H,W,3], preprocessed x/127.5-1
	Features           tf.Output // float32 [B,h,w,C]
}

// LoadBase loads the base SavedModel in dir with cfg.
func LoadBase(dir string, cfg tfops.SessionConfig) (*Base, error) {
	meta, err := readBaseMeta(dir)
	if err != nil {
		return nil, err
	}
	vars, _ := filepath.Glob(filepath.Join(dir, "variables", "*"))
	sort.Strings(vars)
	fp, err := fingerprint(append([]string{filepath.Join(dir, contract.SavedModelFile)}, vars...))
	if err != nil {
		return nil, err
	}
	wfp, err := fingerprint(vars)
	if err != nil {
		return nil, err
	}
	opts, err := cfg.Options()
	if err != nil {
		return nil, err
	}
	m, err := tf.LoadSavedModel(dir, []string{contract.ServeTag}, opts)
	if err != nil {
		return nil, fmt.Errorf("savedmodel: base %q: %w: TensorFlow cannot load it with tag %q (export one with scripts/export_base_model.py): %w", dir, ErrNotSavedModel, contract.ServeTag, err)
	}
	b := &Base{Dir: dir, Meta: meta, Fingerprint: fp, WeightsFingerprint: wfp, Session: tfops.WrapSession(m.Session, m.Graph)}
	if err := b.bind(m); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func readBaseMeta(dir string) (BaseMeta, error) {
	var meta BaseMeta
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return meta, fmt.Errorf("savedmodel: base %q: %w: the directory does not exist; export one with scripts/export_base_model.py --out %s", dir, ErrNotSavedModel, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, contract.SavedModelFile)); err != nil {
		return meta, fmt.Errorf("savedmodel: base %q: %w: expected %s; export one with scripts/export_base_model.py", dir, ErrNotSavedModel, filepath.Join(dir, contract.SavedModelFile))
	}
	raw, err := os.ReadFile(filepath.Join(dir, MetadataPath))
	if err != nil {
		return meta, fmt.Errorf("savedmodel: base %q: %w: missing %s (was it written by scripts/export_base_model.py?)", dir, ErrNotBase, MetadataPath)
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return meta, fmt.Errorf("savedmodel: base %q: %w: %s is not valid JSON: %v", dir, ErrNotBase, MetadataPath, err)
	}
	if meta.Format != "tfflowers-base" || meta.FormatVersion < baseFormatOldest || meta.FormatVersion > baseFormatNewest {
		return meta, fmt.Errorf("savedmodel: base %q: %w: format %q version %d, want tfflowers-base version %d to %d (re-export the base with scripts/export_base_model.py)",
			dir, ErrNotBase, meta.Format, meta.FormatVersion, baseFormatOldest, baseFormatNewest)
	}
	return meta, nil
}

// bind finds the signature's tensors in the loaded graph and checks them.
func (b *Base) bind(m *tf.SavedModel) error {
	sig, ok := m.Signatures[b.Meta.Signature]
	if !ok {
		names := make([]string, 0, len(m.Signatures))
		for k := range m.Signatures {
			names = append(names, k)
		}
		sort.Strings(names)
		return fmt.Errorf("savedmodel: base %q: %w: no signature %q (has %v)", b.Dir, ErrNotBase, b.Meta.Signature, names)
	}
	in, okIn := sig.Inputs["images"]
	out, okOut := sig.Outputs["features"]
	if !okIn || !okOut {
		return fmt.Errorf("savedmodel: base %q: %w: signature %q must have input \"images\" and output \"features\" (has inputs %v, outputs %v)",
			b.Dir, ErrNotBase, b.Meta.Signature, sortedKeys(sig.Inputs), sortedKeys(sig.Outputs))
	}
	if in.Name != b.Meta.InputTensor || out.Name != b.Meta.FeatureTensor {
		return fmt.Errorf("savedmodel: base %q: %w: signature tensors %s/%s differ from the metadata's %s/%s", b.Dir, ErrNotBase, in.Name, out.Name, b.Meta.InputTensor, b.Meta.FeatureTensor)
	}
	var err error
	if b.Input, err = tensorByName(m.Graph, in.Name); err != nil {
		return fmt.Errorf("savedmodel: base %q: %w", b.Dir, err)
	}
	if b.Features, err = tensorByName(m.Graph, out.Name); err != nil {
		return fmt.Errorf("savedmodel: base %q: %w", b.Dir, err)
	}
	if b.Input.DataType() != tf.Float || b.Input.Shape().NumDimensions() != 4 {
		return fmt.Errorf("savedmodel: base %q: %w: input %s must be float32 [batch,h,w,3], is %s %v", b.Dir, ErrNotBase, in.Name, dtypeName(b.Input.DataType()), b.Input.Shape())
	}
	if b.Features.Shape().NumDimensions() != 4 {
		return fmt.Errorf("savedmodel: base %q: %w: features %s must be rank 4, are %v", b.Dir, ErrNotBase, out.Name, b.Features.Shape())
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dtypeName names the data types a base's input may plausibly have.
func dtypeName(dt tf.DataType) string {
	switch dt {
	case tf.Float:
		return "float32"
	case tf.Double:
		return "float64"
	case tf.Half:
		return "float16"
	case tf.Uint8:
		return "uint8"
	case tf.Int32:
		return "int32"
	case tf.Int64:
		return "int64"
	case tf.String:
		return "string"
	default:
		return fmt.Sprintf("dtype %d", dt)
	}
}

// tensorByName resolves a signature's tensor name; a miss means the model is not what
// tfflowers expects.
func tensorByName(g *tf.Graph, name string) (tf.Output, error) {
	o, err := tfops.GraphOutput(g, name)
	if err != nil {
		return tf.Output{}, fmt.Errorf("%w: %w", ErrNotBase, err)
	}
	return o, nil
}

// CheckImageSize reports whether the base accepts size x size inputs, and the feature
// shape [h,w,C] it then produces (MobileNetV2 downsamples by 32, rounding up).
func (b *Base) CheckImageSize(size int) ([]int64, error) {
	if !b.Meta.DynamicSize && size != b.Meta.ImageSize {
		return nil, fmt.Errorf("savedmodel: base %q: %w: it was exported for %dx%d, got --image-size %d; re-export with --image-size %d", b.Dir, ErrImageSize, b.Meta.ImageSize, b.Meta.ImageSize, size, size)
	}
	if size < b.Meta.MinImageSize {
		return nil, fmt.Errorf("savedmodel: base %q: %w: --image-size %d is below the minimum %d", b.Dir, ErrImageSize, size, b.Meta.MinImageSize)
	}
	ch := int64(-1)
	if n := len(b.Meta.FeatureShape); n > 0 {
		ch = b.Meta.FeatureShape[n-1]
	}
	side := int64((size + 31) / 32)
	return []int64{side, side, ch}, nil
}

// Close releases the session.
func (b *Base) Close() error { return b.Session.Close() }

// fingerprint hashes files (their base names and contents) in the order given.
func fingerprint(files []string) (string, error) {
	h := sha256.New()
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return "", fmt.Errorf("savedmodel: fingerprint %s: %w", f, err)
		}
		io.WriteString(h, filepath.Base(f)+"\x00")
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", fmt.Errorf("savedmodel: fingerprint %s: %w", f, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Extract runs the backbone on n preprocessed images (n*size*size*3 floats) and returns
// the features, n*h*w*C floats, with their shape.
func (b *Base) Extract(images []float32, n, size int) ([]float32, []int64, error) {
	in, err := tfops.Float32Tensor(images, int64(n), int64(size), int64(size), 3)
	if err != nil {
		return nil, nil, err
	}
	out, err := b.Session.Run("extract features", map[tf.Output]*tf.Tensor{b.Input: in}, []tf.Output{b.Features}, nil)
	if err != nil {
		return nil, nil, err
	}
	feats, err := tfops.Float32s(out[0])
	return feats, out[0].Shape(), err
}

// ErrNoLayer is returned when a head asks for a backbone layer the base does not expose.
var ErrNoLayer = errors.New("layer not exposed by the base model")

// Layers returns the tensors of the named backbone layers in the loaded graph, in order.
// OutputLayer is the base's features:0 in every format version; intermediate layers need
// a version 2 base, and an older one is refused with what to do about it.
func (b *Base) Layers(names []string) ([]tf.Output, error) {
	outs := make([]tf.Output, len(names))
	for i, name := range names {
		tensor, err := b.LayerTensor(name)
		if err != nil {
			return nil, err
		}
		if outs[i], err = tensorByName(b.Session.Graph(), tensor); err != nil {
			return nil, fmt.Errorf("savedmodel: base %q: layer %s: %w", b.Dir, name, err)
		}
	}
	return outs, nil
}

// LayerTensor names the tensor of a backbone layer in the base graph (see Layers).
func (b *Base) LayerTensor(name string) (string, error) {
	if name == OutputLayer {
		return b.Meta.FeatureTensor, nil
	}
	for _, l := range b.Meta.LayerTensors {
		if l.Layer == name {
			return l.Tensor, nil
		}
	}
	if len(b.Meta.LayerTensors) == 0 {
		return "", fmt.Errorf("savedmodel: base %q: %w: it exposes no intermediate layers (format version %d) and the head pools %s: "+
			"re-export the base with scripts/export_base_model.py (or train with --head gap)", b.Dir, ErrNoLayer, b.Meta.FormatVersion, name)
	}
	return "", fmt.Errorf("savedmodel: base %q: %w: no layer %q in %s", b.Dir, ErrNoLayer, name, MetadataPath)
}

// FineTuneVariables returns the trainable backbone variables from the first layer whose
// name starts with fromLayer (e.g. "block_13") to the top, in model order. BatchNorm
// moving statistics are never included: they stay frozen in inference mode.
func (b *Base) FineTuneVariables(fromLayer string) ([]string, error) {
	start := -1
	for i, v := range b.Meta.Variables {
		if v.Layer == fromLayer || strings.HasPrefix(v.Layer, fromLayer+"_") {
			start = i
			break
		}
	}
	if start < 0 {
		var layers []string
		seen := map[string]bool{}
		for _, v := range b.Meta.Variables {
			l := v.Layer
			if i := strings.Index(l, "_"); strings.HasPrefix(l, "block_") {
				if j := strings.Index(l[i+1:], "_"); j >= 0 {
					l = l[:i+1+j]
				}
			}
			if !seen[l] {
				seen[l] = true
				layers = append(layers, l)
			}
		}
		return nil, fmt.Errorf("savedmodel: base %q has no layer %q; layers: %s", b.Dir, fromLayer, strings.Join(layers, ", "))
	}
	var names []string
	for _, v := range b.Meta.Variables[start:] {
		if v.Trainable {
			names = append(names, v.Name)
		}
	}
	return names, nil
}
