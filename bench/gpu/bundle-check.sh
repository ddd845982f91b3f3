#!/usr/bin/env bash
# Proof that the device bundle needs neither the machine's MPI nor its .NET: the packed bundle unpacked into a fresh
# directory elsewhere, then in an environment cleared of everything (env -i) but a PATH without dotnet or any MPI
# launcher and the bundle's env.sh: `mpipipe info` and a 2-rank `train --max-steps 20` through the bundle's mpiexec.
# The bridge is this machine's CPU build (the bundle carries sources only; on the GPU machine check.sh builds one).
# LD_DEBUG=libs records every shared object each process loaded: none may come from the system's MPI or .NET.
#   bundle-check.sh BUNDLE.tar.gz
set -euo pipefail
archive=${1:?usage: bundle-check.sh BUNDLE.tar.gz}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bridge=$repo/build/native/libmpp_bridge.so
work=$(mktemp -d /tmp/bundle-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$archive"
bundle=$work/device-bundle
mkdir -p "$work/bin" && for tool in bash env grep cat tail mktemp dirname; do ln -s "$(command -v $tool)" "$work/bin/"; done
run() {
    env -i HOME="$work" PATH="$work/bin" MPIPIPE_TORCH_BRIDGE="$bridge" LD_DEBUG=libs LD_DEBUG_OUTPUT="$work/ld" \
        bash -c "source '$bundle/env.sh' && $*"
}
echo "bundle-check: info"
run mpipipe info | tee "$work/info.txt"
grep -q "$bundle/lib/libmpich.so.12" "$work/info.txt" || { echo "bundle-check: info does not name the bundle's MPI library" >&2; exit 1; }
echo "bundle-check: 2 ranks, train --max-steps 20"
run bundle_mpiexec -n 2 mpipipe train --algo psgd --model mlp --dataset synthetic:1x28x28:10 --train-samples 1024 \
    --test-samples 256 --batch 64 --max-steps 20 --threads 1 --output "$work/train.json" | tail -3
[ -s "$work/train.json" ] || { echo "bundle-check: no results from the 2-rank run" >&2; exit 1; }
# Every object the dynamic linker opened, across all processes (mpiexec, proxies, ranks).
loaded=$(cat "$work"/ld.* | sed -n 's/.*calling init: \(.*\)/\1/p' | sort -u)
echo "bundle-check: $(echo "$loaded" | wc -l) shared objects loaded; from the bundle: $(echo "$loaded" | grep -c "^$bundle/" || true)"
system=$(echo "$loaded" | grep -E 'mpich|openmpi|libmpi|hydra|/usr/share/dotnet|/usr/lib/dotnet|libcoreclr|libhostfxr|libucp|libucs|libuct' | grep -v "^$bundle/" || true)
if [ -n "$system" ]; then
    echo "bundle-check: loaded from outside the bundle:" >&2; echo "$system" >&2; exit 1
fi
echo "bundle-check: MPI and .NET came from the bundle only"
