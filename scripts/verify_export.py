#!/usr/bin/env python3
"""Check a tfflowers export with TensorFlow's own Python loaders (what TF Serving users rely on).

1. `saved_model_cli show --all` must list serving_default (image_bytes) and predict_images (images)
   with outputs scores, classes and class_ids.
2. `saved_model_cli run` must run predict_images on a zero batch.
3. `tf.saved_model.load` runs serving_default on the given image files; the scores are printed as
   JSON ({"scores": [[...]], "classes": [...]}) for the caller to compare.
"""
import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True, help="BASE_DIR/<version>")
    p.add_argument("--size", type=int, required=True)
    p.add_argument("images", nargs="+")
    a = p.parse_args(argv)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    show = subprocess.run([cli, "show", "--dir", a.model, "--all"], capture_output=True, text=True, check=True).stdout
    for needle in ["signature_def['serving_default']", "signature_def['predict_images']", "inputs['image_bytes']",
                   "inputs['images']", "outputs['scores']", "outputs['classes']", "outputs['class_ids']",
                   "tensorflow/serving/predict"]:
        if needle not in show:
            print(f"verify_export: saved_model_cli show lacks {needle}", file=sys.stderr)
            return 1
    import tempfile

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        npy = os.path.join(tmp, "images.npy")
        np.save(npy, np.full((2, a.size, a.size, 3), 128.0, np.float32))
        run = subprocess.run([cli, "run", "--dir", a.model, "--tag_set", "serve", "--signature_def", "predict_images",
                              "--inputs", f"images={npy}"], capture_output=True, text=True)
    if run.returncode != 0 or "class_ids" not in run.stdout:
        print(f"verify_export: saved_model_cli run failed:\n{run.stdout}\n{run.stderr[-2000:]}", file=sys.stderr)
        return 1
    import tensorflow as tf

    model = tf.saved_model.load(a.model)
    warmup_path = os.path.join(a.model, "assets.extra", "tf_serving_warmup_requests")
    warmups = 0
    if os.path.exists(warmup_path):
        # Parse with TF Serving's own protos and replay each request, as TF Serving does at load.
        from tensorflow_serving.apis import prediction_log_pb2

        for rec in tf.data.TFRecordDataset(warmup_path):
            log = prediction_log_pb2.PredictionLog.FromString(rec.numpy())
            req = log.predict_log.request
            if req.model_spec.signature_name != "serving_default" or set(req.inputs) != {"image_bytes"}:
                print(f"verify_export: unexpected warm-up request {req.model_spec} {list(req.inputs)}", file=sys.stderr)
                return 1
            model.signatures["serving_default"](image_bytes=tf.constant(tf.make_ndarray(req.inputs["image_bytes"])))
            warmups += 1
    raw = [open(f, "rb").read() for f in a.images]
    out = model.signatures["serving_default"](image_bytes=tf.constant(raw))
    print(json.dumps({"scores": out["scores"].numpy().tolist(),
                      "classes": [c.decode() for c in out["classes"].numpy()],
                      "class_ids": out["class_ids"].numpy().tolist(), "warmup_requests": warmups}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
