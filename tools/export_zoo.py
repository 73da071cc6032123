#!/usr/bin/env python3
"""Exports a torchvision architecture with random weights to ONNX (opset 17, batch 1).

Build-time helper for Scission's model zoo; Scission itself never needs Python at run time.
Latency does not depend on weight values, so random weights are enough for benchmarking.

    python3 tools/export_zoo.py --name resnet50 --size 224 --out ~/.cache/scission/models/resnet50.onnx

Exit codes: 0 done, 2 bad arguments, 3 a package is missing (the message names it).
"""
import argparse
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="torchvision.models constructor name")
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--out", required=True, help="output .onnx path")
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()

    try:
        import torch
        import torchvision
    except ImportError as exc:  # the caller turns this into an actionable error
        print(f"missing package python3-torchvision (apt-get install python3-torchvision): {exc}",
              file=sys.stderr)
        return 3

    constructor = getattr(torchvision.models, args.name, None)
    if constructor is None or not callable(constructor):
        print(f"torchvision {torchvision.__version__} has no model '{args.name}'", file=sys.stderr)
        return 2

    torch.manual_seed(0)
    kwargs = {"weights": None}
    if args.name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = True  # silences the "default init will change" warning
    model = constructor(**kwargs).eval()
    example = torch.rand(1, 3, args.size, args.size)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = f"{args.out}.tmp.{os.getpid()}"
    try:
        # Gradients stay enabled on purpose: under no_grad, nn.MultiheadAttention (vit_b_16) takes
        # a fused fast path that has no ONNX export.
        torch.onnx.export(model, example, tmp, opset_version=args.opset,
                          input_names=["input"], output_names=["output"],
                          do_constant_folding=True)
        os.replace(tmp, args.out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
