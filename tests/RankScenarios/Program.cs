using System.Numerics;
using System.Runtime.InteropServices;
using MpiPipeline.Exchange;
using MpiPipeline.Mpi;

// Scenarios run under a real mpiexec by MpiPipeline.RankTests. Every check's expected value is computed from rank
// and size, so each scenario runs at any -n. A failed check throws: the entry point prints it and aborts the job.
namespace MpiPipeline.RankScenarios;

internal static class Program
{
    private static int Main(string[] args)
    {
        var scenario = args.Length > 0 ? args[0] : "";
        return MpiRuntime.Run(world =>
        {
            switch (scenario)
            {
                case "point-to-point": PointToPoint.Run(world); break;
                case "collectives": Collectives.Run(world); break;
                case "nonblocking-ring": PointToPoint.NonblockingRing(world); break;
                case "subcommunicators": Subcommunicators.Run(world); break;
                case "managed-exception-after-init": Failures.ManagedExceptionSurvives(world); break;
                case "overlapped-exchange": OverlappedExchange.Run(world); break;
                case "layerwise": LayerwiseRuns.Run(world, args[1], args[2..]); break;
                case "throw-on-rank": Failures.ThrowOnRank(world, int.Parse(args[1])); break;
                case "throw-on-rank-while-peers-wait": Failures.ThrowWhilePeersWait(world, int.Parse(args[1])); break;
                case "throw-on-rank-while-peers-poll": Failures.ThrowWhilePeersPoll(world, int.Parse(args[1]), args[2]); break;
                case "input-error": throw new InputException("the scenario's input is bad (same on every rank)");
                case "stall": Failures.Stall(world); break;
                case "stopped-peer": Failures.StoppedPeer(world, args[1]); break;
                default: throw new InputException($"unknown scenario '{scenario}'");
            }

            world.Barrier();
            if (world.Rank == 0)
            {
                Console.WriteLine($"PASS {scenario} n={world.Size} abi={MpiEnvironment.Abi}");
            }

            return 0;
        });
    }

    internal static void Expect<T>(T actual, T expected, string what)
    {
        if (!EqualityComparer<T>.Default.Equals(actual, expected))
        {
            throw new InvalidOperationException($"{what}: expected {expected}, got {actual}");
        }
    }

    internal static void ExpectAll<T>(ReadOnlySpan<T> actual, Func<int, T> expected, string what)
    {
        for (var i = 0; i < actual.Length; i++)
        {
            Expect(actual[i], expected(i), $"{what}[{i}]");
        }
    }

    internal static T Of<T>(long value) where T : INumber<T> => T.CreateTruncating(value);
}

internal static class PointToPoint
{
    public static void Run(Communicator world)
    {
        int rank = world.Rank, size = world.Size;
        int next = (rank + 1) % size, prev = (rank - 1 + size) % size;

        // Sendrecv around the ring, every element type.
        SendrecvRing<float>(world, next, prev);
        SendrecvRing<double>(world, next, prev);
        SendrecvRing<int>(world, next, prev);
        SendrecvRing<long>(world, next, prev);
        SendrecvRing<byte>(world, next, prev);

        // Blocking Send/Recv between pairs (0,1), (2,3), ...; an odd last rank talks to itself through Sendrecv.
        var partner = rank ^ 1;
        if (partner < size)
        {
            var mine = Enumerable.Range(0, 100).Select(i => (double)(rank * 1000 + i)).ToArray();
            var theirs = new double[100];
            if (rank % 2 == 0)
            {
                world.Send<double>(mine, partner, 5);
                var status = world.Recv<double>(theirs, partner, 6);
                Program.Expect(status.Source, partner, "Recv status source");
                Program.Expect(status.Tag, 6, "Recv status tag");
                Program.Expect(status.Count<double>(), 100, "Recv status count");
            }
            else
            {
                world.Recv<double>(theirs, partner, 5);
                world.Send<double>(mine, partner, 6);
            }

            Program.ExpectAll<double>(theirs, i => partner * 1000 + i, "Send/Recv");
        }

        // Probe and Iprobe: message of rank+1 ints with tag 40+rank to next; the receiver learns size, source, tag.
        var message = Enumerable.Repeat(rank, rank + 1).ToArray();
        var send = world.Isend<int>(message, next, 40 + rank);
        var probed = world.Probe(Communicator.AnySource, Communicator.AnyTag);
        Program.Expect(probed.Source, prev, "Probe source");
        Program.Expect(probed.Tag, 40 + prev, "Probe tag");
        Program.Expect(probed.Count<int>(), prev + 1, "Probe count");
        Program.Expect(world.Iprobe(prev, 40 + prev, out var iprobed), true, "Iprobe finds the probed message");
        Program.Expect(iprobed, probed, "Iprobe status");
        var received = new int[probed.Count<int>()];
        world.Recv<int>(received, probed.Source, probed.Tag);
        Program.ExpectAll<int>(received, _ => prev, "probed message");
        send.Wait();
        world.Barrier();
        Program.Expect(world.Iprobe(Communicator.AnySource, Communicator.AnyTag, out _), false, "Iprobe with nothing pending");

        // Sending to the null process completes at once; receiving from it yields source PROC_NULL, count 0.
        world.Send<int>([1, 2, 3], Communicator.ProcNull, 1);
        var none = world.Recv<int>(new int[3], Communicator.ProcNull, 1);
        Program.Expect(none.Source, Communicator.ProcNull, "Recv from PROC_NULL source");
        Program.Expect(none.ByteCount, 0, "Recv from PROC_NULL count");
    }

