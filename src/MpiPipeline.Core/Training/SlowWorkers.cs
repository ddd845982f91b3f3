using System.Diagnostics;
using System.Globalization;

namespace MpiPipeline.Training;

/// <summary>
/// --slow-workers K:FACTOR[,K:FACTOR...]: heterogeneous workers, emulated. After computing a gradient, worker (world rank)
/// K sleeps (FACTOR - 1) times the compute it just did, so its gradients take FACTOR times as long; sleeping leaves the
/// core to the other ranks, as a slower machine would.
/// </summary>
internal sealed class SlowWorkers
{
    public const string Flag = "--slow-workers";

    private readonly Dictionary<int, double> factors;

    private SlowWorkers(Dictionary<int, double> factors) => this.factors = factors;

    public static SlowWorkers None { get; } = new([]);

    public IReadOnlyDictionary<int, double> Factors => factors;

    /// <summary>FACTOR of world rank <paramref name="rank"/> (1: full speed).</summary>
    public double FactorOf(int rank) => factors.GetValueOrDefault(rank, 1);

    /// <summary>Parses the flag's text; rank bounds are checked against the world in <see cref="Validate"/>.</summary>
    public static SlowWorkers Parse(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return None;
        }

        var factors = new Dictionary<int, double>();
        foreach (var item in text.Split(','))
        {
            var parts = item.Split(':');
            if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var rank)
                || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var factor) || !(factor >= 1 && factor <= 1000)
                || !factors.TryAdd(rank, factor))
            {
                throw new InputException($"{Flag} '{text}': give K:FACTOR[,K:FACTOR...], K a rank (each once), 1 <= FACTOR <= 1000, e.g. {Flag} 1:4");
            }
        }

        return new SlowWorkers(factors);
    }

    /// <summary>Every K names a worker: a rank from <paramref name="firstWorker"/> to <paramref name="ranks"/> - 1.</summary>
    public void Validate(int ranks, int firstWorker)
    {
        foreach (var rank in factors.Keys.Where(k => k < firstWorker || k >= ranks))
        {
            throw new InputException($"{Flag}: rank {rank} is not a worker; the workers are ranks {firstWorker}..{ranks - 1}");
        }
    }

    /// <summary>After <paramref name="computeSeconds"/> of this rank's compute: the emulated slowdown, if any.</summary>
    public void Delay(int rank, double computeSeconds)
    {
        var factor = FactorOf(rank);
        if (factor > 1 && computeSeconds > 0)
        {
            var until = Stopwatch.GetTimestamp() + (long)((factor - 1) * computeSeconds * Stopwatch.Frequency);
            Thread.Sleep(TimeSpan.FromSeconds((factor - 1) * computeSeconds));
            // Sleep may return early by a scheduler tick: finish the remainder.
            while (Stopwatch.GetTimestamp() < until)
            {
                Thread.Yield();
            }
        }
    }
}
