using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using MpiPipeline.Data;
using MpiPipeline.Mpi;
using MpiPipeline.Pipeline;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;

namespace MpiPipeline.Smoothing;

/// <summary>What <c>mpipipe pprs</c> runs: a problem, a depth, the methods and their parameters.</summary>
internal sealed record PprsOptions
{
    public static readonly IReadOnlyList<string> Problems = ["smooth", "nonconvex", "nonsmooth", "adversarial"];

    public static readonly IReadOnlyList<string> Methods = ["gd", "agd", "pprs"];

    public string Problem { get; init; } = "nonsmooth";

    /// <summary>Delta, the chain's depth.</summary>
    public int Depth { get; init; } = 20;

    /// <summary>
    /// m, the terms of the finite sum f = (1/m) sum_i f_i: every evaluation at one point is m micro-batches
    /// (<see cref="TimeUnits"/>). The worst cases: m identical terms (they have no data; the clock is what m changes);
    /// adversarial: the B images split into m groups of B/m.
    /// </summary>
    public int Terms { get; init; } = 1;

    /// <summary>
    /// The adversarial problem's L (default: estimated, <see cref="PprsProblem.EstimateLipschitz"/>); it sets PPRS's
    /// step with <see cref="TheoryStep"/>.
    /// </summary>
    public double? Lipschitz { get; init; }

    /// <summary>PPRS's eta = gamma/L, the theory's 1/beta on the L/gamma-smooth f^gamma (instead of GD's step).</summary>
    public bool TheoryStep { get; init; }

    /// <summary>Non-convex PPRS: eps of Eq. 22-23 (default L/2), which sets the default gamma and K.</summary>
    public double? Precision { get; init; }

    /// <summary>Non-convex PPRS: M, the perturbations of each iterate's stationarity estimate (off the clock).</summary>
    public int StationaritySamples { get; init; } = 64;

    /// <summary>The micro-batch order of the pipelined oracle (one at a time: the unpipelined clock, for comparison).</summary>
    public ChainSchedule Schedule { get; init; } = ChainSchedule.Pipelined;

    /// <summary>K values, one PPRS run each; empty: K = ceil((T+1)/sqrt(d)) (Eq. 13).</summary>
    public IReadOnlyList<int> Samples { get; init; } = [];

    /// <summary>T, the iterations of every method (unless <see cref="Budget"/> is given).</summary>
    public int Iterations { get; init; } = 100;

    /// <summary>A budget of time units: each method runs the iterations that fit (2 Delta per GD/AGD iteration, 2 (K + Delta - 1) per PPRS one).</summary>
    public long? Budget { get; init; }

    /// <summary>Some of gd, agd, pprs, in that order.</summary>
    public IReadOnlyList<string> Run { get; init; } = Methods;

    /// <summary>PPRS's smoothing gamma (default: Eq. 13 for the worst cases, see <see cref="PprsProblem"/> for the adversarial problem).</summary>
    public double? Gamma { get; init; }

    /// <summary>eta of GD and AGD (default: per problem).</summary>
    public double? Step { get; init; }

    /// <summary>eta of PPRS (default: gamma/L, Eq. 13 / supplement line 63; the adversarial problem: <see cref="Step"/>).</summary>
    public double? PprsStep { get; init; }

    public long Seed { get; init; } = 1;

    /// <summary>d for the worst-case functions (default <see cref="DefaultDimension"/>); the adversarial problem's d is the image size.</summary>
    public int? Dimension { get; init; }

    public const int DefaultDimension = 101;

    /// <summary>The classifier attacked by the adversarial problem (a model zoo name).</summary>
    public string Model { get; init; } = "deep-mlp:20:32";

    /// <summary>Its trained flat float32 parameters (<c>mpipipe train --save-parameters</c>); null: untrained, from the seed.</summary>
    public string? ParametersPath { get; init; }

    /// <summary>B, the images sharing the perturbation.</summary>
    public int Images { get; init; } = 8;

    /// <summary>kappa, the margin's clip.</summary>
    public double Kappa { get; init; } = 2;

    /// <summary>lambda, the weight of (lambda/2) ||delta||^2.</summary>
    public double Penalty { get; init; } = 0.05;

    public string? DataDirectory { get; init; }

    /// <summary>adversarial: the data set whose test images are perturbed (<see cref="DataSetRegistry"/>), as <c>train --dataset</c>.</summary>
    public string DataSet { get; init; } = DataSetRegistry.Default;

    /// <summary>
    /// One process only: evaluate the K points node by node in one batched call per node (<see cref="BatchedChainOracle"/>)
    /// instead of micro-batch by micro-batch; same clock, same numbers up to float rounding, much faster.
    /// </summary>
    public bool Batched { get; init; }

    /// <summary>Monitor f by a forward pass over the ranks even where a closed form exists (to exercise that path).</summary>
    public bool MonitorByForwardPass { get; init; }

