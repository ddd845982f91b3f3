# What every C++ target over libtorch here shares (the bridge, src/MpiPipeline.Torch/native, and its pure C++
# baseline, bench/bridge): C++17, Release unless told, libtorch found and its C++ ABI kept. include() it after project().
#   Debian's libtorch-dev:  find_package(Torch) needs no hints
#   a PyTorch installation: -DCMAKE_PREFIX_PATH=<torch.utils.cmake_prefix_path>
#                           -DMPP_CXX11_ABI=<torch._C._GLIBCXX_USE_CXX11_ABI as 0/1>   (make bridge-cuda)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release)
endif()

find_package(Torch REQUIRED)

# The C++ ABI must be libtorch's: the build against a PyTorch installation passes what torch reports and this
# checks it against the flags TorchConfig.cmake puts on the torch target.
if(DEFINED MPP_CXX11_ABI)
  if(TORCH_CXX_FLAGS MATCHES "_GLIBCXX_USE_CXX11_ABI=([01])" AND NOT CMAKE_MATCH_1 STREQUAL MPP_CXX11_ABI)
    message(FATAL_ERROR "torch reports _GLIBCXX_USE_CXX11_ABI=${MPP_CXX11_ABI} but its CMake config says ${CMAKE_MATCH_1}")
  endif()
  add_compile_definitions(_GLIBCXX_USE_CXX11_ABI=${MPP_CXX11_ABI})
endif()

# The directory holding libtorch's shared libraries (Debian: /usr/lib/<triplet>; pip: site-packages/torch/lib).
get_filename_component(MPP_TORCH_LIB_DIR "${TORCH_LIBRARY}" DIRECTORY)

# mpp_link_torch(<target>): links libtorch. A CUDA libtorch: --as-needed would drop libtorch_cuda.so (nothing
# references it by symbol) and CUDA would never be registered; keep it with --no-as-needed.
function(mpp_link_torch target)
  target_link_libraries(${target} PRIVATE ${TORCH_LIBRARIES})
  find_library(MPP_TORCH_CUDA_LIBRARY torch_cuda PATHS "${MPP_TORCH_LIB_DIR}" NO_DEFAULT_PATH)
  if(MPP_TORCH_CUDA_LIBRARY)
    message(STATUS "${target}: linking ${MPP_TORCH_CUDA_LIBRARY} with --no-as-needed")
    target_link_libraries(${target} PRIVATE "-Wl,--no-as-needed" "${MPP_TORCH_CUDA_LIBRARY}" "-Wl,--as-needed")
  endif()
endfunction()
