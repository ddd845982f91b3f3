using System.CommandLine;
using System.Text;
using System.Text.Json;
using MpiPipeline.Mpi;
using Spectre.Console;

namespace MpiPipeline.Cli.Verbs;

/// <summary><c>mpipipe info</c>: what the job runs on (like <c>horovodrun --check-build</c>).</summary>
internal static class InfoVerb
{
    internal static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of tables." };
        var command = new Command("info", "MPI library and ABI, world size, hosts, node-local ranks, thread level, libtorch/CUDA status.");
        command.Options.Add(json);
        command.SetAction(parse => MpiRuntime.Run(world => Run(world, parse.GetValue(json))));
        return command;
    }

    internal sealed record RankInfo(int Rank, string Host, int NodeRank, int NodeSize, int Pid);

    internal sealed record Report(
        string Library, string LibraryPath, string Abi, string Standard, string ThreadLevel, int WorldSize, int Hosts,
        IReadOnlyList<RankInfo> Ranks, IReadOnlyDictionary<string, string> Torch);

    private static int Run(Communicator world, bool asJson)
    {
        var node = world.SplitShared(world.Rank);
        var mine = $"{world.Rank}\t{MpiEnvironment.ProcessorName()}\t{node.Rank}\t{node.Size}\t{Environment.ProcessId}";
        node.Free();
        var ranks = GatherLines(world, mine)
            .Select(line => line.Split('\t'))
            .Select(f => new RankInfo(int.Parse(f[0]), f[1], int.Parse(f[2]), int.Parse(f[3]), int.Parse(f[4])))
            .ToList();
        if (world.Rank != 0)
        {
            return 0;
        }

        var (major, minor) = MpiEnvironment.StandardVersion();
        var report = new Report(
            MpiEnvironment.LibraryVersion().Split('\n')[0].Replace('\t', ' ').Trim(),
            MpiEnvironment.LibraryPath,
            MpiEnvironment.Abi == MpiAbi.Mpich ? "MPICH ABI (integer handles)" : "Open MPI ABI (pointer handles)",
            $"MPI {major}.{minor}",
            ThreadLevelName(MpiEnvironment.ThreadLevel),
            world.Size,
            ranks.Select(r => r.Host).Distinct().Count(),
            ranks,
            TorchStatus.Describe());
        if (asJson)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }

        var summary = new Table().Border(TableBorder.Simple).AddColumn("item").AddColumn("value");
        summary.AddRow("MPI library", Markup.Escape(report.Library));
        summary.AddRow("library file", Markup.Escape(report.LibraryPath));
        summary.AddRow("ABI", report.Abi);
        summary.AddRow("standard", report.Standard);
        summary.AddRow("thread level", report.ThreadLevel);
        summary.AddRow("world size", report.WorldSize.ToString());
        summary.AddRow("hosts", report.Hosts.ToString());
        foreach (var (key, value) in report.Torch)
        {
            summary.AddRow(Markup.Escape(key), Markup.Escape(value));
        }

        var perRank = new Table().Border(TableBorder.Simple).AddColumn("rank").AddColumn("host").AddColumn("node-local rank").AddColumn("ranks on node").AddColumn("pid");
        foreach (var r in ranks)
        {
            perRank.AddRow(r.Rank.ToString(), Markup.Escape(r.Host), r.NodeRank.ToString(), r.NodeSize.ToString(), r.Pid.ToString());
        }

        AnsiConsole.Write(summary);
        AnsiConsole.Write(perRank);
        return 0;
    }

    /// <summary>Every rank's line, in rank order, on every rank (Allgather of lengths, then Allgatherv of UTF-8 bytes).</summary>
    internal static string[] GatherLines(Communicator world, string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line);
        var lengths = new int[world.Size];
        world.Allgather<int>([bytes.Length], lengths);
        var displacements = new int[world.Size];
        for (var i = 1; i < world.Size; i++)
        {
            displacements[i] = displacements[i - 1] + lengths[i - 1];
        }

        var all = new byte[displacements[^1] + lengths[^1]];
        world.Allgatherv<byte>(bytes, all, lengths, displacements);
        return [.. Enumerable.Range(0, world.Size).Select(i => Encoding.UTF8.GetString(all, displacements[i], lengths[i]))];
    }

    private static string ThreadLevelName(int level) => level switch
    {
        0 => "MPI_THREAD_SINGLE",
        1 => "MPI_THREAD_FUNNELED",
        2 => "MPI_THREAD_SERIALIZED",
        3 => "MPI_THREAD_MULTIPLE",
        _ => level.ToString(),
    };
}
