using MpiPipeline.Data;

namespace MpiPipeline.Training;

/// <summary>Which training samples one worker uses at step t (t counts from 0 over the whole run).</summary>
internal interface IBatchSampler
{
    int Batch { get; }

    void Indices(long step, Span<int> indices);
}

/// <summary>
/// i.i.d. split: one permutation of the training set per (seed, epoch); the global batch B of step t is
/// order[t*B .. t*B+B), and worker r of n takes its slice order[t*B + r*b .. +b) with b = B/n. So n workers with
/// batch b see exactly the samples one worker with batch n*b sees, in the same order.
/// </summary>
internal sealed class ShuffleSampler(int sampleCount, long seed, int globalBatch, int worker, int workers) : IBatchSampler
{
    private readonly int stepsPerEpoch = Math.Max(1, sampleCount / globalBatch);
    private int cachedEpoch = -1;
    private int[] order = [];

    public int Batch { get; } = globalBatch / workers;

    public void Indices(long step, Span<int> indices)
    {
        var epoch = (int)(step / stepsPerEpoch);
        if (epoch != cachedEpoch)
        {
            order = Shuffle.Permutation(sampleCount, seed, epoch);
            cachedEpoch = epoch;
        }

        var start = (int)(step % stepsPerEpoch) * globalBatch + worker * Batch;
        order.AsSpan(start, Batch).CopyTo(indices);
    }
}

/// <summary>
/// RI-SGD's split (Haddadpour et al. 2019): the set is cut into p chunks D_1..D_p; worker j holds the q chunks
/// j..j+q-1 (mod p) and draws its mini-batches from their union, pass after pass, each pass a fresh permutation
/// seeded by (seed, j, pass). q = 1 is plain local SGD on disjoint shards. The chunks are ranges of positions in
/// <c>order</c> (null: the sample indices; <see cref="RedundantChunks.ClassOrder"/> for --split chunks-by-class).
/// </summary>
internal sealed class ChunkSampler : IBatchSampler
{
    private readonly int[] held;
    private readonly long workerSeed;
    private long cachedPass = -1;
    private int[] permutation = [];

    public ChunkSampler(int sampleCount, int p, int q, int worker, long seed, int batch, IReadOnlyList<int>? order = null)
    {
        Batch = batch;
        Chunks = RedundantChunks.ChunksOf(worker, p, q);
        held = RedundantChunks.HeldSamples(worker, sampleCount, p, q, order);
        workerSeed = Shuffle.SeedFor(seed, worker, 0);
    }

    public int Batch { get; }

    public IReadOnlyList<int> Chunks { get; }

    public int HeldSamples => held.Length;

    public void Indices(long step, Span<int> indices)
    {
        for (var i = 0; i < Batch; i++)
        {
            var position = step * Batch + i;
            var pass = position / held.Length;
            if (pass != cachedPass)
            {
                permutation = Shuffle.Permutation(held.Length, workerSeed, (int)pass);
                cachedPass = pass;
            }

            indices[i] = held[permutation[(int)(position % held.Length)]];
        }
    }
}
