namespace MpiPipeline.Scaling;

/// <summary>A per-step cost linear in the per-rank batch b: <see cref="Fixed"/> + b * <see cref="PerSample"/> seconds.</summary>
internal sealed record LinearCost(double Fixed, double PerSample)
{
    public double At(double batch) => Fixed + batch * PerSample;

    /// <summary>
    /// Fits (fixed, per-sample) to (per-rank batch, seconds) pairs, relative least squares, non-negative. With one batch
    /// size only, the fixed part cannot be told apart: the whole cost is taken as per-sample.
    /// </summary>
    public static LinearCost Fit(IReadOnlyList<(double Batch, double Seconds)> points)
    {
        var usable = points.Where(p => p.Seconds > 0 && p.Batch > 0).ToList();
        if (usable.Count == 0)
        {
            return new LinearCost(0, 0);
        }

        if (usable.Select(p => p.Batch).Distinct().Count() < 2)
        {
            return new LinearCost(0, ScalingMath.Median(usable.Select(p => p.Seconds / p.Batch)));
        }

        var theta = LeastSquares.FitRelative([.. usable.Select(p => new[] { 1.0, p.Batch })], [.. usable.Select(p => p.Seconds)]);
        return new LinearCost(theta[0], theta[1]);
    }
}

/// <summary>One measured point against the model: step time and communication per step, measured and predicted.</summary>
internal sealed record ModelCheck(
    ScalingMode Mode, int Ranks, double PerRankBatch, double MeasuredStep, double PredictedStep,
    double MeasuredCommunication, double PredictedCommunication, bool Oversubscribed)
{
    public double StepError => (PredictedStep - MeasuredStep) / MeasuredStep;

    /// <summary>Relative error of the communication time; NaN where nothing was communicated (one rank).</summary>
    public double CommunicationError => MeasuredCommunication > 0 ? (PredictedCommunication - MeasuredCommunication) / MeasuredCommunication : double.NaN;
}

/// <summary>One benchmark timing against its fit.</summary>
internal sealed record FitCheck(string Op, int Ranks, long Bytes, double Measured, double Predicted)
{
    public double Error => (Predicted - Measured) / Measured;
}

/// <summary>The projected step of one algorithm at one rank count: seconds per step and parallel efficiency.</summary>
internal sealed record ProjectedStep(double StepSeconds, double CommunicationSeconds, double Efficiency);

/// <summary>All three algorithms at one rank count.</summary>
/// <param name="PerRankBatch">Samples per rank per step (strong scaling: global batch / n; may be below 1).</param>
/// <param name="BandwidthBound">The Allreduce bandwidth lower bound 2(n-1)/n * S / B.</param>
/// <param name="PipelineBubble">The pipeline's idle fraction (p - 1) / (M + p - 1).</param>
internal sealed record Projection(
    ScalingMode Mode, int Ranks, double PerRankBatch, double ComputeSeconds, double OtherSeconds, double BandwidthBound,
    ProjectedStep Psgd, ProjectedStep LocalSgd, ProjectedStep Pipeline, int PipelineMicroBatches, double PipelineBubble);

