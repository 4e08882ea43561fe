"""Classifies images over TF Serving's gRPC API with the official tensorflow-serving-api client.

Works against `tfflowers serve --grpc-port 8500` and `tensorflow_model_server --port 8500` alike:

    python scripts/grpc_predict.py --server localhost:8500 --model flowers rose.jpg tulip.png

prints one JSON line per image (class, class id, scores). --version N or --label L pick a version.

--cases FILE runs the JSON list of calls in FILE in one process and prints one JSON result per
call, gRPC errors included as {"code": "NOT_FOUND", "message": ...}; the Go tests use it to check
`tfflowers serve` with the official client. A case is {"call": "predict"|"metadata"|"status"|
"classify"|"regress", "model", "version", "label", "signature", "images": [paths],
"raw": [strings sent as image bytes], "junk_bytes": N (one image of N zero bytes), "pixels":
[n, size] (a float32 tensor of zeros with values 0..255 from a seed)}.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)


def model_spec(spec, case):
    spec.name = case.get("model", "flowers")
    if case.get("version") is not None:
        spec.version.value = case["version"]
    elif case.get("label"):
        spec.version_label = case["label"]
    if case.get("signature"):
        spec.signature_name = case["signature"]


def image_bytes(case):
    out = []
    for path in case.get("images", []):
        with open(path, "rb") as f:
            out.append(f.read())
    out += [s.encode("latin1") for s in case.get("raw", [])]
    if case.get("junk_bytes"):
        out.append(bytes(case["junk_bytes"]))
    return out


def run(stub, models, case, timeout):
    call = case.get("call", "predict")
    if call == "predict":
        req = predict_pb2.PredictRequest()
        model_spec(req.model_spec, case)
        if case.get("pixels"):
            n, size = case["pixels"]
            rng = np.random.default_rng(case.get("seed", 0))
            px = rng.uniform(0, 255, size=(n, size, size, 3)).astype(np.float32)
            req.inputs["images"].CopyFrom(tf.make_tensor_proto(px))
        else:
            req.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(image_bytes(case), dtype=tf.string))
        resp = stub.Predict(req, timeout=timeout)
        out = resp.outputs
        n = out["class_ids"].tensor_shape.dim[0].size
        scores = tf.make_ndarray(out["scores"]).tolist()
        return {
            "code": "OK",
            "model": resp.model_spec.name,
            "version": resp.model_spec.version.value,
            "signature_name": resp.model_spec.signature_name,
            "scores": scores,
            "classes": [c.decode() for c in out["classes"].string_val],
            "class_ids": list(out["class_ids"].int64_val),
            "n": n,
        }
    if call == "metadata":
        req = get_model_metadata_pb2.GetModelMetadataRequest()
        model_spec(req.model_spec, case)
        req.metadata_field.append("signature_def")
        resp = stub.GetModelMetadata(req, timeout=timeout)
        defs = get_model_metadata_pb2.SignatureDefMap()
        resp.metadata["signature_def"].Unpack(defs)
        sigs = {}
        for name, d in defs.signature_def.items():
            sigs[name] = {
                "method_name": d.method_name,
                "inputs": {k: v.name for k, v in d.inputs.items()},
                "outputs": {k: v.name for k, v in d.outputs.items()},
            }
        return {"code": "OK", "version": resp.model_spec.version.value, "signatures": sigs}
    if call == "status":
        req = get_model_status_pb2.GetModelStatusRequest()
        model_spec(req.model_spec, case)
        resp = models.GetModelStatus(req, timeout=timeout)
        return {
            "code": "OK",
            "versions": [
                {"version": v.version, "state": get_model_status_pb2.ModelVersionStatus.State.Name(v.state),
                 "error_code": v.status.error_code}
                for v in resp.model_version_status
            ],
        }
    if call == "classify":
        req = classification_pb2.ClassificationRequest()
        model_spec(req.model_spec, case)
        stub.Classify(req, timeout=timeout)
        return {"code": "OK"}
    if call == "regress":
        req = regression_pb2.RegressionRequest()
        model_spec(req.model_spec, case)
        stub.Regress(req, timeout=timeout)
        return {"code": "OK"}
    raise SystemExit(f"grpc_predict: unknown call {call!r}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", default="localhost:8500")
    p.add_argument("--model", default="flowers")
    p.add_argument("--version", type=int)
    p.add_argument("--label")
    p.add_argument("--signature")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--cases", help="JSON file of calls to run (tests)")
    p.add_argument("images", nargs="*")
    a = p.parse_args()
    # The client's default receive limit is 4 MiB; sends are unlimited, so the server's limit applies.
    channel = grpc.insecure_channel(a.server, options=[("grpc.max_receive_message_length", 64 << 20)])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    if a.cases:
        with open(a.cases) as f:
            cases = json.load(f)
    else:
        if not a.images:
            p.error("give image files, or --cases FILE")
        cases = [{"model": a.model, "version": a.version, "label": a.label, "signature": a.signature, "images": a.images}]
    failed = False
    for case in cases:
        try:
            res = run(stub, models, case, a.timeout)
        except grpc.RpcError as e:
            res = {"code": e.code().name, "message": e.details()}
            failed = True
        if a.cases:
            print(json.dumps(res), flush=True)
        elif res["code"] != "OK":
            print(f"grpc_predict: {res['code']}: {res['message']}", file=sys.stderr)
        else:
            for i, path in enumerate(a.images):
                print(json.dumps({"file": path, "class": res["classes"][i], "class_id": res["class_ids"][i],
                                  "scores": res["scores"][i], "version": res["version"]}))
    sys.exit(1 if failed and not a.cases else 0)


if __name__ == "__main__":
    main()
