using System.Globalization;
using MpiPipeline.Scaling;

namespace MpiPipeline.Layerwise;

/// <summary>
/// The alpha-beta network the layer-wise cost model prices communication with: <see cref="PointToPoint"/> for the
/// redistributions (each rank's messages and bytes), <see cref="Allreduce"/> for the gradient sync (ring model, as
/// the scaling sweep's <see cref="PerformanceModel"/>), and whether all ranks share one link.
/// </summary>
internal sealed record LayerwiseNetwork(string Name, AlphaBeta PointToPoint, AlphaBeta Allreduce, LinkTopology Topology)
{
    /// <summary>
    /// Shared memory, MPICH, 2 ranks on this machine: the fit (<see cref="AlphaBeta.FitPointToPoint"/>,
    /// <see cref="AlphaBeta.FitRingAllreduce"/>) of the C# medians of the committed bench/results/mpi.md (`mpipipe bench
    /// mpi`, ping-pong one way and Allreduce, 8 B to 32 MiB); a unit test refits that file and checks these numbers.
    /// </summary>
    public static LayerwiseNetwork SharedMemory { get; } = new(
        "shared memory (alpha-beta fit of bench/results/mpi.md, MPICH)",
        new AlphaBeta(SharedMemoryPointToPointAlpha, 1 / SharedMemoryPointToPointBandwidth),
        new AlphaBeta(SharedMemoryAllreduceAlpha, 1 / SharedMemoryAllreduceBandwidth),
        LinkTopology.PerRank);

    internal const double SharedMemoryPointToPointAlpha = 0.68e-6, SharedMemoryPointToPointBandwidth = 6.77e9;
    internal const double SharedMemoryAllreduceAlpha = 0.68e-6, SharedMemoryAllreduceBandwidth = 3.45e9;

    /// <summary>
    /// The per-message cost of MPI over TCP on this machine's loopback before any shaping: the point-to-point alpha of
    /// the 1 Gbit sweep (bench/results/scaling-1gbit/scaling.md, 10.83 us one way), to which a DELAY adds.
    /// </summary>
    internal const double TcpLoopbackAlpha = 10.83e-6;

    /// <summary>
    /// An emulated network (<c>--network RATE[,DELAY]</c>, the scaling sweep's): bandwidth RATE / 8 bytes per second,
    /// alpha = <see cref="TcpLoopbackAlpha"/> + DELAY, for messages and Allreduce steps alike, one link all ranks share.
    /// </summary>
    public static LayerwiseNetwork Emulated(EmulatedNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (network.BitsPerSecond is not { } bits)
        {
            throw new InputException($"--network {network}: the planner needs a rate to price transfers (e.g. 1gbit or 1gbit,50us); unshaped TCP has no figure");
        }

        var link = new AlphaBeta(TcpLoopbackAlpha + network.DelaySeconds, 8 / bits);
        return new LayerwiseNetwork($"emulated {network} (one shared link)", link, link, LinkTopology.Shared);
    }

    /// <summary>One direction of a redistribution: alpha per peer of the busiest rank, beta per byte of the busiest rank (or of all ranks on a shared link).</summary>
    public double Seconds(Transfer transfer) =>
        transfer.MaxPeers * PointToPoint.Alpha + (Topology == LinkTopology.Shared ? transfer.TotalBytes : transfer.MaxRankBytes) * PointToPoint.Beta;

    /// <summary>
    /// The gradient sync of a layer of <paramref name="bytes"/> of parameters under <paramref name="config"/>: each of the
    /// Channel shards (bytes / Channel) is replicated Sample x Height times and ring-allreduced among its replicas, the
    /// Channel groups at once: 2(g-1) alpha + 2(g-1)/g (bytes / Channel) beta on links per rank, and on one shared link
    /// the groups' traffic adds up: 2(g-1) alpha + 2(g-1) bytes beta (g = Sample x Height).
    /// </summary>
    public double Sync(long bytes, LayerConfig config)
    {
        var g = config.Sample * config.Height;
        if (g <= 1 || bytes == 0)
        {
            return 0;
        }

        return Topology == LinkTopology.Shared
            ? 2.0 * (g - 1) * Allreduce.Alpha + 2.0 * (g - 1) * bytes * Allreduce.Beta
            : Allreduce.RingAllreduce(g, (double)bytes / config.Channel);
    }

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{Name}: messages alpha {PointToPoint.Alpha * 1e6:0.##} us, {PointToPoint.Bandwidth / 1e9:0.###} GB/s; Allreduce alpha {Allreduce.Alpha * 1e6:0.##} us, {Allreduce.Bandwidth / 1e9:0.###} GB/s; {(Topology == LinkTopology.Shared ? "one link shared by all ranks" : "a link per rank")}");
}
