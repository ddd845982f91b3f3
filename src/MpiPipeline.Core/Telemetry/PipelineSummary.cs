namespace MpiPipeline.Telemetry;

/// <summary>
/// What a pipelined run (<c>--algo pipeline</c>) reports beyond the common results: its grid and partition, the
/// activations each stage held, per-stage compute times and the time per mini-batch against the ideal.
/// Lists indexed by stage have S entries; "per micro-batch" times are means over the replicas and over the
/// mini-batches after the first (the first warms libtorch up), or over all when there is only one.
/// </summary>
/// <param name="Schedule">"gpipe" or "1f1b".</param>
/// <param name="Stages">S.</param>
/// <param name="Replicas">D, data-parallel replicas per stage (world size S * D).</param>
/// <param name="MicroBatches">M, micro-batches per mini-batch.</param>
/// <param name="MicroBatchSize">Samples per micro-batch: global batch / (D * M).</param>
/// <param name="Partition">"balance" (given), "time" (measured per layer) or "parameters" (parameter count).</param>
/// <param name="Balance">Layers per stage.</param>
/// <param name="LayerSeconds">The measured forward + backward time per layer on one micro-batch (partition by time; else empty).</param>
/// <param name="ParametersPerStage">Parameters each stage holds.</param>
/// <param name="PeakActivationsPerStage">The most micro-batches' activations (forward graphs) a stage held at once, the
/// maximum over its replicas, as the bridge counted them (<c>Stage.LiveSlots</c>): M under GPipe, min(S - s, M) under 1F1B.</param>
/// <param name="ScheduledPeakActivationsPerStage">What the schedule says that peak is (<c>Schedule.PeakInFlight</c>).</param>
/// <param name="ForwardSecondsPerMicroBatch">t_f,s: forward time of one micro-batch on stage s (the loss included on the last).</param>
/// <param name="BackwardSecondsPerMicroBatch">t_b,s: backward time of one micro-batch on stage s.</param>
/// <param name="SecondsPerMiniBatch">Measured: the median over mini-batches (after the first) of the slowest rank's time
/// for the mini-batch (pipeline, gradient averaging and optimizer step).</param>
/// <param name="IdealSecondsPerMiniBatch">(M + S - 1) max_s (t_f,s + t_b,s) from the measured times (PipelineTiming.IdealTime).</param>
/// <param name="SimulatedSecondsPerMiniBatch">The schedule's order run with the measured t_f,s and t_b,s and free communication.</param>
/// <param name="BubbleFraction">(S - 1) / (M + S - 1).</param>
/// <param name="MeasuredBubblePerStage">1 - compute time / time in the pipeline, per mini-batch on each rank (from the
/// forward and backward spans), the mean over mini-batches and replicas.</param>
/// <param name="ReceiveWaitSecondsPerStage">Time each stage spent waiting for activations and gradients, per mini-batch.</param>
/// <param name="PointToPointBytesPerMiniBatch">Bytes each stage sent to its neighbours per mini-batch.</param>
internal sealed record PipelineSummary(
    string Schedule,
    int Stages,
    int Replicas,
    int MicroBatches,
    int MicroBatchSize,
    string Partition,
    IReadOnlyList<int> Balance,
    IReadOnlyList<double> LayerSeconds,
    IReadOnlyList<long> ParametersPerStage,
    IReadOnlyList<int> PeakActivationsPerStage,
    IReadOnlyList<int> ScheduledPeakActivationsPerStage,
    IReadOnlyList<double> ForwardSecondsPerMicroBatch,
    IReadOnlyList<double> BackwardSecondsPerMicroBatch,
    double SecondsPerMiniBatch,
    double IdealSecondsPerMiniBatch,
    double SimulatedSecondsPerMiniBatch,
    double BubbleFraction,
    IReadOnlyList<double> MeasuredBubblePerStage,
    IReadOnlyList<double> ReceiveWaitSecondsPerStage,
    IReadOnlyList<long> PointToPointBytesPerMiniBatch)
{
    /// <summary>Ideal over measured: 1 when the run takes the ideal time (the benchmark's goal is at least 0.9).</summary>
    public double EfficiencyVsIdeal => SecondsPerMiniBatch > 0 ? IdealSecondsPerMiniBatch / SecondsPerMiniBatch : double.NaN;
}
