
namespace MpiPipeline.Data;

/// <summary>
/// Which samples each of <c>size</c> ranks uses, given the epoch's order of the whole data set (from
/// <see cref="Shuffle.Permutation"/>, identical on every rank).
/// <para>
/// Parallel SGD reads the epoch order in global batches of <c>b * n</c> (per-rank batch b, n ranks); rank r takes
/// the r-th block of b inside the global batch (<see cref="GlobalBatchSlice"/>). So PSGD on n ranks with per-rank
/// batch b visits exactly the samples, in the same global batches, that one rank with batch n*b visits:
/// <c>GlobalBatch(order, step, n*b)</c> is the concatenation over r of <c>GlobalBatchSlice(order, step, b, r, n)</c>.
/// </para>
/// <para>
/// Remainders are dropped so every rank runs the same number of steps (a rank with one step more would wait in a
/// collective forever): <see cref="Shard"/> gives every rank floor(count / size) samples, and an epoch is
/// floor(count / (b * n)) full global batches (<see cref="StepsPerEpoch"/>). With a new order each epoch, a
/// dropped sample is used in other epochs.
/// </para>
/// </summary>
internal static class Sharding
{
    /// <summary>Samples per rank when <paramref name="count"/> are split evenly over <paramref name="size"/> ranks.</summary>
    public static int ShardSize(int count, int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        return count / size;
    }

    /// <summary>
    /// Rank <paramref name="rank"/>'s contiguous block of the order: items [rank * s, (rank + 1) * s) with
    /// s = floor(order.Length / size); the last order.Length mod size items belong to no rank.
    /// </summary>
    public static ReadOnlySpan<int> Shard(ReadOnlySpan<int> order, int rank, int size)
    {
        CheckRank(rank, size);
        var shardSize = ShardSize(order.Length, size);
        return order.Slice(rank * shardSize, shardSize);
    }

    /// <summary>Full global batches of <paramref name="perRankBatch"/> * <paramref name="size"/> samples in an epoch.</summary>
    public static int StepsPerEpoch(int count, int perRankBatch, int size)
    {
        var globalBatch = GlobalBatchSize(perRankBatch, size);
        if (count < globalBatch)
        {
            throw new InputException(
                $"the data set has {count} samples, fewer than one global batch of {globalBatch} " +
                $"({size} ranks x batch {perRankBatch}); use a smaller batch or more data.");
        }

        return count / globalBatch;
    }

    /// <summary>The samples of global step <paramref name="step"/>: order[step * B .. (step + 1) * B).</summary>
    public static ReadOnlySpan<int> GlobalBatch(ReadOnlySpan<int> order, int step, int globalBatch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(globalBatch, 1);
        CheckStep(order.Length, step, globalBatch);
        return order.Slice(step * globalBatch, globalBatch);
    }

    /// <summary>
    /// The <paramref name="perRankBatch"/> samples rank r uses at step <paramref name="step"/>:
    /// order[step * b * n + r * b .. + b), the r-th block of that step's global batch.
    /// </summary>
    public static ReadOnlySpan<int> GlobalBatchSlice(ReadOnlySpan<int> order, int step, int perRankBatch, int rank, int size)
    {
        CheckRank(rank, size);
        var globalBatch = GlobalBatchSize(perRankBatch, size);
        CheckStep(order.Length, step, globalBatch);
        return order.Slice(step * globalBatch + rank * perRankBatch, perRankBatch);
    }

    private static int GlobalBatchSize(int perRankBatch, int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(perRankBatch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        return checked(perRankBatch * size);
    }

    private static void CheckRank(int rank, int size)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        if ((uint)rank >= (uint)size)
        {
            throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} is outside 0..{size - 1}.");
        }
    }

    private static void CheckStep(int count, int step, int globalBatch)
    {
        var steps = count / globalBatch;
        if ((uint)step >= (uint)steps)
        {
            throw new ArgumentOutOfRangeException(
                nameof(step), $"step {step} is outside 0..{steps - 1} ({count} samples in global batches of {globalBatch}).");
        }
    }
}
