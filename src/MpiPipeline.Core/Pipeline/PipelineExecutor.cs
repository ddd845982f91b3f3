using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Pipeline;

/// <summary>
/// Runs one stage's part of a pipelined mini-batch: walks <c>schedule[s]</c> (<see cref="Schedule"/>) step by step on
/// the rank of stage s, with point-to-point messages to its neighbours on the replica's pipeline communicator.
/// <list type="bullet">
/// <item>Receives are posted early: at the start of a mini-batch the first W receives of each direction (W = the
/// schedule's peak in flight on this stage: M for GPipe, min(S - s, M) for 1F1B), and the next one each time a
/// received buffer has been consumed, so a message finds its receive already posted and at most W buffers per
/// direction exist.</item>
/// <item>Sends are nonblocking (Isend) and completed later - tested before each compute step, waited for at the end
/// of the mini-batch: 1F1B deadlocks with blocking synchronous sends (stage s sends forward i+1 while stage s+1
/// sends backward i back; see <see cref="Schedule"/>).</item>
/// <item>Waits poll and give the core away (<see cref="Request.WaitPolling"/>) instead of MPI_Wait's busy poll: a stage
/// waiting for its neighbour must not take the core the neighbour computes on when ranks share cores. They yield
/// when every rank of the node has a core of its own (the lowest latency) and sleep when the node is oversubscribed
/// (<see cref="IdleWait"/>): a yielding rank stays runnable and still takes time slices from the stages that compute.
/// The timings behind both choices are in bench/results/pipeline.md.</item>
/// <item>Tags: 2 i for micro-batch i's activation, 2 i + 1 for its gradient, so a message can only match its own
/// receive. Shapes are known on every rank before the first message (<see cref="StageBuilder"/>); each receive
/// checks the size it got.</item>
/// <item>Graphs: forward i keeps its graph in slot i until backward i (<see cref="Stage.Forward"/>), so the stage
/// holds exactly the micro-batches the schedule has in flight; the executor records the bridge's count of them,
/// <see cref="Stage.LiveSlots"/>.</item>
/// <item>The last stage computes the loss right after its forward (<see cref="CrossEntropy"/>, scaled by 1/M so the
/// M micro-batch gradients accumulate to the mini-batch mean's) and keeps dL/dz for backward i.</item>
/// </list>
/// Gradients accumulate in the stage's flat buffer; zeroing them, averaging them over replicas and the optimizer
/// step are the trainer's.
/// </summary>
internal sealed class PipelineExecutor
{
    /// <summary>Tag of the evaluation activations (training uses 0 .. 2M - 1; MPI guarantees tags up to 32767).</summary>
    public const int EvaluationTag = 32767;

    /// <summary>The most micro-batches per mini-batch: 2M training tags must stay below <see cref="EvaluationTag"/>.</summary>
    public const int MaxMicroBatches = 16000;

    private const int ForwardDirection = 0;
    private const int BackwardDirection = 1;

    private readonly Stage stage;
    private readonly Communicator pipeline;
    private readonly IReadOnlyList<ScheduleStep> steps;
    private readonly int microBatches;
    private readonly int microBatchSize;
    private readonly ChromeTrace clock;
    private readonly IdleWait idle;
    private readonly ReceiveQueue? activations;
    private readonly ReceiveQueue? gradients;
    private readonly BufferPool outputPool;
    private readonly BufferPool inputGradientPool;
    private readonly BufferPool lossGradientPool;
    private readonly List<(Request Request, float[] Buffer, BufferPool Pool)> pendingSends = [];
    private readonly float[]?[] received;
    private readonly float[]?[] ready;
    private readonly float[] logits;
    private readonly List<TraceSpan> spans = [];
    private float[]? evaluationInput;
    private float[]? evaluationOutput;

