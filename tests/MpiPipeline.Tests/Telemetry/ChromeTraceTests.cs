using System.Text.Json;
using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Tests.Telemetry;

/// <summary>The Chrome trace: per-rank serialization, the merged file (parsed back with System.Text.Json), the bubble.</summary>
[TestFixture]
internal sealed class ChromeTraceTests
{
    /// <summary>A clock that moves only when told; one tick = one microsecond.</summary>
    private sealed class ManualClock : TimeProvider
    {
        public long Microseconds { get; set; }

        public override long TimestampFrequency => 1_000_000;

        public override long GetTimestamp() => Microseconds;
    }

    private static ChromeTrace TwoStageRank(int rank)
    {
        var trace = new ChromeTrace(rank, $"stage {rank}, replica 0");
        trace.Add("F0", TraceCategory.Forward, 0, 10, microBatch: 0);
        trace.Add("send F0", TraceCategory.Send, 10, 1.5);
        trace.Add("wait B0", TraceCategory.RecvWait, 11.5, 20.25);
        trace.Add("B0", TraceCategory.Backward, 31.75, 20, microBatch: 0);
        trace.Add("allreduce", TraceCategory.Allreduce, 51.75, 5);
        trace.Add("step", TraceCategory.Optimizer, 56.75, 1);
        return trace;
    }

    [Test]
    public void SerializeRoundTrips()
    {
        var trace = TwoStageRank(3);
        var back = ChromeTrace.Deserialize(trace.Serialize());
        Assert.That(back.Rank, Is.EqualTo(3));
        Assert.That(back.RowName, Is.EqualTo("stage 3, replica 0"));
        Assert.That(back.Spans, Is.EqualTo(trace.Spans));
    }

    [Test]
    public void SerializedFormIsCompact()
    {
        var trace = new ChromeTrace(1, "stage 1, replica 0");
        trace.Add("F2", TraceCategory.Forward, 1.25, 3, microBatch: 2);
        trace.Add("send F2", TraceCategory.Send, 4.25, 0.0004); // rounded to the nanosecond
        Assert.That(trace.Serialize(), Is.EqualTo(
            """{"rank":1,"row":"stage 1, replica 0","spans":[["F2","forward",1.25,3,2],["send F2","send",4.25,0]]}"""));
    }

    [Test]
    public void DeserializeRejectsGarbage()
    {
        Assert.Throws<FormatException>(() => ChromeTrace.Deserialize("not json"));
        Assert.Throws<FormatException>(() => ChromeTrace.Deserialize("""{"rank":0,"row":"x","spans":[["F0","dance",0,1]]}"""));
        Assert.Throws<FormatException>(() => ChromeTrace.Deserialize("""{"row":"x","spans":[]}"""));
    }

    [Test]
    public void MergeOfTwoRanksIsAChromeTrace()
    {
        // Given out of order: the merged file is ordered by rank.
        var json = ChromeTrace.Merge([TwoStageRank(1).Serialize(), TwoStageRank(0).Serialize()]);
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        Assert.That(root.GetProperty("displayTimeUnit").GetString(), Is.EqualTo("ms"));
        var events = root.GetProperty("traceEvents").EnumerateArray().ToList();

        var metadata = events.Where(e => e.GetProperty("ph").GetString() == "M").ToList();
        Assert.That(metadata.Select(e => (e.GetProperty("pid").GetInt32(), e.GetProperty("name").GetString(), e.GetProperty("args").EnumerateObject().Single().Value.ToString())),
            Is.EqualTo(new[]
            {
                (0, "process_name", "rank 0"), (0, "process_sort_index", "0"), (0, "thread_name", "stage 0, replica 0"),
                (1, "process_name", "rank 1"), (1, "process_sort_index", "1"), (1, "thread_name", "stage 1, replica 0"),
            }));

        var complete = events.Where(e => e.GetProperty("ph").GetString() == "X").ToList();
        Assert.That(complete, Has.Count.EqualTo(12));
        foreach (var e in complete)
        {
            foreach (var field in new[] { "name", "cat", "pid", "tid", "ts", "dur" })
            {
                Assert.That(e.TryGetProperty(field, out _), $"{field} in {e}");
            }
        }

        Assert.That(complete.Select(e => e.GetProperty("pid").GetInt32()), Is.Ordered);
        Assert.That(complete.Take(6).Select(e => e.GetProperty("cat").GetString()),
            Is.EqualTo(new[] { "forward", "send", "recv-wait", "backward", "allreduce", "optimizer" }));
        var waitB0 = complete[2];
        Assert.That(waitB0.GetProperty("ts").GetDouble(), Is.EqualTo(11.5));
        Assert.That(waitB0.GetProperty("dur").GetDouble(), Is.EqualTo(20.25));
        Assert.That(complete[0].GetProperty("args").GetProperty("micro_batch").GetInt32(), Is.EqualTo(0));
        Assert.That(waitB0.TryGetProperty("args", out _), Is.False);
    }

