#!/usr/bin/env bash
# Assemble the tfflowers runtime tree that the Docker image ships, into DEST:
#   DEST/bin/tfflowers        built with rpath $ORIGIN/../lib (no LD_LIBRARY_PATH needed)
#   DEST/lib/                 libtensorflow_cc.so.2, libtensorflow_framework.so.2 (+ CUDA libs for GPU wheels)
#   DEST/models/base/         the MobileNetV2 base SavedModel
# Then it runs the tree without Python, Go or the build environment, as the image would.
# The Dockerfile's build stage runs exactly this; CI runs it too (make test), so it cannot rot.
#
# Environment: TFFLOWERS_WEIGHTS = imagenet (default, needs internet), none, or a directory of TF-slim .npy files.
set -euo pipefail
dest=${1:?usage: docker_build.sh DEST}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[ -f .tf/env.sh ] || bash scripts/setup.sh
. .tf/env.sh
mkdir -p "$dest/bin" "$dest/lib" "$dest/models"
dest=$(cd "$dest" && pwd)

CGO_LDFLAGS="-L$root/.tf/lib -ltensorflow_framework -Wl,-rpath,\$ORIGIN/../lib" \
  go build -trimpath -o "$dest/bin/tfflowers" ./cmd/tfflowers

tfpkg=$(dirname "$(readlink -f .tf/lib/libtensorflow_cc.so.2)")
cp -L "$tfpkg/libtensorflow_cc.so.2" "$tfpkg/libtensorflow_framework.so.2" "$dest/lib/"
# GPU wheels (tensorflow[and-cuda]) bring CUDA and cuDNN as nvidia-* packages; ship their libraries too.
site=$(dirname "$tfpkg")
if compgen -G "$site/nvidia/*/lib/*.so*" >/dev/null; then
  cp -L "$site"/nvidia/*/lib/*.so* "$dest/lib/"
fi

weights=${TFFLOWERS_WEIGHTS:-imagenet}
if [ ! -f "$dest/models/base/assets.extra/tfflowers_base.json" ]; then
  "$TFFLOWERS_PYTHON" scripts/export_base_model.py --out "$dest/models/base" --weights "$weights"
fi

# Smoke test of the tree exactly as the runtime image uses it.
env -u LD_LIBRARY_PATH -u CGO_LDFLAGS "$dest/bin/tfflowers" version >/dev/null \
  || { echo "docker_build: $dest/bin/tfflowers does not run from its own tree (missing libraries?)" >&2; exit 1; }
echo "docker_build: runtime tree ready in $dest ($(du -sh "$dest" | cut -f1))"
