using System.Xml.Linq;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Tests.Scaling;

[TestFixture]
public sealed class SvgBarChartTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    [Test]
    public void OneSegmentPerSeriesAndCategoryStackedFromZero()
    {
        var chart = new SvgBarChart("Time per step <strong>", "ranks", "ms", ["1", "2", "4"])
            .Add("compute", [10, 6, 4])
            .Add("communication", [0, 2, double.NaN])
            .Add("other", [1, 1, -3]);
        var document = XDocument.Parse(chart.ToSvg());
        var segments = document.Descendants(Svg + "rect").Where(r => r.Element(Svg + "title") is not null).ToList();
        Assert.That(segments, Has.Count.EqualTo(9));
        Assert.That(segments.Select(s => s.Element(Svg + "title")!.Value), Does.Contain("2: communication 2"));
        Assert.That(segments.Select(s => double.Parse((string)s.Attribute("height")!, System.Globalization.CultureInfo.InvariantCulture)),
            Is.All.GreaterThanOrEqualTo(0), "NaN and negative values are drawn as zero");
        // The first bar's segments touch: compute's top is communication's bottom (a zero-height segment) and other's bottom.
        double Y(XElement r) => double.Parse((string)r.Attribute("y")!, System.Globalization.CultureInfo.InvariantCulture);
        double H(XElement r) => double.Parse((string)r.Attribute("height")!, System.Globalization.CultureInfo.InvariantCulture);
        var bar1 = segments.Where(s => s.Element(Svg + "title")!.Value.StartsWith("1:", StringComparison.Ordinal)).ToList();
        Assert.That(Y(bar1[2]) + H(bar1[2]), Is.EqualTo(Y(bar1[0])).Within(0.02));
        Assert.That(document.Descendants(Svg + "text").Select(t => t.Value), Does.Contain("Time per step <strong>").And.Contain("other"));
        Assert.Throws<ArgumentException>(() => chart.Add("bad", [1, 2]));
    }
}
