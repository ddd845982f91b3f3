using System.Text.Json.Serialization;

namespace MpiPipeline.Telemetry;

/// <summary>
/// One epoch of a run as rank 0 saw it. Accuracies are fractions in [0, 1]; losses are mean cross-entropy per sample
/// (NaN when not measured); the communication figures count from the start of the run, so the last epoch's are totals.
/// </summary>
/// <param name="Epoch">1 for the first epoch.</param>
/// <param name="SamplesPerSecond">Training samples of all ranks together per second of this epoch.</param>
/// <param name="Seconds">Wall time of this epoch.</param>
/// <param name="CommunicationRounds">Collective averaging rounds (Allreduce of gradients or models) so far.</param>
/// <param name="BytesSentPerRank">Bytes one rank has sent so far, Allreduce counted as a ring sends it (2(n-1)/n of the payload).</param>
/// <param name="MpiPayloadBytesPerRank">Bytes one rank has handed to MPI so far: the Allreduce buffers and point-to-point messages as given.</param>
/// <param name="ComputeSeconds">This epoch's time in forward, backward and optimizer steps.</param>
/// <param name="CommunicationSeconds">This epoch's time inside MPI calls.</param>
internal sealed record EpochRecord(
    int Epoch,
    double TrainLoss,
    double TrainAccuracy,
    double TestLoss,
    double TestAccuracy,
    double SamplesPerSecond,
    double Seconds,
    long CommunicationRounds,
    long BytesSentPerRank,
    long MpiPayloadBytesPerRank,
    double ComputeSeconds,
    double CommunicationSeconds);

/// <summary>A point of the training-loss curve: after <see cref="Step"/> steps, <see cref="CommunicationRounds"/>
/// rounds and <see cref="WallSeconds"/> since the start, the mean training loss was <see cref="Loss"/>.</summary>
/// <param name="ComputeSeconds">Rank 0's own compute time so far (cumulative, as <see cref="WallSeconds"/>), so that a
/// stretch of steps has its compute on the same basis as its wall time.</param>
/// <param name="CommunicationSeconds">Rank 0's own communication time so far (cumulative).</param>
internal sealed record LossPoint(long Step, long CommunicationRounds, double WallSeconds, double Loss, double ComputeSeconds = 0, double CommunicationSeconds = 0);

/// <summary>The model's loss and accuracy on the training set after <see cref="Step"/> steps (--train-loss-every):
/// for local SGD and RI-SGD the average of the replicas, evaluated on a copy.</summary>
internal sealed record TrainLossPoint(long Step, long CommunicationRounds, double Loss, double Accuracy);

/// <summary>Totals over a whole run; times are per rank, averaged over the ranks.</summary>
/// <param name="Steps">Optimizer steps of one worker.</param>
/// <param name="Samples">Training samples of all ranks together.</param>
/// <param name="AllreducePayloadBytesPerRank">Bytes one rank handed to Allreduce in training rounds.</param>
/// <param name="BytesSentPerRank">What a ring Allreduce sends per rank for that payload: 2(n-1)/n of it (plus point-to-point bytes).</param>
/// <param name="MpiPayloadBytesPerRank">Bytes one rank handed to MPI calls (Allreduce buffers, point-to-point messages), mean over the ranks.</param>
/// <param name="ComputeSeconds">Inside the bridge: forward, backward, optimizer steps.</param>
/// <param name="CommunicationSeconds">Inside MPI calls of the training rounds (and the averaging arithmetic).</param>
/// <param name="DataSeconds">Gathering mini-batches from the data set.</param>
/// <param name="EvaluationSeconds">Test-set evaluation (and its averaging).</param>
/// <param name="StepSeconds">Wall time of the training steps, all included.</param>
/// <param name="LoopOverheadSeconds">StepSeconds less compute and communication: the loop's own cost (data included).</param>
/// <param name="OverlapExposedSeconds">Overlapped gradient buckets: time the steps waited for them after backward (then
/// the training rounds' share of CommunicationSeconds; the MPI_Tests inside backward count as compute); 0 without.</param>
/// <param name="OverlapInFlightSeconds">Overlapped gradient buckets: from each round's first bucket start to its last completion.</param>
internal sealed record RunTotals(
    long Steps,
    long Samples,
    long CommunicationRounds,
    long AllreducePayloadBytesPerRank,
    long BytesSentPerRank,
    long MpiPayloadBytesPerRank,
    double ComputeSeconds,
    double CommunicationSeconds,
    double DataSeconds,
    double EvaluationSeconds,
    double StepSeconds,
    double LoopOverheadSeconds,
    double OverlapExposedSeconds = 0,
    double OverlapInFlightSeconds = 0);

