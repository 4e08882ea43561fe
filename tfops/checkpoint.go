package tfops

import (
	"fmt"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// saver writes and reads TensorFlow V2 checkpoints (prefix.index + prefix.data-00000-of-00001)
// of a fixed set of variables, with SaveV2/RestoreV2 ops, so checkpoints are readable by
// tf.train.load_checkpoint and the SavedModel loader alike.
type saver struct {
	prefix  tf.Output // string scalar placeholder
	save    *tf.Operation
	saved   tf.Output // the prefix again, after save: a TF1 SaverDef's save_tensor_name
	restore *tf.Operation
	names   []string
}

func buildSaver(s *op.Scope, vars []*Variable) *saver {
	sv := &saver{prefix: op.Placeholder(s.SubScope("prefix"), tf.String, op.PlaceholderShape(tf.ScalarShape()))}
	tensors := make([]tf.Output, len(vars))
	dtypes := make([]tf.DataType, len(vars))
	slices := make([]string, len(vars))
	for i, v := range vars {
		sv.names = append(sv.names, v.Name)
		tensors[i] = v.Read
		dtypes[i] = tf.Float
	}
	names := op.Const(s.SubScope("names"), sv.names)
	shapeSlices := op.Const(s.SubScope("slices"), slices)
	sv.save = op.SaveV2(s.SubScope("save"), sv.prefix, names, shapeSlices, tensors)
	sv.saved = op.Identity(s.WithControlDependencies(sv.save).SubScope("save_control"), sv.prefix)
	restored := op.RestoreV2(s.SubScope("restore"), sv.prefix, names, shapeSlices, dtypes)
	assigns := make([]*tf.Operation, len(vars))
	for i, v := range vars {
		assigns[i] = op.AssignVariableOp(s.SubScope("assign"), v.Handle, restored[i])
	}
	sv.restore = op.NoOp(s.WithControlDependencies(assigns...).SubScope("restore_all"))
	return sv
}

func (sv *saver) run(sess *Session, what string, target *tf.Operation, prefix string) error {
	p, err := tf.NewTensor(prefix)
	if err != nil {
		return err
	}
	if _, err := sess.Run(what, map[tf.Output]*tf.Tensor{sv.prefix: p}, nil, []*tf.Operation{target}); err != nil {
		return fmt.Errorf("%s %s: %w", what, prefix, err)
	}
	return nil
}

func (sv *saver) saveOutput() tf.Output { return sv.saved }
