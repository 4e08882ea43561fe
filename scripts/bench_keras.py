#!/usr/bin/env python3
"""Keras side of scripts/bench.sh: the same frozen MobileNetV2 (same TF-slim .npy weights,
same TensorFlow build as the C API tfflowers links), the same files, sizes and settings.

  extract  files -> features with model.predict on a tf.data pipeline (parallel decode with
           num_parallel_calls=AUTOTUNE, batch, prefetch), and model-only throughput
           (predict_on_batch on one pre-decoded batch in memory, repeated).
  finetune tfflowers' fine-tuning recipe (`train --fine-tune`): frozen epochs, then the backbone
           from --fine-tune-from trained with augmentation, label smoothing and restore-best, on
           the split of a tfflowers run (--val-list; the test_predictions.csv beside it is the test set).
  fit      the codelab's head (GlobalAveragePooling2D -> Dropout(0.2) -> Dense(softmax)) on the
           frozen base (trainable=False), Adam, categorical cross-entropy, model.fit on a tf.data
           pipeline over the files (shuffle -> parallel decode -> batch -> prefetch), no caching.

Preprocessing is tfflowers' (tfops.Preprocessing): tf.io.decode_image(channels=3,
expand_animations=False) -> tf.image.resize(bilinear, half-pixel centres) -> x/127.5 - 1.
Each measurement is one JSON line on stdout (and appended to --json-out).
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

T_PROCESS = time.perf_counter()

import numpy as np  # noqa: E402

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".gif", ".bmp")


def scan(data_dir, limit=0):
    """Class folders in name order, files in name order (as pipeline.ScanFolders)."""
    classes = sorted(d for d in os.listdir(data_dir) if os.path.isdir(os.path.join(data_dir, d)))
    paths, labels = [], []
    for c, name in enumerate(classes):
        folder = os.path.join(data_dir, name)
        for f in sorted(os.listdir(folder)):
            if f.lower().endswith(IMAGE_EXTS) and os.path.isfile(os.path.join(folder, f)):
                paths.append(os.path.join(folder, f))
                labels.append(c)
    if limit:
        paths, labels = paths[:limit], labels[:limit]
    return classes, paths, np.array(labels, dtype=np.int64)


def split(labels, val_fraction, seed):
    """Stratified: round(fraction*n) of each class to validation, like pipeline.Split (same sizes)."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = int(round(val_fraction * len(idx)))
        if k == 0 and val_fraction > 0 and len(idx) >= 2:
            k = 1
        val[rng.permutation(idx)[:k]] = True
    return np.flatnonzero(~val), np.flatnonzero(val)


def split_like(paths, val_csv):
    """tfflowers' own split: the files of a run's val_predictions.csv are the validation set,
    those of the test_predictions.csv beside it (if any) the held-out test set; the rest trains."""
    import csv

    def listed(path):
        with open(path, newline="") as f:
            return {os.path.realpath(row["file"]) for row in csv.DictReader(f)}

    test_csv = os.path.join(os.path.dirname(val_csv), "test_predictions.csv")
    sets = [listed(val_csv), listed(test_csv) if os.path.isfile(test_csv) else set()]
    real = [os.path.realpath(p) for p in paths]
    out = []
    for name, files in zip((val_csv, test_csv), sets):
        hit = np.array([r in files for r in real], dtype=bool)
        if hit.sum() != len(files):
            raise SystemExit(f"bench_keras: {name} lists {len(files)} files, {hit.sum()} of them found in --data")
        out.append(hit)
    is_val, is_test = out
    return np.flatnonzero(~is_val & ~is_test), np.flatnonzero(is_val), np.flatnonzero(is_test)


def setup_tf(a):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(a.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.inter_op_threads)
    return tf


def load_fn(tf, size):
    def load(path):
        img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        img = tf.image.resize(img, [size, size])  # bilinear, half-pixel centres
        return img / 127.5 - 1.0
    return load


def emit(a, rec):
    rec.update({"side": "keras", "batch": a.batch_size, "size": a.image_size,
                "intra_op_threads": a.intra_op_threads, "inter_op_threads": a.inter_op_threads,
                "peak_rss_mib": peak_rss_mib()})
    line = json.dumps(rec)
    print(line, flush=True)
    if a.json_out:
        with open(a.json_out, "a") as f:
            f.write(line + "\n")


