using System.Diagnostics;
using MpiPipeline.Data;
using MpiPipeline.Exchange;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;

namespace MpiPipeline.Training;

/// <summary>
/// Counters one rank keeps beside its exchange's (<see cref="ExchangeCounters"/>): what the results JSON reports per
/// rank. <see cref="CommunicationSeconds"/> and <see cref="PointToPointBytes"/> are communication outside the exchange
/// (the pipeline's point-to-point messages).
/// </summary>
internal sealed class TrainingStats
{
    public long Steps { get; set; }
    public double ComputeSeconds { get; set; }
    public double CommunicationSeconds { get; set; }
    public double DataSeconds { get; set; }
    public double EvaluationSeconds { get; set; }

    /// <summary>Wall time of whole training steps (measured around each step).</summary>
    public double StepSeconds { get; set; }

    public long Samples { get; set; }

    public long PointToPointBytes { get; set; }

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

/// <summary>
/// Loss, correct answers and samples summed over batches, then over ranks: the train or test figures of an epoch.
/// </summary>
internal sealed class LossTally
{
    private readonly double[] sums = new double[3];

    public double Samples => sums[2];

    /// <summary>Adds a batch's mean loss, weighted by its sample count.</summary>
    public void Add(double meanLoss, double correct, double count)
    {
        sums[0] += meanLoss * count;
        sums[1] += correct;
        sums[2] += count;
    }

    /// <summary>Sums the tallies of <paramref name="group"/>'s ranks (every rank of it calls this) into every rank's.</summary>
    public LossTally Allreduce(Communicator group)
    {
        group.Allreduce<double>(sums, ReduceOp.Sum);
        return this;
    }

    /// <summary>Mean loss and accuracy per sample (0 when no sample was counted).</summary>
    public (double Loss, double Accuracy) Means() => (sums[0] / Math.Max(1, sums[2]), sums[1] / Math.Max(1, sums[2]));

    /// <summary>The part <paramref name="part"/> of <paramref name="parts"/> of a set of <paramref name="count"/>
    /// samples, [Start, End): contiguous shares of ceil(count / parts), the last ones shorter or empty.</summary>
    public static (int Start, int End) Share(int count, int part, int parts)
    {
        var per = (count + parts - 1) / parts;
        var start = Math.Min(count, part * per);
        return (start, Math.Min(count, start + per));
    }
}
