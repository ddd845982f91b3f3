#!/usr/bin/env bash
# `make bench-dasgd`: DASGD (Zhou et al. 2018) on a convex problem -- multinomial logistic regression (`--model linear`)
# on a Fashion-MNIST subset -- with injected delays growing as d_n ~ C n^P for P = 0, 0.5, 1 and 1.5 (above the limit),
# each step family (the paper's: the default of --step-schedule for that P; const) over a grid of alpha_0, SEEDS seeds
# each (report.py picks, per family and P, the alpha_0 with the lowest mean final test loss); then, without injected
# delay and one worker 4x slower, DASGD against PSGD in seconds to PSGD's final accuracy (mlp), each seed's pair back
# to back with the load average recorded beside it; then the same delay sweep on the cnn (non-convex: `--model cnn`,
# CNN_UPDATES updates, its own alpha_0 grid CNN_ALPHAS). Writes the runs' JSON and delay histograms to $WORK and
# bench/results/dasgd.md + SVG plots through bench/dasgd/report.py.
set -euo pipefail
: "${MPIPIPE:?path of mpipipe}" "${OUT:=bench/results/dasgd.md}" "${WORK:=build/bench/dasgd}"
SEEDS=${SEEDS:-"1 2 3"}
GROWTHS=${GROWTHS:-"0 0.5 1 1.5"}
# paper: --step-schedule's default for P; const: alpha_n = alpha_0; every family at every alp_0 (--lr) of ALPHAS.
FAMILIES=${FAMILIES:-"paper const"}
ALPHAS=${ALPHAS:-"0.5 0.05 0.015 0.005"}
C=${C:-0.5}
UPDATES=${UPDATES:-1000}
CONVEX=${CONVEX:-"--model linear --train-samples 12000 --test-samples 2000 --batch 32 --threads 1 --curve-every 25"}
SLOW=${SLOW:-"--model mlp --train-samples 12000 --test-samples 2000 --threads 1 --lr 0.1 --momentum 0 --curve-every 10"}
# The cnn's alpha_0 grid: decades around its scale (plain SGD on the cnn trains at 0.05-0.2 without delay; the paper's
# decaying steps need ~10x that, see bench/dasgd/notes.md). 300 updates (0.8 epoch) keep the 72 runs near 20 minutes.
CNN_ALPHAS=${CNN_ALPHAS:-"2 0.2 0.02"}
CNN_UPDATES=${CNN_UPDATES:-300}
CNN=${CNN:-"--model cnn --train-samples 12000 --test-samples 2000 --batch 32 --threads 1 --momentum 0 --curve-every 10"}
# PART=cnnlong: the cnn runs of 300 updates left open (P = 0.5 and 1 stall there), LONG_UPDATES long, P:family:alpha_0 each.
LONG_UPDATES=${LONG_UPDATES:-1000}
LONG_RUNS=${LONG_RUNS:-"0.5:paper:0.5 0.5:paper:1 0.5:const:0.02 1:paper:0.02 1:paper:0.05 1:paper:0.1 1:const:0.02"}
SLOW_PSGD_EPOCHS=${SLOW_PSGD_EPOCHS:-3}
SLOW_DASGD_EPOCHS=${SLOW_DASGD_EPOCHS:-9}
COMMAND=${BENCH_COMMAND:-"make bench-dasgd"}
mkdir -p "$WORK" "$(dirname "$OUT")"
run() { HYDRA_IFACE=lo mpiexec.mpich -n "$1" "$MPIPIPE" train "${@:2}"; }
# PART: all, or some of convex slow cnn cnnlong report (e.g. PART="cnn report"); a run whose results exist is not repeated
# (delete $WORK to redo). report.py carries a part whose runs are not in $WORK over from the current $OUT unchanged.
PART=${PART:-all}
part() { [ "$PART" = all ] || [[ " $PART " == *" $1 "* ]]; }
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# One DASGD run under delays d_n ~ C n^P, named PREFIX-P{P}-{family}-lr{alpha_0}-s{seed}; skipped when its results
# exist. ARGS are the model's train arguments, UPDATES the master's updates.
delayed_run() {
    local prefix=$1 args=$2 updates=$3 p=$4 family=$5 lr=$6 seed=$7 name schedule=()
    name="$prefix-P$p-$family-lr$lr-s$seed"
    [ -f "$WORK/$name.json" ] && return 0
    echo "dasgd bench: $name"
    [ "$family" = const ] && schedule=(--step-schedule const)
    # shellcheck disable=SC2086 # ARGS is a list of arguments
    run 3 --algo dasgd $args --max-steps "$updates" --epochs 100 --lr "$lr" --seed "$seed" --delay "poly:$C,$p" "${schedule[@]}" \
        --output "$WORK/$name.json" --delay-histogram "$WORK/$name.delays.json" > "$WORK/$name.log" 2>&1 \
        || echo "  (exit $?: see $WORK/$name.log)"
}
# One seed of a delay sweep: every growth P, step family and alpha_0 of ALPHAS (the alpha_0 grid).
sweep_seed() {
    local prefix=$1 args=$2 updates=$3 alphas=$4 seed=$5 p family lr
    for p in $GROWTHS; do
        for family in $FAMILIES; do
            for lr in $alphas; do
                delayed_run "$prefix" "$args" "$updates" "$p" "$family" "$lr" "$seed"
            done
        done
    done
}
if part convex; then
    # Seeds outermost: an interrupted bench still has every (P, step) for the first seeds.
    for seed in $SEEDS; do
        sweep_seed convex "$CONVEX" "$UPDATES" "$ALPHAS" "$seed"
    done
