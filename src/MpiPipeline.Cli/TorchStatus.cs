namespace MpiPipeline.Cli;

/// <summary>libtorch/CUDA status for <c>mpipipe info</c>; filled in from the bridge once it is built.</summary>
internal static class TorchStatus
{
    public static IReadOnlyDictionary<string, string> Describe() =>
        new Dictionary<string, string> { ["libtorch"] = "bridge not part of this build yet" };
}
