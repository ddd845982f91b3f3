# The libtorch bridge (src/MpiPipeline.Torch/native): built with CMake before the solution.
#   build/native/libmpp_bridge.so       against Debian's libtorch-dev (CPU); MpiPipeline.Torch.csproj copies it
#                                       next to every program and test that references the bridge
#   build/native-cuda/libmpp_bridge.so  `make bridge-cuda`: against the libtorch of the python3 PyTorch (CUDA);
#                                       select it at run time with MPIPIPE_TORCH_BRIDGE=<that path>

TORCH_NATIVE_DIR     := src/MpiPipeline.Torch/native
TORCH_NATIVE_SOURCES := $(wildcard $(TORCH_NATIVE_DIR)/*.cpp $(TORCH_NATIVE_DIR)/*.h) \
                        $(TORCH_NATIVE_DIR)/CMakeLists.txt $(TORCH_NATIVE_DIR)/exports.map cmake/libtorch.cmake mk/torch.mk
TORCH_BRIDGE         := build/native/libmpp_bridge.so
TORCH_BRIDGE_CUDA    := build/native-cuda/libmpp_bridge.so
TORCH_BUILD_JOBS     ?= $(shell nproc 2>/dev/null || echo 2)
PYTHON               ?= python3

NATIVE_TARGETS += $(TORCH_BRIDGE)

# deps is order-only: it installs libtorch-dev when missing but does not make the library out of date.
$(TORCH_BRIDGE): $(TORCH_NATIVE_SOURCES) | deps
	cmake -S $(TORCH_NATIVE_DIR) -B build/native -DCMAKE_BUILD_TYPE=Release --log-level=WARNING
	cmake --build build/native -j $(TORCH_BUILD_JOBS)
	@touch $@

.PHONY: bridge bridge-cuda
bridge: $(TORCH_BRIDGE)

# The same bridge against a PyTorch installation (pip/conda wheel with CUDA): its CMake prefix and its C++ ABI
# come from torch itself. Needs CMake and a CUDA toolkit (nvcc) for find_package(Torch); no GPU is needed to build.
bridge-cuda:
	@prefix=$$($(PYTHON) -c 'import torch; print(torch.utils.cmake_prefix_path)') && \
	abi=$$($(PYTHON) -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))') && \
	version=$$($(PYTHON) -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)') && \
	echo "bridge-cuda: torch $$version, prefix $$prefix, _GLIBCXX_USE_CXX11_ABI=$$abi" && \
	cmake -S $(TORCH_NATIVE_DIR) -B build/native-cuda -DCMAKE_BUILD_TYPE=Release \
	    -DCMAKE_PREFIX_PATH="$$prefix" -DMPP_CXX11_ABI=$$abi --log-level=WARNING && \
	cmake --build build/native-cuda -j $(TORCH_BUILD_JOBS) && \
	echo "bridge-cuda: built $(TORCH_BRIDGE_CUDA); run with MPIPIPE_TORCH_BRIDGE=$(REPO)/$(TORCH_BRIDGE_CUDA)"
