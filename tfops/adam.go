package tfops

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// AdamConfig holds Adam's hyper-parameters (Keras defaults: 0.9, 0.999, 1e-7).
type AdamConfig struct {
	Beta1, Beta2, Epsilon float64
}

// DefaultAdam is Keras's Adam.
var DefaultAdam = AdamConfig{Beta1: 0.9, Beta2: 0.999, Epsilon: 1e-7}

// adam holds the optimizer state and update op for one set of variables.
type adam struct {
	slots []*Variable // m and v for each trained variable
	step  *Variable   // number of updates applied so far (float32 scalar)
	apply *tf.Operation

	vars []*Variable
	lr   tf.Output
	cfg  AdamConfig
}

// buildAdam adds ResourceApplyAdam updates for vars given their gradients, then increments
// step. lr is a scalar tensor (fed, so phases and schedules can change it).
// The bias corrections use beta^t with t = step+1, computed in-graph from the step variable,
// so a restored checkpoint continues exactly where it stopped.
func buildAdam(s *op.Scope, name string, vars []*Variable, grads []tf.Output, lr tf.Output, cfg AdamConfig) (*adam, error) {
	a := &adam{step: newVariable(s, name+"/step", nil, false, zerosInit), vars: vars, lr: lr, cfg: cfg}
	for _, v := range vars {
		m := newVariable(s, name+"/"+v.Name+"/m", v.Shape, false, zerosInit)
		vv := newVariable(s, name+"/"+v.Name+"/v", v.Shape, false, zerosInit)
		a.slots = append(a.slots, m, vv)
	}
	var err error
	a.apply, err = a.update(s, grads)
	return a, err
}

// update adds another update op on the same variables and optimizer state, from other
// gradients (accumulated ones): every update op advances the same step and moments.
func (a *adam) update(s *op.Scope, grads []tf.Output) (*tf.Operation, error) {
	if len(a.vars) != len(grads) {
		return nil, fmt.Errorf("adam: %d variables, %d gradients", len(a.vars), len(grads))
	}
	f32 := func(v float64) tf.Output { return op.Const(s.SubScope("c"), float32(v)) }
	t := op.Add(s.SubScope("t"), a.step.Read, f32(1))
	b1p := op.Pow(s.SubScope("beta1_power"), f32(a.cfg.Beta1), t)
	b2p := op.Pow(s.SubScope("beta2_power"), f32(a.cfg.Beta2), t)
	var updates []*tf.Operation
	for i, v := range a.vars {
		if grads[i].Op == nil {
			return nil, fmt.Errorf("adam: variable %s has no gradient (not connected to the loss)", v.Name)
		}
		m, vv := a.slots[2*i], a.slots[2*i+1]
		updates = append(updates, op.ResourceApplyAdam(s.SubScope("apply"), v.Handle, m.Handle, vv.Handle, b1p, b2p, a.lr,
			f32(a.cfg.Beta1), f32(a.cfg.Beta2), f32(a.cfg.Epsilon), grads[i]))
	}
	return op.AssignAddVariableOp(s.WithControlDependencies(updates...).SubScope("increment_step"), a.step.Handle, f32(1)), nil
}