    /// <param name="stage">Stage s's layers.</param>
    /// <param name="schedule">The schedule; this rank runs its row <paramref name="stageIndex"/>.</param>
    /// <param name="pipeline">The replica's pipeline communicator, whose rank is the stage index.</param>
    /// <param name="microBatchSize">Samples per micro-batch.</param>
    /// <param name="clock">Times the spans (its origin is common to all ranks).</param>
    /// <param name="idle">What a wait for a message does between polls: <see cref="IdleWait.Sleep"/> on an oversubscribed node.</param>
    public PipelineExecutor(Stage stage, Schedule schedule, int stageIndex, Communicator pipeline, int microBatchSize, ChromeTrace clock,
        IdleWait idle = IdleWait.Yield)
    {
        if (pipeline.Size != schedule.Stages || pipeline.Rank != stageIndex)
        {
            throw new ArgumentException($"stage {stageIndex} of {schedule.Stages} runs on rank {pipeline.Rank} of a pipeline communicator of {pipeline.Size}");
        }

        if (schedule.MicroBatches > MaxMicroBatches)
        {
            throw new InputException($"--micro-batches {schedule.MicroBatches} is more than the {MaxMicroBatches} this program can tag");
        }

        this.stage = stage;
        this.pipeline = pipeline;
        this.clock = clock;
        this.idle = idle;
        steps = schedule[stageIndex];
        microBatches = schedule.MicroBatches;
        this.microBatchSize = microBatchSize;
        StageIndex = stageIndex;
        IsFirst = stageIndex == 0;
        IsLast = stageIndex == schedule.Stages - 1;
        var inputLength = microBatchSize * stage.SampleInputSize;
        var outputLength = microBatchSize * stage.SampleOutputSize;
        var window = Math.Max(1, Schedule.PeakInFlight(steps));
        if (!IsFirst)
        {
            var order = steps.Where(x => x.Kind == StepKind.RecvForward).Select(x => x.MicroBatch).ToArray();
            activations = new ReceiveQueue(pipeline, stageIndex - 1, ForwardDirection, order, window, inputLength, "activation");
        }

        if (!IsLast)
        {
            var order = steps.Where(x => x.Kind == StepKind.RecvBackward).Select(x => x.MicroBatch).ToArray();
            gradients = new ReceiveQueue(pipeline, stageIndex + 1, BackwardDirection, order, window, outputLength, "gradient");
        }

        outputPool = new BufferPool(outputLength);
        inputGradientPool = new BufferPool(inputLength);
        lossGradientPool = new BufferPool(outputLength);
        received = new float[]?[microBatches];
        ready = new float[]?[microBatches];
        logits = IsLast ? new float[outputLength] : [];
    }

    public int StageIndex { get; }

    public bool IsFirst { get; }

    public bool IsLast { get; }

    /// <summary>What the stage did so far: mini-batches (as steps), forward, backward, receive-wait and send times, bytes sent.</summary>
    public StepCounters Totals { get; private set; }

    /// <summary>The most forward graphs the stage held at once (<see cref="Stage.LiveSlots"/> after each forward).</summary>
    public int PeakLiveSlots { get; private set; }

    /// <summary>The spans of the last <see cref="Run"/> (forward, backward, receive waits, sends), on the clock's time.</summary>
    public IReadOnlyList<TraceSpan> Spans => spans;

