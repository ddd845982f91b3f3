#!/usr/bin/env bash
# Runs the pure C++ libtorch loop (bridge_bench) and `mpipipe bench bridge` side by side, one process per run, for
# each model and thread count, and writes a Markdown report. Each round runs, per (model, threads), C++ and C# back
# to back (odd rounds C++ first, even rounds C# first), so both see the same machine state as nearly as possible.
# Per (model, threads) the report gives the median over rounds of each run's median step time, C#/C++, the verdict
# against the goal (C#/C++ <= 1.03), the same ratio for the means and for the best runs, and whether the summed loss,
# correct count, first loss and data order agree.
# Called by `make bench` (mk/bench-bridge.mk), which sets the variables below; bench/bridge/notes.md is appended.
set -euo pipefail

CPP_BENCH=${CPP_BENCH:?path of the bridge_bench executable}
MPIPIPE=${MPIPIPE:?path of the mpipipe executable}
ROUNDS=${ROUNDS:-6}
OUT=${OUT:-bench/results/bridge.md}
BENCH_ARGS=${BENCH_ARGS:-}
BENCH_COMMAND=${BENCH_COMMAND:-bash bench/bridge/compare.sh}
MODELS=${MODELS:-mlp cnn}
THREADS=${THREADS:-1 2}
# Timed steps per model: enough for a second or more per run (the machine's state drifts over seconds), within
# ~5 minutes for the whole comparison. Warm-up steps per model: at least ~0.3 s, so that .NET's tiered JIT has
# recompiled the hot methods before the timed steps (it waits ~100 ms after their first 30 calls, then compiles in
# the background, taking a CPU from a 2-thread run).
STEPS_mlp=${STEPS_mlp:-1000}
STEPS_cnn=${STEPS_cnn:-200}
WARMUP_mlp=${WARMUP_mlp:-300}
WARMUP_cnn=${WARMUP_cnn:-20}
GOAL=${GOAL:-1.03}
# A loaded 2-core machine can make a 2-thread step 100x slower (OpenMP threads waiting for each other's time slice):
# each run is cut off after RUN_TIMEOUT s (reported as missing), and no new round starts once another one would
# likely end after BUDGET s.
RUN_TIMEOUT=${RUN_TIMEOUT:-90}
BUDGET=${BUDGET:-280}
NOTES=${NOTES:-$(dirname "$0")/notes.md}
RAW=${RAW:-$(dirname "$CPP_BENCH")/bridge-raw}

rm -rf "$RAW"
mkdir -p "$RAW" "$(dirname "$OUT")"
. "$(dirname "$0")/../atomic.sh"
atomic_temp table "$OUT"
read -r -a args <<<"$BENCH_ARGS"

steps_of() { local v="STEPS_$1"; echo "${!v:-300}"; }
warmup_of() { local v="WARMUP_$1"; echo "${!v:-20}"; }

# run LANG MODEL THREADS ROUND: one process; its output goes to $RAW/LANG.MODEL.THREADS.ROUND
run() {
    local lang=$1 model=$2 threads=$3 round=$4 program
    if [ "$lang" = cpp ]; then program=("$CPP_BENCH"); else program=("$MPIPIPE" bench bridge); fi
    echo "bench-bridge: round $round/$ROUNDS $model threads $threads: $lang" >&2
    cut -d' ' -f1 /proc/loadavg >>"$RAW/loads"
    if ! timeout "$RUN_TIMEOUT" "${program[@]}" --model "$model" --threads "$threads" --steps "$(steps_of "$model")" --warmup "$(warmup_of "$model")" \
        ${args[@]+"${args[@]}"} >"$RAW/$lang.$model.$threads.$round"; then
        echo "bench-bridge: $lang $model threads $threads round $round failed or ran past ${RUN_TIMEOUT} s" >&2
        echo "$lang $model $threads $round" >>"$RAW/failed"
    fi
}

busy_before=$(top -b -n 1 -o %CPU 2>/dev/null | awk 'NR > 7 && $9 + 0 >= 10 { printf "%s%s %s%%", sep, $12, $9; sep = ", " }')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
rounds_done=0
for round in $(seq 1 "$ROUNDS"); do
    for model in $MODELS; do
        for threads in $THREADS; do
            if [ $((round % 2)) = 1 ]; then run cpp "$model" "$threads" "$round"; run cs "$model" "$threads" "$round"
            else run cs "$model" "$threads" "$round"; run cpp "$model" "$threads" "$round"; fi
        done
    done
    rounds_done=$round
    elapsed=$(( $(date +%s) - started ))
    if [ "$round" -lt "$ROUNDS" ] && [ $(( elapsed + elapsed / round )) -gt "$BUDGET" ]; then
        echo "bench-bridge: stopping after $round of $ROUNDS rounds (${elapsed} s; budget ${BUDGET} s)" >&2
        break
    fi
