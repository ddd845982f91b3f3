
namespace MpiPipeline.Data;

/// <summary>Which of the p chunks the surviving workers still hold.</summary>
/// <param name="Covered">Chunks held by at least one alive worker, ascending.</param>
/// <param name="Missing">Chunks no alive worker holds, ascending: their samples are lost to training.</param>
internal sealed record ChunkCoverage(IReadOnlyList<int> Covered, IReadOnlyList<int> Missing)
{
    public bool Complete => Missing.Count == 0;
}

/// <summary>
/// The data placement of redundancy-infused local SGD, RI-SGD (Haddadpour, Kamani, Mahdavi, Cadambe, ICML 2019,
/// "Trading redundancy for communication"): the data set D = D_0 u ... u D_{p-1} is cut into p chunks, one per
/// worker, and worker j holds q of them, D_j, D_{j+1}, ..., D_{j+q-1} (indices mod p). The redundancy is mu = q / p;
/// q = 1 is plain local SGD on disjoint shards, q = p gives every worker the whole data set. Every chunk is held by
/// exactly q workers (j - q + 1 .. j), so any q - 1 workers can fail without losing data.
/// <para>
/// Chunks are contiguous ranges of sample indices, each of floor(count / p) samples (the last count mod p samples
/// are in no chunk, so every worker holds the same number of samples and runs the same number of steps).
/// Worker j draws its mini-batches from all it holds (<see cref="Training.ChunkSampler"/>).
/// </para>
/// <para>
/// The ranges are positions in an order of the samples: the file's order (<c>--split chunks</c>; Fashion-MNIST's
/// files are class-shuffled, so every chunk holds about count / (p K) samples of each of the K classes: i.i.d.), or
/// the samples sorted by label (<see cref="ClassOrder"/>, <c>--split chunks-by-class</c>), so that chunk k holds
/// the classes of positions [k n, (k+1) n) only: with K balanced classes about K / p + 1 of them. That is the
/// non-i.i.d. setting whose residual error O((1 - q/p) beta) the slides' analysis is about.
/// </para>
/// </summary>
internal static class RedundantChunks
{
    /// <summary>Fails with an <see cref="InputException"/> unless 1 &lt;= q &lt;= p.</summary>
    public static void Validate(int p, int q)
    {
        if (p < 1)
        {
            throw new InputException($"RI-SGD needs at least one worker; got p = {p}.");
        }

        if (q < 1 || q > p)
        {
            throw new InputException(
                $"redundancy q = {q} is invalid for p = {p} workers: each worker holds q of the p data chunks, " +
                $"so q must be between 1 and {p}.");
        }
    }

    /// <summary>The chunks worker <paramref name="worker"/> holds: j, j+1, ..., j+q-1 (mod p).</summary>
    public static int[] ChunksOf(int worker, int p, int q)
    {
        Validate(p, q);
        CheckWorker(worker, p);
        var chunks = new int[q];
        for (var k = 0; k < q; k++)
        {
            chunks[k] = (worker + k) % p;
        }

        return chunks;
    }

    /// <summary>Samples per chunk: floor(count / p).</summary>
    public static int ChunkSize(int count, int p)
    {
        if (p < 1 || count < p)
        {
            throw new InputException($"{count} samples cannot be cut into {p} non-empty chunks, one per worker.");
        }

        return count / p;
    }

    /// <summary>The sample range [Start, End) of chunk <paramref name="chunk"/> when <paramref name="count"/> samples are cut into p chunks.</summary>
    public static (int Start, int End) ChunkRange(int chunk, int count, int p)
    {
        var size = ChunkSize(count, p);
        if ((uint)chunk >= (uint)p)
        {
            throw new ArgumentOutOfRangeException(nameof(chunk), $"chunk {chunk} is outside 0..{p - 1}.");
        }

        return (chunk * size, (chunk + 1) * size);
    }

    /// <summary>
    /// The sample indices worker <paramref name="worker"/> holds: its chunks' ranges, in chunk order. With
    /// <paramref name="order"/> the ranges are positions in it (sample order[i] at position i); without, the
    /// positions are the sample indices.
    /// </summary>
    public static int[] HeldSamples(int worker, int count, int p, int q, IReadOnlyList<int>? order = null)
    {
        if (order is not null && order.Count != count)
        {
            throw new ArgumentException($"an order of {order.Count} samples for {count} samples", nameof(order));
        }

        var chunks = ChunksOf(worker, p, q);
        var size = ChunkSize(count, p);
        var held = new int[chunks.Length * size];
        var next = 0;
        foreach (var chunk in chunks)
        {
            var (start, end) = ChunkRange(chunk, count, p);
            for (var position = start; position < end; position++)
            {
                held[next++] = order is null ? position : order[position];
            }
        }

        return held;
    }

    /// <summary>The sample indices sorted by label, ties by index (a stable sort: the same order on every rank).</summary>
    public static int[] ClassOrder(IReadOnlyList<int> labels)
    {
        var order = Enumerable.Range(0, labels.Count).ToArray();
        return [.. order.OrderBy(i => labels[i]).ThenBy(i => i)];
    }

    /// <summary>The distinct labels of each of the p chunks (ascending), the samples taken in <paramref name="order"/>
    /// (null: index order).</summary>
    public static int[][] ClassesPerChunk(IReadOnlyList<int> labels, int p, IReadOnlyList<int>? order = null)
    {
        var classes = new int[p][];
        for (var chunk = 0; chunk < p; chunk++)
        {
            var (start, end) = ChunkRange(chunk, labels.Count, p);
            var present = new SortedSet<int>();
            for (var position = start; position < end; position++)
            {
                present.Add(labels[order is null ? position : order[position]]);
            }

            classes[chunk] = [.. present];
        }

        return classes;
    }

    /// <summary>Which chunks the workers in <paramref name="aliveWorkers"/> still hold, and which no one holds.</summary>
    public static ChunkCoverage Covered(IEnumerable<int> aliveWorkers, int p, int q)
    {
        Validate(p, q);
        var held = new bool[p];
        foreach (var worker in aliveWorkers)
        {
            foreach (var chunk in ChunksOf(worker, p, q))
            {
                held[chunk] = true;
            }
        }

        var covered = new List<int>();
        var missing = new List<int>();
        for (var chunk = 0; chunk < p; chunk++)
        {
            (held[chunk] ? covered : missing).Add(chunk);
        }

        return new ChunkCoverage(covered, missing);
    }

    private static void CheckWorker(int worker, int p)
    {
        if ((uint)worker >= (uint)p)
        {
            throw new ArgumentOutOfRangeException(nameof(worker), $"worker {worker} is outside 0..{p - 1}.");
        }
    }
}
