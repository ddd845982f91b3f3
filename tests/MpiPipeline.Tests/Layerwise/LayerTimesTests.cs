using MpiPipeline.Cli.Verbs;
using MpiPipeline.Layerwise;
using MpiPipeline.Scaling;
using MpiPipeline.Torch;

namespace MpiPipeline.Tests.Layerwise;

/// <summary>Layer times: the shard each configuration computes, the measurement through the bridge, the cache file; and `mpipipe plan` end to end.</summary>
[TestFixture]
internal sealed class LayerTimesTests
{
    private string folder = "";

    [SetUp]
    public void CreateFolder() => folder = Directory.CreateTempSubdirectory("lwplan-").FullName;

    [TearDown]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    [TestCase(0, "n2c2h1", "conv2d 1 8 3 1 1", "1x28x28", 64)] // a conv needs every input channel
    [TestCase(0, "n1c1h4", "conv2d 1 16 3 1 1", "1x9x28", 128)] // the engine's stage: 7 own rows and a halo row each side
    [TestCase(2, "n1c2h2", "maxpool2d 2", "8x14x28", 128)] // a pool takes its own channels and rows
    [TestCase(7, "n1c4h1", "linear 1568 32", "1568", 128)]
    [TestCase(6, "n2c2h1", "flatten", "16x7x7", 64)]
    public void AShardIsTheLayersPartOfTheWork(int layer, string config, string spec, string input, int batch)
    {
        var shard = ComputeShard.Of(LayerNode.Of("cnn", FashionMnistGeometry)[layer], LayerConfig.Parse(config), 128);
        Assert.That((shard.Layer.ToString(), SampleGeometry.Format(shard.InputShape), shard.Batch), Is.EqualTo((spec, input, batch)));
    }

    /// <summary>A height-split conv's crop: its stage's output (9 rows x 16 channels x 28 columns x 128 samples x 4 B)
    /// copied forward, cleared and copied backward; nothing to crop for a pool or an unsplit conv.</summary>
    [Test]
    public void AHeightSplitConvCropsItsStageOutput()
    {
        var cnn = LayerNode.Of("cnn", FashionMnistGeometry);
        Assert.That(ComputeShard.Of(cnn[0], LayerConfig.Parse("n1c1h4"), 128).CropBytes, Is.EqualTo(3L * 9 * 16 * 28 * 128 * 4));
        Assert.That(ComputeShard.Of(cnn[2], LayerConfig.Parse("n1c1h2"), 128).CropBytes, Is.Zero);
        Assert.That(ComputeShard.Of(cnn[0], LayerConfig.Parse("n2c1h1"), 128).CropBytes, Is.Zero);
        var model = TestCostModel.Of("cnn", 4);
        var times = new TestCostModel.FakeTimes();
        var shard = ComputeShard.Of(cnn[0], LayerConfig.Parse("n1c1h4"), 128);
        Assert.That(model.Compute(0, LayerConfig.Parse("n1c1h4")),
            Is.EqualTo(times.Seconds(shard.Layer, shard.InputShape, shard.Batch, inputGradient: false) + (shard.CropBytes * 1e-10)).Within(1e-15));
    }

    [Test]
    public void EachShardIsMeasuredOnceAndThenReadFromTheCacheFile()
    {
        var path = Path.Combine(folder, "times.json");
        var calls = 0;
        double[] Fake(IReadOnlyList<ComputeShard> chain) => [.. chain.Select(_ => ++calls * 1e-3)];
        var times = new MeasuredLayerTimes(path, "threads 1|test", Fake);
        Assert.That(times.Seconds(new LayerSpec("linear", 8, 4), [8], 16), Is.EqualTo(1e-3));
        Assert.That(times.Seconds(new LayerSpec("linear", 8, 4), [8], 16), Is.EqualTo(1e-3), "the same shard again: no second measurement");
        Assert.That(times.Seconds(new LayerSpec("linear", 8, 4), [8], 8), Is.EqualTo(2e-3), "another batch is another shard");
        times.Save();
        Assert.That(File.ReadAllText(path), Does.Contain("linear 8 4|in 8|batch 16|threads 1|test"));

        var again = new MeasuredLayerTimes(path, "threads 1|test", Fake);
        Assert.That(again.Seconds(new LayerSpec("linear", 8, 4), [8], 8), Is.EqualTo(2e-3));
        Assert.That((calls, again.Measured), Is.EqualTo((2, 0)));
        var otherThreads = new MeasuredLayerTimes(path, "threads 2|test", Fake);
        Assert.That(otherThreads.Seconds(new LayerSpec("linear", 8, 4), [8], 8), Is.EqualTo(3e-3), "another environment measures again");
    }

