using System.Diagnostics;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Dicod;

/// <summary>What one DICOD run gives beyond <see cref="SolverRun"/>: the split, per-rank counts and the checks.</summary>
internal sealed record DicodRun(
    SolverRun Run,
    IReadOnlyList<int> SegmentStarts,
    IReadOnlyList<long> UpdatesPerRank,
    IReadOnlyList<long> MessagesPerRank,
    IReadOnlyList<double> SecondsPerRank,
    int Probes,
    int SubSegments,
    double BetaDeviation,
    double BetaScale,
    double? WorkingWaitShare = null);

/// <summary>
/// DICOD (the paper's distributed algorithm, W workers) on the ranks of a communicator: rank w owns the contiguous segment
/// S_w = [w (T - L + 1) / W, (w + 1) (T - L + 1) / W) of the activations' time axis and runs coordinate descent on it
/// (greedy over the segment, as in the paper, or LGCD's sub-segments). An update at t0 changes beta on
/// |t - t0| &lt; L only, so an update within L - 1 of a border is sent to the neighbour across it (MPI_Isend of
/// (k0, t0, Delta Z)), which applies it to its own beta. A rank with nothing above tol is passive; it keeps receiving.
/// The run ends when every rank is passive and no update is in flight, detected by <see cref="SafraTermination"/>
/// (Safra's token ring): rank 0 then tells every rank to stop. Segments of at least 2L - 1 keep every update's reach
/// within the two neighbours.
/// </summary>
internal static class DicodWorker
{
    private const int UpdateTag = 11, TokenTag = 12, StopTag = 13;

    /// <summary>The first coordinate of each rank's segment, and the end (T - L + 1) last.</summary>
    public static int[] SegmentBounds(int activationLength, int ranks) =>
        [.. Enumerable.Range(0, ranks + 1).Select(w => (int)((long)w * activationLength / ranks))];

    /// <summary>
    /// Runs DICOD on every rank of <paramref name="world"/> (collective); every rank returns the same gathered result.
    /// <paramref name="subSegments"/>: M per rank (1 = greedy on the segment, the paper's DICOD).
    /// </summary>
    public static DicodRun Run(Communicator world, CscProblem problem, double tol, int subSegments, long maxUpdates)
    {
        var comm = world.Dup();
        try
        {
            return Solve(comm, problem, tol, subSegments, maxUpdates);
        }
        finally
        {
            comm.Free();
        }
    }

    private static DicodRun Solve(Communicator comm, CscProblem problem, double tol, int subSegments, long maxUpdates)
    {
        var (rank, size) = (comm.Rank, comm.Size);
        var bounds = SegmentBounds(problem.ActivationLength, size);
        var (start, length) = (bounds[rank], bounds[rank + 1] - bounds[rank]);
        var reach = problem.L - 1;

        comm.Barrier();
        var clock = Stopwatch.StartNew();
        var segment = new Segment(problem, start, length);
        var chooser = new LocallyGreedy(segment, subSegments, reach);
        var safra = new SafraTermination(rank, size);
        var sends = new List<Request>();
        var log = new List<UpdateRecord>();
        long sent = 0;
        var idle = 0;
        var stop = false;
        var update = new double[3];
        var token = new long[2];
        var stopSignal = new int[1];
        var waits = new WorkingWaitShare();
        while (!stop)
        {
            // Every message that has arrived is handled before the next step: beta stays as fresh as it can be.
            while (comm.Iprobe(Communicator.AnySource, Communicator.AnyTag, out var status))
            {
                switch (status.Tag)
                {
                    case UpdateTag:
                        comm.Recv<double>(update, status.Source, UpdateTag);
                        safra.Received();
                        var t0 = (int)update[1];
                        segment.Apply((int)update[0], t0, update[2]);
                        chooser.Touched(t0);
                        break;
                    case TokenTag:
                        comm.Recv<long>(token, status.Source, TokenTag);
                        safra.TokenArrived(new TerminationToken(token[0], token[1] != 0));
                        break;
                    case StopTag:
                        comm.Recv<int>(stopSignal, status.Source, StopTag);
                        stop = true;
                        break;
                    default:
                        throw new InvalidOperationException($"DICOD rank {rank}: a message with unknown tag {status.Tag} from rank {status.Source}");
                }
            }

            if (stop)
            {
                break;
            }

            if (!chooser.Passive && log.Count < maxUpdates)
            {
                waits.Working();
                idle = 0;
                if (chooser.Step(tol) is var (k, t, dz))
                {
                    log.Add(new UpdateRecord(clock.Elapsed.TotalSeconds, k, t, dz));
                    if (t - reach < start && rank > 0)
                    {
                        sends.Add(comm.Isend<double>(new double[] { k, t, dz }, rank - 1, UpdateTag));
                        safra.Sent();
                        sent++;
                    }

                    if (t + reach >= start + length && rank < size - 1)
                    {
                        sends.Add(comm.Isend<double>(new double[] { k, t, dz }, rank + 1, UpdateTag));
                        safra.Sent();
                        sent++;
                    }

                    if (sends.Count > 64)
                    {
                        sends.RemoveAll(r => r.Test(out _));
                    }
                }

                continue;
            }

            // Passive: pass the token on (Safra), or stop everyone, or wait for messages without taking a core.
            waits.Idle();
            if (safra.WhenPassive() is { } forward)
            {
                sends.Add(comm.Isend<long>(new long[] { forward.Count, forward.Black ? 1 : 0 }, safra.Next, TokenTag));
            }
            else if (safra.Terminated)
            {
                for (var r = 1; r < size; r++)
                {
                    sends.Add(comm.Isend<int>(new int[] { 1 }, r, StopTag));
                }

                stop = true;
            }
            else
            {
                Wait(ref idle);
            }
        }

        var seconds = clock.Elapsed.TotalSeconds;
        var waitShare = waits.Share();
        Request.WaitAll([.. sends]);
        return Gather(comm, problem, bounds, segment, log, sent, seconds, safra.Probes, chooser.SubSegments, chooser.Passive) with { WorkingWaitShare = waitShare };
    }