    /// <summary>
    /// One mini-batch: every step of this stage's schedule. <paramref name="images"/> (M micro-batches back to back)
    /// is read on the first stage, <paramref name="labels"/> on the last. Returns the mean loss over the mini-batch
    /// and the correct count on the last stage (Count 0 elsewhere). <paramref name="failBeforeForward"/> is the
    /// no-hang tests' hook: throw just before that micro-batch's forward, with the neighbours mid-pipeline.
    /// </summary>
    public LossResult Run(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int? failBeforeForward = null)
    {
        var inputLength = microBatchSize * stage.SampleInputSize;
        if (IsFirst && images.Length != microBatches * inputLength)
        {
            throw new ArgumentException($"the first stage needs {microBatches} x {inputLength} input values, got {images.Length}");
        }

        if (IsLast && labels.Length != microBatches * microBatchSize)
        {
            throw new ArgumentException($"the last stage needs {microBatches} x {microBatchSize} labels, got {labels.Length}");
        }

        spans.Clear();
        activations?.Start();
        gradients?.Start();
        var lossSum = 0.0;
        var correct = 0;
        foreach (var step in steps)
        {
            var i = step.MicroBatch;
            switch (step.Kind)
            {
                case StepKind.RecvForward:
                    received[i] = Receive(activations!, i, $"wait F{i}");
                    break;

                case StepKind.Forward:
                {
                    if (failBeforeForward == i)
                    {
                        throw new InvalidOperationException(
                            $"deliberate failure on stage {StageIndex} before forward {i} (MPIPIPE_TEST_THROW_AT)");
                    }

                    TestSends();
                    var input = IsFirst ? images.Slice(i * inputLength, inputLength) : received[i];
                    var output = IsLast ? logits : outputPool.Rent();
                    var start = clock.Now();
                    stage.Forward(i, input, microBatchSize, output, requireInputGradient: !IsFirst);
                    if (IsLast)
                    {
                        var lossGradient = lossGradientPool.Rent();
                        var result = CrossEntropy.LossAndGradient(output, microBatchSize, labels.Slice(i * microBatchSize, microBatchSize),
                            1f / microBatches, lossGradient);
                        lossSum += result.Loss;
                        correct += result.Correct;
                        ready[i] = lossGradient;
                    }
                    else
                    {
                        ready[i] = output;
                    }

                    Totals += new StepCounters { ForwardSeconds = EndSpan($"F{i}", TraceCategory.Forward, start, i) };
                    PeakLiveSlots = Math.Max(PeakLiveSlots, stage.LiveSlots);
                    if (!IsFirst)
                    {
                        activations!.Release(received[i]!);
                        received[i] = null;
                    }

                    break;
                }

                case StepKind.SendForward:
                    Send(ready[i]!, StageIndex + 1, Tag(i, ForwardDirection), outputPool, $"send F{i}", i);
                    ready[i] = null;
                    break;

                case StepKind.RecvBackward:
                    received[i] = Receive(gradients!, i, $"wait B{i}");
                    break;

                case StepKind.Backward:
                {
                    TestSends();
                    var outputGradient = IsLast ? ready[i]! : received[i]!;
                    var inputGradient = IsFirst ? null : inputGradientPool.Rent();
                    var start = clock.Now();
                    stage.Backward(i, outputGradient, inputGradient);
                    Totals += new StepCounters { BackwardSeconds = EndSpan($"B{i}", TraceCategory.Backward, start, i) };
                    if (IsLast)
                    {
                        lossGradientPool.Return(outputGradient);
                    }
                    else
                    {
                        gradients!.Release(outputGradient);
                        received[i] = null;
                    }

                    ready[i] = inputGradient;
                    break;
                }

                case StepKind.SendBackward:
                    Send(ready[i]!, StageIndex - 1, Tag(i, BackwardDirection), inputGradientPool, $"send B{i}", i);
                    ready[i] = null;
                    break;

                default:
                    throw new InvalidOperationException($"unknown schedule step {step}");
            }
        }

        WaitSends();
        Totals += new StepCounters { Steps = 1 };
        return IsLast ? new LossResult((float)(lossSum / microBatches), correct, microBatches * microBatchSize) : default;
    }

    /// <summary>
    /// Evaluation of one batch through the pipeline without graphs (<see cref="Stage.Infer"/>, eval mode): the first
    /// stage reads <paramref name="images"/>, the others receive from s - 1 and send to s + 1; the last stage returns
    /// the loss and correct count against <paramref name="labels"/> (Count 0 elsewhere). Messages go one way only, so
    /// blocking sends cannot deadlock.
    /// </summary>
    public LossResult EvaluateBatch(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int batch)
    {
        var inputLength = batch * stage.SampleInputSize;
        ReadOnlySpan<float> input = images;
        if (!IsFirst)
        {
            if (evaluationInput is null || evaluationInput.Length < inputLength)
            {
                evaluationInput = new float[inputLength];
            }

            CheckSize(pipeline.Recv(evaluationInput.AsSpan(0, inputLength), StageIndex - 1, EvaluationTag), inputLength, "evaluation activation");
            input = evaluationInput.AsSpan(0, inputLength);
        }

        if (IsLast)
        {
            return stage.Evaluate(input, batch, labels);
        }

        var outputLength = batch * stage.SampleOutputSize;
        if (evaluationOutput is null || evaluationOutput.Length < outputLength)
        {
            evaluationOutput = new float[outputLength];
        }

        stage.Infer(input, batch, evaluationOutput.AsSpan(0, outputLength));
        pipeline.Send<float>(evaluationOutput.AsSpan(0, outputLength), StageIndex + 1, EvaluationTag);
        return default;
    }

    private static int Tag(int microBatch, int direction) => 2 * microBatch + direction;

