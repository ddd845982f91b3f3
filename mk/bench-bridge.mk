# `make bench` part for the libtorch bridge: the pure C++ training loop (bench/bridge/bridge_bench.cpp, CMake against
# Debian's libtorch-dev) built into build/bench/, then bench/bridge/compare.sh runs it and `mpipipe bench bridge`
# side by side (mlp and cnn, 1 and 2 threads, one process each) and writes bench/results/bridge.md.
#   make bench-bridge BENCH_BRIDGE_ROUNDS=12                 more alternations (default 6)
#   make bench-bridge BENCH_BRIDGE_ARGS='--seed 2'           more options for both programs (same flags; not
#                                                            --model, --threads, --steps, --warmup: compare.sh sets them)
#   make bench-bridge STEPS_mlp=800 STEPS_cnn=100            timed steps per model (default 1000 and 200)
#   make bench-bridge WARMUP_mlp=500 WARMUP_cnn=50           warm-up steps per model (default 300 and 20)

BENCH_BRIDGE_BUILD   := $(REPO)/build/bench
BENCH_BRIDGE_SOURCES := bench/bridge/bridge_bench.cpp bench/bridge/CMakeLists.txt cmake/libtorch.cmake mk/bench-bridge.mk
BENCH_BRIDGE_BIN     := $(BENCH_BRIDGE_BUILD)/bridge_bench
BENCH_BRIDGE_ROUNDS  ?= 6
BENCH_BRIDGE_ARGS    ?=
BENCH_BRIDGE_RESULT  ?= bench/results/bridge.md

# bridge_bench reads the gzip IDX files itself through zlib.
DEB_PACKAGES += zlib1g-dev
BENCH_TARGETS += bench-bridge

.PHONY: bench-bridge bench-bridge-cpp

$(BENCH_BRIDGE_BIN): $(BENCH_BRIDGE_SOURCES) | deps
	cmake -S bench/bridge -B $(BENCH_BRIDGE_BUILD)/bridge-cmake -DCMAKE_BUILD_TYPE=Release \
	    -DBRIDGE_BENCH_OUTPUT_DIR=$(BENCH_BRIDGE_BUILD) --log-level=WARNING
	cmake --build $(BENCH_BRIDGE_BUILD)/bridge-cmake
	@touch $@

bench-bridge-cpp: $(BENCH_BRIDGE_BIN)

bench-bridge: build bench-bridge-cpp
	CPP_BENCH=$(BENCH_BRIDGE_BIN) MPIPIPE=$(MPIPIPE) ROUNDS=$(BENCH_BRIDGE_ROUNDS) BENCH_ARGS='$(BENCH_BRIDGE_ARGS)' \
	    OUT=$(BENCH_BRIDGE_RESULT) BENCH_COMMAND='make $(or $(MAKECMDGOALS),bench)' \
	    bash bench/bridge/compare.sh
