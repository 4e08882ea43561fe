#!/usr/bin/env bash
# Make sure the Dockerfile's base images exist in the local engine: debian:bookworm-slim (runtime) and
# golang:GO-bookworm (build stage, GO from go.mod). Each is pulled from the registry when one answers; on a
# machine without a registry it is made locally, from Debian packages and the Go module proxy:
#   debian:bookworm-slim    mmdebstrap --variant=minbase bookworm | docker import (docs/man/locales left out,
#                           as the official slim image does)
#   golang:GO-bookworm      the same bootstrap with the official image's build packages (gcc, g++, make,
#                           git, curl, ...), the Go toolchain from the module proxy in /usr/local/go,
#                           GOPATH=/go, GOTOOLCHAIN=local, and the host's extra CA certificates (the ones
#                           update-ca-certificates installs from /usr/local/share/ca-certificates), so that
#                           HTTPS inside the build trusts what the host trusts. The runtime base gets none.
# Locally made images carry the label org.tfflowers.local-base=1. Idempotent: existing images are kept.
#
# Usage: docker_bases.sh [DOCKER]   (DOCKER: the docker client to use, default docker)
set -euo pipefail
docker=${1:-docker}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'docker_bases: %s\n' "$*" >&2; }
die() { printf 'docker_bases: error: %s\n' "$*" >&2; exit 1; }

gover=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$root/go.mod")
[ -n "$gover" ] || die "no go directive in go.mod"
golang_tag="golang:${gover%.*}-bookworm"
slim_tag=debian:bookworm-slim
# The tags the Dockerfile names must be the ones made here.
grep -q "^FROM $golang_tag AS build" "$root/Dockerfile" || die "Dockerfile's build stage is not FROM $golang_tag"
grep -q "^FROM $slim_tag AS runtime-cpu" "$root/Dockerfile" || die "Dockerfile's runtime is not FROM $slim_tag"

have() { "$docker" image inspect "$1" >/dev/null 2>&1; }
pull() { timeout 120 "$docker" pull -q "$1" >/dev/null 2>&1; }

need_mmdebstrap() {
  command -v mmdebstrap >/dev/null && return
  say "installing mmdebstrap (no registry answered)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
}

# Leave out what the official slim image leaves out (dpkg path excludes).
# The merged-usr hook installs usr-is-merged, not usrmerge (which would bring all of perl).
slim_opts=(
  --variant=minbase
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log'
)

# bootstrap LOG ARGS...: mmdebstrap ARGS... bookworm to stdout, its chatter in LOG (shown on failure).
bootstrap() {
  local log=$1
  shift
  mmdebstrap --quiet "$@" bookworm - 2>"$log" || { tail -n 20 "$log" >&2; return 1; }
}

make_slim() {
  need_mmdebstrap
  say "making $slim_tag locally (mmdebstrap minbase)"
  local log
  log=$(mktemp)
  bootstrap "$log" "${slim_opts[@]}" |
    "$docker" import -c 'CMD ["bash"]' -c 'LABEL org.tfflowers.local-base=1' - "$slim_tag" >/dev/null ||
    die "making $slim_tag failed (log: $log)"
  rm -f "$log"
}

work=
trap '[ -z "$work" ] || rm -rf "$work"' EXIT
make_golang() {
  need_mmdebstrap
  work=$(mktemp -d)
  say "making $golang_tag locally (mmdebstrap + go$gover from the Go module proxy)"
  local mod=golang.org/toolchain@v0.0.1-go$gover.linux-amd64
  local dir
  dir=$(cd "$work" && GOFLAGS=-modcacherw GOTOOLCHAIN=local go mod download -json "$mod" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir/bin" ] || die "go mod download $mod gave no toolchain"
  mkdir -p "$work/go"
  cp -a "$dir/." "$work/go/"
  chmod -R u+w "$work/go"
  # Module zips drop file modes: restore the exec bits, as `go` does when it switches toolchains.
  chmod 0755 "$work/go/bin/"* "$work/go/pkg/tool/"*/*
  mkdir -p "$work/ca"
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$work/ca/"
  fi
  # The official golang:bookworm image: buildpack-deps:bookworm-scm plus gcc, g++, libc6-dev, make, pkg-config.
  local pkgs=ca-certificates,curl,wget,gnupg,netbase,git,openssh-client,procps,g++,gcc,libc6-dev,make,pkg-config
  bootstrap "$work/mmdebstrap.log" "${slim_opts[@]}" --include="$pkgs" \
    --customize-hook="copy-in $work/go /usr/local" \
    --customize-hook="mkdir -p \"\$1/usr/local/share/ca-certificates\"" \
    --customize-hook="sync-in $work/ca /usr/local/share/ca-certificates" \
    --customize-hook='chroot "$1" update-ca-certificates >/dev/null' \
    --customize-hook='mkdir -p "$1/go/src" "$1/go/bin" && chmod -R 1777 "$1/go"' |
    "$docker" import \
      -c 'ENV GOLANG_VERSION='"$gover" \
      -c 'ENV GOTOOLCHAIN=local' \
      -c 'ENV GOPATH=/go' \
      -c 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -c 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
      -c 'WORKDIR /go' \
      -c 'CMD ["bash"]' \
      -c 'LABEL org.tfflowers.local-base=1' \
      - "$golang_tag" >/dev/null ||
    die "making $golang_tag failed"
}

for tag in "$slim_tag" "$golang_tag"; do
  if have "$tag"; then
    say "$tag present"
  elif pull "$tag"; then
    say "$tag pulled"
  elif [ "$tag" = "$slim_tag" ]; then
    make_slim
  else
    make_golang
  fi
  have "$tag" || die "$tag could be neither pulled nor made"
done
