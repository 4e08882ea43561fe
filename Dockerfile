# tfflowers image: `docker run ... tfflowers train --data /data/flower_photos --export /models/flowers`
#
# Every RUN step calls a script that CI also runs (make test: scripts/check_dockerfile.sh checks this).
#   CPU (default):  docker build -t tfflowers .
#   GPU:            docker build -t tfflowers:gpu --build-arg VARIANT=gpu .
#   Offline base weights: put the TF-slim .npy files in ./docker-weights/ (git-ignored) and add
#                   --build-arg TFFLOWERS_WEIGHTS=/src/docker-weights
ARG VARIANT=cpu

FROM golang:1.26-bookworm AS build
ARG VARIANT
ARG TFFLOWERS_WEIGHTS=imagenet
WORKDIR /src
COPY scripts/install_build_deps.sh scripts/install_build_deps.sh
RUN bash scripts/install_build_deps.sh
COPY . .
# setup.sh installs the pinned wheel: tensorflow-cpu, or tensorflow[and-cuda] for the GPU variant.
RUN TFFLOWERS_VARIANT="$VARIANT" bash scripts/setup.sh
# Separate layers on purpose: the TensorFlow install stays cached while the sources change.
# hadolint ignore=DL3059
RUN TFFLOWERS_WEIGHTS="$TFFLOWERS_WEIGHTS" bash scripts/docker_build.sh /opt/tfflowers

FROM debian:bookworm-slim AS runtime-cpu
FROM nvidia/cuda:12.5.1-base-ubuntu24.04 AS runtime-gpu

# runtime-cpu / runtime-gpu are the stages above, not registry images.
# hadolint ignore=DL3006
FROM runtime-${VARIANT} AS runtime
# No Python, no Go: the binary, the TensorFlow libraries and the base model (smoke-tested in docker_build.sh).
COPY --from=build /opt/tfflowers /opt/tfflowers
ENV PATH=/opt/tfflowers/bin:$PATH \
    TFFLOWERS_BASE=/opt/tfflowers/models/base \
    TFFLOWERS_CACHE_DIR=/data/.tfflowers-cache \
    TFFLOWERS_LOG_FORMAT=json
USER 10001:10001
# /data: datasets (and the feature cache); /models: exports for TF Serving.
VOLUME ["/data", "/models"]
WORKDIR /data
ENTRYPOINT ["tfflowers"]
CMD ["--help"]