    private static void SendrecvRing<T>(Communicator world, int next, int prev) where T : unmanaged, INumber<T>
    {
        var mine = Enumerable.Range(0, 17).Select(i => Program.Of<T>(world.Rank * 7 + i)).ToArray();
        var theirs = new T[17];
        var status = world.Sendrecv<T>(mine, next, 3, theirs, prev, 3);
        Program.Expect(status.Source, prev, $"Sendrecv<{typeof(T).Name}> source");
        Program.Expect(status.Count<T>(), 17, $"Sendrecv<{typeof(T).Name}> count");
        Program.ExpectAll<T>(theirs, i => Program.Of<T>(prev * 7 + i), $"Sendrecv<{typeof(T).Name}>");
    }

    /// <summary>Every rank posts its receives first, then sends to all others with Isend; Waitall, then Test.</summary>
    public static void NonblockingRing(Communicator world)
    {
        int rank = world.Rank, size = world.Size;
        const int length = 50_000; // large enough to need the rendezvous protocol
        for (var round = 0; round < 3; round++)
        {
            var inbox = new float[size][];
            var requests = new List<Request>();
            for (var source = 0; source < size; source++)
            {
                inbox[source] = new float[length];
                requests.Add(world.Irecv<float>(inbox[source], source, round));
            }

            for (var step = 0; step < size; step++)
            {
                var dest = (rank + step) % size;
                var payload = new float[length];
                for (var i = 0; i < length; i++)
                {
                    payload[i] = (rank * 10) + dest + (i * 0.5f) + round;
                }

                requests.Add(world.Isend<float>(payload, dest, round));
            }

            // Collect half with Test polling and the rest with Waitall.
            var statuses = new Status?[requests.Count];
            for (var i = 0; i < requests.Count / 2; i++)
            {
                Status s;
                while (!requests[i].Test(out s))
                {
                    Thread.Yield();
                }

                statuses[i] = s;
            }

            var waited = Request.WaitAll([.. requests]);
            for (var source = 0; source < size; source++)
            {
                Program.Expect(waited[source].Source, source, "Irecv status source");
                Program.Expect(waited[source].Count<float>(), length, "Irecv status count");
                if (statuses[source] is { } tested)
                {
                    Program.Expect(tested, waited[source], "Test and Waitall agree");
                }

                var src = source;
                Program.ExpectAll<float>(inbox[source], i => (src * 10) + rank + (i * 0.5f) + round, $"round {round} from {source}");
            }
        }

        // A single Isend/Irecv pair around the ring with Wait.
        var next = (rank + 1) % size;
        var prev = (rank - 1 + size) % size;
        var into = new long[3];
        var r = world.Irecv<long>(into, prev, 99);
        var s2 = world.Isend<long>(new long[] { rank, rank * 2L, long.MaxValue - rank }, next, 99);
        var got = r.Wait();
        s2.Wait();
        Program.Expect(got.Source, prev, "Wait status source");
        Program.ExpectAll<long>(into, i => i switch { 0 => prev, 1 => prev * 2L, _ => long.MaxValue - prev }, "Isend/Irecv long");
        AnyOfMany(world);
    }

