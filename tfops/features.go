package tfops

import (
	"fmt"
	"strings"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/galeone/tensorflow/tensorflow/go/op"
)

// HeadMulti is the default head: global average pooling of several backbone layers,
// concatenated (a multi-layer linear probe). On the flowers it beats pooling the last
// layer alone by about two points with the base frozen (scripts/frozen_ceiling.py).
const HeadMulti = "multi"

// HeadKinds lists the heads --head accepts.
var HeadKinds = []string{HeadMulti, HeadGAP, HeadFlatten}

// multiLayers are the Keras layers HeadMulti pools, deepest first: the last activation,
// the last block's projection and expansion, and the residual outputs and expansions a
// few blocks lower (3392 channels in all for MobileNetV2 1.0).
var multiLayers = []string{"out_relu", "block_16_project_BN", "block_16_expand_relu", "block_15_add", "block_13_expand_relu", "block_12_add"}

// HeadLayers returns the backbone layers (Keras names) a head reads, in the order their
// pooled features are concatenated.
func HeadLayers(kind string) ([]string, error) {
	switch kind {
	case HeadMulti:
		return append([]string(nil), multiLayers...), nil
	case HeadGAP, HeadFlatten:
		return []string{"out_relu"}, nil
	}
	return nil, fmt.Errorf("head %q unknown: want one of %s", kind, strings.Join(HeadKinds, ", "))
}

// HeadInput builds, from the backbone layers HeadLayers(kind) names (in that order), the
// tensor the head consumes and the feature cache stores: for gap and multi, the spatial
// mean of each layer, concatenated, float32 [B, sum C]; for flatten, the last layer's map
// itself [B,h,w,C]. Training (on the base graph) and the export graph both call it, so the
// served model computes exactly the features its head was trained on.
func HeadInput(s *op.Scope, kind string, layers []tf.Output) (out tf.Output, err error) {
	defer guard("build head input", s, &err)
	want, err := HeadLayers(kind)
	if err != nil {
		return tf.Output{}, err
	}
	if len(layers) != len(want) {
		return tf.Output{}, fmt.Errorf("%w: head %s reads %d layers, got %d", ErrShape, kind, len(want), len(layers))
	}
	for i, l := range layers {
		if l.Shape().NumDimensions() != 4 {
			return tf.Output{}, fmt.Errorf("%w: layer %s must be rank 4 [batch,h,w,channels], is %v", ErrShape, want[i], l.Shape())
		}
	}
	if kind == HeadFlatten {
		return layers[0], nil
	}
	axes := op.Const(s.SubScope("spatial_axes"), []int32{1, 2})
	pooled := make([]tf.Output, len(layers))
	for i, l := range layers {
		pooled[i] = op.Mean(s.SubScope("global_average_pooling"), l, axes)
	}
	if len(pooled) == 1 {
		out = pooled[0]
	} else {
		out = op.ConcatV2(s.SubScope("concat"), pooled, op.Const(s.SubScope("channel_axis"), int32(1)))
	}
	if err := s.Err(); err != nil {
		return tf.Output{}, &GraphError{Step: "build head input", Err: err}
	}
	return out, nil
}

// AddHeadInput adds HeadInput to g (a loaded base's graph) under tfflowers_head_input/,
// for training: the training graph then feeds or computes that tensor. Call it once per graph.
func AddHeadInput(g *tf.Graph, kind string, layers []tf.Output) (tf.Output, error) {
	return HeadInput(op.NewScopeWithGraph(g).SubScope("tfflowers_head_input"), kind, layers)
}

// HeadInputID names what HeadInput computes for kind, for the feature cache's key: a change
// to the layers or the pooling must start a new cache.
func HeadInputID(kind string) (string, error) {
	layers, err := HeadLayers(kind)
	if err != nil {
		return "", err
	}
	pool := "global_average_pooling"
	if kind == HeadFlatten {
		pool = "map"
	}
	return pool + "(" + strings.Join(layers, ",") + ")", nil
}

// HeadInputShape is the per-image shape of a HeadInput result: [D] when pooled (D known
// from the graph), else mapShape, the backbone map's [h,w,C] at the image size fed.
func HeadInputShape(headIn tf.Output, mapShape []int64) ([]int64, error) {
	if headIn.Shape().NumDimensions() == 2 {
		d := headIn.Shape().Size(1)
		if d < 0 {
			return nil, fmt.Errorf("%w: pooled feature width unknown in %v", ErrShape, headIn.Shape())
		}
		return []int64{d}, nil
	}
	if len(mapShape) != 3 {
		return nil, fmt.Errorf("%w: feature map shape %v, want [h,w,C]", ErrShape, mapShape)
	}
	return append([]int64(nil), mapShape...), nil
}
