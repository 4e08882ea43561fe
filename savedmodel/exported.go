package savedmodel

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	pb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"

	"github.com/tfflowers/tfflowers/internal/contract"
	"github.com/tfflowers/tfflowers/tfops"
)

// Exported is a loaded tfflowers export (one version directory) ready to predict.
// Its methods are safe for concurrent use.
type Exported struct {
	Dir      string
	Info     ExportInfo
	version  int64
	sess     *tfops.Session
	bytesIn  tf.Output
	pixelsIn tf.Output
	scores   tf.Output
	classes  tf.Output
	classIDs tf.Output
	sigs     map[string]*pb.SignatureDef
}

// ResolveExport maps BASE_DIR or BASE_DIR/<version> to the version directory to load
// (the newest when given BASE_DIR).
func ResolveExport(path string) (string, int64, error) {
	if _, err := os.Stat(filepath.Join(path, contract.SavedModelFile)); err == nil {
		v, _ := contract.ParseVersion(filepath.Base(filepath.Clean(path)))
		return path, v, nil
	}
	// The same list internal/serve loads from, so predict and serve pick one version.
	versions, err := contract.Versions(path)
	if err != nil || len(versions) == 0 {
		return "", 0, fmt.Errorf("savedmodel: %q: %w: expected a SavedModel dir or a base dir with <version>/saved_model.pb (export one with tfflowers train --export)", path, ErrNotSavedModel)
	}
	v := versions[len(versions)-1]
	return v.Dir, v.Num, nil
}

// LoadExport loads the export at path (BASE_DIR or BASE_DIR/<version>).
func LoadExport(path string, cfg tfops.SessionConfig) (*Exported, error) {
	dir, version, err := ResolveExport(path)
	if err != nil {
		return nil, err
	}
	e := &Exported{Dir: dir, version: version}
	raw, err := os.ReadFile(filepath.Join(dir, contract.ExportMetaPath))
	if err != nil {
		return nil, fmt.Errorf("savedmodel: %q: %w: missing %s (not a tfflowers export)", dir, ErrNotSavedModel, contract.ExportMetaPath)
	}
	if err := json.Unmarshal(raw, &e.Info); err != nil {
		return nil, fmt.Errorf("savedmodel: %q: %s: %w", dir, contract.ExportMetaPath, err)
	}
	opts, err := cfg.Options()
	if err != nil {
		return nil, err
	}
	m, err := tf.LoadSavedModel(dir, []string{contract.ServeTag}, opts)
	if err != nil {
		return nil, fmt.Errorf("savedmodel: load export %s: %w", dir, err)
	}
	e.sess = tfops.WrapSession(m.Session, m.Graph)
	if e.sigs, err = signatureDefs(dir); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.bind(m); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Exported) bind(m *tf.SavedModel) error {
	def, ok1 := m.Signatures[contract.SignatureDefault]
	img, ok2 := m.Signatures[contract.SignatureImages]
	if !ok1 || !ok2 {
		return fmt.Errorf("savedmodel: %q: %w: signatures %q and %q required", e.Dir, ErrNotSavedModel, contract.SignatureDefault, contract.SignatureImages)
	}
	var err error
	get := func(name string) tf.Output {
		if err != nil {
			return tf.Output{}
		}
		var o tf.Output
		o, err = tensorByName(m.Graph, name)
		return o
	}
	e.bytesIn = get(def.Inputs[contract.InputBytes].Name)
	e.pixelsIn = get(img.Inputs[contract.InputImages].Name)
	e.scores = get(def.Outputs[contract.OutputScores].Name)
	e.classes = get(def.Outputs[contract.OutputClasses].Name)
	e.classIDs = get(def.Outputs[contract.OutputClassIDs].Name)
	if err != nil {
		return fmt.Errorf("savedmodel: %q: %w", e.Dir, err)
	}
	return nil
}

// SignatureDefs returns the export's SignatureDefs as stored in saved_model.pb (read-only).
func (e *Exported) SignatureDefs() (map[string]*pb.SignatureDef, error) { return e.sigs, nil }

