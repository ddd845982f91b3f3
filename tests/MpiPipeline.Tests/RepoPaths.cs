namespace MpiPipeline.Tests;

/// <summary>Paths inside the repository, found by walking up from the test binaries to MpiPipeline.sln.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MpiPipeline.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"MpiPipeline.sln not found above {AppContext.BaseDirectory}");
    }
}
