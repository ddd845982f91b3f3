#!/usr/bin/env bash
# Runs the C baseline (mpi_bench.<mpi>) and `mpipipe bench mpi --raw` side by side on 2 ranks, under MPICH and
# Open MPI, and writes a Markdown report. Each round runs, per operation, C and C# back to back (odd rounds C first,
# even rounds C# first), so both see the same machine state as nearly as possible. Per MPI, operation and size the
# report gives the median over rounds of each run's median, C#/C, the difference, and the verdict against the goal
# (C#/C <= 1.03 at >= 64 KiB; C# - C <= 1 us at 8 B), plus the same ratio for the best runs. An A/A control runs the C
# baseline a second time in every round ("C again"): where C again / C is itself off by more than 3 %, a C#/C above
# 1.03 but inside that band is "within noise", not a miss (two identical C runs differed by up to 3 % in 8 of 10
# back-to-back pairs at 64 MiB: bench/mpi/notes.md, "Large Allreduce").
# Called by `make bench` (mk/bench-mpi.mk), which sets the variables below; bench/mpi/notes.md is appended.
set -euo pipefail

BENCH_DIR=${BENCH_DIR:?directory holding mpi_bench.mpich and mpi_bench.openmpi}
MPIPIPE=${MPIPIPE:?path of the mpipipe executable}
ROUNDS=${ROUNDS:-9}
RANKS=${RANKS:-2}
OUT=${OUT:-bench/results/mpi.md}
BENCH_ARGS=${BENCH_ARGS:-}
BENCH_COMMAND=${BENCH_COMMAND:-bash bench/mpi/compare.sh}
FLAVORS=${FLAVORS:-mpich openmpi}
OPS=${OPS:-pingpong allreduce}
NOTES=${NOTES:-$(dirname "$0")/notes.md}

raw=$BENCH_DIR/raw
rm -rf "$raw"
mkdir -p "$raw" "$(dirname "$OUT")"
. "$(dirname "$0")/../atomic.sh"
atomic_temp table "$OUT"
read -r -a args <<<"$BENCH_ARGS"

launcher() {
    case $1 in
        mpich) echo "env HYDRA_IFACE=lo mpiexec.mpich -n $RANKS" ;;
        openmpi) echo "env TERM=dumb mpirun.openmpi --allow-run-as-root --oversubscribe -n $RANKS" ;;
        *) echo "unknown MPI '$1'" >&2; exit 2 ;;
    esac
}

# run MPI LANG ROUND OP: one run of one operation; its output goes to $raw/MPI.LANG.ROUND.OP
run() {
    local mpi=$1 lang=$2 round=$3 op=$4 program
    read -r -a launch <<<"$(launcher "$mpi")"
    if [ "$lang" = cs ]; then program=("$MPIPIPE" bench mpi --raw); else program=("$BENCH_DIR/mpi_bench.$mpi"); fi
    echo "bench-mpi: $mpi round $round/$ROUNDS $op: $lang" >&2
    cut -d' ' -f1 /proc/loadavg >>"$raw/loads"
    "${launch[@]}" "${program[@]}" --ops "$op" ${args[@]+"${args[@]}"} >"$raw/$mpi.$lang.$round.$op"
}

# What else used the CPU when the runs started (other users' builds and tests make a 2-core machine noisy).
busy_before=$(top -b -n 1 -o %CPU 2>/dev/null | awk 'NR > 7 && $9 + 0 >= 10 { printf "%s%s %s%%", sep, $12, $9; sep = ", " }')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
for mpi in $FLAVORS; do
    for round in $(seq 1 "$ROUNDS"); do
        for op in $OPS; do
            # The three orders in turn, so each of C, C# and C again runs first, second and third equally often.
            case $((round % 3)) in
                1) run "$mpi" c "$round" "$op"; run "$mpi" cs "$round" "$op"; run "$mpi" cc "$round" "$op" ;;
                2) run "$mpi" cs "$round" "$op"; run "$mpi" cc "$round" "$op"; run "$mpi" c "$round" "$op" ;;
                0) run "$mpi" cc "$round" "$op"; run "$mpi" c "$round" "$op"; run "$mpi" cs "$round" "$op" ;;
            esac
        done
    done
done
elapsed=$(( $(date +%s) - started ))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
first() { ls "$raw/$1".* | head -n 1; }