done
elapsed=$(( $(date +%s) - started ))
failed=""
[ -f "$RAW/failed" ] && failed=$(paste -sd ';' "$RAW/failed" | sed 's/;/; /g')
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
busy_after=$(top -b -n 1 -o %CPU 2>/dev/null | awk 'NR > 7 && $9 + 0 >= 10 { printf "%s%s %s%%", sep, $12, $9; sep = ", " }')

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
first() { ls "$RAW/$1".* | head -n 1; }
comment() { sed -n "s/^# //p" "$(first "$1")" | sed -n "${2}p"; }

{
    echo "# libtorch bridge vs pure C++: \`mpipipe bench bridge\` against the same training loop in C++"
    echo
    echo "Made by \`$BENCH_COMMAND\` (bench/bridge/compare.sh via mk/bench-bridge.mk) on $(date -u '+%Y-%m-%d %H:%M UTC'), in ${elapsed} s."
    echo
    echo "- machine: $(nproc) cores, ${cpu:-unknown CPU}, $(uname -sr); load average (1, 5, 15 min) ${load_before} before, ${load_after} after"
    echo "- load average (1 min; the benchmark itself counts 1-2) when each run started: $(sort -n "$RAW/loads" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print "lowest " lo ", highest " hi }')"
    echo "- other processes using >= 10% CPU: at the start ${busy_before:-none}; at the end ${busy_after:-none}"
    echo "- C++: $(comment cpp 2); $(g++ --version 2>/dev/null | head -n 1), CMake Release (-O3)"
    echo "- C#: .NET SDK $(dotnet --version 2>/dev/null || echo unknown); $(comment cs 2)"
    echo "- each run: one process, ${WARMUP_mlp} + ${STEPS_mlp} (mlp) / ${WARMUP_cnn} + ${STEPS_cnn} (cnn) warm-up + timed steps, batch 128,"
    echo "  SGD lr 0.05 momentum 0.9, seed 1, Fashion-MNIST in the order of \`Shuffle.Permutation(60000, seed, epoch)\`;"
    echo "  C++: \`$CPP_BENCH --model M --threads T --steps S --warmup W${BENCH_ARGS:+ $BENCH_ARGS}\`,"
    echo "  C#: \`$MPIPIPE bench bridge --model M --threads T --steps S --warmup W${BENCH_ARGS:+ $BENCH_ARGS}\` (MPI singleton, no mpiexec);"
    echo "  $rounds_done of $ROUNDS rounds ran$([ "$rounds_done" -lt "$ROUNDS" ] && echo " (stopped at the ${BUDGET} s budget)"), C++ and C# back to back per (model, threads), order alternating;"
    echo "  runs that failed or ran past ${RUN_TIMEOUT} s (lang model threads round): ${failed:-none}"
    echo "- a step: sampler + batch gather, zero gradients, forward, cross-entropy, backward, loss and correct count read"
    echo "  back, SGD step. C++: \`index_select\`, \`torch::optim::SGD\` on the model's parameters. C#: \`Worker.ComputeGradient\`"
    echo "  (sampler, \`TorchRuntime.GatherRows\` (index_select in the bridge), \`ManualSeed\`, \`ZeroGradients\`, \`Stage.ForwardLossBackward\`) + \`Worker.OptimizerStep\`"
    echo "  (the bridge's SGD on the flat buffers)"
    echo "- columns: median over the runs of each run's median step time (ms); C#/C++; goal C#/C++ <= $GOAL;"
    echo "  'means': the same ratio for each run's mean step time; 'fastest steps': for each run's fastest step (the"
    echo "  least disturbed by other processes), median over the runs, C# over C++; batch gather: the mean time per step of"
    echo "  the sampler and the batch gather (C++: \`index_select\`; C#: \`TorchRuntime.GatherRows\` + labels), median over the runs; runs: C++ + C#"
    echo "  loss: the summed training loss over the timed steps (printed to 10 decimals), C++ vs C#, and the correct"
    echo "  predictions summed over them; the data-order fingerprint (FNV-1a of every sample index) must match"
    echo
} >"$table"

