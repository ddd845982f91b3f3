namespace MpiPipeline.Dicod;

/// <summary>
/// <c>mpipipe dicod</c>'s settings: the problem (synthetic by default, or a signal and a dictionary from .npy files),
/// lambda and tol, and which solver runs. Defaults here, once; the CLI's option table reads them.
/// </summary>
internal sealed record DicodOptions
{
    public int Atoms { get; init; } = 5;
    public int AtomLength { get; init; } = 16;
    public int Length { get; init; } = 20_000;
    public int Channels { get; init; } = 1;
    public double Lambda { get; init; } = 1.0;
    public double Tol { get; init; } = 1e-6;
    public int Seed { get; init; } = 1;

    /// <summary>rho, the probability that an activation of the synthetic problem is non-zero.</summary>
    public double Density { get; init; } = 0.002;

    /// <summary>sigma, the standard deviation of the synthetic signal's Gaussian noise.</summary>
    public double Noise { get; init; } = 0.1;

    public string? SignalPath { get; init; }
    public string? DictionaryPath { get; init; }
    public string Solver { get; init; } = "dicod";

    /// <summary>M, sub-segments per rank for LGCD and DICOD's local LGCD; 0: one per 2L - 1 coordinates.</summary>
    public int SubSegments { get; init; }

    /// <summary>DICOD's choice on a rank's segment: greedy (the paper) or lgcd (sub-segments, as dicodile does).</summary>
    public string Local { get; init; } = "greedy";

    public long MaxUpdates { get; init; } = 50_000_000;
    public int MaxIterations { get; init; } = 2_000;

    /// <summary>
    /// The problems with these settings on <paramref name="ranks"/> ranks, one message each (the sizes a --signal or
    /// --dictionary file brings are checked when it is read). Usage errors: the CLI reports them at parse time.
    /// </summary>
    public IEnumerable<string> Problems(int ranks)
    {
        if (Atoms < 1)
        {
            yield return $"--atoms {Atoms}: K must be >= 1";
        }

        if (AtomLength < 1)
        {
            yield return $"--atom-length {AtomLength}: L must be >= 1";
        }

        if (Channels < 1)
        {
            yield return $"--channels {Channels}: P must be >= 1";
        }

        if (!(Lambda >= 0) || double.IsInfinity(Lambda))
        {
            yield return $"--lambda {Lambda}: lambda must be a finite number >= 0";
        }

        if (!(Tol > 0) || double.IsInfinity(Tol))
        {
            yield return $"--tol {Tol}: tol must be a finite number > 0";
        }

        if (!(Density is >= 0 and <= 1))
        {
            yield return $"--density {Density}: rho is a probability, in [0, 1]";
        }

        if (!(Noise >= 0) || double.IsInfinity(Noise))
        {
            yield return $"--noise {Noise}: sigma must be a finite number >= 0";
        }

        if (SubSegments < 0)
        {
            yield return $"--sub-segments {SubSegments}: M must be >= 1 (or 0 for one per 2L - 1 coordinates)";
        }

        if (SignalPath is null && AtomLength >= 1 && Length < AtomLength)
        {
            yield return $"--length {Length}: the signal must be at least as long as an atom (L = {AtomLength})";
        }

        if (ranks > 1 && Solver != "dicod")
        {
            yield return $"--solver {Solver} is a one-rank baseline: launch it on one rank, or use --solver dicod on {ranks}";
        }

        if (SignalPath is null && AtomLength >= 1 && Length >= AtomLength && SegmentProblem(Length - AtomLength + 1, AtomLength, ranks) is { } segment)
        {
            yield return segment;
        }
    }

    /// <summary>
    /// T/W &lt; 2L - 1: a segment shorter than 2L - 1 would let one update reach past a neighbour, which DICOD's
    /// message passing (neighbours only) does not cover. Checked on the activations' axis, T - L + 1 coordinates.
    /// </summary>
    public static string? SegmentProblem(int activationLength, int atomLength, int ranks)
    {
        var shortest = activationLength / Math.Max(1, ranks);
        return ranks > 1 && shortest < (2 * atomLength) - 1
            ? $"T/W < 2L - 1: {ranks} ranks cut the {activationLength} activations (T - L + 1) into segments of {shortest}, shorter than 2L - 1 = {(2 * atomLength) - 1}; use fewer ranks or a longer signal"
            : null;
    }
}
