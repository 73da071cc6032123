#!/usr/bin/python3
"""Prints Markdown tables of what each codec does to the tensors at a model's block boundaries.

Build/test-time helper (not needed at run time), the evidence of issue 10 item 5. For the trained
image models of the corpus (scripts/fetch_test_models.sh, then tools/make_test_inputs.py) and the
zoo classifiers named, it runs

    scission benchmark MODEL --json --codecs all --input NAME=<first photo>
                             --fidelity-input NAME=<the model's fidelity/ directory>

into a throw-away database: the first photograph is the timed input, every photograph of the
directory (the first again among them) is a fidelity set. Per model it prints

  - a table over the boundaries that matter: the input (boundary 0), every boundary whose raw bytes
    are below the input's (at most --rows of them, chosen evenly) and the final output: raw bytes,
    each codec's ratio (raw / encoded bytes), the lossy codecs' relative L2 and max abs error of
    the model's outputs and, for outputs shaped [rows, classes], their top-1 agreement;
  - a summary per codec over all boundaries: total ratio, encode and decode throughput (raw MB over
    the summed median ms; MB = 10^6 bytes, on this machine), the median and worst relative L2 and
    the worst max abs error.

The corpus models carry their trained weights; the zoo models are exported with random weights,
so their activations (and the codecs' ratios and fidelity on them) say little about a trained
network. The output says which is which.

    tools/codec_table.py [--scission build/scission] [--dir DIR] [--repeats 3] [--threads 1]
                         [--codec-repeats 3] [--rows 12] [--corpus ppocrv4_det,blazeface_back]
                         [--zoo resnet18,mobilenet_v2] [--json-dir DIR]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from corpus_table import corpus_dir  # where scripts/fetch_test_models.sh keeps the corpus

DEFAULT_CORPUS = "ppocrv4_det,blazeface_back"
DEFAULT_ZOO = "resnet18,mobilenet_v2"
ZOO_IMAGES = "zoo_images"  # tools/make_test_inputs.py's photographs for the zoo classifiers
ZOO_INPUT = "input"  # the input name tools/export_zoo.py gives every image model
LOSSY = ("fp16", "int8")  # their "+zstd" forms decode to the same values


def read_manifest(directory, entry):
    path = os.path.join(directory, entry, "manifest.json")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except OSError as e:
        raise RuntimeError(f"{path}: {e.strerror}: run scripts/fetch_test_models.sh and "
                           "tools/make_test_inputs.py") from e
    if "fidelity" not in manifest:
        raise RuntimeError(f"{path} lists no fidelity set: run tools/make_test_inputs.py")
    return manifest


def benchmark_flags(directory, entry, fidelity, shapes):
    """--shape, --input (the first photograph) and --fidelity-input (all of them)."""
    base = os.path.join(directory, entry)
    flags = []
    for s in shapes:
        flags += ["--shape", s]
    name = fidelity["input"]
    flags += ["--input", f"{name}={os.path.join(base, fidelity['sets'][0]['file'])}"]
    flags += ["--fidelity-input", f"{name}={os.path.join(base, 'fidelity')}"]
    return flags


def models(directory, corpus, zoo):
    """(label, weights, model argument, flags, number of photographs) per model."""
    for entry in corpus:
        manifest = read_manifest(directory, entry)
        model = os.path.join(directory, entry, manifest["model"])
        shapes = manifest["cases"][0]["shape_flags"]
        fidelity = manifest["fidelity"]
        yield (entry, "trained", model, benchmark_flags(directory, entry, fidelity, shapes),
               len(fidelity["sets"]))
    if zoo:
        manifest = read_manifest(directory, ZOO_IMAGES)
        fidelity = manifest["fidelity"]
        if fidelity["input"] != ZOO_INPUT:
            raise RuntimeError(f"{ZOO_IMAGES}: fidelity input '{fidelity['input']}', the zoo "
                               f"models take '{ZOO_INPUT}'")
        for name in zoo:
            yield (name, "random", name, benchmark_flags(directory, ZOO_IMAGES, fidelity, []),
                   len(fidelity["sets"]))


def run(scission, args, db):
    env = dict(os.environ, SCISSION_DB=db)
    r = subprocess.run([scission] + args, capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])}: exit {r.returncode}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def by_boundary(codecs):
    """{boundary: {codec: measurement}}, boundaries in order."""
    table = {}
    for m in codecs:
        table.setdefault(m["boundary"], {})[m["codec"]] = m
    return dict(sorted(table.items()))


def chosen_boundaries(table, rows):
    """Boundary 0, at most `rows` of those carrying fewer bytes than the input (evenly spread),
    and the last."""
    boundaries = list(table)
    first, last = boundaries[0], boundaries[-1]
    input_bytes = raw_bytes(table[first])
    smaller = [b for b in boundaries[1:-1] if raw_bytes(table[b]) < input_bytes]
    if len(smaller) > rows:
        smaller = [smaller[round(i * (len(smaller) - 1) / (rows - 1))] for i in range(rows)]
    return [first] + smaller + [last]


def raw_bytes(measurements):
    return next(iter(measurements.values()))["raw_bytes"]


def ratio(m):
    return m["raw_bytes"] / m["bytes"] if m["bytes"] else float("inf")


def fmt_ratio(r):
    return f"**{r:.4f}**" if r < 1 else f"{r:.2f}"  # bold: the codec expands the data


def fmt_error(e):
    return "0" if e == 0 else f"{e:.1e}"


def fmt_abs(e):
    return "0" if e == 0 else f"{e:.2g}"


def fmt_top1(m):
    return "" if m is None or m["top1_agreement"] < 0 else f"{100 * m['top1_agreement']:.0f}%"


def boundary_table(table, codecs, rows):
    has_top1 = any(m["top1_agreement"] >= 0 for ms in table.values() for m in ms.values())
    lossy = [c for c in LOSSY if c in codecs]
    head = ["boundary", "raw bytes"] + [f"{c} ratio" for c in codecs]
    head += [f"{c} rel L2" for c in lossy] + [f"{c} max abs" for c in lossy]
    if has_top1:
        head += [f"{c} top-1" for c in lossy]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    last = list(table)[-1]
    for b in chosen_boundaries(table, rows):
        ms = table[b]
        label = f"{b} (input)" if b == 0 else f"{b} (output)" if b == last else str(b)
        cells = [label, f"{raw_bytes(ms):,}"]
        cells += [fmt_ratio(ratio(ms[c])) if c in ms else "–" for c in codecs]
        cells += [fmt_error(ms[c]["rel_l2_error"]) if c in ms else "–" for c in lossy]
        cells += [fmt_abs(ms[c]["max_abs_error"]) if c in ms else "–" for c in lossy]
        if has_top1:
            cells += [fmt_top1(ms.get(c)) for c in lossy]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def mb_per_s(raw, ms):
    return f"{raw / 1e6 / (ms / 1e3):,.0f}" if ms > 0 else "–"


def summary_table(table, codecs):
    lines = ["| codec | total ratio | encode MB/s | decode MB/s | median rel L2 | worst rel L2 | "
             "worst max abs | worst top-1 |", "|---|---|---|---|---|---|---|---|"]
    for c in codecs:
        ms = [table[b][c] for b in table if c in table[b]]
        raw = sum(m["raw_bytes"] for m in ms)
        encoded = sum(m["bytes"] for m in ms)
        errors = [m["rel_l2_error"] for m in ms]
        top1 = [m["top1_agreement"] for m in ms if m["top1_agreement"] >= 0]
        lines.append(f"| {c} | {fmt_ratio(raw / encoded)} | "
                     f"{mb_per_s(raw, sum(m['encode_ms'] for m in ms))} | "
                     f"{mb_per_s(raw, sum(m['decode_ms'] for m in ms))} | "
                     f"{fmt_error(statistics.median(errors))} | {fmt_error(max(errors))} | "
                     f"{fmt_abs(max(m['max_abs_error'] for m in ms))} | "
                     f"{f'{100 * min(top1):.0f}%' if top1 else ''} |")
    return lines


def notes(table, codecs):
    """What a reader should not miss: expansion, a lossy stage whose lossless form disagrees, fp16
    less faithful than int8 (underflow), an output error that is not finite (fp16 overflow)."""
    out = []
    for c in codecs:
        grew = [b for b in table
                if c in table[b] and table[b][c]["bytes"] > table[b][c]["raw_bytes"]]
        if grew:
            worst = max(grew, key=lambda b: table[b][c]["bytes"] / table[b][c]["raw_bytes"])
            m = table[worst][c]
            out.append(f"{c} expands the data at {len(grew)} of {len(table)} boundaries (worst: "
                       f"boundary {worst}, {m['raw_bytes']:,} -> {m['bytes']:,} bytes)")
    for c in LOSSY:
        z = c + "+zstd"
        differ = [b for b in table if c in table[b] and z in table[b] and
                  table[b][c]["rel_l2_error"] != table[b][z]["rel_l2_error"]]
        if differ:
            out.append(f"{z}'s fidelity differs from {c}'s at boundaries {differ}")
    worse = [b for b in table if "fp16" in table[b] and "int8" in table[b] and
             table[b]["fp16"]["rel_l2_error"] > table[b]["int8"]["rel_l2_error"]]
    if worse:
        out.append(f"fp16 is less faithful than int8 at boundaries {worse}: values below fp16's "
                   "normal range (6.1e-5) lose precision and below 6e-8 become 0; int8 scales "
                   "to the tensor's range")
    for c in codecs:
        huge = [b for b in table if c in table[b] and table[b][c]["rel_l2_error"] > 1e300]
        if huge:
            out.append(f"{c}: output error not finite (overflow or NaN) at boundaries {huge}")
    return out


def print_model(label, weights, doc, photos, command, wall_s, rows):
    table = by_boundary(doc["codecs"])
    codecs = []
    for m in doc["codecs"]:
        if m["codec"] not in codecs:
            codecs.append(m["codec"])
    fidelity = {m["fidelity_inputs"] for m in doc["codecs"] if m["fidelity_inputs"] > 0}
    what = ("trained weights (corpus)" if weights == "trained" else
            "RANDOM weights (zoo): activations say little about a trained network")
    print(f"\n### {label}: {what}\n")
    print(f"{len(table)} boundaries, input {doc['input_shapes']}; fidelity over "
          f"{'/'.join(str(n) for n in sorted(fidelity))} input sets (the timed photograph and "
          f"{photos} photographs); benchmark wall {wall_s:.0f} s.\n")
    print(f"    {command}\n")
    print("\n".join(boundary_table(table, codecs, rows)))
    print()
    print("\n".join(summary_table(table, codecs)))
    for n in notes(table, codecs):
        print(f"\n- {n}")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scission", default="build/scission")
    parser.add_argument("--dir", default="")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--codec-repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=12,
                        help="most boundaries below the input's size shown per model")
    parser.add_argument("--corpus", default=DEFAULT_CORPUS)
    parser.add_argument("--zoo", default=DEFAULT_ZOO)
    parser.add_argument("--json-dir", default="",
                        help="also keep each benchmark's JSON document there as MODEL.json")
    o = parser.parse_args()
    if o.rows < 2:
        parser.error("--rows must be at least 2")
    corpus = [c for c in o.corpus.split(",") if c]
    zoo = [z for z in o.zoo.split(",") if z]
    print("## Codecs at the block boundaries: ratio, throughput, fidelity\n")
    print("Ratio = raw bytes / encoded bytes (**bold** below 1: the codec expands the data). "
          "rel L2 = relative L2 error of the model's outputs when the codec is applied at that "
          "boundary, pooled over all input sets (per output sum of squared errors over sum of "
          "squares, then the worst output); top-1 = agreement of the argmax for outputs shaped "
          "[rows, classes]; max abs = worst absolute error of an output element over all inputs. "
          "fp16+zstd and int8+zstd decode to the same values as fp16 and int8 "
          f"(checked below). Timings: --threads {o.threads}, --codec-repeats {o.codec_repeats}, "
          "this machine (2 shared cores).")
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "codecs.db")
        for label, weights, model, flags, photos in models(corpus_dir(o.dir), corpus, zoo):
            args = ["benchmark", model, "--resource", "table", "--tier", "device", "--repeats",
                    str(o.repeats), "--warmup", "1", "--threads", str(o.threads), "--codecs",
                    "all", "--codec-repeats", str(o.codec_repeats), "--json"] + flags
            start = time.monotonic()
            try:
                doc = run(o.scission, args, db)
            except RuntimeError as e:
                print(f"\n### {label}\n\nerror: {e}")
                failed += 1
                continue
            if o.json_dir:
                os.makedirs(o.json_dir, exist_ok=True)
                with open(os.path.join(o.json_dir, f"{label}.json"), "w", encoding="utf-8") as f:
                    json.dump(doc, f, indent=1)
            print_model(label, weights, doc, photos, " ".join(["scission"] + args),
                        time.monotonic() - start, o.rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
