# `make bench` part for data-parallel training: PSGD at 1, 2, 4 ranks -> bench/results/data-parallel.md.
#   make bench-data-parallel BENCH_DP_RANKS="1 2"    other rank counts
BENCH_DP_RANKS ?= 1 2 4
BENCH_TARGETS  += bench-data-parallel
DEB_PACKAGES   += jq

.PHONY: bench-data-parallel
bench-data-parallel: build
	MPIPIPE=$(MPIPIPE) RANKS="$(BENCH_DP_RANKS)" BENCH_COMMAND='make bench-data-parallel' bash bench/data-parallel/run.sh
