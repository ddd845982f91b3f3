namespace MpiPipeline.Exchange;

/// <summary>
/// What one rank's exchange did so far. <see cref="PayloadBytes"/> is counted from the messages actually handed to MPI
/// (the buffers' sizes, whatever an exchange encodes them into); <see cref="EstimatedRingBytes"/> is what a ring
/// Allreduce would send per rank for that payload, 2(n-1)/n of it per call, the figure the results have always reported.
/// </summary>
public sealed class ExchangeCounters
{
    /// <summary>Training rounds: averagings of gradients or models (evaluation's averaging is not one).</summary>
    public long Rounds { get; internal set; }

    /// <summary>Bytes this rank handed to MPI in training rounds.</summary>
    public long PayloadBytes { get; internal set; }

    /// <summary>2(n-1)/n * payload per round: the bytes a ring Allreduce sends per rank.</summary>
    public double EstimatedRingBytes { get; internal set; }

    /// <summary>Time inside the exchange in training rounds (MPI and the averaging arithmetic).</summary>
    public double Seconds { get; internal set; }

    /// <summary>Adds one training round of <paramref name="payloadBytes"/> over <paramref name="ranks"/> ranks.</summary>
    internal void AddRound(long payloadBytes, int ranks, double seconds)
    {
        Rounds++;
        PayloadBytes += payloadBytes;
        EstimatedRingBytes += 2.0 * (ranks - 1) / ranks * payloadBytes;
        Seconds += seconds;
    }
}
