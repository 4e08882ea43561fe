#!/usr/bin/env bash
# Build the Docker image and use it as a user would (make test runs this, so .ci/run does).
#
#   1. the engine: installs Debian's docker.io when dockerd is missing; uses a running daemon if one answers,
#      else starts dockerd (--iptables=false --bridge=none) for the duration of the test and stops it by PID
#   2. the bases: scripts/docker_bases.sh pulls them, or makes them locally when no registry answers
#   3. the README's Docker commands, exactly as written there (the fenced blocks after the markers
#      <!-- docker-test:build --> and <!-- docker-test:run -->), each line in order: the build in the repository
#      root, the rest in a scratch folder holding a small flower_photos/ set and a jobs.yaml. Every line of those
#      blocks must run and pass its check below, and every docker command must be in those blocks.
#   4. failing cases: an export into a mounted folder the image's user may not write, and into a read-only
#      mount, must fail with tfflowers' hint (chown 10001:10001 DIR, or --user; drop :ro)
# Containers run as the image's user (uid 10001) with --network none, except serve (--network host,
# listening on 127.0.0.1 only). Containers this script started are removed at the end, whatever happens;
# the image (tag tfflowers) and the build cache stay, so a second run is a warm build.
#
# Environment: TFFLOWERS_SHARED (default ../shared: data/flower_photos and the .npy weights),
# TFFLOWERS_DOCKER_IMAGES_PER_CLASS (default 8).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
shared=${TFFLOWERS_SHARED:-$root/../shared}
per_class=${TFFLOWERS_DOCKER_IMAGES_PER_CLASS:-8}
say() { printf 'docker_test: %s\n' "$*" >&2; }
die() { printf 'docker_test: FAIL: %s\n' "$*" >&2; exit 1; }
t0=$SECONDS
lap() { printf 'docker_test: %-44s %4ds\n' "$1" $((SECONDS - $2)) >&2; }

[ -d "$shared/data/flower_photos" ] || die "no flower photos in $shared/data (set TFFLOWERS_SHARED)"
weights_src=$shared/models/mobilenet_v2_1.0_224_imagenet_npy
[ -d "$weights_src" ] || die "no $weights_src (set TFFLOWERS_SHARED)"

# --- 1. engine ------------------------------------------------------------------------------------------
# Debian's client (docker.io) has BuildKit built in; a docker found first on PATH may be another client
# without buildx, whose legacy builder would also pull the unused GPU stage's base.
if [ ! -x /usr/bin/docker ] || ! command -v dockerd >/dev/null; then
  [ "$(id -u)" = 0 ] || die "docker.io is not installed and this is not root: apt-get install docker.io"
  say "installing docker.io"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
fi
work=$root/build/docker-test
rm -rf "$work"
mkdir -p "$work/bin"
ln -s /usr/bin/docker "$work/bin/docker"
export PATH=$work/bin:$PATH
dockerd_pid=
before=
cleanup() {
  local rc=$?
  set +e
  if [ -n "$before" ]; then
    # Containers created during the run (the serve one, or a --rm one whose client was killed).
    local ids
    ids=$(comm -13 <(echo "$before") <(docker ps -aq --no-trunc | sort))
    [ -z "$ids" ] || { say "removing containers left by the test"; docker rm -f -v $ids >/dev/null; }
  fi
  if [ -n "$dockerd_pid" ]; then
    kill -TERM "$dockerd_pid" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$dockerd_pid" 2>/dev/null && { say "dockerd $dockerd_pid did not stop; killing it"; kill -KILL "$dockerd_pid"; }
    say "stopped dockerd (pid $dockerd_pid)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say "FAIL: line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM
lap_t=$SECONDS
if docker info >/dev/null 2>&1; then
  say "using the running docker daemon"
else
  [ "$(id -u)" = 0 ] || die "no docker daemon answers and only root can start one"
  say "starting dockerd (log: $work/dockerd.log)"
  dockerd --iptables=false --bridge=none --storage-driver=overlay2 >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || die "dockerd exited: $(tail -n 5 "$work/dockerd.log")"
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || die "dockerd did not answer within 60 s: $(tail -n 5 "$work/dockerd.log")"
fi
before=$(docker ps -aq --no-trunc | sort)
volumes_before=$(docker volume ls -q | sort)
docker ps -a --format '{{.Names}}' | grep -qx tfflowers-serve &&
  die "a container named tfflowers-serve exists already (not this test's); remove it or stop it first"
lap "engine ready" "$lap_t"

# --- 2. bases --------------------------------------------------------------------------------------------
lap_t=$SECONDS
bash scripts/docker_bases.sh docker
lap "base images" "$lap_t"

# --- 3. the README's commands ----------------------------------------------------------------------------
# readme_block MARKER: the lines of the first ```sh block after <!-- docker-test:MARKER -->.
readme_block() {
  awk -v m="<!-- docker-test:$1 -->" '
    $0 == m { found = 1; next }
    found && /^```sh$/ { inblock = 1; next }
    inblock && /^```$/ { exit }
    inblock { print }' README.md
}
build_cmds=$(readme_block build)
run_cmds=$(readme_block run)
[ -n "$build_cmds" ] && [ -n "$run_cmds" ] || die "README.md lacks the docker-test:build / docker-test:run blocks"
# No docker command of the README's Docker section may escape the test.
section=$(awk '/^## Docker$/ { s = 1; next } s && /^## / { exit } s { print }' README.md)
while IFS= read -r line; do
  case $line in
    docker\ * | DOCKER_BUILDKIT=1\ docker\ *)
      grep -qxF -- "$line" <<<"$build_cmds"$'\n'"$run_cmds" ||
        case $line in *--gpus* | *VARIANT=gpu*) ;; *) die "README's Docker section runs '$line' outside the tested blocks" ;; esac
      ;;
  esac
