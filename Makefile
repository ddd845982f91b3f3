# MpiPipeline: `make run` and `make test` do the whole set-up on a fresh Debian 12 machine with the .NET SDK.
SHELL := /bin/bash
.DEFAULT_GOAL := run

REPO     := $(CURDIR)
DOTNET   ?= dotnet
CONFIG   ?= Release
RANKS    ?= 4
BIN      := $(REPO)/src/MpiPipeline.Cli/bin/$(CONFIG)/net10.0
MPIPIPE  ?= $(BIN)/mpipipe
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages the project needs; `make deps` installs the missing ones (and does nothing when all are present).
DEB_PACKAGES := make cmake g++ mpich libmpich-dev openmpi-bin libopenmpi-dev \
                libtorch-dev libopenblas0-openmp dataset-fashion-mnist
DEB_PACKAGES += $(DEB_PACKAGES_EXTRA)

# Native pieces built before the solution; fragments in mk/ add theirs (e.g. the libtorch bridge).
NATIVE_TARGETS :=
TEST_SUITES    :=
-include $(sort $(wildcard mk/*.mk))

.PHONY: deps build native run test bench compare clean help

help:
	@echo "make run    - install what is missing, build, run the default job on $(RANKS) ranks (MPICH)"
	@echo "make test   - install what is missing, build, run every test; last lines: 'N skipped or not run: ...', 'N passed, N failed'"
	@echo "make bench  - benchmarks against their limits; tables in bench/results/"
	@echo "make compare - PSGD vs local SGD vs RI-SGD, and PSGD with $(COMPARE_COMPRESSORS), on $(RANKS) ranks; table and plots in bench/results/"
	@echo "make deps   - only install the missing Debian packages"
	@echo "make slurm-smoke - a throw-away one-node Slurm, every slurm/*.sbatch submitted in smoke mode (root)"
	@echo "make scaling - strong and weak scaling sweep + performance model -> bench/results/scaling.md"
	@echo "make bench-torchsharp - the cnn through the TorchSharp adapter vs the bridge vs TorchSharp alone -> bench/results/torchsharp.md"
	@echo "make bench-network-train - PSGD with/without overlapped buckets, local SGD, over emulated links -> bench/results/network.md (root)"
	@echo "make scaling-network SCALING_LINK=1gbit - the scaling sweep inside an emulated link -> bench/results/scaling-1gbit/ (root)"
	@echo "make bench-network RATE=1gbit [DELAY=50us] [CMD='...'] - a command (default: ping-pong) inside an emulated network (root)"

# $(call install-missing,TARGET,PACKAGES): apt-get installs those of PACKAGES that are not installed (nothing if none).
define install-missing
	@missing=$$(for p in $(2); do \
	    dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' || echo "$$p"; done); \
	if [ -n "$$missing" ]; then \
	    echo "make $(1): installing" $$missing; \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install-missing,deps,$(DEB_PACKAGES))

native: deps $(NATIVE_TARGETS)

build: native
	$(DOTNET) build MpiPipeline.sln -c $(CONFIG) -nologo -clp:ErrorsOnly -warnaserror

# The default job: parallel SGD on $(RANKS) ranks (MPICH, localhost hostfile), the cnn model on Fashion-MNIST.
EPOCHS ?= 2
MPIEXEC_MPICH := HYDRA_IFACE=lo mpiexec.mpich -f hostfiles/localhost.mpich
run: build
	$(MPIEXEC_MPICH) -n $(RANKS) $(MPIPIPE) train --algo psgd --model cnn --epochs $(EPOCHS) --output results/run-psgd.json

# The comparison the RI-SGD slides make (PSGD, local SGD tau 4/16, RI-SGD q 2 tau 16), and PSGD with the gradient
# compressors COMPARE_COMPRESSORS (--compress values): table and plots in bench/results/.
COMPARE_EPOCHS      ?= 3
COMPARE_COMPRESSORS ?= fp16 topk:0.01 ecq:4
compare: build
	$(MPIEXEC_MPICH) -n $(RANKS) $(MPIPIPE) compare --model cnn --epochs $(COMPARE_EPOCHS) --out bench/results \
	    $(if $(strip $(COMPARE_COMPRESSORS)),--compressors $(COMPARE_COMPRESSORS))

# Every test project, with TRX results, then the suites fragments add to TEST_SUITES (scripts called with the results
# directory that write their NAME.counts, NAME being the script's name without .sh, e.g. the Slurm smoke tests);
# .ci/summarize-tests prints the closing lines over all of them, told which ran and how each exited, so that a
# crashed test host or suite counts as failed: '... skipped or not run: ...', then 'N passed, N failed'.
TEST_PROJECTS := tests/MpiPipeline.Tests tests/MpiPipeline.RankTests tests/MpiPipeline.TorchSharp.Tests
TEST_SUITES   += .ci/summarize-tests-test.sh
TEST_RESULTS  := $(REPO)/build/test-results
test: build
	@rm -rf $(TEST_RESULTS); mkdir -p $(TEST_RESULTS); runs=(); \
	for p in $(TEST_PROJECTS); do \
	    $(DOTNET) test $$p -c $(CONFIG) --no-build -nologo --blame-hang-timeout 10m \
	        --logger "trx;LogFileName=$$(basename $$p).trx" --logger "console;verbosity=normal" \
	        --results-directory $(TEST_RESULTS); runs+=("$$(basename $$p):$$?"); \
	done; \
	for suite in $(TEST_SUITES); do bash $$suite $(TEST_RESULTS); runs+=("$$(basename $$suite .sh):$$?"); done; \
	bash .ci/summarize-tests $(TEST_RESULTS) "$${runs[@]}"

bench: build $(BENCH_TARGETS)

clean:
	rm -rf build
	$(DOTNET) clean MpiPipeline.sln -c $(CONFIG) -nologo >/dev/null
