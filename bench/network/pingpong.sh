#!/usr/bin/env bash
# `make bench-network`'s default: a 2-rank ping-pong (`mpipipe bench mpi --ops pingpong`, 1 to 4 MiB) inside the
# emulated network, for MPICH and Open MPI, each size's median rate set against the link's.
#   bench/network/pingpong.sh RATE [DELAY]       e.g. 1gbit 50us; RATE none: unshaped TCP loopback
# Environment: MPIPIPE (the program; default the Release build), SAMPLES (default 9).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rate=${1:?usage: pingpong.sh RATE [DELAY]}
delay=${2:-}
mpipipe=${MPIPIPE:-$repo/src/MpiPipeline.Cli/bin/Release/net10.0/mpipipe}
[ -x "$mpipipe" ] || { echo "pingpong.sh: $mpipipe not found: run 'make build' first (or set MPIPIPE)" >&2; exit 1; }
bench=("$mpipipe" bench mpi --ops pingpong --min-size 1MiB --max-size 4MiB --samples "${SAMPLES:-9}" --iterations 0.5 --raw)
# The link in MB/s (10^6 B/s) from tc's words, empty when unshaped.
link=$(awk -v r="$rate" 'BEGIN { if (r == "none") exit; n = r + 0; u = tolower(r); sub(/^[0-9.]+/, "", u);
    m = (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : (u == "gbit") ? 1e9 : (u == "tbit") ? 1e12 : 1; printf "%.1f\n", n * m / 8e6 }')

emulate=("$here/emulate.sh" --rate "$rate" ${delay:+--delay "$delay"})
# Refuses here, with the script's message and exit code, where the network cannot be made.
"${emulate[@]}" --check 2>&1 | sed 's/^emulate.sh: network: /network: /'
printf '\n| MPI | size | median µs (one way) | MB/s (median) | link MB/s | of the link |\n|---|---:|---:|---:|---:|---:|\n'
for mpi in mpich openmpi; do
    case $mpi in
        mpich)   launch=(mpiexec.mpich -n 2) ;;
        openmpi) launch=(mpirun.openmpi --oversubscribe -n 2) ;;
    esac
    "${emulate[@]}" --quiet -- "${launch[@]}" "${bench[@]}" |
        awk -v mpi="$mpi" -v link="$link" '$1 == "pingpong" {
            mbs = $2 / $4; of = link == "" ? "-" : sprintf("%.0f%%", 100 * mbs / link);
            printf "| %s | %d MiB | %.0f | %.1f | %s | %s |\n", mpi, $2 / 1048576, $4, mbs, link == "" ? "-" : link, of }'
done
