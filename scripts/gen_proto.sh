#!/usr/bin/env bash
# Regenerates the committed Go code for TF Serving's gRPC API (internal/tfservingpb) from
# TF Serving's and TensorFlow's .proto files: TF Serving's come as serialized descriptors
# from the tensorflow-serving-api wheel's _pb2 modules (the wheel ships no .proto), TF's
# from the TensorFlow wheel's include/ folder. TensorFlow's own messages are not generated
# again: they map onto the galeone tensorflow/go packages that savedmodel already links
# (two Go packages registering one .proto file is a fatal protobuf registry conflict).
# Only tensorflow/core/example, which galeone does not ship, is generated here.
# Needs: protoc (Debian's protobuf-compiler), Go, the venv of scripts/setup.sh.
# Run with `make proto`; `make test` does not run it (internal/tfservingpb tests that
# the committed code is what this script writes for the pinned inputs).
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO=v1.36.10       # = google.golang.org/protobuf in go.mod
PROTOC_GEN_GO_GRPC=v1.5.1
py=${TFFLOWERS_PYTHON:-.venv/bin/python}
command -v protoc >/dev/null || { echo "gen_proto: error: protoc not found: apt-get install protobuf-compiler" >&2; exit 1; }
[ -x "$py" ] || { echo "gen_proto: error: $py not found: run scripts/setup.sh first" >&2; exit 1; }

tools=build/proto/bin
mkdir -p "$tools"
GOBIN="$PWD/$tools" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO"
GOBIN="$PWD/$tools" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC"

# The TF wheel's include/ folder, found without importing TensorFlow.
site=$("$py" -c 'import importlib.util as u; print(u.find_spec("tensorflow").submodule_search_locations[0])')
inc="$site/include"
[ -f "$inc/tensorflow/core/framework/tensor.proto" ] || { echo "gen_proto: error: no .proto files in $inc" >&2; exit 1; }
"$py" scripts/serving_descriptors.py build/proto/serving.pb

mod=github.com/tfflowers/tfflowers/internal/tfservingpb
tfgo=github.com/galeone/tensorflow/tensorflow/go
serving=$("$py" - <<'PY'
from google.protobuf import descriptor_pb2
s = descriptor_pb2.FileDescriptorSet.FromString(open("build/proto/serving.pb", "rb").read())
print(" ".join(f.name for f in s.file))
PY
)
maps=()
for f in $serving; do maps+=("M$f=$mod"); done
for f in tensorflow/core/framework/{tensor,tensor_shape,types,resource_handle}.proto; do
  b=$(basename "$f" .proto); maps+=("M$f=$tfgo/core/framework/${b}_go_proto")
done
for f in tensorflow/core/protobuf/{meta_graph,error_codes,saver,struct,saved_object_graph,trackable_object_graph}.proto \
  tensorflow/core/framework/graph_debug_info.proto tsl/protobuf/error_codes.proto xla/tsl/protobuf/error_codes.proto; do
  maps+=("M$f=$tfgo/core/protobuf/for_core_protos_go_proto")
done
maps+=("Mtensorflow/core/example/example.proto=$mod/examplepb" "Mtensorflow/core/example/feature.proto=$mod/examplepb")
opt() { local IFS=,; echo "$*"; }

out=build/proto/go
rm -rf "$out" && mkdir -p "$out"
PATH="$PWD/$tools:$PATH" protoc -I "$inc" --descriptor_set_in=build/proto/serving.pb \
  --go_out="$out" --go_opt="$(opt paths=import "${maps[@]}")" \
  --go-grpc_out="$out" --go-grpc_opt="$(opt paths=import "${maps[@]}")" \
  $serving tensorflow/core/example/example.proto tensorflow/core/example/feature.proto
rm -rf internal/tfservingpb/*.pb.go internal/tfservingpb/examplepb
mkdir -p internal/tfservingpb
cp -r "$out/$mod/." internal/tfservingpb/
gofmt -l internal/tfservingpb >/dev/null
echo "gen_proto: wrote $(find internal/tfservingpb -name '*.pb.go' | wc -l) files in internal/tfservingpb"
