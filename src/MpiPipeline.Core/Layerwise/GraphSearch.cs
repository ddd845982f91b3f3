namespace MpiPipeline.Layerwise;

/// <summary>
/// OptCNN's computation graph with costs: a node per layer with a cost per configuration (compute + sync), a directed
/// edge per data dependency with a cost per pair of configurations (the transfer). A plan picks one configuration per
/// node; its cost is the sum of the picked node costs and edge costs.
/// </summary>
internal sealed class CostGraph
{
    private readonly List<double[]> nodes = [];
    private readonly List<(int From, int To, double[,] Cost)> edges = [];

    public IReadOnlyList<double[]> Nodes => nodes;

    public IReadOnlyList<(int From, int To, double[,] Cost)> Edges => edges;

    public int AddNode(double[] cost)
    {
        if (cost.Length == 0)
        {
            throw new ArgumentException("a node needs at least one configuration", nameof(cost));
        }

        nodes.Add(cost);
        return nodes.Count - 1;
    }

    public void AddEdge(int from, int to, double[,] cost)
    {
        if (from == to || cost.GetLength(0) != nodes[from].Length || cost.GetLength(1) != nodes[to].Length)
        {
            throw new ArgumentException($"edge {from}->{to}: a {cost.GetLength(0)}x{cost.GetLength(1)} cost table for nodes of {nodes[from].Length} and {nodes[to].Length} configurations");
        }

        edges.Add((from, to, cost));
    }

    /// <summary>The cost of one configuration index per node.</summary>
    public double Cost(IReadOnlyList<int> choice)
    {
        var total = 0.0;
        for (var i = 0; i < nodes.Count; i++)
        {
            total += nodes[i][choice[i]];
        }

        foreach (var (from, to, cost) in edges)
        {
            total += cost[choice[from], choice[to]];
        }

        return total;
    }
}

/// <summary>
/// The search of Jia et al. (OptCNN, ICML 2018, section 4): shrink the graph by
/// <list type="bullet">
/// <item><b>node elimination</b>: a node j with one in-edge (i, j) and one out-edge (j, k) goes; a new edge (i, k)
/// costs, per pair (c_i, c_k), min over c_j of t_c(j, c_j) + t_x(e1, c_i, c_j) + t_x(e2, c_j, c_k), the argmin kept;</item>
/// <item><b>edge elimination</b>: two edges with the same ends become one whose cost is their sum;</item>
/// </list>
/// until neither applies, then enumerate every configuration of the nodes left and undo the node eliminations in
/// reverse order, each eliminated node taking its argmin for its neighbours' configurations. Both steps keep the
/// optimum, so the result is optimal on any graph small enough to enumerate at the end. On a chain (the models here:
/// a residual block is one node) every node but the first and last goes, and the search is the chain's dynamic
/// program: O(sum |C_i| |C_j| |C_k|) for the eliminations plus |C_first| |C_last| at the end.
/// </summary>
internal static class GraphSearch
{
    /// <summary>The most configurations of the nodes left that the final enumeration tries.</summary>
    public const long EnumerationLimit = 10_000_000;

