namespace MpiPipeline.RankTests;

/// <summary>
/// bench/gpu/check.sh --cpu-dry-run, the GPU check's steps on this CPU, against a stand-in bundle (the built mpipipe
/// behind a wrapper, the system's MPICH) and the CPU bridge already built (--bridge): every step runs, the summary
/// written as it goes has its rows, and the PSGD rows show the staged gradient path the GPU run takes.
/// The real bundle's own check is `make device-bundle-check` (publishing takes minutes).
/// </summary>
public sealed class GpuCheckDryRunTests : RankFixture
{
    [Test]
    public void DryRunRunsEveryStepAndWritesTheSummary()
    {
        var bundle = Path.Combine(WorkDirectory, "device-bundle");
        Directory.CreateDirectory(Path.Combine(bundle, "mpipipe"));
        var wrapper = Path.Combine(bundle, "mpipipe", "mpipipe");
        File.WriteAllText(wrapper, $"#!/bin/sh\nexec dotnet '{MpiLauncher.Mpipipe}' \"$@\"\n");
        Assert.That(MpiLauncher.Run("chmod", ["+x", wrapper], Prompt).ExitCode, Is.EqualTo(0));
        var root = RepoRoot();
        File.WriteAllText(Path.Combine(bundle, "env.sh"),
            $"export PATH=\"{bundle}/mpipipe:$PATH\"\n" +
            $"bundle_mpiexec() {{ HYDRA_IFACE=lo mpiexec.mpich -f '{root}/hostfiles/localhost.mpich' \"$@\"; }}\n");
        var output = Path.Combine(WorkDirectory, "out");
        var result = MpiLauncher.Run("bash", [Path.Combine(root, "bench", "gpu", "check.sh"), "--cpu-dry-run", "--bundle", bundle,
                "--bridge", Path.Combine(MpiLauncher.Bin, "libmpp_bridge.so")], TimeSpan.FromSeconds(600),
            [("OUT", output), ("PYTHONDONTWRITEBYTECODE", "1"), ("CHECK_BUDGET_S", "540")]);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());

        var summary = File.ReadAllLines(Path.Combine(output, "summary.md"));
        foreach (var name in new[] { "unpack", "facts", "info", "bench-bridge-cnn", "bench-bridge-deep-mlp-3-512", "psgd-n1", "psgd-n2" })
        {
            Assert.That(summary, Has.One.StartsWith($"| {name} | ok |"), name);
        }

        Assert.That(summary, Has.One.StartsWith("| bridge | given |"));
        // Debian's python3 has no torch: the eager rows say so instead of failing.
        Assert.That(summary.Count(l => l.StartsWith("| eager-", StringComparison.Ordinal) && (l.Contains("| ok |") || l.Contains("no torch here"))),
            Is.EqualTo(2));
        Assert.That(summary, Has.Some.Matches(@"^\| cnn \| \d+\.\d+ \| \d+\.\d+ \|"), "the bridge's step time in the table");
        Assert.That(summary, Has.One.Matches(@"^\| cnn on cpu \| 1 \| [1-9]\d* \| none \|"), "one rank: nothing exchanged");
        Assert.That(summary, Has.One.Matches(@"^\| cnn on cpu \| 2 \| [1-9]\d* \| host \| (\d+) / \1 \|"), "two ranks: staged, one copy each way per bucket");
        Assert.That(summary[^1], Does.StartWith("0 step(s) failed"));
    }

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "MpiPipeline.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"MpiPipeline.sln not found above {AppContext.BaseDirectory}");
    }
}
