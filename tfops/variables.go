package tfops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// Variable is a float32 resource variable in a graph.
type Variable struct {
	Name      string  // checkpoint key and shared name, e.g. "head/dense/kernel"
	Shape     []int64 // static shape
	Trainable bool
	Handle    tf.Output // resource handle (VarHandleOp or an existing handle)
	Read      tf.Output // one ReadVariableOp; gradients are taken with respect to it
	initValue tf.Output // placeholder fed with the initial value
	init      *tf.Operation
	initFn    func(rng *rand.Rand, dst []float32) // fills the initial value
}

func (v *Variable) size() int { return int(numElements(v.Shape)) }

// newVariable adds a VarHandleOp, a ReadVariableOp and an initializer fed from Go, so the
// initial values come from a seeded Go PRNG and are identical on every machine.
func newVariable(s *op.Scope, name string, shape []int64, trainable bool, initFn func(*rand.Rand, []float32)) *Variable {
	vs := s.SubScope(name)
	v := &Variable{Name: name, Shape: shape, Trainable: trainable, initFn: initFn}
	v.Handle = op.VarHandleOp(vs, tf.Float, tf.MakeShape(shape...), op.VarHandleOpSharedName(name))
	v.Read = op.ReadVariableOp(vs.SubScope("read"), v.Handle, tf.Float)
	v.initValue = op.Placeholder(vs.SubScope("init_value"), tf.Float, op.PlaceholderShape(tf.MakeShape(shape...)))
	v.init = op.AssignVariableOp(vs.SubScope("init"), v.Handle, v.initValue)
	return v
}

// existingVariable wraps a variable already in the graph (a backbone weight), found by
// its VarHandleOp name, with the one read under scope that the forward pass uses (the
// SavedModel also reads it for its Saver and initializer; those reads are not on the path).
func existingVariable(g *tf.Graph, name, scope string, trainable bool) (*Variable, error) {
	h := g.Operation(name)
	if h == nil || h.Type() != "VarHandleOp" {
		return nil, fmt.Errorf("no variable %q in the base graph", name)
	}
	handle := h.Output(0)
	var read tf.Output
	for _, c := range handle.Consumers() {
		if c.Op.Type() == "ReadVariableOp" && strings.HasPrefix(c.Op.Name(), scope) {
			if read.Op != nil {
				return nil, fmt.Errorf("variable %q is read twice; its gradient would be split", name)
			}
			read = c.Op.Output(0)
		}
	}
	if read.Op == nil {
		return nil, fmt.Errorf("variable %q is never read under %q", name, scope)
	}
	shape, err := read.Shape().ToSlice()
	if err != nil {
		return nil, fmt.Errorf("variable %q has an unknown shape: %w", name, err)
	}
	return &Variable{Name: name, Shape: shape, Trainable: trainable, Handle: handle, Read: read}, nil
}

func zerosInit(_ *rand.Rand, dst []float32) { clear(dst) }

// glorotUniform is Keras's default Dense kernel initializer: U(-l, l), l = sqrt(6/(fan_in+fan_out)).
func glorotUniform(fanIn, fanOut int64) func(*rand.Rand, []float32) {
	limit := math.Sqrt(6 / float64(fanIn+fanOut))
	return func(rng *rand.Rand, dst []float32) {
		for i := range dst {
			dst[i] = float32((rng.Float64()*2 - 1) * limit)
		}
	}
}

// initialize runs the initializers of vars (those created here), seeded by seed.
func initialize(sess *Session, vars []*Variable, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x7466666c6f776572)) // "tfflower"
	feeds := map[tf.Output]*tf.Tensor{}
	var targets []*tf.Operation
	for _, v := range vars {
		if v.init == nil {
			continue
		}
		buf := make([]float32, v.size())
		v.initFn(rng, buf)
		t, err := Float32Tensor(buf, v.Shape...)
		if err != nil {
			return err
		}
		feeds[v.initValue] = t
		targets = append(targets, v.init)
	}
	_, err := sess.Run("initialize variables", feeds, nil, targets)
	return err
}
