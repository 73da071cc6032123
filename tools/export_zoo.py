#!/usr/bin/env python3
"""Exports a zoo model with random weights to ONNX (opset 17, batch 1).

Build-time helper for Scission's model zoo; Scission itself never needs Python at run time.
Latency does not depend on weight values, so random weights are enough for benchmarking.
Two families: torchvision architectures (float32 image [1, 3, size, size]) and `text_encoder`
(token embedding + sinusoidal positions + torch.nn.TransformerEncoder: int64 token ids
`input_ids` [1, seq] with a dynamic sequence length).

    python3 tools/export_zoo.py --name resnet50 --size 224 --out ~/.cache/scission/models/resnet50.onnx
    python3 tools/export_zoo.py --name text_encoder --size 128 --out ~/.cache/scission/models/text_encoder.onnx

Exit codes: 0 done, 2 bad arguments, 3 a package is missing (the message names it).
"""
import argparse
import math
import os
import sys


TEXT_ENCODER = "text_encoder"


def text_encoder(torch, vocab=8000, d_model=256, heads=4, feed_forward=1024, layers=4):
    """A BERT-sized-down encoder: token embedding, sinusoidal positions computed in the graph (so
    any sequence length works), 4 post-norm TransformerEncoder layers, a final LayerNorm."""

    class TextEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(vocab, d_model)
            layer = torch.nn.TransformerEncoderLayer(d_model, heads, feed_forward, dropout=0.0,
                                                     batch_first=True)
            # Nested tensors only apply with a padding mask; off, so eval and export agree.
            self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = torch.nn.LayerNorm(d_model)
            half = torch.arange(0, d_model // 2, dtype=torch.float32)
            self.register_buffer("inv_freq", torch.exp(half * (-2.0 * math.log(10000.0) / d_model)))

        def forward(self, input_ids):
            positions = torch.arange(input_ids.shape[1], dtype=torch.float32).unsqueeze(1)
            angles = positions * self.inv_freq
            pe = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
            return self.norm(self.encoder(self.embed(input_ids) + pe))

    return TextEncoder()


def build(name, size, torch, torchvision):
    """Returns (model, example input, input name, dynamic_axes) or None for an unknown name."""
    if name == TEXT_ENCODER:
        example = torch.randint(3, 8000, (1, size), dtype=torch.int64)
        dynamic = {"input_ids": {1: "seq"}, "output": {1: "seq"}}
        return text_encoder(torch).eval(), example, "input_ids", dynamic
    constructor = getattr(torchvision.models, name, None)
    if constructor is None or not callable(constructor):
        return None
    kwargs = {"weights": None}
    if name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = True  # silences the "default init will change" warning
    return constructor(**kwargs).eval(), torch.rand(1, 3, size, size), "input", None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True,
                        help=f"torchvision.models constructor name, or {TEXT_ENCODER}")
    parser.add_argument("--size", type=int, default=224,
                        help="input height and width (text_encoder: the example sequence length; "
                             "the exported length is dynamic)")
    parser.add_argument("--out", required=True, help="output .onnx path")
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()

    try:
        import torch
        torchvision = None
        if args.name != TEXT_ENCODER:
            import torchvision
    except ImportError as exc:  # the caller turns this into an actionable error
        print(f"missing package python3-torchvision (apt-get install python3-torchvision): {exc}",
              file=sys.stderr)
        return 3

    torch.manual_seed(0)
    built = build(args.name, args.size, torch, torchvision)
    if built is None:
        print(f"torchvision {torchvision.__version__} has no model '{args.name}'", file=sys.stderr)
        return 2
    model, example, input_name, dynamic_axes = built
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = f"{args.out}.tmp.{os.getpid()}"
    try:
        # Gradients stay enabled on purpose: under no_grad, nn.MultiheadAttention (vit_b_16, the
        # text encoder) takes a fused fast path that has no ONNX export.
        torch.onnx.export(model, example, tmp, opset_version=args.opset,
                          input_names=[input_name], output_names=["output"],
                          dynamic_axes=dynamic_axes, do_constant_folding=True)
        os.replace(tmp, args.out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
