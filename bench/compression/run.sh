#!/usr/bin/env bash
# `make bench-compression`: PSGD with each gradient compressor -> bench/results/compression.md and its plots.
#  1. `mpipipe compression` on RANKS ranks (MPICH, shared memory): every compressor x every seed, EPOCHS epochs of
#     MODEL on Fashion-MNIST: accuracy (mean, spread over the seeds), bytes to MPI per step, ratio, bits per coordinate,
#     wall time; accuracy vs steps and vs wall time plots.
#  2. The emulated 1 Gbit network (bench/network/emulate.sh: one shaped loopback all ranks share; Open MPI over TCP):
#     NET_COMPRESSORS as PSGD for NET_STEPS steps each; epoch time = mean step time x 60000 / global batch, and the
#     speedup over dense fp32 PSGD (--no-overlap, as every compressed exchange runs after backward).
# The machine's load (uptime) before and after goes into the report: wall times taken under load are provisional.
#   SEEDS="1 2 3" EPOCHS=3 RANKS=4 MODEL=cnn COMPRESSORS="none fp16 topk:0.01 qsgd:4 ecq:4 ecq:3 ecq:2" NET_RATE=1gbit
set -euo pipefail
: "${MPIPIPE:?path of mpipipe}"
OUT=${OUT:-bench/results}
WORK=${WORK:-build/bench/compression}
SEEDS=${SEEDS:-"1 2 3"}
EPOCHS=${EPOCHS:-3}
RANKS=${RANKS:-4}
MODEL=${MODEL:-cnn}
BATCH=${BATCH:-128}
COMPRESSORS=${COMPRESSORS:-"none fp16 topk:0.01 qsgd:4 ecq:4 ecq:3 ecq:2"}
NET_RATE=${NET_RATE:-1gbit}
NET_COMPRESSORS=${NET_COMPRESSORS:-"none ecq:4 topk:0.01"}
NET_STEPS=${NET_STEPS:-40}
COMMAND=${BENCH_COMMAND:-"make bench-compression"}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../atomic.sh"
mkdir -p "$WORK" "$OUT"
load_before=$(uptime | sed 's/.*load average: //')

# True when the 1-minute average of an uptime load triple ("1.20, 0.80, 0.50"), less OWN runnable processes of this
# bench (its RANKS ranks, for a load read right after they ran), exceeds the core count: other jobs then shared the
# machine, and the wall times are provisional.
busy() {
    awk -v load="${1%%,*}" -v own="${2:-0}" -v cores="$(nproc)" 'BEGIN { exit !(load - own > cores + 0) }'
}

# The network rows first (short), into a fragment; the sweep rewrites compression.md after every seed, so a sweep
# cut short (APPEND_ONLY=1 then appends the fragment) still leaves a report; REUSE_NETWORK=1 keeps the fragment there.
# NETWORK_ONLY=1 re-makes the network rows alone and puts them in place of the committed page's network section,
# keeping its sweep (whose header names the run that made it) and that sweep's load line.
network=$WORK/network-fragment.md
b=$(( BATCH ))
if [ -z "${APPEND_ONLY:-}" ] && [ -z "${REUSE_NETWORK:-}" ]; then
    for spec in $NET_COMPRESSORS; do
        tag="net-$NET_RATE-${spec//[:,]/-}"
        if [ "$spec" = none ]; then args="--no-overlap"; else args="--compress $spec"; fi
        echo "compression bench: $tag" >&2
        # shellcheck disable=SC2086
        timeout 900 bash "$here/../network/emulate.sh" --rate "$NET_RATE" --quiet -- mpirun.openmpi --oversubscribe -n "$RANKS" \
            "$MPIPIPE" train --algo psgd $args --model "$MODEL" --batch "$b" --max-steps "$NET_STEPS" --epochs 1 --threads 1 \
            --test-samples 1000 --output "$WORK/$tag.json" > "$WORK/$tag.log" 2>&1 \
            || { echo "failed: $tag (log: $WORK/$tag.log)" >&2; exit 1; }
    done
    load_network=$(uptime | sed 's/.*load average: //')
    {
        echo
        echo "## Over an emulated $NET_RATE network"
        echo
        echo "\`bench/network/emulate.sh --rate $NET_RATE\`: one shaped loopback that all $RANKS ranks share (an aggregate rate), Open MPI"
        echo "over TCP, one libtorch thread per rank; PSGD for $NET_STEPS steps (the first included), global batch $b; epoch s ="
        echo "mean step time x 60000 / $b. *comm* = seconds per step in the gradient exchange (encode, Allgather(v), decode)."
        echo
        echo "| compressor | bits per coordinate | step s | comm s per step | epoch s | speedup over fp32 |"
        echo "|---|---:|---:|---:|---:|---:|"
        base_step=$(jq -r '.totals.stepSeconds / .totals.steps' "$WORK/net-$NET_RATE-none.json")
        for spec in $NET_COMPRESSORS; do
            tag="net-$NET_RATE-${spec//[:,]/-}"
            jq -r --arg spec "$spec" --argjson base "$base_step" --argjson b "$b" '
                (.totals.stepSeconds / .totals.steps) as $step
                | "| \($spec) | \(.options.bitsPerCoordinate | tonumber | . * 1000 | round / 1000) | \($step * 1000 | round / 1000)"
                  + " | \(.totals.communicationSeconds / .totals.steps * 1000 | round / 1000)"
                  + " | \($step * 60000 / $b * 10 | round / 10) | \($base / $step * 100 | round / 100)x |"' "$WORK/$tag.json"
        done
        echo
        echo "Machine load (uptime's 1, 5, 15 minute averages) before the network rows: $load_before; after them: $load_network."
    } > "$network"
