using MpiPipeline.Layerwise;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.Tests.Layerwise;

/// <summary>
/// The layer-wise engine's geometry and its transfers' costs against hand-computed values: which block each rank holds
/// and needs, the collective each transition is and the bytes it moves per rank, the refusals.
/// </summary>
[TestFixture]
internal sealed class TransferCostsTests
{
    private static readonly ActivationShape Flat64 = new(64, 1, 1, false);
    private static readonly ActivationShape Flat256 = new(256, 1, 1, false);
    private static readonly ActivationShape Image16x4 = new(16, 4, 4, true);
    private static readonly ActivationShape Image32x4 = new(32, 4, 4, true);

    private static PlannedLayer Layer(LayerSpec spec, ActivationShape input, ActivationShape output, string config) =>
        new(0, spec, input, output, LayerConfig.Parse(config));

    private static PlannedLayer Flatten(string config) => Layer(new("flatten"), Flat64, Flat64, config);

    private static PlannedLayer Linear(int inputs, int outputs, string config) =>
        Layer(new("linear", inputs, outputs), new(inputs, 1, 1, false), new(outputs, 1, 1, false), config);

    private static PlannedLayer Pool(string config) => Layer(new("maxpool2d", 2), new(16, 8, 8, true), Image16x4, config);

    private static PlannedLayer Conv(string config) => Layer(new("conv2d", 16, 32, 3, 1, 1), Image16x4, Image32x4, config);

    /// <summary>
    /// Hand-computed rows: the bytes the busiest rank sends forward (activations) and backward (their gradients).
    /// flatten n2 -> linear n1c2, batch 16: each rank's 8 x 64 floats to the other (Allgather), 2048 B.
    /// relu n1c2 -> linear 256-4 n2c1: rank p sends rank q its 128 features of q's 8 samples, 8 x 128 x 4 B = 4096 B.
    /// maxpool 16x4x4 n1c1h2 -> conv 3x3 pad 1 n1c1h2, batch 2: one halo row, 2 x 16 x 1 x 4 x 4 B = 512 B.
    /// maxpool n1c1h2 -> conv n1c1h1 (every row): each rank's 2 x 16 x 2 x 4 block to the other, 1024 B, an Allgather.
    /// maxpool n2c1h1 -> conv n1c1h2: rank p sends rank q its sample's rows of q and the halo row, 1 x 16 x 3 x 4 x 4 B = 768 B.
    /// </summary>
    public static IEnumerable<TestCaseData> Transitions()
    {
        yield return Row("allgather", Flatten("n2c1h1"), Linear(64, 256, "n1c2h1"), 16, 2, TransferKind.Allgather, 2048, 2048);
        yield return Row("none", Linear(64, 256, "n1c2h1"), Layer(new("relu"), Flat256, Flat256, "n1c2h1"), 16, 2, TransferKind.None, 0, 0);
        yield return Row("alltoall", Layer(new("relu"), Flat256, Flat256, "n1c2h1"), Linear(256, 4, "n2c1h1"), 16, 2, TransferKind.Alltoall, 4096, 4096);
        yield return Row("halo", Pool("n1c1h2"), Conv("n1c1h2"), 2, 2, TransferKind.Halo, 512, 512);
        yield return Row("height allgather", Pool("n1c1h2"), Conv("n1c1h1"), 2, 2, TransferKind.Allgather, 1024, 1024);
        yield return Row("samples to height", Pool("n2c1h1"), Conv("n1c1h2"), 2, 2, TransferKind.Alltoall, 768, 768);
        yield return Row("four-way halo", Pool("n1c1h4"), Conv("n1c1h4"), 2, 4, TransferKind.Halo, 2 * 512, 2 * 512);
    }

    private static TestCaseData Row(string name, PlannedLayer producer, PlannedLayer consumer, int batch, int ranks, TransferKind kind, long forward, long backward) =>
        new TestCaseData(producer, consumer, batch, ranks, kind, forward, backward).SetArgDisplayNames(name);

