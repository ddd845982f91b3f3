using System.Text.RegularExpressions;
using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Torch;

/// <summary>Loading the bridge: version check, thread default, what `mpipipe info` reports.</summary>
[TestFixture]
public sealed partial class BridgeTests
{
    [Test]
    public void LoadedBridgeHasTheExpectedVersion()
    {
        Assert.That(TorchRuntime.BridgeVersion, Is.EqualTo(TorchRuntime.ExpectedBridgeVersion));
        Assert.That(TorchRuntime.BridgePath, Does.EndWith("libmpp_bridge.so"));
    }

    [Test]
    public void HeaderVersionMatchesTheCSharpConstant()
    {
        var header = File.ReadAllText(Path.Combine(RepoPaths.Root, "src/MpiPipeline.Torch/native/mpp_bridge.h"));
        var match = VersionDefine().Match(header);
        Assert.That(match.Success, Is.True, "#define MPP_BRIDGE_VERSION in mpp_bridge.h");
        Assert.That(int.Parse(match.Groups[1].Value), Is.EqualTo(BridgeLibrary.ExpectedVersion),
            "bump BridgeLibrary.ExpectedVersion together with MPP_BRIDGE_VERSION");
    }

    [Test]
    public void AnotherVersionIsRefusedWithWhatToDo()
    {
        Assert.That(() => BridgeLibrary.CheckVersion(BridgeLibrary.ExpectedVersion, "/x/libmpp_bridge.so"), Throws.Nothing);
        var ex = Assert.Throws<TorchException>(() => BridgeLibrary.CheckVersion(BridgeLibrary.ExpectedVersion + 1, "/x/libmpp_bridge.so"))!;
        Assert.That(ex.Status, Is.EqualTo(BridgeStatus.NotLoaded));
        Assert.That(ex.Message, Does.Contain($"/x/libmpp_bridge.so is bridge ABI version {BridgeLibrary.ExpectedVersion + 1}")
            .And.Contain($"expects version {BridgeLibrary.ExpectedVersion}").And.Contain("make build"));
    }

    [Test]
    public void OverrideVariableIsTheOnlyCandidate()
    {
        var env = new Dictionary<string, string?> { [BridgeLibrary.OverrideVariable] = "/opt/cuda-build/libmpp_bridge.so" };
        Assert.That(BridgeLibrary.Candidates(env), Is.EqualTo(new[] { "/opt/cuda-build/libmpp_bridge.so" }));
        Assert.That(BridgeLibrary.Candidates(new Dictionary<string, string?>())[0],
            Is.EqualTo(Path.Combine(AppContext.BaseDirectory, "libmpp_bridge.so")));
    }

    [Test]
    public void DefaultThreadsShareTheCoresAmongTheRanksOfANode()
    {
        var none = new Dictionary<string, string?>();
        Assert.That(BridgeLibrary.DefaultThreads(none, 8), Is.EqualTo(8));
        Assert.That(BridgeLibrary.DefaultThreads(new Dictionary<string, string?> { ["MPI_LOCALNRANKS"] = "4" }, 8), Is.EqualTo(2));
        Assert.That(BridgeLibrary.DefaultThreads(new Dictionary<string, string?> { ["OMPI_COMM_WORLD_LOCAL_SIZE"] = "16" }, 8), Is.EqualTo(1));
        Assert.That(BridgeLibrary.DefaultThreads(new Dictionary<string, string?> { ["MPIPIPE_TORCH_THREADS"] = "3", ["MPI_LOCALNRANKS"] = "4" }, 8),
            Is.EqualTo(3));
        Assert.That(() => BridgeLibrary.DefaultThreads(new Dictionary<string, string?> { ["MPIPIPE_TORCH_THREADS"] = "many" }, 8),
            Throws.TypeOf<InputException>().With.Message.Contains("MPIPIPE_TORCH_THREADS='many' is not a positive integer"));
        Assert.That(BridgeLibrary.DefaultThreads(new Dictionary<string, string?> { ["MPIPIPE_LOCAL_RANKS"] = "2" }, 8), Is.EqualTo(4));
        Assert.That(() => BridgeLibrary.DefaultThreads(new Dictionary<string, string?> { ["MPIPIPE_LOCAL_RANKS"] = "x" }, 8),
            Throws.TypeOf<InputException>().With.Message.Contains("MPIPIPE_LOCAL_RANKS='x' is not a positive integer"));
    }

    [Test]
    public void ThreadsCanBeSet()
    {
        var before = TorchRuntime.Threads;
        try
        {
            TorchRuntime.Threads = 1;
            Assert.That(TorchRuntime.Threads, Is.EqualTo(1));
        }
        finally
        {
            TorchRuntime.Threads = before;
        }
    }

    [Test]
    public void DescribeReportsVersionThreadsCudaAndBlas()
    {
        var info = TorchRuntime.Describe();
        Assert.That(info.Keys, Is.SupersetOf(new[] { "libtorch", "torch bridge", "torch threads", "CUDA", "BLAS", "malloc tuning" }));
        Assert.That(info["libtorch"], Does.StartWith("1.").Or.StartWith("2."));
        Assert.That(info["malloc tuning"], Does.Contain("mmap threshold 64 MiB").Or.Contain("left to"));
        Assert.That(TorchRuntime.LibtorchVersion, Does.Match(@"^\d+\.\d+"));
        Assert.That(TorchRuntime.ParallelInfo(), Does.Contain("ATen/Parallel"));
    }

    [Test]
    public void BlasIsJudgedByItsPath()
    {
        Assert.That(TorchRuntime.DescribeBlas(["/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"]), Does.StartWith("OpenBLAS"));
        Assert.That(TorchRuntime.DescribeBlas(["/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"]),
            Does.StartWith("reference BLAS").And.Contain("libopenblas0-openmp"));
        Assert.That(TorchRuntime.DescribeBlas(["/usr/lib/libc.so.6"]), Does.StartWith("none loaded"));
    }

    [Test]
    public void CliReportsTheBridge() =>
        Assert.That(MpiPipeline.Cli.TorchStatus.Describe()["libtorch"], Does.Not.StartWith("not available"));

    [GeneratedRegex(@"#define\s+MPP_BRIDGE_VERSION\s+(\d+)")]
    private static partial Regex VersionDefine();
}
