#!/usr/bin/env bash
# `make bench-pprs-figure3`: the poster's Figure 3 with one network family at both depths (issue 19 item 3).
# res-mlp:20:16 cut into Delta = 20 nodes and res-mlp:200:16 into Delta = 200 (the same width and block; the deep
# one is the model of `make bench-pprs`). Per depth, one panel, every run from delta = 0 within the same budget
# (100 GD iterations: 100 x 2 Delta time units):
#   shared eta:  GD, AGD and PPRS (K = 1, 4, 16, 64, gamma = 0.05) at the same eta, for eta in $STEPS;
#   theory eta:  PPRS with its own step eta = gamma/L (1/beta of the L/gamma-smooth f^gamma), K = 16 and 64, for gamma
#                in the grid $GAMMAS; L is estimated by `mpipipe pprs` (the largest ||grad f|| at delta = 0 and at 64
#                points gamma X_j) and printed in each run's description.
# Then t50/t90 for every curve of a panel against ONE level per panel: f(0) - 50% / 90% of (f(0) - the best f of any
# curve in that panel). Writes $OUT/panels.md (the tables), $OUT/*.csv and *.svg; bench/results/pprs.md reads them.
set -euo pipefail
: "${MPIPIPE:?path of mpipipe}"
OUT=${OUT:-bench/results/pprs/figure3}
WORK=${WORK:-build/bench/pprs}
STEPS=${STEPS:-"0.2 1"}
GAMMAS=${GAMMAS:-"0.01 0.05 0.2"}
SAMPLES=${SAMPLES:-1,4,16,64}
THEORY_SAMPLES=${THEORY_SAMPLES:-16,64}
PROBLEM_ARGS=${PROBLEM_ARGS:-"--images 8 --kappa 2 --lambda 0.05"}
CONFIGS=${CONFIGS:-"20:res-mlp:20:16:4000 200:res-mlp:200:16:40000"}
mkdir -p "$OUT" "$WORK/figure3"
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

train() { # model -> parameters file (cached; the same recipe as bench/pprs/run.sh)
    local model=$1 file=$WORK/${1//:/-}.bin
    if [ ! -f "$file" ]; then
        echo "pprs figure 3: training $model (cached in $file)" >&2
        "$MPIPIPE" train --algo single --model "$model" --optimizer adam --lr 0.001 --batch 64 --epochs 2 --threads 1 \
            --test-samples 2000 --save-parameters "$file" --output "$file.json" > "$file.log"
    fi
    echo "$file"
}

# t50/t90 of every curve of a panel against the panel's common levels.
panel_table() { bash "$(dirname "$0")/panel-table.sh" "$@"; }

. "$(dirname "$0")/../atomic.sh"
atomic_temp panels "$OUT/panels.md"
{
    echo "# Figure 3, one network family at both depths: every panel"
    echo
    echo "Made by \`make bench-pprs-figure3\` on $(date -u +%Y-%m-%d), $(nproc) cores, load average before: $load_before."
    echo "Time units are the paper's clock (deterministic); wall times are not used."
    echo
} > "$panels"

for config in $CONFIGS; do
    depth=${config%%:*}; rest=${config#*:}; budget=${rest##*:}; model=${rest%:*}
    parameters=$(train "$model")
    accuracy=$(grep -o 'final test accuracy [0-9.]*%' "$parameters.log" || true)
    common="--problem adversarial --model $model --parameters $parameters --delta $depth --budget $budget $PROBLEM_ARGS --seed 1 --batched"
    files=()
    {
        echo "## Delta = $depth ($model, ${accuracy:-see $parameters.log})"
        echo
    } >> "$panels"
    for step in $STEPS; do
        name=delta$depth-shared-eta$step
        echo "pprs figure 3: $name" >&2
        # shellcheck disable=SC2086
        "$MPIPIPE" pprs $common --method all --samples "$SAMPLES" --step "$step" --gamma 0.05 \
            --csv "$OUT/$name.csv" --plot "$OUT/$name.svg" > "$WORK/figure3/$name.log"
        echo "- \`mpipipe pprs $common --method all --samples $SAMPLES --step $step --gamma 0.05\`" >> "$panels"
        files+=("$OUT/$name.csv")
    done
    for gamma in $GAMMAS; do
        name=delta$depth-theory-gamma$gamma
        echo "pprs figure 3: $name" >&2
        # shellcheck disable=SC2086
        "$MPIPIPE" pprs $common --method pprs --samples "$THEORY_SAMPLES" --gamma "$gamma" --theory-step \
            --csv "$OUT/$name.csv" --plot "$OUT/$name.svg" > "$WORK/figure3/$name.log"
        echo "- \`mpipipe pprs $common --method pprs --samples $THEORY_SAMPLES --gamma $gamma --theory-step\`" >> "$panels"
        files+=("$OUT/$name.csv")
    done
    {
        echo
        grep -m1 -o 'L estimated as [0-9.eE+-]*' "$WORK/figure3/delta$depth-theory-gamma${GAMMAS%% *}.log" | sed 's/^/f: /' || true
        echo
        panel_table "${files[@]}"
        echo
    } >> "$panels"
done

echo "Total time: $(( $(date +%s) - started )) s; load average after: $(cut -d' ' -f1-3 /proc/loadavg)." >> "$panels"
atomic_commit "$panels" "$OUT/panels.md"
echo "wrote $OUT/panels.md, $(ls "$OUT"/*.csv | wc -l) CSV files and their SVG plots"
