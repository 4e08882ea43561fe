package tfops

import (
	"fmt"
	"os"
	"path/filepath"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// HeadConfig configures the classifier trained on top of the backbone.
type HeadConfig struct {
	Kind           string  // HeadMulti, HeadGAP or HeadFlatten
	FeatureShape   []int64 // [h,w,C] of the features fed; needed by flatten when the base's size is dynamic
	NumClasses     int
	Dropout        float64
	LabelSmoothing float64
	Adam           AdamConfig
	Seed           uint64 // initial weights
	// FineTune lists backbone variables (VarHandleOp names) trained in the fine-tune phase.
	FineTune []string
	// BackboneScope is the name prefix of the backbone's forward ops; the read of each
	// fine-tuned variable is taken there.
	BackboneScope string
}

// TrainGraph is the head, loss, gradients, Adam updates and checkpoint ops added to the
// backbone's graph. The backbone's input and features are fed or fetched as needed: a
// cached step feeds Features directly, so TensorFlow prunes the backbone from it.
type TrainGraph struct {
	Input    tf.Output // backbone input [B,H,W,3], preprocessed
	Features tf.Output // backbone output [B,h,w,C], fed from the cache or computed from Input
	Labels   tf.Output // int64 [B]
	LR       tf.Output // float32 scalar learning rate
	Dropout  tf.Output // float32 scalar rate; 0 (the default) at inference
	DropSeed tf.Output // int64 [2]; seeds the dropout mask of one step
	// RowOffset and BatchRows (int32 scalars) say where the fed rows sit in the whole batch
	// when a batch runs as slices (micro-batches, replicas); they default to the fed batch.
	RowOffset, BatchRows tf.Output
	// GradScale (float32 scalar, default 1) multiplies the gradients that are accumulated:
	// a slice of n rows out of N is fed n/N, so the accumulated sum is the full batch's.
	GradScale tf.Output
	Logits    tf.Output
	Probs     tf.Output
	Loss      tf.Output // mean loss of the batch
	Correct   tf.Output // number of correct predictions in the batch (float32)
	Train     *tf.Operation
	FineTune  *tf.Operation // nil without fine-tune variables

	cfg      HeadConfig
	head     *head
	trained  []*Variable // head then fine-tune variables, aligned with grads
	grads    []tf.Output
	headOpt  *adam
	ftVars   []*Variable
	ftOpt    *adam
	saver    *saver
	initVars []*Variable
	acc      *accumulation
	towers   []tower // the graph itself, or its replicas (replicas.go)
	// localSync fills the replicas' own copies of the frozen variables (replica_local.go).
	localSync *tf.Operation
	devIn     *DeviceInputs
}

// BuildTrainGraph adds the training ops for features (a backbone output of g) to g.
// Ops are named under "tfflowers/" to stay clear of the backbone's names.
func BuildTrainGraph(g *tf.Graph, input, features tf.Output, cfg HeadConfig) (tg *TrainGraph, err error) {
	if cfg.NumClasses < 2 {
		return nil, fmt.Errorf("tfops: need at least 2 classes, got %d", cfg.NumClasses)
	}
	if cfg.Dropout < 0 || cfg.Dropout >= 1 {
		return nil, fmt.Errorf("tfops: dropout %v outside [0,1)", cfg.Dropout)
	}
	if cfg.LabelSmoothing < 0 || cfg.LabelSmoothing >= 1 {
		return nil, fmt.Errorf("tfops: label smoothing %v outside [0,1)", cfg.LabelSmoothing)
	}
	if cfg.Adam == (AdamConfig{}) {
		cfg.Adam = DefaultAdam
	}
	root := op.NewScopeWithGraph(g).SubScope("tfflowers")
	defer guard("build training graph", root, &err)
	t := &TrainGraph{Input: input, Features: features, cfg: cfg}
	s := root.SubScope("inputs")
	t.Labels = op.Placeholder(s.SubScope("labels"), tf.Int64, op.PlaceholderShape(tf.MakeShape(-1)))
	t.LR = op.Placeholder(s.SubScope("learning_rate"), tf.Float, op.PlaceholderShape(tf.ScalarShape()))
	t.Dropout = op.PlaceholderWithDefault(s.SubScope("dropout_rate"), op.Const(s.SubScope("no_dropout"), float32(0)), tf.ScalarShape())
	t.DropSeed = op.PlaceholderWithDefault(s.SubScope("dropout_seed"), op.Const(s.SubScope("seed0"), []int64{0, 0}), tf.MakeShape(2))

	t.RowOffset = op.PlaceholderWithDefault(s.SubScope("row_offset"), op.Const(s.SubScope("offset0"), int32(0)), tf.ScalarShape())
	fedRows := op.StridedSlice(s.SubScope("fed_rows"), op.Shape(s, features, op.ShapeOutType(tf.Int32)),
		op.Const(s.SubScope("b0"), []int32{0}), op.Const(s.SubScope("e1"), []int32{1}), op.Const(s.SubScope("s1"), []int32{1}),
		op.StridedSliceShrinkAxisMask(1))
	t.BatchRows = op.PlaceholderWithDefault(s.SubScope("batch_rows"), fedRows, tf.ScalarShape())
	t.GradScale = op.PlaceholderWithDefault(s.SubScope("grad_scale"), op.Const(s.SubScope("scale1"), float32(1)), tf.ScalarShape())
	drop := dropoutInputs{Rate: t.Dropout, Seed: t.DropSeed, Rows: t.BatchRows, Offset: t.RowOffset}
	h, err := buildHead(root.SubScope("head"), features, cfg.FeatureShape, cfg.Kind, cfg.NumClasses, drop)
	if err != nil {
		return nil, err
	}
	t.head, t.Logits, t.Probs = h, h.logits, h.probs
	t.Loss, _ = crossEntropy(root.SubScope("loss"), h.logits, t.Labels, cfg.NumClasses, cfg.LabelSmoothing)
	t.Correct = correctCount(root.SubScope("metrics"), h.logits, t.Labels)

	headVars := []*Variable{h.kernel, h.bias}
	for _, name := range cfg.FineTune {
		v, err := existingVariable(g, name, cfg.BackboneScope, true)
		if err != nil {
			return nil, err
		}
		t.ftVars = append(t.ftVars, v)
	}
	// One AddGradients call for everything trained, so the backbone's backward pass is shared.
	xs := make([]tf.Output, 0, len(headVars)+len(t.ftVars))
	for _, v := range append(append([]*Variable{}, headVars...), t.ftVars...) {
		xs = append(xs, v.Read)
	}
	if scopeErr := root.Err(); scopeErr != nil {
		return nil, &GraphError{Step: "build head", Err: scopeErr}
	}
	grads, err := g.AddGradients("tfflowers/gradients", []tf.Output{t.Loss}, xs, nil)
	if err != nil {
		return nil, &GraphError{Step: "gradients", Err: err}
	}
	t.trained = append(append([]*Variable{}, headVars...), t.ftVars...)
	t.grads = grads
	if err := t.buildOptimizers(root, headVars, grads); err != nil {
		return nil, err
	}
	t.towers = []tower{{input: input, features: features, labels: t.Labels, rowOffset: t.RowOffset, batchRows: t.BatchRows,
		gradScale: t.GradScale, loss: t.Loss, correct: t.Correct, probs: t.Probs, grads: grads}}
	if err := t.buildAccumulation(root.SubScope("accumulate")); err != nil {
		return nil, err
	}
	if scopeErr := root.Err(); scopeErr != nil {
		return nil, &GraphError{Step: "build optimizer", Err: scopeErr}
	}
	saved := append(append([]*Variable{}, t.initVars...), t.ftVars...)
	t.saver = buildSaver(root.SubScope("checkpoint"), saved)
	return t, nil
}

// buildOptimizers adds the two Adam updates: Train (the head's variables, with their
// gradients, the first of grads) and, when there are backbone variables to fine-tune,
// FineTune (the head's and theirs, with moments of their own: fine-tuning starts afresh).
// It records the variables Initialize sets.
func (t *TrainGraph) buildOptimizers(root *op.Scope, headVars []*Variable, grads []tf.Output) (err error) {
	if t.headOpt, err = buildAdam(root.SubScope("adam"), "adam", headVars, grads[:len(headVars)], t.LR, t.cfg.Adam); err != nil {
		return err
	}
	t.Train = t.headOpt.apply
	t.initVars = append(append(append([]*Variable{}, headVars...), t.headOpt.slots...), t.headOpt.step)
	if len(t.ftVars) == 0 {
		return nil
	}
	all := append(append([]*Variable{}, headVars...), t.ftVars...)
	if t.ftOpt, err = buildAdam(root.SubScope("adam_finetune"), "adam_finetune", all, grads, t.LR, t.cfg.Adam); err != nil {
		return err
	}
	t.FineTune = t.ftOpt.apply
	t.initVars = append(append(t.initVars, t.ftOpt.slots...), t.ftOpt.step)
	return nil
}

// Initialize sets the head's initial weights (seeded), zeroes the optimizer state and fills
// the replicas' copies of the frozen weights.
func (t *TrainGraph) Initialize(sess *Session) error {
	if err := initialize(sess, t.initVars, t.cfg.Seed); err != nil {
		return err
	}
	return t.syncReplicas(sess)
}

// CheckpointNames lists the variables a checkpoint holds.
func (t *TrainGraph) CheckpointNames() []string { return append([]string(nil), t.saver.names...) }

// Save writes a checkpoint at prefix (prefix.index, prefix.data-00000-of-00001).
// Callers make it atomic by saving into a temporary directory and renaming it.
func (t *TrainGraph) Save(sess *Session, prefix string) error {
	if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
		return fmt.Errorf("tfops: checkpoint dir: %w", err)
	}
	return t.saver.run(sess, "save checkpoint", t.saver.save, prefix)
}

