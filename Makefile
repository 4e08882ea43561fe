# tfflowers — every target sources .tf/env.sh, which scripts/setup.sh writes.
#   make run    set up, export the ImageNet base, train on the flower photos (the main job)
#   make test   set up and run every test (what .ci/run calls)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
ENV := . .tf/env.sh &&

# TFFLOWERS_LOCAL points at local copies of the data and weights (e.g. ../shared) for offline
# machines: $(TFFLOWERS_LOCAL)/data/flower_photos and $(TFFLOWERS_LOCAL)/models/mobilenet_v2_1.0_224_imagenet_npy.
TFFLOWERS_LOCAL ?=
DATA ?= $(if $(TFFLOWERS_LOCAL),$(TFFLOWERS_LOCAL)/data/flower_photos,build/flower_photos)
WEIGHTS ?= $(if $(TFFLOWERS_LOCAL),$(TFFLOWERS_LOCAL)/models/mobilenet_v2_1.0_224_imagenet_npy,imagenet)
BASE ?= models/base
# A new folder per run: train refuses to overwrite an earlier run (use --resume to continue one).
OUT ?= runs/flowers-$(shell date +%Y%m%d-%H%M%S)
TRAIN_FLAGS ?=
GOTEST_FLAGS ?= -count=1 -timeout 60m
# An execution count, not a duration: with -fuzztime 5s a worker still busy at the deadline
# sometimes fails the run with "context deadline exceeded" (seen in CI); a count has no deadline.
FUZZTIME ?= 30000x

.PHONY: setup build base data run test vet fmt clean docker-test proto
setup:
	bash scripts/setup.sh

build: setup
	$(ENV) go build -o bin/tfflowers ./cmd/tfflowers

# A base from before format version 2 (no intermediate layer tensors, which the default
# head pools) is exported again.
base: setup
	@if grep -qs '"layer_tensors"' $(BASE)/assets.extra/tfflowers_base.json; then echo "base model ready: $(BASE)"; else \
	  $(ENV) "$$TFFLOWERS_PYTHON" scripts/export_base_model.py --out $(BASE) --weights $(WEIGHTS) --force; fi

data:
	@if [ -z "$(TFFLOWERS_LOCAL)" ]; then bash scripts/get_flowers.sh build; fi

run: build base data
	$(ENV) ./bin/tfflowers train --data $(DATA) --base $(BASE) --out $(OUT) $(TRAIN_FLAGS)

vet: setup
	$(ENV) go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

# Build the Docker image and run it as the README says (starts and stops dockerd itself; see the script).
docker-test: setup
	bash scripts/check_dockerfile.sh
	bash scripts/docker_test.sh

test: setup vet
	$(ENV) CGO_ENABLED=0 go test -count=1 ./pipeline/... ./internal/report/... ./internal/atomicfile/...
	@# Fuzz the parsers of untrusted files for a short, bounded time (the corpus is committed).
	$(ENV) for f in FuzzReadTFRecord FuzzSniffFormat FuzzExifOrientation; do \
	  CGO_ENABLED=0 go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./pipeline || exit 1; done
	$(ENV) go test $(GOTEST_FLAGS) ./...
	$(MAKE) docker-test

# Regenerates the committed Go code of TF Serving's gRPC API (internal/tfservingpb) from
# the TF Serving and TensorFlow wheels' protos; needs protoc (apt-get install protobuf-compiler).
proto: setup
	$(ENV) bash scripts/gen_proto.sh

clean:
	rm -rf bin build runs
