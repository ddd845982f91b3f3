using System.Globalization;
using System.Xml.Linq;

using static MpiPipeline.Telemetry.SvgElements;

namespace MpiPipeline.Telemetry;

/// <summary>
/// A stacked bar chart as a standalone SVG file: one bar per category (e.g. a rank count), each made of the segments
/// of every series (e.g. compute, communication, other) stacked from zero, with a value axis of round ticks and a
/// legend. Negative and non-finite values are drawn as zero.
/// </summary>
internal sealed class SvgBarChart(string title, string xLabel, string yLabel, IReadOnlyList<string> categories)
{
    private readonly List<(string Name, IReadOnlyList<double> Values)> series = [];

    public IReadOnlyList<string> Categories { get; } = categories;
    public int Width { get; init; } = 760;
    public int Height { get; init; } = 460;

    public IReadOnlyList<(string Name, IReadOnlyList<double> Values)> Series => series;

    /// <summary>Adds a stack segment with one value per category.</summary>
    public SvgBarChart Add(string name, IReadOnlyList<double> values)
    {
        if (values.Count != Categories.Count)
        {
            throw new ArgumentException($"{Categories.Count} categories, {values.Count} values for '{name}'", nameof(values));
        }

        series.Add((name, values));
        return this;
    }

    public void Write(string path) => AtomicFile.WriteAllText(path, ToSvg());

    public string ToSvg() => ToText(ToXml());

    public XDocument ToXml()
    {
        static double Clean(double v) => double.IsFinite(v) && v > 0 ? v : 0;
        var totals = Categories.Select((_, c) => series.Sum(s => Clean(s.Values[c]))).ToList();
        var axis = AxisTicks.Linear(0, totals.Count > 0 ? Math.Max(totals.Max(), 1e-12) : 1);
        var longestName = series.Count > 0 ? series.Max(s => s.Name.Length) : 0;
        var left = 36 + CharacterWidth * axis.Labels.Max(l => l.Length);
        var right = series.Count > 0 ? 52 + CharacterWidth * longestName : 24;
        const double top = 44, bottom = 56;
        var plotWidth = Width - left - right;
        var plotHeight = Height - top - bottom;
        double ScreenY(double y) => top + plotHeight * (1 - (y - axis.Min) / (axis.Max - axis.Min));

        var root = Document(Width, Height, title);

        var grid = new XElement(Svg + "g", new XAttribute("stroke", "#e3e3e3"), new XAttribute("stroke-width", "1"));
        var labels = new XElement(Svg + "g", new XAttribute("fill", "#333"));
        for (var i = 0; i < axis.Ticks.Count; i++)
        {
            var y = ScreenY(axis.Ticks[i]);
            grid.Add(Line(left, y, left + plotWidth, y));
            labels.Add(Text(left - 8, y + 4, axis.Labels[i], "end"));
        }

        var bars = new XElement(Svg + "g", new XAttribute("stroke", "white"), new XAttribute("stroke-width", "0.5"));
        var slot = plotWidth / Math.Max(1, Categories.Count);
        var barWidth = slot * 0.6;
        for (var c = 0; c < Categories.Count; c++)
        {
            var x = left + slot * c + (slot - barWidth) / 2;
            var stacked = 0.0;
            for (var s = 0; s < series.Count; s++)
            {
                var value = Clean(series[s].Values[c]);
                var y0 = ScreenY(stacked);
                var y1 = ScreenY(stacked + value);
                stacked += value;
                bars.Add(new XElement(Svg + "rect",
                    new XAttribute("x", Number(x)), new XAttribute("y", Number(y1)),
                    new XAttribute("width", Number(barWidth)), new XAttribute("height", Number(Math.Max(0, y0 - y1))),
                    new XAttribute("fill", SvgPlot.Palette[s % SvgPlot.Palette.Count]),
                    new XElement(Svg + "title", $"{Categories[c]}: {series[s].Name} {value.ToString("G4", CultureInfo.InvariantCulture)}")));
            }

            labels.Add(Text(left + slot * c + slot / 2, top + plotHeight + 18, Categories[c], "middle"));
        }

        root.Add(grid, labels, bars);
        root.Add(FrameAndAxisTitles(left, top, plotWidth, plotHeight, Height, xLabel, yLabel));

        var legend = new XElement(Svg + "g");
        for (var s = 0; s < series.Count; s++)
        {
            var legendX = left + plotWidth + 14;
            var legendY = top + 10 + 20 * (series.Count - 1 - s); // top to bottom in stacking order, like the bars
            legend.Add(new XElement(Svg + "rect",
                new XAttribute("x", Number(legendX)), new XAttribute("y", Number(legendY - 6)),
                new XAttribute("width", "24"), new XAttribute("height", "12"),
                new XAttribute("fill", SvgPlot.Palette[s % SvgPlot.Palette.Count])));
            legend.Add(Text(legendX + 30, legendY + 4, series[s].Name, "start"));
        }

        root.Add(legend);
        return Finish(root);
    }
}
