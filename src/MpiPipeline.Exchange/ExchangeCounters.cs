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

    /// <summary>Coordinates averaged in training rounds (fp32 values a dense exchange would have sent).</summary>
    public long Coordinates { get; internal set; }

    /// <summary>fp32 bytes over the bytes handed to MPI: 1 for a dense fp32 exchange.</summary>
    public double CompressionRatio => PayloadBytes > 0 ? (double)Coordinates * sizeof(float) / PayloadBytes : 0;

    /// <summary>Bits handed to MPI per coordinate averaged: 32 for a dense fp32 exchange.</summary>
    public double BitsPerCoordinate => Coordinates > 0 ? 8.0 * PayloadBytes / Coordinates : 0;

    /// <summary>2(n-1)/n * payload per round: the bytes a ring Allreduce sends per rank.</summary>
    public double EstimatedRingBytes { get; internal set; }

    /// <summary>Time inside the exchange in training rounds (MPI and the averaging arithmetic).</summary>
    public double Seconds { get; internal set; }

    /// <summary>Overlapped exchange: seconds the steps waited for their gradient Allreduces after backward (what the
    /// overlap did not hide); equal to <see cref="Seconds"/>'s share of gradient rounds.</summary>
    public double ExposedSeconds { get; internal set; }

    /// <summary>Overlapped exchange: seconds from each round's first bucket start to its last bucket completion.</summary>
    public double InFlightSeconds { get; internal set; }

    /// <summary>The share of the Allreduces' time in flight that backward hid: 1 - exposed / in flight (0 without overlap).</summary>
    public double HiddenFraction => InFlightSeconds > 0 ? Math.Clamp(1 - (ExposedSeconds / InFlightSeconds), 0, 1) : 0;

    /// <summary>Staged exchange: gradient ranges copied from the device into the host mirror (one per bucket and round).</summary>
    public long DeviceToHostCopies { get; internal set; }

    /// <summary>Staged exchange: averaged ranges copied back from the host mirror to the device.</summary>
    public long HostToDeviceCopies { get; internal set; }

    internal void AddOverlap(double exposedSeconds, double inFlightSeconds)
    {
        ExposedSeconds += exposedSeconds;
        InFlightSeconds += inFlightSeconds;
    }

    /// <summary>A round whose bytes and time the caller counts elsewhere (the layer-wise engine's redistributions, whose
    /// Alltoallv and halo messages are point-to-point bytes of its own counters).</summary>
    internal void AddRound() => Rounds++;

    /// <summary>Adds one training round of <paramref name="payloadBytes"/> over <paramref name="ranks"/> ranks.</summary>
    internal void AddRound(long payloadBytes, int ranks, double seconds)
    {
        Rounds++;
        PayloadBytes += payloadBytes;
        Coordinates += payloadBytes / sizeof(float);
        EstimatedRingBytes += 2.0 * (ranks - 1) / ranks * payloadBytes;
        Seconds += seconds;
    }

    /// <summary>A compressed round: <paramref name="payloadBytes"/> handed to MPI for <paramref name="coordinates"/> values;
    /// a ring Allgather passes each rank's payload on n - 1 times, so a rank sends about (n - 1) payloads.</summary>
    internal void AddCompressedRound(long payloadBytes, long coordinates, int ranks, double seconds)
    {
        Rounds++;
        PayloadBytes += payloadBytes;
        Coordinates += coordinates;
        EstimatedRingBytes += (double)(ranks - 1) * payloadBytes;
        Seconds += seconds;
    }
}
