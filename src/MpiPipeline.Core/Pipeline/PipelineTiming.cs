using MpiPipeline.Mpi;

namespace MpiPipeline.Pipeline;

/// <summary>A compute task of a simulated schedule, with its start and end time.</summary>
internal readonly record struct TimedTask(int Stage, int MicroBatch, Pass Pass, double Start, double End);

/// <summary>
/// The ideal time of a pipelined mini-batch and its bubble, the yardstick the benchmark measures against.
/// <para>
/// With S stages, M micro-batches and every stage taking t_f per forward and t_b per backward of one micro-batch,
/// both GPipe and 1F1B take
/// <code>T_ideal = (M + S - 1) (t_f + t_b)</code>
/// (communication free): M slots of useful work per stage plus S - 1 slots to fill the pipeline and S - 1 to drain it
/// (half in the forward direction, half in the backward). Each stage is busy M (t_f + t_b) of that, so the idle
/// share, the bubble, is
/// <code>bubble = (S - 1) / (M + S - 1)</code>
/// (GPipe paper, section 2.3: O((K - 1) / (M + K - 1)) with K partitions).
/// </para>
/// <para>
/// With measured per-stage times t_f,s and t_b,s that differ, the slowest stage sets the pace of the steady state:
/// <code>T_ideal ~ (M + S - 1) max_s (t_f,s + t_b,s)</code>
/// is what <see cref="IdealTime(int, IReadOnlyList{double}, IReadOnlyList{double})"/> returns, with the bubble
/// fraction unchanged. It equals the first formula when the stages are equal. It is an estimate, not a bound either
/// way: a pipeline with one slow stage and fast others finishes sooner (about M times the slow stage), and one where
/// the slowest forward and the slowest backward are on different stages can take longer (stage 0 with t_f = 10,
/// t_b = 0 and stage 1 with t_f = 0, t_b = 10: GPipe takes 40 for M = 2, not 30). What always holds is
/// <code>T &lt;= (M + S - 1) (max_s t_f,s + max_s t_b,s)</code>
/// and <see cref="SimulatedTime"/> gives the exact time of a schedule's order for given per-stage times with free
/// communication, the sharpest ideal to measure against.
/// </para>
/// </summary>
internal static class PipelineTiming
{
    /// <summary>T_ideal = (M + S - 1) (t_f + t_b), for equal stages; the same for GPipe and 1F1B.</summary>
    public static double IdealTime(int stages, int microBatches, double forwardTime, double backwardTime)
    {
        ValidateShape(stages, microBatches);
        ValidateTime(forwardTime, nameof(forwardTime));
        ValidateTime(backwardTime, nameof(backwardTime));
        return (microBatches + stages - 1) * (forwardTime + backwardTime);
    }

    /// <summary>
    /// T_ideal ~ (M + S - 1) max_s (t_f,s + t_b,s) from measured per-stage times (S = the lists' length): the slowest
    /// stage dominates. An estimate (see the class comment); <see cref="SimulatedTime"/> is exact for a schedule.
    /// </summary>
    public static double IdealTime(int microBatches, IReadOnlyList<double> forwardTimes, IReadOnlyList<double> backwardTimes)
    {
        var stages = ValidateTimes(forwardTimes, backwardTimes);
        ValidateShape(stages, microBatches);
        return (microBatches + stages - 1) * forwardTimes.Zip(backwardTimes, (f, b) => f + b).Max();
    }

    /// <summary>The idle share of the ideal time on each stage: (S - 1) / (M + S - 1).</summary>
    public static double BubbleFraction(int stages, int microBatches)
    {
        ValidateShape(stages, microBatches);
        return (double)(stages - 1) / (microBatches + stages - 1);
    }

