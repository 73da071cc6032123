#!/usr/bin/python3
"""Prints a Markdown table of how Scission cuts and times the real-model corpus and the zoo.

Build/test-time helper (not needed at run time). For every case of the corpus manifests
(scripts/fetch_test_models.sh, then tools/make_test_inputs.py) and every zoo model named, it runs
`scission inspect --json` and `scission benchmark --json` with the case's --shape/--input flags,
into a throw-away database, and prints one row: opset, shapes, cut points by number of live
tensors, blocks, the largest block's share of the sum of block medians (and whether that block is
a single node), sum of block medians over the whole-model median and over the median of blocks
0..n-1 as one segment (what a one-machine plan runs), the chain check and the benchmark's wall
time.

    tools/corpus_table.py [--scission build/scission] [--dir DIR] [--repeats 10] [--threads 1]
                          [--zoo resnet50,mobilenet_v2,...]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

DEFAULT_ZOO = "resnet50,mobilenet_v2,densenet121,inception_v3,vgg19,vit_b_16"


def corpus_dir(arg):
    if arg:
        return arg
    home = os.environ.get("SCISSION_HOME") or os.path.join(os.path.expanduser("~"), ".cache",
                                                           "scission")
    return os.path.join(home, "test-models")


def cases(directory, zoo):
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry, "manifest.json")
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        if "model" not in manifest:  # zoo_images: inputs for the zoo models, no model of its own
            continue
        model = manifest["model"]
        if model != "text_encoder":
            model = os.path.join(directory, entry, model)
        for case in manifest["cases"]:
            flags = []
            for s in case["shape_flags"]:
                flags += ["--shape", s]
            for i in case["input_flags"]:
                name, rel = i.split("=", 1)
                flags += ["--input", name + "=" + os.path.join(directory, entry, rel)]
            yield f"{entry} ({case['name']})", model, flags
    for name in zoo:
        yield name, name, []


def run(scission, args, db):
    env = dict(os.environ, SCISSION_DB=db)
    r = subprocess.run([scission] + args, capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])}: exit {r.returncode}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scission", default="build/scission")
    parser.add_argument("--dir", default="")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--zoo", default=DEFAULT_ZOO)
    o = parser.parse_args()
    zoo = [z for z in o.zoo.split(",") if z]
    print("| model | opset | shapes | cut points by live tensors (1/2/3/4) | blocks | largest block "
          "(share of Σ blocks) | Σ blocks / whole | Σ blocks / whole segment | whole ms | "
          "whole segment ms | chain check | benchmark wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "table.db")
        for label, model, flags in cases(corpus_dir(o.dir), zoo):
            try:
                shape = run(o.scission, ["inspect", model, "--json"] + flags, db)
                bench = run(o.scission, ["benchmark", model, "--resource", "table", "--tier",
                                         "device", "--repeats", str(o.repeats), "--warmup", "3",
                                         "--threads", str(o.threads), "--json"] + flags, db)
            except RuntimeError as e:
                print(f"| {label} | error: {e} |")
                failed += 1
                continue
            cuts = shape["cut_points_by_tensors"]
            medians = [b["median_ms"] for b in bench["blocks"]]
            total = sum(medians)
            largest = max(range(len(medians)), key=lambda i: medians[i])
            nodes = shape["blocks"][largest]["nodes"]
            single = ", one node" if nodes == 1 else ""
            print(f"| {label} | {shape['opset']} | {bench['input_shapes']} | "
                  f"{'/'.join(str(cuts.get(k, 0)) for k in ('1', '2', '3', '4'))} | "
                  f"{len(medians)} | {100 * medians[largest] / total:.0f}% (block {largest}{single}) | "
                  f"{bench['sum_blocks_over_whole']:.2f} | "
                  f"{bench['sum_blocks_over_whole_segment']:.2f} | {bench['whole']['median_ms']:.2f} | "
                  f"{bench['whole_segment']['median_ms']:.2f} | "
                  f"{bench['chain_check']['status']} | {bench['wall_ms'] / 1000:.1f} |")
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