    private float[] Receive(ReceiveQueue queue, int microBatch, string name)
    {
        var start = clock.Now();
        var buffer = queue.Wait(microBatch, idle);
        Totals += new StepCounters { ReceiveWaitSeconds = EndSpan(name, TraceCategory.RecvWait, start, microBatch) };
        return buffer;
    }

    private void Send(float[] buffer, int destination, int tag, BufferPool pool, string name, int microBatch)
    {
        var start = clock.Now();
        var request = pipeline.Isend<float>(buffer, destination, tag);
        pendingSends.Add((request, buffer, pool));
        Totals += new StepCounters { SendSeconds = EndSpan(name, TraceCategory.Send, start, microBatch), PointToPointBytes = (long)buffer.Length * sizeof(float) };
    }

    /// <summary>Completes the sends that are done (MPI_Test also drives progress) and takes their buffers back.</summary>
    private void TestSends()
    {
        for (var k = pendingSends.Count - 1; k >= 0; k--)
        {
            var (request, buffer, pool) = pendingSends[k];
            if (request.Test(out _))
            {
                pool.Return(buffer);
                pendingSends.RemoveAt(k);
            }
        }
    }

    /// <summary>Waits for every send of the mini-batch: their receives are all posted by now, on the neighbours.</summary>
    private void WaitSends()
    {
        if (pendingSends.Count == 0)
        {
            return;
        }

        var start = clock.Now();
        foreach (var (request, _, _) in pendingSends)
        {
            request.WaitPolling(idle);
        }
        foreach (var (_, buffer, pool) in pendingSends)
        {
            pool.Return(buffer);
        }

        pendingSends.Clear();
        Totals += new StepCounters { SendSeconds = EndSpan("send wait", TraceCategory.Send, start) };
    }

    /// <summary>Records the span from <paramref name="start"/> to now; returns its length in seconds.</summary>
    private double EndSpan(string name, TraceCategory category, double start, int? microBatch = null)
    {
        var end = clock.Now();
        spans.Add(new TraceSpan(name, category, start, end - start, microBatch));
        return (end - start) * 1e-6;
    }

    private static void CheckSize(Status status, int expected, string what)
    {
        var count = status.Count<float>();
        if (count != expected)
        {
            throw new InvalidOperationException(
                $"received a {what} of {count} values from stage {status.Source}, expected {expected}: the ranks disagree on the model's shapes");
        }
    }

    /// <summary>Buffers of one length, reused: a buffer is rented for a send or a loss gradient and comes back after it.</summary>
    private sealed class BufferPool(int length)
    {
        private readonly Stack<float[]> free = new();

        public float[] Rent() => free.TryPop(out var buffer) ? buffer : new float[length];

        public void Return(float[] buffer) => free.Push(buffer);
    }

    /// <summary>
    /// The receives of one direction, posted W ahead in the order the schedule consumes them: <see cref="Wait"/>
    /// returns the next one's buffer, <see cref="Release"/> gives it back and posts the receive W places further on.
    /// </summary>
    private sealed class ReceiveQueue(Communicator communicator, int source, int direction, int[] order, int window, int length, string what)
    {
        private readonly Queue<(int MicroBatch, Request Request, float[] Buffer)> posted = new();
        private readonly Stack<float[]> free = new();
        private int nextToPost;

        public void Start()
        {
            if (posted.Count != 0)
            {
                throw new InvalidOperationException($"internal: {posted.Count} {what} receives still posted at the start of a mini-batch");
            }

            nextToPost = 0;
            while (posted.Count < window && nextToPost < order.Length)
            {
                Post(free.TryPop(out var buffer) ? buffer : new float[length]);
            }
        }

        public float[] Wait(int microBatch, IdleWait idle)
        {
            if (!posted.TryDequeue(out var head) || head.MicroBatch != microBatch)
            {
                throw new InvalidOperationException($"internal: the {what} of micro-batch {microBatch} was not the next receive posted");
            }

            CheckSize(head.Request.WaitPolling(idle), length, $"{what} for micro-batch {microBatch}");
            return head.Buffer;
        }

        public void Release(float[] buffer)
        {
            if (nextToPost < order.Length)
            {
                Post(buffer);
            }
            else
            {
                free.Push(buffer);
            }
        }

        private void Post(float[] buffer)
        {
            var microBatch = order[nextToPost++];
            posted.Enqueue((microBatch, communicator.Irecv<float>(buffer, source, Tag(microBatch, direction)), buffer));
        }
    }
}
