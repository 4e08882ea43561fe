#!/usr/bin/env bash
# Install what scripts/setup.sh needs on a Debian/Ubuntu machine (Python with venv, a C compiler,
# binutils, curl, git, Go), skipping whatever is already there. Used by the Dockerfile's build stage and
# by CI, where everything is usually present and this only checks.
set -euo pipefail
need=()
command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3 python3-venv python3-pip)
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v nm >/dev/null || need+=(binutils)
command -v curl >/dev/null || need+=(curl ca-certificates)
command -v git >/dev/null || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  echo "install_build_deps: installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
command -v go >/dev/null || { echo "install_build_deps: Go is missing; use a golang base image or install Go 1.26" >&2; exit 1; }
echo "install_build_deps: ok ($(python3 --version), $(go version | cut -d' ' -f3))"