    /// <summary>A chain is measured when it has a shard the cache lacks, all its shards together; a shard already
    /// known keeps its time, and a shard asked for alone is a chain of one.</summary>
    [Test]
    public void ChainsAreMeasuredWholeAndOnlyForTheShardsTheCacheLacks()
    {
        var path = Path.Combine(folder, "times.json");
        var chains = new List<int>();
        var calls = 0;
        double[] Fake(IReadOnlyList<ComputeShard> chain)
        {
            chains.Add(chain.Count);
            return [.. chain.Select(_ => ++calls * 1e-3)];
        }

        var times = new MeasuredLayerTimes(path, "threads 1|test", Fake);
        ComputeShard Linear(int outputs, int batch) => new(new LayerSpec("linear", 8, outputs), [8], batch);
        times.Prepare([[Linear(4, 16), Linear(2, 16)], [Linear(4, 16), Linear(4, 8)], [Linear(4, 16), Linear(2, 16)]]);
        Assert.That(chains, Is.EqualTo(new[] { 2, 2 }), "the third chain's shards are all known");
        Assert.That(times.Measured, Is.EqualTo(3));
        Assert.That(times.Seconds(new LayerSpec("linear", 8, 4), [8], 16), Is.EqualTo(1e-3), "its first chain's time, not the second's (3 ms)");
        Assert.That((times.Seconds(new LayerSpec("linear", 8, 2), [8], 16), times.Seconds(new LayerSpec("linear", 8, 4), [8], 8)), Is.EqualTo((2e-3, 4e-3)));
        Assert.That(times.Seconds(new LayerSpec("linear", 8, 1), [8], 8), Is.EqualTo(5e-3));
        Assert.That(chains, Is.EqualTo(new[] { 2, 2, 1 }));
    }

    /// <summary>One chain per configuration any layer of the cnn takes over 2 ranks; a layer without it falls back to
    /// data parallel; every (layer, configuration) is measured in some chain.</summary>
    [Test]
    public void TheMeasurementChainsCoverEveryLayersConfigurations()
    {
        var model = TestCostModel.Of("cnn", 2);
        var chains = LayerwiseCostModel.MeasurementChains(model.Configs, 2);
        Assert.That(chains.Select(chain => string.Join(" ", chain)), Is.EqualTo(new[]
        {
            "n2c1h1 n2c1h1 n2c1h1 n2c1h1 n2c1h1 n2c1h1 n2c1h1 n2c1h1 n2c1h1 n2c1h1",
            "n1c2h1 n1c2h1 n1c2h1 n1c2h1 n1c2h1 n1c2h1 n1c2h1 n1c2h1 n1c2h1 n1c2h1",
            "n1c1h2 n1c1h2 n1c1h2 n1c1h2 n1c1h2 n2c1h1 n2c1h1 n2c1h1 n2c1h1 n2c1h1",   // 7 pooled rows do not split 2 ways
        }));
        for (var l = 0; l < model.Configs.Count; l++)
        {
            Assert.That(model.Configs[l], Is.SubsetOf(chains.Select(chain => chain[l])), $"layer {l}");
        }
    }

