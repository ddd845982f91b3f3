#!/usr/bin/env bash
# Pipeline parallelism against its ideal: for S = 2 and 4 stages, both schedules and M = 1, 2, 4, 8, 16 micro-batches,
# runs `mpipipe train --algo pipeline` (MPICH, one thread per rank) and writes a Markdown table: the measured time per
# mini-batch against the ideal T = (M + S - 1) max_s (t_f,s + t_b,s), i.e. the per-stage compute time with the bubble
# (S - 1)/(M + S - 1) added, where t_f,s and t_b,s are the forward and backward times per micro-batch measured in the
# same run (so a machine that is slow for the whole run moves both alike); and the bubble each stage saw, measured
# from its forward/backward spans (the spans the Chrome trace holds). Each configuration runs ROUNDS times; the row
# shows the run with the median ratio ideal/measured, and the best ratio. Goal: ideal/measured >= 0.9.
# Called by `make bench-pipeline` (mk/bench-pipeline.mk), which sets the variables below; needs jq.
set -euo pipefail

MPIPIPE=${MPIPIPE:?path of the mpipipe executable}
OUT=${OUT:-bench/results/pipeline.md}
WORK=${WORK:-build/bench-pipeline}
ROUNDS=${ROUNDS:-3}
STAGES=${STAGES:-2 4}
MICRO_BATCHES=${MICRO_BATCHES:-1 2 4 8 16}
SCHEDULES=${SCHEDULES:-gpipe 1f1b}
# deep-mlp:9:784: flatten, 9 linear layers (8 of 784 x 784, the last 784 x 10) with relu between, 18 layers; the
# balances give every stage the same number of 784 x 784 layers (4 each for S = 2, 2 each for S = 4).
MODEL=${MODEL:-deep-mlp:9:784}
BALANCES=${BALANCES:-2:9,9 4:5,4,4,5}
BATCH=${BATCH:-128}
STEPS=${STEPS:-20}
BENCH_COMMAND=${BENCH_COMMAND:-bash bench/pipeline-bench.sh}
CORES=$(nproc)

REPORT_ONLY=${REPORT_ONLY:-}
NOTES=${NOTES:-$(dirname "$0")/pipeline-notes.md}
if [ -z "$REPORT_ONLY" ]; then rm -rf "$WORK"; fi
mkdir -p "$WORK" "$(dirname "$OUT")"
. "$(dirname "$0")/atomic.sh"
atomic_temp table "$OUT"
command -v jq >/dev/null || { echo "pipeline-bench: jq is needed (make deps installs it)" >&2; exit 2; }

# deep-mlp:L:W has 2L layers (flatten, then linear layers with relu between).
layers=$(( 2 * $(cut -d: -f2 <<<"$MODEL") ))
balance() {
    local entry
    for entry in $BALANCES; do [ "${entry%%:*}" = "$1" ] && { echo "${entry#*:}"; return; }; done
    echo "pipeline-bench: no balance for S = $1 in BALANCES='$BALANCES'" >&2; exit 2
}

run() {
    local s=$1 schedule=$2 m=$3 round=$4 name="S$1-$2-M$3-r$4"
    echo "pipeline-bench: S=$s $schedule M=$m round $round/$ROUNDS (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    cut -d' ' -f1 /proc/loadavg >"$WORK/$name.load"
    HYDRA_IFACE=lo mpiexec.mpich -n "$s" "$MPIPIPE" train --algo pipeline --model "$MODEL" --batch "$BATCH" \
        --train-samples $((BATCH * STEPS)) --test-samples 200 --max-steps "$STEPS" --threads 1 \
        --stages "$s" --balance "$(balance "$s")" --micro-batches "$m" --schedule "$schedule" \
        --output "$WORK/$name.json" --trace "$WORK/$name.trace.json" >"$WORK/$name.log" 2>&1 \
        || { echo "pipeline-bench: run $name failed:" >&2; cat "$WORK/$name.log" >&2; exit 1; }
}

