using Microsoft.Win32.SafeHandles;

namespace MpiPipeline.Torch;

/// <summary>Owns one native <c>mpp_stage</c>; released with <c>mpp_stage_destroy</c> (by Dispose, or the finalizer).</summary>
internal sealed class StageHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public StageHandle()
        : base(ownsHandle: true)
    {
    }

    protected override bool ReleaseHandle() => NativeMethods.mpp_stage_destroy(handle) == 0;
}

/// <summary>Owns one native <c>mpp_optimizer</c>; released with <c>mpp_optimizer_destroy</c>.</summary>
internal sealed class OptimizerHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public OptimizerHandle()
        : base(ownsHandle: true)
    {
    }

    protected override bool ReleaseHandle() => NativeMethods.mpp_optimizer_destroy(handle) == 0;
}
