using MpiPipeline.Data;
using MpiPipeline.Mpi;
using MpiPipeline.Telemetry;
using MpiPipeline.Torch;

namespace MpiPipeline.Training;

/// <summary>What every engine starts from: the validated options, the node, the data and the step counts, and the
/// divergence guard its steps consult before each update.</summary>
internal sealed record TrainingContext(
    Communicator World, TrainOptions Options, NodeShare Node, int Threads, Dataset Train, Dataset Test,
    long StepsPerEpoch, long TotalSteps, NonFiniteGuard Guard)
{
    /// <summary>The plan of a run on <paramref name="workers"/> workers (replicas) of a model of <paramref name="parameters"/>.</summary>
    public TrainingPlan Plan(int workers, long parameters, string split, string algorithm, PipelinePlan? pipeline = null) =>
        new(Options, workers, Train.Count, Test.Count, StepsPerEpoch, TotalSteps, parameters, Threads, split, algorithm, pipeline);
}

/// <summary>The counters an epoch's record shows, as rank 0 reports them (this rank's, or means over the ranks).</summary>
internal readonly record struct EpochCounters(
    long CommunicationRounds, long BytesSentPerRank, long MpiPayloadBytesPerRank, double ComputeSeconds, double CommunicationSeconds);

/// <summary>
/// How a run trains: <see cref="TrainingLoop"/> owns epochs, progress, the loss curve, evaluation, notes, results and
/// output files; an engine owns the ranks' roles, the model, the steps and the communication. The loop calls
/// <see cref="Step"/> once per step on every rank but makes no collective call of its own between steps, so an
/// engine whose ranks do not step in lockstep (asynchronous SGD) can treat a step as "this rank's next piece of work".
/// A checkpoint saves and restores what an engine holds between two steps (parameters, optimizer state, exchange
/// state such as compression residuals: <see cref="Capture"/>, <see cref="Restore"/>) alongside the loop's step counter;
/// everything else an engine draws (samples, dropout masks, stochastic rounding) follows from (seed, rank, step).
/// </summary>
internal interface ITrainingEngine : IDisposable
{
    /// <summary>The algorithm as the results name it.</summary>
    string Algorithm { get; }

    /// <summary>What the run is about to do, for the reporter's header.</summary>
    TrainingPlan Plan { get; }

    /// <summary>Notes so far (oversubscription, failures, ...), in order; the loop shows the new ones as they come.</summary>
    IReadOnlyList<string> Notes { get; }

    /// <summary>True once this rank has left the run (an emulated failure): the loop stops and reports nothing.</summary>
    bool Stopped => false;

    /// <summary>True when rank 0's step result holds the batch's loss (false where the loss lives on other ranks).</summary>
    bool RootSeesBatchLoss { get; }

    /// <summary>Rounds of the exchange so far, for the loss curve.</summary>
    long CommunicationRounds { get; }

    /// <summary>Before the first step: every replica from the same start; returns the replica spread before it.</summary>
    double Start();

    /// <summary>Step t (from 0 over the run): this rank's part of it; its batch loss where this rank sees one (Count 0: none).
    /// Before its update it asks the context's <see cref="NonFiniteGuard"/>, on every rank that steps; after a step the
    /// guard declares diverged, the loop calls nothing but <see cref="Totals"/> and <see cref="Finish"/>.</summary>
    LossResult Step(long t);

    /// <summary>The mean loss of a curve point from this rank's sum of <paramref name="count"/> batch losses.</summary>
    double CurveMean(double localSum, int count);

    /// <summary>After the last step, before the last evaluation: leave one model (a last averaging where needed).</summary>
    void EndTraining()
    {
    }

    /// <summary>The training tally over the ranks that hold losses (every rank calls this).</summary>
    void ReduceTally(LossTally tally);

    /// <summary>Test loss and accuracy of the model the run stands for.</summary>
    (double Loss, double Accuracy) Evaluate();

    /// <summary>Loss and accuracy of that model on the training set (--train-loss-every; collective over the
    /// engine's ranks); null where the engine does not evaluate it.</summary>
    (double Loss, double Accuracy)? EvaluateTraining() => null;

    EpochCounters EpochCounters();

    /// <summary>This rank's compute and communication seconds so far (as its epoch counters count them, no collective call).</summary>
    (double Compute, double Communication) OwnSeconds();

    /// <summary>max over parameters of (max - min over replicas): 0 when replicas are identical.</summary>
    double ReplicaSpread();

    /// <summary>The run's totals, reduced over the ranks.</summary>
    RunTotals Totals();

    /// <summary>The engine's options beyond the common ones, for the results' "options".</summary>
    void DescribeOptions(IDictionary<string, string> options)
    {
    }

    /// <summary>The pipeline's own figures (null for other engines); called once after training, on every rank.</summary>
    PipelineSummary? Summary() => null;

    /// <summary>
    /// Collective, between two steps: the state a resumed run needs, under <paramref name="header"/> completed with
    /// what the engine knows (the model's layers, the grid, the optimizer state's shape, per-worker state); the
    /// checkpoint on rank 0, null elsewhere.
    /// </summary>
    Checkpoint? Capture(CheckpointHeader header);

    /// <summary>
    /// Every rank, after <see cref="Start"/> and before the first step of a resumed run: this rank's state from
    /// <paramref name="checkpoint"/> (its options already checked; <paramref name="path"/> names it in errors). A
    /// checkpoint of another model, or one that cannot continue exactly at this job's shape, is an InputException.
    /// </summary>
    void Restore(Checkpoint checkpoint, string path);

    /// <summary>Writes the final flat parameters of the whole model to <paramref name="path"/> (every rank calls this).</summary>
    void SaveParameters(string path);

    /// <summary>Last, on every rank of a completed run: the engine's own output files (e.g. a Chrome trace), then its
    /// communicators freed. Not called when a run fails: the job is aborted then.</summary>
    void Finish();
}
