using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;
using MpiPipeline.Mpi;
using MpiPipeline.Torch;

namespace MpiPipeline.Training;

/// <summary><c>--on-nonfinite</c>: what a step with a non-finite loss or gradient does.</summary>
internal enum NonFinitePolicy
{
    /// <summary>The run stops at that step, on every rank (the default).</summary>
    Stop,

    /// <summary>The step's update is dropped on every rank and counted; after --max-skipped-steps such steps the next one stops the run.</summary>
    SkipStep,
}

/// <summary>The rank that saw a non-finite value at a step, and what it saw: the first (in the group's order) with a
/// non-finite loss, else the first with a non-finite gradient norm.</summary>
/// <param name="Rank">Its rank in MPI_COMM_WORLD.</param>
/// <param name="Loss">Its mini-batch loss; null on a rank that holds none (a pipeline's inner stages).</param>
/// <param name="GradientNorm">The L2 norm of its (averaged, where the algorithm averages) flat gradient.</param>
internal readonly record struct NonFiniteValue(int Rank, double? Loss, double GradientNorm)
{
    /// <summary>The quantity that is not finite, the loss first.</summary>
    public string Quantity => LossIsBad ? "loss" : "gradient norm";

    public double Value => LossIsBad ? Loss!.Value : GradientNorm;

    public bool LossIsBad => Loss is double loss && !double.IsFinite(loss);

    /// <summary>What one rank saw: null when its loss and gradient norm are finite.</summary>
    public static NonFiniteValue? Of(int rank, LossResult loss, ReadOnlySpan<float> gradients) => Of(rank, loss, SquaredNorm(gradients));

    /// <summary>What one rank saw, from its gradient's squared norm (a sum over buffers: no copy into one span).</summary>
    public static NonFiniteValue? Of(int rank, LossResult loss, double gradientSquaredNorm)
    {
        double? batchLoss = loss.Count > 0 ? loss.Loss : null;
        var norm = Math.Sqrt(gradientSquaredNorm);
        return (batchLoss is double l && !double.IsFinite(l)) || !double.IsFinite(norm) ? new NonFiniteValue(rank, batchLoss, norm) : null;
    }

    /// <summary>sum of squares in double: infinite or NaN exactly when an element is (no float overflow for large finite ones).</summary>
    internal static double SquaredNorm(ReadOnlySpan<float> values)
    {
        var vectors = MemoryMarshal.Cast<float, Vector<float>>(values);
        var sum = Vector<double>.Zero;
        foreach (var v in vectors)
        {
            Vector.Widen(v, out var low, out var high);
            sum += (low * low) + (high * high);
        }

        var total = Vector.Sum(sum);
        for (var i = vectors.Length * Vector<float>.Count; i < values.Length; i++)
        {
            total += (double)values[i] * values[i];
        }

        return total;
    }
}

/// <summary>
/// A run stopped because training diverged: at <see cref="Step"/> (counted from 1, as the loss curve counts), the
/// value <see cref="Seen"/> was not finite; <see cref="SkippedSteps"/> steps had been skipped before (--on-nonfinite
/// skip-step).
/// </summary>
internal sealed record Divergence(long Step, NonFiniteValue Seen, int SkippedSteps)
{
    /// <summary>The exit status of a diverged run, on every rank.</summary>
    public const int ExitCode = 4;

    public string Describe(TrainOptions options)
    {
        var v = Seen;
        var value = v.Value.ToString(CultureInfo.InvariantCulture);
        var other = v.Quantity == "loss"
            ? $"gradient norm {v.GradientNorm.ToString("G4", CultureInfo.InvariantCulture)}"
            : v.Loss is double loss ? $"loss {loss.ToString("G4", CultureInfo.InvariantCulture)}" : "no loss on that rank";
        var skipped = SkippedSteps > 0 ? $"; {SkippedSteps} earlier step(s) with non-finite values were skipped ({TrainFlags.MaxSkippedSteps} {options.MaxSkippedSteps})" : "";
        var lr = options.LearningRate.ToString(CultureInfo.InvariantCulture);
        return $"training diverged at step {Step}: the {v.Quantity} is {value} on rank {v.Rank} ({other}){skipped}. " +
            $"The likely cause is a learning rate too high for this model and batch: try a smaller {TrainFlags.LearningRate} (got {lr}; e.g. {TrainFlags.LearningRate} " +
            $"{(options.LearningRate / 10).ToString(CultureInfo.InvariantCulture)}). The results are marked \"diverged\".";
    }
}

/// <summary>
/// The divergence guard: every step, before the update, the ranks agree whether any of them saw a non-finite loss or
/// gradient norm, and all take the same decision: apply the update, skip it (<see cref="NonFinitePolicy.SkipStep"/>),
/// or stop (<see cref="Diverged"/> set). The agreement is one tiny Allreduce (MIN over "my rank if I saw one") and,
/// only at a non-finite step, a Bcast of that rank's values, so every rank holds the same <see cref="Divergence"/>.
/// A separate reduction, not a flag folded into the gradient Allreduce: local SGD and RI-SGD have no reduction at most
/// steps, and "within one step" needs one every step. <see cref="Decide"/> is the decision alone (tested without MPI).
/// </summary>
internal sealed class NonFiniteGuard(NonFinitePolicy policy, int maxSkippedSteps, IReadOnlySet<(int Rank, long Step)>? poisoned = null)
{
    /// <summary>The tests' hook: "rank:step,..." (steps counted from 1) makes that world rank see a NaN loss at that
    /// step (its real values untouched), so that a test can make one rank alone see one.</summary>
    public const string PoisonVariable = "MPIPIPE_TEST_NONFINITE_AT";

