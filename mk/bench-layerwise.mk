# Layer-wise parallelism (issue 18): `mpipipe plan` for cnn and cnn-wide on 2 and 4 ranks, shared memory and the
# emulated 1 Gbit network (predicted step times of the searched, data parallel and model parallel plans), then the
# runs of `train --algo layerwise --plan FILE` once the engine is in the build (bench/layerwise/run.sh says "engine
# not available" until then). Not in BENCH_TARGETS yet: it measures nothing before the engine lands.
.PHONY: bench-layerwise

bench-layerwise: build
	MPIPIPE=$(MPIPIPE) bash bench/layerwise/run.sh