    /// <summary>Evenly spaced iterations at which the console tables show a row.</summary>
    public int Checkpoints { get; init; } = 10;

    public void Validate(int ranks)
    {
        if (!Problems.Contains(Problem))
        {
            throw new InputException($"unknown problem '{Problem}' (known: {string.Join(", ", Problems)})");
        }

        if (Depth < 1)
        {
            throw new InputException($"--delta {Depth}: the depth Delta of the chain must be >= 1");
        }

        foreach (var k in Samples)
        {
            if (k < 1)
            {
                throw new InputException($"--samples {k}: PPRS needs K >= 1 perturbed copies per iteration");
            }
        }

        if (Iterations < 0 || Budget is < 1)
        {
            throw new InputException($"--iterations must be >= 0 and --budget >= 1 time units; got {Iterations}, {Budget}");
        }

        if (Run.Count == 0 || Run.Any(m => !Methods.Contains(m)))
        {
            throw new InputException($"--method: some of {string.Join(", ", Methods)}, or all");
        }

        foreach (var (name, value) in new[] { ("--gamma", Gamma), ("--step", Step), ("--pprs-step", PprsStep) })
        {
            if (value is { } v && (!(v > 0) || !double.IsFinite(v)))
            {
                throw new InputException($"{name} {v.ToString(CultureInfo.InvariantCulture)} must be finite and > 0");
            }
        }

        if (Terms < 1 || (Problem == "adversarial" && Images % Terms != 0))
        {
            throw new InputException(Terms < 1
                ? $"--terms {Terms}: a finite sum needs m >= 1 terms"
                : $"--terms {Terms}: the adversarial problem splits its --images {Images} into m equal groups, so m must divide {Images}");
        }

        if (Batched && Schedule != ChainSchedule.Pipelined)
        {
            throw new InputException("--schedule one-at-a-time is a schedule of the pipelined oracle; --batched has none");
        }

        if (Dimension is < 1)
        {
            throw new InputException($"--dimension {Dimension} must be >= 1");
        }

        DataSetRegistry.Validate(DataSet, DataDirectory);

        if (Lipschitz is { } lip && (!(lip > 0) || !double.IsFinite(lip)))
        {
            throw new InputException($"--lipschitz {lip.ToString(CultureInfo.InvariantCulture)} must be finite and > 0");
        }

        if (Precision is { } eps && (!(eps > 0) || !double.IsFinite(eps)))
        {
            throw new InputException($"--precision {eps.ToString(CultureInfo.InvariantCulture)} must be finite and > 0");
        }

        if (StationaritySamples < 1)
        {
            throw new InputException($"--stationarity-samples {StationaritySamples} must be >= 1");
        }

        if (Images < 1 || Checkpoints < 1)
        {
            throw new InputException($"--images and --checkpoints must be >= 1; got {Images}, {Checkpoints}");
        }

        if (Batched && ranks > 1)
        {
            throw new InputException($"--batched evaluates the chain in one process; run it on one rank, not {ranks}");
        }

        if (ranks > Depth)
        {
            throw new InputException(
                $"{ranks} ranks for a chain of Delta = {Depth} nodes: every rank runs at least one node, so use at most {Depth} ranks (or a larger --delta)");
        }
    }
}

/// <summary>One point of a run: after <paramref name="Iteration"/> iterations, the time units, f at the reported iterate and the wall time (monitoring excluded).</summary>
internal sealed record PprsCurvePoint(int Iteration, long TimeUnits, double Value, double WallSeconds);

/// <summary>One method's run: its parameters, cost per iteration, and curve.</summary>
internal sealed record PprsMethodRun(
    string Method,
    string Label,
    int Samples,
    int Iterations,
    double Gamma,
    double StepSize,
    long TimeUnitsPerIteration,
    double FinalValue,
    double BestValue,
    double WallSeconds,
    double ComputeSeconds,
    double CommunicationSeconds,
    IReadOnlyList<PprsCurvePoint> Curve)
{
    /// <summary>Oracle calls (gradient evaluations) of the run.</summary>
    public long Calls { get; init; }

    /// <summary>The pipelined oracle's node forward operations, per rank (K m x its nodes per call); empty for --batched.</summary>
    public IReadOnlyList<long> ForwardOperationsPerRank { get; init; } = [];

    /// <summary>The same for backward operations.</summary>
    public IReadOnlyList<long> BackwardOperationsPerRank { get; init; } = [];

    /// <summary>Non-convex PPRS: the stationarity the supplement bounds, measured, and its bounds.</summary>
    public NonConvexStationarity? Stationarity { get; init; }
}