    /// <summary>The real measurement of a two-layer chain: a time per shard, each plausible; and a chain of one.</summary>
    [Test]
    public void AChainRunsEveryShardThroughTheBridge()
    {
        var seconds = MeasuredLayerTimes.MeasureChain(
            [new ComputeShard(new LayerSpec("conv2d", 2, 4, 3, 1, 1), [2, 6, 6], 4, InputGradient: false), new ComputeShard(new LayerSpec("relu"), [4, 6, 6], 4)]);
        Assert.That(seconds, Has.Length.EqualTo(2).And.All.GreaterThan(0).And.All.LessThan(1));
    }

    /// <summary>The chain a load process is given, written and read back: the same shards, threads first, an empty line last.</summary>
    [Test]
    public void TheLoadProcessReadsTheChainItIsGiven()
    {
        ComputeShard[] chain = [new(new LayerSpec("conv2d", 1, 16, 3, 1, 1), [1, 28, 28], 64, InputGradient: false), new(new LayerSpec("relu"), [16, 28, 28], 64)];
        var text = ChainLoad.Format(chain, 1);
        Assert.That(text, Is.EqualTo("threads 1\nconv2d 1 16 3 1 1|1x28x28|64|0\nrelu|16x28x28|64|1\n\n"));
        var (threads, read) = ChainLoad.Parse(new StringReader(text + "ignored after the empty line\n"));
        Assert.That((threads, read.Select(s => s.Key)), Is.EqualTo((1, chain.Select(s => s.Key))));
        Assert.That(() => ChainLoad.Parse(new StringReader("conv2d 1 16 3 1 1|1x28x28|64|0\n")), Throws.TypeOf<InputException>().With.Message.Contains("threads N"));
        Assert.That(() => ChainLoad.Parse(new StringReader("threads 1\nrelu|16x28\n")), Throws.TypeOf<InputException>().With.Message.Contains("'relu|16x28'"));
    }

    /// <summary>A load process whose chain libtorch refuses fails the measurement with libtorch's one line, not a hang or a trace.</summary>
    [Test]
    public void ALoadThatCannotStepIsOneClearMessage()
    {
        Assert.That(() => ChainLoad.Start([new ComputeShard(new LayerSpec("linear", 8, 4), [7], 2)], copies: 1, torchThreads: 1).Dispose(),
            Throws.TypeOf<InputException>().With.Message.Contains(ChainLoad.Verb).And.Message.Contains("did not start stepping").And.Message.Not.Contains("   at "));
    }

    /// <summary>A transfer's copies are timed once per pair of layouts and cached; a layer that takes its input as it
    /// is has none; the real timing runs the engine's own copies.</summary>
    [Test]
    public void TransferCopiesAreTimedOncePerPairOfLayouts()
    {
        var path = Path.Combine(folder, "times.json");
        var calls = 0;
        var times = new MeasuredLayerTimes(path, "threads 1|test", measureTransfer: _ => ++calls * 1e-4);
        var cnn = LayerNode.Of("cnn", FashionMnistGeometry);
        var gather = Redistribution.Between(LayerConfig.Parse("n1c2h1"), cnn[3], LayerConfig.Parse("n1c2h1"), 128);
        Assert.That((times.TransferCopySeconds(Transfer.None), calls), Is.EqualTo((0.0, 0)));
        Assert.That((times.TransferCopySeconds(gather), times.TransferCopySeconds(gather), calls), Is.EqualTo((1e-4, 1e-4, 1)));
        times.Save();
        Assert.That(File.ReadAllText(path), Does.Contain("transfer copies|0:128,0:8,0:14 0:128,8:16,0:14 to 0:128,0:16,0:14 0:128,0:16,0:14 x 14|threads 1|test"));
        Assert.That(MeasuredLayerTimes.MeasureTransferCopies(gather, concurrent: 2), Is.GreaterThan(0).And.LessThan(0.1));
    }

