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

# Issue 19 items 2 and 3. bench-pprs-bounds: the supplement's bounds vs measured time to eps on Eq. 8
# (deterministic, ~1 minute) -> bench/results/pprs-bounds.md. bench-pprs-figure3: Figure 3 with one network family
# (res-mlp:20:16 and res-mlp:200:16), PPRS at shared eta and at its own eta = gamma/L (gamma grid), t50/t90 against one
# level per panel -> bench/results/pprs/figure3/ (panels.md, CSV, SVG).
BENCH_PPRS_BOUNDS_ARGS ?=
.PHONY: bench-pprs-bounds bench-pprs-figure3
bench-pprs-bounds: build
	$(MPIPIPE) pprs --bounds-sweep bench/results/pprs-bounds.md $(BENCH_PPRS_BOUNDS_ARGS)

bench-pprs-figure3: build
	MPIPIPE=$(MPIPIPE) bash bench/pprs/figure3.sh

# The existing Figure 3 runs (make bench-pprs) re-read with one t50/t90 level per depth -> bench/results/pprs/panels-common-level.md
.PHONY: bench-pprs-panels
bench-pprs-panels:
	{ echo "# Figure 3 runs of make bench-pprs, t50/t90 against one level per depth (made by \`make bench-pprs-panels\`)"; echo; \
	  for d in 20 200; do echo "## Delta = $$d, every eta and seed"; echo; bash bench/pprs/panel-table.sh bench/results/pprs/adversarial-delta$$d-eta*.csv; echo; done; } \
	  > bench/results/pprs/panels-common-level.md
