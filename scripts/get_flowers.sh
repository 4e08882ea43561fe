#!/usr/bin/env bash
# Download and unpack TensorFlow's flower_photos archive into DIR/flower_photos (online users).
# Offline, point the Makefile at a local copy instead: make run TFFLOWERS_LOCAL=../shared
set -euo pipefail
dir=${1:?usage: get_flowers.sh DIR}
url=${FLOWERS_URL:-https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz}
if [ -d "$dir/flower_photos/daisy" ]; then echo "flower photos ready: $dir/flower_photos"; exit 0; fi
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.tmp-flowers-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if ! curl -fsSL --retry 3 -o "$tmp/flowers.tgz" "$url"; then
  echo "get_flowers: could not download $url; offline? use: make run TFFLOWERS_LOCAL=/path/with/data/flower_photos" >&2
  exit 1
fi
tar -xzf "$tmp/flowers.tgz" -C "$tmp"
rm -f "$tmp/flower_photos/LICENSE.txt"
mv "$tmp/flower_photos" "$dir/flower_photos"
echo "flower photos ready: $dir/flower_photos"
