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

    /// <summary>True for the <c>KIND:DIR</c> data sets, whose name holds their folder, so that --data has no part in them.</summary>
    public bool NamesFolder => Name.EndsWith(":DIR", StringComparison.Ordinal);
}

/// <summary>Every <c>--dataset</c>, in the order help lists them.</summary>
internal static class DataSetRegistry
{
    public static IReadOnlyList<DataSetRegistration> All { get; } =
    [
        FashionMnist.Registration,
        SyntheticImages.Registration,
        IdxDataSet.Registration,
        CifarBinary.Cifar10Registration,
        CifarBinary.Cifar100Registration,
        CifarBinary.Cifar100CoarseRegistration,
        NpyDataSet.Registration,
    ];

    public static string Default => FashionMnist.Registration.Name;

    public static IReadOnlyList<string> Names { get; } = [.. All.Select(d => d.Name)];

    public static DataSetRegistration Find(string name) =>
        All.FirstOrDefault(d => d.Family == name.Split(':')[0].Trim().ToLowerInvariant())
        ?? throw new InputException($"unknown --dataset '{name}'; known: {string.Join(", ", Names)}");

    /// <summary>
    /// The checks of --dataset and --data that need no file: a known data set, and --data (the Fashion-MNIST folder)
    /// not given beside a data set that names its own folder.
    /// </summary>
    public static void Validate(string name, string? directory)
    {
        var registration = Find(name);
        if (directory is not null && registration.NamesFolder)
        {
            throw new InputException($"--dataset {name} names its own folder; --data {directory} is the folder of {FashionMnist.Registration.Name}: give one of them");
        }
    }

    /// <summary>The training or test part of the data set <paramref name="name"/>.</summary>
    public static Dataset Load(string name, string? directory, bool train) => Find(name).Load(name, directory, train);
}
