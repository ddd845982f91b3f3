using MpiPipeline.Mpi;

namespace MpiPipeline.Smoothing;

/// <summary>
/// The paper's clock: one forward or one backward operation of one node is one time unit, and every node runs one
/// operation at a time. A chain of depth Delta evaluating f and its gradient at K points pushed through it as K
/// micro-batches (all forwards, then all backwards, as GPipe) finishes after
/// <code>2 (K + Delta - 1)</code>
/// time units (supplement Eq. 14): K - 1 units for the later micro-batches to follow the first, Delta to cross the
/// chain, each way. GD and AGD evaluate one point per iteration: 2 Delta units. Run one point after the other with
/// no pipelining, the same K points take 2 K Delta.
/// </summary>
internal static class TimeUnits
{
    /// <summary>2 (K + Delta - 1): one pipelined evaluation of K points (supplement Eq. 14).</summary>
    public static long PipelinedEvaluation(int samples, int depth)
    {
        Validate(samples, depth);
        return 2L * (samples + depth - 1);
    }

    /// <summary>2 K Delta: the same K points one after the other, no pipelining (the node operations counted).</summary>
    public static long SequentialEvaluation(int samples, int depth)
    {
        Validate(samples, depth);
        return 2L * samples * depth;
    }

    /// <summary>2 T (K + Delta - 1): T iterations of K samples each (left side of supplement Eq. 14).</summary>
    public static long PipelinedRun(int iterations, int samples, int depth)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(iterations);
        return iterations * PipelinedEvaluation(samples, depth);
    }

    /// <summary>The most iterations of K samples that fit in <paramref name="budget"/> time units: floor(t / (2 (K + Delta - 1))).</summary>
    public static int IterationsWithin(long budget, int samples, int depth)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(budget);
        return (int)Math.Min(int.MaxValue, budget / PipelinedEvaluation(samples, depth));
    }

    private static void Validate(int samples, int depth)
    {
        if (samples < 1 || depth < 1)
        {
            throw new InputException($"an evaluation needs K >= 1 samples and a depth Delta >= 1, not K = {samples}, Delta = {depth}");
        }
    }
}