    /// <summary>
    /// Runs <paramref name="schedule"/>'s order on an idealized machine: stage s takes <c>forwardTimes[s]</c> per
    /// forward and <c>backwardTimes[s]</c> per backward, communication is free, and a task starts as soon as its stage
    /// is free and its input is there (forward i on stage s after forward i on s - 1; backward i on s after backward i
    /// on s + 1). Returns every compute task with its start and end; the latest end is the schedule's time.
    /// </summary>
    public static IReadOnlyList<TimedTask> Simulate(Schedule schedule, IReadOnlyList<double> forwardTimes, IReadOnlyList<double> backwardTimes)
    {
        var stages = ValidateTimes(forwardTimes, backwardTimes);
        if (stages != schedule.Stages)
        {
            throw new ArgumentException($"{stages} stage times for a schedule of {schedule.Stages} stages");
        }

        var microBatches = schedule.MicroBatches;
        var compute = Enumerable.Range(0, stages).Select(s => schedule[s].Where(step => step.IsCompute).ToArray()).ToArray();
        var forwardEnd = NotYet(stages, microBatches);
        var backwardEnd = NotYet(stages, microBatches);
        var next = new int[stages];
        var stageFree = new double[stages];
        var tasks = new List<TimedTask>(2 * stages * microBatches);

        for (var progress = true; progress;)
        {
            progress = false;
            for (var s = 0; s < stages; s++)
            {
                while (next[s] < compute[s].Length)
                {
                    var step = compute[s][next[s]];
                    var i = step.MicroBatch;
                    var isForward = step.Kind == StepKind.Forward;
                    double inputReady = isForward
                        ? (s == 0 ? 0 : forwardEnd[s - 1][i])
                        : (s == stages - 1 ? forwardEnd[s][i] : backwardEnd[s + 1][i]);
                    if (double.IsNaN(inputReady))
                    {
                        break; // waits for a neighbour
                    }

                    var start = Math.Max(stageFree[s], inputReady);
                    var end = start + (isForward ? forwardTimes[s] : backwardTimes[s]);
                    (isForward ? forwardEnd : backwardEnd)[s][i] = end;
                    stageFree[s] = end;
                    tasks.Add(new TimedTask(s, i, isForward ? Pass.Forward : Pass.Backward, start, end));
                    next[s]++;
                    progress = true;
                }
            }
        }

        if (tasks.Count != 2 * stages * microBatches)
        {
            throw new InvalidOperationException($"{schedule.Kind} ({stages} stages, {microBatches} micro-batches) never finishes");
        }

        return tasks;
    }

    /// <summary>The latest end of <see cref="Simulate"/>: the schedule's time for the given per-stage times.</summary>
    public static double SimulatedTime(Schedule schedule, IReadOnlyList<double> forwardTimes, IReadOnlyList<double> backwardTimes) =>
        Simulate(schedule, forwardTimes, backwardTimes).Max(t => t.End);

    private static double[][] NotYet(int stages, int microBatches) =>
        Enumerable.Range(0, stages).Select(_ => Enumerable.Repeat(double.NaN, microBatches).ToArray()).ToArray();

    private static void ValidateShape(int stages, int microBatches)
    {
        if (stages < 1 || microBatches < 1)
        {
            throw new InputException($"a pipeline needs at least 1 stage and 1 micro-batch, not {stages} stages and {microBatches} micro-batches");
        }
    }

    private static void ValidateTime(double time, string name)
    {
        if (!double.IsFinite(time) || time < 0)
        {
            throw new ArgumentOutOfRangeException(name, time, "a time must be finite and >= 0");
        }
    }

    private static int ValidateTimes(IReadOnlyList<double> forwardTimes, IReadOnlyList<double> backwardTimes)
    {
        if (forwardTimes.Count == 0 || forwardTimes.Count != backwardTimes.Count)
        {
            throw new ArgumentException(
                $"one forward and one backward time per stage: got {forwardTimes.Count} forward and {backwardTimes.Count} backward times");
        }

        for (var s = 0; s < forwardTimes.Count; s++)
        {
            ValidateTime(forwardTimes[s], nameof(forwardTimes));
            ValidateTime(backwardTimes[s], nameof(backwardTimes));
        }

        return forwardTimes.Count;
    }
}
