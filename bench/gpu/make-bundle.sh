#!/usr/bin/env bash
# The device bundle (issue 22): what a run on a GPU machine without .NET and MPI needs, collected into BUNDLE_DIR and
# packed into BUNDLE_DIR.tar.<compression> (the 64 MiB a device run may carry):
#   mpipipe/      the self-contained, trimmed linux-x64 publish of mpipipe (the framework included, no bridge: the
#                 bridge is built on the GPU machine against its PyTorch, see check.sh)
#   lib/          the MPI library the binding loads (MPIPIPE_MPI_LIB) and the shared libraries it needs, as ldd finds
#                 them in the installed packages; glibc itself stays the machine's
#   bin/          the launcher (MPICH's hydra: mpiexec + hydra_pmi_proxy, which find each other on PATH)
#   src/          the bridge's sources (src/MpiPipeline.Torch/native + cmake/libtorch.cmake, same layout)
#   env.sh        `source env.sh`: PATH, LD_LIBRARY_PATH, MPIPIPE_MPI_LIB pointing into the bundle only
# MPICH rather than Open MPI: hydra relocates by PATH alone, while Debian's Open MPI finds its plugins and help files
# under compiled-in /usr paths (OPAL_PREFIX relocation needs the build's own layout); the sizes of both are printed.
# Usage: make-bundle.sh BUNDLE_DIR [gz|xz]   (run from the repository root; DOTNET, CONFIG as the Makefile's)
set -euo pipefail
out=${1:?usage: make-bundle.sh BUNDLE_DIR [gz|xz]}
compression=${2:-gz}
DOTNET=${DOTNET:-dotnet}
CONFIG=${CONFIG:-Release}
repo=$(pwd)
multiarch=/usr/lib/x86_64-linux-gnu

rm -rf "$out" && mkdir -p "$out"/{mpipipe,lib,bin,src}
echo "device-bundle: publishing mpipipe (self-contained, trimmed, linux-x64)"
# Its own artifacts path: the RID-specific restore and obj/ do not touch the solution's build.
# TrimMode=partial trims the framework only (the project's assemblies stay whole), and the results are written with
# reflection-based System.Text.Json, which a trimmed app has switched off unless told.
"$DOTNET" publish src/MpiPipeline.Cli -c "$CONFIG" -r linux-x64 --self-contained -p:PublishTrimmed=true -p:TrimMode=partial \
    -p:JsonSerializerIsReflectionEnabledByDefault=true -p:TreatWarningsAsErrors=false -p:DebugType=none --artifacts-path "$out.obj" -o "$out/mpipipe" -nologo -clp:ErrorsOnly
# The CPU bridge would be the wrong one there; debugger and tracing helpers are not needed to run.
rm -f "$out"/mpipipe/{libmpp_bridge.so,createdump,libmscordbi.so,libmscordaccore.so,libcoreclrtraceptprovider.so} "$out"/mpipipe/*.pdb

# $(deps FILE...): the non-glibc shared libraries FILE needs, as resolved on this machine (absolute paths).
glibc='/(libc|libm|libdl|libpthread|librt|libresolv|ld-linux-x86-64)\.so'
deps() { ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | grep -Ev "$glibc" | sort -u; }

size_of() { du -cbL "$@" | tail -1 | cut -f1; }
mpich=("$multiarch/libmpich.so.12")
openmpi=("$multiarch/libmpi.so.40" "$multiarch/openmpi" /usr/bin/orterun /usr/bin/orted)
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "device-bundle: MPICH $(mib $(size_of "${mpich[@]}" $(deps "${mpich[@]}"))) vs Open MPI" \
     "$(mib $(size_of "${openmpi[@]}" $(deps "$multiarch/libmpi.so.40"))) (libraries + their dependencies, uncompressed)"

cp -L "${mpich[@]}" $(deps "${mpich[@]}" /usr/bin/mpiexec.hydra /usr/bin/hydra_pmi_proxy) "$out/lib/"
# UCX (MPICH's ch4 device) has shared memory and TCP built in; cma is its one module worth carrying.
mkdir -p "$out/lib/ucx" && cp -L "$multiarch/ucx/libuct_cma.so.0" "$out/lib/ucx/"
cp -L /usr/bin/mpiexec.hydra /usr/bin/hydra_pmi_proxy "$out/bin/"
ln -s mpiexec.hydra "$out/bin/mpiexec"

mkdir -p "$out/src/src/MpiPipeline.Torch" "$out/src/cmake"
cp -r src/MpiPipeline.Torch/native "$out/src/src/MpiPipeline.Torch/"
cp cmake/libtorch.cmake "$out/src/cmake/"
cp hostfiles/localhost.mpich "$out/"

cat > "$out/env.sh" <<'ENV'
# source this: the bundle's mpipipe, MPI and launcher, and nothing of the machine's MPI.
bundle=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH="$bundle/bin:$bundle/mpipipe:$PATH"
export LD_LIBRARY_PATH="$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MPIPIPE_MPI_LIB="$bundle/lib/libmpich.so.12"
export UCX_MODULE_DIR="$bundle/lib/ucx"
export HYDRA_IFACE=${HYDRA_IFACE:-lo}
# mpiexec with the bundle's localhost hostfile: bundle_mpiexec -n 2 mpipipe ...
bundle_mpiexec() { mpiexec -f "$bundle/localhost.mpich" "$@"; }
ENV

case $compression in
    gz) tar -C "$(dirname "$out")" -czf "$out.tar.gz" "$(basename "$out")"; archive=$out.tar.gz ;;
    xz) tar -C "$(dirname "$out")" -cf - "$(basename "$out")" | xz -T0 -6 > "$out.tar.xz"; archive=$out.tar.xz ;;
    *) echo "make-bundle.sh: compression must be gz or xz, got '$compression'" >&2; exit 2 ;;
esac
unpacked=$(du -sb "$out" | cut -f1)
packed=$(stat -c %s "$archive")
echo "device-bundle: $out $(mib "$unpacked") unpacked, $archive $(mib "$packed") (limit 64 MiB)"
[ "$packed" -le $((64 * 1048576)) ] || { echo "device-bundle: $archive is over 64 MiB" >&2; exit 1; }
