#!/usr/bin/env python3
"""bench/results/layerwise.md from the plans and runs of bench/layerwise/run.sh (issue 18).

Predicted step: the plan file's predictedStepSeconds (`mpipipe plan --output`, the cost model's compute + transfer +
sync). Measured step: rank 0's wall clock over the timed steps, from the run's loss curve (train --curve-every 1):
(wallSeconds at the last step - wallSeconds at step WARMUP) / (steps - WARMUP), so the warm-up steps (first calls
into libtorch, allocations) are left out; it includes what the cost model leaves out (the optimizer step, gathering
the batch, the loop). The totals' stepSeconds / steps (every step, warm-up included) is shown beside it.
"""
import argparse, datetime, json, os

ap = argparse.ArgumentParser()
for flag in ("work", "out", "command", "models", "ranks", "networks", "acc-models", "acc-ranks", "epochs", "warmup", "part"):
    ap.add_argument("--" + flag, required=True)
ap.add_argument("--seeds", default="1")
ap.add_argument("--repeats", type=int, default=1, help="the step part's repeats (plans and runs named *.rN.json)")
ap.add_argument("--note", default="", help="a paragraph after the goals: how the runs were made, what the verdicts rest on")
a = ap.parse_args()
warmup = int(a.warmup)
cores = os.cpu_count() or 1
PLANS = ("searched", "data", "model")
NAMES = {"searched": "searched", "data": "data parallel", "model": "model parallel"}


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_avg(path):
    try:
        with open(path) as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return "?"


def measured_step(run):
    """(mean step excluding warm-up, mean step of all steps) in seconds; None where the run is missing or too short."""
    if not run or run.get("status", "completed") != "completed":
        return None, None
    totals = run.get("totals") or {}
    overall = totals["stepSeconds"] / totals["steps"] if totals.get("steps") else None
    curve = {p["step"]: p["wallSeconds"] for p in run.get("lossCurve") or []}
    last = max(curve, default=0)
    if warmup not in curve or last <= warmup:
        return None, overall
    return (curve[last] - curve[warmup]) / (last - warmup), overall


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def ms(seconds, digits=2):
    return "-" if seconds is None else f"{1000 * seconds:.{digits}f}"


lines = [
    "# Layer-wise parallelism (OptCNN): predicted vs measured step time",
    "",
    f"Generated {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC} by `bench/layerwise/report.py` from",
    f"`{a.command}`; {cores} cores (a row with more ranks than cores is oversubscribed).",
    "",
    "Predicted: the plan file's `predictedStepSeconds` (`mpipipe plan`: compute + transfer + sync of the cost model, layer",
    "times measured on this machine: each shard's step with its guard pass and SGD update, in a chain of the whole model's",
    "shards stepped as the engine steps them, the mean over the chain's steps, with one copy of the chain stepping in a",
    "process of its own per other rank that computes at once, ReLU-like data; transfers priced with the engine's block",
    "copies at a measured copy rate). Measured: rank 0's wall clock over the timed steps from the run's loss",
    f"curve (`--curve-every 1`): (wallSeconds at the last step - wallSeconds at step {warmup}) / (steps - {warmup}), the first",
    f"{warmup} steps being warm-up; it includes the batch gathering, the loss and the loop, which the model leaves",
    "out. `all steps` is the results' `totals.stepSeconds / totals.steps`, warm-up included. `load` is the 1-minute load",
    "average when the run started: timings taken under load are not quiet-machine numbers.",
    "",
    f"Each case was planned and run {a.repeats} time(s) (`REPEATS`), each repeat with layer times measured afresh and the runs",
    "right after the plan: predicted, measured and all steps are medians over the repeats, `measured / predicted` is",
    "the median of each repeat's own ratio, `range` the smallest and largest of those ratios, `load` the highest.",
    "",
]

rows = {}
if a.part != "accuracy":
    lines += ["| model | R | network | plan | predicted ms | measured ms | measured / predicted | range | all steps ms | oversubscribed | load | configurations |",
              "|---|---:|---|---|---:|---:|---:|---|---:|---|---:|---|"]
    for model in a.models.split():
        for ranks in a.ranks.split():
            for net in a.networks.split():
                for which in PLANS:
                    stem = f"{model}-{ranks}-{net}" + ("" if which == "searched" else f"-{which}")
                    name = f"{model}-{ranks}-{net}-{which}"
                    predicted, measured, overall, ratios, loads, layers = [], [], [], [], [], set()
                    for r in range(1, a.repeats + 1):
                        plan = load_json(os.path.join(a.work, "plans", f"{stem}.r{r}.json")) or {}
                        run = load_json(os.path.join(a.work, "runs", f"{name}.r{r}.json"))
                        p = plan.get("predictedStepSeconds")
                        m, o = measured_step(run)
                        predicted.append(p)
                        measured.append(m)
                        overall.append(o)
                        ratios.append(m / p if m and p else None)
                        loads.append(load_avg(os.path.join(a.work, "runs", f"{name}.r{r}.load")))
                        if plan.get("layers"):
                            layers.add(" ".join(plan["layers"]))
                    ratio = median(ratios)
                    known = [x for x in ratios if x is not None]
                    over = int(ranks) > cores
                    rows[(model, ranks, net, which)] = (median(predicted), median(measured), ratio, over)
                    spread = f"{min(known):.2f}-{max(known):.2f}" if len(known) > 1 else "-"
                    load = max((x for x in loads if x != "?"), key=float, default="?")
                    lines.append(f"| {model} | {ranks} | {net} | {NAMES[which]} | {ms(median(predicted))} | "
                                 f"{ms(median(measured)) if known else 'not run'} | {'-' if ratio is None else f'{ratio:.2f}'} | {spread} | "
                                 f"{ms(median(overall))} | {'yes' if over else 'no'} | {load} | {' / '.join(sorted(layers))} |")
    lines.append("")

