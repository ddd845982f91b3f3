using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;

namespace MpiPipeline.Scaling;

/// <summary>
/// One training run of a sweep, reduced to what scaling needs. Times are seconds per training step.
/// <see cref="StepSeconds"/> is the steady-state step time: rank 0's wall clock from the end of the warm-up steps to
/// the end of the last step, divided by the timed steps (from the loss curve, recorded after every step). The
/// breakdown (compute, communication, other) is on the same basis: rank 0's own counters over the same timed steps
/// (the curve records them cumulatively), so compute + communication never exceed the step; a results file without
/// them (older) falls back to the totals, every step averaged over the ranks.
/// </summary>
/// <param name="ComputeSeconds">Inside the bridge: forward, backward, optimizer step.</param>
/// <param name="CommunicationSeconds">Inside the gradient (or model) Allreduce, waiting for the slowest rank included.</param>
/// <param name="OtherSeconds">The rest of a step: batch gathering, the loop itself.</param>
/// <param name="PayloadBytes">Bytes one rank hands to one Allreduce round (the flat gradient or model); 0 on one rank.</param>
/// <param name="Oversubscribed">More rank threads than cores the job may use.</param>
internal sealed record ScalingRun(
    ScalingMode Mode,
    int Ranks,
    int Repetition,
    int GlobalBatch,
    int Steps,
    int TimedSteps,
    double StepSeconds,
    double ComputeSeconds,
    double CommunicationSeconds,
    double OtherSeconds,
    long CommunicationRounds,
    long PayloadBytes,
    int ThreadsPerRank,
    bool Oversubscribed)
{
    public int PerRankBatch => GlobalBatch / Ranks;

    /// <summary>Training samples per second, all ranks together, in the steady state.</summary>
    public double Throughput => GlobalBatch / StepSeconds;

    /// <summary>Communication's share of a step (from the totals: communication / (compute + communication + other)).</summary>
    public double CommunicationShare => CommunicationSeconds / (ComputeSeconds + CommunicationSeconds + OtherSeconds);

    /// <summary>Reduces a results file of `mpipipe train --curve-every 1` to a run of the sweep.</summary>
    public static ScalingRun FromResult(RunResult result, ScalingMode mode, int repetition, int warmupSteps, bool oversubscribed, string source)
    {
        if (result.Divergence is { } diverged)
        {
            throw new InputException($"{source}: the run diverged at step {diverged.Step} ({diverged.Quantity} {diverged.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)}); " +
                $"a diverged run has no step times to use: give the sweep's train arguments a smaller {Training.TrainFlags.LearningRate}", sameOnEveryRank: false);
        }

        var totals = result.Totals;
        var steps = (int)totals.Steps;
        var curve = result.LossCurve;
        if (steps < 2 || curve.Count != steps || curve[^1].Step != steps)
        {
            throw new InputException($"{source}: expected one loss-curve point per step (--curve-every 1) and at least 2 steps; got {curve.Count} points for {steps} steps");
        }

        // Every timed step in the first epoch (no evaluation among them): checked up front for Fashion-MNIST, here for
        // a data set whose size only the run knew.
        if (result.Options.TryGetValue("stepsPerEpoch", out var perEpochText) && long.TryParse(perEpochText, out var perEpoch) && perEpoch < steps)
        {
            throw new InputException($"{source}: {steps} steps run past the first epoch ({perEpoch} steps on --dataset " +
                $"{result.Options.GetValueOrDefault("dataset", "?")} at global batch {result.Options.GetValueOrDefault("batch", "?")}): " +
                "every timed step must be in the first epoch; lower --steps or the batch", sameOnEveryRank: false);
        }

        var warmup = Math.Clamp(warmupSteps, 1, steps - 1);
        var timed = steps - warmup;
        var stepSeconds = (curve[^1].WallSeconds - curve[warmup - 1].WallSeconds) / timed;
        if (!(stepSeconds > 0))
        {
            throw new InputException($"{source}: the loss curve's wall clock does not advance over the timed steps");
        }

        // The breakdown on the step time's basis (rank 0 over the timed steps) where the curve records it; an older
        // results file only has the totals (every step, averaged over the ranks, other from the step totals).
        var (start, end) = (curve[warmup - 1], curve[^1]);
        var (compute, communication, step) = end.ComputeSeconds > 0
            ? ((end.ComputeSeconds - start.ComputeSeconds) / timed, (end.CommunicationSeconds - start.CommunicationSeconds) / timed, stepSeconds)
            : (totals.ComputeSeconds / steps, totals.CommunicationSeconds / steps, totals.StepSeconds / steps);
        var other = step - compute - communication;

        var batch = int.Parse(result.Options["batch"], System.Globalization.CultureInfo.InvariantCulture);
        var threads = result.Options.TryGetValue("threadsPerRank", out var t) && int.TryParse(t, out var parsed) ? parsed : 1;
        var rounds = totals.CommunicationRounds;
        return new ScalingRun(
            Mode: mode,
            Ranks: result.Ranks,
            Repetition: repetition,
            GlobalBatch: batch,
            Steps: steps,
            TimedSteps: timed,
            StepSeconds: stepSeconds,
            ComputeSeconds: compute,
            CommunicationSeconds: communication,
            OtherSeconds: Math.Max(0, other),
            CommunicationRounds: rounds,
            PayloadBytes: rounds > 0 ? totals.AllreducePayloadBytesPerRank / rounds : 0,
            ThreadsPerRank: threads,
            Oversubscribed: oversubscribed);
    }
}
