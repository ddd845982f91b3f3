# `make bench` part for DASGD (issue 16): convex problem under delays growing as n^P, paper vs constant steps, and the
# 4x-slow-worker comparison with PSGD -> bench/results/dasgd.md and bench/results/dasgd-*.svg.
#   make bench-dasgd DASGD_SEEDS="1" DASGD_UPDATES=300    a quicker run
DASGD_SEEDS   ?= 1 2 3
DASGD_UPDATES ?= 1000
BENCH_TARGETS += bench-dasgd

.PHONY: bench-dasgd
bench-dasgd: build
	MPIPIPE=$(MPIPIPE) SEEDS="$(DASGD_SEEDS)" UPDATES=$(DASGD_UPDATES) BENCH_COMMAND='make bench-dasgd DASGD_SEEDS="$(DASGD_SEEDS)" DASGD_UPDATES=$(DASGD_UPDATES)' bash bench/dasgd/run.sh
