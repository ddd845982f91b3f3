namespace MpiPipeline;

/// <summary>
/// Bad input (arguments, files, settings). When <see cref="SameOnEveryRank"/> every rank detects it at the same
/// point, so rank 0 alone reports it; otherwise the rank that saw it reports it with its rank.
/// </summary>
public class InputException(string message, bool sameOnEveryRank = true, int exitCode = 1) : Exception(message)
{
    public bool SameOnEveryRank { get; } = sameOnEveryRank;
    public int ExitCode { get; } = exitCode;
}