// Restore loads every checkpointed variable from prefix (and refills the replicas' copies).
func (t *TrainGraph) Restore(sess *Session, prefix string) error {
	if err := t.saver.run(sess, "restore checkpoint", t.saver.restore, prefix); err != nil {
		return err
	}
	return t.syncReplicas(sess)
}

// HeadWeights returns the dense kernel and bias (for export and tests).
func (t *TrainGraph) HeadWeights(sess *Session) (kernel, bias []float32, err error) {
	out, err := sess.Run("read head", nil, []tf.Output{t.head.kernel.Read, t.head.bias.Read}, nil)
	if err != nil {
		return nil, nil, err
	}
	if kernel, err = Float32s(out[0]); err != nil {
		return nil, nil, err
	}
	bias, err = Float32s(out[1])
	return kernel, bias, err
}

// Batch is the input of one step: features from the backbone (Images nil) or
// preprocessed images (the backbone runs inside the step).
type Batch struct {
	Features  []float32 // N*D (pooled) or N*h*w*C
	FeatShape []int64   // [D] or [h,w,C], the head input's per-image shape
	Images    []float32 // N*size*size*3
	ImageSize int
	Labels    []int64
	// Device, instead of Images, is a batch whose images were decoded on the towers'
	// devices (DeviceInputs); Labels are its rows' labels, in row order.
	Device *DeviceBatch
}

