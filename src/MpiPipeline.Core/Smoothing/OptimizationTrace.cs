namespace MpiPipeline.Smoothing;

/// <summary>
/// The state after <see cref="Iteration"/> iterations: the time units the oracle has spent, f at the reported iterate
/// (theta_t for GD, y_t for AGD and PPRS as in Lemma 1), and k_t, the number of coordinates that are non-zero in some
/// vector the method has held so far (the supplement's k_t, line 20; bounded by Eq. 3 for methods whose iterates stay
/// in the span of the gradients).
/// </summary>
internal sealed record OptimizationRecord(int Iteration, long ElapsedTimeUnits, double Value, int NonZeroCoordinates);

/// <summary>A run's records, from iteration 0 (the start point, time 0) to the last, and its final reported iterate.</summary>
internal sealed class OptimizationTrace(IReadOnlyList<OptimizationRecord> records, double[] finalIterate)
{
    public IReadOnlyList<OptimizationRecord> Records { get; } = records;

    /// <summary>The reported iterate after the last iteration.</summary>
    public double[] FinalIterate { get; } = finalIterate;

    public OptimizationRecord Final => Records[^1];

    /// <summary>The least f over the reported iterates.</summary>
    public double BestValue => Records.Min(r => r.Value);

    /// <summary>The last record with at most <paramref name="timeUnits"/> elapsed: the state "after t time units".</summary>
    public OptimizationRecord AtTime(long timeUnits) => Records.Last(r => r.ElapsedTimeUnits <= timeUnits);
}

/// <summary>k_t: the union of the supports of the vectors a method has held (coordinates exactly non-zero).</summary>
internal sealed class SupportTracker(int dimension)
{
    private readonly bool[] seen = new bool[dimension];

    public int Count { get; private set; }

    public void Add(ReadOnlySpan<double> vector)
    {
        for (var i = 0; i < seen.Length; i++)
        {
            if (!seen[i] && vector[i] != 0)
            {
                seen[i] = true;
                Count++;
            }
        }
    }
}