    /// <summary>
    /// MPI_Testany and MPI_Waitany over one receive from every rank (as the DASGD master waits for any worker): each
    /// index comes back exactly once with its own source and payload; with all completed, Waitany says none is active.
    /// </summary>
    private static void AnyOfMany(Communicator world)
    {
        int rank = world.Rank, size = world.Size;
        const int length = 20_000;
        var inbox = new float[size][];
        var receives = new List<Request>();
        for (var source = 0; source < size; source++)
        {
            inbox[source] = new float[length];
            receives.Add(world.Irecv<float>(inbox[source], source, 77));
        }

        var sends = new List<Request>();
        for (var dest = 0; dest < size; dest++)
        {
            var payload = new float[length];
            Array.Fill(payload, (rank * 1000) + dest);
            sends.Add(world.Isend<float>(payload, dest, 77));
        }

        var seen = new bool[size];
        for (var k = 0; k < size; k++)
        {
            int index;
            Status status;
            if (k % 2 == 0)
            {
                while (!Request.TestAny(receives, out index, out status))
                {
                    Thread.Yield();
                }
            }
            else
            {
                (index, status) = Request.WaitAny(receives);
            }

            Program.Expect(seen[index], false, $"any-of-many: index {index} returned twice");
            seen[index] = true;
            Program.Expect(status.Source, index, "any-of-many: status source");
            Program.Expect(status.Count<float>(), length, "any-of-many: status count");
            Program.ExpectAll<float>(inbox[index], _ => (index * 1000) + rank, $"any-of-many from {index}");
        }

        Program.Expect(Request.WaitAny(receives).Index, -1, "Waitany over completed requests");
        Program.Expect(Request.TestAny(receives, out _, out _), false, "Testany over completed requests");
        Request.WaitAll([.. sends]);
    }
}

internal static class Collectives
{
    public static void Run(Communicator world)
    {
        Typed<float>(world);
        Typed<double>(world);
        Typed<int>(world);
        Typed<long>(world);
        Typed<byte>(world);
        Program.Expect(world.Allreduce(world.Rank + 1, ReduceOp.Sum), world.Size * (world.Size + 1) / 2, "scalar Allreduce");
        var t0 = MpiEnvironment.Wtime();
        world.Barrier();
        Program.Expect(MpiEnvironment.Wtime() >= t0, true, "Wtime is monotonic");
        Program.Expect(MpiEnvironment.ProcessorName().Length > 0, true, "processor name");
    }

