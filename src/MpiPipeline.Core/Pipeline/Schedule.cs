using MpiPipeline.Mpi;

namespace MpiPipeline.Pipeline;

/// <summary>The pipeline schedules this program runs.</summary>
internal enum ScheduleKind
{
    /// <summary>GPipe (Huang et al. 2019; torchgpipe): every forward, then every backward.</summary>
    GPipe,

    /// <summary>1F1B, "PipeDream-flush" (Narayanan et al. 2021) / Megatron-LM's non-interleaved schedule.</summary>
    OneFOneB,
}

/// <summary>
/// A pipeline schedule: for S stages and a mini-batch cut into M micro-batches, each stage's ordered list of steps.
/// Pure functions of (S, M), no MPI, no tensors: the executor walks <c>schedule[s]</c> on the rank of stage s, and the
/// tests compare these lists with literal tables (the way torchgpipe tests <c>clock_cycles(m, n)</c>).
/// <para>
/// Notation (GPipe paper, torchgpipe): stage s = 0 .. S-1 (F_{i,s} in the paper's figure), micro-batch i = 0 .. M-1.
/// Every stage runs forward i and backward i exactly once for each i. A compute step is wrapped by its
/// communication: forward i is <c>rF i, F i, sF i</c> (no receive on stage 0, no send on the last stage),
/// backward i is <c>rB i, B i, sB i</c> (no receive on the last stage, whose backward starts from the loss;
/// no send on stage 0).
/// </para>
/// <para>
/// Messages between two neighbours go in the same order on both sides (first in, first out per direction), so the
/// executor can match them with one tag per direction; the tests check that. Both schedules complete when sends
/// are nonblocking (Isend) and receives block. 1F1B does not complete with blocking synchronous sends
/// (MPI_Ssend, or a large message under a rendezvous protocol) once S &gt;= 2 and M &gt;= 2: in the steady state
/// stage s sends forward i+1 while stage s+1 sends backward i back, each waiting for the other to receive.
/// Megatron-LM pairs those two as one send-and-receive; here the executor uses Isend and waits later.
/// </para>
/// </summary>
internal sealed class Schedule
{
    private readonly ScheduleStep[][] stepsPerStage;

    private Schedule(ScheduleKind kind, int stages, int microBatches, ScheduleStep[][] stepsPerStage)
    {
        Kind = kind;
        Stages = stages;
        MicroBatches = microBatches;
        this.stepsPerStage = stepsPerStage;
    }

    public ScheduleKind Kind { get; }

    /// <summary>S, the number of pipeline stages.</summary>
    public int Stages { get; }

    /// <summary>M, the number of micro-batches per mini-batch.</summary>
    public int MicroBatches { get; }

    /// <summary>Stage <paramref name="stage"/>'s steps, in the order it runs them.</summary>
    public IReadOnlyList<ScheduleStep> this[int stage] => stepsPerStage[stage];

