using System.Globalization;
using MpiPipeline.Mpi;

namespace MpiPipeline.Pipeline;

/// <summary>The layers [<see cref="Start"/>, <see cref="End"/>) of the model that one stage holds.</summary>
internal readonly record struct LayerRange(int Start, int End)
{
    public int Count => End - Start;

    public override string ToString() => $"[{Start}, {End})";
}

/// <summary>
/// Cutting a model's layers into S contiguous stages, each with at least one layer (torchgpipe's <c>balance</c>):
/// by an explicit balance, or by per-layer costs so that the costliest stage is as cheap as possible.
/// </summary>
internal static class Partition
{
    /// <summary>
    /// Stage s gets the next <c>balance[s]</c> layers: balance 3,2,2 of 7 layers gives [0, 3), [3, 5), [5, 7).
    /// </summary>
    public static IReadOnlyList<LayerRange> ByBalance(int layerCount, IReadOnlyList<int> balance)
    {
        var text = string.Join(',', balance);
        if (layerCount < 1)
        {
            throw new InputException($"the model has {layerCount} layers; a pipeline needs a model with at least one layer");
        }

        if (balance.Count == 0)
        {
            throw new InputException($"the balance is empty: give the number of layers of each stage, e.g. {layerCount} for one stage");
        }

        if (balance.Count > layerCount)
        {
            throw new InputException(
                $"balance {text} asks for {balance.Count} stages but the model has only {layerCount} layers: use at most {layerCount} stages");
        }

        for (var s = 0; s < balance.Count; s++)
        {
            if (balance[s] < 1)
            {
                throw new InputException(
                    $"balance {text} gives stage {s} {balance[s]} layers: every stage needs at least one layer");
            }
        }

        var sum = balance.Sum(b => (long)b);
        if (sum != layerCount)
        {
            throw new InputException(
                $"balance {text} adds up to {sum} layers but the model has {layerCount}: give per-stage counts that add up to {layerCount}");
        }

        var ranges = new LayerRange[balance.Count];
        var start = 0;
        for (var s = 0; s < balance.Count; s++)
        {
            ranges[s] = new LayerRange(start, start + balance[s]);
            start += balance[s];
        }

        return ranges;
    }

    /// <summary>
    /// The contiguous partition of layers with costs c_0 .. c_{L-1} into <paramref name="stages"/> stages, each at
    /// least one layer, that minimizes the bottleneck max_s sum_{l in stage s} c_l. Costs are the caller's: measured
    /// forward + backward time per layer, or parameter count (then layers without parameters, like relu or flatten,
    /// cost 0 and ride along with a neighbour).
    /// <para>
    /// Exact, by dynamic programming over suffixes, O(S L^2):
    /// <code>best(k, i) = min over e in (i, L - k + 1] of max(cost(i, e), best(k - 1, e)),   best(1, i) = cost(i, L)</code>
    /// the least bottleneck of layers i .. L-1 in k stages. Ties: among the partitions with the least bottleneck,
    /// the one whose stage sizes are lexicographically smallest - every stage from the first on takes as few layers
    /// as it can. Under 1F1B stage s keeps up to S - s micro-batches of activations, so leaving the early stages
    /// light is also the better tie for memory.
    /// </para>
    /// </summary>
    public static IReadOnlyList<LayerRange> ByCost(IReadOnlyList<double> layerCosts, int stages)
    {
        var layers = layerCosts.Count;
        if (layers == 0)
        {
            throw new InputException("no layer costs: the model has no layers to partition");
        }

        if (stages < 1)
        {
            throw new InputException($"a pipeline needs at least 1 stage, not {stages}");
        }

        if (stages > layers)
        {
            throw new InputException($"{stages} stages but the model has only {layers} layers: use at most {layers} stages");
        }

        for (var l = 0; l < layers; l++)
        {
            if (!double.IsFinite(layerCosts[l]) || layerCosts[l] < 0)
            {
                throw new InputException($"layer {l} has cost {layerCosts[l]}: layer costs must be finite and >= 0");
            }
        }

        // prefix[l] = c_0 + ... + c_{l-1}; cost(i, e) = prefix[e] - prefix[i] everywhere, so equal sums compare equal.
        var prefix = new double[layers + 1];
        for (var l = 0; l < layers; l++)
        {
            prefix[l + 1] = prefix[l] + layerCosts[l];
        }

        double Cost(int start, int end) => prefix[end] - prefix[start];

        // best[k][i]: least bottleneck of layers i .. L-1 in k stages (defined for i <= L - k).
        var best = new double[stages + 1][];
        best[1] = new double[layers];
        for (var i = 0; i < layers; i++)
        {
            best[1][i] = Cost(i, layers);
        }

        for (var k = 2; k <= stages; k++)
        {
            best[k] = new double[layers - k + 1];
            for (var i = 0; i <= layers - k; i++)
            {
                var least = double.PositiveInfinity;
                for (var e = i + 1; e <= layers - k + 1; e++)
                {
                    least = Math.Min(least, Math.Max(Cost(i, e), best[k - 1][e]));
                }

                best[k][i] = least;
            }
        }

        // Walk from the front: each stage ends at the first layer boundary that keeps the bottleneck.
        var bottleneck = best[stages][0];
        var ranges = new LayerRange[stages];
        var start = 0;
        for (var s = 0; s < stages - 1; s++)
        {
            var stagesAfter = stages - s - 1;
            var end = start + 1;
            while (Cost(start, end) > bottleneck || best[stagesAfter][end] > bottleneck)
            {
                end++;
            }

            ranges[s] = new LayerRange(start, end);
            start = end;
        }

        ranges[stages - 1] = new LayerRange(start, layers);
        return ranges;
    }

    /// <summary>The per-stage layer counts of <paramref name="ranges"/> (the balance that gives them).</summary>
    public static int[] ToBalance(IEnumerable<LayerRange> ranges) => ranges.Select(r => r.Count).ToArray();

    /// <summary>Parses a <c>--balance</c> value, layers per stage separated by commas: <c>3,2,2</c>.</summary>
    public static int[] ParseBalance(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (string.IsNullOrWhiteSpace(text))
        {
            throw new InputException("--balance is empty: give the layers of each stage separated by commas, e.g. 3,2,2");
        }

        var balance = new int[parts.Length];
        for (var s = 0; s < parts.Length; s++)
        {
            if (!int.TryParse(parts[s], NumberStyles.None, CultureInfo.InvariantCulture, out balance[s]) || balance[s] < 1)
            {
                var what = parts[s].Length == 0 ? "an empty entry" : $"'{parts[s]}'";
                throw new InputException(
                    $"--balance '{text}': {what} for stage {s} is not a layer count >= 1; give the layers of each stage separated by commas, e.g. 3,2,2");
            }
        }

        return balance;
    }
}
