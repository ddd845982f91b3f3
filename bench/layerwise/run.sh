#!/usr/bin/env bash
# `make bench-layerwise` (issue 18): layer-wise parallelism (OptCNN) for cnn and cnn-wide on R = 2 and 4 ranks, on
# shared memory and on the emulated 1 Gbit network. For each case, REPEATS times, `mpipipe plan` searches a plan and
# writes it, pure data parallel and pure model parallel with their predicted step times (the plan files, with their
# predictedStepSeconds, go to $OUT/plans/); then each of the three plans runs through `mpipipe train --algo layerwise
# --plan FILE` for the measured column ($OUT/runs/*.json, the loss curve at every step). PART=accuracy trains PSGD and
# the searched plan for 2 epochs each (same model, global batch, seeds) for the accuracy goal. bench/layerwise/report.py
# writes $REPORT (bench/results/layerwise.md) from all of it.
#   PART         steps | accuracy | all (default all)
#   MODELS, RANKS_LIST, NETWORKS  what the step part covers (default: cnn cnn-wide; 2 4; shm 1gbit)
#   BATCH        the global batch (default 128, train's)
#   STEPS        training steps per measured run (default 40); WARMUP (default 5) of them are left out of the mean
#   REPEATS      how many times the step part plans and runs every case (default 3), each with layer times of its own
#   ACC_MODELS, ACC_RANKS, EPOCHS, SEEDS  the accuracy part (default: cnn-wide cnn; 4; 2; "1 2 3"), on shared memory;
#   RESUME=1     keep the accuracy runs whose JSON exists (default: every run is made afresh)
#   ACC_ARGS     extra train arguments for the accuracy part only (e.g. "--train-samples 512" for a smoke run)
#   MPI          mpich | openmpi (default openmpi: the emulated network's TCP path is verified with it)
set -euo pipefail
: "${MPIPIPE:?path of mpipipe}"
OUT=${OUT:-bench/results/layerwise}
MODELS=${MODELS:-"cnn cnn-wide"}
RANKS=${RANKS_LIST:-"2 4"}
NETWORKS=${NETWORKS:-"shm 1gbit"}
BATCH=${BATCH:-128}
STEPS=${STEPS:-40}
WARMUP=${WARMUP:-5}
PART=${PART:-all}
REPEATS=${REPEATS:-3}
ACC_MODELS=${ACC_MODELS:-"cnn-wide cnn"}
ACC_RANKS=${ACC_RANKS:-4}
EPOCHS=${EPOCHS:-2}
SEEDS=${SEEDS:-"1 2 3"}
ACC_ARGS=${ACC_ARGS:-}
REPORT=${REPORT:-bench/results/layerwise.md}
MPI=${MPI:-openmpi}
COMMAND="$0${*:+ $*} (PART=$PART MODELS='$MODELS' RANKS_LIST='$RANKS' NETWORKS='$NETWORKS' BATCH=$BATCH STEPS=$STEPS WARMUP=$WARMUP REPEATS=$REPEATS ACC_MODELS='$ACC_MODELS' ACC_RANKS=$ACC_RANKS EPOCHS=$EPOCHS SEEDS='$SEEDS'${ACC_ARGS:+ ACC_ARGS='$ACC_ARGS'} MPI=$MPI)"
case "$PART" in steps | accuracy | all) ;; *) echo "PART must be steps, accuracy or all, not '$PART'" >&2; exit 64 ;; esac
PLANS=$OUT/plans
RUNS=$OUT/runs
mkdir -p "$PLANS" "$RUNS"

case "$MPI" in
    mpich) MPIEXEC=(env HYDRA_IFACE=lo mpiexec.mpich -f hostfiles/localhost.mpich) ;;
    openmpi) MPIEXEC=(env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun.openmpi --oversubscribe) ;;
    *) echo "MPI must be mpich or openmpi, not '$MPI'" >&2; exit 64 ;;
esac
load() { cut -d' ' -f1-3 /proc/loadavg; }