fi

# The issue's goal lines from the sweep's and the network rows' JSON (bench/compression/goals.py).
goals() {
    python3 "$here/goals.py" --work "$WORK" --compressors "$COMPRESSORS" --net-rate "$NET_RATE" --net-compressors "$NET_COMPRESSORS"
}

if [ -n "${NETWORK_ONLY:-}" ]; then
    # The page without its network section: from its heading up to the sweep's load line (or the end).
    kept=$WORK/sweep-kept.md
    awk '/^## Over an emulated/ { skip = 1 } /^Machine load (after the seeds|before the sweep)/ { skip = 0 } /^Raw results JSON/ { skip = 1 } !skip' \
        "$OUT/compression.md" > "$kept"
    atomic_temp report "$OUT/compression.md"
    {
        cat "$kept"
        cat "$network"
        echo
        goals
        echo "The network rows above were re-made alone (\`NETWORK_ONLY=1 $COMMAND\`, $(date -u +%Y-%m-%d)); the sweep and its load line are"
        echo "the run its header names."
        echo
        echo "Raw results JSON and logs: \`$WORK/\` (not committed)."
    } > "$report"
    atomic_commit "$report" "$OUT/compression.md"
    echo "wrote $OUT/compression.md (network rows only)"
    exit 0
fi

if [ -z "${APPEND_ONLY:-}" ]; then
    # shellcheck disable=SC2086
    mpiexec.mpich -f hostfiles/localhost.mpich -n "$RANKS" "$MPIPIPE" compression --model "$MODEL" --epochs "$EPOCHS" \
        --batch "$BATCH" --lr 0.05 --momentum 0.9 --seeds $SEEDS --compressors $COMPRESSORS --out "$OUT" --work "$WORK" \
        --command-line "$COMMAND (SEEDS='$SEEDS' EPOCHS=$EPOCHS RANKS=$RANKS MODEL=$MODEL COMPRESSORS='$COMPRESSORS')" \
        > "$WORK/compression.log" 2>&1 || { echo "failed: mpipipe compression (log: $WORK/compression.log)" >&2; exit 1; }
fi
load_after=$(uptime | sed 's/.*load average: //')

atomic_temp report "$OUT/compression.md"
{
    cat "$OUT/compression.md"
    cat "$network"
    echo
    goals
    if busy "$load_before" || busy "$load_after" "$RANKS"; then
        echo "Machine load before the sweep: $load_before; after the seeds: $load_after. $(nproc) cores. **Other jobs shared"
        echo "the machine while this ran** (a 1-minute load above the core count, less the bench's own $RANKS ranks after it): wall times (the wall s, communication s,"
        echo "step and epoch columns) are provisional; accuracies, bytes and ratios do not depend on load."
    else
        echo "Machine load before the sweep: $load_before; after the seeds: $load_after. $(nproc) cores: a quiet machine"
        echo "(the 1-minute load at or below the core count before, and after less the bench's own $RANKS ranks)."
    fi
    echo
    echo "Raw results JSON and logs: \`$WORK/\` (not committed)."
} > "$report"
atomic_commit "$report" "$OUT/compression.md"
echo "wrote $OUT/compression.md"