func (t *TrainGraph) feeds(b Batch) (map[tf.Output]*tf.Tensor, error) {
	return t.feedsFor(t.towers[0], b)
}

// feedsFor feeds b to tower tw.
func (t *TrainGraph) feedsFor(tw tower, b Batch) (map[tf.Output]*tf.Tensor, error) {
	n := int64(len(b.Labels))
	labels, err := Int64Tensor(b.Labels, n)
	if err != nil {
		return nil, err
	}
	feeds := map[tf.Output]*tf.Tensor{tw.labels: labels}
	if b.Images != nil {
		sz := int64(b.ImageSize)
		img, err := Float32Tensor(b.Images, n, sz, sz, 3)
		if err != nil {
			return nil, err
		}
		feeds[tw.input] = img
		return feeds, nil
	}
	if len(b.FeatShape) != 1 && len(b.FeatShape) != 3 {
		return nil, fmt.Errorf("%w: feature shape %v, want [D] (pooled) or [h,w,C]", ErrShape, b.FeatShape)
	}
	f, err := Float32Tensor(b.Features, append([]int64{n}, b.FeatShape...)...)
	if err != nil {
		return nil, err
	}
	feeds[tw.features] = f
	return feeds, nil
}

// StepOptions are the per-step knobs.
type StepOptions struct {
	LR       float64
	Dropout  float64
	Seed     [2]int64 // dropout mask seed
	FineTune bool     // update the backbone variables too (needs Images)
	// MicroBatch > 0 runs a batch of more rows as slices of at most MicroBatch rows whose
	// gradients are summed in the graph before one update: the same update as the whole
	// batch, with the memory of a slice (see accumulate.go).
	MicroBatch int
}

