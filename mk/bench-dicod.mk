# `make bench` part for DICOD (issue 17): greedy CD, LGCD, FISTA on one rank and DICOD on W = 1, 2, 4 ranks on one
# synthetic problem -> bench/results/dicod.md, dicod-convergence.svg, dicod-speedup.svg, the runs' JSON in
# bench/results/dicod/runs/.
#   make bench-dicod BENCH_DICOD_PROBLEM="--length 100000 ..."   another problem (see bench/dicod/run.sh)
BENCH_DICOD_PROBLEM ?=
BENCH_TARGETS       += bench-dicod

.PHONY: bench-dicod

bench-dicod: build
	MPIPIPE=$(MPIPIPE) $(if $(BENCH_DICOD_PROBLEM),PROBLEM_ARGS="$(BENCH_DICOD_PROBLEM)") \
	    BENCH_COMMAND='make bench-dicod$(if $(BENCH_DICOD_PROBLEM), BENCH_DICOD_PROBLEM="$(BENCH_DICOD_PROBLEM)")' \
	    bash bench/dicod/run.sh
