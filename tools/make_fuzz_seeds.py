#!/usr/bin/env python3
"""Writes the small seed corpus for the fuzz targets (fuzz/corpus/). Build-time helper only.

Pickle seeds mimic the original tool's files (protocol 3, __main__.LayerBenchmark); ONNX seeds are
tiny graphs built with Debian's python3-onnx, stored as .bin (never *.onnx in the repo).
"""
import os
import pickle
import sys


class LayerBenchmark:  # same name and module (__main__) as the original tool's class
    pass


def layer(model, i, o, t, size):
    b = LayerBenchmark()
    b.model, b.device, b.input_layer, b.output_layer = model, "", i, o
    b.second_prediction, b.output_size = t, size
    return b


def pickles(out):
    os.makedirs(out, exist_ok=True)
    data = {"tiny": [layer("tiny", 0, 1, 0.5, 1000), layer("tiny", 2, 3, 0.25, 10)],
            "big": [layer("big", 0, 0, 1e-3, 2 ** 40)]}
    with open(os.path.join(out, "two_models.dat"), "wb") as f:
        pickle.dump(data, f, protocol=3)
    with open(os.path.join(out, "empty_dict.dat"), "wb") as f:
        pickle.dump({}, f, protocol=3)
    with open(os.path.join(out, "evil_global.dat"), "wb") as f:
        f.write(b"\x80\x03cos\nsystem\nX\x02\x00\x00\x00lsq\x00\x85R.")
    with open(os.path.join(out, "network.csv"), "wb") as f:
        f.write(b"source,destination,ping(ms),bandwidth(mbps)\nraspi4,2500,  66.7,  1.6\n")


def onnx_seeds(out):
    import onnx
    from onnx import TensorProto, helper
    os.makedirs(out, exist_ok=True)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [0.1] * 16)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Add", ["b", "x"], ["c"]), helper.make_node("Sigmoid", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "seed", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    bytes_ = model.SerializeToString()
    with open(os.path.join(out, "residual.bin"), "wb") as f:
        f.write(bytes_)
    with open(os.path.join(out, "truncated.bin"), "wb") as f:
        f.write(bytes_[: len(bytes_) // 2])
    dangling = helper.make_graph([helper.make_node("Add", ["x", "ghost"], ["y"])], "d", [x], [y])
    with open(os.path.join(out, "dangling.bin"), "wb") as f:
        f.write(helper.make_model(dangling, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())


def _varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, value):
    """One protobuf field: ints as varints, bytes/str as length-delimited."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    if isinstance(value, str):
        value = value.encode()
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _header(name, dtype, shape, data_bytes, codec=None, payload_bytes=None):
    """A TensorHeader; the payload is raw (payload_bytes == data_bytes) unless a codec is named."""
    packed = b"".join(_varint(d) for d in shape)
    header = _field(1, name) + _field(2, dtype) + _field(3, packed) + _field(4, data_bytes)
    if codec is not None:
        header += _field(5, codec)
    return header + _field(6, data_bytes if payload_bytes is None else payload_bytes)


def _frames(*messages):
    return b"".join(len(m).to_bytes(2, "little") + m for m in messages)


def wire_seeds(out):
    """Infer streams as the worker reads them (see fuzz/fuzz_wire.cpp for the framing)."""
    os.makedirs(out, exist_ok=True)
    data = bytes(range(64))
    first = _field(1, "0" * 32) + _field(2, 7) + _field(3, _header("x", 1, [1, 4, 4], 64))
    seeds = {
        "one_message.bin": _frames(first + _field(4, data)),
        "split.bin": _frames(first + _field(4, data[:10]), _field(4, data[10:40]), _field(4, data[40:])),
        "two_tensors.bin": _frames(_field(3, _header("a", 7, [2], 16)) + _field(3, _header("b", 9, [3], 3))
                                   + _field(4, bytes(19))),
        "too_much.bin": _frames(first + _field(4, data + b"extra")),
        "negative_dim.bin": _frames(_field(3, _header("x", 1, [1, -4], 16)) + _field(4, bytes(16))),
        "huge_dims.bin": _frames(_field(3, _header("x", 1, [1 << 40, 1 << 40], 0))),
        # Codec payloads: a valid-looking lz4 frame, and int8 with fewer bytes than its header.
        "lz4.bin": _frames(_field(3, _header("x", 1, [1, 4, 4], 64, "lz4", 12))
                           + _field(4, bytes([0x40, 0, 0, 0, 0xF0, 0x2F]) + bytes(6))),
        "int8_short.bin": _frames(_field(3, _header("x", 1, [1, 4, 4], 64, "int8", 10)) + _field(4, bytes(10))),
        "unknown_codec.bin": _frames(_field(3, _header("x", 1, [1, 4, 4], 64, "gzip", 64)) + _field(4, data)),
        "benchmark_event.bin": _frames(_field(3, _field(1, 0) + _field(4, 3))),
    }
    for name, bytes_ in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(bytes_)


if __name__ == "__main__":
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus")
    pickles(os.path.join(root, "pickle"))
    onnx_seeds(os.path.join(root, "onnx"))
    wire_seeds(os.path.join(root, "wire"))