if [ "$PART" != accuracy ]; then
# Each repeat measures its own layer times (a cache file of its own, deleted first) and runs each case's three plans
# right after planning it, so a prediction and its measurements are made within a minute of each other: this machine's
# speed drifts by 20-30% over minutes, and the report takes the median over the repeats of each row's ratio.
for repeat in $(seq 1 "$REPEATS"); do
    cache=$OUT/layer-times.r$repeat.json
    rm -f "$cache"
    echo "# repeat $repeat of $REPEATS ($(date -u '+%Y-%m-%d %H:%M UTC'); load $(load))"
    for model in $MODELS; do
        for ranks in $RANKS; do
            for net in $NETWORKS; do
                network=()
                [ "$net" = shm ] || network=(--network "$net")
                case_name=$model-$ranks-$net
                for which in searched data model; do
                    plan=$PLANS/$case_name.r$repeat.json
                    [ "$which" = searched ] || plan=$PLANS/$case_name-$which.r$repeat.json
                    write=searched
                    [ "$which" = searched ] || write=$which-parallel
                    "$MPIPIPE" plan --model "$model" --ranks "$ranks" --batch "$BATCH" "${network[@]}" --compute-cache "$cache" \
                        --write "$write" --output "$plan" >/dev/null
                done
                echo "== $case_name: predicted $(grep -ho '"predictedStepSeconds": [0-9.e-]*' "$PLANS/$case_name.r$repeat.json" "$PLANS/$case_name-data.r$repeat.json" "$PLANS/$case_name-model.r$repeat.json" | cut -d' ' -f2 | tr '\n' ' ')s (searched, data, model)"
                for which in searched data model; do
                    plan=$PLANS/$case_name.r$repeat.json
                    [ "$which" = searched ] || plan=$PLANS/$case_name-$which.r$repeat.json
                    wrap=()
                    [ "$net" = shm ] || wrap=(bench/network/emulate.sh --rate "$net" --quiet --)
                    name=$case_name-$which.r$repeat
                    load >"$RUNS/$name.load"
                    echo "== $name (load: $(cat "$RUNS/$name.load"))"
                    # --curve-every 1: the report takes the mean step from the loss curve's wall clock after WARMUP steps.
                    "${wrap[@]}" "${MPIEXEC[@]}" -n "$ranks" "$MPIPIPE" train --algo layerwise --plan "$plan" --model "$model" \
                        --batch "$BATCH" --max-steps "$STEPS" --curve-every 1 --test-samples 256 --threads 1 --output "$RUNS/$name.json" | tail -n 1
                done
            done
        done
    done
done
fi

if [ "$PART" != steps ]; then
    ACC=$OUT/accuracy
    [ "${RESUME:-0}" = 1 ] || rm -rf "$ACC"
    mkdir -p "$ACC"
    for model in $ACC_MODELS; do
        plan=$PLANS/$model-$ACC_RANKS-shm.r1.json
        [ -f "$plan" ] || "$MPIPIPE" plan --model "$model" --ranks "$ACC_RANKS" --batch "$BATCH" --output "$plan" >/dev/null
        for seed in $SEEDS; do
            for algo in psgd layerwise; do
                name=$model-$ACC_RANKS-$algo-s$seed
                [ -s "$ACC/$name.json" ] && { echo "== accuracy $name: kept"; continue; }
                args=(--algo "$algo")
                [ "$algo" = psgd ] || args=(--algo layerwise --plan "$plan")
                load >"$ACC/$name.load"
                echo "== accuracy $name (load: $(cat "$ACC/$name.load"))"
                "${MPIEXEC[@]}" -n "$ACC_RANKS" "$MPIPIPE" train "${args[@]}" --model "$model" --batch "$BATCH" --epochs "$EPOCHS" \
                    --seed "$seed" --threads 1 $ACC_ARGS --output "$ACC/$name.json" | tail -n 2
            done
        done
    done
fi

python3 bench/layerwise/report.py --work "$OUT" --out "$REPORT" --command "$COMMAND" --models "$MODELS" --ranks "$RANKS" \
    --networks "$NETWORKS" --acc-models "$ACC_MODELS" --acc-ranks "$ACC_RANKS" --epochs "$EPOCHS" --warmup "$WARMUP" --part "$PART" --seeds "$SEEDS" --repeats "$REPEATS"
echo "report: $REPORT"
