using System.Text.Json;
using MpiPipeline.Benchmarks;
using MpiPipeline.Mpi;

namespace MpiPipeline.Tests.Benchmarks;

[TestFixture]
public sealed class MpiBenchmarkOptionsTests
{
    private static readonly MpiBenchmarkOptions Both = new([8, 16], MpiBenchmarkOps.All);

    [TestCase("pingpong,allreduce", new[] { "pingpong", "allreduce" })]
    [TestCase("allreduce, PingPong", new[] { "allreduce", "pingpong" })]
    [TestCase("allreduce", new[] { "allreduce" })]
    public void ParsesOperationLists(string text, string[] expected)
    {
        Assert.That(MpiBenchmarkOps.TryParseList(text, out var ops, out var error), Is.True, error);
        Assert.That(ops.Select(op => op.Name()), Is.EqualTo(expected));
    }

    [TestCase("", "no operation")]
    [TestCase("bcast", "unknown operation 'bcast'")]
    [TestCase("allreduce,allreduce", "named twice")]
    public void RefusesBadOperationLists(string text, string why)
    {
        Assert.That(MpiBenchmarkOps.TryParseList(text, out _, out var error), Is.False);
        Assert.That(error, Does.Contain(why));
    }

    [Test]
    public void TwoOrMoreRanksRunEverything()
    {
        Assert.That(Both.ForWorldSize(2, out var note), Is.SameAs(Both));
        Assert.That(note, Is.Null);
        Assert.That(Both.ForWorldSize(5, out _).Ops, Is.EqualTo(MpiBenchmarkOps.All));
    }

    [Test]
    public void OneRankSkipsPingPongAndSaysSo()
    {
        var options = Both.ForWorldSize(1, out var note);
        Assert.That(options.Ops, Is.EqualTo(new[] { MpiBenchmarkOp.Allreduce }));
        Assert.That(note, Does.Contain("ping-pong skipped"));
    }

    [Test]
    public void OneRankWithOnlyPingPongIsBadInput()
    {
        var options = Both with { Ops = [MpiBenchmarkOp.PingPong] };
        Assert.That(() => options.ForWorldSize(1, out _),
            Throws.InstanceOf<InputException>().With.Message.Contains("needs at least 2 ranks"));
    }

    [Test]
    public void RawLineIsTheCBaselinesFormat()
    {
        var result = new MpiBenchmarkResult(MpiBenchmarkOp.PingPong, 65536, 6, 64, 21, 12.3456, 20.0);
        Assert.That(result.RawLine, Is.EqualTo("pingpong 65536 12.346 20.000"));
        Assert.That(result.MedianBandwidthMBps, Is.EqualTo(3276.8).Within(1e-9));
        Assert.That(result.PeakBandwidthMBps, Is.EqualTo(65536 / 12.3456).Within(1e-9));
    }

    [Test]
    public void JsonReportHasOneEntryPerOperationAndSize()
    {
        MpiBenchmarkResult[] results =
        [
            new(MpiBenchmarkOp.PingPong, 8, 100, 1000, 21, 0.2, 0.25),
            new(MpiBenchmarkOp.Allreduce, 8, 100, 1000, 21, 0.5, 0.75),
        ];
        var json = MpiBenchmarkReport.Create("MPICH Version: 4.0.2", "Mpich", 2, Both, ["a note"], results).ToJson();

        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        Assert.That(root.GetProperty("Benchmark").GetString(), Is.EqualTo("mpi"));
        Assert.That(root.GetProperty("Library").GetString(), Is.EqualTo("MPICH Version: 4.0.2"));
        Assert.That(root.GetProperty("Abi").GetString(), Is.EqualTo("Mpich"));
        Assert.That(root.GetProperty("WorldSize").GetInt32(), Is.EqualTo(2));
        Assert.That(root.GetProperty("IterationScale").GetDouble(), Is.EqualTo(1.0));
        Assert.That(root.GetProperty("Samples").GetInt32(), Is.EqualTo(IterationSchedule.DefaultSamples));
        Assert.That(root.GetProperty("Notes").EnumerateArray().Select(n => n.GetString()), Is.EqualTo(new[] { "a note" }));
        var entries = root.GetProperty("Results").EnumerateArray().ToList();
        Assert.That(entries.Select(e => e.GetProperty("Op").GetString()), Is.EqualTo(new[] { "pingpong", "allreduce" }));
        var first = entries[0];
        Assert.That(first.GetProperty("SizeBytes").GetInt64(), Is.EqualTo(8));
        Assert.That(first.GetProperty("WarmupOps").GetInt32(), Is.EqualTo(100));
        Assert.That(first.GetProperty("OpsPerSample").GetInt32(), Is.EqualTo(1000));
        Assert.That(first.GetProperty("Samples").GetInt32(), Is.EqualTo(21));
        Assert.That(first.GetProperty("MinMicroseconds").GetDouble(), Is.EqualTo(0.2));
        Assert.That(first.GetProperty("MedianMicroseconds").GetDouble(), Is.EqualTo(0.25));
        Assert.That(first.GetProperty("MedianBandwidthMBps").GetDouble(), Is.EqualTo(32.0));
        Assert.That(first.GetProperty("PeakBandwidthMBps").GetDouble(), Is.EqualTo(40.0));
    }
}
