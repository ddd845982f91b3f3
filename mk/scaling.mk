# `make scaling`: strong and weak scaling of PSGD (cnn) at 1, 2 and 4 ranks under MPICH, 3 repetitions each, the
# `bench mpi` timings at 2 and 4 ranks, the fitted performance model and its projections to 16..1024 ranks:
# bench/results/scaling.md, scaling.csv, scaling-runs.csv and the scaling-*.svg plots; each job's JSON and log in
# build/scaling. On 2 cores the 4-rank points are oversubscribed (the report says so). A few minutes.
#   make scaling SCALING_RANKS=1,2,4,8 SCALING_ARGS='--model mlp --repetitions 5'
SCALING_RANKS   ?= 1,2,4
SCALING_ARGS    ?= --model cnn --repetitions 3 --steps 20 --warmup-steps 3 --global-batch 256 --per-rank-batch 64
SCALING_NETWORK ?= 2,12.5
SCALING_OUT     ?= bench/results

.PHONY: scaling
scaling: build
	$(MPIPIPE) scaling --ranks $(SCALING_RANKS) $(SCALING_ARGS) --assume-network $(SCALING_NETWORK) \
	    --out $(SCALING_OUT) --work build/scaling \
	    --command-line "make scaling SCALING_RANKS=$(SCALING_RANKS) SCALING_ARGS='$(SCALING_ARGS)' SCALING_NETWORK=$(SCALING_NETWORK)"
