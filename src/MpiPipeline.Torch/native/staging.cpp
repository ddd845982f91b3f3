// Device-resident gradients: the flat gradient buffer moved to and from its host mirror in ranges, each copy
// asynchronous on the stage's copy stream (CUDA) so that the exchange overlaps one range's copy with another's
// Allreduce. Device-generic c10 streams and events: the same code compiles against a CPU-only libtorch, where a CPU
// stage with separate mirrors copies synchronously (the staging path tested without a GPU).
#include "bridge.h"

#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <thread>

namespace {

mpp_stage* checked(mpp_stage* stage) {
    MPP_REQUIRE(stage != nullptr, "null stage");
    return stage;
}

bool asynchronous(const mpp_stage* stage) { return !stage->device.is_cpu(); }

c10::Stream copy_stream(mpp_stage* stage) {
    if (!stage->copy_stream) {
        c10::impl::VirtualGuardImpl guard(stage->device.type());
        stage->copy_stream = guard.getStreamFromGlobalPool(stage->device, /*isHighPriority=*/false);
    }
    return *stage->copy_stream;
}

c10::Stream compute_stream(const mpp_stage* stage) {
    return c10::impl::VirtualGuardImpl(stage->device.type()).getStream(stage->device);
}

// Event::synchronize is not in every libtorch this builds against (1.13 lacks it): poll, as MPI waits are polled.
void wait_for(const c10::Event& event) {
    while (!event.query()) std::this_thread::yield();
}

}  // namespace

extern "C" {

int mpp_stage_separate_host_mirrors(mpp_stage* stage) {
    MPP_GUARDED({
        if (checked(stage)->separate_mirrors) return MPP_OK;
        MPP_REQUIRE(stage->slots.empty(), "separate host mirrors are set up before any forward");
        stage->host_parameters = stage->flat_parameters.clone();
        stage->host_gradients = stage->flat_gradients.clone();
        stage->separate_mirrors = true;
    })
}

int mpp_stage_device_gradients(mpp_stage* stage, float** data) {
    MPP_GUARDED({
        MPP_REQUIRE(data != nullptr, "null output pointer");
        *data = checked(stage)->flat_gradients.data_ptr<float>();
    })
}

int mpp_stage_copy_gradients(mpp_stage* stage, int to_device, int64_t offset, int64_t count, int64_t* ticket) {
    MPP_GUARDED({
        MPP_REQUIRE(ticket != nullptr, "null output pointer");
        checked(stage);
        MPP_REQUIRE(offset >= 0 && count >= 0 && offset + count <= stage->parameter_count,
                    "gradient range [" + std::to_string(offset) + ", " + std::to_string(offset + count) +
                        ") is outside the flat buffer of " + std::to_string(stage->parameter_count));
        torch::NoGradGuard no_grad;
        auto device = stage->flat_gradients.narrow(0, offset, count);
        auto host = stage->host_gradients.narrow(0, offset, count);
        *ticket = ++stage->copies_issued;
        if (!stage->separate_mirrors || count == 0) return MPP_OK;
        if (!asynchronous(stage)) {
            (to_device ? device : host).copy_(to_device ? host : device);
            return MPP_OK;
        }
        auto side = copy_stream(stage);
        if (!to_device) {
            // Device -> host reads what backward wrote: the copy stream waits for the compute stream's work so far.
            c10::Event produced(stage->device.type());
            produced.record(compute_stream(stage));
            produced.block(side);
        }
        {
            c10::StreamGuard on_side(side);
            (to_device ? device : host).copy_(to_device ? host : device, /*non_blocking=*/true);
        }
        c10::Event done(stage->device.type());
        done.record(side);
        stage->copy_events.emplace(*ticket, std::move(done));
    })
}

int mpp_stage_wait_copy(mpp_stage* stage, int64_t ticket) {
    MPP_GUARDED({
        checked(stage);
        MPP_REQUIRE(ticket >= 0 && ticket <= stage->copies_issued,
                    "copy ticket " + std::to_string(ticket) + " was never issued");
        auto found = stage->copy_events.find(ticket);
        if (found == stage->copy_events.end()) return MPP_OK;  // done on return (CPU) or waited for already
        wait_for(found->second);
        // The stream runs the copies in order: every earlier one is done too.
        stage->copy_events.erase(stage->copy_events.begin(), std::next(found));
    })
}

int mpp_stage_synchronize(mpp_stage* stage) {
    MPP_GUARDED({
        if (!asynchronous(checked(stage))) return MPP_OK;
        if (!stage->copy_events.empty()) {
            // The host waits for the copies too: the host mirror may be written (zeroed, pulled into) right after.
            auto& last = stage->copy_events.rbegin()->second;
            last.block(compute_stream(stage));
            wait_for(last);
            stage->copy_events.clear();
        }
        c10::Event queued(stage->device.type());
        queued.record(compute_stream(stage));
        wait_for(queued);
    })
}

int mpp_stage_scale_gradients(mpp_stage* stage, float factor) {
    MPP_GUARDED({
        torch::NoGradGuard no_grad;
        checked(stage)->flat_gradients.mul_(factor);
    })
}

}  // extern "C"
