#!/usr/bin/env python3
"""Reference backbone gradients from TensorFlow Python's GradientTape, for the Go gradient check.

Builds Keras MobileNetV2(include_top=False) with the given .npy weights, puts the tfflowers head on it
(global average pooling -> dense with the given kernel and bias; dropout off), computes the mean softmax
cross-entropy of one-hot labels, and writes d(loss)/d(variable) for each requested variable as raw float32.
Inputs are raw little-endian float32 files written by the Go test.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from export_base_model import build_keras_model  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights-npy", required=True)
    p.add_argument("--dir", required=True, help="holds images.f32, labels.json, kernel.f32, bias.f32")
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--vars", required=True, help="comma-separated variable names, e.g. Conv_1/kernel")
    a = p.parse_args(argv)
    import tensorflow as tf

    meta = json.load(open(os.path.join(a.dir, "labels.json")))
    labels, classes = np.array(meta["labels"]), meta["classes"]
    x = np.fromfile(os.path.join(a.dir, "images.f32"), "<f4").reshape(-1, a.size, a.size, 3)
    kernel = np.fromfile(os.path.join(a.dir, "kernel.f32"), "<f4").reshape(-1, classes)
    bias = np.fromfile(os.path.join(a.dir, "bias.f32"), "<f4")
    model = build_keras_model("npy", a.weights_npy, 1.0, 0)
    by_path = {w.path: w for w in model.weights}
    wanted = [by_path[n] for n in a.vars.split(",")]
    with tf.GradientTape() as tape:
        feats = model(x, training=False)
        pooled = tf.reduce_mean(feats, axis=[1, 2])
        logits = tf.matmul(pooled, kernel) + bias
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(tf.one_hot(labels, classes), logits))
    grads = tape.gradient(loss, wanted)
    for name, g in zip(a.vars.split(","), grads):
        np.asarray(g, "<f4").tofile(os.path.join(a.dir, name.replace("/", "__") + ".grad.f32"))
    print(json.dumps({"loss": float(loss)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