    /// <summary>A few yields, then sleeps from 10 us doubling to 200 us: a passive rank leaves the core to a busy one.</summary>
    private static void Wait(ref int idle)
    {
        idle++;
        if (idle < 16)
        {
            Thread.Yield();
            return;
        }

        Idle.Sleep(Math.Min(200_000L, 10_000L << Math.Min(5, (idle - 16) / 4)));
    }

    /// <summary>
    /// Everything every rank needs for the results, by collectives in one fixed order: Z gathered in time order, each
    /// rank's beta checked against beta recomputed from that Z (a lost or doubled border message shows here), and the
    /// update logs merged for the convergence curve.
    /// </summary>
    private static DicodRun Gather(Communicator comm, CscProblem problem, int[] bounds, Segment segment, List<UpdateRecord> log,
        long sent, double seconds, int probes, int subSegments, bool passive)
    {
        var size = comm.Size;
        var n = problem.ActivationLength;
        var k = problem.K;

        var counts = new int[size];
        var displacements = new int[size];
        for (var w = 0; w < size; w++)
        {
            counts[w] = k * (bounds[w + 1] - bounds[w]);
            displacements[w] = k * bounds[w];
        }

        var blocks = new double[k * n];
        comm.Allgatherv<double>(segment.Z, blocks, counts, displacements);
        var z = new double[k * n];
        for (var w = 0; w < size; w++)
        {
            var length = bounds[w + 1] - bounds[w];
            for (var atom = 0; atom < k; atom++)
            {
                Array.Copy(blocks, displacements[w] + (atom * length), z, (atom * n) + bounds[w], length);
            }
        }

        var fresh = new double[segment.Beta.Length];
        problem.Beta(z, segment.Start, segment.Length, fresh);
        var deviation = 0.0;
        var scale = 0.0;
        for (var i = 0; i < fresh.Length; i++)
        {
            deviation = Math.Max(deviation, Math.Abs(fresh[i] - segment.Beta[i]));
            scale = Math.Max(scale, Math.Abs(fresh[i]));
        }

        deviation = comm.Allreduce(deviation, ReduceOp.Max);
        scale = comm.Allreduce(scale, ReduceOp.Max);

        var mine = new long[] { log.Count, sent };
        var all = new long[2 * size];
        comm.Allgather<long>(mine, all);
        var time = new double[size];
        comm.Allgather<double>([seconds], time);
        var updatesPerRank = Enumerable.Range(0, size).Select(w => all[2 * w]).ToArray();
        var messagesPerRank = Enumerable.Range(0, size).Select(w => all[(2 * w) + 1]).ToArray();

        var flat = new double[4 * log.Count];
        for (var i = 0; i < log.Count; i++)
        {
            (flat[4 * i], flat[(4 * i) + 1], flat[(4 * i) + 2], flat[(4 * i) + 3]) = (log[i].Seconds, log[i].K, log[i].T, log[i].Dz);
        }

        var logCounts = updatesPerRank.Select(c => checked((int)(4 * c))).ToArray();
        var logDisplacements = new int[size];
        for (var w = 1; w < size; w++)
        {
            logDisplacements[w] = logDisplacements[w - 1] + logCounts[w - 1];
        }

        var merged = new double[logCounts.Sum()];
        comm.Allgatherv<double>(flat, merged, logCounts, logDisplacements);
        var updates = new UpdateRecord[merged.Length / 4];
        for (var i = 0; i < updates.Length; i++)
        {
            updates[i] = new UpdateRecord(merged[4 * i], (int)merged[(4 * i) + 1], (int)merged[(4 * i) + 2], merged[(4 * i) + 3]);
        }

        // Stable by time: updates of one rank keep their order when two clocks read the same value.
        var ordered = updates.OrderBy(u => u.Seconds).ToArray();
        var wall = time.Max();
        var curve = ConvergenceCurve.Replay(problem, ordered);
        // Converged: every rank stopped passive (max |Delta Z| <= tol on its segment), none at the update limit.
        var converged = comm.Allreduce(passive ? 1 : 0, ReduceOp.Min) == 1;
        var run = new SolverRun("dicod", z, updates.Length, wall, converged, curve);
        return new DicodRun(run, bounds[..^1], updatesPerRank, messagesPerRank, time, probes, subSegments, deviation, scale);
    }
}
