# `make bench` part for PPRS: the poster's Figure 3 (adversarial examples, Delta = 20 and 200, GD vs AGD vs PPRS with
# K = 1, 4, 16, 64) -> bench/results/pprs/ (CSV, SVG, summary.md); bench/results/pprs.md reads them.
#   make bench-pprs BENCH_PPRS_STEPS="1 5"      other step sizes (default 0.2 1 5)
#   make bench-pprs BENCH_PPRS_SEEDS="1 2 3"    more PPRS seeds (default 1 2)
BENCH_PPRS_STEPS ?= 0.2 1 5
BENCH_PPRS_SEEDS ?= 1 2
BENCH_TARGETS    += bench-pprs

.PHONY: bench-pprs pprs
pprs: bench-pprs

bench-pprs: build
	MPIPIPE=$(MPIPIPE) STEPS="$(BENCH_PPRS_STEPS)" SEEDS="$(BENCH_PPRS_SEEDS)" BENCH_COMMAND='make bench-pprs' bash bench/pprs/run.sh
