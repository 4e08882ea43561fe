#!/usr/bin/env bash
# How tfflowers' cost grows with the data, on one machine: the default frozen `train` and
# `predict` at N images (default 3000 10000 30000), on sets made from the shared photos by
# cmd/tfflowers-scaleset (every file a distinct crop/flip/jitter/re-encode, so the
# content-hash feature cache cannot deduplicate them). Per N it prints: cold seconds per
# training image (epoch 1: decode + backbone + cache write), warm epoch seconds per image
# (mean of epochs 2..E of a second run on the full cache; the cold run's own epochs 2..E
# too), peak RSS of the train command, feature-
# cache bytes per image, scan + split seconds, and predict seconds per image; then the
# ratios against the first N. Everything lives under build/scale (generated sets are kept
# and reused).
#
#   bash scripts/bench_scale.sh [N ...]
#
# Environment: TFFLOWERS_SHARED (../shared), TFFLOWERS_BIN (bin/tfflowers), TFFLOWERS_BASE
# (models/base), BENCH_EPOCHS (3), BENCH_OUT (build/scale). Runs take about N/50 s cold on
# 2 cores; the load average is printed with each row because the machine may be shared.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(3000 10000 30000)
SHARED=${TFFLOWERS_SHARED:-../shared}
BIN=${TFFLOWERS_BIN:-bin/tfflowers}
BASE=${TFFLOWERS_BASE:-models/base}
EPOCHS=${BENCH_EPOCHS:-3}
OUT=${BENCH_OUT:-build/scale}
mkdir -p "$OUT/bin"
go build -o "$OUT/bin/tfflowers-scaleset" ./cmd/tfflowers-scaleset
: >"$OUT/results.jsonl"
for n in "${SIZES[@]}"; do
  data="$OUT/data/$n"
  "$OUT/bin/tfflowers-scaleset" -src "$SHARED/data/flower_photos" -out "$data" -n "$n"
  scan=$("$OUT/bin/tfflowers-scaleset" -scan "$data")
  run="$OUT/runs/$n" cache="$OUT/cache/$n"
  rm -rf "$run" "$cache" "$OUT/models/$n"
  load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -v "$BIN" train --data "$data" --base "$BASE" --epochs "$EPOCHS" --cache-dir "$cache" \
    --out "$run" --export "$OUT/models/$n" >"$OUT/train-$n.log" 2>&1
  rss=$(awk '/Maximum resident/ {print $NF}' "$OUT/train-$n.log")
  cache_bytes=$(du -sb "$cache" | cut -f1)
  # The warm figure comes from a second run on the full cache. The cold run's own later
  # epochs follow right after it wrote every feature twice (the cache and the run's spill
  # file), and at 30k they read 1.4x the 3k time per image where a warm re-run reads 1.0x.
  rm -rf "$run-warm"
  "$BIN" train --data "$data" --base "$BASE" --epochs "$EPOCHS" --cache-dir "$cache" --out "$run-warm" >"$OUT/train-$n-warm.log" 2>&1
  start=$(date +%s.%N)
  "$BIN" predict --model "$OUT/models/$n" --json "$data" >"$OUT/predict-$n.jsonl" 2>"$OUT/predict-$n.log"
  predict_s=$(python3 -c "import sys; print($(date +%s.%N) - $start)")
  python3 - "$run/metrics.json" "$n" "$rss" "$cache_bytes" "$predict_s" "$scan" "$load" "$run-warm/metrics.json" >>"$OUT/results.jsonl" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
n, rss, cache, predict_s, scan, load = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), json.loads(sys.argv[6]), sys.argv[7]
w = json.load(open(sys.argv[8]))
tr, ep = m["train_images"], m["epochs"]
images = tr + m["val_images"] + m["test_images"]  # every image's features are cached once
head_input = 4
for d in m["feature_cache"]["entry_shape"]:
    head_input *= d
def per_image(epochs):
    return sum(e["seconds"] for e in epochs) / len(epochs) / tr if epochs else None
print(json.dumps({"n": n, "train_images": tr, "cold_s_per_image": ep[0]["seconds"] / tr,
    "warm_epoch_s_per_image": per_image(w["epochs"][1:]), "after_cold_epoch_s_per_image": per_image(ep[1:]), "peak_rss_mib": rss / 1024,
    "cache_bytes_per_image": cache / images, "head_input_bytes": head_input, "scan_split_s": scan["scan_split_seconds"],
    "predict_s_per_image": predict_s / n, "load_avg": float(load)}))
PY
  tail -1 "$OUT/results.jsonl"
done
python3 - "$OUT/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
f = rows[0]
def r(k, row): return "" if row[k] is None or f[k] in (None, 0) else f" ({row[k] / f[k]:.2f}x)"
print("| N | cold s/img | warm epoch time/img (re-run) | epochs 2.. of the cold run, time/img | peak RSS MiB | cache bytes/img (x head input) | scan+split s | predict s/img | load |")
print("|---|---|---|---|---|---|---|---|---|")
def us(k, x): return "n/a" if x.get(k) is None else f"{x[k] * 1e6:.0f} µs{r(k, x)}"
for x in rows:
    print(f"| {x['n']} | {x['cold_s_per_image']:.4f}{r('cold_s_per_image', x)} | {us('warm_epoch_s_per_image', x)} | {us('after_cold_epoch_s_per_image', x)} | {x['peak_rss_mib']:.0f}{r('peak_rss_mib', x)} | "
          f"{x['cache_bytes_per_image']:.0f} ({x['cache_bytes_per_image'] / x['head_input_bytes']:.3f}x) | {x['scan_split_s']:.2f} | {x['predict_s_per_image']:.4f}{r('predict_s_per_image', x)} | {x['load_avg']:.1f} |")
PY
