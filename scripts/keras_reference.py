#!/usr/bin/env python3
"""Keras's own MobileNetV2 features for preprocessed images, for comparison with the Go side.

Reads raw little-endian float32 images [n, size, size, 3] (already x/127.5-1), runs
keras.applications.MobileNetV2(include_top=False) with the given weights through
model.predict, and writes the features as raw float32 plus a JSON line with the shape.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from export_base_model import ExportError, build_keras_model  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights-npy", required=True)
    p.add_argument("--images", required=True, help="raw float32 file")
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    raw = np.fromfile(a.images, dtype="<f4")
    per = a.size * a.size * 3
    if raw.size == 0 or raw.size % per:
        print(f"keras_reference: {a.images}: {raw.size} floats is not a multiple of {per}", file=sys.stderr)
        return 2
    x = raw.reshape(-1, a.size, a.size, 3)
    try:
        model = build_keras_model("npy", a.weights_npy, 1.0, 0)
    except ExportError as e:
        print(f"keras_reference: {e}", file=sys.stderr)
        return 2
    feats = model.predict(x, batch_size=32, verbose=0).astype("<f4")
    feats.tofile(a.out)
    print(json.dumps({"shape": list(feats.shape)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