# REPORT_ONLY=1 writes the table again from the runs already in $WORK (e.g. after editing the notes).
if [ -z "$REPORT_ONLY" ]; then
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    started=$(date +%s)
    for s in $STAGES; do
        for m in $MICRO_BATCHES; do
            for round in $(seq 1 "$ROUNDS"); do
                for schedule in $SCHEDULES; do run "$s" "$schedule" "$m" "$round"; done
            done
        done
    done
    elapsed=$(( $(date +%s) - started ))
    load_after=$(cut -d' ' -f1-3 /proc/loadavg)
    printf 'load_before="%s"\nload_after="%s"\nelapsed=%s\nmade_on=%s\ncores=%s\n' "$load_before" "$load_after" "$elapsed" \
        "$(date -u +%Y-%m-%d)" "$CORES" >"$WORK/meta"
fi
# shellcheck disable=SC1091
. "$WORK/meta"
CORES=${cores:-$CORES} # the cores of the machine that made the runs (REPORT_ONLY may run elsewhere)

ms() { awk -v x="$1" 'BEGIN { printf "%.1f", 1000 * x }'; }
pct() { awk -v x="$1" 'BEGIN { printf "%.0f%%", 100 * x }'; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
{
    echo "# Pipeline parallelism against the ideal"
    echo
    echo "Made by \`$BENCH_COMMAND\` on $made_on ($elapsed s): \`mpipipe train --algo pipeline\` under MPICH"
    echo "($(mpichversion 2>/dev/null | sed -n 's/^MPICH Version:[[:space:]]*//p') ch4), model \`$MODEL\` ($layers layers; balances $BALANCES: the same compute on every stage),"
    echo "global batch $BATCH cut into M micro-batches, $STEPS mini-batches per run (the first is left out), one libtorch"
    echo "thread per rank, $ROUNDS runs per configuration. Machine: $cpu, $CORES cores, load average $load_before before"
    echo "and $load_after after (other users' jobs share it: the load is noted per run)."
    echo
    echo "- **ideal** = (M + S - 1) max_s (t_f,s + t_b,s): the slowest stage's compute per micro-batch, M times, plus the"
    echo "  bubble (S - 1)/(M + S - 1) of the ideal time (GPipe paper, section 2.3), with t_f,s and t_b,s measured in the"
    echo "  same run. **measured**: the median over mini-batches of the slowest rank's time for one mini-batch (pipeline,"
    echo "  optimizer step, data copy). **ratio** = ideal / measured (goal >= 0.9): the row shows the run with the median"
    echo "  ratio of its $ROUNDS; **best** is the best run's. **simulated**: the schedule's own order run with the measured"
    echo "  per-stage times and free communication (PipelineTiming.SimulatedTime): exact where the ideal formula is an"
    echo "  estimate (stages of unequal speed; the ideal can then be above the achievable time, hence ratios above 1);"
    echo "  **sim. ratio** = simulated / measured. **core bound** = M sum_s (t_f,s + t_b,s) / min(S, cores): no schedule"
    echo "  finishes before its cores have done all the compute; **vs bound** = max(ideal, core bound) / measured, the"
    echo "  ratio to what this machine allows (equal to ratio where S <= cores). **vs M = 1** = the measured time at M = 1"
    echo "  (same S and schedule) / the measured time at this M: above 1 the micro-batches made the mini-batch faster, below"
    echo "  1 slower (small micro-batches use the cores less well). The goal (ratio >= 0.9) is about the schedule only: how"
    echo "  close it comes to the ideal for the stage times it measured; whether more micro-batches pay is this column."
    echo "- **measured bubble**: per rank and mini-batch, 1 - (forward + backward time) / (time from the start of the"
    echo "  mini-batch's schedule to its end), averaged over mini-batches; listed per stage. The Chrome traces of the runs"
    echo "  are in \`$WORK/*.trace.json\` (chrome://tracing or ui.perfetto.dev)."
    if grep -qw 4 <<<"$STAGES" && [ "$CORES" -lt 4 ]; then
        echo "- **S = 4 runs 4 ranks on $CORES cores: oversubscribed.** At most $CORES stages compute at once, so the"
        echo "  per-stage times measured in the run include time-sharing of the cores; the ratio stays meaningful only"
        echo "  because ideal and measured come from the same run. The run sees the node oversubscribed and its waiting"
        echo "  ranks sleep between polls (IdleWait.Sleep) instead of busy-polling in MPI_Wait, so they leave the cores to the"
        echo "  stages that compute. The ideal assumes all S stages compute at once, which $CORES cores cannot do: these rows"
        echo "  are shown, not judged (verdict column); the core bound is what this machine allows (it uses the stages'"
        echo "  wall times, which time-sharing stretches, so it is a lenient bound)."
    fi
    echo
    echo "| S | schedule | M | micro-batch | t_f + t_b per stage (ms) | ideal (ms) | simulated (ms) | core bound (ms) | measured (ms) | vs M = 1 | ratio | best | verdict | sim. ratio | vs bound | bubble (S-1)/(M+S-1) | measured bubble per stage | peak activations per stage | load |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for s in $STAGES; do
        for schedule in $SCHEDULES; do
            unpipelined=""
            for m in $MICRO_BATCHES; do
                rows=()
                for round in $(seq 1 "$ROUNDS"); do
                    name="S$s-$schedule-M$m-r$round"
                    rows+=("$(jq -r '.pipeline | "\(.idealSecondsPerMiniBatch / .secondsPerMiniBatch)"' "$WORK/$name.json") $name")
                done
                sorted=$(printf '%s\n' "${rows[@]}" | sort -g)
                median=$(sed -n "$(( (ROUNDS + 1) / 2 ))p" <<<"$sorted" | cut -d' ' -f2)
                best=$(tail -n 1 <<<"$sorted" | cut -d' ' -f1)
                f="$WORK/$median.json"
                read -r ratio ideal simulated measured bubble microbatch bound < <(jq -r --argjson cores "$CORES" '.pipeline |
                    ([.forwardSecondsPerMicroBatch, .backwardSecondsPerMicroBatch] | transpose | map(.[0] + .[1]) | add) as $work |
                    "\(.idealSecondsPerMiniBatch / .secondsPerMiniBatch) \(.idealSecondsPerMiniBatch) \(.simulatedSecondsPerMiniBatch) \(.secondsPerMiniBatch) \(.bubbleFraction) \(.microBatchSize) \($work * .microBatches / ([.stages, $cores] | min))"' "$f")
                stage_times=$(jq -r '.pipeline | [.forwardSecondsPerMicroBatch, .backwardSecondsPerMicroBatch] | transpose | map((.[0] + .[1]) * 1000 * 100 | round / 100 | tostring) | join(", ")' "$f")
                measured_bubble=$(jq -r '.pipeline.measuredBubblePerStage | map(. * 100 | round | tostring + "%") | join(", ")' "$f")
                peaks=$(jq -r '.pipeline.peakActivationsPerStage | map(tostring) | join(", ")' "$f")
                if [ "$m" = 1 ]; then unpipelined=$measured; fi
                vs_one=$(awk -v a="$unpipelined" -v b="$measured" 'BEGIN { if (a == "") print "-"; else printf "%.2f", a / b }')
                # With more stages than cores the ideal (every stage computing at once) cannot be reached at all.
                verdict=$(awk -v r="$ratio" -v s="$s" -v c="$CORES" \
                    'BEGIN { print (s > c ? "not judged: " s " ranks on " c " cores" : r >= 0.9 ? "ok" : "below 0.9") }')
                printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f | %s | %.2f | %.2f | %s | %s | %s | %s |\n' \
                    "$s" "$schedule" "$m" "$microbatch" "$stage_times" "$(ms "$ideal")" "$(ms "$simulated")" "$(ms "$bound")" "$(ms "$measured")" "$vs_one" \
                    "$ratio" "$best" "$verdict" "$(awk -v a="$simulated" -v b="$measured" 'BEGIN { print a / b }')" \
                    "$(awk -v i="$ideal" -v c="$bound" -v b="$measured" 'BEGIN { print (i > c ? i : c) / b }')" \
                    "$(pct "$bubble")" "$measured_bubble" "$peaks" "$(cat "$WORK/$median.load")"
            done
        done
    done
    if [ -f "$NOTES" ]; then echo; cat "$NOTES"; fi
} >"$table"
atomic_commit "$table" "$OUT"
echo "pipeline-bench: wrote $OUT" >&2
