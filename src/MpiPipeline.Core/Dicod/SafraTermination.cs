namespace MpiPipeline.Dicod;

/// <summary>The probe token of <see cref="SafraTermination"/>: the sum q of the counters it visited and its colour.</summary>
internal readonly record struct TerminationToken(long Count, bool Black);

/// <summary>
/// Termination detection by Safra's algorithm (Dijkstra's EWD998, "Shmuel Safra's version of termination
/// detection"), for W ranks on a ring 0 -> 1 -> ... -> W-1 -> 0, as a pure state machine: the DICOD worker feeds it
/// its sends, receives and the token, and asks it what to do when it is passive. Basic messages (beta updates) may
/// take any time and arrive in any order; the algorithm needs no FIFO channels.
/// <list type="bullet">
/// <item>Each rank keeps c = basic messages sent - received, and a colour: receiving a basic message makes it black.</item>
/// <item>Rank 0, when passive, starts a probe: it turns white and sends the token (q = 0, white) to rank 1.</item>
/// <item>A rank i &gt; 0 keeps the token until it is passive, then forwards (q + c_i, black if it or the token is
/// black) and turns white.</item>
/// <item>When the token is back and rank 0 is passive: if token and rank 0 are white and q + c_0 = 0, every rank is
/// passive and no message is in flight - terminated. Otherwise rank 0 starts a new probe.</item>
/// </list>
/// Why it is safe (EWD998's invariant): a white token with q + c_0 = 0 means no rank received a message since the
/// token passed it (else it would be black) and the counts of sends and receives balance, so no message is in
/// flight that could wake a passive rank. One probe after the last message it takes at most two rounds of the ring.
/// </summary>
internal sealed class SafraTermination
{
    private readonly int rank;
    private readonly int size;
    private TerminationToken? held;

    public SafraTermination(int rank, int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, size);
        this.rank = rank;
        this.size = size;
        // Rank 0 starts out holding a black token: its first passive moment starts the first real probe.
        held = rank == 0 ? new TerminationToken(0, Black: true) : null;
    }

    /// <summary>c: basic messages sent minus received by this rank.</summary>
    public long Counter { get; private set; }

    public bool Black { get; private set; }

    /// <summary>Rank 0 only: the probe came back white with a zero sum. Nothing is left to do anywhere.</summary>
    public bool Terminated { get; private set; }

    /// <summary>Probes rank 0 started (for the results: how many waves the detection took).</summary>
    public int Probes { get; private set; }

    /// <summary>The rank the token goes to next.</summary>
    public int Next => (rank + 1) % size;

    public bool HoldsToken => held is not null;

    public void Sent() => Counter++;

    public void Received()
    {
        Counter--;
        Black = true;
    }

    public void TokenArrived(TerminationToken token)
    {
        if (held is not null)
        {
            throw new InvalidOperationException($"rank {rank} received a second termination token");
        }

        held = token;
    }

    /// <summary>
    /// The rank is passive (nothing above tol, no message being handled): the token to send to <see cref="Next"/>,
    /// or null (no token here, or rank 0 found termination: see <see cref="Terminated"/>).
    /// </summary>
    public TerminationToken? WhenPassive()
    {
        if (held is not { } token || Terminated)
        {
            return null;
        }

        held = null;
        if (rank != 0)
        {
            var forwarded = new TerminationToken(token.Count + Counter, token.Black || Black);
            Black = false;
            return forwarded;
        }

        if (!token.Black && !Black && token.Count + Counter == 0)
        {
            Terminated = true;
            return null;
        }

        if (size == 1)
        {
            // No ring: a passive lone rank with nothing in flight (it sends to nobody) is done.
            Terminated = Counter == 0;
            held = Terminated ? null : new TerminationToken(0, Black: true);
            return null;
        }

        Black = false;
        Probes++;
        return new TerminationToken(0, Black: false);
    }
}