// Labels returns the class names, in class-id order.
func (e *Exported) Labels() []string { return e.Info.Labels }

// ImageSize is the side of predict_images inputs.
func (e *Exported) ImageSize() int { return e.Info.ImageSize }

// Version is the version directory's number (0 when it is not an integer).
func (e *Exported) Version() int64 { return e.version }

// Close releases the session.
func (e *Exported) Close() error { return e.sess.Close() }

func (e *Exported) run(feeds map[tf.Output]*tf.Tensor) ([][]float32, []int64, []string, error) {
	out, err := e.sess.Run("predict", feeds, []tf.Output{e.scores, e.classIDs, e.classes}, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	flat, err := tfops.Float32s(out[0])
	if err != nil {
		return nil, nil, nil, err
	}
	ids, _ := out[1].Value().([]int64)
	names, _ := out[2].Value().([]string)
	n := len(ids)
	if n == 0 || len(flat)%n != 0 || len(names) != n {
		return nil, nil, nil, fmt.Errorf("savedmodel: predict returned %d scores for %d ids", len(flat), n)
	}
	k := len(flat) / n
	scores := make([][]float32, n)
	for i := range scores {
		scores[i] = flat[i*k : (i+1)*k : (i+1)*k]
	}
	return scores, ids, names, nil
}

// Predict classifies encoded images in one run. When the batch fails (an image that
// cannot be decoded fails the whole graph run), it is bisected until errs names the bad
// ones; the others still get results.
func (e *Exported) Predict(ctx context.Context, images [][]byte) (scores [][]float32, classIDs []int64, classes []string, errs []error, err error) {
	if len(images) == 0 {
		return nil, nil, nil, nil, nil
	}
	strs := make([]string, len(images))
	for i, b := range images {
		strs[i] = string(b)
	}
	in, err := tf.NewTensor(strs)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	errs = make([]error, len(images))
	scores, classIDs, classes, runErr := e.run(map[tf.Output]*tf.Tensor{e.bytesIn: in})
	if runErr == nil {
		return scores, classIDs, classes, errs, nil
	}
	if len(images) == 1 {
		errs[0] = runErr
		return make([][]float32, 1), make([]int64, 1), make([]string, 1), errs, nil
	}
	// Bisect: each half runs as one batch and only a failing half is split again, so k
	// bad images among n cost about 2k·log2(n) runs instead of n, and the good ones keep
	// being classified in batches.
	scores, classIDs, classes = make([][]float32, len(images)), make([]int64, len(images)), make([]string, len(images))
	mid := len(images) / 2
	for _, part := range [][2]int{{0, mid}, {mid, len(images)}} {
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, nil, err
		}
		s, id, c, e1, err := e.Predict(ctx, images[part[0]:part[1]])
		if err != nil {
			return nil, nil, nil, nil, err
		}
		copy(scores[part[0]:], s)
		copy(classIDs[part[0]:], id)
		copy(classes[part[0]:], c)
		copy(errs[part[0]:], e1)
	}
	return scores, classIDs, classes, errs, nil
}

// PredictPixels classifies decoded images, each [size*size*3] floats in 0..255.
func (e *Exported) PredictPixels(ctx context.Context, pixels [][]float32) ([][]float32, []int64, []string, error) {
	s := e.Info.ImageSize
	per := s * s * 3
	flat := make([]float32, 0, len(pixels)*per)
	for i, p := range pixels {
		if len(p) != per {
			return nil, nil, nil, fmt.Errorf("%w: image %d has %d values, want %dx%dx3", tfops.ErrShape, i, len(p), s, s)
		}
		flat = append(flat, p...)
	}
	in, err := tfops.Float32Tensor(flat, int64(len(pixels)), int64(s), int64(s), 3)
	if err != nil {
		return nil, nil, nil, err
	}
	return e.run(map[tf.Output]*tf.Tensor{e.pixelsIn: in})
}