done <<<"$section"

# run_line DIR LINE: runs one README line in DIR with bash, output in $out / $err, exit status in $rc.
out=$work/out.txt
err=$work/err.txt
run_line() {
  say "\$ $2"
  local t=$SECONDS
  rc=0
  (cd "$1" && timeout 1800 bash -o pipefail -c "$2") >"$out" 2>"$err" || rc=$?
  lap "  exit $rc" "$t"
}
show() { say "stdout: $(tail -c 1500 "$out")"; say "stderr: $(tail -c 1500 "$err")"; }
expect_ok() { [ "$rc" = 0 ] || { show; die "'$1' exited $rc"; }; }

# The image's base weights come from the build context (the README says so, before its build block).
rm -rf docker-weights
cp -r "$weights_src" docker-weights

image_before=$(docker image inspect -f '{{.Id}}' tfflowers 2>/dev/null || true)
lap_t=$SECONDS
while IFS= read -r line; do
  [ -n "$line" ] && [ "${line:0:1}" != "#" ] || continue
  run_line "$root" "$line"
  case $line in
    *"docker build "*) expect_ok "$line"; say "$(tail -n 3 "$err" | tr '\n' ' ')" ;;
    *) die "unexpected line in the docker-test:build block: $line" ;;
  esac
done <<<"$build_cmds"
lap "image build (docker build)" "$lap_t"
# The same build again, nothing changed: every RUN step must come from the cache (the test's own files and
# the docs are outside the build context, see .dockerignore).
lap_t=$SECONDS
run_line "$root" "$(grep -m1 'docker build ' <<<"$build_cmds")"
expect_ok "second build"
rerun=$(awk '/^#[0-9]+ \[.*\] RUN /{ run[$1] = $0 } /^#[0-9]+ CACHED/{ hit[$1] = 1 }
  END { for (k in run) if (!(k in hit)) print run[k] }' "$err")
[ -z "$rerun" ] || die "a second build with nothing changed ran again: $rerun"
lap "image rebuild, nothing changed (all cached)" "$lap_t"
image_after=$(docker image inspect -f '{{.Id}}' tfflowers)
# The tag moved: drop the image it left dangling (ours, from an earlier run).
if [ -n "$image_before" ] && [ "$image_before" != "$image_after" ]; then
  docker image rm "$image_before" >/dev/null 2>&1 || true
fi
size=$(docker image inspect -f '{{.Size}}' tfflowers)
libs=$(docker run --rm --network none --entrypoint du tfflowers -sb /opt/tfflowers/lib | cut -f1)
say "image tfflowers: $((size / 1000000)) MB, of which TensorFlow libraries $((libs / 1000000)) MB"
# Goal: stripped libraries, and the rest of the image (base OS, binary, base model) within 120 MB.
[ $((size - libs)) -le 120000000 ] || die "the image is $(((size - libs) / 1000000)) MB above its libraries (limit 120)"
owners=$(docker run --rm --network none --entrypoint stat tfflowers -c '%u:%g' /data /models | sort -u)
[ "$owners" = "10001:10001" ] || die "the image's /data and /models volumes belong to $owners, not its user 10001:10001"

# The scratch folder the run block works in: a small class-folder set, a jobs file with one good job and
# one that fails (its data folder does not exist).
mkdir -p "$work/flower_photos"
for class in daisy dandelion roses sunflowers tulips; do
  mkdir -p "$work/flower_photos/$class"
  find "$shared/data/flower_photos/$class" -name '*.jpg' | sort | sed -n "1,${per_class}p" |
    xargs cp -t "$work/flower_photos/$class"
done
chmod -R a+rX "$work/flower_photos"
cat >"$work/jobs.yaml" <<'EOF'
# One job that trains, one that fails: its data folder does not exist.
out: /models/sweep
defaults:
  data: /data/flower_photos
  epochs: 3
jobs:
  - name: good
  - name: broken
    data: /data/no-such-folder
EOF
chmod a+r "$work/jobs.yaml"
want_tf=$(sed -n 's/^tf=//p' .venv/.tfflowers-installed 2>/dev/null || true)
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

lap_t=$SECONDS
while IFS= read -r line; do
  [ -n "$line" ] && [ "${line:0:1}" != "#" ] || continue
  case $line in *" serve "*) port_in_use 8501 && die "127.0.0.1:8501 is in use; serve cannot listen there" ;; esac
  run_line "$work" "$line"
  case $line in
    mkdir\ *) expect_ok "$line"
      [ "$(stat -c %u:%g "$work/models")" = 10001:10001 ] || die "models/ does not belong to 10001:10001" ;;
    *" tfflowers version"*) expect_ok "$line"
      grep -q '"tensorflow"' "$out" || { show; die "version --json prints no tensorflow version"; }
      grep -q "\"tensorflow\": *\"$want_tf\"" "$out" || { show; die "the image runs another TensorFlow than setup.sh's $want_tf"; } ;;
    *" tfflowers devices"*) expect_ok "$line"; grep -q CPU "$out" || { show; die "devices lists no CPU"; } ;;
    *" train "*) expect_ok "$line"
      [ -f "$work/models/flowers/1/saved_model.pb" ] || { show; die "train --export wrote no models/flowers/1/saved_model.pb"; }
      grep -q "\"tensorflow_version\": *\"$want_tf\"" "$work/models/run/metrics.json" ||
        die "models/run/metrics.json does not record TensorFlow $want_tf"
      [ "$(stat -c %u "$work/models/flowers/1/saved_model.pb")" = 10001 ] || die "the export is not owned by the image's user" ;;
    *" predict "*) expect_ok "$line"
      n=$(grep -c '"file"' "$out" || true)
      [ "$n" = "$per_class" ] || { show; die "predict printed $n results for $per_class roses"; }
      grep -q '"error"' "$out" && { show; die "predict reported errors"; } ;;
    *" batch "*)
      [ "$rc" = 1 ] || { show; die "batch with one failing job exited $rc, want 1"; }
      grep -q '"status": *"done"' "$work/models/sweep/good/status.json" || die "batch: the good job is not done"
      grep -q '"status": *"failed"' "$work/models/sweep/broken/status.json" || die "batch: the broken job is not failed"
      grep -q 'no-such-folder' "$work/models/sweep/broken/job.log" || die "batch: the broken job's log does not name its folder" ;;
    *" serve "*) expect_ok "$line" ;;
    until\ *) expect_ok "$line" ;;
    img=* | curl\ *) expect_ok "$line"
      grep -qE '"classes": *"(daisy|dandelion|roses|sunflowers|tulips)"' "$out" || { show; die "serve answered no class"; }
      [ "$(grep -o '"scores"' "$out" | wc -l)" = 1 ] || { show; die "serve answered not exactly one prediction"; } ;;
    *"docker rm -f -v tfflowers-serve"*) expect_ok "$line" ;;
    *) die "no check for the README line: $line" ;;
  esac
