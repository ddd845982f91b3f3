#!/usr/bin/env bash
# Step time of resnet20 against the cnn, PSGD on 2 ranks (MPICH), generated 3x32x32 data (--dataset synthetic, 10
# classes), batch 64 (32 per rank), 1 libtorch thread per rank: a Markdown table row per model on stdout, from each
# run's results: the totals' step, compute and communication seconds (means over the ranks) divided by the steps,
# the first steps' warm-up included (the same for both models).
# Usage: bench/byo-model/resnet20-vs-cnn.sh [steps, 40]
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-40}
bin=src/MpiPipeline.Cli/bin/Release/net10.0/mpipipe
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | parameters | steps | step time (ms, mean per rank) | compute (ms) | communication (ms) |"
echo "|---|---|---|---|---|---|"
for model in cnn resnet20; do
    HYDRA_IFACE=lo mpiexec.mpich -f hostfiles/localhost.mpich -n 2 "$bin" train --model "$model" --dataset synthetic \
        --train-samples 8192 --test-samples 256 --batch 64 --max-steps "$steps" --threads 1 --algo psgd --lr 0.05 \
        --output "$out/$model.json" --save-parameters "$out/$model.bin" > "$out/$model.log"
    python3 - "$out/$model.json" "$out/$model.bin" "$model" <<'PY'
import json, os, sys
run = json.load(open(sys.argv[1]))
t = run["totals"]
steps = t["steps"]
params = os.path.getsize(sys.argv[2]) // 4
ms = lambda s: f"{1000 * s / steps:.1f}"
print(f"| {sys.argv[3]} | {params:,} | {steps} | {ms(t['stepSeconds'])} | {ms(t['computeSeconds'])} | {ms(t['communicationSeconds'])} |")
PY
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
