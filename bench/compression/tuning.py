#!/usr/bin/env python3
"""ECQ's alpha and beta against fp32 PSGD: reads `mpipipe compression` run JSONs (any folders) and writes a table of
test accuracy per seed, its difference from the dense run of the same seed, bits per coordinate and the paper's
lambda = alpha^2 gamma + (beta - alpha)^2 (gamma = min(d/s^2, sqrt(d)/s)) -> bench/results/ecq-tuning.md.
    tuning.py --baseline build/bench/compression --runs DIR... --command "how the runs were made" [--out FILE]
The baseline folder holds the dense rows (compression-none-seedK.json) and, if present, the bench's ecq rows."""
import argparse, glob, json, math, os, re, statistics
from collections import defaultdict

parser = argparse.ArgumentParser()
parser.add_argument("--baseline", required=True)
parser.add_argument("--runs", nargs="+", required=True)
parser.add_argument("--command", action="append", default=[])
parser.add_argument("--out", default="bench/results/ecq-tuning.md")
args = parser.parse_args()

def load(path):
    with open(path) as f:
        return json.load(f)

def seed_of(path):
    return int(re.search(r"-seed(\d+)\.json$", path).group(1))

dense = {seed_of(p): load(p)["finalTestAccuracy"] * 100 for p in glob.glob(os.path.join(args.baseline, "compression-none-seed*.json"))}
rows = defaultdict(dict)  # spec -> seed -> (accuracy or None if diverged, bits)
for folder in [args.baseline] + args.runs:
    for p in glob.glob(os.path.join(folder, "compression-ecq-*-seed*.json")):
        r = load(p)
        spec = r["options"]["compress"]
        diverged = r.get("divergence") is not None or r.get("finalTestAccuracy") is None
        rows[spec][seed_of(p)] = (None if diverged else r["finalTestAccuracy"] * 100, float(r["options"]["bitsPerCoordinate"]))

def numbers(spec):
    s, d, a, b = (float(x) for x in spec.split(":")[1].split(","))
    gamma = min(d / (s * s), math.sqrt(d) / s)
    return int(s), int(d), a, b, a * a * gamma + (b - a) ** 2

seeds = sorted(dense)
lines = ["# ECQ-SGD: the feedback gain alpha and the decay beta", "",
         "Made by " + "; ".join(f"`{c}`" for c in args.command) + f", written by `bench/compression/tuning.py`.",
         "PSGD on the cnn, Fashion-MNIST, 4 ranks, 3 epochs, global batch 128, lr 0.05, momentum 0.9 (the bench's settings);",
         "each cell: final test accuracy % of that seed, and in brackets its difference from dense fp32 PSGD of the same seed",
         f"(dense: {', '.join(f'seed {k} {dense[k]:.2f}' for k in seeds)}; mean {statistics.mean(dense.values()):.2f}). lambda = alpha^2 gamma + (beta - alpha)^2,",
         "gamma = min(d/s^2, sqrt(d)/s): the paper's analysis needs lambda < 1. Bits per coordinate: mean over the row's seeds.", "",
         "| ecq:s,d,alpha,beta | lambda | " + " | ".join(f"seed {k}" for k in seeds) + " | mean difference (seeds run) | bits per coordinate |",
         "|---|---:|" + "---:|" * len(seeds) + "---:|---:|"]
for spec in sorted(rows, key=lambda x: numbers(x)[0:4]):
    s, d, a, b, lam = numbers(spec)
    cells, diffs = [], []
    for k in seeds:
        if k not in rows[spec]:
            cells.append("")
        elif rows[spec][k][0] is None:
            cells.append("diverged")
        else:
            acc = rows[spec][k][0]
            diffs.append(acc - dense[k])
            cells.append(f"{acc:.2f} ({acc - dense[k]:+.2f})")
    bits = statistics.mean(v[1] for v in rows[spec].values())
    mean = f"{statistics.mean(diffs):+.2f} ({len(diffs)})" if diffs else ""
    lines.append(f"| {spec} | {lam:.3f} | " + " | ".join(cells) + f" | {mean} | {bits:.3f} |")
lines.append("")
with open(args.out, "w") as f:
    f.write("\n".join(lines))
print(f"wrote {args.out}")
