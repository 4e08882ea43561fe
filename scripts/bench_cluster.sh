#!/usr/bin/env bash
# Two tfflowers workers (TensorFlow's distributed runtime, gRPC on 127.0.0.1) against one
# process, every TensorFlow session limited to one intra-op thread (one core's kernels) and
# two inter-op threads (a worker runs with no fewer: internal/cluster, MinWorkerInterOpThreads),
# each side pinned to its cores: the closest one machine gets to "two machines against one". Prints images/s of the frozen
# phase's feature extraction (cold cache: epoch 1 of a frozen run decodes and extracts every
# image) and of fine-tuning (from block_13, no cache), and the ratios, from one run.
#
#   bash scripts/bench_cluster.sh [N_PER_CLASS]        # default 200 photos per class
#
# Environment: TFFLOWERS_SHARED (../shared), BENCH_IMAGE_SIZE (192), BENCH_OUT (build/bench_cluster),
# TFFLOWERS_BIN (bin/tfflowers), TFFLOWERS_BASE (models/base).
# In the cluster run each worker reads and decodes its own rows' images (the chief reads
# headers only); the one-process run decodes on its own. The load average is printed
# because the machine may be shared.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${1:-200}
SHARED=${TFFLOWERS_SHARED:-../shared}
SIZE=${BENCH_IMAGE_SIZE:-192}
OUT=${BENCH_OUT:-build/bench_cluster}
BIN=${TFFLOWERS_BIN:-bin/tfflowers}
BASE=${TFFLOWERS_BASE:-models/base}
rm -rf "$OUT" && mkdir -p "$OUT/data"
for c in "$SHARED"/data/flower_photos/*/; do
  name=$(basename "$c"); mkdir -p "$OUT/data/$name"
  find "$c" -maxdepth 1 -name '*.jpg' | sort | sed -n "1,${N}p" | while read -r f; do ln -s "$(realpath "$f")" "$OUT/data/$name/"; done
done
ports=$(python3 -c 'import socket
ss=[socket.socket() for _ in range(2)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')
read -r p0 p1 <<<"$ports"
echo "{\"cluster\": {\"worker\": [\"127.0.0.1:$p0\", \"127.0.0.1:$p1\"]}}" >"$OUT/cluster.json"
T="--intra-op-threads 1 --inter-op-threads 2"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# Thread limits alone do not make one process a one-core machine: its decoder and its model run in
# separate sessions (and Go's own threads), so it keeps both cores busy. With BENCH_PIN=1 (the default
# where taskset exists and there are 2+ cores) each side gets exactly its machines' cores: the one
# process core 0; worker i core i; the chief, which only reads headers and drives the steps, core 0
# (as if it ran beside worker 0).
PIN=${BENCH_PIN:-1}
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  pin() { taskset -c "$1" "${@:2}"; }
else
  PIN=0
  pin() { "${@:2}"; }
fi
for i in 0 1; do
  pin "$i" "$BIN" worker --cluster "$OUT/cluster.json" --task $i $T >"$OUT/worker$i.log" 2>&1 &
  pids+=($!)
done
common=(--data "$OUT/data" --base "$BASE" --image-size "$SIZE" --batch-size 32 --seed 1 $T)
run() { # name, extra flags...
  local name=$1; shift
  echo "load before $name: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  pin 0 "$BIN" train "${common[@]}" --out "$OUT/runs/$name" "$@" >"$OUT/$name.log" 2>&1
}
# Frozen, cold cache: one epoch = decode + extraction of every training image (+ a tiny head step).
run one-extract --epochs 1 --cache-dir "$OUT/cache-one"
run two-extract --epochs 1 --cache-dir "$OUT/cache-two" --cluster "$OUT/cluster.json"
# Fine-tuning without cache: the frozen epoch is warm-up, the fine-tune epoch is measured.
run one-finetune --epochs 1 --no-cache --fine-tune --fine-tune-from block_13 --fine-tune-epochs 1
run two-finetune --epochs 1 --no-cache --fine-tune --fine-tune-from block_13 --fine-tune-epochs 1 --cluster "$OUT/cluster.json"
python3 - "$OUT" <<'PY'
import json, sys, os
out = sys.argv[1]
def ips(name, epoch):
    m = json.load(open(os.path.join(out, "runs", name, "metrics.json")))
    return m["epochs"][epoch]["train_images_per_second"]
rows = [("feature extraction (frozen epoch, cold cache)", ips("one-extract", 0), ips("two-extract", 0)),
        ("fine-tuning from block_13 (epoch 2)", ips("one-finetune", 1), ips("two-finetune", 1))]
print("| phase | one process, 1 thread (img/s) | two workers, 1 thread each (img/s) | ratio |")
print("|---|---|---|---|")
for name, a, b in rows:
    print(f"| {name} | {a:.1f} | {b:.1f} | {b/a:.2f}x |")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); cores: $(nproc); pinned (BENCH_PIN): $PIN"
