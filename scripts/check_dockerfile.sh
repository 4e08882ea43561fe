#!/usr/bin/env bash
# Keep the Dockerfile honest before it is built: every COPY source exists (globs may match nothing), every RUN
# step runs a project script, CI (make test) builds the image (scripts/docker_test.sh), the image is non-root
# with the documented mounts and entrypoint, and hadolint finds nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
df=Dockerfile
fail() { echo "check_dockerfile: $*" >&2; exit 1; }
[ -f "$df" ] || fail "no Dockerfile"
grep -q 'bash scripts/docker_test.sh' Makefile || fail "make test does not build the image (scripts/docker_test.sh)"
runs=0
while IFS= read -r line; do
  case $line in
    RUN\ *)
      runs=$((runs + 1))
      script=$(grep -oE 'bash scripts/[a-z_]+\.sh' <<<"$line" | head -1 | cut -d' ' -f2)
      [ -n "$script" ] || fail "RUN step does not call a project script: $line"
      [ -f "$script" ] || fail "RUN step calls missing $script"
      ;;
    COPY\ --from=*) ;;
    COPY\ *)
      read -r -a words <<<"$line"
      for src in "${words[@]:1:${#words[@]}-2}"; do
        case $src in --*) continue ;; *[][*?]*) continue ;; esac   # flags; optional globs
        [ "$src" = . ] || [ -e "$src" ] || fail "COPY source $src does not exist"
      done
      ;;
  esac
done < <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$df")
[ "$runs" -gt 0 ] || fail "no RUN steps found"
grep -q '^ENTRYPOINT \["tfflowers"\]' "$df" || fail 'ENTRYPOINT must be ["tfflowers"]'
grep -qE '^USER [1-9]' "$df" || fail "the runtime image must run as a non-root USER"
grep -q '^VOLUME \["/data", "/models"\]' "$df" || fail 'VOLUME ["/data", "/models"] missing'
hadolint=$(command -v hadolint || true)
[ -n "$hadolint" ] || [ ! -x .venv/bin/hadolint ] || hadolint=.venv/bin/hadolint   # installed by setup.sh
[ -n "$hadolint" ] || fail "hadolint not found (scripts/setup.sh installs it into .venv)"
"$hadolint" "$df" || fail "hadolint reports problems in $df"
echo "check_dockerfile: ok ($runs RUN steps, each a project script)"
