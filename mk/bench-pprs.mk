# `make bench` part for PPRS: the poster's Figure 3 (adversarial examples, Delta = 20 and 200, GD vs AGD vs PPRS with
# K = 1, 4, 16, 64) -> bench/results/pprs/ (CSV, SVG, summary.md); bench/results/pprs.md reads them.
#   make bench-pprs BENCH_PPRS_STEPS="1 5"      other step sizes (default 0.2 1 5)
#   make bench-pprs BENCH_PPRS_SEEDS="1 2 3"    more PPRS seeds (default 1 2)
#   make bench-pprs BENCH_PPRS_PROBLEM="--images 8 --kappa 5 --lambda 0.002" BENCH_PPRS_OUT=bench/results/pprs/kappa5-lambda0.002
BENCH_PPRS_STEPS   ?= 0.2 1 5
BENCH_PPRS_SEEDS   ?= 1 2
BENCH_PPRS_PROBLEM ?= --images 8 --kappa 2 --lambda 0.05
BENCH_PPRS_OUT     ?= bench/results/pprs
BENCH_TARGETS    += bench-pprs

.PHONY: bench-pprs pprs
pprs: bench-pprs

bench-pprs: build
	MPIPIPE=$(MPIPIPE) STEPS="$(BENCH_PPRS_STEPS)" SEEDS="$(BENCH_PPRS_SEEDS)" PROBLEM_ARGS="$(BENCH_PPRS_PROBLEM)" OUT=$(BENCH_PPRS_OUT) \
	    BENCH_COMMAND='make bench-pprs$(if $(filter-out bench/results/pprs,$(BENCH_PPRS_OUT)), BENCH_PPRS_PROBLEM="$(BENCH_PPRS_PROBLEM)" BENCH_PPRS_OUT=$(BENCH_PPRS_OUT))' \
	    bash bench/pprs/run.sh