/// <summary>
/// Step time of data-parallel and pipeline training from a few fitted parameters:
/// <list type="bullet">
/// <item>Allreduce (ring): 2(n-1) alpha + 2(n-1)/n * S * beta, alpha and beta fitted to `bench mpi` Allreduce timings
/// at every benchmarked rank count; its bandwidth bound 2(n-1)/n * S / B with B = 1/beta of the point-to-point fit.</item>
/// <item>Point to point: alpha + S * beta, fitted to ping-pong timings (one way).</item>
/// <item>Compute per step c(b) = c0 + c1 b and the rest of a step o(b) = o0 + o1 b (batch gathering, the loop), b the
/// per-rank batch, fitted to the sweep's runs.</item>
/// </list>
/// PSGD: c(b) + o(b) + AR(n, S). Local SGD (tau): the Allreduce every tau steps, AR(n, S) / tau per step.
/// Pipeline (p stages, d = n/p replicas, M micro-batches of m = b p / M samples; a GPipe/1F1B step is M + p - 1 slots
/// of one micro-batch's forward and backward on one stage, each followed by an activation and a gradient transfer of
/// A m bytes): (M + p - 1) (c1 m / p + 2 (alpha + A m beta)) + c0 + o(b) + AR(d, S / p). The fixed part c0 is not
/// divided among the stages: per-step work such as kernel launches and the optimizer call is assumed not to shrink.
/// Efficiency = T1 / (n T(n)) for strong scaling and T1 / T(n) for weak, T1 = c + o of the same work on one rank.
/// With <see cref="LinkTopology.Shared"/> (every job inside one emulated link) the Allreduce's bandwidth term is that
/// of n ranks sharing one link (see <see cref="AlphaBeta.RingAllreduce"/>), for the fit and for the check against the
/// runs; projections put each rank on a link of its own (<see cref="OnOwnLinks"/>).
/// </summary>
internal sealed record PerformanceModel(
    AlphaBeta Allreduce, AlphaBeta PointToPoint, LinearCost Compute, LinearCost Other, long GradientBytes,
    LinkTopology Topology = LinkTopology.PerRank)
{
    public double Communication(int ranks) => Allreduce.RingAllreduce(ranks, GradientBytes, Topology);

    public double Step(int ranks, double perRankBatch) => Compute.At(perRankBatch) + Other.At(perRankBatch) + Communication(ranks);

    /// <summary>The same model with another network (latency and bandwidth for Allreduce steps and messages alike).</summary>
    public PerformanceModel WithNetwork(double alpha, double bandwidth)
    {
        var network = new AlphaBeta(alpha, 1 / bandwidth);
        return this with { Allreduce = network, PointToPoint = network, Topology = LinkTopology.PerRank };
    }

    /// <summary>
    /// The same parameters with a link per rank: what the measured link would give a cluster whose every node had one
    /// (the shared link of an emulation carries all ranks' traffic, which no cluster of many nodes does).
    /// </summary>
    public PerformanceModel OnOwnLinks() => this with { Topology = LinkTopology.PerRank };

    /// <summary>
    /// Fits the model: Allreduce and point-to-point from the benchmark timings, compute and the rest from the runs, the
    /// gradient size from the runs' Allreduce payload. Null with <paramref name="why"/> when the data cannot support it.
    /// </summary>
    public static PerformanceModel? Fit(
        IReadOnlyList<ScalingRun> runs, IReadOnlyList<TimingSample> allreduce, IReadOnlyList<TimingSample> pingPong, LinkTopology topology, out string why)
    {
        why = "";
        var payload = runs.Where(r => r.PayloadBytes > 0).Select(r => r.PayloadBytes).Distinct().ToList();
        if (payload.Count == 0)
        {
            why = "no run communicated (every run had one rank), so the gradient size is unknown";
            return null;
        }

        if (allreduce.Count < 2)
        {
            why = "fewer than 2 Allreduce timings (run the sweep with the benchmark and a rank count >= 2)";
            return null;
        }

        var allreduceFit = AlphaBeta.FitRingAllreduce(allreduce, topology).Model;
        var p2pFit = pingPong.Count >= 2 ? AlphaBeta.FitPointToPoint(pingPong).Model : allreduceFit;
        var compute = LinearCost.Fit([.. runs.Select(r => ((double)r.PerRankBatch, r.ComputeSeconds))]);
        var other = LinearCost.Fit([.. runs.Select(r => ((double)r.PerRankBatch, r.OtherSeconds))]);
        return new PerformanceModel(allreduceFit, p2pFit, compute, other, payload.Max(), topology);
    }

    /// <summary>The model at every measured point (medians of the repetitions).</summary>
    public IReadOnlyList<ModelCheck> Validate(IEnumerable<ScalingPoint> points) =>
    [
        .. points.Select(p => new ModelCheck(
            p.Mode, p.Ranks, p.PerRankBatch, p.StepSecondsMedian, Step(p.Ranks, p.PerRankBatch),
            p.CommunicationSecondsMedian, Communication(p.Ranks), p.Oversubscribed)),
    ];

    /// <summary>The fits against the timings they were fitted to.</summary>
    public IReadOnlyList<FitCheck> CheckFits(IEnumerable<TimingSample> allreduce, IEnumerable<TimingSample> pingPong) =>
    [
        .. allreduce.Select(s => new FitCheck("allreduce", s.Ranks, s.Bytes, s.Seconds, Allreduce.RingAllreduce(s.Ranks, s.Bytes, Topology))),
        .. pingPong.Select(s => new FitCheck("pingpong", s.Ranks, s.Bytes, s.Seconds, PointToPoint.PointToPoint(s.Bytes))),
    ];

    /// <summary>
    /// Projections at <paramref name="ranks"/>: strong scaling with global batch <paramref name="batch"/>, or weak
    /// scaling with <paramref name="batch"/> samples per rank; local SGD averaging every <paramref name="tau"/> steps;
    /// a pipeline of <paramref name="stages"/> stages and <paramref name="microBatches"/> micro-batches (fewer when a
    /// replica's batch has fewer samples) with <paramref name="activationBytes"/> bytes per sample at each boundary.
    /// </summary>
    public IReadOnlyList<Projection> Project(
        ScalingMode mode, IEnumerable<int> ranks, int batch, int tau, int stages, int microBatches, long activationBytes) =>
    [
        .. ranks.Select(n =>
        {
            var b = mode == ScalingMode.Strong ? (double)batch / n : batch;
            var oneRankBatch = mode == ScalingMode.Strong ? batch : b;
            var t1 = Compute.At(oneRankBatch) + Other.At(oneRankBatch);
            double Efficiency(double step) => mode == ScalingMode.Strong ? t1 / (n * step) : t1 / step;
            var local = Compute.At(b) + Other.At(b);

            var ar = Communication(n);
            var psgd = new ProjectedStep(local + ar, ar, Efficiency(local + ar));
            var localSgd = new ProjectedStep(local + ar / tau, ar / tau, Efficiency(local + ar / tau));

            var replicas = n / stages;
            var replicaBatch = b * stages;
            var m = Math.Max(1, Math.Min(microBatches, (int)Math.Floor(replicaBatch)));
            var microBatch = replicaBatch / m;
            var slots = m + stages - 1;
            var transfer = 2 * PointToPoint.PointToPoint(activationBytes * microBatch);
            var pipelineCommunication = slots * transfer + Allreduce.RingAllreduce(replicas, (double)GradientBytes / stages, Topology);
            var pipelineStep = slots * Compute.PerSample * microBatch / stages + Compute.Fixed + Other.At(b) + pipelineCommunication;
            var pipeline = new ProjectedStep(pipelineStep, pipelineCommunication, Efficiency(pipelineStep));

            return new Projection(mode, n, b, Compute.At(b), Other.At(b), PointToPoint.AllreduceBandwidthBound(n, GradientBytes),
                psgd, localSgd, pipeline, m, (stages - 1.0) / slots);
        }),
    ];
}