    private static void Typed<T>(Communicator world) where T : unmanaged, INumber<T>
    {
        int rank = world.Rank, n = world.Size;
        var name = typeof(T).Name;
        const int len = 5;
        long Value(int r, int i) => (r + 1) + (3 * i); // small enough for byte sums up to n = 4

        // Bcast from every root in turn.
        for (var root = 0; root < n; root++)
        {
            var buffer = Enumerable.Range(0, len).Select(i => rank == root ? Program.Of<T>(Value(root, i)) : T.Zero).ToArray();
            world.Bcast<T>(buffer, root);
            var rt = root;
            Program.ExpectAll<T>(buffer, i => Program.Of<T>(Value(rt, i)), $"Bcast<{name}> root {root}");
        }

        var mine = Enumerable.Range(0, len).Select(i => Program.Of<T>(Value(rank, i))).ToArray();
        long Sum(int i) => Enumerable.Range(0, n).Sum(r => Value(r, i));

        // Allreduce SUM, MAX, MIN, with separate buffers and in place.
        var result = new T[len];
        world.Allreduce<T>(mine, result, ReduceOp.Sum);
        Program.ExpectAll<T>(result, i => Program.Of<T>(Sum(i)), $"Allreduce<{name}> SUM");
        world.Allreduce<T>(mine, result, ReduceOp.Max);
        Program.ExpectAll<T>(result, i => Program.Of<T>(Value(n - 1, i)), $"Allreduce<{name}> MAX");
        world.Allreduce<T>(mine, result, ReduceOp.Min);
        Program.ExpectAll<T>(result, i => Program.Of<T>(Value(0, i)), $"Allreduce<{name}> MIN");
        var inPlace = (T[])mine.Clone();
        world.Allreduce<T>(inPlace, ReduceOp.Sum);
        Program.ExpectAll<T>(inPlace, i => Program.Of<T>(Sum(i)), $"Allreduce<{name}> in place");
        foreach (var idle in new[] { IdleWait.Yield, IdleWait.Sleep })
        {
            // MPI_Iallreduce polled with MPI_Test: the last rank arrives late, so the others really poll.
            var polled = (T[])mine.Clone();
            if (rank == n - 1)
            {
                Thread.Sleep(20);
            }

            world.Allreduce<T>(polled, ReduceOp.Max, idle);
            Program.ExpectAll<T>(polled, i => Program.Of<T>(Value(n - 1, i)), $"Allreduce<{name}> in place, polled ({idle}) MAX");
            polled = (T[])mine.Clone();
            world.Allreduce<T>(polled, ReduceOp.Sum, idle);
            Program.ExpectAll<T>(polled, i => Program.Of<T>(Sum(i)), $"Allreduce<{name}> in place, polled ({idle}) SUM");
        }


        // Reduce to the last rank, with separate buffers and in place.
        var root2 = n - 1;
        var reduced = new T[len];
        world.Reduce<T>(mine, reduced, ReduceOp.Sum, root2);
        if (rank == root2)
        {
            Program.ExpectAll<T>(reduced, i => Program.Of<T>(Sum(i)), $"Reduce<{name}>");
        }

        var reducedInPlace = (T[])mine.Clone();
        world.Reduce<T>(reducedInPlace, ReduceOp.Max, root2);
        if (rank == root2)
        {
            Program.ExpectAll<T>(reducedInPlace, i => Program.Of<T>(Value(n - 1, i)), $"Reduce<{name}> in place");
        }

        // Gather at 0 and Allgather: block r holds rank r's values.
        var gathered = new T[len * n];
        world.Gather<T>(mine, gathered, 0);
        if (rank == 0)
        {
            Program.ExpectAll<T>(gathered, k => Program.Of<T>(Value(k / len, k % len)), $"Gather<{name}>");
        }

        var all = new T[len * n];
        world.Allgather<T>(mine, all);
        Program.ExpectAll<T>(all, k => Program.Of<T>(Value(k / len, k % len)), $"Allgather<{name}>");

        // Allgatherv: rank r contributes r+1 elements, placed in reverse rank order with a gap of 1.
        var counts = Enumerable.Range(0, n).Select(r => r + 1).ToArray();
        var displs = new int[n];
        var offset = 0;
        for (var r = n - 1; r >= 0; r--)
        {
            displs[r] = offset;
            offset += counts[r] + 1;
        }

        var varied = Enumerable.Repeat(Program.Of<T>(99), offset).ToArray();
        var contribution = Enumerable.Range(0, rank + 1).Select(i => Program.Of<T>(Value(rank, i))).ToArray();
        world.Allgatherv<T>(contribution, varied, counts, displs);
        for (var r = 0; r < n; r++)
        {
            for (var i = 0; i < counts[r]; i++)
            {
                Program.Expect(varied[displs[r] + i], Program.Of<T>(Value(r, i)), $"Allgatherv<{name}> block {r}[{i}]");
            }

            Program.Expect(varied[displs[r] + counts[r]], Program.Of<T>(99), $"Allgatherv<{name}> gap after block {r}");
        }

        // The same gathers polled (MPI_Iallgather[v] + MPI_Test with the idle wait), the last rank arriving late so
        // that the others really poll.
        foreach (var idle in new[] { IdleWait.Yield, IdleWait.Sleep })
        {
            if (rank == n - 1)
            {
                Thread.Sleep(20);
            }

            var polledAll = new T[len * n];
            world.Allgather<T>(mine, polledAll, idle);
            Program.ExpectAll<T>(polledAll, k => Program.Of<T>(Value(k / len, k % len)), $"Allgather<{name}> polled ({idle})");
            var polledVaried = Enumerable.Repeat(Program.Of<T>(99), offset).ToArray();
            world.Allgatherv<T>(contribution, polledVaried, counts, displs, idle);
            ExpectVaried(polledVaried, $"Allgatherv<{name}> polled ({idle})");
        }

        // Nonblocking: an Iallgather and an Iallgatherv in flight together, started in the same order on every rank and
        // completed in the other order (MPI_Test on the second first), their buffers untouched until then.
        var started = new T[len * n];
        var startedVaried = Enumerable.Repeat(Program.Of<T>(99), offset).ToArray();
        var first = world.Iallgather<T>(mine, started);
        var second = world.Iallgatherv<T>(contribution, startedVaried, counts, displs);
        second.WaitPolling(IdleWait.Yield, "MPI_Iallgatherv (scenario)");
        first.WaitPolling(IdleWait.Yield, "MPI_Iallgather (scenario)");
        Program.Expect(first.IsCompleted && second.IsCompleted, true, $"Iallgather[v]<{name}> completed");
        Program.ExpectAll<T>(started, k => Program.Of<T>(Value(k / len, k % len)), $"Iallgather<{name}>");
        ExpectVaried(startedVaried, $"Iallgatherv<{name}>");

        void ExpectVaried(T[] gathered, string what)
        {
            for (var r = 0; r < n; r++)
            {
                for (var i = 0; i < counts[r]; i++)
                {
                    Program.Expect(gathered[displs[r] + i], Program.Of<T>(Value(r, i)), $"{what} block {r}[{i}]");
                }

                Program.Expect(gathered[displs[r] + counts[r]], Program.Of<T>(99), $"{what} gap after block {r}");
            }
        }

        // Scatter from 0: block r of [Value(0..)] goes to rank r.
        var toScatter = rank == 0 ? Enumerable.Range(0, len * n).Select(k => Program.Of<T>(k % 100)).ToArray() : [];
        var piece = new T[len];
        world.Scatter<T>(toScatter, piece, 0);
        Program.ExpectAll<T>(piece, i => Program.Of<T>(((rank * len) + i) % 100), $"Scatter<{name}>");

        // Reduce_scatter_block: every rank sends n blocks of 2 (block b element j = rank + b + j); rank keeps block rank summed.
        var blocks = Enumerable.Range(0, 2 * n).Select(k => Program.Of<T>(rank + (k / 2) + (k % 2))).ToArray();
        var mineSummed = new T[2];
        world.ReduceScatterBlock<T>(blocks, mineSummed, ReduceOp.Sum);
        Program.ExpectAll<T>(mineSummed, j => Program.Of<T>(Enumerable.Range(0, n).Sum(r => r + rank + j)), $"Reduce_scatter_block<{name}>");

        // Alltoall: block d sent by rank s is (10*s + d); rank receives block s = 10*s + rank.
        var outgoing = Enumerable.Range(0, 2 * n).Select(k => Program.Of<T>((10 * rank) + (k / 2))).ToArray();
        var incoming = new T[2 * n];
        world.Alltoall<T>(outgoing, incoming);
        Program.ExpectAll<T>(incoming, k => Program.Of<T>((10 * (k / 2)) + rank), $"Alltoall<{name}>");

        // Alltoallv: rank s sends d + 1 elements (10*s + d) to rank d, in reverse rank order in its buffer; rank d
        // receives its blocks in rank order, a gap of one untouched element after each.
        var sendCounts = Enumerable.Range(0, n).Select(d => d + 1).ToArray();
        var sendDispls = new int[n];
        var at = 0;
        for (var d = n - 1; d >= 0; d--)
        {
            sendDispls[d] = at;
            at += sendCounts[d];
        }

        var outgoingV = new T[at];
        for (var d = 0; d < n; d++)
        {
            outgoingV.AsSpan(sendDispls[d], sendCounts[d]).Fill(Program.Of<T>((10 * rank) + d));
        }

        var receiveCounts = Enumerable.Repeat(rank + 1, n).ToArray();
        var receiveDispls = Enumerable.Range(0, n).Select(s => s * (rank + 2)).ToArray();
        var incomingV = Enumerable.Repeat(Program.Of<T>(99), n * (rank + 2)).ToArray();
        world.Alltoallv<T>(outgoingV, sendCounts, sendDispls, incomingV, receiveCounts, receiveDispls);
        for (var s = 0; s < n; s++)
        {
            for (var i = 0; i <= rank; i++)
            {
                Program.Expect(incomingV[receiveDispls[s] + i], Program.Of<T>((10 * s) + rank), $"Alltoallv<{name}> block {s}[{i}]");
            }

            Program.Expect(incomingV[receiveDispls[s] + rank + 1], Program.Of<T>(99), $"Alltoallv<{name}> gap after block {s}");
        }
    }
}

