using System.Globalization;
using MpiPipeline.Scaling;

namespace MpiPipeline.Tests.Scaling;

/// <summary>The two CSV files: exact headers (the schema scripts read), one cell per column, invariant numbers.</summary>
[TestFixture]
public sealed class ScalingCsvTests
{
    internal static ScalingRun Run(ScalingMode mode, int ranks, int repetition, int globalBatch, double stepSeconds,
        double compute = 0.01, double communication = 0.002, double other = 0.001, bool oversubscribed = false) =>
        new(mode, ranks, repetition, globalBatch, Steps: 20, TimedSteps: 17, StepSeconds: stepSeconds, ComputeSeconds: compute,
            CommunicationSeconds: ranks > 1 ? communication : 0, OtherSeconds: other, CommunicationRounds: ranks > 1 ? 20 : 0,
            PayloadBytes: ranks > 1 ? 814120 : 0, ThreadsPerRank: 1, Oversubscribed: oversubscribed);

    private static readonly ScalingRun[] Runs =
    [
        Run(ScalingMode.Strong, 1, 1, 256, 0.0166),
        Run(ScalingMode.Strong, 2, 1, 256, 0.0091, compute: 1.0 / 3),
        Run(ScalingMode.Weak, 4, 2, 128, 0.0123, oversubscribed: true),
    ];

    [Test]
    public void RunsHeaderIsTheDocumentedSchema()
    {
        var header = ScalingCsv.FormatRuns([]).TrimEnd('\n');
        Assert.That(header, Is.EqualTo(
            "mode,ranks,repetition,global_batch,per_rank_batch,steps,timed_steps,step_s,compute_s,communication_s,other_s," +
            "communication_rounds,payload_bytes,threads_per_rank,oversubscribed,throughput_samples_per_s,communication_share,network"));
    }

    [Test]
    public void PointsHeaderIsTheDocumentedSchema()
    {
        var header = ScalingCsv.FormatPoints([]).TrimEnd('\n');
        Assert.That(header, Is.EqualTo(
            "mode,ranks,global_batch,per_rank_batch,repetitions,throughput_median,throughput_min,throughput_max,spread_percent," +
            "step_s_median,compute_s_median,communication_s_median,other_s_median,communication_share,speedup,ideal_speedup," +
            "efficiency,oversubscribed,network"));
    }

    [Test]
    public void EveryRowHasOneCellPerColumnAndInvariantNumbers()
    {
        // (The projects run with InvariantGlobalization, and the writer formats with the invariant culture anyway.)
        var runLines = ScalingCsv.FormatRuns(Runs).TrimEnd('\n').Split('\n');
        var pointLines = ScalingCsv.FormatPoints(ScalingPoint.Summarize(Runs)).TrimEnd('\n').Split('\n');
        Assert.That(runLines, Has.Length.EqualTo(1 + Runs.Length));
        Assert.That(runLines.Skip(1).Select(l => l.Split(',').Length), Is.All.EqualTo(ScalingCsv.RunColumns.Count));
        Assert.That(pointLines, Has.Length.EqualTo(1 + 3));
        Assert.That(pointLines.Skip(1).Select(l => l.Split(',').Length), Is.All.EqualTo(ScalingCsv.PointColumns.Count));
        var first = runLines[1].Split(',');
        Assert.That(first[0], Is.EqualTo("strong"));
        Assert.That(first[4], Is.EqualTo("256"), "per_rank_batch = global / ranks");
        Assert.That(double.Parse(first[15], CultureInfo.InvariantCulture), Is.EqualTo(256 / 0.0166).Within(1e-9), "throughput = global batch / step");
        Assert.That(runLines[3].Split(',')[14], Is.EqualTo("true"));
        Assert.That(runLines.Skip(1).Select(l => l.Split(',')[^1]), Is.All.EqualTo("native"), "no emulation: the MPI's own transports");
        Assert.That(ScalingCsv.FormatPoints(ScalingPoint.Summarize(Runs), "emulated:1gbit").TrimEnd('\n').Split('\n').Skip(1).Select(l => l.Split(',')[^1]),
            Is.All.EqualTo("emulated:1gbit"));
    }
}
