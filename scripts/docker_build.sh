#!/usr/bin/env bash
# Assemble the tfflowers runtime tree that the Docker image ships, into DEST (the Dockerfile's build stage
# runs it in two steps, so that a source edit does not redo the base model):
#   docker_build.sh base DEST   DEST/models/base/   the MobileNetV2 base SavedModel (scripts/export_base_model.py)
#   docker_build.sh app DEST    DEST/bin/tfflowers  built with rpath $ORIGIN/../lib (no LD_LIBRARY_PATH needed)
#                               DEST/lib/           libtensorflow_cc.so.2, libtensorflow_framework.so.2, stripped
#                                                   (+ CUDA libs for GPU wheels)
#                               DEST-volumes/       empty data/ and models/, copied to / as the image's volumes
#                               then runs DEST/bin/tfflowers without Python, Go or the build environment
#   docker_build.sh DEST        both
#
# Environment: TFFLOWERS_WEIGHTS = imagenet (default, needs internet), none, or a directory of TF-slim .npy files.
set -euo pipefail
case ${1:-} in
  base | app) step=$1; shift ;;
  *) step=all ;;
esac
dest=${1:?usage: docker_build.sh [base|app] DEST}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[ -f .tf/env.sh ] || bash scripts/setup.sh
. .tf/env.sh
mkdir -p "$dest/bin" "$dest/lib" "$dest/models"
dest=$(cd "$dest" && pwd)

build_base() {
  local weights=${TFFLOWERS_WEIGHTS:-imagenet}
  if [ ! -f "$dest/models/base/assets.extra/tfflowers_base.json" ]; then
    "$TFFLOWERS_PYTHON" scripts/export_base_model.py --out "$dest/models/base" --weights "$weights"
  fi
}

build_app() {
  # -s -w: no symbol table or DWARF in the shipped binary (panics still print file:line).
  CGO_LDFLAGS="-L$root/.tf/lib -ltensorflow_framework -Wl,-rpath,\$ORIGIN/../lib" \
    go build -trimpath -ldflags '-s -w' -o "$dest/bin/tfflowers" ./cmd/tfflowers

  local tfpkg site
  tfpkg=$(dirname "$(readlink -f .tf/lib/libtensorflow_cc.so.2)")
  rm -f "$dest/lib/libtensorflow_cc.so.2" "$dest/lib/libtensorflow_framework.so.2"
  # The wheel's libraries carry debug info (2.21: 788 MB -> 583 MB for libtensorflow_cc.so.2 once stripped);
  # --strip-unneeded keeps every symbol that dynamic linking needs.
  strip --strip-unneeded -o "$dest/lib/libtensorflow_cc.so.2" "$tfpkg/libtensorflow_cc.so.2"
  strip --strip-unneeded -o "$dest/lib/libtensorflow_framework.so.2" "$tfpkg/libtensorflow_framework.so.2"
  # GPU wheels (tensorflow[and-cuda]) bring CUDA and cuDNN as nvidia-* packages; ship their libraries too.
  site=$(dirname "$tfpkg")
  if compgen -G "$site/nvidia/*/lib/*.so*" >/dev/null; then
    cp -L "$site"/nvidia/*/lib/*.so* "$dest/lib/"
  fi
  mkdir -p "$dest-volumes/data" "$dest-volumes/models"

  # Smoke test of the tree exactly as the runtime image uses it.
  env -u LD_LIBRARY_PATH -u CGO_LDFLAGS "$dest/bin/tfflowers" version >/dev/null ||
    { echo "docker_build: $dest/bin/tfflowers does not run from its own tree (missing libraries?)" >&2; exit 1; }
}

case $step in
  base) build_base ;;
  app) build_app ;;
  all) build_base; build_app ;;
esac
echo "docker_build: $step ready in $dest ($(du -sh "$dest" | cut -f1))"