    /// <summary>The copies without MPI: forward writes the rank's own piece where the needed block holds it; backward
    /// clears the held gradient before adding into it, so two calls leave the same values.</summary>
    [Test]
    public void CopiesOnlyWriteTheOwnPieceAndClearTheHeldGradient()
    {
        ActivationBlock[] held = [new(0, 2, 0, 1, 0, 1), new(2, 4, 0, 1, 0, 1)];
        ActivationBlock[] needed = [new(0, 4, 0, 1, 0, 1), new(0, 4, 0, 1, 0, 1)];
        var transfer = new BlockTransfer(held, needed, rank: 0, columns: 3);
        float[] heldValues = [1, 2, 3, 4, 5, 6];
        var neededValues = new float[12];
        var neededGradient = Enumerable.Range(10, 12).Select(v => (float)v).ToArray();
        var heldGradient = new float[6];
        transfer.CopiesOnly(heldValues, neededValues, neededGradient, heldGradient);
        Assert.That(neededValues[..6], Is.EqualTo(heldValues));
        var once = heldGradient.ToArray();
        transfer.CopiesOnly(heldValues, neededValues, neededGradient, heldGradient);
        Assert.That(heldGradient, Is.EqualTo(once));
        Assert.That(transfer.Elements, Is.EqualTo((6L, 12L)));
    }

    [Test]
    public void AMeasurementRunsTheLayerThroughTheBridge()
    {
        var seconds = MeasuredLayerTimes.MeasureChain([new ComputeShard(new LayerSpec("conv2d", 2, 4, 3, 1, 1), [2, 6, 6], 4)])[0];
        Assert.That(seconds, Is.GreaterThan(0).And.LessThan(1));
        Assert.That(() => MeasuredLayerTimes.MeasureChain([new ComputeShard(new LayerSpec("linear", 8, 4), [7], 2)]), Throws.InstanceOf<TorchException>());
        Assert.That(MeasuredLayerTimes.Environment(1), Does.StartWith("threads 1|concurrent 1|bridge ").And.Contain("|libtorch "));
    }

    /// <summary>The copy rate is one more cached entry; the first layer's shard (no input gradient) is another shard.</summary>
    [Test]
    public void TheCopyRateAndTheFirstLayersShardAreCachedEntriesOfTheirOwn()
    {
        var path = Path.Combine(folder, "times.json");
        var (calls, copies) = (0, 0);
        double[] Fake(IReadOnlyList<ComputeShard> chain) => [.. chain.Select(shard => ++calls * (shard.InputGradient ? 1e-3 : 1e-4))];
        var times = new MeasuredLayerTimes(path, "threads 1|test", Fake, measureCopy: () => ++copies * 1e-10);
        Assert.That((times.CopySecondsPerByte, times.CopySecondsPerByte, copies), Is.EqualTo((1e-10, 1e-10, 1)));
        Assert.That(times.Seconds(new LayerSpec("linear", 8, 4), [8], 16, inputGradient: false), Is.EqualTo(1e-4));
        Assert.That(times.Seconds(new LayerSpec("linear", 8, 4), [8], 16), Is.EqualTo(2e-3));
        times.Save();
        Assert.That(File.ReadAllText(path), Does.Contain("block copy, cold, seconds per byte|threads 1|test").And.Contain("linear 8 4|in 8|batch 16|no input gradient|threads 1|test"));
        Assert.That(new MeasuredLayerTimes(path, "threads 1|test", Fake, measureCopy: () => ++copies).CopySecondsPerByte, Is.EqualTo(1e-10));
        var layer0 = ComputeShard.Of(LayerNode.Of("cnn", FashionMnistGeometry)[0], LayerConfig.Parse("n2c1h1"), 128);
        var layer3 = ComputeShard.Of(LayerNode.Of("cnn", FashionMnistGeometry)[3], LayerConfig.Parse("n2c1h1"), 128);
        Assert.That((layer0.InputGradient, layer3.InputGradient), Is.EqualTo((false, true)));
    }

