# `make bench` part for the MPI binding: the C baseline (bench/mpi/mpi_bench.c) built by each MPI's own mpicc, then
# bench/mpi/compare.sh runs C and C# side by side (2 ranks, MPICH and Open MPI) and writes bench/results/mpi.md.
#   make bench-mpi BENCH_MPI_ROUNDS=12         more rounds (default 9: each of the 3 orders of C, C#, C again 3 times)
#   make bench-mpi BENCH_MPI_ARGS='--samples 11 --max-size 1M'   options for both programs (`mpipipe bench mpi` flags)
# Rounds rather than samples: on a shared machine the noise is between runs (see bench/mpi/notes.md), so 7 short
# rounds of 11 samples per size tell more than 5 of 21 in about the same time.

BENCH_BUILD      := $(REPO)/build/bench
BENCH_MPI_SOURCE := bench/mpi/mpi_bench.c
BENCH_MPI_BINS   := $(BENCH_BUILD)/mpi_bench.mpich $(BENCH_BUILD)/mpi_bench.openmpi
BENCH_MPI_ROUNDS ?= 9
BENCH_MPI_ARGS   ?= --samples 11
BENCH_MPI_RESULT ?= bench/results/mpi.md
BENCH_CFLAGS     ?= -O2 -Wall -Wextra -Werror

BENCH_TARGETS += bench-mpi

.PHONY: bench-mpi bench-mpi-c

$(BENCH_BUILD)/mpi_bench.%: $(BENCH_MPI_SOURCE) mk/bench-mpi.mk
	@mkdir -p $(BENCH_BUILD)
	mpicc.$* $(BENCH_CFLAGS) -o $@ $< -lm

bench-mpi-c: deps $(BENCH_MPI_BINS)

bench-mpi: build bench-mpi-c
	BENCH_DIR=$(BENCH_BUILD) MPIPIPE=$(MPIPIPE) ROUNDS=$(BENCH_MPI_ROUNDS) BENCH_ARGS='$(BENCH_MPI_ARGS)' \
	    OUT=$(BENCH_MPI_RESULT) BENCH_COMMAND='make $(or $(MAKECMDGOALS),bench)' \
	    bash bench/mpi/compare.sh