    private readonly List<long> skipped = [];

    public static NonFiniteGuard For(TrainOptions options) =>
        new(options.OnNonFinite, options.MaxSkippedSteps, ParsePoison(Environment.GetEnvironmentVariable(PoisonVariable)));

    /// <summary>Parses <see cref="PoisonVariable"/>: "rank:step" pairs separated by commas, or nothing.</summary>
    internal static IReadOnlySet<(int Rank, long Step)>? ParsePoison(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var set = new HashSet<(int, long)>();
        foreach (var pair in text.Split(','))
        {
            var parts = pair.Split(':');
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var rank)
                || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var step) || step < 1)
            {
                throw new InputException($"{PoisonVariable}='{text}' is not rank:step[,rank:step...] with steps from 1 (e.g. 1:3)");
            }

            set.Add((rank, step));
        }

        return set;
    }

    /// <summary>Steps (counted from 1) whose update was dropped, in order.</summary>
    public IReadOnlyList<long> SkippedSteps => skipped;

    /// <summary>A resumed run takes over the skips its checkpoint counted (they count against the limit).</summary>
    public void Resume(IEnumerable<long> skippedSteps) => skipped.AddRange(skippedSteps);

    /// <summary>True when step t (from 0) was checked and its update dropped (the loop leaves its loss out of the figures).</summary>
    public bool Skipped(long t) => skipped.Count > 0 && skipped[^1] == t + 1;

    /// <summary>Set, identically on every rank, once the run has diverged; the engines do no update after it.</summary>
    public Divergence? Diverged { get; private set; }

    /// <summary>
    /// Step t (from 0): the group agrees on what its ranks saw (<paramref name="loss"/> and <paramref name="gradients"/>
    /// of this rank) and returns true when the update applies. Every rank of <paramref name="group"/> calls it at the
    /// same step.
    /// </summary>
    public bool Check(long t, Communicator group, int worldRank, LossResult loss, ReadOnlySpan<float> gradients, IdleWait? wait = null) =>
        Check(t, group, worldRank, loss, NonFiniteValue.SquaredNorm(gradients), wait);

    /// <summary><see cref="Check(long, Communicator, int, LossResult, ReadOnlySpan{float}, IdleWait?)"/> from the squared
    /// norm of this rank's gradients (an engine whose gradients lie in several buffers sums their squared norms).</summary>
    public bool Check(long t, Communicator group, int worldRank, LossResult loss, double gradientSquaredNorm, IdleWait? wait = null)
    {
        var local = Seen(t, worldRank, loss, gradientSquaredNorm);
        if (group.Size == 1)
        {
            return Decide(t, local);
        }

        // MIN over: a rank with a non-finite loss (its rank), else one with a non-finite gradient (size + its rank).
        Span<double> first = [local is not { } bad ? double.PositiveInfinity : bad.LossIsBad ? group.Rank : group.Size + group.Rank];
        if (wait is { } idle)
        {
            group.Allreduce(first, ReduceOp.Min, idle);
        }
        else
        {
            group.Allreduce(first, ReduceOp.Min);
        }

        if (double.IsPositiveInfinity(first[0]))
        {
            return Decide(t, null);
        }

        var root = (int)first[0] % group.Size;
        Span<double> seen = stackalloc double[4];
        if (root == group.Rank && local is { } mine)
        {
            (seen[0], seen[1], seen[2], seen[3]) = (mine.Rank, mine.Loss is null ? 0 : 1, mine.Loss ?? 0, mine.GradientNorm);
        }

        group.Bcast(seen, root);
        return Decide(t, new NonFiniteValue((int)seen[0], seen[1] != 0 ? seen[2] : null, seen[3]));
    }

    /// <summary>
    /// Step t (from 0) decided by one rank alone, with no collective: the loss and gradient that world rank
    /// <paramref name="worldRank"/> computed (dasgd's master checks each gradient it applies; its workers learn the
    /// outcome from it, <see cref="Adopt"/>). True when the update applies.
    /// </summary>
    public bool CheckAlone(long t, int worldRank, LossResult loss, ReadOnlySpan<float> gradients) =>
        Decide(t, Seen(t, worldRank, loss, NonFiniteValue.SquaredNorm(gradients)));

    /// <summary>A rank that checked nothing itself takes the divergence the deciding rank found (sent to it), so that
    /// it ends the run as diverged too.</summary>
    public void Adopt(Divergence divergence) => Diverged ??= divergence;

    /// <summary>What this rank saw at step t (from 0), the tests' hook included: null when every value is finite.</summary>
    private NonFiniteValue? Seen(long t, int worldRank, LossResult loss, double gradientSquaredNorm) =>
        poisoned?.Contains((worldRank, t + 1)) == true
            ? new NonFiniteValue(worldRank, double.NaN, Math.Sqrt(gradientSquaredNorm))
            : NonFiniteValue.Of(worldRank, loss, gradientSquaredNorm);

    /// <summary>The decision for step t (from 0) given what the ranks agreed on (null: every value finite).</summary>
    public bool Decide(long t, NonFiniteValue? seen)
    {
        if (Diverged is not null)
        {
            throw new InvalidOperationException($"step {t + 1} checked after the run diverged at step {Diverged.Step}");
        }

        if (seen is not { } value)
        {
            return true;
        }

        if (policy == NonFinitePolicy.SkipStep && skipped.Count < maxSkippedSteps)
        {
            skipped.Add(t + 1);
            return false;
        }

        Diverged = new Divergence(t + 1, value, skipped.Count);
        return false;
    }
}
