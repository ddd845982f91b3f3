#!/usr/bin/env bash
# The one-shot CUDA check (issue 22), on a GPU machine that has bash, CMake, a C++ compiler, nvcc and python3 with a
# CUDA PyTorch, but no .NET and no MPI: everything else comes in the device bundle (make device-bundle). Steps, each
# with its own time limit, the whole under 6 minutes; every step writes its log under $OUT as it ends and adds its line
# to $OUT/summary.md, so a run cut short still leaves what it did:
#   1 unpack the bundle               5 bench bridge, cnn and a larger model, on the device
#   2 torch, CUDA, GPU facts           6 the same steps in PyTorch eager (eager_step.py): identical model, batch, optimizer
#   3 the bridge against that torch    7 PSGD, 1 rank and 2 ranks (both on the one device), synthetic Fashion-MNIST-shaped data
#   4 mpipipe info
# --cpu-dry-run: the same steps on this CPU machine with Debian's libtorch (no nvcc, device cpu, a few steps each);
# the eager step is skipped with a note where python3 has no torch.
#   bench/gpu/check.sh [--cpu-dry-run] [--bundle build/device-bundle.tar.gz | DIR] [--bridge BUILT.so]
# (OUT: default build/gpu-check; --bridge: a bridge built already, the build step skipped - the test's dry run)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dry=0
bridge_built=
bundle=$repo/build/device-bundle.tar.gz
while [ $# -gt 0 ]; do
    case $1 in
        --cpu-dry-run) dry=1 ;;
        --bundle) bundle=${2:?--bundle needs a path}; shift ;;
        --bridge) bridge_built=${2:?--bridge needs a path}; shift ;;
        *) echo "check.sh: unknown argument '$1' (--cpu-dry-run, --bundle PATH, --bridge PATH)" >&2; exit 2 ;;
    esac
    shift
done
OUT=${OUT:-$repo/build/gpu-check}
mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/mpipipe-gpu-check.XXXXXX")
started=$(date +%s)
budget=${CHECK_BUDGET_S:-340}   # under 6 minutes with the unpacking and start-up around it
failures=0
summary=$OUT/summary.md

if [ $dry = 1 ]; then
    device=cpu; steps=5; warmup=2; large=deep-mlp:3:512; psgd_steps=10; python_torch=$(command -v python3)
    # The CPU stages take the GPU run's path: gradients staged through separate host mirrors at 2 ranks.
    export MPIPIPE_FORCE_STAGING=1
else
    device=cuda:0; steps=200; warmup=20; large=deep-mlp:8:2048; psgd_steps=300; python_torch=$(command -v python3)
fi
{
    echo "# bench/gpu/check.sh $( [ $dry = 1 ] && echo '--cpu-dry-run' ) - $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "| step | status | seconds | result |"
    echo "|---|---|---|---|"
} > "$summary"

# step NAME LIMIT_S COMMAND...: runs it with its output in $OUT/NAME.log, adds the summary line (its last output line).
step() {
    local name=$1 limit=$2; shift 2
    local left=$((budget - ($(date +%s) - started)))
    if [ "$left" -lt 10 ]; then
        echo "| $name | skipped | 0 | the check's ${budget} s budget is spent |" >> "$summary"
        failures=$((failures + 1)); return 1
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local t0=$(date +%s) rc
    # Through bash, so that a step may be one of the functions below (exported with the variables they read).
    timeout --kill-after=5 "$limit" bash -c '"$@"' "$name" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    local last; last=$(grep -v '^\s*$' "$OUT/$name.log" | tail -1 | tr '|' '/' | cut -c1-240)
    local status=ok
    if [ $rc = 124 ] || [ $rc = 137 ]; then status="timed out (${limit} s)"; elif [ $rc != 0 ]; then status="failed (exit $rc)"; fi
    [ "$status" = ok ] || failures=$((failures + 1))
    echo "| $name | $status | $(($(date +%s) - t0)) | ${last} |" >> "$summary"
    echo "check.sh: $name: $status"
    return $rc
}

# 1. The bundle: a packed one is unpacked under $work; a folder is used where it is.
unpack() {
    if [ -d "$bundle" ]; then ln -s "$(cd "$bundle" && pwd)" "$work/device-bundle"; else tar -C "$work" -xzf "$bundle"; fi
    du -sh "$work/device-bundle/"
}
export -f unpack
export work bundle dry python_torch
step unpack 60 unpack || { echo "check.sh: no bundle at $bundle (make device-bundle)"; exit 1; }
# shellcheck source=/dev/null
source "$work/device-bundle/env.sh"

# 2. What the machine has.
facts() {
    uname -srm; nproc
    if command -v nvidia-smi > /dev/null; then nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; fi
    if command -v nvcc > /dev/null; then nvcc --version | tail -2; else echo "no nvcc"; fi
    cmake --version | head -1; c++ --version | head -1; ldd --version | head -1
    if [ $has_torch = 1 ]; then
        "$python_torch" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available(),
              torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'
    elif [ $dry = 1 ]; then
        echo "python3 has no torch (the dry run goes on without the eager comparison)"
    else
        echo "python3 has no torch: the bridge cannot be built against it"; return 1
    fi
}
has_torch=0
"$python_torch" -c 'import torch' 2> /dev/null && has_torch=1
export has_torch
export -f facts
step facts 60 facts

