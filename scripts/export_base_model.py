#!/usr/bin/env python3
"""Export Keras MobileNetV2 (include_top=False) as a flat, differentiable TF1-style SavedModel.

Why this export form: a TF2 Keras SavedModel hides the backbone inside function calls
(StatefulPartitionedCall), which TF_AddGradientsWithPrefix cannot differentiate. Here the Keras model is
traced once into a concrete function, and that function's graph (plain Conv2D / DepthwiseConv2dNative /
FusedBatchNormV3 / Relu6 / Pad / AddV2 ops reading resource variables) is imported into a TF1 graph whose
captured variable placeholders are rebound to real, named resource variables. Keras 3 writes inference
BatchNorm as Mul/Rsqrt/AddV2 over the activations; the trace swaps that for one FusedBatchNormV3
(is_training=false) per layer, which has a C++ gradient too and which Grappler fuses into the preceding
convolution on CPU: 27% more images/s through the backbone, same numbers within float32 rounding
(max |diff| ~2e-4 on features up to 6). The result is a flat graph of primitive ops, loadable by the C API's TF_LoadSessionFromSavedModel, whose weights live in
variables/ (restored by the SaverDef), so the Go side can both run it frozen and fine-tune it.

The spatial size is dynamic: the input is float32 [batch, height, width, 3], already preprocessed with
x/127.5 - 1. assets.extra/tfflowers_base.json records tensor names, the default size, the preprocessing
and the variables (Keras layer names), so consumers never guess.

Weights:
  imagenet      Keras downloads the official ImageNet weights (needs internet).
  --weights-npy DIR  one .npy per tensor with TF-slim names (see shared README mapping).
  none          random init (fast tests).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SERVE_TAG = "serve"
INPUT_KEY = "images"
OUTPUT_KEY = "features"
INPUT_NAME = "images"  # placeholder name in the exported graph
FEATURE_NAME = "features"  # identity on the backbone output
PREPROCESSING = "x/127.5-1"
METADATA_FILE = "tfflowers_base.json"
# Version 2 adds "layer_tensors": intermediate activations a head may pool (tfflowers' default
# head pools several). Version 1 bases still load for the heads that read features:0 alone.
FORMAT_VERSION = 2
TAP_SCOPE = "layers"  # identities on intermediate layer outputs: layers/<keras layer>:0
# Keras layers whose outputs are exposed: every block's expansion, depthwise and projection
# output and every residual sum, i.e. each place a probe might pool.
TAP_PATTERN = re.compile(r"(Conv1_relu|expanded_conv_.*(_relu|_project_BN)|block_\d+_(expand_relu|depthwise_relu|project_BN|add))")
BATCHNORM_OP = "FusedBatchNormV3"


class ExportError(Exception):
    """A user-facing failure: printed without a traceback, exit code 2."""


def slim_name_for(keras_path: str) -> str:
    """Map a Keras MobileNetV2 weight path (layer/weight) to its TF-slim .npy stem.

    The mapping is the table in the shared README; anything unknown raises so that a new Keras
    version with other layer names fails loudly instead of leaving weights random.
    """
    layer, weight = keras_path.split("/", 1)
    bn_suffix = {
        "gamma": "BatchNorm_gamma",
        "beta": "BatchNorm_beta",
        "moving_mean": "BatchNorm_moving_mean",
        "moving_variance": "BatchNorm_moving_variance",
    }

    def conv_or_bn(slim_prefix: str, is_bn: bool, is_depthwise: bool = False) -> str:
        if is_bn:
            if weight not in bn_suffix:
                raise ExportError(f"unexpected batch-norm weight {keras_path!r}")
            return f"{slim_prefix}_{bn_suffix[weight]}"
        expected = "kernel"  # Keras 3 names depthwise kernels "kernel" too
        if weight != expected:
            raise ExportError(f"unexpected convolution weight {keras_path!r} (expected {expected})")
        return f"{slim_prefix}_depthwise_weights" if is_depthwise else f"{slim_prefix}_weights"

    if layer == "Conv1":
        return conv_or_bn("Conv", False)
    if layer == "bn_Conv1":
        return conv_or_bn("Conv", True)
    if layer == "Conv_1":
        return conv_or_bn("Conv_1", False)
    if layer == "Conv_1_bn":
        return conv_or_bn("Conv_1", True)
    m = re.fullmatch(r"expanded_conv_(depthwise|project)(_BN)?", layer)
    if m:
        part, bn = m.group(1), bool(m.group(2))
        return conv_or_bn(f"expanded_conv_{part}", bn, is_depthwise=(part == "depthwise" and not bn))
    m = re.fullmatch(r"block_(\d+)_(expand|depthwise|project)(_BN)?", layer)
    if m:
        n, part, bn = m.group(1), m.group(2), bool(m.group(3))
        return conv_or_bn(f"expanded_conv_{n}_{part}", bn, is_depthwise=(part == "depthwise" and not bn))
    raise ExportError(f"no TF-slim name for Keras weight {keras_path!r}")


def load_npy_weights(model, npy_dir: str) -> None:
    """Fill every Keras weight from npy_dir; every .npy must be consumed exactly once."""
    import numpy as np

    if not os.path.isdir(npy_dir):
        raise ExportError(f"--weights-npy {npy_dir!r}: not a directory (expected one .npy file per tensor)")
    available = {f[:-4] for f in os.listdir(npy_dir) if f.endswith(".npy")}
    if not available:
        raise ExportError(f"--weights-npy {npy_dir!r}: no .npy files found")
    used = set()
    for w in model.weights:
        stem = slim_name_for(w.path)
        if stem not in available:
            raise ExportError(
                f"--weights-npy {npy_dir!r}: missing {stem}.npy for Keras weight {w.path} {tuple(w.shape)}")
        value = np.load(os.path.join(npy_dir, stem + ".npy"), allow_pickle=False)
        if tuple(value.shape) != tuple(w.shape):
            raise ExportError(
                f"--weights-npy: {stem}.npy has shape {value.shape}, Keras weight {w.path} needs {tuple(w.shape)}")
        if stem in used:
            raise ExportError(f"--weights-npy: {stem}.npy would fill two Keras weights")
        w.assign(value.astype("float32"))
        used.add(stem)
    unused = sorted(available - used)
    if unused:
        raise ExportError(
            f"--weights-npy {npy_dir!r}: {len(unused)} tensors were not consumed (wrong alpha or model?): "
            + ", ".join(unused[:5]))


def build_keras_model(weights: str, npy_dir: str | None, alpha: float, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    keras_weights = "imagenet" if weights == "imagenet" else None
    try:
        model = keras.applications.MobileNetV2(
            input_shape=(None, None, 3), include_top=False, alpha=alpha, weights=keras_weights)
    except Exception as e:  # the download is the usual failure offline
        if weights == "imagenet":
            raise ExportError(
                f"could not get Keras ImageNet weights ({e.__class__.__name__}: {e}). Offline? "
                "Use --weights-npy DIR with the TF-slim .npy files (TFFLOWERS_LOCAL=../shared does this in make).")
        raise
    if weights == "npy":
        load_npy_weights(model, npy_dir)
    return model


@contextlib.contextmanager
def fused_batchnorm():
    """Make Keras's TensorFlow backend express inference BatchNorm on NHWC tensors as one
    FusedBatchNormV3 op instead of Mul/Rsqrt/AddV2 over the activations (see the module doc)."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import nn as keras_tf_nn

    unfused = keras_tf_nn.batch_normalization

    def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3):
        if len(x.shape) != 4 or axis not in (-1, 3) or offset is None or scale is None:
            return unfused(x, mean, variance, axis, offset=offset, scale=scale, epsilon=epsilon)
        y, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=scale, offset=offset, mean=mean, variance=variance, epsilon=epsilon,
            data_format="NHWC", is_training=False)
        return y

    keras_tf_nn.batch_normalization = batch_normalization
    try:
        yield
    finally:
        keras_tf_nn.batch_normalization = unfused


