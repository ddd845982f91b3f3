#!/usr/bin/env bash
# Runs the C baseline (mpi_bench.<mpi>) and `mpipipe bench mpi --raw` side by side on 2 ranks, under MPICH and
# Open MPI, and writes a Markdown report. Each round runs, per operation, C and C# back to back (odd rounds C first,
# even rounds C# first), so both see the same machine state as nearly as possible. Per MPI, operation and size the
# report gives the median over rounds of each run's median, C#/C, the difference, and the verdict against the goal
# (C#/C <= 1.03 at >= 64 KiB; at 8 B both C# - C <= 1 us and C#/C <= 1.25, since 1 us alone would accept 6x on a
# 0.18 us baseline), plus the same ratio for the best runs. An A/A control runs the C baseline a second time in every
# round ("C again"): where C again / C is itself off by more than 3 %, a C#/C above 1.03 but inside that band is
# "within noise", not a miss (two identical C runs differed by up to 3 % in 8 of 10 back-to-back pairs at 64 MiB:
# bench/mpi/notes.md, "Large Allreduce"). The band is capped at NOISE_CAP (1.10): a round whose control is off by more
# than that says the machine was too noisy, which must not turn a 1.4x into "within noise".
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
NOISE_CAP=${NOISE_CAP:-1.10}
SMALL_RATIO_CAP=${SMALL_RATIO_CAP:-1.25}
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
    echo "  C# - C <= 1 us and C#/C <= $SMALL_RATIO_CAP at 8 B (no goal between); 'best runs': the smallest run median of C# over that of C;"
    echo "  'C again / C': the A/A control, the noise of this machine at that size: a C#/C above 1.03 is 'within noise'"
    echo "  when it is no further from 1 than C again / C (or its inverse) is, and never above $NOISE_CAP (the band's cap), and"
    echo "  **missed** otherwise"
    echo
} >"$table"

# Raw lines: "op size min median"; the file name says MPI and language.
for f in "$raw"/*.*.*.*; do
    name=$(basename "$f")
    awk -v tag="$name" '!/^#/ && NF == 4 { print tag, $0 }' "$f"
done | awk -v flavors="$FLAVORS" -v ops="$OPS" -v noise_cap="$NOISE_CAP" -v small_cap="$SMALL_RATIO_CAP" \
    -f "$(dirname "$0")/report.awk" >>"$table"

if [ -f "$NOTES" ]; then
    { echo; cat "$NOTES"; } >>"$table"
fi
atomic_commit "$table" "$OUT"
echo "bench-mpi: wrote $OUT" >&2
awk '/^## Summary/ { p = 1 } /^## [a-z]+, / { p = 0 } p' "$OUT" >&2
