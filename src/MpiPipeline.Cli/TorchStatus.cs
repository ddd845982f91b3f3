using MpiPipeline.Torch;

namespace MpiPipeline.Cli;

/// <summary>libtorch/CUDA status for <c>mpipipe info</c>, from the bridge; a bridge that cannot load is reported, not thrown.</summary>
internal static class TorchStatus
{
    public static IReadOnlyDictionary<string, string> Describe()
    {
        try
        {
            return TorchRuntime.Describe();
        }
        catch (TorchException ex)
        {
            return new Dictionary<string, string> { ["libtorch"] = $"not available: {ex.NativeMessage}" };
        }
    }
}