{
    echo "# MPI binding vs C: \`mpipipe bench mpi\` against the same loops in C"
    echo
    echo "Made by \`$BENCH_COMMAND\` (bench/mpi/compare.sh via mk/bench-mpi.mk) on $(date -u '+%Y-%m-%d %H:%M UTC'), in ${elapsed} s."
    echo
    echo "- machine: $(nproc) cores, ${cpu:-unknown CPU}, $(uname -sr); load average (1, 5, 15 min) ${load_before} before, ${load_after} after"
    echo "- load average (1 min; this benchmark's own 2 busy ranks count about 2) when each run started: $(sort -n "$raw/loads" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print "lowest " lo ", highest " hi }')"
    echo "- other processes using >= 10% CPU at the start: ${busy_before:-none}"
    echo "- .NET SDK $(dotnet --version 2>/dev/null || echo unknown); C: $(mpicc.mpich --version 2>/dev/null | head -n 1), -O2"
    for mpi in $FLAVORS; do
        echo "- $mpi: $(sed -n 's/^# mpi_bench (C) ranks=[0-9]* library: //p' "$(first "$mpi.c")");" \
            "C baseline $(sed -n 's/^# thread level provided: //p' "$(first "$mpi.c")"), as the binding"
    done
    echo "- each run: $RANKS ranks, one operation; C: \`$(launcher mpich) $BENCH_DIR/mpi_bench.mpich --ops OP${BENCH_ARGS:+ $BENCH_ARGS}\`,"
    echo "  C#: \`$(launcher mpich) $MPIPIPE bench mpi --raw --ops OP${BENCH_ARGS:+ $BENCH_ARGS}\`"
    echo "  (Open MPI: \`$(launcher openmpi)\`, mpi_bench.openmpi); $ROUNDS rounds per MPI; per round and operation C, C# and"
    echo "  the C baseline again (the A/A control) back to back, the three orders in turn"
    echo "- in a run, per size: max(1, ops/10) warm-up ops, then $(grep -o -- '--samples [0-9]*' <<<"$BENCH_ARGS" | cut -d' ' -f2 || echo 21) samples of ops = max(1, floor(min(1000, 4 MiB/size)))"
    echo "  operations, each sample after a barrier, timed by MPI_Wtime, slowest rank; ping-pong time is one way (half a round trip)"
    echo "- columns: median over the $ROUNDS runs of each run's median, in us; C#/C; C# - C in us; goal: C#/C <= 1.03 at >= 64 KiB,"
    echo "  C# - C <= 1 us at 8 B (no goal between); 'best runs': the smallest run median of C# over that of C;"
    echo "  'C again / C': the A/A control, the noise of this machine at that size: a C#/C above 1.03 is 'within noise'"
    echo "  when it is no further from 1 than C again / C (or its inverse) is, and **missed** otherwise"
    echo
} >"$table"

# Raw lines: "op size min median"; the file name says MPI and language.
for f in "$raw"/*.*.*.*; do
    name=$(basename "$f")
    awk -v tag="$name" '!/^#/ && NF == 4 { print tag, $0 }' "$f"
done | awk -v flavors="$FLAVORS" -v ops="$OPS" '
function sortnum(v, n,   i, j, x) {
    for (i = 2; i <= n; i++) { x = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
}
function median(list,   n, v) {
    n = split(list, v, " "); sortnum(v, n)
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function smallest(list,   n, v) { n = split(list, v, " "); sortnum(v, n); return v[1] + 0 }
function label(b) {
    if (b >= 1048576 && b % 1048576 == 0) return (b / 1048576) " MiB"
    if (b >= 1024 && b % 1024 == 0) return (b / 1024) " KiB"
    return b " B"
}
function judge(size, ratio, diff) {
    if (size >= 65536) return ratio <= 1.03
    return diff <= 1.0
}
function band(aa) { return aa >= 1 ? aa : (aa > 0 ? 1 / aa : 1) }
{
    split($1, parts, "."); mpi = parts[1]; lang = parts[2]; op = $2; size = $3 + 0
    key = mpi SUBSEP op SUBSEP size
    medians[key, lang] = medians[key, lang] " " $5
    if (!((mpi, op, size) in seen)) { seen[mpi, op, size] = 1; sizes[mpi, op] = sizes[mpi, op] " " size }
}
END {
    nf = split(flavors, fl, " "); no = split(ops, opl, " ")
    for (f = 1; f <= nf; f++) for (o = 1; o <= no; o++) {
        mpi = fl[f]; op = opl[o]
        ns = split(sizes[mpi, op], sl, " "); sortnum(sl, ns)
        body = body sprintf("\n## %s, %s\n\n", mpi, op)
        body = body "| size | C median us | C# median us | C#/C | C# - C us | goal | verdict | C#/C, best runs | C again / C |\n"
        body = body "|---:|---:|---:|---:|---:|---|---|---:|---:|\n"
        met = 0; noise = 0; goals = 0; bestmet = 0; missed = ""
        for (i = 1; i <= ns; i++) {
            size = sl[i] + 0; key = mpi SUBSEP op SUBSEP size
            if (!((key, "c") in medians) || !((key, "cs") in medians)) continue
            c = median(medians[key, "c"]); cs = median(medians[key, "cs"])
            cb = smallest(medians[key, "c"]); csb = smallest(medians[key, "cs"])
            ratio = c > 0 ? cs / c : 0; diff = cs - c; bratio = cb > 0 ? csb / cb : 0
            aa = ((key, "cc") in medians) && c > 0 ? median(medians[key, "cc"]) / c : 0
            goal = "-"; verdict = ""
            if (size >= 65536 || size == 8) {
                goal = size == 8 ? "<= +1 us" : "<= 1.03x"; goals++
                if (judge(size, ratio, diff)) { met++; verdict = "met" }
                else if (size >= 65536 && aa > 0 && ratio <= band(aa)) { noise++; verdict = "within noise" }
                else { verdict = "**missed**"; missed = missed ", " label(size) }
                if (judge(size, bratio, csb - cb)) bestmet++
            }
            body = body sprintf("| %s | %.3f | %.3f | %.3f | %+.3f | %s | %s | %.3f | %s |\n", label(size), c, cs, ratio, diff, goal, verdict, bratio, aa > 0 ? sprintf("%.3f", aa) : "-")
        }
        summary = summary sprintf("| %s | %s | %d of %d | %d | %s | %d of %d |\n", mpi, op, met, goals, noise, missed == "" ? "-" : substr(missed, 3), bestmet, goals)
    }
    print "## Summary\n"
    print "| MPI | op | goals met (medians) | within noise (A/A) | missed at | goals met (best runs) |"
    print "|---|---|---|---|---|---|"
    printf "%s", summary
    printf "%s", body
}' >>"$table"

if [ -f "$NOTES" ]; then
    { echo; cat "$NOTES"; } >>"$table"
fi
atomic_commit "$table" "$OUT"
echo "bench-mpi: wrote $OUT" >&2
awk '/^## Summary/ { p = 1 } /^## [a-z]+, / { p = 0 } p' "$OUT" >&2
