# `make bench` part for DASGD (issue 16): convex problem under delays growing as n^P, the paper's and constant steps
# over a grid of alpha_0 (report.py tunes alpha_0 per family and P), the 4x-slow-worker comparison with PSGD in
# seconds to PSGD's accuracy, and the delay sweep on the cnn -> bench/results/dasgd.md and bench/results/dasgd-*.svg.
#   make bench-dasgd DASGD_SEEDS="1" DASGD_UPDATES=300    a quicker run
#   make bench-dasgd DASGD_PART="cnn report"             one part (convex, slow, cnn, cnnlong) and the report; the others are
#                                                        carried over from the current dasgd.md when their runs are not in build/bench/dasgd
DASGD_SEEDS   ?= 1 2 3
DASGD_UPDATES ?= 1000
DASGD_ALPHAS  ?= 0.5 0.05 0.015 0.005
DASGD_EPOCHS  ?= 9
DASGD_CNN_UPDATES ?= 300
DASGD_CNN_ALPHAS  ?= 2 0.2 0.02
DASGD_LONG_UPDATES ?= 1000
DASGD_PART    ?= all
BENCH_TARGETS += bench-dasgd

.PHONY: bench-dasgd
bench-dasgd: build
	MPIPIPE=$(MPIPIPE) SEEDS="$(DASGD_SEEDS)" UPDATES=$(DASGD_UPDATES) ALPHAS="$(DASGD_ALPHAS)" SLOW_DASGD_EPOCHS=$(DASGD_EPOCHS) \
	CNN_UPDATES=$(DASGD_CNN_UPDATES) CNN_ALPHAS="$(DASGD_CNN_ALPHAS)" LONG_UPDATES=$(DASGD_LONG_UPDATES) PART="$(DASGD_PART)" \
	BENCH_COMMAND='make bench-dasgd DASGD_SEEDS="$(DASGD_SEEDS)" DASGD_UPDATES=$(DASGD_UPDATES) DASGD_ALPHAS="$(DASGD_ALPHAS)" DASGD_EPOCHS=$(DASGD_EPOCHS) DASGD_CNN_UPDATES=$(DASGD_CNN_UPDATES) DASGD_CNN_ALPHAS="$(DASGD_CNN_ALPHAS)" DASGD_LONG_UPDATES=$(DASGD_LONG_UPDATES) DASGD_PART="$(DASGD_PART)"' \
	nice -n 10 bash bench/dasgd/run.sh
