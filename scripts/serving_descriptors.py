"""Writes TF Serving's API .proto files as a FileDescriptorSet for protoc --descriptor_set_in.

The tensorflow-serving-api wheel ships no .proto files, only the _pb2 modules generated
from them, each embedding its file's serialized FileDescriptorProto. This collects those
of tensorflow_serving/* (TensorFlow's own files come from the TF wheel's include/ folder)
so that scripts/gen_proto.sh can generate Go code from exactly what the official Python
client speaks. Usage: serving_descriptors.py OUT.pb
"""
import os
import sys

# The wheel's prediction_service_pb2/model_service_pb2 are in the pre-3.20 generated
# style, which the C (upb) backend refuses to import; the pure-Python backend reads them.
os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from google.protobuf import descriptor_pb2  # noqa: E402

from tensorflow_serving.apis import model_service_pb2, prediction_service_pb2  # noqa: E402
from tensorflow_serving.config import model_server_config_pb2  # noqa: E402


def main(out):
    files = {}

    def walk(d):
        if d.name in files:
            return
        for dep in d.dependencies:
            walk(dep)
        files[d.name] = d  # dependencies first, as protoc wants them

    for m in (prediction_service_pb2, model_service_pb2, model_server_config_pb2):
        walk(m.DESCRIPTOR)
    fds = descriptor_pb2.FileDescriptorSet()
    for name, d in files.items():
        if name.startswith("tensorflow_serving/"):
            fds.file.add().ParseFromString(d.serialized_pb)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(fds.SerializeToString())
    os.replace(tmp, out)
    print(f"{out}: {len(fds.file)} TF Serving files")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: serving_descriptors.py OUT.pb")
    main(sys.argv[1])
