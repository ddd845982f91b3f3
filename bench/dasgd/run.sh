#!/usr/bin/env bash
# `make bench-dasgd`: DASGD (Zhou et al. 2018) on a convex problem -- multinomial logistic regression (`--model linear`)
# on a Fashion-MNIST subset -- with injected delays growing as d_n ~ C n^P for P = 0, 0.5, 1 and 1.5 (above the limit),
# the paper's step size (the default of --step-schedule for that P) against a constant one, SEEDS seeds each; then,
# without injected delay and one worker 4x slower, DASGD against PSGD in wall time (mlp). Writes the runs' JSON and
# delay histograms to $WORK and bench/results/dasgd.md + SVG plots through bench/dasgd/report.py.
set -euo pipefail
: "${MPIPIPE:?path of mpipipe}" "${OUT:=bench/results/dasgd.md}" "${WORK:=build/bench/dasgd}"
SEEDS=${SEEDS:-"1 2 3"}
GROWTHS=${GROWTHS:-"0 0.5 1 1.5"}
# paper: --step-schedule's default for P with alpha_0 = LR; const: alpha_n = LR; const@X: alpha_n = X.
STEPS=${STEPS:-"paper const const@0.05"}
C=${C:-0.5}
UPDATES=${UPDATES:-1000}
LR=${LR:-0.5}
CONVEX=${CONVEX:-"--model linear --train-samples 12000 --test-samples 2000 --batch 32 --threads 1 --curve-every 25"}
SLOW=${SLOW:-"--model mlp --train-samples 12000 --test-samples 2000 --epochs 3 --threads 1 --lr 0.1 --momentum 0 --curve-every 10"}
COMMAND=${BENCH_COMMAND:-"make bench-dasgd"}
mkdir -p "$WORK" "$(dirname "$OUT")"
run() { HYDRA_IFACE=lo mpiexec.mpich -n "$1" "$MPIPIPE" train "${@:2}"; }
PART=${PART:-all}   # convex | slow | report | all; a run whose results exist is not repeated (delete $WORK to redo)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$PART" = convex ] || [ "$PART" = all ]; then
    # Seeds outermost: an interrupted bench still has every (P, step) for the first seeds.
    for seed in $SEEDS; do
        for p in $GROWTHS; do
            for step in $STEPS; do
                name="convex-P$p-${step/@/-lr}-s$seed"
                [ -f "$WORK/$name.json" ] && continue
                echo "dasgd bench: $name"
                lr=$LR; schedule=()
                case $step in const) schedule=(--step-schedule const);; const@*) schedule=(--step-schedule const); lr=${step#const@};; esac
                run 3 --algo dasgd $CONVEX --max-steps "$UPDATES" --epochs 100 --lr "$lr" --seed "$seed" --delay "poly:$C,$p" "${schedule[@]}" \
                    --output "$WORK/$name.json" --delay-histogram "$WORK/$name.delays.json" > "$WORK/$name.log" 2>&1 \
                    || echo "  (exit $?: see $WORK/$name.log)"
            done
        done
    done
fi
LOAD_MID=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$PART" = slow ] || [ "$PART" = all ]; then
    for seed in $SEEDS; do
        echo "dasgd bench: slow worker, seed $seed"
        # PSGD: 2 ranks, 32 samples each per step, rank 1 4x slower; DASGD: master + 2 workers, 32 samples per update, worker 2 4x slower.
        [ -f "$WORK/slow-psgd-s$seed.json" ] || run 2 --algo psgd $SLOW --batch 64 --seed "$seed" --slow-workers 1:4 \
            --output "$WORK/slow-psgd-s$seed.json" > "$WORK/slow-psgd-s$seed.log" 2>&1
        [ -f "$WORK/slow-dasgd-s$seed.json" ] || run 3 --algo dasgd $SLOW --batch 32 --seed "$seed" --slow-workers 2:4 --step-schedule const \
            --output "$WORK/slow-dasgd-s$seed.json" --delay-histogram "$WORK/slow-dasgd-s$seed.delays.json" > "$WORK/slow-dasgd-s$seed.log" 2>&1
    done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
[ "$PART" = convex ] || [ "$PART" = slow ] && exit 0
python3 "$(dirname "$0")/report.py" --work "$WORK" --out "$OUT" --command "$COMMAND" --growths "$GROWTHS" --seeds "$SEEDS" --steps "$STEPS" \
    --c "$C" --updates "$UPDATES" --lr "$LR" --convex "$CONVEX" --slow "$SLOW" --load "${LOAD:-$LOAD_BEFORE | $LOAD_MID | $LOAD_AFTER}"
