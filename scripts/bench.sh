#!/usr/bin/env bash
# tfflowers vs Keras on this machine, same TensorFlow build (the venv's), data and settings.
#
#   bash scripts/bench.sh [--repeats-extract N] [--repeats-train N] [--sections 1,2,3]
#                         [--intra-op-threads N] [--inter-op-threads N] [--data DIR] [--out DIR]
#
# Sections (every figure is the median of its repeats; min/median/max are printed):
#   1  feature extraction of the frozen MobileNetV2 at 192x192, batch 64, over every photo:
#      files -> features (cmd/tfflowers-bench vs model.predict on tf.data with parallel decode
#      and prefetch) and model only (one pre-decoded batch in memory, repeated), plus the
#      pipeline overhead of each side. Default 3 repeats (BENCH_REPEATS_EXTRACT).
#   2  one training epoch on the frozen base without a feature cache:
#      `tfflowers train --no-cache --epochs 1` vs Keras model.fit(epochs=1), same head, optimizer,
#      batch, and the same split (Keras validates on the files of the tfflowers run's
#      val_predictions.csv). Compared: training seconds of the epoch, validation excluded on both
#      sides (tfflowers' metrics.json epoch seconds; Keras's epoch minus its validation pass).
#      Default 1 repeat (BENCH_REPEATS_TRAIN).
#   3  ten epochs end to end, validation every epoch on both sides: tfflowers with a cold
#      bottleneck cache (fresh --cache-dir) vs Keras model.fit(epochs=10) without caching.
#      Wall time of the whole command. Default 1 repeat (BENCH_REPEATS_TRAIN).
#   4  peak resident memory of every command above (/usr/bin/time's maximum RSS).
#   5  fine-tuning: `tfflowers train --fine-tune` (its default recipe) vs the same recipe in Keras
#      (bench_keras.py finetune: frozen epochs, then the backbone from block_6 with augmentation,
#      label smoothing, a cosine learning rate, restore-best; its defaults mirror train's), on the same split (Keras reads the tfflowers run's
#      val_predictions.csv and test_predictions.csv). Compared: training images/s of the
#      fine-tuning epochs (validation excluded), wall time, peak RSS, and test accuracy on the
#      run's held-out test split. BENCH_FT_PER_CLASS=N uses the first N photos of each class
#      (0: all), BENCH_FT_EPOCHS=E overrides --fine-tune-epochs on both sides (quicker runs; the
#      table says what was used). Default 1 repeat (BENCH_REPEATS_TRAIN).
# With the defaults the whole run takes about 15 minutes on 2 cores for sections 1-3, and
# about 20 more for section 5 on all photos.
#
# Outputs under --out (default build/bench): results.md (the Markdown table the README
# includes; regenerated on every run), raw/*.jsonl (every measurement), logs/, runs/.
# Environment: BENCH_REPEATS_EXTRACT, BENCH_REPEATS_TRAIN, BENCH_SECTIONS,
# BENCH_INTRA_OP_THREADS, BENCH_INTER_OP_THREADS (0: TensorFlow's default), BENCH_DATA,
# BENCH_OUT, TFFLOWERS_SHARED (default ../shared: data/flower_photos and the .npy weights).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REPEATS_EXTRACT=${BENCH_REPEATS_EXTRACT:-3}
REPEATS_TRAIN=${BENCH_REPEATS_TRAIN:-1}
SECTIONS=${BENCH_SECTIONS:-1,2,3,5}
FT_PER_CLASS=${BENCH_FT_PER_CLASS:-0}
FT_EPOCHS=${BENCH_FT_EPOCHS:-}
INTRA=${BENCH_INTRA_OP_THREADS:-0}
INTER=${BENCH_INTER_OP_THREADS:-0}
SHARED=${TFFLOWERS_SHARED:-../shared}
DATA=${BENCH_DATA:-$SHARED/data/flower_photos}
NPY=${BENCH_WEIGHTS_NPY:-$SHARED/models/mobilenet_v2_1.0_224_imagenet_npy}
OUT=${BENCH_OUT:-build/bench}
SIZE=192
BATCH=64
RAW_BATCHES=${BENCH_RAW_BATCHES:-10}

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "bench: error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --repeats-extract) REPEATS_EXTRACT=$2; shift 2 ;;
    --repeats-train) REPEATS_TRAIN=$2; shift 2 ;;
    --sections) SECTIONS=$2; shift 2 ;;
    --intra-op-threads) INTRA=$2; shift 2 ;;
    --inter-op-threads) INTER=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
for v in "$REPEATS_EXTRACT" "$REPEATS_TRAIN" "$INTRA" "$INTER" "$FT_PER_CLASS" ${FT_EPOCHS:+"$FT_EPOCHS"}; do
  [[ $v =~ ^[0-9]+$ ]] || die "repeats and thread counts must be non-negative integers, got '$v'"