internal static class Subcommunicators
{
    public static void Run(Communicator world)
    {
        int rank = world.Rank, n = world.Size;

        // Dup: same ranks, independent message space.
        var dup = world.Dup();
        Program.Expect(dup.Rank, rank, "Dup rank");
        Program.Expect(dup.Size, n, "Dup size");
        Program.Expect(dup.Allreduce(1, ReduceOp.Sum), n, "Allreduce on Dup");

        // A rows x cols grid (2 x 2 at n = 4): rows by rank / cols, columns by rank % cols.
        var cols = n >= 2 ? 2 : 1;
        var row = world.Split(rank / cols, rank)!;
        var column = world.Split(rank % cols, rank)!;
        Program.Expect(row.Rank, rank % cols, "row rank");
        Program.Expect(row.Size, Math.Min(cols, n - (rank / cols * cols)), "row size");
        Program.Expect(column.Rank, rank / cols, "column rank");
        var rowSum = row.Allreduce(rank, ReduceOp.Sum);
        var first = rank / cols * cols;
        Program.Expect(rowSum, Enumerable.Range(first, row.Size).Sum(), "row Allreduce");
        var columnSum = column.Allreduce(rank, ReduceOp.Sum);
        Program.Expect(columnSum, Enumerable.Range(0, n).Where(r => r % cols == rank % cols).Sum(), "column Allreduce");

        // Reverse ordering by key; negative color (MPI_UNDEFINED) gives no communicator.
        var reversed = world.Split(0, n - rank)!;
        Program.Expect(reversed.Rank, n - 1 - rank, "Split ordered by key");
        var onlyEven = world.Split(rank % 2 == 0 ? 0 : -1, rank);
        Program.Expect(onlyEven is null, rank % 2 != 0, "Split with undefined color");

        // Node-local ranks: one host here, so node rank = world rank.
        var node = world.SplitShared();
        Program.Expect(node.Size, n, "ranks on this node");
        Program.Expect(node.Rank, rank, "node-local rank");

        foreach (var c in new[] { dup, row, column, reversed, node })
        {
            c.Free();
            Program.Expect(c.IsFreed, true, "Comm_free");
        }

        onlyEven?.Free();
    }
}

