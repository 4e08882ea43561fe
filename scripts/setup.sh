#!/usr/bin/env bash
# Set up everything tfflowers needs on a fresh machine, idempotently:
#   1. .venv/    a project-local virtualenv with the newest supported tensorflow-cpu wheel for the interpreter
#                (2.21.0 for Python 3.10-3.13; 2.18.0, the tested fallback, for 3.9 or when 2.21.0 cannot be installed)
#   2. .tf/      the C API from that same wheel: include/, lib/libtensorflow.so -> libtensorflow_cc.so.2, and
#                .tf/env.sh with CGO_CFLAGS / CGO_LDFLAGS (rpath) / LD_LIBRARY_PATH for go build and go test
#   3. a self-check: the C API symbols are exported and a tiny C program prints TF_Version()
#   4. the Go module's dependencies
# A second run with nothing changed takes about a second. Everything it makes is git-ignored.
#
# Environment: PYTHON (interpreter for the venv, default python3), TFFLOWERS_TF_VERSION (force one of the
# supported versions, e.g. 2.18.0), TFFLOWERS_VARIANT=gpu (install tensorflow[and-cuda] instead of tensorflow-cpu,
# for GPU images).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=$root/.venv
tfdir=$root/.tf
python=${PYTHON:-python3}

# Supported TensorFlow releases, newest first, with the Python minor versions PyPI has wheels for.
# Each one is tested (make test); tensorflow-serving-api is installed at the same version.
supported=("2.21.0:3.10 3.11 3.12 3.13" "2.18.0:3.9 3.10 3.11 3.12")

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

command -v "$python" >/dev/null || die "no $python on PATH; install Python 3.9-3.13 or set PYTHON=/path/to/python3"
command -v go >/dev/null || die "no go on PATH; install Go (https://go.dev/dl) first"
command -v cc >/dev/null || die "no C compiler (cc) on PATH; cgo needs one: apt-get install gcc"
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# --- 1. virtualenv with the newest TensorFlow that has a wheel for this Python ---------------------
candidates=()
for entry in "${supported[@]}"; do
  v=${entry%%:*}
  if [ -n "${TFFLOWERS_TF_VERSION:-}" ]; then
    [ "$v" = "$TFFLOWERS_TF_VERSION" ] || continue
  fi
  case " ${entry#*:} " in *" $pyver "*) candidates+=("$v") ;; esac
done
if [ ${#candidates[@]} -eq 0 ]; then
  if [ -n "${TFFLOWERS_TF_VERSION:-}" ]; then
    die "TFFLOWERS_TF_VERSION=$TFFLOWERS_TF_VERSION: supported are ${supported[*]%%:*} (this Python is $pyver); unset it or pick one of them"
  fi
  die "$python is Python $pyver; tensorflow-cpu has wheels for 3.9-3.13 only (set PYTHON=/path/to/python3.12)"
fi
case ${TFFLOWERS_VARIANT:-cpu} in
  cpu) tfpackage=tensorflow-cpu ;;
  gpu) tfpackage='tensorflow[and-cuda]' ;;
  *) die "TFFLOWERS_VARIANT=${TFFLOWERS_VARIANT}: want cpu or gpu" ;;
