using MpiPipeline.Layerwise;

namespace MpiPipeline.Tests.Layerwise;

/// <summary>The configuration text form and the plan file: literal round trips and the refusals.</summary>
[TestFixture]
internal sealed class LayerwisePlanTests
{
    [TestCase("n4c1h1", 4, 1, 1)]
    [TestCase("N2C2H1", 2, 2, 1)]
    [TestCase(" n1c1h12 ", 1, 1, 12)]
    public void ParsesConfigurations(string text, int sample, int channel, int height)
    {
        var config = LayerConfig.Parse(text);
        Assert.That(config, Is.EqualTo(new LayerConfig(sample, channel, height)));
        Assert.That(config.Ranks, Is.EqualTo(sample * channel * height));
        Assert.That(LayerConfig.Parse(config.ToString()), Is.EqualTo(config));
    }

    [TestCase("")]
    [TestCase("n4c1")]
    [TestCase("n0c1h1")]
    [TestCase("c1n4h1")]
    [TestCase("n4c1h1x")]
    [TestCase("n-1c1h1")]
    [TestCase("n99999999999c1h1")]
    public void RefusesOtherText(string text) =>
        Assert.That(() => LayerConfig.Parse(text), Throws.TypeOf<InputException>().With.Message.Contains("nScHh"));

    [Test]
    public void PlanFileRoundTrips()
    {
        var plan = new LayerwisePlan("cnn-wide", 4, [LayerConfig.DataParallel(4), new LayerConfig(2, 2, 1), LayerConfig.ModelParallel(4)], 0.25);
        var read = LayerwisePlan.FromJson(plan.ToJson(), "plan.json");
        Assert.That(read.Model, Is.EqualTo("cnn-wide"));
        Assert.That(read.Ranks, Is.EqualTo(4));
        Assert.That(read.Layers, Is.EqualTo(plan.Layers));
        Assert.That(read.PredictedStepSeconds, Is.EqualTo(0.25));
        Assert.That(plan.ToJson(), Does.Contain("\"n2c2h1\""));
    }

    [TestCase("{", "not a layer-wise plan")]
    [TestCase("{\"model\":\"cnn\",\"ranks\":2,\"layers\":[]}", "non-empty")]
    [TestCase("{\"model\":\"cnn\",\"ranks\":0,\"layers\":[\"n1c1h1\"]}", "at least 1")]
    [TestCase("{\"model\":\"cnn\",\"ranks\":4,\"layers\":[\"n4c1h1\",\"n2c1h1\"]}", "layer 1 is n2c1h1, which uses 2 ranks")]
    [TestCase("{\"model\":\"cnn\",\"ranks\":4,\"layers\":[\"4\"]}", "layer 0: '4' is not")]
    public void RefusesBadPlans(string json, string message) =>
        Assert.That(() => LayerwisePlan.FromJson(json, "p.json"),
            Throws.TypeOf<InputException>().With.Message.StartsWith("p.json: ").And.Message.Contains(message));
}