internal static class Failures
{
    /// <summary>After MPI_Init (UCX's signal handlers would be there), a NullReferenceException is still catchable.</summary>
    public static void ManagedExceptionSurvives(Communicator world)
    {
        string? nothing = world.Size > 0 ? null : "x";
        var caught = false;
        try
        {
            _ = nothing!.Length;
        }
        catch (NullReferenceException)
        {
            caught = true;
        }

        Program.Expect(caught, true, "NullReferenceException caught after MPI_Init");
        world.Barrier();
    }

    public static void ThrowOnRank(Communicator world, int failing)
    {
        world.Barrier();
        if (world.Rank == failing)
        {
            throw new InvalidOperationException($"deliberate failure on rank {failing}");
        }

        world.Barrier();
    }

    /// <summary>The failing rank throws while every other rank is blocked in a receive that will never be matched.</summary>
    public static void ThrowWhilePeersWait(Communicator world, int failing)
    {
        if (world.Rank == failing)
        {
            Thread.Sleep(300);
            throw new InvalidOperationException($"deliberate failure on rank {failing} mid-pipeline");
        }

        world.Recv<float>(new float[4], failing, 1);
    }

    /// <summary>
    /// The failing rank throws while every other rank waits in a polling wait that sleeps between polls (what an
    /// oversubscribed node does): in the polled Allreduce ("allreduce") or on a polled receive ("irecv").
    /// </summary>
    public static void ThrowWhilePeersPoll(Communicator world, int failing, string wait)
    {
        if (world.Rank == failing)
        {
            Thread.Sleep(300);
            throw new InvalidOperationException($"deliberate failure on rank {failing} while its peers poll");
        }

        switch (wait)
        {
            case "allreduce":
                world.Allreduce<float>(new float[1 << 16], ReduceOp.Sum, IdleWait.Sleep);
                break;
            case "irecv":
                world.Irecv<float>(new float[4], failing, 1).WaitPolling(IdleWait.Sleep);
                break;
            default:
                throw new InputException($"unknown wait '{wait}' (allreduce or irecv)");
        }
    }

    /// <summary>
    /// Rank 0 waits for the last rank, which stops outside MPI (as a stopped or hung process does), in a blocking
    /// receive ("recv") or a polled one ("poll"): only rank 0's watchdog sees a stalled call, and it names the peer.
    /// </summary>
    public static void StoppedPeer(Communicator world, string wait)
    {
        var last = world.Size - 1;
        if (world.Rank != 0)
        {
            Thread.Sleep(TimeSpan.FromSeconds(60));
            return;
        }

        switch (wait)
        {
            case "recv":
                world.Recv<int>(new int[1], last, 7);
                break;
            case "poll":
                world.Irecv<int>(new int[1], last, 7).WaitPolling(IdleWait.Sleep);
                break;
            default:
                throw new InputException($"unknown wait '{wait}' (recv or poll)");
        }
    }

    /// <summary>Rank 0 never joins the barrier: the watchdog must report and abort.</summary>
    public static void Stall(Communicator world)
    {
        if (world.Rank != 0)
        {
            world.Barrier();
        }
        else
        {
            world.Recv<int>(new int[1], world.Size - 1, 12345);
        }
    }
}

