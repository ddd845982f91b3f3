using System.Diagnostics;
using MpiPipeline.Mpi;

namespace MpiPipeline.Tests.Mpi;

/// <summary>
/// The binding hard-codes each ABI's constants and struct offsets. A C probe (tests/probe/mpi_probe.c) compiled by
/// each installed MPI's own mpicc prints them from mpi.h; the binding's tables must agree line for line.
/// </summary>
[TestFixture]
public sealed class AbiProbeTests
{
    public static IEnumerable<TestCaseData> Compilers() =>
    [
        new TestCaseData("mpicc.mpich").SetArgDisplayNames("mpich"),
        new TestCaseData("mpicc.openmpi").SetArgDisplayNames("openmpi"),
    ];

    [TestCaseSource(nameof(Compilers))]
    public void BindingTableMatchesMpiHeader(string mpicc)
    {
        // Open MPI handles are addresses resolved at load time; the probe prints their symbol names instead.
        var table = mpicc.EndsWith("mpich", StringComparison.Ordinal) ? AbiTable.Mpich : AbiTable.OpenMpi(_ => 1);
        var probe = Compile(mpicc);
        var printed = Run(probe)
            .Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ', 2))
            .ToDictionary(f => f[0], f => f[1].Trim());
        var expected = table.AsProbeLines();
        Assert.Multiple(() =>
        {
            Assert.That(printed.Keys, Is.EquivalentTo(expected.Keys), "the probe and the table name the same constants");
            foreach (var (key, value) in expected)
            {
                Assert.That(printed.GetValueOrDefault(key), Is.EqualTo(value), $"{key} in {mpicc}'s mpi.h");
            }
        });
    }

    private static string Compile(string mpicc)
    {
        var output = Path.Combine(Path.GetTempPath(), $"mpi_probe_{mpicc}_{Environment.ProcessId}");
        var source = Path.Combine(RepoPaths.Root, "tests", "probe", "mpi_probe.c");
        var result = Run(mpicc, "-O0", "-o", output, source);
        Assert.That(File.Exists(output), Is.True, $"{mpicc} did not build the probe: {result}");
        return output;
    }

    private static string Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.That(process.ExitCode, Is.EqualTo(0), $"{file} failed: {stderr}");
        return stdout.Result;
    }
}
