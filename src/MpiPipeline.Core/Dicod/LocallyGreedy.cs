namespace MpiPipeline.Dicod;

/// <summary>
/// The coordinate choice of LGCD (locally greedy coordinate descent, the paper's sequential counterpart of DICOD):
/// the segment is cut into M sub-segments, visited in turn; in each, the greedy choice (largest |Delta Z|). A
/// sub-segment whose largest |Delta Z| is at most tol goes inactive until an update (its own or a neighbour's)
/// changes beta within it, so "every sub-segment inactive" means max |Delta Z| &lt;= tol over the whole segment:
/// coordinate descent's stopping rule. With M = 1 this is plain greedy coordinate descent (one argmax over the
/// segment per update, O(K T) for the whole signal: what DICOD's W workers each cut to O(K T / W)).
/// </summary>
internal sealed class LocallyGreedy
{
    private readonly Segment segment;
    private readonly int[] bounds;
    private readonly bool[] active;
    private readonly int reach;
    private int current = -1;

    /// <param name="subSegments">M, the number of sub-segments (1: greedy).</param>
    /// <param name="reach">L - 1: how far from an update beta changes.</param>
    public LocallyGreedy(Segment segment, int subSegments, int reach)
    {
        this.segment = segment;
        this.reach = reach;
        var m = Math.Clamp(subSegments, 1, Math.Max(1, segment.Length));
        bounds = new int[m + 1];
        for (var i = 0; i <= m; i++)
        {
            bounds[i] = (int)((long)i * segment.Length / m);
        }

        active = new bool[m];
        Array.Fill(active, true);
        ActiveCount = m;
    }

    /// <summary>The number of sub-segments M.</summary>
    public int SubSegments => active.Length;

    public int ActiveCount { get; private set; }

    /// <summary>Nothing left above tol here: the worker is passive until a message changes its beta.</summary>
    public bool Passive => ActiveCount == 0;

    /// <summary>The sub-segment length LGCD uses by default: 2L - 1, as in the authors' code (dicodile's n_seg='auto').</summary>
    public static int DefaultSubSegments(int length, int atomLength) => Math.Max(1, length / ((2 * atomLength) - 1));

    /// <summary>
    /// One step: the next active sub-segment's greedy coordinate; applied and returned when |Delta Z| &gt; tol, else
    /// the sub-segment goes inactive and null comes back. Null as well when every sub-segment is inactive.
    /// </summary>
    public (int K, int T, double Dz)? Step(double tol)
    {
        if (ActiveCount == 0)
        {
            return null;
        }

        do
        {
            current = (current + 1) % active.Length;
        }
        while (!active[current]);

        var (k, t, dz) = segment.Select(bounds[current], bounds[current + 1]);
        if (Math.Abs(dz) <= tol)
        {
            active[current] = false;
            ActiveCount--;
            return null;
        }

        segment.Apply(k, t, dz);
        Touched(t);
        return (k, t, dz);
    }

    /// <summary>Beta changed within reach of global t (an update here or a neighbour's message): wake the sub-segments there.</summary>
    public void Touched(int t)
    {
        var lo = Math.Max(0, t - reach - segment.Start);
        var hi = Math.Min(segment.Length - 1, t + reach - segment.Start);
        if (lo > hi)
        {
            return;
        }

        for (var i = SubSegmentOf(lo); i < active.Length && bounds[i] <= hi; i++)
        {
            if (!active[i])
            {
                active[i] = true;
                ActiveCount++;
            }
        }
    }

    private int SubSegmentOf(int local)
    {
        var i = Array.BinarySearch(bounds, local);
        return i >= 0 ? Math.Min(i, active.Length - 1) : (~i) - 1;
    }
}
