using System.Xml.Linq;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Tests.Telemetry;

[TestFixture]
public sealed class SvgPlotTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static SvgPlot LossPlot(bool logY) => new SvgPlot("Loss vs communication rounds <PSGD & friends>", "communication rounds", "training loss") { LogY = logY }
        .Add("psgd", Enumerable.Range(0, 200).Select(i => ((double)i, 2.3 * Math.Exp(-i / 50.0) + 0.2)))
        .Add("local-sgd tau=4", Enumerable.Range(0, 50).Select(i => (4.0 * i, 2.3 * Math.Exp(-i / 10.0) + 0.25)))
        .Add("ri-sgd q=2 tau=16", [(0, 2.3), (16, 0.9), (32, double.NaN), (48, 0.5)]);

    [TestCase(false)]
    [TestCase(true)]
    public void IsWellFormedSvgWithOnePolylinePerSeries(bool logY)
    {
        var document = XDocument.Parse(LossPlot(logY).ToSvg());

        Assert.That(document.Root!.Name, Is.EqualTo(Svg + "svg"));
        Assert.That(document.Descendants(Svg + "polyline").Count(), Is.EqualTo(3));
        var texts = document.Descendants(Svg + "text").Select(t => t.Value).ToList();
        Assert.That(texts, Does.Contain("Loss vs communication rounds <PSGD & friends>"), "escaped, and read back intact");
        Assert.That(texts, Does.Contain("communication rounds"));
        Assert.That(texts, Does.Contain("psgd").And.Contain("local-sgd tau=4").And.Contain("ri-sgd q=2 tau=16"), "legend");
        var colors = document.Descendants(Svg + "polyline").Select(p => (string)p.Attribute("stroke")!).ToList();
        Assert.That(colors, Is.Unique);
    }

    [Test]
    public void NonFinitePointsAreLeftOut()
    {
        var document = XDocument.Parse(LossPlot(false).ToSvg());
        var riSgd = document.Descendants(Svg + "polyline").Last();
        Assert.That(((string)riSgd.Attribute("points")!).Split(' '), Has.Length.EqualTo(3));
        Assert.That((string)riSgd.Attribute("points")!, Does.Not.Contain("NaN"));
    }

    [Test]
    public void LogAxisHasOneTwoFiveTicks()
    {
        var document = XDocument.Parse(LossPlot(true).ToSvg());
        var texts = document.Descendants(Svg + "text").Select(t => t.Value).ToList();
        Assert.That(texts, Does.Contain("0.2").And.Contain("0.5").And.Contain("1").And.Contain("2").And.Contain("5"));
        Assert.That(texts, Does.Contain("training loss (log scale)"));
    }

    [Test]
    public void EmptyPlotIsStillAValidFile()
    {
        var document = XDocument.Parse(new SvgPlot("nothing yet", "x", "y").ToSvg());
        Assert.That(document.Descendants(Svg + "polyline"), Is.Empty);
    }

    [Test]
    public void WritesAFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"mpipipe-plot-{Guid.NewGuid():N}.svg");
        try
        {
            LossPlot(false).Write(path);
            Assert.That(XDocument.Load(path).Descendants(Svg + "polyline").Count(), Is.EqualTo(3));
            Assert.That(File.ReadAllText(path), Does.StartWith("<?xml version=\"1.0\" encoding=\"utf-8\"?>"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestCase(0, 1, new double[] { 0, 0.2, 0.4, 0.6, 0.8, 1 })]
    [TestCase(0.21, 2.3, new double[] { 0, 0.5, 1, 1.5, 2, 2.5 })]
    [TestCase(0, 937, new double[] { 0, 200, 400, 600, 800, 1000 })]
    [TestCase(-3, 7, new double[] { -4, -2, 0, 2, 4, 6, 8 })]
    [TestCase(0, 10, new double[] { 0, 2, 4, 6, 8, 10 })]
    public void LinearTicksAreRound(double min, double max, double[] expected)
    {
        var axis = AxisTicks.Linear(min, max);
        Assert.That(axis.Ticks, Is.EqualTo(expected).Within(1e-12));
        Assert.That(axis.Min, Is.LessThanOrEqualTo(min));
        Assert.That(axis.Max, Is.GreaterThanOrEqualTo(max));
    }

    [Test]
    public void LinearLabelsHaveTheDecimalsTheStepNeeds()
    {
        Assert.That(AxisTicks.Linear(0, 1).Labels, Is.EqualTo(new[] { "0.0", "0.2", "0.4", "0.6", "0.8", "1.0" }));
        Assert.That(AxisTicks.Linear(0, 0.05, 3).Labels, Is.EqualTo(new[] { "0.000", "0.025", "0.050" }));
        Assert.That(AxisTicks.Linear(0, 2_500_000).Labels, Is.EqualTo(new[] { "0.0M", "0.5M", "1.0M", "1.5M", "2.0M", "2.5M" }));
        Assert.That(AxisTicks.Linear(-1, 1).Labels, Does.Contain("0.0").And.Not.Contain("-0.0"));
    }

    [Test]
    public void DegenerateRangesStillGiveAnAxis()
    {
        Assert.That(AxisTicks.Linear(5, 5).Ticks, Has.Count.GreaterThan(1));
        Assert.That(AxisTicks.Linear(0, 0).Ticks, Has.Count.GreaterThan(1));
        Assert.That(AxisTicks.Log10(3, 3).Ticks, Has.Count.GreaterThan(1));
    }

    [Test]
    public void LogTicks()
    {
        Assert.That(AxisTicks.Log10(0.25, 2.3).Ticks, Is.EqualTo(new[] { 0.2, 0.5, 1, 2, 5 }).Within(1e-12));
        Assert.That(AxisTicks.Log10(1e-9, 1).Ticks, Is.EqualTo(new[] { 1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1 }).Within(1e-20));
    }
}
