using MpiPipeline.Exchange;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Training;

/// <summary>
/// The additive counters of one rank's training, as one value: a holder's running total (a stage's executor, a
/// worker, an engine) is a <see cref="StepCounters"/>, so reading it is a snapshot, <c>after - before</c> is what
/// happened between and <c>+</c> adds a step's share, field by field, in the order the steps came. The exchange's
/// counters (<see cref="ExchangeCounters"/>) stay its own: the results add them in <see cref="Epoch"/> and
/// <see cref="ReduceTotals"/>. Holders add what they counted with an initializer: <c>new StepCounters { DataSeconds = t }</c>.
/// </summary>
/// <param name="ForwardSeconds">A stage's time in the bridge's forward (and, on the last stage, the loss and its gradient).</param>
/// <param name="ComputeSeconds">Time in the bridge: forward, backward and optimizer steps.</param>
/// <param name="ReceiveWaitSeconds">A stage's time blocked waiting for an activation or a gradient from a neighbour.</param>
/// <param name="SendSeconds">A stage's time posting sends and, at the end of each mini-batch, waiting for them to complete.</param>
/// <param name="CommunicationSeconds">Communication outside the exchange (the pipeline's point-to-point messages).</param>
/// <param name="StepSeconds">Wall time of whole training steps (measured around each step).</param>
/// <param name="PointToPointBytes">Bytes of the pipeline's point-to-point messages.</param>
internal readonly record struct StepCounters(
    long Steps, long Samples, double ForwardSeconds, double BackwardSeconds, double ComputeSeconds, double ReceiveWaitSeconds,
    double SendSeconds, double CommunicationSeconds, double DataSeconds, double EvaluationSeconds, double StepSeconds,
    long PointToPointBytes)
{
    public static StepCounters operator +(StepCounters a, StepCounters b) => Combine(a, b, 1);

    public static StepCounters operator -(StepCounters after, StepCounters before) => Combine(after, before, -1);

    /// <summary>a + sign * b, field by field: with sign -1 that is a - b to the bit (negation is exact), so one list of
    /// the fields serves both operators.</summary>
    private static StepCounters Combine(StepCounters a, StepCounters b, int sign) => new()
    {
        Steps = a.Steps + sign * b.Steps, Samples = a.Samples + sign * b.Samples,
        ForwardSeconds = a.ForwardSeconds + sign * b.ForwardSeconds, BackwardSeconds = a.BackwardSeconds + sign * b.BackwardSeconds,
        ComputeSeconds = a.ComputeSeconds + sign * b.ComputeSeconds, ReceiveWaitSeconds = a.ReceiveWaitSeconds + sign * b.ReceiveWaitSeconds,
        SendSeconds = a.SendSeconds + sign * b.SendSeconds, CommunicationSeconds = a.CommunicationSeconds + sign * b.CommunicationSeconds,
        DataSeconds = a.DataSeconds + sign * b.DataSeconds, EvaluationSeconds = a.EvaluationSeconds + sign * b.EvaluationSeconds,
        StepSeconds = a.StepSeconds + sign * b.StepSeconds, PointToPointBytes = a.PointToPointBytes + sign * b.PointToPointBytes,
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
            StepSeconds, Samples, exchange.EstimatedRingBytes + PointToPointBytes, exchange.PayloadBytes + PointToPointBytes,
            exchange.ExposedSeconds, exchange.InFlightSeconds];
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
            LoopOverheadSeconds: Math.Max(0, (sums[4] - sums[0] - sums[1]) / n),
            OverlapExposedSeconds: sums[8] / n,
            OverlapInFlightSeconds: sums[9] / n);
    }
}
