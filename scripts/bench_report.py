#!/usr/bin/env python3
"""Summarizes a scripts/bench.sh run: reads DIR/raw/*.jsonl and DIR/runs/*/metrics.json,
prints the table and writes it to DIR/results.md (regenerated on every run: do not edit).

Every figure is min / median / max over the repeats; the speed-up column compares medians
and is > 1 when tfflowers is faster (throughput: tfflowers/Keras; times: Keras/tfflowers;
memory: Keras/tfflowers, > 1 when tfflowers uses less).
"""
import argparse
import glob
import json
import os
import statistics
import sys


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def stats(values):
    return (min(values), statistics.median(values), max(values)) if values else None


def fmt(st, digits=1, unit=""):
    if st is None:
        return "n/a"
    lo, med, hi = st
    if lo == hi:
        return f"**{med:.{digits}f}**{unit}"
    return f"{lo:.{digits}f} / **{med:.{digits}f}** / {hi:.{digits}f}{unit}"


def ratio(a, b, target=None):
    if a is None or b is None or b[1] == 0:
        return "n/a", ""
    r = a[1] / b[1]
    verdict = ""
    if target is not None:
        verdict = "met" if r >= target else "**missed**"
    return f"{r:.2f}x", verdict


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dir", default="build/bench")
    a = p.parse_args(argv)
    raw = os.path.join(a.dir, "raw")
    env = {}
    for rec in read_jsonl(os.path.join(raw, "env.jsonl")):
        env.update(rec)
    procs = read_jsonl(os.path.join(raw, "processes.jsonl"))

    def proc(name, key):
        vals = [r[key] for r in procs if r["name"] == name]
        if key == "max_rss_kib":
            vals = [v / 1024 for v in vals]
        return stats(vals)

    ext = read_jsonl(os.path.join(raw, "extract-tfflowers.jsonl")) + read_jsonl(os.path.join(raw, "extract-keras.jsonl"))

    def ips(side, mode):
        return stats([r["images_per_second"] for r in ext if r["side"] == side and r["mode"] == mode])

    def metrics(prefix):
        out = []
        for path in sorted(glob.glob(os.path.join(a.dir, "runs", prefix + "-r*", "metrics.json"))):
            with open(path) as f:
                out.append(json.load(f))
        return out

    rows = []  # (measure, tfflowers, keras, speed-up, target, verdict)
    tf_files, k_files = ips("tfflowers", "pipelined"), ips("keras", "pipelined")
    tf_raw, k_raw = ips("tfflowers", "raw"), ips("keras", "raw")
    n_img = next((r["images"] for r in ext if r["mode"] == "pipelined"), 0)
    if tf_files or k_files:
        rows.append((f"1. files → features, images/s ({n_img} JPEGs, 192², batch 64; decode pool + 1 batch prefetch vs tf.data AUTOTUNE + predict)",
                     fmt(tf_files), fmt(k_files), *ratio(tf_files, k_files, 1.0), "≥ 1.0"))
        rows.append(("1. model only, images/s (one pre-decoded batch of 64 in memory, repeated; Base.Extract vs predict_on_batch)",
                     fmt(tf_raw), fmt(k_raw), *ratio(tf_raw, k_raw, 1.0), "≥ 1.0"))

        def overhead(files, model):
            if files is None or model is None:
                return "n/a", None
            v = 100 * (1 - files[1] / model[1])
            return f"{v:.1f} %", v
        o_tf, v_tf = overhead(tf_files, tf_raw)
        o_k, v_k = overhead(k_files, k_raw)
        verdict = "met" if v_tf is not None and v_tf <= 10 else "**missed**"
        rows.append(("1. pipeline overhead, 1 − (files → features)/(model only), medians",
                     o_tf, o_k, "", verdict, "≤ 10 %"))

    tf1 = metrics("epoch1-tfflowers")
    k1 = [r for r in read_jsonl(os.path.join(raw, "epoch1-keras.jsonl")) if r.get("mode") == "fit"]
    if tf1 or k1:
        tf_s = stats([m["epochs"][0]["seconds"] for m in tf1])
        k_s = stats([r["per_epoch"][0]["train_seconds"] for r in k1])
        n_train = (tf1 or [{}])[0].get("train_images") or (k1 or [{}])[0].get("train_images")
        rows.append((f"2. one epoch, frozen base, no cache: training seconds ({n_train} images, validation excluded)",
                     fmt(tf_s, 1, " s"), fmt(k_s, 1, " s"), *ratio(k_s, tf_s, 1.0), "≥ 1.0"))
        tf_ips = stats([m["epochs"][0]["train_images_per_second"] for m in tf1])
        k_ips = stats([r["train_images"] / r["per_epoch"][0]["train_seconds"] for r in k1])
        rows.append(("2. same, training images/s", fmt(tf_ips), fmt(k_ips), *ratio(tf_ips, k_ips), ""))
        tw, kw = proc("epoch1-tfflowers", "wall_seconds"), proc("epoch1-keras", "wall_seconds")
        rows.append(("2. same, wall time of the whole command (start-up, validation, outputs)",
                     fmt(tw, 1, " s"), fmt(kw, 1, " s"), *ratio(kw, tw), ""))

    tf10 = metrics("epochs10-tfflowers")
    k10 = [r for r in read_jsonl(os.path.join(raw, "epochs10-keras.jsonl")) if r.get("mode") == "fit"]
    if tf10 or k10:
        tw, kw = proc("epochs10-tfflowers", "wall_seconds"), proc("epochs10-keras", "wall_seconds")
        rows.append(("3. ten epochs end to end, wall seconds (tfflowers: cold bottleneck cache; Keras: model.fit, no cache; validation every epoch)",
                     fmt(tw, 1, " s"), fmt(kw, 1, " s"), *ratio(kw, tw, 5.0), "≥ 5x"))
        tacc = stats([m["final_val_accuracy"] for m in tf10])
        kacc = stats([r["final"].get("val_accuracy", float("nan")) for r in k10])
        rows.append(("3. same, final validation accuracy on the same validation images (sanity check, not a speed)", fmt(tacc, 3), fmt(kacc, 3), "", "", ""))

    tft = metrics("finetune-tfflowers")
    kft = [r for r in read_jsonl(os.path.join(raw, "finetune-keras.jsonl")) if r.get("mode") == "finetune"]
    if tft or kft:
        def ft_ips(m, skip=0):
            eps = [e for e in m["epochs"] if e["phase"] == "fine-tune"][skip:]
            return m["train_images"] * len(eps) / sum(e["seconds"] for e in eps) if eps else None
        ref = (tft or [{}])[0]
        cfg = ref.get("config", {})
        n_train = ref.get("train_images") or (kft or [{}])[0].get("train_images")
        n_test = ref.get("test_images") or (kft or [{}])[0].get("test_images")
        what = (f"{n_train} train images, {cfg.get('epochs', '?')} frozen + {cfg.get('fine_tune_epochs', '?')} fine-tuning epochs "
                f"from {cfg.get('fine_tune_from', '?')}" + (f", first {env['per_class']} photos per class" if env.get("per_class") else ""))
        tf_ips, k_ips = stats([ft_ips(m) for m in tft]), stats([r["fine_tune_images_per_second"] for r in kft])
        rows.append((f"5. fine-tuning, `train --fine-tune` recipe ({what}): training images/s of the fine-tuning epochs, validation excluded",
                     fmt(tf_ips), fmt(k_ips), *ratio(tf_ips, k_ips, 1.5), "≥ 1.5x"))
        tf_late = stats([v for v in (ft_ips(m, 1) for m in tft) if v is not None])
        k_late = stats([r["fine_tune_images_per_second_after_first"] for r in kft if r.get("fine_tune_images_per_second_after_first")])
        if tf_late or k_late:
            rows.append(("5. same, fine-tuning epochs after the first (no graph set-up, tracing or compilation in them)",
                         fmt(tf_late), fmt(k_late), *ratio(tf_late, k_late, 1.5), "≥ 1.5x"))
        tw, kw = proc("finetune-tfflowers", "wall_seconds"), proc("finetune-keras", "wall_seconds")
        rows.append(("5. same, wall time of the whole command", fmt(tw, 1, " s"), fmt(kw, 1, " s"), *ratio(kw, tw), ""))
        tacc = stats([m["test"]["accuracy"] for m in tft if m.get("test")])
        kacc = stats([r["test_accuracy"] for r in kft if r.get("test_accuracy") is not None])
        rows.append((f"5. same, accuracy on the run's held-out test split ({n_test} images; one split, not a mean over seeds)",
                     fmt(tacc, 3), fmt(kacc, 3), "", "", ""))

    for name, label, target in [("extract", "1", None), ("epoch1", "2", 2048), ("epochs10", "3", 2048), ("finetune", "5", 2560)]:
        t, k = proc(f"{name}-tfflowers", "max_rss_kib"), proc(f"{name}-keras", "max_rss_kib")
        if t is None and k is None:
            continue
        verdict, tgt = "", ""
        if target is not None and t is not None:
            verdict, tgt = ("met" if t[2] < target else "**missed**"), f"tfflowers < {target} MiB"
        rows.append((f"4. peak RSS, MiB, of the section {label} command", fmt(t, 0), fmt(k, 0), ratio(k, t)[0], verdict, tgt))

    header = ["measure", "tfflowers min / **median** / max", "Keras min / **median** / max",
              "tfflowers speed-up (median)", "target", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m, t, k, r, verdict, target in rows:
        lines.append(f"| {m} | {t} | {k} | {r} | {target} | {verdict} |")
    info = (f"{env.get('nproc', '?')} CPU cores, load average before {env.get('load_before', '?')}, after {env.get('load_after', '?')}; "
            f"repeats: section 1 {env.get('repeats_extract', '?')}, sections 2, 3 and 5 {env.get('repeats_train', '?')}; "
            f"intra-op threads {env.get('intra', 0)}, inter-op threads {env.get('inter', 0)} (0: TensorFlow's default); "
            f"peak RSS from {'/usr/bin/time' if env.get('timer') == 'gnu' else 'getrusage'}. "
            "Speed-up > 1 means tfflowers is faster (for memory: smaller).")
    md = ("<!-- generated by scripts/bench.sh (scripts/bench_report.py); do not edit -->\n\n"
          + "\n".join(lines) + "\n\n" + info + "\n")
    with open(os.path.join(a.dir, "results.md"), "w") as f:
        f.write(md)
    print(md)
    print(f"written to {os.path.join(a.dir, 'results.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