done
[ "$REPEATS_EXTRACT" -ge 1 ] && [ "$REPEATS_TRAIN" -ge 1 ] || die "repeats must be at least 1"
[ -d "$DATA" ] || die "no data folder $DATA (set TFFLOWERS_SHARED or --data)"
has() { [[ ",$SECTIONS," == *",$1,"* ]]; }

# Build the CLI (make build runs scripts/setup.sh first) and the Go benchmark program.
make build >/dev/null
# shellcheck disable=SC1091
. .tf/env.sh
PY=${TFFLOWERS_PYTHON:-.venv/bin/python}
go build -o bin/tfflowers-bench ./cmd/tfflowers-bench

BASE=$OUT/base-imagenet
mkdir -p "$OUT"
[ -d "$NPY" ] || die "no .npy weights folder $NPY (set TFFLOWERS_SHARED)"
# Exported afresh every run (8 s): a base left by an older exporter would measure old code.
echo "bench: exporting the ImageNet base to $BASE" >&2
"$PY" scripts/export_base_model.py --out "$BASE" --weights-npy "$NPY" --force >&2

RAW=$OUT/raw
LOGS=$OUT/logs
RUNS=$OUT/runs
rm -rf "$RAW" "$LOGS" "$RUNS" "$OUT/cache"
mkdir -p "$RAW" "$LOGS" "$RUNS"
THREADS=(--intra-op-threads "$INTRA" --inter-op-threads "$INTER")

# Peak RSS and wall time of one command: GNU time if there is one, else a Python wrapper
# reading the child's ru_maxrss (both report the kernel's maximum resident set size).
if /usr/bin/time -f '%e %M' -o /dev/null true 2>/dev/null; then
  TIMER=gnu
else
  TIMER=python
  echo "bench: /usr/bin/time (GNU time) not found; measuring peak RSS with Python's resource.getrusage" >&2
fi