    /// <summary>The configuration index of each node in a cheapest plan (the first in index order among equal costs).</summary>
    public static int[] Optimize(CostGraph graph)
    {
        var count = graph.Nodes.Count;
        var nodeCost = graph.Nodes.Select(c => (double[])c.Clone()).ToArray();
        var alive = Enumerable.Repeat(true, count).ToArray();
        var edges = graph.Edges.Select(e => new Edge(e.From, e.To, (double[,])e.Cost.Clone())).ToList();
        var eliminated = new Stack<(int Node, int From, int To, int[,] Argmin)>();

        var changed = true;
        while (changed)
        {
            changed = EliminateEdges(edges);
            for (var j = 0; j < count; j++)
            {
                if (!alive[j])
                {
                    continue;
                }

                var incoming = edges.Where(e => e.To == j).ToList();
                var outgoing = edges.Where(e => e.From == j).ToList();
                if (incoming.Count != 1 || outgoing.Count != 1)
                {
                    continue;
                }

                var (e1, e2) = (incoming[0], outgoing[0]);
                var (i, k) = (e1.From, e2.To);
                var (ci, cj, ck) = (nodeCost[i].Length, nodeCost[j].Length, nodeCost[k].Length);
                var cost = new double[ci, ck];
                var argmin = new int[ci, ck];
                for (var a = 0; a < ci; a++)
                {
                    for (var b = 0; b < ck; b++)
                    {
                        var best = double.PositiveInfinity;
                        for (var x = 0; x < cj; x++)
                        {
                            var total = nodeCost[j][x] + e1.Cost[a, x] + e2.Cost[x, b];
                            if (total < best)
                            {
                                (best, argmin[a, b]) = (total, x);
                            }
                        }

                        cost[a, b] = best;
                    }
                }

                edges.Remove(e1);
                edges.Remove(e2);
                edges.Add(new Edge(i, k, cost));
                alive[j] = false;
                eliminated.Push((j, i, k, argmin));
                changed = true;
            }
        }

        var choice = new int[count];
        var left = Enumerable.Range(0, count).Where(n => alive[n]).ToArray();
        Enumerate(left, nodeCost, edges, choice);
        while (eliminated.Count > 0)
        {
            var (node, from, to, argmin) = eliminated.Pop();
            choice[node] = argmin[choice[from], choice[to]];
        }

        return choice;
    }

    /// <summary>Every plan tried: the reference the search is tested against on small graphs.</summary>
    public static int[] BruteForce(CostGraph graph)
    {
        var edges = graph.Edges.Select(e => new Edge(e.From, e.To, e.Cost)).ToList();
        var choice = new int[graph.Nodes.Count];
        Enumerate([.. Enumerable.Range(0, graph.Nodes.Count)], [.. graph.Nodes], edges, choice);
        return choice;
    }

    /// <summary>Sums edges with the same ends into one; true when any were merged.</summary>
    private static bool EliminateEdges(List<Edge> edges)
    {
        var merged = false;
        foreach (var group in edges.GroupBy(e => (e.From, e.To)).Where(g => g.Count() > 1).ToList())
        {
            var parts = group.ToList();
            var sum = (double[,])parts[0].Cost.Clone();
            foreach (var part in parts.Skip(1))
            {
                for (var a = 0; a < sum.GetLength(0); a++)
                {
                    for (var b = 0; b < sum.GetLength(1); b++)
                    {
                        sum[a, b] += part.Cost[a, b];
                    }
                }
            }

            edges.RemoveAll(parts.Contains);
            edges.Add(new Edge(group.Key.From, group.Key.To, sum));
            merged = true;
        }

        return merged;
    }

    /// <summary>Sets <paramref name="choice"/> at <paramref name="nodes"/> to the cheapest of all their combinations.</summary>
    private static void Enumerate(int[] nodes, double[][] nodeCost, List<Edge> edges, int[] choice)
    {
        var combinations = nodes.Aggregate(1L, (product, n) => product > EnumerationLimit ? product : product * nodeCost[n].Length);
        if (combinations > EnumerationLimit)
        {
            throw new InputException($"the layer graph left {nodes.Length} nodes after node and edge elimination, over {EnumerationLimit:N0} plans to enumerate");
        }

        var current = (int[])choice.Clone();
        var best = double.PositiveInfinity;
        var bestChoice = (int[])choice.Clone();
        void Visit(int depth)
        {
            if (depth == nodes.Length)
            {
                var total = nodes.Sum(n => nodeCost[n][current[n]]) + edges.Sum(e => e.Cost[current[e.From], current[e.To]]);
                if (total < best)
                {
                    best = total;
                    nodes.ToList().ForEach(n => bestChoice[n] = current[n]);
                }

                return;
            }

            for (var c = 0; c < nodeCost[nodes[depth]].Length; c++)
            {
                current[nodes[depth]] = c;
                Visit(depth + 1);
            }
        }

        Visit(0);
        foreach (var n in nodes)
        {
            choice[n] = bestChoice[n];
        }
    }

    private sealed record Edge(int From, int To, double[,] Cost);
}
