# `make bench-network`: the emulated network (bench/network/emulate.sh: a private network namespace whose loopback is
# shaped, both MPIs over TCP on it; root or CAP_NET_ADMIN). By default a 2-rank ping-pong at 1-4 MiB for MPICH and
# Open MPI, each rate against the link's; CMD runs any command inside instead.
#   make bench-network RATE=1gbit DELAY=50us        (DELAY needs netem in the kernel; RATE=none: unshaped TCP)
#   make bench-network RATE=10gbit CMD='mpiexec.mpich -n 2 src/MpiPipeline.Cli/bin/Release/net10.0/mpipipe bench mpi'
# One shaped lo is one link all ranks share (aggregate), not a link per node. `mpipipe scaling --network` uses the
# same script for every job.
DEB_PACKAGES += iproute2 util-linux

# Taken only from the make command line, so that a RATE or CMD in the environment does not change what runs.
network-arg = $(if $(filter command line,$(origin $1)),$(value $1),$2)
NETWORK_RATE  := $(call network-arg,RATE,1gbit)
NETWORK_DELAY := $(call network-arg,DELAY,)
NETWORK_CMD   := $(call network-arg,CMD,)

.PHONY: bench-network
# The command travels in the environment, so that its quotes reach bash as written.
bench-network: export NETWORK_CMD_TEXT := $(NETWORK_CMD)
bench-network: build
	@if [ -n "$$NETWORK_CMD_TEXT" ]; then \
	    bash bench/network/emulate.sh --rate '$(NETWORK_RATE)' $(if $(NETWORK_DELAY),--delay '$(NETWORK_DELAY)') -- bash -c "$$NETWORK_CMD_TEXT"; \
	else \
	    MPIPIPE=$(MPIPIPE) bash bench/network/pingpong.sh '$(NETWORK_RATE)' '$(NETWORK_DELAY)'; \
	fi

# `make bench-network-train`: PSGD with and without the overlapped buckets, and local SGD tau 4, over the unshaped,
# 10 Gbit and 1 Gbit emulated links, 2 and 4 ranks, cnn and deep-mlp:4:2048 -> bench/results/network.md.
#   make bench-network-train BENCH_NETWORK_ENV='LINKS=1gbit RANKS=2'     a part of it
BENCH_NETWORK_ENV ?=
.PHONY: bench-network-train
bench-network-train: build
	$(BENCH_NETWORK_ENV) MPIPIPE=$(MPIPIPE) BENCH_COMMAND='make bench-network-train' bash bench/network/train.sh

# `make scaling-network`: the scaling sweep (strong and weak, PSGD cnn, 1, 2, 4 ranks, Open MPI) with every job inside
# the emulated network, the performance model fitted on those runs -> bench/results/scaling-$(SCALING_LINK)/.
#   make scaling-network SCALING_LINK=10gbit
SCALING_LINK          ?= 1gbit
SCALING_NETWORK_ARGS  ?= --model cnn --repetitions 3 --steps 20 --warmup-steps 3 --global-batch 256 --per-rank-batch 64 --bench-ranks 2,4
.PHONY: scaling-network
scaling-network: build
	$(MPIPIPE) scaling --network $(SCALING_LINK) --mpi openmpi --ranks 1,2,4 $(SCALING_NETWORK_ARGS) \
	    --out bench/results/scaling-$(SCALING_LINK) --work build/scaling-$(SCALING_LINK) \
	    --command-line "make scaling-network SCALING_LINK=$(SCALING_LINK) SCALING_NETWORK_ARGS='$(SCALING_NETWORK_ARGS)'"
