#!/usr/bin/env bash
# Speed of two builds of mpipipe on the `make run` job (PSGD, cnn, 2 epochs, 4 ranks, MPICH, localhost hostfile),
# alternated A B A B ... so that a slow spell of the machine falls on both. Prints each run's training samples/s
# (samples over training time, the epochs' samplesPerSecond weighted by their seconds) and the medians.
# Usage: bench/training-loop/compare-builds.sh BEFORE_BIN AFTER_BIN [ROUNDS=3] [OUTDIR]
set -euo pipefail
before=$1 after=$2 rounds=${3:-3} out=${4:-$(mktemp -d)}
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
run() { # name bin round
    HYDRA_IFACE=lo mpiexec.mpich -f "$repo/hostfiles/localhost.mpich" -n 4 "$2" train --algo psgd --model cnn --epochs 2 \
        --output "$out/$1-$3.json" > "$out/$1-$3.log" 2>&1
    python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["epochs"]; print(round(sum(x["samplesPerSecond"]*x["seconds"] for x in e)/sum(x["seconds"] for x in e)))' "$out/$1-$3.json"
}
declare -a b a
for r in $(seq 1 "$rounds"); do
    b+=("$(run before "$before" "$r")"); a+=("$(run after "$after" "$r")")
    echo "round $r: before ${b[-1]} samples/s, after ${a[-1]} samples/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
mb=$(median "${b[@]}") ma=$(median "${a[@]}")
echo "median: before $mb samples/s, after $ma samples/s, after/before $(python3 -c "print(f'{$ma/$mb:.3f}')")"