def trace_flat(model):
    """Trace the model into a concrete function whose graph holds only primitive ops."""
    import keras
    import tensorflow as tf

    taps = [layer.name for layer in model.layers if TAP_PATTERN.fullmatch(layer.name)]
    # One functional model over the same layers (same weights) with the intermediate outputs too.
    probe = keras.Model(model.inputs, [model.output] + [model.get_layer(n).output for n in taps])

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def features(x):
        return probe(x, training=False)

    with fused_batchnorm():
        cf = features.get_concrete_function()
    gd = cf.graph.as_graph_def()
    if gd.library.function:
        raise ExportError("traced MobileNetV2 still contains function calls; cannot export a flat graph")
    n_bn = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    n_fused = sum(n.op == BATCHNORM_OP for n in gd.node)
    if n_fused != n_bn or any(n.op == "Rsqrt" for n in gd.node):
        raise ExportError(f"expected {n_bn} {BATCHNORM_OP} ops in the trace, found {n_fused}: this Keras "
                          f"({keras.__version__}) builds BatchNorm differently; pin the version in scripts/requirements.txt")
    # captures: (external EagerTensor handle, internal placeholder). Match by resource identity.
    by_handle = {}
    for w in model.weights:
        var = w.value if hasattr(w, "value") else w
        by_handle[var.handle.ref()] = w
    rebinding = []
    for external, internal in cf.graph.captures:
        w = by_handle.get(external.ref())
        if w is None:
            raise ExportError(f"captured tensor {internal.name} is not a model weight")
        rebinding.append((internal.name, w))
    if len(rebinding) != len(model.weights):
        raise ExportError(f"captured {len(rebinding)} variables, model has {len(model.weights)}")
    input_name = cf.inputs[0].name
    output_names = [o.name for o in cf.outputs]
    if len(output_names) != 1 + len(taps):
        raise ExportError(f"traced {len(output_names)} outputs, expected {1 + len(taps)}")
    return gd, input_name, output_names[0], rebinding, list(zip(taps, output_names[1:]))


