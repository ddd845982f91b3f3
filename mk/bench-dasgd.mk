# `make bench` part for DASGD (issue 16): convex problem under delays growing as n^P, the paper's and constant steps
# over a grid of alpha_0 (report.py tunes alpha_0 per family and P), and the 4x-slow-worker comparison with PSGD in
# seconds to PSGD's accuracy -> bench/results/dasgd.md and bench/results/dasgd-*.svg.
#   make bench-dasgd DASGD_SEEDS="1" DASGD_UPDATES=300    a quicker run
DASGD_SEEDS   ?= 1 2 3
DASGD_UPDATES ?= 1000
DASGD_ALPHAS  ?= 0.5 0.05 0.015 0.005
DASGD_EPOCHS  ?= 9
BENCH_TARGETS += bench-dasgd

.PHONY: bench-dasgd
bench-dasgd: build
	MPIPIPE=$(MPIPIPE) SEEDS="$(DASGD_SEEDS)" UPDATES=$(DASGD_UPDATES) ALPHAS="$(DASGD_ALPHAS)" SLOW_DASGD_EPOCHS=$(DASGD_EPOCHS) \
	BENCH_COMMAND='make bench-dasgd DASGD_SEEDS="$(DASGD_SEEDS)" DASGD_UPDATES=$(DASGD_UPDATES) DASGD_ALPHAS="$(DASGD_ALPHAS)" DASGD_EPOCHS=$(DASGD_EPOCHS)' \
	nice -n 10 bash bench/dasgd/run.sh
