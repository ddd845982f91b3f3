using System.Globalization;
using MpiPipeline.Mpi;

namespace MpiPipeline.Training;

/// <summary>
/// How many ranks of the job run on this rank's node and how many cores they have between them: the union of the
/// ranks' CPU affinities (<c>Cpus_allowed_list</c>, which mpiexec binding, Slurm's task/affinity and cpuset cgroups all
/// narrow), capped by a CPU quota where one is in effect (Environment.ProcessorCount below the affinity: a container's
/// cpu.max). Decides the default libtorch threads per rank and how waiting ranks wait (more ranks than cores).
/// </summary>
/// <param name="OtherNodeOversubscribed">Some other node of the job has more ranks than cores.</param>
internal sealed record NodeShare(int RanksOnNode, int CoresOnNode, bool OtherNodeOversubscribed = false)
{
    /// <summary>More ranks than cores on the node: ranks share cores, and a rank that waits should leave its core.</summary>
    public bool Oversubscribed => RanksOnNode > CoresOnNode;

    /// <summary>Some node of the job, this one or another, is oversubscribed.</summary>
    public bool JobOversubscribed => Oversubscribed || OtherNodeOversubscribed;

    /// <summary>The node's cores divided among its ranks, at least 1.</summary>
    public int ThreadsPerRank => Math.Max(1, CoresOnNode / RanksOnNode);

    /// <summary>
    /// The point-to-point waits of a pipeline's stages: sleep when the ranks share cores (most stages of a pipeline
    /// wait while few compute), yield otherwise (bench/results/pipeline.md).
    /// </summary>
    public IdleWait PipelineWait => Oversubscribed ? IdleWait.Sleep : IdleWait.Yield;

    /// <summary>
    /// The wait of the gradient/model Allreduce: where a node of the job has more ranks than cores, MPI_Iallreduce polled
    /// with sched_yield, because MPICH's blocking MPI_Allreduce busy-polls the core a rank still computing needs (Open MPI
    /// yields by itself when oversubscribed; timings in README, PSGD). Yield, not sleep: every rank's MPI calls drive
    /// the reduction. Null (MPI's own blocking Allreduce) when every rank has a core. Decided for the whole job, never
    /// per node: a blocking and a nonblocking collective do not match each other (MPI 4.0, 6.12), so all ranks must
    /// call the same one.
    /// </summary>
    public IdleWait? AllreduceWait => JobOversubscribed ? IdleWait.Yield : null;

    /// <summary>For rank 0's results: what sharing the cores changes (<paramref name="howRanksWait"/>); null when no
    /// node is oversubscribed (<paramref name="wholeJob"/>) or when rank 0's is not (otherwise).</summary>
    public string? OversubscribedNote(string howRanksWait, bool wholeJob = false) =>
        Oversubscribed ? $"{RanksOnNode} ranks share {CoresOnNode} cores on rank 0's node (oversubscribed): {howRanksWait}"
        : wholeJob && OtherNodeOversubscribed ? $"a node of this job has more ranks than cores (oversubscribed): {howRanksWait}"
        : null;

    /// <summary>Collective over <paramref name="world"/>: every rank gets its own node's figures and whether any node
    /// of the job is oversubscribed.</summary>
    public static NodeShare Measure(Communicator world)
    {
        var mine = AllowedCpus();
        var node = world.SplitShared(world.Rank);
        try
        {
            var highest = node.Allreduce(mine.Count == 0 ? -1 : mine.Max(), ReduceOp.Max);
            var cores = Environment.ProcessorCount;
            if (highest >= 0)
            {
                var used = new int[highest + 1];
                foreach (var cpu in mine)
                {
                    used[cpu] = 1;
                }

                node.Allreduce<int>(used, ReduceOp.Max);
                // .NET's ProcessorCount below the affinity means a CPU quota (cgroup cpu.max): the node's ranks share it.
                var quota = node.Allreduce(Environment.ProcessorCount < mine.Count ? Environment.ProcessorCount : int.MaxValue, ReduceOp.Min);
                cores = Math.Min(used.Sum(), quota);
            }

            var share = new NodeShare(node.Size, Math.Max(1, cores));
            var anyNode = world.Allreduce(share.Oversubscribed ? 1 : 0, ReduceOp.Max) == 1;
            return share with { OtherNodeOversubscribed = anyNode && !share.Oversubscribed };
        }
        finally
        {
            node.Free();
        }
    }

    /// <summary>This process's CPUs from /proc/self/status; empty where that cannot be read (not Linux).</summary>
    private static IReadOnlyList<int> AllowedCpus()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal));
            return line is null ? [] : ParseCpuList(line["Cpus_allowed_list:".Length..]);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return []; // unreadable, or a format this parser does not know: fall back to Environment.ProcessorCount
        }
    }

    /// <summary>The kernel's CPU list format ("0-3,8,10-11"; man 7 cpuset) as CPU numbers; empty for an empty list.</summary>
    public static IReadOnlyList<int> ParseCpuList(string text)
    {
        var cpus = new SortedSet<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var range = part.Split('-');
            if (range.Length > 2 || !int.TryParse(range[0], NumberStyles.None, CultureInfo.InvariantCulture, out var first)
                || !int.TryParse(range[^1], NumberStyles.None, CultureInfo.InvariantCulture, out var last) || last < first)
            {
                throw new FormatException($"'{text.Trim()}' is not a CPU list (e.g. 0-3,8)");
            }

            for (var cpu = first; cpu <= last; cpu++)
            {
                cpus.Add(cpu);
            }
        }

        return [.. cpus];
    }
}
