using System.Globalization;
using MpiPipeline.Mpi;

namespace MpiPipeline.Training;

/// <summary>
/// How many ranks of the job run on this rank's node and how many cores they have between them: the union of the
/// ranks' CPU affinities (<c>Cpus_allowed_list</c>, which mpiexec binding, Slurm's task/affinity and cpuset cgroups all
/// narrow). Decides the default libtorch threads per rank and whether waiting ranks sleep (more ranks than cores).
/// </summary>
internal sealed record NodeShare(int RanksOnNode, int CoresOnNode)
{
    /// <summary>More ranks than cores on the node: ranks share cores, and a rank that waits should leave its core.</summary>
    public bool Oversubscribed => RanksOnNode > CoresOnNode;

    /// <summary>The node's cores divided among its ranks, at least 1.</summary>
    public int ThreadsPerRank => Math.Max(1, CoresOnNode / RanksOnNode);

    /// <summary>
    /// The point-to-point waits of a pipeline's stages: sleep when the ranks share cores (most stages of a pipeline
    /// wait while few compute), yield otherwise (bench/results/pipeline.md).
    /// </summary>
    public IdleWait PipelineWait => Oversubscribed ? IdleWait.Sleep : IdleWait.Yield;

    /// <summary>
    /// The wait of the gradient/model Allreduce: on a node with more ranks than cores MPI_Iallreduce polled with
    /// sched_yield, because MPICH's blocking MPI_Allreduce busy-polls the core a rank still computing needs (PSGD, cnn,
    /// 4 ranks on 2 cores: 35 -> 17 ms per step; Open MPI, which yields by itself when oversubscribed, and 2 ranks on 2
    /// cores: no change). Yield, not sleep: every rank's MPI calls drive the reduction. Null (MPI's own blocking
    /// Allreduce) when every rank has a core.
    /// </summary>
    public IdleWait? AllreduceWait => Oversubscribed ? IdleWait.Yield : null;

    /// <summary>Collective over <paramref name="world"/>: every rank gets its own node's figures.</summary>
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
                cores = used.Sum();
            }

            return new NodeShare(node.Size, Math.Max(1, cores));
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
        catch (IOException)
        {
            return [];
        }
        catch (UnauthorizedAccessException)
        {
            return [];
        }
        catch (FormatException)
        {
            return []; // a format this parser does not know: fall back to Environment.ProcessorCount
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