/// <summary>
/// The overlapped exchange over native memory (as a stage's flat gradients): buckets reported in a different order on
/// every rank, a parameter that never reports (AverageGradients starts its bucket), a round without BeginStep, and a
/// parameter reported twice. Values are small integers, so every sum is exact and the mean is sum * (1/n) to the bit.
/// </summary>
internal static class OverlappedExchange
{
    public static unsafe void Run(Communicator world)
    {
        int[] lengths = [3, 5, 2, 7, 1];
        var total = lengths.Sum();
        var exchange = new OverlappedAllreduceExchange(world, IdleWait.Yield, lengths, bucketBytes: 8 * sizeof(float));
        Program.Expect(exchange.Buckets.Count, 3, "buckets of [3, 5, 2, 7, 1] floats at 8 floats each: [7, 1], [5, 2], [3]");
        var memory = (float*)NativeMemory.Alloc((nuint)(total * sizeof(float)));
        try
        {
            var gradients = new Span<float>(memory, total);
            float Value(int rank, int round, int i) => (rank + 1) * (i + 1) + (10 * round);
            void Fill(Span<float> gradients, int round)
            {
                for (var i = 0; i < total; i++)
                {
                    gradients[i] = Value(world.Rank, round, i);
                }
            }

            void Check(ReadOnlySpan<float> gradients, int round)
            {
                for (var i = 0; i < total; i++)
                {
                    var sum = 0f;
                    for (var r = 0; r < world.Size; r++)
                    {
                        sum += Value(r, round, i);
                    }

                    Program.Expect(gradients[i], sum * (1f / world.Size), $"round {round}, element {i}");
                }
            }

            // Round 0: parameters 4..1 reported (rank-dependent order), parameter 0 never.
            Fill(gradients, 0);
            exchange.BeginStep();
            int[] order = world.Rank % 2 == 0 ? [4, 3, 2, 1] : [2, 4, 1, 3];
            foreach (var parameter in order)
            {
                exchange.GradientReady(parameter, gradients);
            }

            exchange.AverageGradients(gradients);
            Check(gradients, 0);
            Program.Expect(exchange.LastRound.Count, 3, "a timing per bucket");
            Program.Expect(exchange.LastRound.All(t => t.StartTimestamp > 0 && t.EndTimestamp >= t.StartTimestamp), true, "bucket timings");

            // Round 1: no BeginStep (no hook armed): AverageGradients starts every bucket itself.
            Fill(gradients, 1);
            exchange.AverageGradients(gradients);
            Check(gradients, 1);

            // Round 2: a parameter reported twice is a bug, reported on the spot; the round still completes.
            Fill(gradients, 2);
            exchange.BeginStep();
            exchange.GradientReady(4, gradients);
            exchange.GradientReady(3, gradients);
            try
            {
                exchange.GradientReady(4, gradients);
                throw new InvalidOperationException("a second report of parameter 4 was accepted");
            }
            catch (InvalidOperationException e) when (e.Message.Contains("reported twice", StringComparison.Ordinal))
            {
            }

            exchange.AverageGradients(gradients);
            Check(gradients, 2);
            Program.Expect(exchange.Counters.Rounds, 3L, "one round per AverageGradients, not per bucket");
            Program.Expect(exchange.Counters.PayloadBytes, 3L * total * sizeof(float), "payload: the whole buffer per round");
        }
        finally
        {
            NativeMemory.Free(memory);
        }

        Compressed(world);
    }

    /// <summary>
    /// The overlapped exchange with a compressor against the whole-buffer <see cref="CompressedExchange"/>, three rounds of
    /// rank-dependent gradients (error feedback carried between them): with one bucket bit for bit the same; with several
    /// buckets the same on every rank, and where the decoded values are known exactly (fp16's halves, topk:1's every
    /// coordinate) equal to their sum in rank order times 1/n. With gradient buckets on the quantizer's d-grid (and a zero
    /// quantizer bucket just before a boundary) QSGD and ECQ draw per coordinate, so several buckets give the whole-buffer bits.
    /// </summary>
    private static void Compressed(Communicator world)
    {
        // Buckets at 700 floats: [300, 64], [1100], [37, 600, 5]: offsets off any d-grid.
        int[] lengths = [37, 600, 5, 1100, 64, 300];
        foreach (var spec in new[] { "fp16", "topk:1", "topk:0.1", "qsgd:4,64", "ecq:4,64" })
        {
            var several = Run(world, spec, lengths, 700 * sizeof(float), zeroFrom: -1, out var buckets, out var counters, out var wholeBits);
            Program.Expect(buckets, 3, $"{spec}: three buckets");
            Run(world, spec, lengths, 1 << 20, zeroFrom: -1, out _, out _, out var oneBits);
            Program.Expect(oneBits, true, $"{spec}: one bucket gives the whole-buffer exchange's bits, every round");
            var total = lengths.Sum();
            if (spec is "fp16" or "topk:1")
            {
                for (var i = 0; i < total; i++)
                {
                    var sum = 0f;
                    for (var r = 0; r < world.Size; r++)
                    {
                        var g = Gradient(r, 2, i);
                        sum += spec == "fp16" ? (float)(Half)g : g;
                    }

                    Program.Expect(several[i], sum * (1f / world.Size), $"{spec}, 3 buckets: element {i} of round 2");
                }

                var perRound = (spec == "fp16" ? 2L * total : 8L * total) + (3 * sizeof(int));
                Program.Expect(counters.PayloadBytes, 3 * perRound, $"{spec}: every bucket's payload and size word, per round");
                Program.Expect(counters.Coordinates, 3L * total, $"{spec}: coordinates");
                Program.Expect(wholeBits, true, $"{spec}: coordinate by coordinate, so three buckets give the whole-buffer bits");
            }

            var digest = Digest(several);
            Program.Expect(world.Allreduce(digest, ReduceOp.Max) == digest && world.Allreduce(digest, ReduceOp.Min) == digest, true,
                $"{spec}, 3 buckets: every rank decodes the same average");
        }

        // On the d = 64 grid: buckets at 200 floats: [64], [192], [64, 128]; the quantizer bucket [128, 192) is zero.
        int[] aligned = [64, 128, 192, 64];
        foreach (var spec in new[] { "qsgd:4,64", "ecq:4,64" })
        {
            Run(world, spec, aligned, 200 * sizeof(float), zeroFrom: 128, out var buckets, out _, out var same);
            Program.Expect(buckets, 3, $"{spec} on the grid: three buckets");
            Program.Expect(same, true, $"{spec}: buckets on the quantizer's grid draw per coordinate: the whole-buffer bits");
        }
    }