goals = ["## Goals (issue 18), read from the numbers above", ""]
if a.part != "accuracy":
    quiet = [(k, v) for k, v in rows.items() if not v[3] and v[2] is not None]
    off = [(k, v) for k, v in quiet if abs(v[2] - 1) > 0.2]
    if not quiet:
        goals.append("- Predicted within 20% of measured on every row that is not oversubscribed: **not evaluated** (no such row was measured).")
    else:
        verdict = "**met**" if not off else "**not met**"
        detail = "; ".join(f"{m} R={r} {n} {NAMES[w]} {v[2]:.2f}" for (m, r, n, w), v in off)
        goals.append(f"- Predicted within 20% of measured on every row that is not oversubscribed (each row's median ratio over the repeats): {verdict} "
                     f"({len(quiet) - len(off)} of {len(quiet)} rows within; {'outside: ' + detail if off else 'none outside'}). "
                     f"Oversubscribed rows are listed but not judged.")
    if "cnn-wide" in a.models.split() and "1gbit" in a.networks.split():
        for ranks in a.ranks.split():
            m = {w: rows.get(("cnn-wide", ranks, "1gbit", w), (None, None))[1] for w in PLANS}
            if None in m.values():
                goals.append(f"- cnn-wide, R = {ranks}, 1 Gbit: searched faster than both pure plans: **not evaluated** (a run is missing).")
            else:
                ok = m["searched"] < m["data"] and m["searched"] < m["model"]
                goals.append(f"- cnn-wide, R = {ranks}, 1 Gbit: searched faster than both pure plans (measured): {'**met**' if ok else '**not met**'} "
                             f"(searched {ms(m['searched'])} ms, data parallel {ms(m['data'])} ms, model parallel {ms(m['model'])} ms"
                             f"{', oversubscribed' if int(ranks) > cores else ''}).")
    else:
        goals.append("- cnn-wide on 1 Gbit, searched faster than both pure plans: **not evaluated** (not in this run's MODELS / NETWORKS).")

if a.part != "steps":
    seeds = a.seeds.split()
    lines += [f"## Accuracy: PSGD vs layer-wise (searched shared-memory plan), {a.epochs} epochs, R = {a.acc_ranks}, seeds {', '.join(seeds)}", "",
              "Each seed: the same model, initial parameters, global batch and sample order for both engines (final test "
              "accuracy and final-epoch training loss). The goal compares the means over the seeds; the spread is the "
              "largest minus the smallest over the seeds.", "",
              "| model | seed | PSGD test accuracy % | layer-wise test accuracy % | difference (points) | PSGD train loss | layer-wise train loss | PSGD wall s | layer-wise wall s | loads |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]

    def last_loss(r):
        epochs = (r or {}).get("epochs") or []
        return epochs[-1].get("trainLoss") if epochs else None

    for model in a.acc_models.split():
        per_seed = []
        for seed in seeds:
            stem = os.path.join(a.work, "accuracy", f"{model}-{a.acc_ranks}-")
            psgd, lw = load_json(f"{stem}psgd-s{seed}.json"), load_json(f"{stem}layerwise-s{seed}.json")
            acc = [r.get("finalTestAccuracy") if r else None for r in (psgd, lw)]
            loss = [last_loss(r) for r in (psgd, lw)]
            wall = [f"{r['wallSeconds']:.0f}" if r else "not run" for r in (psgd, lw)]
            diff = 100 * (acc[1] - acc[0]) if None not in acc else None
            if diff is not None:
                per_seed.append((100 * acc[0], 100 * acc[1]))
            pct = ["-" if x is None else f"{100 * x:.2f}" for x in acc]
            lss = ["-" if x is None else f"{x:.4f}" for x in loss]
            lines.append(f"| {model} | {seed} | {pct[0]} | {pct[1]} | {'-' if diff is None else f'{diff:+.2f}'} | {lss[0]} | {lss[1]} | "
                         f"{wall[0]} | {wall[1]} | {load_avg(f'{stem}psgd-s{seed}.load')} / {load_avg(f'{stem}layerwise-s{seed}.load')} |")
        if len(per_seed) < len(seeds):
            goals.append(f"- {model}: the same test accuracy as PSGD after {a.epochs} epochs (within 0.5 points): **not evaluated** "
                         f"({len(seeds) - len(per_seed)} of {len(seeds)} seeds missing or diverged).")
            continue
        mean_psgd = sum(p for p, _ in per_seed) / len(per_seed)
        mean_lw = sum(l for _, l in per_seed) / len(per_seed)
        spread_psgd = max(p for p, _ in per_seed) - min(p for p, _ in per_seed)
        diff = mean_lw - mean_psgd
        lines.append(f"| {model} | mean | {mean_psgd:.2f} | {mean_lw:.2f} | {diff:+.2f} | | | | | |")
        goals.append(f"- {model}: the same test accuracy as PSGD after {a.epochs} epochs (within 0.5 points, means over {len(seeds)} seeds): "
                     f"{'**met**' if abs(diff) <= 0.5 else '**not met**'} ({mean_lw:.2f}% vs {mean_psgd:.2f}%, {diff:+.2f} points; "
                     f"PSGD's own spread over the seeds {spread_psgd:.2f} points).")
    lines.append("")

lines += goals + [""]
if a.note:
    lines += [a.note, ""]
os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
with open(a.out, "w") as f:
    f.write("\n".join(lines))
