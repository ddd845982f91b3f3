// The limit for `mpipipe bench bridge`: the same single-process training loop written in pure C++ against libtorch.
//
// Same model as ModelZoo (`mlp`, `cnn`; layers added one by one with push_back, parameters drawn from the default
// CPU generator seeded with --seed, as mpp_stage_create does), same Fashion-MNIST normalization, same data order
// (the SplitMix64 Fisher-Yates shuffle of MpiPipeline.Data.Shuffle, re-implemented below, per (seed, epoch)), same
// batch, same thread count, same optimizer settings (SGD with momentum; torch::optim::SGD on the model's own
// parameters - what a libtorch user writes), same malloc tuning as the bridge (mallopt at start). Each step: gather
// the batch (index_select), zero the gradients, forward, cross-entropy, backward, loss and correct count read back,
// optimizer step - the work of Worker.ComputeGradient + Worker.OptimizerStep.
//
// Output (the same format as `mpipipe bench bridge`): '#' comment lines, a header line, one result line
//   model threads batch steps mean_ms median_ms min_ms loss_sum correct_sum first_loss order
// loss_sum / correct_sum are over the timed steps; first_loss is step 0's; order is an FNV-1a hash of the sample
// indices of every step run (warm-up included), so a script can check that both programs saw the same data.
#include <torch/torch.h>

#include <malloc.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// ---- options ----------------------------------------------------------------------------------------------------

struct Options {
    std::string model = "mlp";
    int threads = 1;
    int64_t steps = 300;
    int64_t warmup = 20;
    int64_t batch = 128;
    double lr = 0.05;
    double momentum = 0.9;
    int64_t seed = 1;
    std::string data = "/usr/share/datasets/fashion-mnist";
};

[[noreturn]] void usage(const std::string& problem) {
    std::fprintf(stderr,
                 "bridge_bench: %s\n"
                 "usage: bridge_bench [--model mlp|cnn] [--threads N] [--steps N] [--warmup N] [--batch N]\n"
                 "                    [--lr X] [--momentum X] [--seed N] [--data DIR]\n",
                 problem.c_str());
    std::exit(2);
}

int64_t parse_integer(const std::string& flag, const char* text, int64_t min) {
    char* end = nullptr;
    errno = 0;
    const long long value = std::strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min) {
        usage(flag + " needs an integer >= " + std::to_string(min) + ", got '" + text + "'");
    }
    return value;
}

double parse_number(const std::string& flag, const char* text) {
    char* end = nullptr;
    const double value = std::strtod(text, &end);
    if (end == text || *end != '\0' || !(value >= 0)) usage(flag + " needs a number >= 0, got '" + text + "'");
    return value;
}

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        const std::string flag = argv[i];
        if (i + 1 >= argc) usage(flag + " needs a value (or is unknown)");
        const char* value = argv[++i];
        if (flag == "--model") o.model = value;
        else if (flag == "--threads") o.threads = static_cast<int>(parse_integer(flag, value, 1));
        else if (flag == "--steps") o.steps = parse_integer(flag, value, 1);
        else if (flag == "--warmup") o.warmup = parse_integer(flag, value, 0);
        else if (flag == "--batch") o.batch = parse_integer(flag, value, 1);
        else if (flag == "--lr") o.lr = parse_number(flag, value);
        else if (flag == "--momentum") o.momentum = parse_number(flag, value);
        else if (flag == "--seed") o.seed = parse_integer(flag, value, 0);
        else if (flag == "--data") o.data = value;
        else usage("unknown option " + flag);
    }
    if (o.model != "mlp" && o.model != "cnn") usage("unknown model '" + o.model + "' (mlp or cnn)");
    return o;
}

// ---- data: Fashion-MNIST IDX files, normalized as MpiPipeline.Data.FashionMnist does ---------------------------

std::vector<uint8_t> read_gzip_or_plain(const std::string& path) {
    gzFile file = gzopen(path.c_str(), "rb");  // zlib reads uncompressed files transparently
    if (file == nullptr) throw std::runtime_error(path + ": cannot open");
    std::vector<uint8_t> bytes;
    std::vector<uint8_t> chunk(1 << 20);
    int got = 0;
    while ((got = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0) {
        bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + got);
    }
    gzclose(file);
    if (got < 0) throw std::runtime_error(path + ": read error");
    return bytes;
}

uint32_t big_endian(const std::vector<uint8_t>& bytes, size_t at) {
    return (uint32_t{bytes[at]} << 24) | (uint32_t{bytes[at + 1]} << 16) | (uint32_t{bytes[at + 2]} << 8) | bytes[at + 3];
}

std::string find_file(const std::string& directory, const std::string& base) {
    for (const auto& name : {base + ".gz", base}) {
        const auto path = directory + "/" + name;
        if (FILE* f = std::fopen(path.c_str(), "rb")) {
            std::fclose(f);
            return path;
        }
    }
    throw std::runtime_error("Fashion-MNIST file " + base + "[.gz] not found in " + directory);
}

