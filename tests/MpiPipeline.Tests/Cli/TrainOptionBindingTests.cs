using System.CommandLine;
using MpiPipeline.Cli.Verbs;
using MpiPipeline.Pipeline;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Cli;

/// <summary>
/// Every `train` flag reaches its own <see cref="TrainOptions"/> field and nothing else: each case gives one flag and
/// compares the whole record (value equality) with the defaults changed in that one field, so a swapped, dropped or
/// mis-defaulted option fails here.
/// </summary>
[TestFixture]
internal sealed class TrainOptionBindingTests
{
    private static TrainOptions Read(params string[] args)
    {
        var set = new TrainOptionSet(includeAlgorithm: true);
        var command = new Command("train");
        set.AddTo(command);
        var parse = command.Parse(args);
        Assert.That(parse.Errors, Is.Empty, string.Join("\n", parse.Errors.Select(e => e.Message)));
        return set.Read(parse);
    }

    private static readonly TrainOptions Defaults = new();

    public static IEnumerable<TestCaseData> Flags()
    {
        TestCaseData Case(TrainOptions expected, params string[] args) => new TestCaseData(args, expected).SetArgDisplayNames(args[0]);
        yield return Case(Defaults with { Algorithm = "local-sgd" }, "--algo", "local-sgd");
        yield return Case(Defaults with { Model = "mlp" }, "--model", "mlp");
        yield return Case(Defaults with { Epochs = 7 }, "--epochs", "7");
        yield return Case(Defaults with { Batch = 96 }, "--batch", "96");
        yield return Case(Defaults with { LearningRate = 0.125 }, "--lr", "0.125");
        yield return Case(Defaults with { Optimizer = OptimizerKind.Adam }, "--optimizer", "adam");
        yield return Case(Defaults with { Momentum = 0.5 }, "--momentum", "0.5");
        yield return Case(Defaults with { Nesterov = true }, "--nesterov");
        yield return Case(Defaults with { WeightDecay = 0.001 }, "--weight-decay", "0.001");
        yield return Case(Defaults with { Tau = 8 }, "--tau", "8");
        yield return Case(Defaults with { Redundancy = 3 }, "--redundancy", "3");
        yield return Case(Defaults with { Split = DataSplit.Chunks }, "--split", "chunks");
        yield return Case(Defaults with { FailRank = 2 }, "--fail-rank", "2");
        yield return Case(Defaults with { FailStep = 11 }, "--fail-step", "11");
        yield return Case(Defaults with { Seed = 42 }, "--seed", "42");
        yield return Case(Defaults with { Threads = 3 }, "--threads", "3");
        yield return Case(Defaults with { Device = "cuda:1" }, "--device", "cuda:1");
        yield return Case(Defaults with { DataDirectory = "/data/fm" }, "--data", "/data/fm");
        yield return Case(Defaults with { TrainSamples = 1000 }, "--train-samples", "1000");
        yield return Case(Defaults with { TestSamples = 200 }, "--test-samples", "200");
        yield return Case(Defaults with { MaxSteps = 33 }, "--max-steps", "33");
        yield return Case(Defaults with { CurveEvery = 5 }, "--curve-every", "5");
        yield return Case(Defaults with { Exchange = "allreduce" }, "--exchange", "allreduce");
        yield return Case(Defaults with { Stages = 3 }, "--stages", "3");
        yield return Case(Defaults with { Stages = 3 }, "--pipeline", "3");
        yield return Case(Defaults with { Replicas = 2 }, "--data-parallel", "2");
        yield return Case(Defaults with { Replicas = 2 }, "--replicas", "2");
        yield return Case(Defaults with { MicroBatches = 8 }, "--micro-batches", "8");
        yield return Case(Defaults with { Schedule = ScheduleKind.GPipe }, "--schedule", "gpipe");
        yield return Case(Defaults with { Balance = "3,2,2" }, "--balance", "3,2,2");
        yield return Case(Defaults with { PartitionBy = PartitionCost.Parameters }, "--partition", "parameters");
        yield return Case(Defaults with { TracePath = "t.json" }, "--trace", "t.json");
    }

    [TestCaseSource(nameof(Flags))]
    public void EachFlagSetsItsOwnField(string[] args, TrainOptions expected) => Assert.That(Read(args), Is.EqualTo(expected));

    [Test]
    public void NoFlagsGiveTheRecordsDefaults() => Assert.That(Read(), Is.EqualTo(Defaults));

    [Test]
    public void EveryFlagOfTheCommandIsCovered()
    {
        var command = new Command("train");
        new TrainOptionSet(includeAlgorithm: true).AddTo(command);
        var covered = Flags().SelectMany(c => ((string[])c.Arguments[0]!).Where(a => a.StartsWith("--", StringComparison.Ordinal))).ToHashSet();
        var flags = command.Options.SelectMany(o => o.Aliases.Append(o.Name)).Where(a => a.StartsWith("--", StringComparison.Ordinal));
        Assert.That(flags.Where(f => !covered.Contains(f)), Is.Empty, "a train flag without a binding case");
    }
}