    [TestCaseSource(nameof(Transitions))]
    public void TransitionCostsTheHandComputedBytes(PlannedLayer producer, PlannedLayer consumer, int batch, int ranks, TransferKind kind, long forward, long backward) =>
        Assert.That(TransferCosts.Between(producer, consumer, batch, ranks), Is.EqualTo(new TransferCost(kind, forward, backward)));

    /// <summary>Logits of 4 classes split 4 ways along classes, batch 16: rank p sends each other rank 4 samples x 1 class.</summary>
    [Test]
    public void LossGathersTheClassesOfEachRanksSamples()
    {
        var cost = TransferCosts.ToLoss(Linear(128, 4, "n1c4h1"), 16, 4);
        Assert.That(cost, Is.EqualTo(new TransferCost(TransferKind.Alltoall, 3 * 4 * 4, 3 * 4 * 4)));
        Assert.That(TransferCosts.ToLoss(Linear(128, 4, "n4c1h1"), 16, 4).Kind, Is.EqualTo(TransferKind.None));
        Assert.That(cost.Collectives, Is.EqualTo(("Alltoall(v)", "Alltoall(v), added")));
    }

    /// <summary>A ring Allreduce over k = Sample x Height replicas sends 2 (k - 1) / k of the shard per rank.</summary>
    [TestCase("n4c1h1", 6000)]
    [TestCase("n2c1h2", 6000)]
    [TestCase("n2c2h1", 4000)]
    [TestCase("n1c4h1", 0)]
    public void SyncBytesAreARingAllreduceOverTheReplicas(string config, long bytes) =>
        Assert.That(TransferCosts.SyncBytesPerRank(1000, LayerConfig.Parse(config)), Is.EqualTo(bytes));

    [Test]
    public void RankOrderIsSampleThenChannelThenHeight()
    {
        var config = new LayerConfig(2, 3, 2);
        Assert.That(LayerGeometry.Coordinates(config, 0), Is.EqualTo((0, 0, 0)));
        Assert.That(LayerGeometry.Coordinates(config, 1), Is.EqualTo((0, 0, 1)));
        Assert.That(LayerGeometry.Coordinates(config, 5), Is.EqualTo((0, 2, 1)));
        Assert.That(LayerGeometry.Coordinates(config, 7), Is.EqualTo((1, 0, 1)));
    }

    /// <summary>A conv 3x3 (pad 1) on 8 rows split 4 ways: rank 1 computes rows [2, 4) from input rows [1, 5), dropping one row each side.</summary>
    [Test]
    public void HeightSplitConvNeedsAHaloCutAtTheEdges()
    {
        var conv = Layer(new("conv2d", 1, 16, 3, 1, 1), new(1, 8, 8, true), new(16, 8, 8, true), "n1c1h4");
        Assert.That(LayerGeometry.OutputBlock(conv, 6, 1), Is.EqualTo(new ActivationBlock(0, 6, 0, 16, 2, 4)));
        Assert.That(LayerGeometry.InputBlock(conv, 6, 1), Is.EqualTo(new ActivationBlock(0, 6, 0, 1, 1, 5)));
        Assert.That(LayerGeometry.StageRows(conv, 6, 1), Is.EqualTo((4, 1)));
        Assert.That(LayerGeometry.InputBlock(conv, 6, 0), Is.EqualTo(new ActivationBlock(0, 6, 0, 1, 0, 3)));
        Assert.That(LayerGeometry.StageRows(conv, 6, 0), Is.EqualTo((3, 0)));
        Assert.That(LayerGeometry.InputBlock(conv, 6, 3), Is.EqualTo(new ActivationBlock(0, 6, 0, 1, 5, 8)));
    }

    [Test]
    public void ChannelSplitShardsHoldTheirOutputs()
    {
        Assert.That(LayerGeometry.Shard(Linear(128, 128, "n1c4h1"), 2), Is.EqualTo(new LayerSpec("linear", 128, 32)));
        Assert.That(LayerGeometry.Shard(Layer(new("conv2d", 16, 32, 3, 1, 1), Image16x4, Image32x4, "n2c2h1"), 3),
            Is.EqualTo(new LayerSpec("conv2d", 16, 16, 3, 1, 1)));
        Assert.That(LayerGeometry.Shard(Linear(128, 128, "n4c1h1"), 2), Is.EqualTo(new LayerSpec("linear", 128, 128)));
        var flatten = Layer(new("flatten"), Image32x4, new(512, 1, 1, false), "n1c4h1");
        Assert.That(LayerGeometry.InputBlock(flatten, 2, 1), Is.EqualTo(new ActivationBlock(0, 2, 8, 16, 0, 4)));
        Assert.That(LayerGeometry.OutputBlock(flatten, 2, 1), Is.EqualTo(new ActivationBlock(0, 2, 128, 256, 0, 1)));
    }

