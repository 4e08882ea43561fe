package tfops

import (
	"bytes"
	"fmt"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	gpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/graph_go_proto"
	ndpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/node_def_go_proto"
	"github.com/galeone/tensorflow/tensorflow/go/op"
	"google.golang.org/protobuf/proto"
)

// In-graph data parallelism. A replica is a copy of the training graph's forward and
// backward pass (backbone, head, loss, gradients: everything the loss, the number correct,
// the probabilities and the gradients depend on) pinned to one device. Copies read the
// same trained variables: the variable handles and their reads are mapped onto the originals
// on import, so every replica sees one set of weights (TensorFlow sends them to each device
// every step); the variables no phase trains are read from a copy on the replica's own
// device instead (replica_local.go),
// and each replica's gradients, weighted by its share of the batch, are summed into one
// Adam update (see accumulate.go). The dropout rate and seed are shared too, and each
// replica is told where its rows sit in the batch, so the masks are those of one device.
//
// The copy goes through GraphDef import because the C API cannot set the device of ops
// that AddGradients has already added; a copy carries its device on every node.

// tower is one copy of the forward and backward pass: the training graph itself on one
// device, or a replica.
type tower struct {
	device                                                   string // "" for the training graph itself
	index                                                    int    // its place in TrainGraph.towers
	input, features, labels, rowOffset, batchRows, gradScale tf.Output
	loss, correct, probs                                     tf.Output
	grads                                                    []tf.Output // aligned with TrainGraph.trained, unscaled
}

// Replicas returns the number of towers a step is spread over (1 unless Replicate).
func (t *TrainGraph) Replicas() int { return len(t.towers) }

// Replicate spreads every step, evaluation and feature extraction over devices (full
// TensorFlow device names, e.g. /device:CPU:1, /device:GPU:0, /job:worker/task:1/device:CPU:0),
// one replica each. Call it once, after BuildTrainGraph and before the first run.
func (t *TrainGraph) Replicate(g *tf.Graph, devices []string) error {
	return t.replicate(g, devices, nil)
}

// replicate is Replicate; inputs, if not nil, are the towers' inputs (one per device)
// instead of copies of the training graph's input placeholder.
func (t *TrainGraph) replicate(g *tf.Graph, devices []string, inputs []tf.Output) (err error) {
	if len(devices) < 2 {
		return fmt.Errorf("tfops: replicate needs at least 2 devices, got %v", devices)
	}
	if len(t.towers) != 1 {
		return fmt.Errorf("tfops: the training graph is already replicated")
	}
	var buf bytes.Buffer
	if _, err := g.WriteTo(&buf); err != nil {
		return fmt.Errorf("tfops: replicate: write graph: %w", err)
	}
	var gd gpb.GraphDef
	if err := proto.Unmarshal(buf.Bytes(), &gd); err != nil {
		return fmt.Errorf("tfops: replicate: parse graph: %w", err)
	}
	one := t.towers[0]
	// Shared inputs: every replica consumes the originals.
	shared := map[string]bool{t.Dropout.Op.Name(): true, t.DropSeed.Op.Name(): true}
	roots := []tf.Output{one.loss, one.correct, one.probs, one.features, one.input, one.labels, one.rowOffset, one.batchRows}
	roots = append(roots, one.grads...)
	if inputs != nil {
		if len(inputs) != len(devices) {
			return fmt.Errorf("tfops: replicate: %d inputs for %d devices", len(inputs), len(devices))
		}
		shared[one.input.Op.Name()] = true // each copy reads its own input instead
	}
	byName := nodesByName(&gd)
	nodes, err := closure(&gd, byName, roots, func(n *ndpb.NodeDef) bool {
		return shared[n.Name] || n.Op == "VarHandleOp" || n.Op == "ReadVariableOp"
	})
	if err != nil {
		return err
	}
	s := op.NewScopeWithGraph(g).SubScope("tfflowers").SubScope("replicas")
	defer guard("replicate the training graph", s, &err)
	r := &replicator{g: g, gd: &gd, byName: byName, nodes: nodes, local: newLocalCopies(s.SubScope("local"), t.trained), one: one}
	towers := make([]tower, 0, len(devices))
	for k, dev := range devices {
		input := tf.Output{} // a copy of the training graph's input placeholder
		if inputs != nil {
			input = inputs[k]
		}
		tw, err := r.tower(k, dev, input)
		if err != nil {
			return err
		}
		ts := s.SubScope(fmt.Sprintf("tower_%d", k))
		tw.gradScale = op.PlaceholderWithDefault(ts.SubScope("grad_scale"), op.Const(ts.SubScope("scale1"), float32(1)), tf.ScalarShape())
		towers = append(towers, tw)
	}
	t.localSync = r.local.sync()
	if s.Err() != nil {
		return &GraphError{Step: "replicate the training graph", Err: s.Err()}
	}
	t.towers = towers
	return t.buildPhases(s.SubScope("update"))
}

// replicator copies the training graph's tower (its closure, nodes) onto devices.
type replicator struct {
	g      *tf.Graph
	gd     *gpb.GraphDef
	byName map[string]*ndpb.NodeDef
	nodes  *subgraph
	local  *localCopies
	one    tower // the original
}