def export(args) -> dict:
    import numpy as np
    import tensorflow as tf
    import keras

    model = build_keras_model(args.weights_mode, args.weights_npy, args.alpha, args.seed)
    gd, input_name, output_name, rebinding, taps = trace_flat(model)
    # Values must be read eagerly, before entering the TF1 graph below.
    values = {w.path: np.asarray(w.numpy(), dtype=np.float32) for w in model.weights}

    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3], name=INPUT_NAME)
        variables, input_map = [], {input_name: images}
        for internal_name, w in rebinding:
            var = tf.compat.v1.Variable(
                tf.zeros(w.shape, tf.float32), name=w.path, dtype=tf.float32, use_resource=True,
                trainable=w.trainable or "moving_" not in w.path)
            input_map[internal_name] = var.handle
            variables.append((var, w))
        out, *tap_outs = tf.graph_util.import_graph_def(
            gd, input_map=input_map, return_elements=[output_name] + [t for _, t in taps], name="backbone")
        features = tf.identity(out, name=FEATURE_NAME)
        with tf.name_scope(TAP_SCOPE):
            layer_tensors = [(layer, tf.identity(t, name=layer)) for (layer, _), t in zip(taps, tap_outs)]
        saver = tf.compat.v1.train.Saver(var_list=[v for v, _ in variables], sharded=False)

        parent = os.path.dirname(os.path.abspath(args.out)) or "."
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-base-", dir=parent)
        staging = os.path.join(tmp, "model")
        try:
            with tf.compat.v1.Session(graph=graph) as sess:
                for var, w in variables:
                    var.load(values[w.path], sess)
                builder = tf.compat.v1.saved_model.Builder(staging)
                sig = tf.compat.v1.saved_model.predict_signature_def(
                    inputs={INPUT_KEY: images}, outputs={OUTPUT_KEY: features})
                builder.add_meta_graph_and_variables(
                    sess, [SERVE_TAG], signature_def_map={"serving_default": sig}, saver=saver,
                    strip_default_attrs=False)
                builder.save()
                probe = np.zeros([1, args.image_size, args.image_size, 3], np.float32)
                shapes = sess.run([features] + [t for _, t in layer_tensors], {images: probe})
                feature_shape = list(shapes[0].shape[1:])
                layers_meta = [{"layer": "out_relu", "tensor": features.name, "shape": feature_shape}]
                layers_meta += [{"layer": layer, "tensor": t.name, "shape": list(v.shape[1:])}
                                for (layer, t), v in zip(layer_tensors, shapes[1:])]

            weights_desc = {"imagenet": "keras:imagenet", "none": f"random:seed={args.seed}"}.get(
                args.weights_mode, "npy:" + os.path.basename(os.path.normpath(args.weights_npy or "")))
            meta = {
                "format": "tfflowers-base",
                "format_version": FORMAT_VERSION,
                "architecture": "MobileNetV2",
                "alpha": args.alpha,
                "include_top": False,
                "weights": weights_desc,
                "tags": [SERVE_TAG],
                "signature": "serving_default",
                "input_tensor": INPUT_NAME + ":0",
                "feature_tensor": FEATURE_NAME + ":0",
                "input_dtype": "float32",
                "dynamic_size": True,
                "image_size": args.image_size,
                "min_image_size": 32,
                "feature_shape": feature_shape,
                # Shapes at image_size; the spatial size scales with the input, the channels do not.
                "layer_tensors": layers_meta,
                "preprocessing": PREPROCESSING,
                "batchnorm_epsilon": 1e-3,
                "batchnorm_op": BATCHNORM_OP,
                "variables": [{"name": v.op.name, "layer": w.path.split("/")[0], "shape": list(w.shape),
                               "trainable": "moving_" not in w.path} for v, w in variables],
                "tensorflow_version": tf.__version__,
                "keras_version": keras.__version__,
            }
            extra = os.path.join(staging, "assets.extra")
            os.makedirs(extra, exist_ok=True)
            with open(os.path.join(extra, METADATA_FILE), "w") as fh:
                json.dump(meta, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            fsync_tree(staging)
            if os.path.exists(args.out):
                if not args.force:
                    raise ExportError(f"--out {args.out!r} exists; pass --force to replace it")
                old = os.path.join(tmp, "old")
                os.rename(args.out, old)
            os.rename(staging, args.out)
            dir_fd = os.open(parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return meta


def fsync_tree(root: str) -> None:
    for dirpath, _, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="SavedModel directory to write (atomically)")
    p.add_argument("--weights", default="imagenet",
                   help="imagenet (Keras download, default), none (random), or a directory of TF-slim .npy files")
    p.add_argument("--weights-npy", help="directory of TF-slim .npy files (same as --weights DIR)")
    p.add_argument("--alpha", type=float, default=1.0, help="width multiplier (npy weights exist for 1.0)")
    p.add_argument("--image-size", type=int, default=192, help="default input size recorded in the metadata")
    p.add_argument("--seed", type=int, default=0, help="seed for --weights none")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    args = p.parse_args(argv)
    if args.weights_npy:
        args.weights_mode = "npy"
    elif args.weights in ("imagenet", "none"):
        args.weights_mode = args.weights
    else:
        args.weights_mode, args.weights_npy = "npy", args.weights
    if args.image_size < 32:
        p.error(f"--image-size {args.image_size}: MobileNetV2 needs at least 32")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        meta = export(args)
    except ExportError as e:
        print(f"export_base_model: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"out": args.out, "weights": meta["weights"], "feature_shape": meta["feature_shape"],
                      "variables": len(meta["variables"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
