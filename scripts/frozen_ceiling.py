#!/usr/bin/env python3
"""How far can a *frozen* MobileNetV2 go on a tfflowers run's own split? A Keras study.

`tfflowers train` keeps the ImageNet backbone frozen and trains GAP -> dropout -> dense on its
features. This script asks whether any reasonable change on the frozen side (preprocessing,
resolution, flip augmentation or test-time flips, richer features from several layers, a
bigger head, longer training) would lift validation accuracy much, scored on exactly the
validation images of a finished run (its val_predictions.csv), with Keras's own
MobileNetV2 built from the same TF-slim .npy weights. Every head is trained with --seeds
seeds; the table gives mean, min and max validation accuracy.

  scripts/frozen_ceiling.py --run runs/flowers --weights-npy ../shared/models/mobilenet_v2_1.0_224_imagenet_npy

The run must have been trained on a class-folder dataset (--data). Takes ~5 minutes on 2 cores.
"""
import argparse
import csv
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")

# Keras layer outputs pooled for the multi-layer probe, deepest first; out_relu is what
# tfflowers' head sees.
PROBE_LAYERS = ["out_relu", "block_16_project_BN", "block_16_expand_relu", "block_15_add",
                "block_13_expand_relu", "block_12_add"]


class StudyError(Exception):
    pass


def read_run(run):
    """The run's data folder, image size, classes and validation files."""
    mpath, ppath = os.path.join(run, "metrics.json"), os.path.join(run, "val_predictions.csv")
    for p in (mpath, ppath):
        if not os.path.isfile(p):
            raise StudyError(f"--run {run}: {os.path.basename(p)} is missing; pass the --out folder of a "
                             "finished `tfflowers train` run (tfflowers writes val_predictions.csv since this script exists)")
    with open(mpath) as f:
        m = json.load(f)
    cfg = m.get("config", {})
    if not cfg.get("data") or cfg.get("val_dir"):
        raise StudyError(f"--run {run}: the run was not trained on a class-folder --data with a --val-split; "
                         "this study needs the folder and the split")
    with open(ppath, newline="") as f:
        val = [row["file"] for row in csv.DictReader(f)]
    # The run's held-out test images are neither trained nor scored on here.
    test = []
    tpath = os.path.join(run, "test_predictions.csv")
    if os.path.isfile(tpath):
        with open(tpath, newline="") as f:
            test = [row["file"] for row in csv.DictReader(f)]
    if len(test) != m.get("test_images", 0):
        raise StudyError(f"--run {run}: metrics.json counts {m.get('test_images', 0)} test images, test_predictions.csv lists {len(test)}")
    return m, cfg, val, test


def list_files(data, classes):
    files, labels = [], []
    for i, c in enumerate(classes):
        d = os.path.join(data, c)
        if not os.path.isdir(d):
            raise StudyError(f"class folder {d} (from the run's metrics.json) does not exist")
        for root, _, names in os.walk(d, followlinks=True):
            for n in sorted(names):
                if n.lower().endswith(IMAGE_EXTS):
                    files.append(os.path.join(root, n))
                    labels.append(i)
    return files, np.array(labels)


def features(model, files, size, mode, flip):
    """GAP features [n, sum(C)] of every probe layer for one preprocessing mode."""
    import tensorflow as tf

    def load(path):
        img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        img = tf.cast(img, tf.float32)
        if mode == "squash":  # tfflowers' preprocessing
            img = tf.image.resize(img, [size, size])
        else:  # "crop<S>": shorter side to S (antialiased), centre crop SxS
            s = int(mode[4:])
            hw = tf.cast(tf.shape(img)[:2], tf.float32)
            scale = s / tf.reduce_min(hw)
            img = tf.image.resize(img, tf.cast(tf.round(hw * scale), tf.int32), antialias=True)
            img = tf.image.resize_with_crop_or_pad(img, s, s)
        if flip:
            img = tf.image.flip_left_right(img)
        return img / 127.5 - 1.0

    ds = tf.data.Dataset.from_tensor_slices(files).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(32).prefetch(2)
    outs = model.predict(ds, verbose=0)
    return [np.asarray(o).mean(axis=(1, 2)) for o in outs]