    /// <summary>Three rounds through the overlapped exchange (buckets of <paramref name="bucketBytes"/>) and a whole-buffer
    /// one side by side; returns the last round's average and whether every round matched bit for bit.</summary>
    private static float[] Run(Communicator world, string spec, int[] lengths, long bucketBytes, int zeroFrom, out int buckets,
        out ExchangeCounters counters, out bool sameAsWhole)
    {
        var context = new Exchange.Compression.CompressorContext(7, world.Rank);
        var whole = new CompressedExchange(world, IdleWait.Yield, Exchange.Compression.CompressorRegistry.Create(spec, context)!);
        var overlapped = new OverlappedAllreduceExchange(world, IdleWait.Yield, lengths, bucketBytes, MpiEnvironment.ThreadMultiple,
            Exchange.Compression.CompressorRegistry.Create(spec, context));
        var total = lengths.Sum();
        var a = new float[total];
        var b = new float[total];
        sameAsWhole = true;
        for (var round = 0; round < 3; round++)
        {
            for (var i = 0; i < total; i++)
            {
                a[i] = b[i] = zeroFrom >= 0 && i >= zeroFrom && i < zeroFrom + 64 ? 0 : Gradient(world.Rank, round, i);
            }

            whole.AverageGradients(a);
            overlapped.BeginStep();
            for (var parameter = lengths.Length - 1; parameter >= 0; parameter--)
            {
                overlapped.GradientReady(parameter, b);     // backward's order: the last layer first
            }

            overlapped.AverageGradients(b);
            sameAsWhole &= a.AsSpan().SequenceEqual(b);
        }

        Program.Expect(overlapped.Round, 3L, $"{spec}: three rounds");
        Program.Expect(overlapped.Name, CompressedExchange.ExchangeName, $"{spec}: its name");
        buckets = overlapped.Buckets.Count;
        counters = overlapped.Counters;
        return b;
    }

    private static float Gradient(int rank, int round, int i) => (float)Math.Sin((0.37 * i) + (1.3 * rank) + round) * (1 + (i % 7));

    private static long Digest(ReadOnlySpan<float> values)
    {
        var hash = 14695981039346656037UL;
        foreach (var v in values)
        {
            hash = (hash ^ BitConverter.SingleToUInt32Bits(v)) * 1099511628211UL;
        }

        return (long)hash;
    }
}

/// <summary>
/// Several layer-wise trainings in one job (the rank tests compare their files): rank 0 alone trains each model named
/// with --algo single (DIR/ref-MODEL.grad, .bin: the first mini-batch's gradient and the parameters after the steps),
/// then every rank trains each MODEL=PLAN with --algo layerwise (DIR/run-K.grad, .bin), all on the same small data.
/// </summary>
internal static class LayerwiseRuns
{
    public static void Run(Communicator world, string directory, string[] runs)
    {
        var pairs = runs.Select(run => run.Split('=', 2)).ToArray();
        if (world.Rank == 0)
        {
            foreach (var model in pairs.Select(pair => pair[0]).Distinct())
            {
                Train(MpiEnvironment.Self, Options(model) with { Algorithm = "single" }, Path.Combine(directory, $"ref-{model}"));
            }
        }

        world.Barrier();
        for (var k = 0; k < pairs.Length; k++)
        {
            Train(world, Options(pairs[k][0]) with { Algorithm = "layerwise", Plan = pairs[k][1] }, Path.Combine(directory, $"run-{k}"));
        }
    }

    /// <summary>Batch 16 of 1x8x8 images of 4 classes, plain SGD with a little momentum, 5 steps; one thread per rank.</summary>
    private static Training.TrainOptions Options(string model) => new()
    {
        Model = model, DataSet = "synthetic:1x8x8:4", TrainSamples = 256, TestSamples = 64, Threads = 1, Batch = 16,
        LearningRate = 0.1, Momentum = 0.5, MaxSteps = 5,
    };

    /// <summary>Rank 0 also writes the run's communication rounds (DIR/run-K.rounds).</summary>
    private static void Train(Communicator world, Training.TrainOptions options, string stem)
    {
        var result = Algorithms.AlgorithmRegistry.Train(world, options with { FirstGradientsPath = stem + ".grad", ParametersPath = stem + ".bin" }, null);
        if (world.Rank == 0 && result is not null)
        {
            File.WriteAllText(stem + ".rounds", result.Totals.CommunicationRounds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}
