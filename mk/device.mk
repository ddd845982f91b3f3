# The CUDA path without a GPU here (issue 22): what a run on the GPU machine carries, checked on this one.
#   make device-bundle         self-contained trimmed mpipipe + MPICH + launcher + bridge sources -> build/device-bundle/
#                              and build/device-bundle.tar.gz (printed with its size; must be under 64 MiB)
#   make device-bundle-check   the bundle runs with the system's MPI and .NET out of reach: `info` and a 2-rank
#                              `train --max-steps 20` in a clean environment, the libraries loaded listed (LD_DEBUG)
#   make gpu-check-dry-run     bench/gpu/check.sh --cpu-dry-run: the GPU check's steps on this CPU -> build/gpu-check-dry/
#   make bridge-check-torch2   the bridge compiled (not linked) against Debian 13's libtorch-dev 2.x headers, downloaded
#                              into build/torch2/ with a private apt list, never installed
# On the GPU machine: bench/gpu/check.sh with the bundle carried (see bench/results/gpu.md).

DEVICE_BUNDLE := build/device-bundle
DEVICE_BUNDLE_COMPRESSION ?= gz
TORCH2_DIR    := $(REPO)/build/torch2
TORCH2_SUITE  ?= trixie

.PHONY: device-bundle device-bundle-check gpu-check-dry-run bridge-check-torch2

device-bundle:
	DOTNET=$(DOTNET) CONFIG=$(CONFIG) bash bench/gpu/make-bundle.sh $(DEVICE_BUNDLE) $(DEVICE_BUNDLE_COMPRESSION)

device-bundle-check: $(DEVICE_BUNDLE)/env.sh
	bash bench/gpu/bundle-check.sh $(DEVICE_BUNDLE).tar.gz

$(DEVICE_BUNDLE)/env.sh:
	$(MAKE) device-bundle

gpu-check-dry-run: native $(DEVICE_BUNDLE)/env.sh
	OUT=$(REPO)/build/gpu-check-dry bash bench/gpu/check.sh --cpu-dry-run --bundle $(DEVICE_BUNDLE).tar.gz

bridge-check-torch2:
	bash bench/gpu/bridge-check-torch2.sh $(TORCH2_DIR) $(TORCH2_SUITE)
