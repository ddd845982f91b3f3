namespace MpiPipeline;

/// <summary>
/// Bad input (arguments, files, settings). When <see cref="SameOnEveryRank"/> every rank should detect it at the same
/// point, so rank 0 alone reports it; a rank that sees it while rank 0 does not (one node's corrupt copy of a file)
/// still reports it with its rank, after a short wait for rank 0. Otherwise the rank that saw it reports it at once.
/// </summary>
public class InputException(string message, bool sameOnEveryRank = true, int exitCode = 1) : Exception(message)
{
    public bool SameOnEveryRank { get; } = sameOnEveryRank;
    public int ExitCode { get; } = exitCode;
}