    public static Schedule Create(ScheduleKind kind, int stages, int microBatches) => kind switch
    {
        ScheduleKind.GPipe => GPipe(stages, microBatches),
        ScheduleKind.OneFOneB => OneFOneB(stages, microBatches),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>
    /// GPipe: the forward passes of all M micro-batches, then their backward passes, on every stage. Activations of
    /// all M micro-batches are alive at once on every stage (peak in flight = M).
    /// <para>
    /// Backward in reverse order, M-1 .. 0, as in GPipe and torchgpipe, where one autograd backward over the
    /// mini-batch visits the micro-batches in the reverse of their forward order. The last stage has just finished
    /// F(M-1) and can start B(M-1) on the spot; the pipeline drains in the reverse of the order it filled. (Forward
    /// order 0 .. M-1 takes the same time with free communication; reverse keeps the order in which the
    /// micro-batches' gradients accumulate the same as torchgpipe's.)
    /// </para>
    /// </summary>
    public static Schedule GPipe(int stages, int microBatches) => Build(ScheduleKind.GPipe, stages, microBatches, _ =>
    [
        .. Enumerable.Range(0, microBatches).Select(i => (Pass.Forward, i)),            // fill: F0 .. F(M-1)
        .. Enumerable.Range(0, microBatches).Reverse().Select(i => (Pass.Backward, i)), // drain: B(M-1) .. B0
    ]);

    /// <summary>
    /// 1F1B (PipeDream-flush; Megatron-LM <c>forward_backward_pipelining_without_interleaving</c>). On stage s:
    /// <list type="number">
    /// <item>warm-up: w = min(S - s - 1, M) forwards, F0 .. F(w-1), to fill the pipeline below this stage;</item>
    /// <item>steady state: for j = 0 .. M-w-1, one forward F(w+j) then one backward Bj;</item>
    /// <item>cool-down: the remaining backwards B(M-w) .. B(M-1).</item>
    /// </list>
    /// Backwards run in forward order, so a micro-batch's activations are freed as early as possible: at most
    /// min(S - s, M) micro-batches are in flight on stage s (forward done, backward not yet), against M for GPipe.
    /// The last stage has no warm-up: F0 B0 F1 B1 ... The total time with unit-time passes is the same as GPipe's.
    /// </summary>
    public static Schedule OneFOneB(int stages, int microBatches) => Build(ScheduleKind.OneFOneB, stages, microBatches, s =>
    {
        var warmUp = Math.Min(stages - s - 1, microBatches);
        var steady = microBatches - warmUp;
        return
        [
            .. Enumerable.Range(0, warmUp).Select(i => (Pass.Forward, i)),
            .. Enumerable.Range(0, steady).SelectMany(j => new[] { (Pass.Forward, warmUp + j), (Pass.Backward, j) }),
            .. Enumerable.Range(steady, warmUp).Select(j => (Pass.Backward, j)),
        ];
    });

    /// <summary>A schedule from each stage's compute passes in order (the messages around them added).</summary>
    private static Schedule Build(ScheduleKind kind, int stages, int microBatches, Func<int, List<(Pass Pass, int MicroBatch)>> computeOnStage)
    {
        Validate(stages, microBatches);
        return new Schedule(kind, stages, microBatches, [.. Enumerable.Range(0, stages).Select(s => WithCommunication(computeOnStage(s), s, stages))]);
    }

    /// <summary>
    /// The most micro-batches whose forward is done and whose backward is not yet, at any point of
    /// <paramref name="steps"/>: how many micro-batches' activations a stage keeps at once.
    /// </summary>
    public static int PeakInFlight(IEnumerable<ScheduleStep> steps)
    {
        int inFlight = 0, peak = 0;
        foreach (var step in steps)
        {
            if (step.Kind == StepKind.Forward)
            {
                peak = Math.Max(peak, ++inFlight);
            }
            else if (step.Kind == StepKind.Backward)
            {
                inFlight--;
            }
        }

        return peak;
    }

    /// <summary>
    /// The clock-cycle view (torchgpipe's <c>clock_cycles</c>, here for both schedules and for backwards too): with
    /// unit-time forward and backward passes and free communication, element t lists the compute tasks that start
    /// at time t, by stage. There are 2 (M + S - 1) clock cycles for both schedules.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<ClockTask>> ClockCycles()
    {
        var ones = Enumerable.Repeat(1.0, Stages).ToArray();
        var tasks = PipelineTiming.Simulate(this, ones, ones);
        var cycles = (int)tasks.Max(t => t.End);
        var byCycle = new List<ClockTask>[cycles];
        for (var t = 0; t < cycles; t++)
        {
            byCycle[t] = [];
        }

        foreach (var task in tasks.OrderBy(t => t.Stage))
        {
            byCycle[(int)task.Start].Add(new ClockTask(task.Stage, task.MicroBatch, task.Pass));
        }

        return byCycle;
    }

    /// <summary>Steps as compact text, e.g. <c>rF0 F0 sF0 rB0 B0 sB0</c>, or <c>F0 B0</c> without communication.</summary>
    public static string Format(IEnumerable<ScheduleStep> steps, bool withCommunication = true) =>
        string.Join(' ', steps.Where(s => withCommunication || s.IsCompute));

    /// <summary>Clock cycles as compact text: tasks of one cycle separated by spaces, cycles by <c> | </c>.</summary>
    public static string Format(IEnumerable<IReadOnlyList<ClockTask>> cycles) =>
        string.Join(" | ", cycles.Select(c => string.Join(' ', c)));

    private static void Validate(int stages, int microBatches)
    {
        if (stages < 1)
        {
            throw new InputException($"a pipeline needs at least 1 stage, not {stages}");
        }

        if (microBatches < 1)
        {
            throw new InputException($"a pipeline needs at least 1 micro-batch per mini-batch, not {microBatches}");
        }
    }

    /// <summary>Wraps each compute step of stage <paramref name="stage"/> in the receive before it and the send after it.</summary>
    private static ScheduleStep[] WithCommunication(List<(Pass Pass, int MicroBatch)> compute, int stage, int stages)
    {
        var isFirst = stage == 0;
        var isLast = stage == stages - 1;
        var steps = new List<ScheduleStep>(3 * compute.Count);
        foreach (var (pass, i) in compute)
        {
            if (pass == Pass.Forward)
            {
                if (!isFirst)
                {
                    steps.Add(new ScheduleStep(StepKind.RecvForward, i));
                }

                steps.Add(new ScheduleStep(StepKind.Forward, i));
                if (!isLast)
                {
                    steps.Add(new ScheduleStep(StepKind.SendForward, i));
                }
            }
            else
            {
                if (!isLast)
                {
                    steps.Add(new ScheduleStep(StepKind.RecvBackward, i));
                }

                steps.Add(new ScheduleStep(StepKind.Backward, i));
                if (!isFirst)
                {
                    steps.Add(new ScheduleStep(StepKind.SendBackward, i));
                }
            }
        }

        return [.. steps];
    }
}