    /// <summary>The model plan: a channel split where the layer takes one, else samples (10 classes do not split 4 ways).</summary>
    [Test]
    public void ModelPlanSplitsChannelsWhereItCan()
    {
        Assert.That(LayerGeometry.ModelParallel(Linear(256, 10, "n1c1h1"), 4, 16), Is.EqualTo(new LayerConfig(4, 1, 1)));
        Assert.That(LayerGeometry.ModelParallel(Linear(256, 10, "n1c1h1"), 2, 16), Is.EqualTo(new LayerConfig(1, 2, 1)));
        var flattenOneChannel = Layer(new("flatten"), new(1, 8, 8, true), Flat64, "n1c1h1");
        Assert.That(LayerGeometry.ModelParallel(flattenOneChannel, 2, 16), Is.EqualTo(new LayerConfig(2, 1, 1)));
    }

    [TestCase("n3c1h1", "does not divide the batch 16")]
    [TestCase("n1c3h1", "does not divide its 32 output channels")]
    [TestCase("n1c1h3", "does not divide its 4 output rows")]
    public void RefusesDegreesThatDoNotDivide(string config, string why) =>
        Assert.That(LayerGeometry.Refusal(Conv(config), 16), Does.Contain(why));

    [Test]
    public void RefusesSplitsTheEngineDoesNotRun()
    {
        Assert.That(LayerGeometry.Refusal(Linear(64, 64, "n1c1h2"), 16), Does.Contain("its output is flat"));
        Assert.That(LayerGeometry.Refusal(Layer(new("conv2d", 16, 32, 3, 2, 1), new(16, 8, 8, true), Image32x4, "n1c1h2"), 16), Does.Contain("stride 1"));
        Assert.That(LayerGeometry.Refusal(Layer(new("dropout"), Flat64, Flat64, "n1c2h1"), 16), Does.Contain("dropout takes no channel split"));
        Assert.That(LayerGeometry.Refusal(Layer(new("batchnorm"), Flat64, Flat64, "n2c1h1"), 16), Does.Contain("batch statistics"));
        Assert.That(LayerGeometry.Refusal(Layer(new("flatten"), new(3, 4, 4, true), new(48, 1, 1, false), "n1c2h1"), 16), Does.Contain("whole input channels"));
        Assert.That(LayerGeometry.Refusal(Conv("n2c2h1"), 16), Is.Null);
        var error = Assert.Throws<InputException>(() => LayerGeometry.Check([Conv("n1c1h1") with { Index = 3 }], 6, 4, "--plan p.json"));
        Assert.That(error!.Message, Does.Contain("R = 4 must divide it"));
        error = Assert.Throws<InputException>(() => LayerGeometry.Check([Conv("n1c3h1") with { Index = 3 }], 12, 3, "--plan p.json"));
        Assert.That(error!.Message, Is.EqualTo("--plan p.json: layer 3 (conv2d 16 32 3 1 1) is n1c3h1, which the layer-wise engine refuses: the channel degree 3 does not divide its 32 output channels"));
    }

    /// <summary>The up-front checks of the layer-wise options: --plan auto passes (rank 0 searches at start-up), a batch R does not divide does not.</summary>
    [Test]
    public void LayerwiseOptionsAreCheckedUpFront()
    {
        var options = new TrainOptions { Algorithm = "layerwise", Plan = "auto", Batch = 16 };
        Assert.That(() => options.Validate(2), Throws.Nothing);
        Assert.That(() => (options with { Plan = "model", Batch = 15 }).Validate(2), Throws.TypeOf<InputException>().With.Message.Contains("R = 2 must divide it"));
        Assert.That(() => (options with { Plan = null, Algorithm = "psgd" }).Validate(2), Throws.Nothing);
        Assert.That(() => (options with { Algorithm = "psgd", Plan = "data" }).Validate(2),
            Throws.TypeOf<InputException>().With.Message.Contains("--plan applies to --algo layerwise only"));
    }