struct TrainingSet {
    torch::Tensor images;  // [count, 1, 28, 28] float, normalized
    torch::Tensor labels;  // [count] int64
    int64_t count = 0;
};

TrainingSet load_training_set(const std::string& directory) {
    const auto images_path = find_file(directory, "train-images-idx3-ubyte");
    const auto labels_path = find_file(directory, "train-labels-idx1-ubyte");
    const auto images = read_gzip_or_plain(images_path);
    const auto labels = read_gzip_or_plain(labels_path);
    if (images.size() < 16 || big_endian(images, 0) != 0x803) throw std::runtime_error(images_path + ": not IDX3 images");
    if (labels.size() < 8 || big_endian(labels, 0) != 0x801) throw std::runtime_error(labels_path + ": not IDX1 labels");
    const int64_t count = big_endian(images, 4);
    if (big_endian(images, 8) != 28 || big_endian(images, 12) != 28) throw std::runtime_error(images_path + ": not 28x28");
    if (static_cast<int64_t>(big_endian(labels, 4)) != count || images.size() < 16 + static_cast<size_t>(count) * 784 ||
        labels.size() < 8 + static_cast<size_t>(count)) {
        throw std::runtime_error(images_path + " / " + labels_path + ": truncated or counts differ");
    }
    // (pixel / 255 - mean) / std in float, through a 256-entry table: FashionMnist.Normalize.
    float table[256];
    for (int v = 0; v < 256; v++) table[v] = (static_cast<float>(v) / 255.0f - 0.2860f) / 0.3530f;
    TrainingSet set;
    set.count = count;
    set.images = torch::empty({count, 1, 28, 28}, torch::kFloat32);
    set.labels = torch::empty({count}, torch::kInt64);
    auto* x = set.images.data_ptr<float>();
    for (int64_t i = 0; i < count * 784; i++) x[i] = table[images[16 + i]];
    auto* y = set.labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < count; i++) y[i] = labels[8 + i];
    return set;
}

// ---- data order: MpiPipeline.Data.SplitMix64 / Shuffle / ShuffleSampler (worker 0 of 1) ------------------------

constexpr uint64_t golden_gamma = 0x9E3779B97F4A7C15ULL;
constexpr uint64_t epoch_tag = 0x45504F4348ULL;  // "EPOCH"

uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// Shuffle.DeriveTagged(seed, tag, parts...): h = mix(seed); h = mix(h ^ mix(part + gamma)) for tag, then each part.
uint64_t derive(int64_t seed, std::initializer_list<int64_t> parts) {
    uint64_t hash = mix(static_cast<uint64_t>(seed));
    for (auto part : parts) hash = mix(hash ^ mix(static_cast<uint64_t>(part) + golden_gamma));
    return hash;
}

struct SplitMix64 {
    uint64_t state;
    uint64_t next() { return mix(state += golden_gamma); }
    // Lemire's unbiased multiply-shift, as SplitMix64.NextInt.
    int64_t next_int(uint64_t bound) {
        const uint64_t threshold = (0 - bound) % bound;
        while (true) {
            const unsigned __int128 product = static_cast<unsigned __int128>(next()) * bound;
            if (static_cast<uint64_t>(product) >= threshold) return static_cast<int64_t>(product >> 64);
        }
    }
};

std::vector<int64_t> epoch_order(int64_t count, int64_t seed, int64_t epoch) {
    std::vector<int64_t> order(count);
    std::iota(order.begin(), order.end(), 0);
    SplitMix64 random{derive(seed, {static_cast<int64_t>(epoch_tag), epoch})};
    for (int64_t i = count - 1; i > 0; i--) std::swap(order[i], order[random.next_int(static_cast<uint64_t>(i) + 1)]);
    return order;
}

// ---- model: ModelZoo's layers ------------------------------------------------------------------------------------