# timed NAME REPEAT CMD...: runs CMD with its output in logs/NAME-rREPEAT.log and appends
# {"kind":"process",...} with its wall seconds and peak RSS to raw/processes.jsonl.
timed() {
  local name=$1 rep=$2; shift 2
  local log=$LOGS/$name-r$rep.log tf=$LOGS/$name-r$rep.time rc=0
  echo "bench: $(date +%T) $name (repeat $rep): $*" >&2
  if [ "$TIMER" = gnu ]; then
    /usr/bin/time -f '%e %M' -o "$tf" "$@" >"$log" 2>&1 || rc=$?
  else
    "$PY" -c 'import resource,subprocess,sys,time
t=time.perf_counter(); rc=subprocess.call(sys.argv[2:])
open(sys.argv[1],"w").write("%.2f %d\n" % (time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)' "$tf" "$@" >"$log" 2>&1 || rc=$?
  fi
  local wall rss
  read -r wall rss < <(tail -n 1 "$tf")
  printf '{"kind":"process","name":"%s","repeat":%d,"wall_seconds":%s,"max_rss_kib":%s,"rc":%d}\n' \
    "$name" "$rep" "$wall" "$rss" "$rc" >>"$RAW/processes.jsonl"
  if [ "$rc" -ne 0 ]; then
    echo "bench: $name failed (exit $rc); last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
}

echo "bench: load before: $(uptime)" >&2
echo "{\"kind\":\"env\",\"load_before\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"nproc\":$(nproc),\"repeats_extract\":$REPEATS_EXTRACT,\"repeats_train\":$REPEATS_TRAIN,\"intra\":$INTRA,\"inter\":$INTER,\"timer\":\"$TIMER\",\"data\":\"$DATA\"}" >"$RAW/env.jsonl"

if has 1; then
  timed extract-tfflowers 1 ./bin/tfflowers-bench -base "$BASE" -data "$DATA" -image-size $SIZE -batch-size $BATCH \
    -repeats "$REPEATS_EXTRACT" -raw-batches "$RAW_BATCHES" -intra-op-threads "$INTRA" -inter-op-threads "$INTER"
  grep '^{' "$LOGS/extract-tfflowers-r1.log" | sed 's/^{/{"side":"tfflowers",/' >"$RAW/extract-tfflowers.jsonl"
  timed extract-keras 1 "$PY" scripts/bench_keras.py extract --data "$DATA" --weights-npy "$NPY" --image-size $SIZE \
    --batch-size $BATCH --repeats "$REPEATS_EXTRACT" --raw-batches "$RAW_BATCHES" "${THREADS[@]}" --json-out "$RAW/extract-keras.jsonl"
fi

if has 2; then
  for r in $(seq 1 "$REPEATS_TRAIN"); do
    timed epoch1-tfflowers "$r" ./bin/tfflowers train --data "$DATA" --base "$BASE" --out "$RUNS/epoch1-tfflowers-r$r" \
      --head gap --image-size $SIZE --batch-size $BATCH --epochs 1 --no-cache "${THREADS[@]}"
    timed epoch1-keras "$r" "$PY" scripts/bench_keras.py fit --data "$DATA" --weights-npy "$NPY" --image-size $SIZE \
      --batch-size $BATCH --epochs 1 "${THREADS[@]}" --json-out "$RAW/epoch1-keras.jsonl" \
      --val-list "$RUNS/epoch1-tfflowers-r$r/val_predictions.csv"
  done
fi

if has 3; then
  for r in $(seq 1 "$REPEATS_TRAIN"); do
    rm -rf "$OUT/cache"  # cold bottleneck cache for every repeat
    timed epochs10-tfflowers "$r" ./bin/tfflowers train --data "$DATA" --base "$BASE" --out "$RUNS/epochs10-tfflowers-r$r" \
      --head gap --image-size $SIZE --batch-size $BATCH --epochs 10 --cache-dir "$OUT/cache" "${THREADS[@]}"
    timed epochs10-keras "$r" "$PY" scripts/bench_keras.py fit --data "$DATA" --weights-npy "$NPY" --image-size $SIZE \
      --batch-size $BATCH --epochs 10 "${THREADS[@]}" --json-out "$RAW/epochs10-keras.jsonl" \
      --val-list "$RUNS/epochs10-tfflowers-r$r/val_predictions.csv"
  done
fi

if has 5; then
  FTDATA=$DATA
  if [ "$FT_PER_CLASS" -gt 0 ]; then  # the first N photos of each class, linked
    FTDATA=$OUT/ft-data
    rm -rf "$FTDATA"
    for cdir in "$DATA"/*/; do
      c=$(basename "$cdir")
      mkdir -p "$FTDATA/$c"
      mapfile -t files < <(find "$cdir" -maxdepth 1 -type f | LC_ALL=C sort)
      for f in "${files[@]:0:$FT_PER_CLASS}"; do  # no `| head`: with pipefail its SIGPIPE would fail the script
        ln -s "$(realpath "$f")" "$FTDATA/$c/"
      done
    done
  fi
  FTFLAGS=()
  [ -n "$FT_EPOCHS" ] && FTFLAGS=(--fine-tune-epochs "$FT_EPOCHS")
  echo "{\"kind\":\"finetune\",\"per_class\":$FT_PER_CLASS,\"fine_tune_epochs\":\"${FT_EPOCHS:-default}\"}" >>"$RAW/env.jsonl"
  for r in $(seq 1 "$REPEATS_TRAIN"); do
    rm -rf "$OUT/cache"
    timed finetune-tfflowers "$r" ./bin/tfflowers train --data "$FTDATA" --base "$BASE" --out "$RUNS/finetune-tfflowers-r$r" \
      --image-size $SIZE --batch-size $BATCH --fine-tune "${FTFLAGS[@]}" --cache-dir "$OUT/cache" "${THREADS[@]}"
    timed finetune-keras "$r" "$PY" scripts/bench_keras.py finetune --data "$FTDATA" --weights-npy "$NPY" --image-size $SIZE \
      --batch-size $BATCH --epochs 10 "${FTFLAGS[@]}" "${THREADS[@]}" --json-out "$RAW/finetune-keras.jsonl" \
      --val-list "$RUNS/finetune-tfflowers-r$r/val_predictions.csv"
  done
fi

echo "{\"kind\":\"env_after\",\"load_after\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$RAW/env.jsonl"
"$PY" scripts/bench_report.py --dir "$OUT"

# The README shows the latest tables between its bench markers: regenerated here, never edited by
# hand. A run with section 1 replaces the main table (and empties the fine-tuning-only one, whose
# rows it then holds); a run of section 5 alone replaces the fine-tuning table; other partial
# runs leave the README alone.
BLOCK=""
if has 1; then BLOCK=bench; elif [ "$SECTIONS" = 5 ]; then BLOCK=bench-finetune; fi
if [ -n "$BLOCK" ]; then
"$PY" - "$OUT/results.md" README.md "$BLOCK" <<'PYEOF'
import sys
table, readme, block = open(sys.argv[1]).read().strip(), sys.argv[2], sys.argv[3]
text = open(readme).read()

def put(text, name, body):
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        return text
    head, rest = text.split(start, 1)
    return head + start + "\n" + body + ("\n" if body else "") + end + rest.split(end, 1)[1]

text = put(text, block, table)
if block == "bench" and "| 5. fine-tuning" in table:
    text = put(text, "bench-finetune", "")  # its rows are in the main table now
open(readme, "w").write(text)
print(f"bench: README.md table ({block}) updated")
PYEOF
fi