done <<<"$run_cmds"
lap "README's docker run commands" "$lap_t"

# --- 4. failing cases ------------------------------------------------------------------------------------
lap_t=$SECONDS
mkdir -p "$work/root-owned"
chmod 0755 "$work/root-owned"
chown 0:0 "$work/root-owned"
train='tfflowers train --data /data/flower_photos --epochs 1 --out /models/run --export /models/flowers'
rc=0
docker run --rm --network none -v "$work/flower_photos:/data/flower_photos:ro" -v "$work/root-owned:/models" \
  $train >"$out" 2>"$err" || rc=$?
[ "$rc" != 0 ] || die "training into a root-owned mount succeeded as uid 10001"
grep -q 'chown 10001:10001 DIR' "$err" && grep -q -- '--user' "$err" ||
  { show; die "an unwritable mount's error does not say chown 10001:10001 DIR / --user"; }
say "unwritable mount: exit $rc, $(grep -m1 'may not create' "$err")"
mkdir -p "$work/read-only"
rc=0
docker run --rm --network none -v "$work/flower_photos:/data/flower_photos:ro" -v "$work/read-only:/models:ro" \
  $train >"$out" 2>"$err" || rc=$?
[ "$rc" != 0 ] || die "training into a read-only mount succeeded"
grep -q 'read-only file system' "$err" && grep -q ':ro' "$err" ||
  { show; die "a read-only mount's error does not say to mount it writable"; }
say "read-only mount: exit $rc, $(grep -m1 'read-only file system;' "$err")"
lap "failing cases" "$lap_t"

# Every container went with --rm or docker rm -v: no anonymous /data or /models volume may be left.
left=$(comm -13 <(echo "$volumes_before") <(docker volume ls -q | sort))
[ -z "$left" ] || die "the test left docker volumes behind: $left"
lap "docker_test total" "$t0"
say "ok"
