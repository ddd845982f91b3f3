using System.Globalization;

namespace MpiPipeline.Training;

/// <summary>The "rank:step" value of the test hooks' environment variables (e.g. MPIPIPE_TEST_THROW_AT=2:3).</summary>
internal static class RankStepVariable
{
    /// <summary>(rank, step), null when <paramref name="text"/> is empty; anything else names the variable and an example.</summary>
    public static (int Rank, long Step)? Parse(string variable, string? text, string example)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var parts = text.Split(':');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var rank)
            && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var step))
        {
            return (rank, step);
        }

        throw new InputException($"{variable}='{text}' is not rank:step (e.g. {example})");
    }
}