# Result lines: "model threads batch steps mean_ms median_ms min_ms loss_sum correct_sum first_loss order".
for f in "$RAW"/cpp.* "$RAW"/cs.*; do
    name=$(basename "$f")
    gather=$(sed -n 's/^# per timed step: .* \([0-9.]*\) us (mean)$/\1/p' "$f")
    awk -v tag="$name" -v gather="${gather:-0}" '!/^#/ && NF == 11 && $1 != "model" { print tag, $0, gather }' "$f"
done | awk -v models="$MODELS" -v threadlist="$THREADS" -v goal="$GOAL" '
function sortnum(v, n,   i, j, x) {
    for (i = 2; i <= n; i++) { x = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
}
function median(list,   n, v) {
    n = split(list, v, " "); sortnum(v, n)
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function distinct(list,   n, v, i, seen, out) {
    n = split(list, v, " "); out = ""
    for (i = 1; i <= n; i++) if (!(v[i] in seen)) { seen[v[i]] = 1; out = out (out == "" ? "" : ", ") v[i] }
    return out
}
# Leading characters two decimal strings share (the agreement in digits).
function common(a, b,   i) { for (i = 1; i <= length(a) && substr(a, i, 1) == substr(b, i, 1); i++); return i - 1 }
{
    split($1, parts, "."); lang = parts[1]; key = $2 SUBSEP $3
    means[key, lang] = means[key, lang] " " $6
    medians[key, lang] = medians[key, lang] " " $7
    mins[key, lang] = mins[key, lang] " " $8
    losses[key, lang] = losses[key, lang] " " $9
    corrects[key, lang] = corrects[key, lang] " " $10
    firsts[key, lang] = firsts[key, lang] " " $11
    orders[key, lang] = orders[key, lang] " " $12
    gathers[key, lang] = gathers[key, lang] " " $13
    runs[key, lang]++
    steps[key] = $5
}
END {
    nm = split(models, ml, " "); nt = split(threadlist, tl, " ")
    print "| model | threads | steps | C++ ms/step | C# ms/step | C#/C++ | goal | verdict | C#/C++ means | C#/C++ fastest steps | batch gather us C++ / C# | runs |"
    print "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|"
    for (m = 1; m <= nm; m++) for (t = 1; t <= nt; t++) {
        key = ml[m] SUBSEP tl[t]
        if (!((key, "cpp") in runs) || !((key, "cs") in runs)) {
            printf "| %s | %s | | | | | | **no result** | | | | |\n", ml[m], tl[t]; continue
        }
        c = median(medians[key, "cpp"]); s = median(medians[key, "cs"])
        r = s / c; rm = median(means[key, "cs"]) / median(means[key, "cpp"])
        rb = median(mins[key, "cs"]) / median(mins[key, "cpp"])
        printf "| %s | %s | %s | %.3f | %.3f | %.3f | <= %s | %s | %.3f | %.3f | %.1f / %.1f | %d + %d |\n", ml[m], tl[t], steps[key],
            c, s, r, goal, r <= goal + 0 ? "met" : "**missed**", rm, rb, median(gathers[key, "cpp"]), median(gathers[key, "cs"]),
            runs[key, "cpp"], runs[key, "cs"]
    }
    print ""
    print "### Loss agreement (over the timed steps)"
    print ""
    print "| model | threads | C++ loss sum | C# loss sum | same digits | C++ correct | C# correct | first loss C++ / C# | data order |"
    print "|---|---:|---:|---:|---:|---:|---:|---|---|"
    for (m = 1; m <= nm; m++) for (t = 1; t <= nt; t++) {
        key = ml[m] SUBSEP tl[t]
        if (!((key, "cpp") in runs) || !((key, "cs") in runs)) continue
        lc = distinct(losses[key, "cpp"]); ls = distinct(losses[key, "cs"])
        split(lc, a, ", "); split(ls, b, ", ")
        same = a[1] == b[1] ? "all " length(a[1]) : common(a[1], b[1]) " of " length(a[1])
        oc = distinct(orders[key, "cpp"]); os = distinct(orders[key, "cs"])
        printf "| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |\n", ml[m], tl[t], lc, ls, same,
            distinct(corrects[key, "cpp"]), distinct(corrects[key, "cs"]), distinct(firsts[key, "cpp"]), distinct(firsts[key, "cs"]),
            oc == os && index(oc, ",") == 0 ? "same (" oc ")" : "**differs**: " oc " vs " os
    }
}' >>"$table"

if [ -f "$NOTES" ]; then
    { echo; cat "$NOTES"; } >>"$table"
fi
atomic_commit "$table" "$OUT"
echo "bench-bridge: wrote $OUT" >&2
sed -n '/^| model | threads | steps/,/^$/p' "$OUT" >&2