    [Test]
    public void MergeRefusesTwoTracesOfOneRank() =>
        Assert.Throws<InvalidOperationException>(() => ChromeTrace.Merge([TwoStageRank(1).Serialize(), TwoStageRank(1).Serialize()]));

    [Test]
    public void WriteMergedReplacesTheFileWholeAndLeavesNoTemporary()
    {
        var directory = Directory.CreateTempSubdirectory("mpipipe-trace-");
        try
        {
            var path = Path.Combine(directory.FullName, "trace.json");
            File.WriteAllText(path, "an older trace");
            ChromeTrace.WriteMerged(path, [TwoStageRank(0).Serialize(), TwoStageRank(1).Serialize()]);
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            Assert.That(document.RootElement.GetProperty("traceEvents").GetArrayLength(), Is.EqualTo(18));
            Assert.That(directory.GetFiles().Select(f => f.Name), Is.EqualTo(new[] { "trace.json" }));
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Test]
    public void WriteMergedCreatesAMissingFolderAsEveryOutputDoes()
    {
        var folder = Path.Combine(Path.GetTempPath(), "mpipipe-no-such-directory-" + Guid.NewGuid().ToString("N"));
        try
        {
            ChromeTrace.WriteMerged(Path.Combine(folder, "trace.json"), [TwoStageRank(0).Serialize()]);
            Assert.That(Directory.GetFiles(folder).Select(Path.GetFileName), Is.EqualTo(new[] { "trace.json" }));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void NowCountsFromTheClockSinceTheOrigin()
    {
        var clock = new ManualClock { Microseconds = 1_000 };
        var trace = new ChromeTrace(0, "stage 0, replica 0", clock);
        clock.Microseconds = 5_000;
        trace.ResetOrigin(); // after the barrier
        clock.Microseconds = 5_100;
        var start = trace.Now();
        clock.Microseconds = 5_350;
        trace.Add("F0", TraceCategory.Forward, start, trace.Now() - start, microBatch: 0);

        Assert.That(trace.Spans, Is.EqualTo(new[] { new TraceSpan("F0", TraceCategory.Forward, 100, 250, 0) }));
        Assert.That(trace.Now(), Is.EqualTo(350));
    }

    [Test]
    public void MeasuredBubbleOnHandMadeSpans()
    {
        TraceSpan[] spans =
        [
            new("F0", TraceCategory.Forward, 0, 30),
            new("send F0", TraceCategory.Send, 30, 20),        // not compute
            new("B0", TraceCategory.Backward, 50, 20),
            new("wait", TraceCategory.RecvWait, 70, 30),       // not compute
        ];
        Assert.That(ChromeTrace.MeasuredBubble(spans, 0, 100), Is.EqualTo(0.5).Within(1e-12)); // busy 30 + 20 of 100
        Assert.That(ChromeTrace.MeasuredBubble(spans, 20, 60), Is.EqualTo(0.5).Within(1e-12)); // clipped: 10 + 10 of 40

        TraceSpan[] overlapping = [new("F1", TraceCategory.Forward, 10, 10), new("B1", TraceCategory.Backward, 15, 10), new("F2", TraceCategory.Forward, -10, 15)];
        Assert.That(ChromeTrace.MeasuredBubble(overlapping, 0, 40), Is.EqualTo(1 - (5 + 15) / 40.0).Within(1e-12)); // union [0,5) + [10,25)
        Assert.That(ChromeTrace.MeasuredBubble([], 0, 10), Is.EqualTo(1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ChromeTrace.MeasuredBubble(spans, 10, 10));
    }

    [TestCase(ScheduleKind.GPipe)]
    [TestCase(ScheduleKind.OneFOneB)]
    public void MeasuredBubbleOfAnIdealScheduleIsTheFormulasBubble(ScheduleKind kind)
    {
        // Spans from the simulated schedule (S = 4, M = 8, t_f = 1, t_b = 2): each stage is busy 8 * 3 of 33.
        var schedule = Schedule.Create(kind, 4, 8);
        var tasks = PipelineTiming.Simulate(schedule, [1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]);
        var end = tasks.Max(t => t.End);
        for (var s = 0; s < 4; s++)
        {
            var spans = tasks.Where(t => t.Stage == s).Select(t => new TraceSpan(
                $"{t.Pass} {t.MicroBatch}", t.Pass == Pass.Forward ? TraceCategory.Forward : TraceCategory.Backward, t.Start, t.End - t.Start));
            Assert.That(ChromeTrace.MeasuredBubble(spans, 0, end), Is.EqualTo(PipelineTiming.BubbleFraction(4, 8)).Within(1e-12), $"stage {s}");
        }
    }
}
