# `make bench` part for pipeline parallelism: bench/pipeline-bench.sh runs `mpipipe train --algo pipeline` for
# S = 2, 4 stages, GPipe and 1F1B, M = 1..16 micro-batches (MPICH) and writes bench/results/pipeline.md: measured time
# per mini-batch against the ideal (M + S - 1) max_s (t_f,s + t_b,s) from the per-stage times of the same run.
#   make bench-pipeline BENCH_PIPELINE_ROUNDS=5                    more runs per configuration (default 3)
#   make bench-pipeline BENCH_PIPELINE_ENV='MODEL=deep-mlp:8:1024 BATCH=512'   other settings of the script

BENCH_PIPELINE_ROUNDS ?= 3
BENCH_PIPELINE_ENV    ?=
BENCH_PIPELINE_RESULT ?= bench/results/pipeline.md
DEB_PACKAGES          += jq

BENCH_TARGETS += bench-pipeline

.PHONY: bench-pipeline

bench-pipeline: build
	env $(BENCH_PIPELINE_ENV) MPIPIPE=$(MPIPIPE) ROUNDS=$(BENCH_PIPELINE_ROUNDS) OUT=$(BENCH_PIPELINE_RESULT) \
	    WORK=$(REPO)/build/bench-pipeline BENCH_COMMAND='make $(or $(MAKECMDGOALS),bench)' \
	    bash bench/pipeline-bench.sh
