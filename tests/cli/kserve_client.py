#!/usr/bin/python3
"""An independent Open Inference Protocol (KServe v2) client for the `serve` tests.

It knows nothing of Scission's code: it generates its gRPC stubs from proto/inference.proto with
grpc_tools (Debian's python3-grpc-tools) and speaks the protocol as any Triton/KServe client
would. It runs the health and metadata calls, infers with raw_input_contents and with typed
contents, sends malformed requests, and prints one JSON report on stdout; the outputs go to .npy
files for the C++ test to compare with the whole model.

    kserve_client.py --proto DIR --address HOST:PORT --model NAME --input NAME=FILE.npy --out DIR
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np


def load_stubs(proto_dir):
    from grpc_tools import protoc
    out = tempfile.mkdtemp(prefix="kserve_stubs_")
    rc = protoc.main(["protoc", f"--proto_path={proto_dir}", f"--python_out={out}",
                      f"--grpc_python_out={out}", os.path.join(proto_dir, "inference.proto")])
    if rc != 0:
        sys.exit(f"protoc failed with {rc}")
    sys.path.insert(0, out)
    import inference_pb2
    import inference_pb2_grpc
    return inference_pb2, inference_pb2_grpc


DATATYPES = {np.float32: "FP32", np.float16: "FP16", np.int64: "INT64", np.int32: "INT32",
             np.uint8: "UINT8", np.bool_: "BOOL"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--proto", required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import grpc
    pb, pb_grpc = load_stubs(args.proto)
    name, path = args.input.split("=", 1)
    x = np.load(path)
    datatype = DATATYPES[x.dtype.type]
    channel = grpc.insecure_channel(args.address, options=[
        ("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 256 << 20)])
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    report = {}
    report["live"] = stub.ServerLive(pb.ServerLiveRequest()).live
    report["ready"] = stub.ServerReady(pb.ServerReadyRequest()).ready
    report["model_ready"] = stub.ModelReady(pb.ModelReadyRequest(name=args.model)).ready
    meta = stub.ServerMetadata(pb.ServerMetadataRequest())
    report["server"] = {"name": meta.name, "version": meta.version}
    m = stub.ModelMetadata(pb.ModelMetadataRequest(name=args.model))
    report["metadata"] = {
        "name": m.name, "versions": list(m.versions), "platform": m.platform,
        "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)} for t in m.inputs],
        "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                    for t in m.outputs]}

    def request(raw=True, **overrides):
        tensor = pb.ModelInferRequest.InferInputTensor(
            name=overrides.get("name", name), datatype=overrides.get("datatype", datatype),
            shape=overrides.get("shape", list(x.shape)))
        req = pb.ModelInferRequest(model_name=overrides.get("model", args.model), id="req-1")
        if raw:
            req.raw_input_contents.append(overrides.get("data", x.tobytes()))
        else:
            tensor.contents.fp32_contents.extend(overrides.get("values", x.ravel().tolist()))
        req.inputs.append(tensor)
        return req

    def outputs(reply):
        result = {}
        for i, t in enumerate(reply.outputs):
            dtype = {v: k for k, v in DATATYPES.items()}[t.datatype]
            result[t.name] = np.frombuffer(reply.raw_output_contents[i], dtype=dtype).reshape(
                list(t.shape))
        return result

    reply = stub.ModelInfer(request(raw=True))
    report["raw_id"] = reply.id
    for key, value in outputs(reply).items():
        np.save(os.path.join(args.out, f"raw_{key}.npy"), value)
    report["raw_outputs"] = [t.name for t in reply.outputs]
    if datatype == "FP32":
        reply = stub.ModelInfer(request(raw=False))
        for key, value in outputs(reply).items():
            np.save(os.path.join(args.out, f"typed_{key}.npy"), value)
        report["typed_outputs"] = [t.name for t in reply.outputs]

    def code_of(req):
        try:
            stub.ModelInfer(req)
            return "OK"
        except grpc.RpcError as e:
            return e.code().name

    bad_shape = list(x.shape)
    bad_shape[-1] += 1
    both = request(raw=True)
    both.inputs[0].contents.fp32_contents.append(1.0)
    two = request(raw=True)
    two.inputs.append(two.inputs[0])
    two.raw_input_contents.append(x.tobytes())
    report["errors"] = {
        "unknown_model": code_of(request(model="no_such_model")),
        "unknown_input": code_of(request(name="no_such_input")),
        "wrong_datatype": code_of(request(datatype="INT32", data=x.astype(np.int32).tobytes())),
        "wrong_shape": code_of(request(shape=bad_shape,
                                       data=np.zeros(bad_shape, x.dtype).tobytes())),
        "short_raw": code_of(request(data=x.tobytes()[:-4])),
        "raw_and_contents": code_of(both),
        "few_values": code_of(request(raw=False, values=[1.0, 2.0])),
        "unknown_datatype": code_of(request(datatype="COMPLEX")),
        "negative_dim": code_of(request(shape=[-1] + list(x.shape[1:]))),
        "huge_shape": code_of(request(shape=[1 << 20, 1 << 20, 1 << 10], data=b"")),
        "input_twice": code_of(two),
        "no_inputs": code_of(pb.ModelInferRequest(model_name=args.model)),
    }
    # The service is still up and answers correctly after all that.
    again = outputs(stub.ModelInfer(request(raw=True)))
    first = np.load(os.path.join(args.out, f"raw_{report['raw_outputs'][0]}.npy"))
    report["after_errors_equal"] = bool(np.array_equal(again[report["raw_outputs"][0]], first))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