def peak_rss_mib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def base_model(a):
    from export_base_model import build_keras_model

    return build_keras_model("npy", a.weights_npy, 1.0, 0)


def cmd_extract(a):
    tf = setup_tf(a)
    _, paths, _ = scan(a.data, a.limit)
    model = base_model(a)
    load = load_fn(tf, a.image_size)
    AUTOTUNE = tf.data.AUTOTUNE

    def dataset():
        return (tf.data.Dataset.from_tensor_slices(paths)
                .map(load, num_parallel_calls=AUTOTUNE)
                .batch(a.batch_size)
                .prefetch(AUTOTUNE))

    first = np.stack([load(tf.constant(p)).numpy() for p in paths[:a.batch_size]])
    for _ in range(a.warmup_batches):  # traces predict_function; untimed, like the Go side
        model.predict_on_batch(first)
    # Untimed: model.predict's first call on a dataset traces its own function and starts tf.data.
    model.predict(tf.data.Dataset.from_tensor_slices(paths[:a.batch_size]).map(load).batch(a.batch_size), verbose=0)
    modes = a.modes.split(",")
    for mode in modes:
        for r in range(1, a.repeats + 1):
            if mode == "raw":
                t0 = time.perf_counter()
                for _ in range(a.raw_batches):
                    model.predict_on_batch(first)
                sec = time.perf_counter() - t0
                n = len(first) * a.raw_batches
            elif mode == "pipelined":
                t0 = time.perf_counter()
                feats = model.predict(dataset(), verbose=0)
                sec = time.perf_counter() - t0
                n = feats.shape[0]
                del feats
            else:
                raise SystemExit(f"bench_keras: unknown mode {mode!r} (want raw, pipelined)")
            emit(a, {"mode": mode, "repeat": r, "images": int(n), "seconds": sec, "images_per_second": n / sec})


class EpochTimer:
    """Per-epoch training seconds with validation subtracted (Keras 3 validates inside the epoch)."""

    def __init__(self, keras):
        class CB(keras.callbacks.Callback):
            def __init__(cb):
                super().__init__()
                cb.epochs = []

            def on_epoch_begin(cb, epoch, logs=None):
                cb.t0, cb.val = time.perf_counter(), 0.0

            def on_test_begin(cb, logs=None):
                cb.v0 = time.perf_counter()

            def on_test_end(cb, logs=None):
                cb.val += time.perf_counter() - cb.v0

            def on_epoch_end(cb, epoch, logs=None):
                total = time.perf_counter() - cb.t0
                cb.epochs.append({"epoch": epoch + 1, "seconds_with_val": total, "val_seconds": cb.val,
                                  "train_seconds": total - cb.val,
                                  **{k: float(v) for k, v in (logs or {}).items()}})
        self.cb = CB()


def cmd_fit(a):
    tf = setup_tf(a)
    import keras

    classes, paths, labels = scan(a.data, a.limit)
    if a.val_list:
        tr, va, _ = split_like(paths, a.val_list)
    else:
        tr, va = split(labels, a.val_split, a.seed)
    paths = np.array(paths)
    onehot = np.eye(len(classes), dtype=np.float32)[labels]
    load = load_fn(tf, a.image_size)
    AUTOTUNE = tf.data.AUTOTUNE

    def dataset(idx, shuffle):
        ds = tf.data.Dataset.from_tensor_slices((paths[idx], onehot[idx]))
        if shuffle:
            ds = ds.shuffle(len(idx), seed=a.seed, reshuffle_each_iteration=True)
        return (ds.map(lambda p, y: (load(p), y), num_parallel_calls=AUTOTUNE)
                .batch(a.batch_size)
                .prefetch(AUTOTUNE))

    t_build = time.perf_counter()
    base = base_model(a)
    base.trainable = False
    keras.utils.set_random_seed(a.seed)
    inp = keras.Input((a.image_size, a.image_size, 3))
    x = base(inp, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    out = keras.layers.Dense(len(classes), activation="softmax")(x)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(a.lr), loss="categorical_crossentropy", metrics=["accuracy"])
    timer = EpochTimer(keras)
    t_fit = time.perf_counter()
    hist = model.fit(dataset(tr, True), epochs=a.epochs, verbose=0, callbacks=[timer.cb],
                     validation_data=dataset(va, False) if a.validate else None)
    t_end = time.perf_counter()
    last = {k: float(v[-1]) for k, v in hist.history.items()}
    emit(a, {"mode": "fit", "epochs": a.epochs, "train_images": int(len(tr)), "val_images": int(len(va)),
             "validate": bool(a.validate), "per_epoch": timer.cb.epochs,
             "fit_seconds": t_end - t_fit, "build_seconds": t_fit - t_build,
             "process_seconds": t_end - T_PROCESS, "final": last})


