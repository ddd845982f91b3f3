using MpiPipeline.Exchange;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Training;

/// <summary>
/// The additive counters of one rank's training, as one value: a holder's running total (a stage's executor, a
/// worker, an engine) is a <see cref="StepCounters"/>, so reading it is a snapshot, <c>after - before</c> is what
/// happened between and <c>+</c> adds a step's share, field by field, in the order the steps came. The exchange's
/// counters (<see cref="ExchangeCounters"/>) stay its own: the results add them in <see cref="Epoch"/> and
/// <see cref="ReduceTotals"/>.
/// </summary>
internal readonly record struct StepCounters
{
    public long Steps { get; init; }
    public long Samples { get; init; }

    /// <summary>A stage's time in the bridge's forward (and, on the last stage, the loss and its gradient).</summary>
    public double ForwardSeconds { get; init; }

    public double BackwardSeconds { get; init; }

    /// <summary>Time in the bridge: forward, backward and optimizer steps.</summary>
    public double ComputeSeconds { get; init; }

    /// <summary>A stage's time blocked waiting for an activation or a gradient from a neighbour.</summary>
    public double ReceiveWaitSeconds { get; init; }

    /// <summary>A stage's time posting sends and, at the end of each mini-batch, waiting for them to complete.</summary>
    public double SendSeconds { get; init; }

    /// <summary>Communication outside the exchange (the pipeline's point-to-point messages).</summary>
    public double CommunicationSeconds { get; init; }

    public double DataSeconds { get; init; }
    public double EvaluationSeconds { get; init; }

    /// <summary>Wall time of whole training steps (measured around each step).</summary>
    public double StepSeconds { get; init; }

    /// <summary>Bytes of the pipeline's point-to-point messages.</summary>
    public long PointToPointBytes { get; init; }

    public static StepCounters operator +(StepCounters a, StepCounters b) => new()
    {
        Steps = a.Steps + b.Steps, Samples = a.Samples + b.Samples,
        ForwardSeconds = a.ForwardSeconds + b.ForwardSeconds, BackwardSeconds = a.BackwardSeconds + b.BackwardSeconds,
        ComputeSeconds = a.ComputeSeconds + b.ComputeSeconds, ReceiveWaitSeconds = a.ReceiveWaitSeconds + b.ReceiveWaitSeconds,
        SendSeconds = a.SendSeconds + b.SendSeconds, CommunicationSeconds = a.CommunicationSeconds + b.CommunicationSeconds,
        DataSeconds = a.DataSeconds + b.DataSeconds, EvaluationSeconds = a.EvaluationSeconds + b.EvaluationSeconds,
        StepSeconds = a.StepSeconds + b.StepSeconds, PointToPointBytes = a.PointToPointBytes + b.PointToPointBytes,
    };

    public static StepCounters operator -(StepCounters after, StepCounters before) => new()
    {
        Steps = after.Steps - before.Steps, Samples = after.Samples - before.Samples,
        ForwardSeconds = after.ForwardSeconds - before.ForwardSeconds, BackwardSeconds = after.BackwardSeconds - before.BackwardSeconds,
        ComputeSeconds = after.ComputeSeconds - before.ComputeSeconds, ReceiveWaitSeconds = after.ReceiveWaitSeconds - before.ReceiveWaitSeconds,
        SendSeconds = after.SendSeconds - before.SendSeconds, CommunicationSeconds = after.CommunicationSeconds - before.CommunicationSeconds,
        DataSeconds = after.DataSeconds - before.DataSeconds, EvaluationSeconds = after.EvaluationSeconds - before.EvaluationSeconds,
        StepSeconds = after.StepSeconds - before.StepSeconds, PointToPointBytes = after.PointToPointBytes - before.PointToPointBytes,
    };

    /// <summary>
    /// An epoch record's counters with <paramref name="exchange"/>'s: this rank's, or with <paramref name="group"/>
    /// (every rank of it calls this) bytes and times as means over its ranks. Rounds are always this rank's.
    /// </summary>
    public EpochCounters Epoch(ExchangeCounters exchange, Communicator? group = null)
    {
        double[] values =
        [
            exchange.EstimatedRingBytes + PointToPointBytes, (double)exchange.PayloadBytes + PointToPointBytes, ComputeSeconds,
            CommunicationSeconds + exchange.Seconds,
        ];
        group?.Allreduce<double>(values, ReduceOp.Sum);
        var n = group?.Size ?? 1;
        return new EpochCounters(exchange.Rounds, (long)(values[0] / n), (long)(values[1] / n), values[2] / n, values[3] / n);
    }

    /// <summary>
    /// The run's totals over <paramref name="group"/> (every rank of it calls this): times and bytes sent are means over
    /// its ranks, samples a sum; rounds and the Allreduce payload are this rank's.
    /// </summary>
    public RunTotals ReduceTotals(Communicator group, ExchangeCounters exchange)
    {
        double[] sums = [ComputeSeconds, CommunicationSeconds + exchange.Seconds, DataSeconds, EvaluationSeconds,
            StepSeconds, Samples, exchange.EstimatedRingBytes + PointToPointBytes, exchange.PayloadBytes + PointToPointBytes];
        group.Allreduce<double>(sums, ReduceOp.Sum);
        var n = group.Size;
        return new RunTotals(
            Steps: Steps,
            Samples: (long)sums[5],
            CommunicationRounds: exchange.Rounds,
            AllreducePayloadBytesPerRank: exchange.PayloadBytes,
            BytesSentPerRank: (long)(sums[6] / n),
            MpiPayloadBytesPerRank: (long)(sums[7] / n),
            ComputeSeconds: sums[0] / n,
            CommunicationSeconds: sums[1] / n,
            DataSeconds: sums[2] / n,
            EvaluationSeconds: sums[3] / n,
            StepSeconds: sums[4] / n,
            LoopOverheadSeconds: Math.Max(0, (sums[4] - sums[0] - sums[1]) / n));
    }
}