esac
stamp=$venv/.tfflowers-installed
# The stamp names what was asked for (package, candidates, pins): asking for another version reinstalls.
req_hash=$( (cat scripts/requirements.txt; echo "$tfpackage ${candidates[*]} $pyver") | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && grep -q "^req=$req_hash$" "$stamp"; then
  installed=$(sed -n 's/^tf=//p' "$stamp")
  say "venv ready (tensorflow $installed)"
else
  [ -x "$venv/bin/python" ] || { say "creating $venv"; "$python" -m venv "$venv"; }
  install_tf() {
    # requirements.txt pins the rest. tensorflow-serving-api goes in with --no-deps (its declared dependency is
    # the full `tensorflow` wheel, while tensorflow-cpu provides the same modules) and at TF's own version: its
    # status_pb2 binds to that TF's error_codes_pb2 (2.19.1 fails to import on TF 2.18; 2.18.x declares
    # protobuf<6, which TF 2.21 cannot use).
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      "$tfpackage==$1" -r scripts/requirements.txt &&
      "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "tensorflow-serving-api==$1"
  }
  installed=
  reasons=()
  for v in "${candidates[@]}"; do
    if install_tf "$v" 2>"$root/.tf-install.log"; then
      installed=$v
      break
    fi
    reason=$(tail -n 3 "$root/.tf-install.log" | tr '\n' ' ')
    reasons+=("$tfpackage $v failed: $reason")
    say "$tfpackage==$v could not be installed ($reason); trying the next supported version"
  done
  [ -n "$installed" ] || die "pip could not install any of ${candidates[*]}: ${reasons[*]}"
  rm -f "$root/.tf-install.log" "$tfdir/FALLBACK_REASON"
  if [ ${#reasons[@]} -gt 0 ]; then
    mkdir -p "$tfdir"
    printf '%s\n' "${reasons[@]}" >"$tfdir/FALLBACK_REASON"
  fi
  printf 'tf=%s\nreq=%s\n' "$installed" "$req_hash" >"$stamp"
  say "installed $tfpackage $installed into $venv (Python $pyver)"
fi

# --- 2. expose the C API from the same installation -----------------------------------------------
tfpkg=$("$venv/bin/python" - <<'EOF'
import importlib.util, os
spec = importlib.util.find_spec("tensorflow")
print(os.path.dirname(spec.origin))
EOF
)
for f in libtensorflow_cc.so.2 libtensorflow_framework.so.2 include/tensorflow/c/c_api.h; do
  [ -e "$tfpkg/$f" ] || die "the tensorflow wheel in $venv lacks $f (looked in $tfpkg); reinstall: rm -rf .venv && make setup"
done
mkdir -p "$tfdir/lib"
ln -sfn "$tfpkg/include" "$tfdir/include"
ln -sf "$tfpkg/libtensorflow_cc.so.2" "$tfdir/lib/libtensorflow_cc.so.2"
ln -sf "$tfpkg/libtensorflow_cc.so.2" "$tfdir/lib/libtensorflow.so"   # what the Go bindings' -ltensorflow finds
ln -sf "$tfpkg/libtensorflow_framework.so.2" "$tfdir/lib/libtensorflow_framework.so.2"
ln -sf "$tfpkg/libtensorflow_framework.so.2" "$tfdir/lib/libtensorflow_framework.so"

envfile=$tfdir/env.sh
cat >"$envfile.tmp" <<EOF
# Generated by scripts/setup.sh; source it before go build / go test:  . .tf/env.sh
export TFFLOWERS_ROOT="$root"
export TFFLOWERS_PYTHON="$venv/bin/python"
export TFFLOWERS_TF_VERSION="$installed"
export CGO_ENABLED=1
export CGO_CFLAGS="-I$tfdir/include"
export CGO_LDFLAGS="-L$tfdir/lib -ltensorflow_framework -Wl,-rpath,$tfdir/lib"
export LD_LIBRARY_PATH="$tfdir/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export TF_CPP_MIN_LOG_LEVEL="\${TF_CPP_MIN_LOG_LEVEL:-2}"
EOF
mv "$envfile.tmp" "$envfile"

# --- 3. self-check ---------------------------------------------------------------------------------
check_stamp=$tfdir/.checked
lib_id=$(stat -c '%s-%Y' "$tfpkg/libtensorflow_cc.so.2")
if [ ! -f "$check_stamp" ] || [ "$(cat "$check_stamp")" != "$lib_id" ]; then
  missing=()
  if command -v nm >/dev/null; then
    exported=$(nm -D --defined-only "$tfpkg/libtensorflow_cc.so.2" | awk '{sub(/@.*/, "", $3); print $3}')
    for sym in TF_NewGraph TF_LoadSessionFromSavedModel TF_AddGradientsWithPrefix TFE_NewContext TF_Version; do
      grep -qx "$sym" <<<"$exported" || missing+=("$sym")
    done
    [ ${#missing[@]} -eq 0 ] || die "libtensorflow_cc.so.2 does not export: ${missing[*]} (a CPU wheel without the C API?)"
  else
    say "nm not found (binutils); skipping the symbol check, the C program below still links against them"
  fi
  probe=$(mktemp -d)
  trap 'rm -rf "$probe"' EXIT
  cat >"$probe/probe.c" <<'EOF'
#include <stdio.h>
#include <tensorflow/c/c_api.h>
#include <tensorflow/c/eager/c_api.h>
int main(void) {
  TF_Graph *g = TF_NewGraph();          /* referenced so the linker must resolve them */
  void *p[] = {(void *)TF_LoadSessionFromSavedModel, (void *)TF_AddGradientsWithPrefix, (void *)TFE_NewContext};
  printf("%s %d\n", TF_Version(), p[0] != 0);
  TF_DeleteGraph(g);
  return 0;
}
EOF
  cc -I"$tfdir/include" "$probe/probe.c" -o "$probe/probe" -L"$tfdir/lib" -ltensorflow -ltensorflow_framework \
    -Wl,-rpath,"$tfdir/lib" 2>"$probe/cc.log" || die "a C program using tensorflow/c/c_api.h did not build: $(head -c 600 "$probe/cc.log")"
  got=$("$probe/probe" 2>/dev/null) || die "the C probe built but did not run (library loading?)"
  case $got in "$installed "*) ;; *) die "TF_Version() says '$got', expected $installed";; esac
  say "C API ok: TF_Version() = ${got% *}"
  echo "$lib_id" >"$check_stamp"
fi

# --- 4. Go dependencies ----------------------------------------------------------------------------
go mod download
say "done; run: . .tf/env.sh"