    /// <summary>
    /// The bytes the engine's copies touch around an Allgather, batch 16 of 64 features over 2 sample ranks to every
    /// sample: per rank needed 16 x 64 x 4 = 4096 B written, 2048 B packed, its held 2048 B cleared and added into
    /// backward (2 x 2048), the 2048 B it received packed back: 12288 B; the cost model prices them at the copy rate on
    /// top of the network (FakeTimes: 1e-10 s/B): 2 (0.68 us + 2048 B / 6.77 GB/s) + 12288 x 1e-10 s.
    /// </summary>
    [Test]
    public void ATransfersLocalCopiesArePricedAtTheCopyRate()
    {
        ActivationBlock[] held = [new(0, 8, 0, 64, 0, 1), new(8, 16, 0, 64, 0, 1)];
        ActivationBlock[] needed = [new(0, 16, 0, 64, 0, 1), new(0, 16, 0, 64, 0, 1)];
        var transfer = TransferCosts.Traffic(held, needed, 1);
        Assert.That((transfer.Kind, transfer.Local, transfer.MaxLocalBytes), Is.EqualTo((TransferKind.Allgather, new long[] { 12288, 12288 }, 12288L)));
        Assert.That(TestCostModel.Of("cnn", 2).TransferSeconds(transfer), Is.EqualTo(3.1938221565731166e-06).Within(1e-15));
        Assert.That(TestCostModel.Of("cnn", 2).TransferSeconds(Transfer.None), Is.Zero);
    }

    /// <summary>
    /// Block copies against an element-by-element reference: whole samples (flat features: one run), whole channels of
    /// some samples, rows of an image (one run per channel), copied and added.
    /// </summary>
    [TestCase(0, 4, 0, 6, 0, 1, 1)]   // every sample and feature of a flat block
    [TestCase(1, 3, 2, 5, 0, 1, 1)]   // features 2..5 of samples 1..3
    [TestCase(0, 4, 0, 6, 0, 3, 2)]   // every row of an image block
    [TestCase(1, 2, 1, 4, 1, 2, 2)]   // one row of some channels
    public void ACopyMovesTheBoxesElementsAndAnAddAddsThem(int s0, int s1, int c0, int c1, int r0, int r1, int columns)
    {
        var rows = columns == 1 ? 1 : 3;
        var from = new ActivationBlock(0, 4, 0, 6, 0, rows);
        var to = new ActivationBlock(s0, s1, c0, c1, r0, r1) with { R0 = 0, R1 = rows };
        var box = new ActivationBlock(s0, s1, c0, c1, r0, r1);
        var source = Enumerable.Range(0, (int)from.Elements(columns)).Select(i => (float)i).ToArray();
        var target = Enumerable.Repeat(0.5f, (int)to.Elements(columns)).ToArray();
        var expected = (float[])target.Clone();
        for (var s = s0; s < s1; s++)
        {
            for (var c = c0; c < c1; c++)
            {
                for (var r = r0; r < r1; r++)
                {
                    for (var x = 0; x < columns; x++)
                    {
                        var i = ((((s - from.S0) * from.Channels) + (c - from.C0)) * from.Rows + (r - from.R0)) * columns + x;
                        var o = ((((s - to.S0) * to.Channels) + (c - to.C0)) * to.Rows + (r - to.R0)) * columns + x;
                        expected[o] = source[i];
                    }
                }
            }
        }

        var copied = (float[])target.Clone();
        ActivationBlock.Copy(source, from, copied, to, box, columns);
        Assert.That(copied, Is.EqualTo(expected));
        ActivationBlock.Copy(source, from, copied, to, box, columns, add: true);
        Assert.That(copied, Is.EqualTo(expected.Select((v, i) => v == target[i] ? v : 2 * v).ToArray()));
    }
}