    /// <summary>Two copies stepping at once (the ranks of one machine: the other in a load process), the first layer without its input gradient, the copy rate: real, positive, plausible.</summary>
    [Test]
    public void ConcurrentMeasurementsAndTheCopyRateRunThroughTheBridge()
    {
        var seconds = MeasuredLayerTimes.MeasureChain([new ComputeShard(new LayerSpec("conv2d", 2, 4, 3, 1, 1), [2, 6, 6], 4, InputGradient: false)], concurrent: 2)[0];
        Assert.That(seconds, Is.GreaterThan(0).And.LessThan(1));
        Assert.That(MeasuredLayerTimes.MeasureCopy(2), Is.GreaterThan(1e-13).And.LessThan(1e-7), "seconds per byte: between 10 TB/s and 10 MB/s");
        Assert.That(MeasuredLayerTimes.Environment(1, 2), Does.Contain("|concurrent 2|").And.Contain("in a model's chain|mean"));
        Assert.That(MeasuredLayerTimes.Concurrent(ranks: 1, threads: 1), Is.EqualTo(1));
        Assert.That(MeasuredLayerTimes.Concurrent(ranks: 64, threads: 1), Is.EqualTo(Math.Max(1, Environment.ProcessorCount)));
    }

    [Test]
    public void ABrokenCacheFileIsOneClearMessage()
    {
        var path = Path.Combine(folder, "times.json");
        File.WriteAllText(path, "{ not json");
        Assert.That(() => new MeasuredLayerTimes(path, "x"), Throws.TypeOf<InputException>().With.Message.Contains(path).And.Message.Contains("delete it"));
    }

    /// <summary>The verb on the smallest model: the table, the three plans, the plan file (read back by the engine's reader).</summary>
    [Test]
    public void PlanPrintsTheSearchedDataAndModelParallelPlansAndWritesThePlanFile()
    {
        var planFile = Path.Combine(folder, "plan.json");
        var text = new StringWriter();
        var options = new PlanOptions
        {
            Model = "linear", Ranks = 2, Batch = 16, Network = EmulatedNetwork.Parse("1gbit"), ComputeCache = Path.Combine(folder, "t.json"),
            Explain = true, Output = planFile,
        };
        Assert.That(PlanVerb.Run(options, text), Is.Zero);
        var output = text.ToString();
        Assert.That(output, Does.Contain("| searched ").And.Contain("| data parallel ").And.Contain("| model parallel "));
        Assert.That(output, Does.Contain("emulated 1gbit").And.Contain("| linear 784 10 ").And.Contain("every configuration").And.Contain("flatten: features are channel-major"));
        var plan = LayerwisePlan.FromJson(File.ReadAllText(planFile), planFile);
        Assert.That((plan.Model, plan.Ranks, plan.Layers.Count), Is.EqualTo(("linear", 2, 2)));
        Assert.That(plan.PredictedStepSeconds, Is.GreaterThan(0));
        Assert.That(output, Does.Contain(string.Join(" | ", plan.Layers.Take(1).Select(c => c.ToString()))));
    }

    /// <summary>--write picks the pure plans: model parallel splits the linear layer, the 1-channel flatten stays data parallel.</summary>
    [TestCase(PlanStrategy.DataParallel, "n2c1h1 n2c1h1")]
    [TestCase(PlanStrategy.ModelParallel, "n2c1h1 n1c2h1")]
    public void WriteChoosesWhichPlanGoesToTheFile(PlanStrategy strategy, string layers)
    {
        var planFile = Path.Combine(folder, "plan.json");
        PlanVerb.Run(new PlanOptions { Model = "linear", Batch = 16, ComputeCache = Path.Combine(folder, "t.json"), Write = strategy, Output = planFile }, TextWriter.Null);
        Assert.That(string.Join(" ", LayerwisePlan.FromJson(File.ReadAllText(planFile), planFile).Layers), Is.EqualTo(layers));
    }

    [TestCase(0, 128, "--ranks 0")]
    [TestCase(2, 0, "--batch 0")]
    public void BadOptionsAreUsageErrors(int ranks, int batch, string message) =>
        Assert.That(new PlanOptions { Ranks = ranks, Batch = batch }.Problems(), Has.Some.Contains(message));

    [Test]
    public void AnUnknownModelIsOneClearMessage() =>
        Assert.That(() => PlanVerb.Run(new PlanOptions { Model = "vgg", ComputeCache = Path.Combine(folder, "t.json") }, TextWriter.Null),
            Throws.TypeOf<InputException>().With.Message.Contains("unknown model 'vgg'"));
}