torch::nn::Sequential build_model(const std::string& name) {
    namespace nn = torch::nn;
    nn::Sequential model;
    if (name == "mlp") {
        model->push_back(nn::Flatten());
        model->push_back(nn::Linear(nn::LinearOptions(784, 256)));
        model->push_back(nn::ReLU());
        model->push_back(nn::Linear(nn::LinearOptions(256, 10)));
    } else {
        model->push_back(nn::Conv2d(nn::Conv2dOptions(1, 16, 3).stride(1).padding(1)));
        model->push_back(nn::ReLU());
        model->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2).padding(0)));
        model->push_back(nn::Conv2d(nn::Conv2dOptions(16, 32, 3).stride(1).padding(1)));
        model->push_back(nn::ReLU());
        model->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2).stride(2).padding(0)));
        model->push_back(nn::Flatten());
        model->push_back(nn::Linear(nn::LinearOptions(32 * 7 * 7, 128)));
        model->push_back(nn::ReLU());
        model->push_back(nn::Linear(nn::LinearOptions(128, 10)));
    }
    return model;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const auto o = parse_options(argc, argv);
        // The bridge's process set-up (runtime.cpp tune_malloc), unless the MALLOC_*_ variables say otherwise.
        const bool mmap_tuned = std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr && mallopt(M_MMAP_THRESHOLD, 64 << 20) == 1;
        const bool trim_tuned = std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr && mallopt(M_TRIM_THRESHOLD, 128 << 20) == 1;
        torch::set_num_threads(o.threads);

        const auto data = load_training_set(o.data);
        if (o.batch > data.count) usage("--batch is larger than the training set");
        const int64_t steps_per_epoch = std::max<int64_t>(1, data.count / o.batch);
        const int64_t total_steps = o.warmup + o.steps;

        torch::manual_seed(static_cast<uint64_t>(o.seed));  // stage initialization draws from this generator
        auto model = build_model(o.model);
        model->train(true);
        torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(o.lr).momentum(o.momentum));

        std::printf("# bridge_bench (C++): model %s, threads %d, batch %" PRId64 ", %" PRId64 " warm-up + %" PRId64
                    " timed steps, seed %" PRId64 ", SGD lr %g momentum %g (torch::optim::SGD)\n",
                    o.model.c_str(), torch::get_num_threads(), o.batch, o.warmup, o.steps, o.seed, o.lr, o.momentum);
        std::printf("# libtorch %s; malloc tuning: %s\n", TORCH_VERSION,
                    mmap_tuned && trim_tuned ? "mmap threshold 64 MiB, trim threshold 128 MiB" : "left to MALLOC_*_");

        std::vector<int64_t> order;
        int64_t cached_epoch = -1;
        uint64_t fingerprint = 0xcbf29ce484222325ULL;  // FNV-1a 64 over the sample indices
        std::vector<double> times_ms;
        times_ms.reserve(static_cast<size_t>(o.steps));
        double loss_sum = 0, first_loss = 0, gather_us = 0;
        int64_t correct_sum = 0;
        for (int64_t t = 0; t < total_steps; t++) {
            // Timed as Worker.ComputeGradient is: from the sampler (a new permutation at each epoch) on.
            const auto start = std::chrono::steady_clock::now();
            const int64_t epoch = t / steps_per_epoch;
            if (epoch != cached_epoch) {
                order = epoch_order(data.count, o.seed, epoch);
                cached_epoch = epoch;
            }
            const int64_t* indices = order.data() + (t % steps_per_epoch) * o.batch;
            const auto index = torch::from_blob(const_cast<int64_t*>(indices), {o.batch}, torch::kInt64);
            const auto x = data.images.index_select(0, index);
            const auto y = data.labels.index_select(0, index);
            const auto gathered = std::chrono::steady_clock::now();
            optimizer.zero_grad();
            const auto logits = model->forward(x);
            const auto loss = torch::nn::functional::cross_entropy(logits, y);
            loss.backward();
            const float loss_value = loss.item<float>();
            const int64_t correct = logits.detach().argmax(1).eq(y).sum().item<int64_t>();
            optimizer.step();
            const auto stop = std::chrono::steady_clock::now();

            for (int64_t i = 0; i < o.batch; i++) {
                fingerprint = (fingerprint ^ static_cast<uint64_t>(indices[i])) * 0x100000001b3ULL;
            }

            if (t == 0) first_loss = loss_value;
            if (t >= o.warmup) {
                times_ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
                gather_us += std::chrono::duration<double, std::micro>(gathered - start).count();
                loss_sum += loss_value;
                correct_sum += correct;
            }
        }

        const double mean = std::accumulate(times_ms.begin(), times_ms.end(), 0.0) / static_cast<double>(times_ms.size());
        auto sorted = times_ms;
        std::sort(sorted.begin(), sorted.end());
        const size_t mid = sorted.size() / 2;
        const double median = sorted.size() % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
        const auto percentile = [&sorted](double p) { return sorted[static_cast<size_t>(p * static_cast<double>(sorted.size() - 1))]; };
        std::printf("# step time percentiles (ms): p10 %.4f p25 %.4f p50 %.4f p75 %.4f p90 %.4f\n", percentile(0.1),
                    percentile(0.25), percentile(0.5), percentile(0.75), percentile(0.9));
        std::printf("# per timed step: sampler + batch gather (index_select) %.1f us (mean)\n",
                    gather_us / static_cast<double>(o.steps));
        std::printf("model threads batch steps mean_ms median_ms min_ms loss_sum correct_sum first_loss order\n");
        std::printf("%s %d %" PRId64 " %" PRId64 " %.4f %.4f %.4f %.10f %" PRId64 " %.8f %016" PRIx64 "\n", o.model.c_str(),
                    torch::get_num_threads(), o.batch, o.steps, mean, median, sorted.front(), loss_sum, correct_sum,
                    first_loss, fingerprint);
        return 0;
    } catch (const c10::Error& e) {
        std::fprintf(stderr, "bridge_bench: %s\n", e.what_without_backtrace());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bridge_bench: %s\n", e.what());
    }
    return 1;
}
