using System.Text;
using System.Text.RegularExpressions;

namespace MpiPipeline.Telemetry;

/// <summary>
/// A GitHub-flavoured Markdown table, padded so it also reads well as plain text. A column whose cells are all
/// numbers (optionally signed, with a unit such as %, x, s, ms, MB, /s; empty or "-" cells ignored) is right-aligned.
/// </summary>
internal sealed partial class MarkdownTable
{
    private readonly string[] headers;
    private readonly List<string[]> rows = [];

    public MarkdownTable(params string[] headers)
    {
        if (headers.Length == 0)
        {
            throw new ArgumentException("a table needs at least one column.", nameof(headers));
        }

        this.headers = headers.Select(Escape).ToArray();
    }

    public int RowCount => rows.Count;

    public MarkdownTable AddRow(params string[] cells)
    {
        if (cells.Length != headers.Length)
        {
            throw new ArgumentException($"the table has {headers.Length} columns; the row has {cells.Length} cells.", nameof(cells));
        }

        rows.Add(cells.Select(Escape).ToArray());
        return this;
    }

    /// <summary>Whether a cell reads as a number: 12, -3.5, 1,234, 1.5e-3, 91.2%, 1.03x, 12 ms, 4.2 GB/s.</summary>
    public static bool IsNumeric(string cell) => NumericCell().IsMatch(cell.Trim());

    public bool IsRightAligned(int column)
    {
        var cells = rows.Select(r => r[column].Trim()).Where(c => c is not ("" or "-" or "—" or "n/a")).ToList();
        return cells.Count > 0 && cells.All(IsNumeric);
    }

    public override string ToString()
    {
        var columns = headers.Length;
        var rightAligned = Enumerable.Range(0, columns).Select(IsRightAligned).ToArray();
        var widths = Enumerable.Range(0, columns)
            .Select(c => Math.Max(3, rows.Select(r => r[c].Length).Prepend(headers[c].Length).Max()))
            .ToArray();

        var text = new StringBuilder();
        AppendRow(text, headers, widths, rightAligned);
        text.Append('|');
        for (var c = 0; c < columns; c++)
        {
            text.Append(' ').Append(rightAligned[c] ? new string('-', widths[c] - 1) + ":" : new string('-', widths[c])).Append(" |");
        }

        text.Append('\n');
        foreach (var row in rows)
        {
            AppendRow(text, row, widths, rightAligned);
        }

        return text.ToString();
    }

    private static void AppendRow(StringBuilder text, string[] cells, int[] widths, bool[] rightAligned)
    {
        text.Append('|');
        for (var c = 0; c < cells.Length; c++)
        {
            var cell = rightAligned[c] ? cells[c].PadLeft(widths[c]) : cells[c].PadRight(widths[c]);
            text.Append(' ').Append(cell).Append(" |");
        }

        text.Append('\n');
    }

    /// <summary>A pipe would end the cell and a line break the row: escape the one, flatten the other.</summary>
    private static string Escape(string cell) => cell.ReplaceLineEndings(" ").Replace("|", "\\|", StringComparison.Ordinal);

    [GeneratedRegex(@"^(?=[-+−]?\.?\d)[-+−]?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?([eE][-+]?\d+)?\s?(%|x|×|s|ms|µs|us|ns|min|h|k|M|G|B|KB|KiB|MB|MiB|GB|GiB)?(/s)?$")]
    private static partial Regex NumericCell();
}