/// <summary>
/// What non-convex PPRS reports (supplement Eqs. 19-22): for the precision eps, radius factor a and Goldstein radius
/// r = a sqrt(d) gamma, estimated from M perturbations per iterate, with L and D the problem's: min_t ||grad f^gamma||^2
/// and Eq. 19's bound on it, min_t ||v_t|| and Eq. 22's bound, the T and K of Eq. 23 for eps, and ||v_t|| per iterate.
/// </summary>
internal sealed record NonConvexStationarity(double Precision, double RadiusFactor, double GoldsteinRadius, int MonitorSamples,
    double Lipschitz, double Gap, double MinSmoothedGradientSquared, double Eq19Bound, double MinGoldsteinNorm, double Eq22Bound,
    int Eq23Iterations, int Eq23Samples, IReadOnlyList<double> GoldsteinNorms);

/// <summary>What <c>mpipipe pprs --output</c> writes.</summary>
internal sealed record PprsResult(
    string Problem,
    string Description,
    int Depth,
    int Dimension,
    int Ranks,
    IReadOnlyList<string> NodesPerRank,
    double? MinimumValue,
    IReadOnlyDictionary<string, string> Options,
    IReadOnlyList<PprsMethodRun> Runs)
{
    /// <summary>One row per curve point: problem, delta, method, label, samples, gamma, step, iteration, time_units, value, wall_seconds.</summary>
    public string ToCsv()
    {
        var text = new StringBuilder("problem,delta,method,label,samples,gamma,step,iteration,time_units,value,wall_seconds\n");
        foreach (var run in Runs)
        {
            foreach (var p in run.Curve)
            {
                text.Append(CultureInfo.InvariantCulture,
                    $"{Problem},{Depth},{run.Method},{run.Label},{run.Samples},{R(run.Gamma)},{R(run.StepSize)},{p.Iteration},{p.TimeUnits},{R(p.Value)},{p.WallSeconds:F4}\n");
            }
        }

        return text.ToString();
    }

    /// <summary>f vs time units, one line per run.</summary>
    public SvgPlot ToPlot(string? title = null)
    {
        var steps = Runs.Select(r => r.StepSize).Distinct().ToList();
        var stepText = steps.Count == 1 ? $", eta = {steps[0].ToString("G4", CultureInfo.InvariantCulture)}" : "";
        var plot = new SvgPlot(title ?? $"{Problem}, Delta = {Depth}{stepText}: f vs time units", "time units (one node forward or backward = 1)", "f (reported iterate)");
        foreach (var run in Runs)
        {
            plot.Add(run.Label, run.Curve.Select(p => ((double)p.TimeUnits, p.Value)));
        }

        return plot;
    }

    /// <summary>
    /// Per run, how fast and how steadily f went down, relative to this comparison: every run starts from the same
    /// f_0, and f_best is the least f any run reached. t_50 and t_90 are the first time units at which a run's f is
    /// within 50% and 10% of the way from f_0 to f_best (null: never); the total increase sums f_(t+1) - f_t over the
    /// iterations where f went up (0 for a monotone run: a measure of oscillation).
    /// </summary>
    public IReadOnlyList<PprsRunSummary> Summaries()
    {
        var all = Runs.SelectMany(r => r.Curve).ToList();
        if (all.Count == 0)
        {
            return [];
        }

        var start = Runs[0].Curve[0].Value;
        var best = all.Min(p => p.Value);
        return Runs.Select(run =>
        {
            var curve = run.Curve;
            var increase = 0.0;
            for (var i = 1; i < curve.Count; i++)
            {
                increase += Math.Max(0, curve[i].Value - curve[i - 1].Value);
            }

            return new PprsRunSummary(run.Label, run.Iterations, curve[^1].TimeUnits, run.FinalValue, run.BestValue,
                TimeToReach(curve, start - 0.5 * (start - best)), TimeToReach(curve, start - 0.9 * (start - best)), increase, run.WallSeconds);
        }).ToArray();

        static long? TimeToReach(IReadOnlyList<PprsCurvePoint> curve, double level) =>
            curve.FirstOrDefault(p => p.Value <= level)?.TimeUnits;
    }

    /// <summary><see cref="Summaries"/> as a Markdown table.</summary>
    public string SummaryTable()
    {
        var table = new MarkdownTable("run", "T", "time units", "final f", "best f", "t to 50%", "t to 90%", "total increase", "wall s");
        foreach (var s in Summaries())
        {
            table.AddRow(s.Label, s.Iterations.ToString(CultureInfo.InvariantCulture), s.TimeUnits.ToString(CultureInfo.InvariantCulture),
                G(s.FinalValue), G(s.BestValue), s.TimeToHalf?.ToString(CultureInfo.InvariantCulture) ?? "never",
                s.TimeToNinety?.ToString(CultureInfo.InvariantCulture) ?? "never", G(s.TotalIncrease),
                s.WallSeconds.ToString("F2", CultureInfo.InvariantCulture));
        }

        return table.ToString();
    }

    public static string R(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string G(double value) => value.ToString("G4", CultureInfo.InvariantCulture);
}

/// <summary>One row of <see cref="PprsResult.Summaries"/>.</summary>
internal sealed record PprsRunSummary(string Label, int Iterations, long TimeUnits, double FinalValue, double BestValue,
    long? TimeToHalf, long? TimeToNinety, double TotalIncrease, double WallSeconds);

/// <summary>
/// A problem for <c>mpipipe pprs</c>: f as a chain, where to start, and the constants the default parameters need.
/// </summary>
/// <param name="owner">What the chain's nodes belong to, disposed with the problem.</param>
internal sealed class PprsProblem(string name, string description, Chain chain, Func<double[], double>? closedForm, double? minimum,
    double lipschitz, double radius, double defaultStep, IDisposable? owner, IReadOnlyList<Chain>? terms = null) : IDisposable
{
    public string Name { get; } = name;

    /// <summary>D, a bound on f(theta_0) - min f for non-convex PPRS's bounds (Eq. 19; 0 where unused).</summary>
    public double Gap { get; init; }

    /// <summary>f_1 .. f_m of the finite sum (default: the one chain).</summary>
    public IReadOnlyList<Chain> Terms { get; } = terms ?? [chain];

    public string Description { get; } = description;

    public Chain Chain { get; } = chain;

    public int Dimension => Chain.InputDimension;

    /// <summary>f in closed form (the worst-case functions), for <see cref="IGradientOracle.Monitor"/>.</summary>
    public Func<double[], double>? ClosedForm { get; } = closedForm;

    public double? MinimumValue { get; } = minimum;

    /// <summary>L and R of Eq. 13's defaults.</summary>
    public double Lipschitz { get; } = lipschitz;

    public double Radius { get; } = radius;

    /// <summary>eta of GD and AGD when --step is not given (0: the subgradient step R/(L sqrt T)).</summary>
    public double DefaultStep { get; } = defaultStep;

    /// <summary>Whether PPRS's eta defaults to GD's (smooth and adversarial problems) rather than gamma/L.</summary>
    public bool PprsStepIsGdStep => Name is "smooth" or "nonconvex" or "adversarial";

    /// <summary>The adversarial problem's default gamma (the worst cases use Eq. 13).</summary>
    public const double AdversarialGamma = 0.05;

    /// <summary>The adversarial problem's default eta.</summary>
    public const double AdversarialStep = 0.05;

    public static PprsProblem Create(PprsOptions o)
    {
        var d = o.Dimension ?? PprsOptions.DefaultDimension;
        switch (o.Problem)
        {
            case "smooth":
            {
                // Eq. 1 with k = (d - 1)/2, beta = 1: GD and AGD with eta = 1/beta (Lemma 1); f^gamma is beta-smooth too.
                var f = new SmoothConvexWorstCase(d, (d - 1) / 2, 1);
                var chain = f.ToChain(o.Depth);
                return new PprsProblem("smooth", $"Eq. 1 (smooth convex), d = {d}, k = {f.K}, beta = 1; f* = {PprsResult.R(f.MinimumValue)} (Eq. 2)",
                    chain, x => f.Value(x), f.MinimumValue, 1, f.DistanceToMinimizer, 1 / f.Beta, null, Identical(chain, o.Terms));
            }

            case "nonconvex":
            {
                // Eq. 6 with k = (d - 1)/2; its gradient is 152-Lipschitz (Carmon et al.): eta = 1/152 for GD and AGD.
                // Non-convex PPRS needs L, f's own Lipschitz constant, and D >= f(0) - min f: see NonConvexWorstCase.
                var f = new NonConvexWorstCase(d, (d - 1) / 2);
                var chain = f.ToChain(o.Depth);
                return new PprsProblem("nonconvex", $"Eq. 6 (smooth non-convex), d = {d}, k = {f.K}; L = {PprsResult.R(f.Lipschitz)}, D = {PprsResult.R(f.GapFromZero)}",
                    chain, x => f.Value(x), null, f.Lipschitz, 1, 1 / NonConvexWorstCase.GradientLipschitz, null, Identical(chain, o.Terms))
                {
                    Gap = f.GapFromZero,
                };
            }

            case "nonsmooth":
            {
                // Eq. 8 with k = (d - 1)/4, l = d - 2k - 1 and the weights of supplement line 58 for L = R = 1.
                var f = NonSmooth(d, 1, 1);
                var chain = f.ToChain(o.Depth);
                return new PprsProblem("nonsmooth", $"Eq. 8 (non-smooth convex), d = {d}, k = {f.K}, l = {f.L}, L = R = 1; f* = {PprsResult.R(f.MinimumValue)}",
                    chain, x => f.Value(x), f.MinimumValue, 1, f.DistanceToMinimizer, 0, null, Identical(chain, o.Terms));
            }

            default:
                return Adversarial(o);
        }
    }

    /// <summary>m identical terms: a worst case has no data, so its finite sum is f m times (the clock is what m changes).</summary>
    private static Chain[] Identical(Chain chain, int terms) => Enumerable.Repeat(chain, terms).ToArray();

    /// <summary>
    /// Eq. 8 on R^d with k = max(1, floor((d - 1)/4)), l = d - 2k - 1 and supplement line 58's weights for L and R:
    /// gamma = L/(9 sqrt k), delta = L/9, beta = gamma (1 + 1/sqrt(2k)), alpha = (L/(9R)) sqrt(1/k^2 + 1/l) (so that
    /// ||theta*|| = R, see <see cref="NonSmoothWorstCase.ForHorizon"/>).
    /// </summary>
    public static NonSmoothWorstCase NonSmooth(int dimension, double lipschitz, double radius)
    {
        if (dimension < 4)
        {
            throw new InputException($"--dimension {dimension}: the non-smooth function (Eq. 8) needs d >= 4 (2k + l < d with k, l >= 1)");
        }

        var k = Math.Max(1, (dimension - 1) / 4);
        var l = dimension - 2 * k - 1;
        var gamma = lipschitz / (9 * Math.Sqrt(k));
        var delta = lipschitz / 9;
        var beta = gamma * (1 + 1 / Math.Sqrt(2 * k));
        var alpha = lipschitz / (9 * radius) * Math.Sqrt(1.0 / ((double)k * k) + 1.0 / l);
        return new NonSmoothWorstCase(dimension, k, l, gamma, delta, beta, alpha);
    }

    private static PprsProblem Adversarial(PprsOptions o)
    {
        var test = DataSetRegistry.Load(o.DataSet, o.DataDirectory, train: false);
        var layers = ModelZoo.Build(o.Model, test.Geometry);
        float[] parameters = [];
        var hasParameters = o.ParametersPath is not null;
        if (o.ParametersPath is { } path)
        {
            if (!File.Exists(path))
            {
                throw new InputException($"--parameters {path}: file not found (train the model with `mpipipe train --model {o.Model} --save-parameters {path}`)");
            }

            var bytes = File.ReadAllBytes(path);
            if (bytes.Length % sizeof(float) != 0)
            {
                throw new InputException($"--parameters {path}: {bytes.Length} bytes is not a whole number of float32 values");
            }

            parameters = MemoryMarshal.Cast<byte, float>(bytes).ToArray();
        }

        var (images, labels, accuracy) = PickImages(layers, test, parameters, hasParameters, o.Images, o.Seed);

        // m terms: the B images in m groups of B/m, one chain each; the mean of their f_i is f over the B images.
        var perTerm = o.Images / o.Terms;
        var size = test.SampleSize;
        var chains = Enumerable.Range(0, o.Terms).Select(i => AdversarialChain.Create(layers, test.SampleShape, o.Depth, o.Model, parameters,
            hasParameters, images[(i * perTerm * size)..((i + 1) * perTerm * size)], labels[(i * perTerm)..((i + 1) * perTerm)],
            o.Kappa, o.Penalty, o.Seed)).ToArray();
        var chain = chains[0];
        var groups = RunLengths(chain.LayerGroups.Select(g => g.Count));
        var description =
            $"adversarial perturbation shared by {o.Images} Fashion-MNIST test images of {o.Model} " +
            (hasParameters ? $"(trained: {o.ParametersPath}, {accuracy:P1} on the first 1000 test images)" : "(untrained: initialized from the seed)") +
            $"; f(delta) = mean_i max(z_y - max_(j!=y) z_j, -kappa) + (lambda/2)||delta||^2, kappa = {PprsResult.R(o.Kappa)}, lambda = {PprsResult.R(o.Penalty)}; " +
            $"{chain.Units} parametric layers in Delta = {o.Depth} nodes (layers per node: {groups})" +
            (o.Terms > 1 ? $"; a finite sum of m = {o.Terms} terms of {perTerm} images each" : "");
        var terms = chains.Select(c => c.Chain).ToArray();
        var lipschitz = o.Lipschitz ?? EstimateLipschitz(terms, o.Gamma ?? AdversarialGamma, o.Seed);
        description += o.Lipschitz is null
            ? $"; L estimated as {PprsResult.R(lipschitz)} (the largest ||grad f|| at delta = 0 and 64 points gamma X_j)"
            : $"; L = {PprsResult.R(lipschitz)} (given)";
        return new PprsProblem("adversarial", description, chain.Chain, null, null, lipschitz, 1, AdversarialStep, new Owners(chains), terms);
    }

    /// <summary>
    /// An estimate of the adversarial f's Lipschitz constant L, which it does not state: the largest ||grad f|| at
    /// delta = 0 and at 64 points gamma X_j around it (X_j from the stream (seed, -1000, j), which no run draws). A
    /// local estimate from below of sup ||grad f||, so gamma/L errs on the large side. Every rank computes the same.
    /// </summary>
    public static double EstimateLipschitz(IReadOnlyList<Chain> terms, double gamma, long seed)
    {
        var d = terms[0].InputDimension;
        var point = new double[d];
        var gradient = new double[d];
        var largest = 0.0;
        for (var j = -1; j < 64; j++)
        {
            if (j >= 0)
            {
                GaussianPerturbation.Draw(seed, -1000, j, point);
                for (var i = 0; i < d; i++)
                {
                    point[i] *= gamma;
                }
            }

            FiniteSum.Gradient(terms, point, gradient);
            largest = Math.Max(largest, Math.Sqrt(gradient.Sum(g => g * g)));
        }

        return largest;
    }

    /// <summary>"2, 1 x 198, 2" for 2, 1, 1, ..., 1, 2.</summary>
    private static string RunLengths(IEnumerable<int> values)
    {
        var runs = new List<(int Value, int Count)>();
        foreach (var v in values)
        {
            if (runs.Count > 0 && runs[^1].Value == v)
            {
                runs[^1] = (v, runs[^1].Count + 1);
            }
            else
            {
                runs.Add((v, 1));
            }
        }

        return string.Join(", ", runs.Select(r => r.Count == 1 ? $"{r.Value}" : $"{r.Value} x {r.Count}"));
    }

    /// <summary>
    /// The first B test images the trained model classifies correctly (an adversarial perturbation has something to
    /// undo), or the first B when the model is untrained; and the model's accuracy on the first 1000 test images.
    /// </summary>
    private static (float[] Images, int[] Labels, double Accuracy) PickImages(IReadOnlyList<LayerSpec> layers, Dataset test,
        float[] parameters, bool hasParameters, int count, long seed)
    {
        var size = test.SampleSize;
        var chosen = new List<int>();
        var accuracy = double.NaN;
        if (hasParameters)
        {
            using var model = Stage.Create(layers, test.SampleShape, "cpu", seed);
            if (model.ParameterCount != parameters.Length)
            {
                throw new InputException(
                    $"the parameter file holds {parameters.Length} values but the model has {model.ParameterCount}: was it trained with this --model?");
            }

            parameters.CopyTo(model.Parameters);
            model.PushParameters();
            var n = Math.Min(1000, test.Count);
            var logits = new float[n * model.SampleOutputSize];
            model.Infer(test.Images.AsSpan(0, n * size), n, logits);
            var correct = 0;
            for (var i = 0; i < n; i++)
            {
                var z = logits.AsSpan(i * model.SampleOutputSize, model.SampleOutputSize);
                var predicted = 0;
                for (var j = 1; j < z.Length; j++)
                {
                    predicted = z[j] > z[predicted] ? j : predicted;
                }

                if (predicted == test.Labels[i])
                {
                    correct++;
                    if (chosen.Count < count)
                    {
                        chosen.Add(i);
                    }
                }
            }

            accuracy = (double)correct / n;
        }
        else
        {
            chosen.AddRange(Enumerable.Range(0, Math.Min(count, test.Count)));
        }

        if (chosen.Count < count)
        {
            throw new InputException($"--images {count}: only {chosen.Count} of the first 1000 test images are classified correctly");
        }

        var images = new float[count * size];
        var labels = new int[count];
        for (var i = 0; i < count; i++)
        {
            test.Sample(chosen[i]).CopyTo(images.AsSpan(i * size, size));
            labels[i] = test.Labels[chosen[i]];
        }

        return (images, labels, accuracy);
    }

    public void Dispose() => owner?.Dispose();

    private sealed class Owners(IEnumerable<IDisposable> owners) : IDisposable
    {
        public void Dispose()
        {
            foreach (var o in owners)
            {
                o.Dispose();
            }
        }
    }
}

/// <summary>
/// Runs GD, AGD and PPRS (one run per K) on a <see cref="PprsProblem"/> over the ranks of <c>world</c> through an
/// <see cref="MpiChainOracle"/> (one rank: the same code, no messages). Every rank runs every optimizer on the same
/// iterates; the results are the same on every rank but wall times.
/// </summary>
internal static class PprsExperiment
{
    public static PprsResult Run(Communicator world, PprsOptions o, PprsProblem problem, Action<PprsMethodRun>? completed = null)
    {
        o.Validate(world.Size);
        var ranges = MpiChainOracle.EvenRanges(problem.Chain.Depth, world.Size);
        var d = problem.Dimension;
        var start = new double[d];
        var runs = new List<PprsMethodRun>();
        foreach (var method in PprsOptions.Methods.Where(o.Run.Contains))
        {
            IReadOnlyList<int> samplesList = method == "pprs" ? (o.Samples.Count > 0 ? o.Samples : [0]) : [1];
            foreach (var requested in samplesList)
            {
                IGradientOracle oracle = o.Batched
                    ? new BatchedChainOracle(problem.Terms)
                    : new MpiChainOracle(world, problem.Terms, ranges, o.MonitorByForwardPass ? null : problem.ClosedForm, o.Schedule);
                var timed = new TimedOracle(oracle);
                PprsMethodRun run;
                switch (method)
                {
                    case "gd" or "agd":
                    {
                        var T = o.Budget is { } budget ? TimeUnits.IterationsWithin(budget, 1, o.Depth, o.Terms) : o.Iterations;
                        var eta = o.Step ?? GdStep(problem, T);
                        var trace = method == "gd"
                            ? GradientDescent.WithStepSize(eta).Run(timed, start, T)
                            : new AcceleratedGradientDescent(eta).Run(timed, start, T);
                        run = Summarize(method, method.ToUpperInvariant(), 1, T, 0, eta, o.Depth, trace, timed, oracle);
                        break;
                    }

                    case "pprs" when problem.Name == "nonconvex":
                    {
                        run = RunNonConvex(o, problem, requested, timed, oracle, start);
                        break;
                    }

                    default:
                    {
                        var parameters = PprsParametersFor(o, problem, requested);
                        var trace = new Pprs(parameters, o.Seed).Run(timed, start);
                        run = Summarize("pprs", $"PPRS K = {parameters.Samples}", parameters.Samples, parameters.Iterations,
                            parameters.Gamma, parameters.StepSize, o.Depth, trace, timed, oracle);
                        break;
                    }
                }

                if (oracle is MpiChainOracle mpi)
                {
                    run = run with { Calls = mpi.Calls, ForwardOperationsPerRank = PerRank(world, mpi.ForwardOperations), BackwardOperationsPerRank = PerRank(world, mpi.BackwardOperations) };
                }

                runs.Add(run);
                completed?.Invoke(run);
            }
        }

        var options = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["problem"] = o.Problem,
            ["delta"] = o.Depth.ToString(CultureInfo.InvariantCulture),
            ["iterations"] = o.Iterations.ToString(CultureInfo.InvariantCulture),
            ["budget"] = o.Budget?.ToString(CultureInfo.InvariantCulture) ?? "",
            ["samples"] = string.Join(",", o.Samples),
            ["terms"] = o.Terms.ToString(CultureInfo.InvariantCulture),
            ["schedule"] = o.Schedule == ChainSchedule.Pipelined ? "pipelined" : "one-at-a-time",
            ["seed"] = o.Seed.ToString(CultureInfo.InvariantCulture),
        };
        if (o.TheoryStep)
        {
            options["pprs step"] = "gamma/L";
        }

        options["oracle"] = o.Batched ? "batched (one process)" : $"pipelined over {world.Size} rank(s)";
        if (o.Problem == "adversarial")
        {
            options["model"] = o.Model;
            options["images"] = o.Images.ToString(CultureInfo.InvariantCulture);
            options["kappa"] = PprsResult.R(o.Kappa);
            options["lambda"] = PprsResult.R(o.Penalty);
        }

        return new PprsResult(problem.Name, problem.Description, o.Depth, d, world.Size,
            ranges.Select(r => r.ToString()).ToArray(), problem.MinimumValue, options, runs);
    }

    /// <summary>
    /// T, gamma, K, eta for one PPRS run. <paramref name="requested"/> K (0: Eq. 13's). T: --iterations, or the most
    /// iterations within --budget (with Eq. 13's K when K is not given, <see cref="PprsParameters.IterationsWithin"/>).
    /// gamma: --gamma, else Eq. 13 (adversarial: <see cref="PprsProblem.AdversarialGamma"/>). eta: --pprs-step, else
    /// gamma/L (non-smooth, Eq. 13 / line 63; any problem with --theory-step) or GD's step (smooth problems, where
    /// f^gamma keeps f's smoothness; the adversarial problem, to compare at equal steps).
    /// </summary>
    public static PprsParameters PprsParametersFor(PprsOptions o, PprsProblem problem, int requested)
    {
        var d = problem.Dimension;
        int T;
        if (o.Budget is { } budget)
        {
            T = requested > 0 ? TimeUnits.IterationsWithin(budget, requested, o.Depth, o.Terms) : PprsParameters.IterationsWithin(budget, d, o.Depth, o.Terms);
        }
        else
        {
            T = o.Iterations;
        }

        var defaults = PprsParameters.Defaults(problem.Lipschitz, problem.Radius, d, T); // Eq. 13
        var gamma = o.Gamma ?? (problem.Name == "adversarial" ? PprsProblem.AdversarialGamma : defaults.Gamma);
        var samples = requested > 0 ? requested : defaults.Samples;
        var eta = o.PprsStep
            ?? (problem.PprsStepIsGdStep && !o.TheoryStep ? o.Step ?? problem.DefaultStep : gamma / problem.Lipschitz);
        return new PprsParameters(T, gamma, samples, eta);
    }

    /// <summary>
    /// Non-convex PPRS (<see cref="NonConvexPprs"/>): GD on f^gamma with eta = gamma/L. T: --iterations or the budget's;
    /// gamma: --gamma, else Eq. 22's choice for r = 1 and eps = --precision; K: the requested K, else ceil(18 L^2/eps^2);
    /// eta: --pprs-step, else gamma/L. The stationarity is estimated after every iteration off the clock, and set
    /// against Eq. 19 and Eq. 22 with the problem's L and D.
    /// </summary>
    private static PprsMethodRun RunNonConvex(PprsOptions o, PprsProblem problem, int requested, TimedOracle timed, IGradientOracle oracle,
        double[] start)
    {
        var d = problem.Dimension;
        var L = problem.Lipschitz;
        var eps = o.Precision ?? L / 2;
        var defaults = NonConvexPprsParameters.Defaults(L, 1, eps, problem.Gap, d); // Eq. 22-23
        var samples = requested > 0 ? requested : defaults.Samples;
        var T = o.Budget is { } budget ? TimeUnits.IterationsWithin(budget, samples, o.Depth, o.Terms) : o.Iterations;
        var gamma = o.Gamma ?? defaults.Gamma;
        var parameters = new NonConvexPprsParameters(T, gamma, samples, o.PprsStep ?? gamma / L);
        var a = NonConvexPprsParameters.RadiusFactor(L, eps, d);
        var terms = problem.Terms;
        var result = new NonConvexPprs(parameters, o.Seed, o.StationaritySamples, a).Run(timed, start, (x, g) => FiniteSum.Gradient(terms, x, g));
        var run = Summarize("pprs", $"PPRS (GD on f^gamma) K = {samples}", samples, T, gamma, parameters.StepSize, o.Depth, result.Trace,
            timed, oracle);
        var stationarity = new NonConvexStationarity(eps, a, a * Math.Sqrt(d) * gamma, o.StationaritySamples, L, problem.Gap,
            result.MinSmoothedGradientSquared, NonConvexBounds.SmoothedGradientSquared(L, problem.Gap, gamma, d, T, samples),
            result.MinGoldsteinNorm, NonConvexBounds.GoldsteinNorm(L, problem.Gap, gamma, d, T, samples, a), defaults.Iterations, defaults.Samples,
            result.Stationarity.Select(r => r.GoldsteinNorm).ToArray());
        return run with { Stationarity = stationarity };
    }

    /// <summary>Each rank's count, on every rank (a sum of one non-zero slot per rank).</summary>
    private static long[] PerRank(Communicator world, long count)
    {
        var all = new long[world.Size];
        all[world.Rank] = count;
        world.Allreduce<long>(all, ReduceOp.Sum);
        return all;
    }

    private static double GdStep(PprsProblem problem, int iterations) =>
        problem.DefaultStep > 0 ? problem.DefaultStep : StepSizes.Subgradient(problem.Radius, problem.Lipschitz, Math.Max(1, iterations));

    private static PprsMethodRun Summarize(string method, string label, int samples, int iterations, double gamma, double eta, int depth,
        OptimizationTrace trace, TimedOracle timed, IGradientOracle oracle)
    {
        var curve = trace.Records.Select((r, i) => new PprsCurvePoint(r.Iteration, r.ElapsedTimeUnits, r.Value, timed.WallSeconds[i])).ToArray();
        var mpi = oracle as MpiChainOracle;
        // Per iteration as measured by the oracle's clock (every iteration costs the same); the formula for T = 0.
        var perIteration = iterations > 0 ? trace.Final.ElapsedTimeUnits / iterations : TimeUnits.PipelinedEvaluation(samples, depth, oracle.Terms);
        return new PprsMethodRun(method, label, samples, iterations, gamma, eta, perIteration,
            trace.Final.Value, trace.BestValue, curve[^1].WallSeconds, mpi?.ComputeTime.TotalSeconds ?? double.NaN,
            mpi?.CommunicationTime.TotalSeconds ?? double.NaN, curve);
    }

    /// <summary>
    /// Passes calls through and notes, at each <see cref="Monitor"/> call (one per optimizer record), the wall time
    /// since the oracle was made, less the time spent monitoring.
    /// </summary>
    private sealed class TimedOracle(IGradientOracle inner) : IGradientOracle
    {
        private readonly Stopwatch clock = Stopwatch.StartNew();

        public List<double> WallSeconds { get; } = [];

        public int Dimension => inner.Dimension;

        public int Depth => inner.Depth;

        public int Terms => inner.Terms;

        public long ElapsedTimeUnits => inner.ElapsedTimeUnits;

        public void Evaluate(ReadOnlySpan<double> points, int count, Span<double> values, Span<double> gradients) =>
            inner.Evaluate(points, count, values, gradients);

        public double Monitor(ReadOnlySpan<double> theta)
        {
            clock.Stop();
            WallSeconds.Add(clock.Elapsed.TotalSeconds);
            var value = inner.Monitor(theta);
            clock.Start();
            return value;
        }
    }
}