/// <summary>Where and how a run diverged (<see cref="Training.NonFiniteGuard"/>).</summary>
/// <param name="Step">The step whose loss or gradient was not finite, counted from 1 as the loss curve counts.</param>
/// <param name="Rank">The first world rank (in its group's order) that saw it.</param>
/// <param name="Quantity">"loss" or "gradient norm": the one not finite (the loss when both are).</param>
/// <param name="Loss">That rank's mini-batch loss; null on a rank that holds none (a pipeline's inner stage).</param>
/// <param name="SkippedSteps">Steps skipped before it (--on-nonfinite skip-step).</param>
/// <param name="Message">What the run printed.</param>
internal sealed record DivergenceReport(long Step, int Rank, string Quantity, double Value, double? Loss, double GradientNorm, int SkippedSteps, string Message);

/// <summary>The values of <see cref="RunResult.Status"/>.</summary>
internal static class RunStatus
{
    public const string Completed = "completed", Diverged = "diverged";
}

/// <summary>Everything a run reports, as written to its JSON results file by <see cref="ResultsJson"/>.</summary>
/// <param name="Algorithm">The algorithm's registered name (<see cref="Algorithms.AlgorithmRegistry"/>).</param>
/// <param name="Options">The settings that define the run (batch, lr, tau, q, seed, ...), as given on the command line.</param>
/// <param name="Epochs">The completed epochs (a diverged run: those before the divergence).</param>
/// <param name="FinalTestAccuracy">Test accuracy after the last epoch, a fraction in [0, 1]; null for a diverged run.</param>
/// <param name="WallSeconds">Wall time of the whole run, loading excluded.</param>
/// <param name="InitialReplicaSpread">max over parameters of (max - min over replicas) before the start broadcast.</param>
/// <param name="FinalReplicaSpread">The same at the end of the run: 0 when every replica holds the same model.</param>
/// <param name="Notes">Events worth keeping with the numbers (a worker failed at step s; chunks still covered).</param>
/// <param name="Pipeline">The pipeline's own figures (<c>--algo pipeline</c>; null otherwise, and for a diverged run).</param>
/// <param name="Status"><see cref="RunStatus.Completed"/>, or <see cref="RunStatus.Diverged"/> with <see cref="Divergence"/>.</param>
/// <param name="SkippedSteps">Steps whose update was dropped for a non-finite value (--on-nonfinite skip-step), counted from 1.</param>
/// <param name="TrainLossCurve">--train-loss-every: the model's loss on the training set every N steps and after the last.</param>
internal sealed record RunResult(
    string Algorithm,
    string Model,
    int Ranks,
    IReadOnlyDictionary<string, string> Options,
    IReadOnlyList<EpochRecord> Epochs,
    RunTotals Totals,
    double? FinalTestAccuracy,
    double WallSeconds,
    IReadOnlyList<LossPoint> LossCurve,
    IReadOnlyList<string> Notes,
    double InitialReplicaSpread = 0,
    double FinalReplicaSpread = 0,
    PipelineSummary? Pipeline = null,
    string Status = RunStatus.Completed,
    DivergenceReport? Divergence = null,
    IReadOnlyList<long>? SkippedSteps = null,
    IReadOnlyList<TrainLossPoint>? TrainLossCurve = null)
{
    [JsonIgnore]
    public bool IsDiverged => Status == RunStatus.Diverged;
}
