using MpiPipeline.Data;
using MpiPipeline.Mpi;
using MpiPipeline.Torch;

namespace MpiPipeline.Training;

/// <summary>
/// Loss, correct answers and samples summed over batches, then over ranks: the train or test figures of an epoch.
/// </summary>
internal sealed class LossTally
{
    private readonly double[] sums = new double[3];

    public double Samples => sums[2];

    /// <summary>Adds a batch's mean loss, weighted by its sample count.</summary>
    public void Add(double meanLoss, double correct, double count)
    {
        sums[0] += meanLoss * count;
        sums[1] += correct;
        sums[2] += count;
    }

    /// <summary>Sums the tallies of <paramref name="group"/>'s ranks (every rank of it calls this) into every rank's.</summary>
    public LossTally Allreduce(Communicator group)
    {
        group.Allreduce<double>(sums, ReduceOp.Sum);
        return this;
    }

    /// <summary>Mean loss and accuracy per sample (0 when no sample was counted).</summary>
    public (double Loss, double Accuracy) Means() => (sums[0] / Math.Max(1, sums[2]), sums[1] / Math.Max(1, sums[2]));

    /// <summary>The part <paramref name="part"/> of <paramref name="parts"/> of a set of <paramref name="count"/>
    /// samples, [Start, End): contiguous shares of ceil(count / parts), the last ones shorter or empty.</summary>
    public static (int Start, int End) Share(int count, int part, int parts)
    {
        var per = (count + parts - 1) / parts;
        var start = Math.Min(count, part * per);
        return (start, Math.Min(count, start + per));
    }

    /// <summary>This rank's tally of share <paramref name="part"/> of <paramref name="parts"/> of the test set, in batches of
    /// <paramref name="batch"/> samples: <paramref name="evaluate"/> takes a batch's images, labels and size.</summary>
    public static LossTally Evaluate(Dataset test, int part, int parts, int batch,
        Func<ReadOnlySpan<float>, ReadOnlySpan<int>, int, LossResult> evaluate)
    {
        var (start, end) = Share(test.Count, part, parts);
        var tally = new LossTally();
        for (var at = start; at < end; at += batch)
        {
            var count = Math.Min(batch, end - at);
            var result = evaluate(test.Images.AsSpan(at * test.SampleSize, count * test.SampleSize), test.Labels.AsSpan(at, count), count);
            tally.Add(result.Loss, result.Correct, result.Count);
        }

        return tally;
    }
}
