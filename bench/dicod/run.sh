#!/usr/bin/env bash
# `make bench-dicod` (part of `make bench`): issue 17's claim. One synthetic convolutional sparse coding problem
# (problem (1) of Moreau, Oudre, Vayatis 2018) solved by greedy CD, LGCD and FISTA on one rank and by DICOD on
# W = 1, 2, 4 ranks (MPICH), each rank greedy on its segment (the paper's DICOD) and, second series, LGCD on it (as
# the authors' dicodile does). Each run's JSON goes to $OUT/runs/; `mpipipe dicod report` writes $OUT.md (table,
# verdicts) and $OUT-convergence.svg, $OUT-speedup.svg. The machine's load average is recorded per run: the timings
# are only as good as the machine was quiet.
#   PROBLEM_ARGS  the problem and tolerance (default below: K = 10, P = 1, L = 32, T = 200000: sequential greedy CD takes seconds, so the time to build beta and start the solvers is a small part of it)
#   FISTA_ITERATIONS  FISTA's iteration cap (its iterations cost a full convolution each)
#   REPEAT        runs of each configuration, in rounds (the report keeps each one's fastest; FISTA runs once)
#   RESUME=1      keep the runs already in $OUT/runs and make only the missing ones
set -euo pipefail
: "${MPIPIPE:?path of mpipipe}"
OUT=${OUT:-bench/results/dicod}
PROBLEM_ARGS=${PROBLEM_ARGS:-"--atoms 10 --channels 1 --atom-length 32 --length 200000 --density 0.001 --noise 0.1 --lambda 1 --tol 1e-6 --seed 1"}
FISTA_ITERATIONS=${FISTA_ITERATIONS:-100}
REPEAT=${REPEAT:-2}
RANKS=${RANKS_LIST:-"1 2 4"}
COMMAND=${BENCH_COMMAND:-"make bench-dicod"}
RUNS=$OUT/runs
[ "${RESUME:-0}" = 1 ] || rm -rf "$RUNS"
mkdir -p "$RUNS"

# shellcheck disable=SC2086 # PROBLEM_ARGS is a list of arguments
run() {
    local name=$1
    shift
    if [ -s "$RUNS/$name.json" ]; then
        echo "== $name: kept from an earlier run (RESUME=1)"
        return
    fi
    echo "== $name (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    "$@" $PROBLEM_ARGS --output "$RUNS/$name.json" | tail -n 3
}

# Every run goes through the same launcher, the one-rank baselines as one-rank MPI jobs: they differ from DICOD in the
# solver only, not in how the process was started.
MPIEXEC=(env HYDRA_IFACE=lo mpiexec.mpich -f hostfiles/localhost.mpich)
run fista "${MPIEXEC[@]}" -n 1 "$MPIPIPE" dicod --solver fista --max-iterations "$FISTA_ITERATIONS"
# Rounds of every configuration rather than repetitions back to back: a burst of load elsewhere hits one round of
# each, not every repetition of one.
for round in $(seq 1 "$REPEAT"); do
    run "greedy-r$round" "${MPIEXEC[@]}" -n 1 "$MPIPIPE" dicod --solver greedy
    run "lgcd-r$round" "${MPIEXEC[@]}" -n 1 "$MPIPIPE" dicod --solver lgcd
    for local in greedy lgcd; do
        for w in $RANKS; do
            run "dicod-$local-w$w-r$round" "${MPIEXEC[@]}" -n "$w" "$MPIPIPE" dicod --local "$local"
        done
    done
done

"$MPIPIPE" dicod report --runs "$RUNS" --markdown "$OUT.md" --plots "$OUT" --command "$COMMAND"
echo "wrote $OUT.md, $OUT-convergence.svg, $OUT-speedup.svg"
