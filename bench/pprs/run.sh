#!/usr/bin/env bash
# `make bench-pprs` (part of `make bench`): the poster's Figure 3 - adversarial example creation on a classifier
# trained by this project, cut into Delta = 20 and Delta = 200 chain nodes; GD, AGD and PPRS (K = 1, 4, 16, 64)
# compared as f vs time units at the same step size eta, for a few eta. Writes, per (Delta, eta), a CSV of every
# iteration and an SVG plot to $OUT (bench/results/pprs/), and $OUT/summary.md (every run's summary table);
# bench/results/pprs.md is the hand-written reading of them. PROBLEM_ARGS sets the objective (default: 8 images,
# kappa = 2, lambda = 0.05); bench/results/pprs/kappa5-lambda0.002/ holds the runs with kappa = 5, lambda = 0.002.
#
# The classifiers are trained once (2 epochs of Adam, a minute on 2 cores) and cached in build/bench/pprs/:
#   deep-mlp:20:32  - 20 linear layers of width 32 (ReLU): one per node at Delta = 20;
#   res-mlp:200:16  - 200 parametric layers of width 16: one per node at Delta = 200. A plain deep-mlp:200 does not
#                     train from libtorch's default initialization (it stays at 10% accuracy: the input signal dies
#                     out through 200 ReLU layers), so its 198 middle layers are residual blocks x + tanh(W relu(x) + b).
# The runs use --batched (one process; each node maps the K points in one torch call): the clock is the paper's,
# 2 (K + Delta - 1) time units per evaluation, the same as the pipelined runs over MPI ranks, which the rank tests
# check give the same numbers.
set -euo pipefail
: "${MPIPIPE:?path of mpipipe}"
OUT=${OUT:-bench/results/pprs}
WORK=${WORK:-build/bench/pprs}
STEPS=${STEPS:-"0.2 1 5"}
SAMPLES=${SAMPLES:-1,4,16,64}
SEEDS=${SEEDS:-"1 2"}
GAMMA=${GAMMA:-0.05}
PROBLEM_ARGS=${PROBLEM_ARGS:-"--images 8 --kappa 2 --lambda 0.05"}
COMMAND=${BENCH_COMMAND:-"make bench-pprs"}
# Delta, model, time budget (100 GD iterations: 100 x 2 Delta time units)
CONFIGS=${CONFIGS:-"20:deep-mlp:20:32:4000 200:res-mlp:200:16:40000"}
RUNS=$WORK/runs-$(basename "$OUT")
mkdir -p "$OUT" "$WORK" "$RUNS"
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

train() { # model -> parameters file
    local model=$1 file=$WORK/${1//:/-}.bin
    if [ ! -f "$file" ]; then
        echo "pprs bench: training $model (cached in $file)" >&2
        "$MPIPIPE" train --algo single --model "$model" --optimizer adam --lr 0.001 --batch 64 --epochs 2 --threads 1 \
            --test-samples 2000 --save-parameters "$file" --output "$file.json" > "$file.log"
    fi
    echo "$file"
}

. "$(dirname "$0")/../atomic.sh"
atomic_temp summary "$OUT/summary.md"
{
    echo "# Figure 3 reproduction: every run"
    echo
    echo "Made by \`$COMMAND\` on $(date -u +%Y-%m-%d), $(nproc) cores, load average before: $load_before."
    echo "Each table: one \`mpipipe pprs --problem adversarial --batched\` call (arguments below), every method from delta = 0."
    echo "t to 50% / 90%: first time units at which f is 50% / 90% of the way from f(0) to the best f of any run in that"
    echo "table; total increase: the sum of the increases of f between iterations (0 for a monotone run)."
    echo
} > "$summary"

for config in $CONFIGS; do
    depth=${config%%:*}; rest=${config#*:}; budget=${rest##*:}; model=${rest%:*}
    parameters=$(train "$model")
    accuracy=$(grep -o 'final test accuracy [0-9.]*%' "$parameters.log" || true)
    for step in $STEPS; do
        for seed in $SEEDS; do
            name=adversarial-delta$depth-eta$step
            methods=all; samples=$SAMPLES
            if [ "$seed" != "${SEEDS%% *}" ]; then name=$name-seed$seed; methods=pprs; fi
            echo "pprs bench: Delta = $depth ($model), eta = $step, seed $seed" >&2
            args="--problem adversarial --model $model --parameters $parameters --delta $depth --budget $budget \
--samples $samples --method $methods --step $step --gamma $GAMMA $PROBLEM_ARGS --seed $seed --batched"
            # shellcheck disable=SC2086
            "$MPIPIPE" pprs $args --csv "$OUT/$name.csv" --plot "$OUT/$name.svg" --summary "$RUNS/$name.md" \
                --output "$RUNS/$name.json" > "$RUNS/$name.log"
            {
                echo "## Delta = $depth, eta = $step, seed $seed"
                echo
                echo "\`mpipipe pprs ${args//  / }\` ($model: ${accuracy:-see $parameters.log})"
                echo
                cat "$RUNS/$name.md"
                echo
            } >> "$summary"
        done
    done
done

echo "Total time: $(( $(date +%s) - started )) s." >> "$summary"
atomic_commit "$summary" "$OUT/summary.md"
echo "wrote $OUT/summary.md, $(ls "$OUT"/*.csv | wc -l) CSV files and their SVG plots"
