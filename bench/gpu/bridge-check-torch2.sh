#!/usr/bin/env bash
# The bridge's sources compiled (syntax and templates, no linking) against libtorch 2.x headers before the first build
# against the GPU machine's PyTorch: Debian 13's libtorch-dev, downloaded with a private apt list (its own sources,
# state and cache under DIR) and unpacked there - never installed. The system's libtorch 1.13 headers stay on the
# include path behind these, so the dependency list is checked to hold no header of theirs.
#   bridge-check-torch2.sh DIR [SUITE]      (SUITE: trixie)
set -euo pipefail
dir=${1:?usage: bridge-check-torch2.sh DIR [SUITE]}
suite=${2:-trixie}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$dir"/{etc,state/lists/partial,cache/archives/partial,debs,root}
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" > "$dir/etc/sources.list"
apt=(-o Dir::Etc::SourceList="$dir/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null -o Dir::State="$dir/state"
     -o Dir::Cache="$dir/cache" -o Dir::State::status=/dev/null)
if ! ls "$dir"/debs/libtorch-dev_*.deb > /dev/null 2>&1; then
    apt-get "${apt[@]}" update -q || { echo "bridge-check-torch2: apt-get update for $suite failed (the registry does not serve it?)" >&2; exit 1; }
    (cd "$dir/debs" && apt-get "${apt[@]}" download libtorch-dev) ||
        { echo "bridge-check-torch2: $suite has no libtorch-dev to download" >&2; exit 1; }
fi
deb=$(ls "$dir"/debs/libtorch-dev_*.deb | tail -1)
dpkg-deb -x "$deb" "$dir/root"
include=$dir/root/usr/include
version=$(awk '/define TORCH_VERSION_(MAJOR|MINOR|PATCH)/ {printf "%s%s", sep, $3; sep="."}' "$include/torch/csrc/api/include/torch/version.h")
echo "bridge-check-torch2: $(basename "$deb"): libtorch ${version:-?} headers"
flags=(-std=c++17 -DMPP_BUILDING_BRIDGE -D_GLIBCXX_USE_CXX11_ABI=1 -Wall -Wextra -Wno-unused-parameter
       -I"$include" -I"$include/torch/csrc/api/include")
status=0
for source in "$repo"/src/MpiPipeline.Torch/native/*.cpp; do
    name=$(basename "$source")
    stale=$(g++ "${flags[@]}" -M "$source" | tr ' \\' '\n\n' | grep -E '^/usr/include/(torch|ATen|c10|caffe2)/' | head -3 || true)
    if [ -n "$stale" ]; then
        echo "bridge-check-torch2: $name includes the system's libtorch headers: $stale" >&2; status=1; continue
    fi
    if g++ "${flags[@]}" -fsyntax-only "$source"; then echo "bridge-check-torch2: $name compiles"; else status=1; fi
done
exit $status