def load_augment_fn(tf, size, zoom, brightness):
    """tfflowers' --augment (tfops.augmentOps): a random box keeping at least 1-zoom of each
    side, resized to size, a random left-right flip and a brightness shift, on 0..255 pixels."""
    def load(path):
        img = tf.cast(tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False), tf.float32)
        u = tf.random.uniform([5])
        side_y, side_x = 1 - zoom * u[0], 1 - zoom * u[1]
        y1, x1 = (1 - side_y) * u[2], (1 - side_x) * u[3]
        box = tf.stack([y1, x1, y1 + side_y, x1 + side_x])[None]
        out = tf.image.crop_and_resize(img[None], box, [0], [size, size])[0]
        out = tf.where(u[4] < 0.5, tf.reverse(out, [1]), out)
        if brightness > 0:
            out = tf.clip_by_value(out + (u[0] * 2 - 1) * brightness * 255, 0, 255)
        return out / 127.5 - 1.0
    return load


def cmd_finetune(a):
    """tfflowers' fine-tuning recipe in Keras, on the split of a tfflowers run: the head on the
    frozen base for --epochs (no augmentation), then --fine-tune-epochs more with the layers
    from --fine-tune-from on trainable (BatchNorm in inference mode, as tfflowers), a fresh
    Adam at --fine-tune-lr, augmentation, label smoothing, and the weights of the epoch with the
    lowest validation loss restored at the end; then the held-out test set, once."""
    tf = setup_tf(a)
    import keras

    if not a.val_list:
        raise SystemExit("bench_keras finetune: --val-list (a tfflowers run's val_predictions.csv) is required")
    classes, paths, labels = scan(a.data, a.limit)
    tr, va, te = split_like(paths, a.val_list)
    paths = np.array(paths)
    onehot = np.eye(len(classes), dtype=np.float32)[labels]
    plain = load_fn(tf, a.image_size)
    augmented = load_augment_fn(tf, a.image_size, a.augment_zoom, a.augment_brightness)
    AUTOTUNE = tf.data.AUTOTUNE

    def dataset(idx, shuffle, load):
        ds = tf.data.Dataset.from_tensor_slices((paths[idx], onehot[idx]))
        if shuffle:
            ds = ds.shuffle(len(idx), seed=a.seed, reshuffle_each_iteration=True)
        return ds.map(lambda p, y: (load(p), y), num_parallel_calls=AUTOTUNE).batch(a.batch_size).prefetch(AUTOTUNE)

    t_build = time.perf_counter()
    base = base_model(a)
    keras.utils.set_random_seed(a.seed)
    inp = keras.Input((a.image_size, a.image_size, 3))
    x = base(inp, training=False)  # BatchNorm statistics stay frozen in both phases
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(a.dropout)(x)
    model = keras.Model(inp, keras.layers.Dense(len(classes), activation="softmax")(x))
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=a.label_smoothing)

    class Best(keras.callbacks.Callback):
        loss, weights, epoch, seen = float("inf"), None, 0, 0

        def on_epoch_end(cb, epoch, logs=None):
            cb.seen += 1
            if logs["val_loss"] < cb.loss:
                cb.loss, cb.weights, cb.epoch = logs["val_loss"], cb.model.get_weights(), cb.seen
    best = Best()

    base.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(a.lr), loss=loss, metrics=["accuracy"])
    frozen_timer = EpochTimer(keras)
    t0 = time.perf_counter()
    model.fit(dataset(tr, True, plain), epochs=a.epochs, verbose=0, callbacks=[frozen_timer.cb, best],
              validation_data=dataset(va, False, plain))
    t1 = time.perf_counter()
    base.trainable = True
    on = False
    for layer in base.layers:
        on = on or layer.name == a.fine_tune_from or layer.name.startswith(a.fine_tune_from + "_")
        layer.trainable = on
    if not on:
        raise SystemExit(f"bench_keras finetune: no layer {a.fine_tune_from!r} in MobileNetV2")
    lr = a.fine_tune_lr
    if a.fine_tune_schedule == "cosine":  # as tfflowers: from the peak to 0 at the last step
        steps = a.fine_tune_epochs * -(-len(tr) // a.batch_size)
        lr = keras.optimizers.schedules.CosineDecay(a.fine_tune_lr, decay_steps=steps, alpha=0.0)
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, metrics=["accuracy"])
    timer = EpochTimer(keras)
    hist = model.fit(dataset(tr, True, augmented), epochs=a.fine_tune_epochs, verbose=0, callbacks=[timer.cb, best],
                     validation_data=dataset(va, False, plain))
    t2 = time.perf_counter()
    model.set_weights(best.weights)
    test_acc = None
    if len(te):
        probs = model.predict(dataset(te, False, plain), verbose=0)
        test_acc = float((probs.argmax(1) == labels[te]).mean())
    train_s = sum(e["train_seconds"] for e in timer.cb.epochs)
    later = timer.cb.epochs[1:]  # the first fine-tuning epoch also traces and compiles the new train step
    later_s = sum(e["train_seconds"] for e in later)
    emit(a, {"mode": "finetune", "epochs": a.epochs, "fine_tune_epochs": a.fine_tune_epochs,
             "fine_tune_from": a.fine_tune_from, "train_images": int(len(tr)), "val_images": int(len(va)),
             "test_images": int(len(te)), "per_epoch": timer.cb.epochs, "frozen_per_epoch": frozen_timer.cb.epochs,
             "fine_tune_train_seconds": train_s,
             "fine_tune_images_per_second": len(tr) * a.fine_tune_epochs / train_s if train_s else None,
             "fine_tune_images_per_second_after_first": len(tr) * len(later) / later_s if later_s else None,
             "frozen_seconds": t1 - t0, "fine_tune_seconds": t2 - t1, "build_seconds": t0 - t_build,
             "restored_epoch": best.epoch, "test_accuracy": test_acc,
             "final_val_accuracy": float(hist.history["val_accuracy"][-1]), "process_seconds": time.perf_counter() - T_PROCESS})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["extract", "fit", "finetune"])
    p.add_argument("--data", required=True)
    p.add_argument("--weights-npy", required=True)
    p.add_argument("--image-size", type=int, default=192)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--intra-op-threads", type=int, default=0)
    p.add_argument("--inter-op-threads", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="first N images only (quick checks)")
    p.add_argument("--json-out", default="")
    # extract
    p.add_argument("--modes", default="raw,pipelined")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--raw-batches", type=int, default=10)
    p.add_argument("--warmup-batches", type=int, default=2)
    # fit
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--val-split", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--val-list", default="", help="a tfflowers run's val_predictions.csv: validate on exactly its files")
    p.add_argument("--no-validate", dest="validate", action="store_false")
    # finetune (defaults: `tfflowers train --fine-tune`)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--fine-tune-from", default="block_6")
    p.add_argument("--fine-tune-epochs", type=int, default=4)
    p.add_argument("--fine-tune-lr", type=float, default=2e-4)
    p.add_argument("--fine-tune-schedule", choices=["constant", "cosine"], default="cosine")
    p.add_argument("--augment-zoom", type=float, default=0.3)
    p.add_argument("--augment-brightness", type=float, default=0.1)
    a = p.parse_args(argv)
    {"extract": cmd_extract, "fit": cmd_fit, "finetune": cmd_finetune}[a.command](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
