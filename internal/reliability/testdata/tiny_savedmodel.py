"""Writes tiny TF1-style SavedModels that are not valid tfflowers bases, each with a
tfflowers_base.json that claims they are, so that the loader's checks can be exercised.

Usage: python tiny_savedmodel.py OUT_DIR

  OUT_DIR/other_signature   signature "predict" only (the metadata names serving_default)
  OUT_DIR/other_names       serving_default with input "x" and output "y"
  OUT_DIR/flat_input        serving_default images: float32 [batch, 10] -> features
"""
import json
import os
import sys

import tensorflow as tf

tf1 = tf.compat.v1


def write(path, sig_key, in_key, out_key, in_shape):
    g = tf.Graph()
    with g.as_default():
        x = tf1.placeholder(tf.float32, in_shape, name="images")
        w = tf1.get_variable("w", shape=[], initializer=tf1.ones_initializer())
        y = tf.identity(x * w, name="features")
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            b = tf1.saved_model.Builder(path)
            sig = tf1.saved_model.predict_signature_def({in_key: x}, {out_key: y})
            b.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={sig_key: sig})
            b.save()
    meta = {
        "format": "tfflowers-base", "format_version": 1, "architecture": "MobileNetV2", "alpha": 1.0,
        "weights": "none", "signature": "serving_default", "input_tensor": "images:0",
        "feature_tensor": "features:0", "dynamic_size": True, "image_size": 192, "min_image_size": 32,
        "feature_shape": [6, 6, 1280], "preprocessing": "x/127.5-1", "variables": [],
    }
    os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
    with open(os.path.join(path, "assets.extra", "tfflowers_base.json"), "w") as f:
        json.dump(meta, f)


out = sys.argv[1]
write(os.path.join(out, "other_signature"), "predict", "images", "features", [None, None, None, 3])
write(os.path.join(out, "other_names"), "serving_default", "x", "y", [None, None, None, 3])
write(os.path.join(out, "flat_input"), "serving_default", "images", "features", [None, 10])
