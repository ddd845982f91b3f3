# Layer-wise parallelism (issue 18): `mpipipe plan` for cnn and cnn-wide on 2 and 4 ranks, shared memory and the
# emulated 1 Gbit network (predicted step times of the searched, data parallel and model parallel plans), each plan
# run by `train --algo layerwise --plan FILE` right after it is planned (measured step; REPEATS=3 times, each with
# layer times of its own: about 18 minutes on 2 cores), and PSGD vs the searched plan over 2 epochs (accuracy);
# bench/layerwise/report.py writes bench/results/layerwise.md. PART=steps or PART=accuracy runs one half.
.PHONY: bench-layerwise
BENCH_TARGETS += bench-layerwise

bench-layerwise: build
	MPIPIPE=$(MPIPIPE) bash bench/layerwise/run.sh
