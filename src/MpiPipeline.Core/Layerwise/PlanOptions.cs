using MpiPipeline.Scaling;

namespace MpiPipeline.Layerwise;

/// <summary>The three plans <c>mpipipe plan</c> prices.</summary>
internal enum PlanStrategy
{
    Searched,
    DataParallel,
    ModelParallel,
}

/// <summary>The options of <c>mpipipe plan</c> (the layer-wise search), with their defaults.</summary>
internal sealed record PlanOptions
{
    public string Model { get; init; } = "cnn";

    /// <summary>R: every layer of the plan uses all of them.</summary>
    public int Ranks { get; init; } = 2;

    /// <summary>The global mini-batch (train's default).</summary>
    public int Batch { get; init; } = 128;

    /// <summary>Price communication on this emulated network instead of shared memory.</summary>
    public EmulatedNetwork? Network { get; init; }

    /// <summary>libtorch threads the layer times are measured with (one per rank on this machine's 2 cores).</summary>
    public int Threads { get; init; } = 1;

    /// <summary>The layer-time cache; null: <see cref="MeasuredLayerTimes.DefaultPath"/>.</summary>
    public string? ComputeCache { get; init; }

    public bool Explain { get; init; }

    /// <summary>Which plan <see cref="Output"/> gets: the searched one, or pure data or model parallel (for measuring them with the same engine).</summary>
    public PlanStrategy Write { get; init; } = PlanStrategy.Searched;

    /// <summary>Where to write the plan (LayerwisePlan JSON).</summary>
    public string? Output { get; init; }

    /// <summary>What is wrong with these options (none: empty); checked at parse time.</summary>
    public IEnumerable<string> Problems()
    {
        if (Ranks < 1)
        {
            yield return $"--ranks {Ranks}: a plan needs at least 1 rank";
        }

        if (Batch < 1)
        {
            yield return $"--batch {Batch}: the global batch must be at least 1";
        }

        if (Threads < 1)
        {
            yield return $"--threads {Threads}: libtorch needs at least 1 thread";
        }

        if (Network is { BitsPerSecond: null })
        {
            yield return $"--network {Network}: the planner needs a rate to price transfers (e.g. 1gbit or 1gbit,50us); unshaped TCP has no figure";
        }
    }
}
