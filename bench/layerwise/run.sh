#!/usr/bin/env bash
# `make bench-layerwise` (issue 18; not yet part of `make bench`): layer-wise parallelism (OptCNN) for cnn and cnn-wide
# on R = 2 and 4 ranks, on shared memory and on the emulated 1 Gbit network. For each case `mpipipe plan` searches a
# plan and prints the predicted step time of the searched plan, pure data parallel and pure model parallel; the plan
# files go to $OUT/plans/. Then each plan would be run by `mpipipe train --algo layerwise --plan FILE` for the measured
# column; until this build has that engine (branch lweng), the script says "engine not available" and stops there.
#   MODELS, RANKS_LIST, NETWORKS  what to cover (default: cnn cnn-wide; 2 4; shm 1gbit)
#   BATCH        the global batch (default 128, train's)
#   STEPS        training steps per measured run (default 40; the first 5 are not timed by the engine's report)
#   MPI          mpich | openmpi (default openmpi: the emulated network's TCP path is verified with it)
set -euo pipefail
: "${MPIPIPE:?path of mpipipe}"
OUT=${OUT:-bench/results/layerwise}
MODELS=${MODELS:-"cnn cnn-wide"}
RANKS=${RANKS_LIST:-"2 4"}
NETWORKS=${NETWORKS:-"shm 1gbit"}
BATCH=${BATCH:-128}
STEPS=${STEPS:-40}
MPI=${MPI:-openmpi}
PLANS=$OUT/plans
RUNS=$OUT/runs
mkdir -p "$PLANS" "$RUNS"

echo "# layer-wise plans ($(date -u '+%Y-%m-%d %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg): layer times measured under this load)"
echo
echo "| model | ranks | network | searched ms | data parallel ms | model parallel ms | searched plan |"
echo "|---|---:|---|---:|---:|---:|---|"
for model in $MODELS; do
    for ranks in $RANKS; do
        for net in $NETWORKS; do
            plan=$PLANS/$model-$ranks-$net.json
            network=()
            [ "$net" = shm ] || network=(--network "$net")
            text=$("$MPIPIPE" plan --model "$model" --ranks "$ranks" --batch "$BATCH" "${network[@]}" --output "$plan")
            for pure in data model; do
                "$MPIPIPE" plan --model "$model" --ranks "$ranks" --batch "$BATCH" "${network[@]}" --write "$pure-parallel" \
                    --output "$PLANS/$model-$ranks-$net-$pure.json" >/dev/null
            done
            # The summary table's rows: | searched | step | compute | transfer | sync | ratio |
            row() { awk -F'|' -v name="$1" '$2 ~ "^ *"name" *$" { gsub(/ /, "", $3); print $3 }' <<<"$text"; }
            configs=$(grep -o '"n[0-9]*c[0-9]*h[0-9]*"' "$plan" | tr -d '"' | tr '\n' ' ')
            echo "| $model | $ranks | $net | $(row searched) | $(row 'data parallel') | $(row 'model parallel') | $configs|"
        done
    done
done
echo

# The engine: `train --algo layerwise --plan FILE` (issue 18, item 2). Probe it instead of assuming it.
if ! "$MPIPIPE" train --help 2>/dev/null | grep -q -- '--plan'; then
    echo "engine not available: this mpipipe has no 'train --algo layerwise --plan FILE' (branch lweng); predicted times only"
    exit 0
fi

case "$MPI" in
    mpich) MPIEXEC=(env HYDRA_IFACE=lo mpiexec.mpich -f hostfiles/localhost.mpich) ;;
    openmpi) MPIEXEC=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun.openmpi --oversubscribe) ;;
    *) echo "MPI must be mpich or openmpi, not '$MPI'" >&2; exit 64 ;;
esac

for model in $MODELS; do
    for ranks in $RANKS; do
        for net in $NETWORKS; do
            for which in searched data model; do
                plan=$PLANS/$model-$ranks-$net.json
                [ "$which" = searched ] || plan=$PLANS/$model-$ranks-$net-$which.json
                wrap=()
                [ "$net" = shm ] || wrap=(bench/network/emulate.sh --rate "$net" --quiet --)
                name=$model-$ranks-$net-$which
                echo "== $name (load: $(cut -d' ' -f1-3 /proc/loadavg))"
                "${wrap[@]}" "${MPIEXEC[@]}" -n "$ranks" "$MPIPIPE" train --algo layerwise --plan "$plan" --model "$model" \
                    --batch "$BATCH" --max-steps "$STEPS" --threads 1 --output "$RUNS/$name.json" | tail -n 3
            done
        done
    done
done