fi
LOAD_MID=$(cut -d' ' -f1-3 /proc/loadavg)
if part slow; then
    for seed in $SEEDS; do
        [ -f "$WORK/slow-psgd-s$seed.json" ] && [ -f "$WORK/slow-dasgd-s$seed.json" ] && continue
        echo "dasgd bench: slow worker, seed $seed"
        # One seed's pair back to back, so both see about the same load; the load average is kept beside them.
        cut -d' ' -f1-3 /proc/loadavg > "$WORK/slow-s$seed.load"
        # PSGD: 2 ranks, 32 samples each per step, rank 1 4x slower, SLOW_PSGD_EPOCHS epochs; DASGD: master + 2
        # workers, 32 samples per update, worker 2 4x slower, SLOW_DASGD_EPOCHS epochs (enough to reach PSGD's final
        # accuracy: the report reads both runs' seconds to that accuracy).
        run 2 --algo psgd $SLOW --epochs "$SLOW_PSGD_EPOCHS" --batch 64 --seed "$seed" --slow-workers 1:4 \
            --output "$WORK/slow-psgd-s$seed.json" > "$WORK/slow-psgd-s$seed.log" 2>&1
        run 3 --algo dasgd $SLOW --epochs "$SLOW_DASGD_EPOCHS" --batch 32 --seed "$seed" --slow-workers 2:4 --step-schedule const \
            --output "$WORK/slow-dasgd-s$seed.json" --delay-histogram "$WORK/slow-dasgd-s$seed.delays.json" > "$WORK/slow-dasgd-s$seed.log" 2>&1
        cut -d' ' -f1-3 /proc/loadavg >> "$WORK/slow-s$seed.load"
    done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
if part cnn; then
    # The convex part's sweep on the cnn; the load average is kept beside the runs (cnn.load: before, after each seed).
    cut -d' ' -f1-3 /proc/loadavg | sed "s/^/$(date -u +%H:%M) start: /" >> "$WORK/cnn.load"
    for seed in $SEEDS; do
        sweep_seed cnn "$CNN" "$CNN_UPDATES" "$CNN_ALPHAS" "$seed"
        cut -d' ' -f1-3 /proc/loadavg | sed "s/^/$(date -u +%H:%M) after seed $seed: /" >> "$WORK/cnn.load"
    done
fi
if part cnnlong; then
    # Longer cnn runs where 300 updates say too little: LONG_RUNS "P:family:alpha_0 ..." for LONG_UPDATES updates each,
    # every seed; bench/dasgd/long.py writes bench/results/dasgd-cnn-long.md (+ .json, read by report.py's goal line).
    cut -d' ' -f1-3 /proc/loadavg | sed "s/^/$(date -u +%H:%M) start: /" >> "$WORK/cnnlong.load"
    for seed in $SEEDS; do
        for spec in $LONG_RUNS; do
            IFS=: read -r p family lr <<< "$spec"
            delayed_run cnnlong "$CNN" "$LONG_UPDATES" "$p" "$family" "$lr" "$seed"
        done
        cut -d' ' -f1-3 /proc/loadavg | sed "s/^/$(date -u +%H:%M) after seed $seed: /" >> "$WORK/cnnlong.load"
    done
    python3 "$(dirname "$0")/long.py" --work "$WORK" --out "$(dirname "$OUT")/dasgd-cnn-long.md" --runs "$LONG_RUNS" --seeds "$SEEDS" \
        --updates "$LONG_UPDATES" --c "$C" --cnn "$CNN" --command "$COMMAND"
fi
part report || exit 0
python3 "$(dirname "$0")/report.py" --work "$WORK" --out "$OUT" --command "$COMMAND" --growths "$GROWTHS" --seeds "$SEEDS" --families "$FAMILIES" --alphas "$ALPHAS" \
    --c "$C" --updates "$UPDATES" --convex "$CONVEX" \
    --cnn "$CNN" --cnn-alphas "$CNN_ALPHAS" --cnn-updates "$CNN_UPDATES" --slow "$SLOW" --slow-epochs "$SLOW_PSGD_EPOCHS $SLOW_DASGD_EPOCHS" --load "${LOAD:-$LOAD_BEFORE before the runs | $LOAD_MID between the two parts | $LOAD_AFTER after}"