# 3. The bridge: on the GPU machine against python3's torch (its CMake prefix and C++ ABI from torch itself, as
# `make bridge-cuda` does); in the dry run against Debian's libtorch-dev, as `make native` does.
bridge() {
    local args=(-DCMAKE_BUILD_TYPE=Release)
    if [ $dry = 0 ]; then
        local prefix abi
        prefix=$("$python_torch" -c 'import torch; print(torch.utils.cmake_prefix_path)') || return 1
        abi=$("$python_torch" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))') || return 1
        args+=(-DCMAKE_PREFIX_PATH="$prefix" -DMPP_CXX11_ABI="$abi")
    fi
    cmake -S "$work/device-bundle/src/src/MpiPipeline.Torch/native" -B "$work/bridge" "${args[@]}" --log-level=WARNING &&
        cmake --build "$work/bridge" -j "$(nproc)" && ls -la "$work/bridge/libmpp_bridge.so"
}
export -f bridge
if [ -n "$bridge_built" ]; then
    echo "| bridge | given | 0 | $bridge_built (--bridge: not built here) |" >> "$summary"
    export MPIPIPE_TORCH_BRIDGE=$bridge_built
else
    step bridge 240 bridge || { echo "check.sh: the bridge did not build; see $OUT/bridge.log"; exit 1; }
    export MPIPIPE_TORCH_BRIDGE=$work/bridge/libmpp_bridge.so
fi

# 4. info (one rank, no launcher: an MPI singleton).
step info 60 mpipipe info

# 5 + 6. The bridge's step and PyTorch eager's, per model, alternating.
for model in cnn "$large"; do
    tag=${model//:/-}
    step "bench-bridge-$tag" 90 mpipipe bench bridge --model "$model" --device "$device" --dataset synthetic:1x28x28:10 \
        --steps "$steps" --warmup "$warmup"
    if [ $has_torch = 1 ]; then
        step "eager-$tag" 90 "$python_torch" "$repo/bench/gpu/eager_step.py" --model "$model" --device "$device" \
            --steps "$steps" --warmup "$warmup"
    else
        echo "| eager-$tag | skipped | 0 | python3 has no torch here: the PyTorch eager comparison runs on the GPU machine only |" >> "$summary"
    fi
done

# 7. PSGD at 1 and 2 ranks on the one device: the staged gradient exchange (device-resident buffers) at 2.
for ranks in 1 2; do
    step "psgd-n$ranks" 120 bash -c "source '$work/device-bundle/env.sh' && bundle_mpiexec -n $ranks mpipipe train --algo psgd \
        --model cnn --dataset synthetic:1x28x28:10 --device $device --batch 128 --max-steps $psgd_steps --test-samples 256 \
        --output '$OUT/psgd-n$ranks.json'"
done

# The table: bridge vs eager per model, PSGD samples/s.
python3 - "$OUT" "$device" >> "$summary" <<'PY' || failures=$((failures + 1))
import json, os, re, sys
out, device = sys.argv[1], sys.argv[2]
def read(name):
    path = os.path.join(out, name)
    return open(path).read() if os.path.exists(path) else ""
print("\n| model | bridge mean ms | bridge median ms | eager mean ms | eager median ms | bridge / eager (median) |")
print("|---|---|---|---|---|---|")
for log in sorted(f for f in os.listdir(out) if f.startswith("bench-bridge-")):
    tag = log[len("bench-bridge-"):-len(".log")]
    raw = [l.split() for l in read(log).splitlines() if l and not l.startswith("#") and not l.startswith("model ")]
    bridge = raw[-1] if raw else None
    eager = re.search(r"mean_ms (\S+) p10_ms \S+ median_ms (\S+)", read(f"eager-{tag}.log"))
    ratio = f"{float(bridge[5]) / float(eager.group(2)):.3f}" if bridge and eager else "-"
    print(f"| {tag} | {bridge[4] if bridge else '-'} | {bridge[5] if bridge else '-'} | "
          f"{eager.group(1) if eager else '-'} | {eager.group(2) if eager else '-'} | {ratio} |")
print("\n| PSGD | ranks | samples/s (last epoch) | gradient staging | copies d2h / h2d (rank 0) |")
print("|---|---|---|---|---|")
for ranks in (1, 2):
    try:
        result = json.load(open(os.path.join(out, f"psgd-n{ranks}.json")))
    except (OSError, ValueError):
        print(f"| cnn on {device} | {ranks} | - | - | - |"); continue
    epochs = result.get("epochs") or [{}]
    o = result.get("options", {})
    print(f"| cnn on {device} | {ranks} | {epochs[-1].get('samplesPerSecond', 0):.0f} | {o.get('gradientStaging', '-')} | "
          f"{o.get('deviceToHostCopies', '-')} / {o.get('hostToDeviceCopies', '-')} |")
PY
echo >> "$summary"
echo "$failures step(s) failed; $(($(date +%s) - started)) s in all" >> "$summary"
cat "$summary"
rm -rf "$work"
[ $failures = 0 ]
