namespace MpiPipeline.Data;

/// <summary>
/// One <c>--dataset</c>: the name (or, for a family, the prefix before the first ':'), one-line help, and how to load
/// its training or test part. The loaded <see cref="Dataset"/> says its sample shape and class count, and the models
/// are built for them, so a new data set is one file plus its line in <see cref="DataSetRegistry.All"/>.
/// </summary>
/// <param name="Load">(the full --dataset name, the --data directory or null, true for the training part).</param>
internal sealed record DataSetRegistration(string Name, string Help, Func<string, string?, bool, Dataset> Load)
{
    /// <summary>The name without its parameters: "synthetic" for "synthetic:CxHxW:K".</summary>
    public string Family => Name.Split(':')[0];
}

/// <summary>Every <c>--dataset</c>, in the order help lists them.</summary>
internal static class DataSetRegistry
{
    public static IReadOnlyList<DataSetRegistration> All { get; } =
    [
        FashionMnist.Registration,
        SyntheticImages.Registration,
    ];

    public static string Default => FashionMnist.Registration.Name;

    public static IReadOnlyList<string> Names { get; } = [.. All.Select(d => d.Name)];

    public static DataSetRegistration Find(string name) =>
        All.FirstOrDefault(d => d.Family == name.Split(':')[0].Trim().ToLowerInvariant())
        ?? throw new InputException($"unknown --dataset '{name}'; known: {string.Join(", ", Names)}");

    /// <summary>The training or test part of the data set <paramref name="name"/>.</summary>
    public static Dataset Load(string name, string? directory, bool train) => Find(name).Load(name, directory, train);
}