// tower imports replica k of the closure on dev, as tfflowers/replica_k, and returns its
// tower. Inputs from outside the closure are the original graph's tensors, except the
// reads of variables that local gives the replica its own copy of, and the input
// placeholder when input is set (the device's own input pipeline).
func (r *replicator) tower(k int, dev string, input tf.Output) (tower, error) {
	prefix := fmt.Sprintf("tfflowers/replica_%d", k)
	if err := r.importCopy(k, dev, prefix, input); err != nil {
		return tower{}, err
	}
	var err error
	find := func(o tf.Output) tf.Output {
		if o.Op == nil {
			return o
		}
		c := r.g.Operation(prefix + "/" + o.Op.Name())
		if c == nil {
			err = fmt.Errorf("tfops: replicate: %s was not copied", o.Op.Name())
			return tf.Output{}
		}
		return c.Output(o.Index)
	}
	one := r.one
	if input.Op == nil {
		input = find(one.input)
	}
	tw := tower{device: dev, index: k, input: input, features: find(one.features), labels: find(one.labels),
		rowOffset: find(one.rowOffset), batchRows: find(one.batchRows), loss: find(one.loss), correct: find(one.correct), probs: find(one.probs)}
	for _, gr := range one.grads {
		tw.grads = append(tw.grads, find(gr))
	}
	return tw, err
}

// importCopy imports the closure's nodes placed on dev under prefix.
func (r *replicator) importCopy(k int, dev, prefix string, input tf.Output) error {
	def := &gpb.GraphDef{Versions: r.gd.Versions, Library: r.gd.Library}
	opts := tf.GraphImportOptions{Prefix: prefix}
	mapped := map[string]bool{}
	for _, n := range r.nodes.copy {
		c := proto.Clone(n).(*ndpb.NodeDef)
		c.Device = dev
		kept := c.Input[:0]
		for _, in := range c.Input {
			if strings.HasPrefix(in, "^") {
				if r.nodes.inside[in[1:]] {
					kept = append(kept, in)
				}
				continue // an order on a shared node holds in the original already
			}
			name, idx, err := SplitTensorName(in)
			if err != nil {
				return err
			}
			if !r.nodes.inside[name] && !mapped[in] {
				src := r.g.Operation(name)
				if src == nil {
					return fmt.Errorf("tfops: replicate: no op %q", name)
				}
				to := src.Output(idx)
				if input.Op != nil && name == r.one.input.Op.Name() && idx == r.one.input.Index {
					to = input
				}
				if h := readOfHandle(r.byName, name); h != "" {
					if to, err = r.local.read(k, dev, src, h); err != nil {
						return err
					}
				}
				opts.AddInputMapping(name, idx, to)
				mapped[in] = true
			}
			kept = append(kept, in)
		}
		c.Input = kept
		def.Node = append(def.Node, c)
	}
	raw, err := proto.Marshal(def)
	if err != nil {
		return fmt.Errorf("tfops: replicate: encode graph: %w", err)
	}
	if err := r.g.ImportWithOptions(raw, opts); err != nil {
		return fmt.Errorf("tfops: replicate on %s: %w", dev, err)
	}
	return nil
}

// readOfHandle returns the VarHandleOp that the node named name reads, when it is a
// ReadVariableOp straight off one ("" otherwise: such reads are left as they are).
func readOfHandle(byName map[string]*ndpb.NodeDef, name string) string {
	n := byName[name]
	if n == nil || n.Op != "ReadVariableOp" || len(n.Input) == 0 {
		return ""
	}
	h, _, err := SplitTensorName(n.Input[0])
	if err != nil || byName[h] == nil || byName[h].Op != "VarHandleOp" {
		return ""
	}
	return h
}

// nodesByName indexes a GraphDef's nodes by name.
func nodesByName(gd *gpb.GraphDef) map[string]*ndpb.NodeDef {
	byName := make(map[string]*ndpb.NodeDef, len(gd.Node))
	for _, n := range gd.Node {
		byName[n.Name] = n
	}
	return byName
}

// subgraph is the set of nodes a replica copies.
type subgraph struct {
	copy   []*ndpb.NodeDef // in GraphDef order
	inside map[string]bool
}

// closure collects the nodes the roots depend on, stopping at (and leaving out) the nodes
// stop selects, which the copies consume from the original graph.
func closure(gd *gpb.GraphDef, byName map[string]*ndpb.NodeDef, roots []tf.Output, stop func(*ndpb.NodeDef) bool) (*subgraph, error) {
	inside := map[string]bool{}
	seen := map[string]bool{}
	var stack []string
	for _, r := range roots {
		stack = append(stack, r.Op.Name())
	}
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[name] {
			continue
		}
		seen[name] = true
		n, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("tfops: replicate: graph has no node %q", name)
		}
		if stop(n) {
			continue
		}
		inside[name] = true
		for _, in := range n.Input {
			if strings.HasPrefix(in, "^") {
				continue // control inputs are kept only inside the copy
			}
			nm, _, err := SplitTensorName(in)
			if err != nil {
				return nil, err
			}
			stack = append(stack, nm)
		}
	}
	sg := &subgraph{inside: inside}
	for _, n := range gd.Node {
		if inside[n.Name] {
			sg.copy = append(sg.copy, n)
		}
	}
	return sg, nil
}
