# tfflowers image: `docker run ... tfflowers train --data /data/flower_photos --export /models/flowers`
#
# Build with BuildKit (DOCKER_BUILDKIT=1). make test builds it and runs it (scripts/docker_test.sh);
# scripts/check_dockerfile.sh keeps every RUN step a project script.
#   CPU (default):  docker build -t tfflowers .
#   GPU:            docker build -t tfflowers:gpu --build-arg VARIANT=gpu .
#   Offline base weights: put the TF-slim .npy files in ./docker-weights/ (git-ignored) and add
#                   --build-arg TFFLOWERS_WEIGHTS=/src/docker-weights
# Layers go from the slowest-changing to the fastest: build tools, TensorFlow (setup.sh), the base model
# (its exporter and weights only), then the sources. An edit to the Go code or the README rebuilds only the last.
ARG VARIANT=cpu

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY scripts/install_build_deps.sh scripts/install_build_deps.sh
RUN bash scripts/install_build_deps.sh
ARG VARIANT
# The pip and Go build caches live in BuildKit cache mounts at fixed paths, not under a home directory.
ENV PIP_CACHE_DIR=/var/cache/pip \
    GOCACHE=/var/cache/go-build
COPY go.mod go.sum ./
COPY scripts/setup.sh scripts/requirements.txt scripts/
# setup.sh installs the TensorFlow wheel (tensorflow-cpu, or tensorflow[and-cuda] for VARIANT=gpu).
RUN --mount=type=cache,target=/var/cache/pip TFFLOWERS_VARIANT="$VARIANT" bash scripts/setup.sh
COPY scripts/export_base_model.py scripts/docker_build.sh scripts/
# Optional: a folder of .npy weights in the build context (the glob copies nothing when it is absent).
COPY docker-weight[s] docker-weights/
ARG TFFLOWERS_WEIGHTS=imagenet
RUN TFFLOWERS_WEIGHTS="$TFFLOWERS_WEIGHTS" bash scripts/docker_build.sh base /opt/tfflowers
COPY . .
RUN --mount=type=cache,target=/var/cache/go-build bash scripts/docker_build.sh app /opt/tfflowers

FROM debian:bookworm-slim AS runtime-cpu
FROM nvidia/cuda:12.5.1-base-ubuntu24.04 AS runtime-gpu

# runtime-cpu / runtime-gpu are the stages above, not registry images.
# hadolint ignore=DL3006
FROM runtime-${VARIANT} AS runtime
# No Python, no Go: the binary, the stripped TensorFlow libraries and the base model (smoke-tested in
# docker_build.sh). The empty /data and /models belong to the image's user, so its volumes are writable.
COPY --from=build /opt/tfflowers /opt/tfflowers
COPY --from=build --chown=10001:10001 /opt/tfflowers-volumes/ /
ENV PATH=/opt/tfflowers/bin:$PATH \
    TFFLOWERS_BASE=/opt/tfflowers/models/base \
    TFFLOWERS_CACHE_DIR=/data/.tfflowers-cache \
    TFFLOWERS_LOG_FORMAT=json \
    TF_CPP_MIN_LOG_LEVEL=2
USER 10001:10001
# /data: datasets (and the feature cache); /models: exports for TF Serving.
VOLUME ["/data", "/models"]
WORKDIR /data
ENTRYPOINT ["tfflowers"]
CMD ["--help"]