// TrainStep applies one Adam update and returns the batch's mean loss and number correct
// (computed in the same forward pass, with dropout, as Keras reports them).
func (t *TrainGraph) TrainStep(sess *Session, b Batch, o StepOptions) (loss float64, correct int, err error) {
	if len(t.towers) > 1 || (o.MicroBatch > 0 && len(b.Labels) > o.MicroBatch) {
		return t.slicedStep(sess, b, o)
	}
	feeds, err := t.feeds(b)
	if err != nil {
		return 0, 0, err
	}
	target := t.Train
	if o.FineTune {
		if t.FineTune == nil {
			return 0, 0, fmt.Errorf("tfops: fine-tune step requested but no backbone variables are trainable")
		}
		if b.Images == nil {
			return 0, 0, fmt.Errorf("tfops: fine-tune steps need images, not cached features")
		}
		target = t.FineTune
	}
	lr, _ := tf.NewTensor(float32(o.LR))
	rate, _ := tf.NewTensor(float32(o.Dropout))
	seed, _ := tf.NewTensor(o.Seed[:])
	feeds[t.LR], feeds[t.Dropout], feeds[t.DropSeed] = lr, rate, seed
	out, err := sess.Run("train step", feeds, []tf.Output{t.Loss, t.Correct}, []*tf.Operation{target})
	if err != nil {
		return 0, 0, err
	}
	l, err := Scalar(out[0])
	if err != nil {
		return 0, 0, err
	}
	c, err := Scalar(out[1])
	return float64(l), int(c), err
}

// Evaluate returns class probabilities [N*classes] and the mean loss, without dropout.
func (t *TrainGraph) Evaluate(sess *Session, b Batch) (probs []float32, loss float64, err error) {
	feeds, err := t.feeds(b)
	if err != nil {
		return nil, 0, err
	}
	out, err := sess.Run("evaluate", feeds, []tf.Output{t.Probs, t.Loss}, nil)
	if err != nil {
		return nil, 0, err
	}
	if probs, err = Float32s(out[0]); err != nil {
		return nil, 0, err
	}
	l, err := Scalar(out[1])
	return probs, float64(l), err
}

// Gradients returns d(mean loss)/d(variable) for every trained variable, by name, for b
// (no dropout, no update). Used by gradient checks.
func (t *TrainGraph) Gradients(sess *Session, b Batch) (map[string][]float32, error) {
	feeds, err := t.feeds(b)
	if err != nil {
		return nil, err
	}
	out, err := sess.Run("gradients", feeds, t.grads, nil)
	if err != nil {
		return nil, err
	}
	res := map[string][]float32{}
	for i, v := range t.trained {
		if res[v.Name], err = Float32s(out[i]); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (t *TrainGraph) variable(name string) (*Variable, error) {
	for _, v := range append(append([]*Variable{}, t.initVars...), t.ftVars...) {
		if v.Name == name {
			return v, nil
		}
	}
	return nil, fmt.Errorf("tfops: no variable %q in the training graph", name)
}

// ReadVariable returns a variable's current value.
func (t *TrainGraph) ReadVariable(sess *Session, name string) ([]float32, error) {
	v, err := t.variable(name)
	if err != nil {
		return nil, err
	}
	out, err := sess.Run("read "+name, nil, []tf.Output{v.Read}, nil)
	if err != nil {
		return nil, err
	}
	return Float32s(out[0])
}

// AssignVariable sets a head or optimizer variable (those the training graph created).
func (t *TrainGraph) AssignVariable(sess *Session, name string, value []float32) error {
	v, err := t.variable(name)
	if err != nil {
		return err
	}
	if v.init == nil {
		return fmt.Errorf("tfops: variable %q belongs to the base model and cannot be assigned", name)
	}
	val, err := Float32Tensor(value, v.Shape...)
	if err != nil {
		return err
	}
	_, err = sess.Run("assign "+name, map[tf.Output]*tf.Tensor{v.initValue: val}, nil, []*tf.Operation{v.init})
	return err
}
