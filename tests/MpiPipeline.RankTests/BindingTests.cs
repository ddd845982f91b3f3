namespace MpiPipeline.RankTests;

/// <summary>
/// Every binding operation under a real mpiexec, MPICH and Open MPI, at n = 1..4. The scenarios compute the
/// expected values from rank and size (tests/RankScenarios), so the same scenario runs at any -n.
/// </summary>
public sealed class BindingTests : RankFixture
{
    private static readonly string[] Scenarios =
        ["point-to-point", "collectives", "nonblocking-ring", "subcommunicators", "managed-exception-after-init", "overlapped-exchange"];

    public static IEnumerable<TestCaseData> Cases() =>
        from flavor in MpiFlavor.All
        from ranks in new[] { 1, 2, 3, 4 }
        from scenario in Scenarios
        select new TestCaseData(flavor, ranks, scenario).SetName($"{scenario}({flavor.Name}, n={ranks})");

    [TestCaseSource(nameof(Cases))]
    public void ScenarioPassesOnEveryRank(MpiFlavor flavor, int ranks, string scenario)
    {
        var result = MpiLauncher.Launch(flavor, ranks, MpiLauncher.Scenarios, [scenario]);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        var abi = flavor == MpiFlavor.Mpich ? "Mpich" : "OpenMpi";
        Assert.That(result.Stdout, Does.Contain($"PASS {scenario} n={ranks} abi={abi}"), result.ToString());
    }
}
