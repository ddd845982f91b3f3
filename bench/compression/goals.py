#!/usr/bin/env python3
"""The issue's goals for the compressors, read from `mpipipe compression`'s run JSONs and the network rows' JSONs
(bench/compression/run.sh puts them after the network section of compression.md):
  ECQ >= 32x fewer bytes than fp32 (<= 1 bit per coordinate) with test accuracy within 0.5 points (means over seeds);
  QSGD at the same s worse than ECQ by more than the seed-to-seed spread, or diverging;
  on the emulated network ECQ's epoch faster than fp32 PSGD's.
    goals.py --work DIR --compressors "none ... ecq:4" --net-rate 1gbit --net-compressors "none ecq:4 topk:0.01\""""
import argparse, glob, json, os, re, statistics

ap = argparse.ArgumentParser()
ap.add_argument("--work", required=True)
ap.add_argument("--compressors", required=True)
ap.add_argument("--net-rate", required=True)
ap.add_argument("--net-compressors", required=True)
a = ap.parse_args()
TOLERANCE, RATIO = 0.5, 32


def tag(spec):
    return re.sub(r"[:,]", "-", spec)


def runs(spec):
    out = []
    for path in sorted(glob.glob(os.path.join(a.work, f"compression-{tag(spec)}-seed*.json"))):
        with open(path) as f:
            out.append(json.load(f))
    return out


def summary(spec):
    rs = runs(spec)
    if not rs:
        return None
    accs = [100 * r["finalTestAccuracy"] for r in rs if r.get("finalTestAccuracy") is not None and r.get("divergence") is None]
    return dict(n=len(rs), diverged=len(rs) - len(accs), mean=statistics.fmean(accs) if accs else None,
                spread=(max(accs) - min(accs)) if accs else None, ratio=statistics.fmean(float(r["options"].get("compressionRatio") or 1) for r in rs),
                bits=statistics.fmean(float(r["options"].get("bitsPerCoordinate") or 32) for r in rs), spec=rs[0]["options"].get("compress", spec))


def verdict(ok):
    return "**met**" if ok else "**missed**"


compressors = a.compressors.split()
dense = summary("none")
lines = ["## Goals (issue 15), read from the numbers above", ""]
if dense is None or dense["mean"] is None:
    lines += ["- The dense fp32 rows are not in the work folder: the goals cannot be read.", ""]
    print("\n".join(lines))
    raise SystemExit
ecq = [(s, summary(s)) for s in compressors if s.startswith("ecq:")]
ecq = [(s, r) for s, r in ecq if r and r["mean"] is not None]
for s, r in ecq:
    gap = r["mean"] - dense["mean"]
    lines.append(f"- {s} ({r['spec']}): >= {RATIO}x fewer bytes than fp32 (<= 1 bit per coordinate, scales and headers included): "
                 f"{verdict(r['ratio'] >= RATIO and r['bits'] <= 1)} ({r['ratio']:.1f}x, {r['bits']:.3f} bits); test accuracy within {TOLERANCE} points of fp32 "
                 f"(means over {r['n']} seeds): {verdict(gap >= -TOLERANCE)} ({r['mean']:.2f}% vs {dense['mean']:.2f}%, {gap:+.2f} points).")
within = [(s, r) for s, r in ecq if r["mean"] - dense["mean"] >= -TOLERANCE and r["ratio"] >= RATIO]
if within:
    s, r = max(within, key=lambda x: x[1]["ratio"])
    lines.append(f"- The ECQ with the highest ratio within both goals: {s} ({r['ratio']:.1f}x).")
else:
    lines.append("- No ECQ row meets both goals.")
for s, r in ecq:
    q = summary("qsgd:" + s.split(":")[1].split(",")[0])
    if q is None:
        continue
    if q["mean"] is None:
        lines.append(f"- QSGD at the same s ({q['spec']}) diverges where {s} does not: **met**.")
        continue
    worse, spread = r["mean"] - q["mean"], max(r["spread"], q["spread"])
    lines.append(f"- QSGD at the same s ({q['spec']}) worse than {s} by more than the seed-to-seed spread: {verdict(worse > spread)} "
                 f"({q['mean']:.2f}% vs {r['mean']:.2f}%: {worse:.2f} points; spreads {q['spread']:.2f} and {r['spread']:.2f}).")


def step_seconds(spec):
    path = os.path.join(a.work, f"net-{a.net_rate}-{tag(spec)}.json")
    if not os.path.exists(path):
        return None, None
    with open(path) as f:
        r = json.load(f)
    return r["totals"]["stepSeconds"] / r["totals"]["steps"], r["options"].get("compress", spec)


base, _ = step_seconds("none")
for spec in a.net_compressors.split():
    if not spec.startswith("ecq:") or base is None:
        continue
    step, full = step_seconds(spec)
    if step is not None:
        lines.append(f"- On the emulated {a.net_rate} network, {spec}'s epoch faster than dense fp32 PSGD's: {verdict(step < base)} "
                     f"({full}: {base / step:.2f}x, {step * 1000:.0f} ms a step against {base * 1000:.0f} ms).")
lines.append("")
print("\n".join(lines))
