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
/// <para>
/// A finite sum f = (1/m) sum_(i=1..m) f_i (m data micro-batches, each term f_i running through the whole chain) makes
/// one evaluation of f at one point m micro-batches, and of K points K m: 2 (K m + Delta - 1) time units. That is the
/// cost model behind the poster's rates. The pipelined subgradient method takes T = O((RL/eps)^2) iterations of one
/// point, 2 (m + Delta - 1) each: O((RL/eps)^2 (m + Delta)). PPRS takes T = O((RL/eps) d^(1/4)) iterations (Eq. 13) of
/// K = ceil((T+1)/sqrt d) points, 2 (K m + Delta - 1) each: T K m + T Delta = O((RL/eps)^2 m + (RL/eps) Delta d^(1/4)).
/// The supplement (m = 1) has no m-term; with m = 1 every formula here is its Eq. 14.
/// </para>
/// </summary>
internal static class TimeUnits
{
    /// <summary>2 (K m + Delta - 1): one pipelined evaluation of K points on m terms (supplement Eq. 14 for m = 1).</summary>
    public static long PipelinedEvaluation(int samples, int depth, int terms = 1)
    {
        Validate(samples, depth, terms);
        return 2L * ((long)samples * terms + depth - 1);
    }

    /// <summary>2 K m Delta: the same K m micro-batches one after the other, no pipelining (the node operations counted).</summary>
    public static long SequentialEvaluation(int samples, int depth, int terms = 1)
    {
        Validate(samples, depth, terms);
        return 2L * samples * terms * depth;
    }

    /// <summary>2 T (K m + Delta - 1): T iterations of K samples each (left side of supplement Eq. 14 for m = 1).</summary>
    public static long PipelinedRun(int iterations, int samples, int depth, int terms = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(iterations);
        return iterations * PipelinedEvaluation(samples, depth, terms);
    }

    /// <summary>The most iterations of K samples that fit in <paramref name="budget"/> time units: floor(t / (2 (K m + Delta - 1))).</summary>
    public static int IterationsWithin(long budget, int samples, int depth, int terms = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(budget);
        return (int)Math.Min(int.MaxValue, budget / PipelinedEvaluation(samples, depth, terms));
    }

    private static void Validate(int samples, int depth, int terms)
    {
        if (samples < 1 || depth < 1 || terms < 1)
        {
            throw new InputException($"an evaluation needs K >= 1 samples, a depth Delta >= 1 and m >= 1 terms, not K = {samples}, Delta = {depth}, m = {terms}");
        }
    }
}
