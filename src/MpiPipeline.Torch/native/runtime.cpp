// Library-wide exports: version, last error, process set-up (malloc, threads), seeds, libtorch/CUDA facts, and the
// batch gather (rows of a host array on libtorch's threads).
#include "bridge.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <malloc.h>

#include <cstdlib>
#include <mutex>
#include <sstream>

namespace {

thread_local std::string last_error_message;

std::once_flag init_once;
int64_t applied_mmap_threshold = 0;
int64_t applied_trim_threshold = 0;

// glibc keeps a 128 KiB mmap threshold in a .NET process (the dynamic threshold never grows there), so every
// activation tensor would be mmap'd and unmapped each step. Raise it, unless the user set the MALLOC_*_ variables.
void tune_malloc() {
    constexpr int64_t mmap_threshold = 64LL << 20;
    constexpr int64_t trim_threshold = 128LL << 20;
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr &&
        mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold)) == 1) {
        applied_mmap_threshold = mmap_threshold;
    }
    if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr &&
        mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim_threshold)) == 1) {
        applied_trim_threshold = trim_threshold;
    }
}

}  // namespace

namespace mpp {

int fail(int status, const std::string& message) {
    last_error_message = message.empty() ? std::string("error without a message") : message;
    return status;
}

std::string shape_text(const std::vector<int64_t>& shape) {
    std::ostringstream text;
    text << '[';
    for (size_t i = 0; i < shape.size(); i++) text << (i ? ", " : "") << shape[i];
    text << ']';
    return text.str();
}

int64_t element_count(const std::vector<int64_t>& shape) {
    int64_t count = 1;
    for (auto d : shape) count *= d;
    return count;
}

}  // namespace mpp

extern "C" {

int mpp_bridge_version(void) { return MPP_BRIDGE_VERSION; }

const char* mpp_last_error(void) { return last_error_message.c_str(); }

int mpp_runtime_init(int threads) {
    MPP_GUARDED({
        std::call_once(init_once, tune_malloc);
        if (threads > 0) torch::set_num_threads(threads);
    })
}

int mpp_runtime_malloc_tuning(int64_t* mmap_threshold, int64_t* trim_threshold) {
    MPP_GUARDED({
        MPP_REQUIRE(mmap_threshold && trim_threshold, "null output pointer");
        *mmap_threshold = applied_mmap_threshold;
        *trim_threshold = applied_trim_threshold;
    })
}

int mpp_runtime_torch_version(const char** version) {
    MPP_GUARDED({
        MPP_REQUIRE(version, "null output pointer");
        *version = TORCH_VERSION;
    })
}

int mpp_runtime_cuda_device_count(int* count) {
    MPP_GUARDED({
        MPP_REQUIRE(count, "null output pointer");
        *count = static_cast<int>(torch::cuda::device_count());
    })
}

int mpp_runtime_cuda_compiled(int* compiled) {
    MPP_GUARDED({
        MPP_REQUIRE(compiled, "null output pointer");
        *compiled = at::hasCUDA() ? 1 : 0;
    })
}

int mpp_runtime_set_threads(int threads) {
    MPP_GUARDED({
        MPP_REQUIRE(threads > 0, "the thread count must be positive, got " + std::to_string(threads));
        torch::set_num_threads(threads);
    })
}

int mpp_runtime_get_threads(int* threads) {
    MPP_GUARDED({
        MPP_REQUIRE(threads, "null output pointer");
        *threads = torch::get_num_threads();
    })
}

int mpp_runtime_manual_seed(int64_t seed) {
    MPP_GUARDED({ torch::manual_seed(static_cast<uint64_t>(seed)); })
}

int mpp_runtime_parallel_info(const char** text) {
    MPP_GUARDED({
        MPP_REQUIRE(text, "null output pointer");
        static thread_local std::string info;
        info = at::get_parallel_info();
        *text = info.c_str();
    })
}

int mpp_runtime_gather_rows(const float* source, int64_t source_rows, int64_t row_length, const int32_t* indices,
                            int64_t count, float* destination) {
    MPP_GUARDED({
        MPP_REQUIRE(source_rows >= 0 && row_length > 0 && count >= 0,
                    "gather: " + std::to_string(source_rows) + " rows of " + std::to_string(row_length) + ", " +
                        std::to_string(count) + " indices: the row length must be positive, the counts not negative");
        if (count == 0) return MPP_OK;
        MPP_REQUIRE(source != nullptr && indices != nullptr && destination != nullptr, "null source, indices or destination");
        for (int64_t i = 0; i < count; i++) {
            MPP_REQUIRE(indices[i] >= 0 && indices[i] < source_rows,
                        "gather: index " + std::to_string(indices[i]) + " (position " + std::to_string(i) +
                            ") is outside 0.." + std::to_string(source_rows - 1));
        }
        // Views of the caller's memory, no copies: index_select writes straight into destination, in parallel over
        // the intra-op threads for a contiguous source (as the pure C++ loop gathers its batches).
        const auto rows = torch::from_blob(const_cast<float*>(source), {source_rows, row_length}, torch::kFloat32);
        const auto index = torch::from_blob(const_cast<int32_t*>(indices), {count}, torch::kInt32);
        auto out = torch::from_blob(destination, {count, row_length}, torch::kFloat32);
        torch::NoGradGuard no_grad;
        torch::index_select_out(out, rows, 0, index);
    })
}

}  // extern "C"
