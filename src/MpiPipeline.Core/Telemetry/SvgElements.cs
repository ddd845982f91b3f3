using System.Globalization;
using System.Xml.Linq;

namespace MpiPipeline.Telemetry;

/// <summary>The SVG pieces <see cref="SvgPlot"/> and <see cref="SvgBarChart"/> both draw with: one namespace, one font.</summary>
internal static class SvgElements
{
    internal const double FontSize = 13;
    internal const double CharacterWidth = 7.2;
    internal static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    /// <summary>An SVG document of the given size on a white background, titled (tooltip and bold heading).</summary>
    internal static XElement Document(int width, int height, string title) => new(Svg + "svg",
        new XAttribute("width", width), new XAttribute("height", height),
        new XAttribute("viewBox", $"0 0 {width} {height}"),
        new XAttribute("font-family", "DejaVu Sans, Helvetica, Arial, sans-serif"),
        new XAttribute("font-size", Number(FontSize)),
        new XElement(Svg + "title", title),
        new XElement(Svg + "rect", new XAttribute("width", "100%"), new XAttribute("height", "100%"), new XAttribute("fill", "white")),
        Text(width / 2.0, 26, title, "middle", FontSize + 3, "bold"));

    /// <summary>The finished document of <paramref name="root"/>: an XML declaration, then the svg element.</summary>
    internal static XDocument Finish(XElement root) => new(new XDeclaration("1.0", "utf-8", null), root);

    /// <summary>A document's file text: the declaration, the svg element, a final newline.</summary>
    internal static string ToText(XDocument document) => $"{document.Declaration}\n{document.Root}\n";

    /// <summary>The plot area's frame, <paramref name="xLabel"/> centred below it and <paramref name="yLabel"/> turned up its left.</summary>
    internal static IEnumerable<XElement> FrameAndAxisTitles(double left, double top, double width, double height, int documentHeight,
        string xLabel, string yLabel)
    {
        yield return new XElement(Svg + "rect",
            new XAttribute("x", Number(left)), new XAttribute("y", Number(top)),
            new XAttribute("width", Number(width)), new XAttribute("height", Number(height)),
            new XAttribute("fill", "none"), new XAttribute("stroke", "#555"));
        yield return Text(left + width / 2, documentHeight - 14, xLabel, "middle");
        var middle = top + height / 2;
        var yTitle = Text(16, middle, yLabel, "middle");
        yTitle.Add(new XAttribute("transform", $"rotate(-90 16 {Number(middle)})"));
        yield return yTitle;
    }

    internal static XElement Line(double x1, double y1, double x2, double y2) => new(Svg + "line",
        new XAttribute("x1", Number(x1)), new XAttribute("y1", Number(y1)),
        new XAttribute("x2", Number(x2)), new XAttribute("y2", Number(y2)));

    internal static XElement Text(double x, double y, string text, string anchor, double? size = null, string? weight = null)
    {
        var element = new XElement(Svg + "text", new XAttribute("x", Number(x)), new XAttribute("y", Number(y)),
            new XAttribute("text-anchor", anchor), text);
        if (size is { } fontSize)
        {
            element.Add(new XAttribute("font-size", Number(fontSize)));
        }

        if (weight is not null)
        {
            element.Add(new XAttribute("font-weight", weight));
        }

        return element;
    }

    internal static string Number(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);
}
