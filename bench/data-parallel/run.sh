#!/usr/bin/env bash
# `make bench-data-parallel`: PSGD (cnn, Fashion-MNIST, one epoch) on 1, 2 and 4 ranks under MPICH; writes
# bench/results/data-parallel.md from the runs' results JSON: epoch time, samples/s, speedup, the share of
# communication, and the training loop's own overhead outside compute (bridge calls) and MPI (goal: < 5% of a step).
set -euo pipefail
: "${MPIPIPE:?path of mpipipe}" "${OUT:=bench/results/data-parallel.md}" "${WORK:=build/bench/data-parallel}"
RANKS=${RANKS:-"1 2 4"}
ARGS=${ARGS:-"--model cnn --epochs 1 --batch 128 --threads 1 --test-samples 2000"}
COMMAND=${BENCH_COMMAND:-"make bench-data-parallel"}
mkdir -p "$WORK" "$(dirname "$OUT")"
. "$(dirname "$0")/../atomic.sh"
atomic_temp table "$OUT"
for n in $RANKS; do
    echo "data-parallel bench: psgd on $n rank(s)"
    HYDRA_IFACE=lo mpiexec.mpich -n "$n" "$MPIPIPE" train --algo psgd $ARGS --output "$WORK/psgd-n$n.json" > "$WORK/psgd-n$n.log"
done

cores=$(nproc)
{
    echo "# Data-parallel training speed (PSGD)"
    echo
    echo "Made by \`$COMMAND\` on $(date -u +%Y-%m-%d) — $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Each run: \`mpiexec.mpich -n N mpipipe train --algo psgd $ARGS\`; one libtorch thread per rank,"
    echo "so N > $cores ranks are oversubscribed: ranks share cores (the run then waits for its Allreduce with MPI_Iallreduce and"
    echo "sched_yield polling instead of MPICH's busy-polling MPI_Allreduce; see README, PSGD)."
    echo
    echo "| ranks | epoch s | samples/s | speedup | compute s/rank | communication s/rank | comm share | loop overhead s/rank | loop overhead share | goal < 5% | rounds | MiB sent/rank | test acc % |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:--:|---:|---:|---:|"
    base=""
    for n in $RANKS; do
        j="$WORK/psgd-n$n.json"
        sps=$(jq '.epochs[0].samplesPerSecond' "$j")
        [ -z "$base" ] && base=$sps
        jq -r --arg n "$n" --argjson base "$base" --argjson cores "$cores" '
            .totals as $t | .epochs[0] as $e |
            ($t.loopOverheadSeconds / $t.stepSeconds) as $over |
            [ $n, ($e.seconds*10|round/10), ($e.samplesPerSecond|round), (($e.samplesPerSecond/$base)*100|round/100),
              ($t.computeSeconds*10|round/10), ($t.communicationSeconds*10|round/10),
              (($t.communicationSeconds/$t.stepSeconds)*1000|round/10|tostring + "%"),
              ($t.loopOverheadSeconds*100|round/100), (($over*1000|round/10)|tostring + "%"),
              (if $over < 0.05 then "met" else "missed" end),
              $t.communicationRounds, ($t.bytesSentPerRank/1048576|round), ($e.testAccuracy*1000|round/10) ]
            | "| " + (map(tostring) | join(" | ")) + " |"' "$j"
    done
    echo
    echo "Compute = time inside bridge calls (forward, backward, optimizer step); communication = time inside the"
    echo "gradient Allreduce and the 1/n scaling, which includes waiting for the slowest rank (on a loaded or oversubscribed"
    echo "machine most of it is waiting, not transfer: compare \`bench/results/mpi.md\` for the Allreduce cost itself); loop overhead = step wall time less both (batch gathering from the data"
    echo "set included). Times are per rank, averaged over the ranks. The raw results JSON are in \`$WORK/\`."
} > "$table"
atomic_commit "$table" "$OUT"
echo "wrote $OUT"
