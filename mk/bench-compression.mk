# `make bench-compression`: PSGD with each gradient compressor (--compress), cnn on Fashion-MNIST, 4 ranks, 3 seeds x
# 3 epochs, then fp32 vs ECQ vs top-k over the emulated 1 Gbit network (root: bench/network/emulate.sh) ->
# bench/results/compression.md and compression-accuracy-vs-{steps,time}.svg (bench/compression/run.sh).
#   make bench-compression BENCH_COMPRESSION_ENV='SEEDS=1 EPOCHS=1'     a shorter run
DEB_PACKAGES += jq iproute2 util-linux
BENCH_COMPRESSION_ENV ?=
.PHONY: bench-compression
bench-compression: build
	$(BENCH_COMPRESSION_ENV) MPIPIPE=$(MPIPIPE) BENCH_COMMAND='make bench-compression' bash bench/compression/run.sh