def fit_head(xtr, ytr, xva, yva, seed, epochs=10, hidden=0, flip_tr=None, flip_va=None, ncls=5):
    """tfflowers' head and defaults in Keras: dropout 0.2 -> dense softmax, Adam 1e-3, batch 64."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((xtr.shape[1],)), keras.layers.Dropout(0.2)]
    if hidden:
        layers += [keras.layers.Dense(hidden, activation="relu"), keras.layers.Dropout(0.2)]
    layers.append(keras.layers.Dense(ncls, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy")
    rng = np.random.default_rng(seed)
    y1 = tf.one_hot(ytr, ncls)
    for _ in range(epochs):
        x = xtr
        if flip_tr is not None:  # random flip, one view per image per epoch
            pick = rng.integers(0, 2, len(xtr))[:, None].astype(bool)
            x = np.where(pick, flip_tr, xtr)
        model.fit(x, y1, batch_size=64, epochs=1, verbose=0, shuffle=True)
    p = model.predict(xva, verbose=0)
    if flip_va is not None:
        p = (p + model.predict(flip_va, verbose=0)) / 2
    return float((p.argmax(1) == yva).mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="the --out folder of a finished tfflowers train run")
    ap.add_argument("--weights-npy", required=True, help="folder of the TF-slim MobileNetV2 .npy files")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--json-out", help="also write the table as JSON here")
    a = ap.parse_args(argv)
    if a.seeds < 1:
        print("frozen_ceiling: --seeds must be at least 1", file=sys.stderr)
        return 2
    try:
        m, cfg, val, test = read_run(a.run)
        data = cfg["data"]
        if not os.path.isabs(data):  # the run recorded it relative to where tfflowers ran
            data = os.path.abspath(data)
        classes, size = m["classes"], int(cfg["image_size"])
        files, labels = list_files(data, classes)
        keyed = {os.path.realpath(f): i for i, f in enumerate(files)}
        va = []
        for v in val:
            i = keyed.get(os.path.realpath(v))
            if i is None:
                raise StudyError(f"validation file {v} from {a.run}/val_predictions.csv is not under {data}")
            va.append(i)
        va = np.array(sorted(va))
        held = [keyed[os.path.realpath(f)] for f in test if os.path.realpath(f) in keyed]
        tr = np.setdiff1d(np.arange(len(files)), np.concatenate([va, np.array(held, dtype=va.dtype)]))
        from export_base_model import ExportError, build_keras_model
        try:
            base = build_keras_model("npy", a.weights_npy, 1.0, 0)
        except ExportError as e:
            raise StudyError(str(e))
    except StudyError as e:
        print(f"frozen_ceiling: {e}", file=sys.stderr)
        return 2

    import keras
    probe = keras.Model(base.inputs, [base.get_layer(n).output for n in PROBE_LAYERS])
    t0 = time.time()
    feats = {}
    for mode in ("squash", "crop224"):
        for flip in (False, True):
            feats[mode, flip] = features(probe, files, size, mode, flip)
            print(f"features {mode}{' flipped' if flip else ''}: {time.time() - t0:.0f}s", file=sys.stderr, flush=True)

    def out(mode, flip=False):
        return feats[mode, flip][0]

    def multi(mode, flip=False):
        return np.concatenate(feats[mode, flip], axis=1)

    y = labels
    studies = [
        ("tfflowers defaults (squash 192, GAP, 10 epochs)", dict(x=out("squash"))),
        ("  + 40 epochs", dict(x=out("squash"), epochs=40)),
        ("  + hidden layer 512 (MLP head)", dict(x=out("squash"), hidden=512)),
        ("  + random flip (cached flipped features)", dict(x=out("squash"), flip=out("squash", True))),
        ("  + random flip + flip at test time", dict(x=out("squash"), flip=out("squash", True), tta=True)),
        ("shorter side 224, centre crop 224", dict(x=out("crop224"))),
        ("  + random flip + flip at test time", dict(x=out("crop224"), flip=out("crop224", True), tta=True)),
        ("GAP of 6 layers (multi-layer probe), squash 192", dict(x=multi("squash"))),
        ("  + random flip + flip at test time", dict(x=multi("squash"), flip=multi("squash", True), tta=True)),
        ("GAP of 6 layers, crop 224, flips, 40 epochs", dict(x=multi("crop224"), flip=multi("crop224", True), tta=True, epochs=40)),
    ]
    rows = []
    for name, s in studies:
        x, fl = s["x"], s.get("flip")
        accs = [fit_head(x[tr], y[tr], x[va], y[va], seed, epochs=s.get("epochs", 10), hidden=s.get("hidden", 0),
                         flip_tr=None if fl is None else fl[tr], flip_va=fl[va] if s.get("tta") else None,
                         ncls=len(classes))
                for seed in range(a.seeds)]
        rows.append({"study": name.strip(" +"), "label": name, "dims": int(x.shape[1]), "mean": float(np.mean(accs)),
                     "min": float(min(accs)), "max": float(max(accs))})
        print(f"{name:<52} {x.shape[1]:>5}  {np.mean(accs):.4f}  ({min(accs):.4f}..{max(accs):.4f})", flush=True)
    print(f"\ntfflowers' own run ({a.run}): val accuracy {m['final_val_accuracy']:.4f} on the same "
          f"{len(va)} validation images ({len(tr)} training); {time.time() - t0:.0f}s in all")
    if a.json_out:
        with open(a.json_out + ".tmp", "w") as f:
            json.dump({"run": a.run, "tfflowers_val_accuracy": m["final_val_accuracy"], "train": len(tr),
                       "val": len(va), "seeds": a.seeds, "rows": rows}, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(a.json_out + ".tmp", a.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
