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
}

// buildAdam adds ResourceApplyAdam updates for vars given their gradients, then increments
// step. lr is a scalar tensor (fed, so phases and schedules can change it).
// The bias corrections use beta^t with t = step+1, computed in-graph from the step variable,
// so a restored checkpoint continues exactly where it stopped.
func buildAdam(s *op.Scope, name string, vars []*Variable, grads []tf.Output, lr tf.Output, cfg AdamConfig) (*adam, error) {
	if len(vars) != len(grads) {
		return nil, fmt.Errorf("adam: %d variables, %d gradients", len(vars), len(grads))
	}
	a := &adam{step: newVariable(s, name+"/step", nil, false, zerosInit)}
	f32 := func(v float64) tf.Output { return op.Const(s.SubScope("c"), float32(v)) }
	t := op.Add(s.SubScope("t"), a.step.Read, f32(1))
	b1p := op.Pow(s.SubScope("beta1_power"), f32(cfg.Beta1), t)
	b2p := op.Pow(s.SubScope("beta2_power"), f32(cfg.Beta2), t)
	var updates []*tf.Operation
	for i, v := range vars {
		if grads[i].Op == nil {
			return nil, fmt.Errorf("adam: variable %s has no gradient (not connected to the loss)", v.Name)
		}
		m := newVariable(s, name+"/"+v.Name+"/m", v.Shape, false, zerosInit)
		vv := newVariable(s, name+"/"+v.Name+"/v", v.Shape, false, zerosInit)
		a.slots = append(a.slots, m, vv)
		updates = append(updates, op.ResourceApplyAdam(s.SubScope("apply"), v.Handle, m.Handle, vv.Handle, b1p, b2p, lr,
			f32(cfg.Beta1), f32(cfg.Beta2), f32(cfg.Epsilon), grads[i]))
	}
	a.apply = op.AssignAddVariableOp(s.WithControlDependencies(updates...).SubScope("increment_step"), a.step.Handle, f32(1))
	return a, nil
}
