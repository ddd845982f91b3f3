using System.Globalization;
using System.Xml.Linq;

using static MpiPipeline.Telemetry.SvgElements;

namespace MpiPipeline.Telemetry;

/// <summary>A named line of a plot.</summary>
internal sealed record PlotSeries(string Name, IReadOnlyList<(double X, double Y)> Points);

/// <summary>
/// A line plot written as a standalone SVG file that any browser shows: title, axis labels, round ticks with grid
/// lines, optionally a logarithmic y axis, one coloured polyline per series (with point markers when a series has
/// few points), and a legend to the right. Points with a non-finite coordinate - or y &lt;= 0 on a log axis - are
/// left out of the line.
/// </summary>
internal sealed class SvgPlot(string title, string xLabel, string yLabel)
{
    /// <summary>Tableau 10: distinct, colour-blind-aware; series past ten repeat them dashed.</summary>
    public static IReadOnlyList<string> Palette { get; } =
        ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

    private const int MarkerLimit = 40;

    private readonly List<PlotSeries> series = [];

    public string Title { get; } = title;
    public string XLabel { get; } = xLabel;
    public string YLabel { get; } = yLabel;
    public bool LogY { get; init; }
    public int Width { get; init; } = 760;
    public int Height { get; init; } = 460;

    public IReadOnlyList<PlotSeries> Series => series;

    public SvgPlot Add(string name, IEnumerable<(double X, double Y)> points)
    {
        series.Add(new PlotSeries(name, points.ToList()));
        return this;
    }

    public void Write(string path) => AtomicFile.WriteAllText(path, ToSvg());

    public string ToSvg() => ToText(ToXml());

    public XDocument ToXml()
    {
        var drawn = series.Select(s => s.Points.Where(IsDrawable).ToList()).ToList();
        var all = drawn.SelectMany(p => p).ToList();
        var xAxis = AxisTicks.Linear(all.Count > 0 ? all.Min(p => p.X) : 0, all.Count > 0 ? all.Max(p => p.X) : 1);
        var yAxis = LogY
            ? AxisTicks.Log10(all.Count > 0 ? all.Min(p => p.Y) : 1, all.Count > 0 ? all.Max(p => p.Y) : 10)
            : AxisTicks.Linear(all.Count > 0 ? all.Min(p => p.Y) : 0, all.Count > 0 ? all.Max(p => p.Y) : 1);

        var longestName = series.Count > 0 ? series.Max(s => s.Name.Length) : 0;
        var longestYLabel = yAxis.Labels.Max(l => l.Length);
        var left = 36 + CharacterWidth * longestYLabel;
        var right = series.Count > 0 ? 52 + CharacterWidth * longestName : 24;
        const double top = 44, bottom = 56;
        var plotWidth = Width - left - right;
        var plotHeight = Height - top - bottom;

        double ScreenX(double x) => left + (x - xAxis.Min) / (xAxis.Max - xAxis.Min) * plotWidth;
        double ScreenY(double y) => top + plotHeight * (1 - (yAxis.Log
            ? (Math.Log10(y) - Math.Log10(yAxis.Min)) / (Math.Log10(yAxis.Max) - Math.Log10(yAxis.Min))
            : (y - yAxis.Min) / (yAxis.Max - yAxis.Min)));

        var root = Document(Width, Height, Title);

        var grid = new XElement(Svg + "g", new XAttribute("stroke", "#e3e3e3"), new XAttribute("stroke-width", "1"));
        var labels = new XElement(Svg + "g", new XAttribute("fill", "#333"));
        for (var i = 0; i < xAxis.Ticks.Count; i++)
        {
            var x = ScreenX(xAxis.Ticks[i]);
            grid.Add(Line(x, top, x, top + plotHeight));
            labels.Add(Text(x, top + plotHeight + 18, xAxis.Labels[i], "middle"));
        }

        for (var i = 0; i < yAxis.Ticks.Count; i++)
        {
            var y = ScreenY(yAxis.Ticks[i]);
            grid.Add(Line(left, y, left + plotWidth, y));
            labels.Add(Text(left - 8, y + 4, yAxis.Labels[i], "end"));
        }

        root.Add(grid, labels);
        root.Add(FrameAndAxisTitles(left, top, plotWidth, plotHeight, Height, XLabel, YLabel + (LogY ? " (log scale)" : "")));

        var lines = new XElement(Svg + "g", new XAttribute("fill", "none"), new XAttribute("stroke-width", "2"),
            new XAttribute("stroke-linejoin", "round"));
        var legend = new XElement(Svg + "g");
        for (var s = 0; s < series.Count; s++)
        {
            var color = Palette[s % Palette.Count];
            var dash = s >= Palette.Count ? "6 3" : null;
            var points = drawn[s];
            var line = new XElement(Svg + "polyline",
                new XAttribute("stroke", color),
                new XAttribute("points", string.Join(" ", points.Select(p => $"{Number(ScreenX(p.X))},{Number(ScreenY(p.Y))}"))),
                new XElement(Svg + "title", series[s].Name));
            if (dash is not null)
            {
                line.Add(new XAttribute("stroke-dasharray", dash));
            }

            lines.Add(line);
            if (points.Count <= MarkerLimit)
            {
                foreach (var (x, y) in points)
                {
                    lines.Add(new XElement(Svg + "circle", new XAttribute("cx", Number(ScreenX(x))), new XAttribute("cy", Number(ScreenY(y))),
                        new XAttribute("r", "2.5"), new XAttribute("fill", color), new XAttribute("stroke", "none")));
                }
            }

            var legendX = left + plotWidth + 14;
            var legendY = top + 10 + 20 * s;
            var key = Line(legendX, legendY, legendX + 24, legendY);
            key.Add(new XAttribute("stroke", color), new XAttribute("stroke-width", "3"));
            if (dash is not null)
            {
                key.Add(new XAttribute("stroke-dasharray", dash));
            }

            legend.Add(key, Text(legendX + 30, legendY + 4, series[s].Name, "start"));
        }

        root.Add(lines, legend);
        return Finish(root);
    }

    private bool IsDrawable((double X, double Y) point) =>
        double.IsFinite(point.X) && double.IsFinite(point.Y) && (!LogY || point.Y > 0);
}
