# `make bench` part for the TorchSharp adapter: the cnn's step time through the adapter vs the bridge vs TorchSharp
# alone (one rank), PSGD on 4 ranks (samples/s, accuracy after 2 epochs) -> bench/results/torchsharp.md.
BENCH_TARGETS += bench-torchsharp

.PHONY: bench-torchsharp
bench-torchsharp: build
	MPIPIPE=$(MPIPIPE) SAMPLE=$(REPO)/samples/TorchSharpFashionMnist/bin/$(CONFIG)/net10.0/TorchSharpFashionMnist.dll \
	    BENCH_COMMAND='make bench-torchsharp' bash bench/torchsharp/run.sh
