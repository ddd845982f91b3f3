using MpiPipeline.Torch;

namespace MpiPipeline.DataParallel;

/// <summary>
/// A data-parallel training algorithm: what worker j does at step t. The training loop owns epochs, evaluation and
/// reporting, the data-parallel engine the worker and its exchange; an algorithm is one file that reads like its
/// paper's pseudo-code, with its registration (<see cref="Algorithms.AlgorithmRegistration"/>) beside it.
/// </summary>
internal interface IDataParallelAlgorithm
{
    string Name { get; }

    /// <summary>Step t (counted from 0 over the run) of this worker; returns its mini-batch loss (Count 0: no step done).</summary>
    LossResult Step(long t, Worker worker);

    /// <summary>True when every replica holds the same parameters after the last step.</summary>
    bool ReplicasIdentical { get; }

    /// <summary>True when every step averages the gradients (not the models): they may go in buckets overlapped with backward.</summary>
    bool AveragesGradients => false;

    /// <summary>True once this worker has left the run (an emulated failure); it then takes part in nothing more.</summary>
    bool Stopped => false;

    /// <summary>A resumed run continues after <paramref name="step"/> steps: the algorithm's own counters follow.</summary>
    void Resumed(long step, Worker worker)
    {
    }

    /// <summary>Called once after the last step: leave the replicas identical (a last averaging round if needed).</summary>
    void Finish(Worker worker)
    {
    }

    /// <summary>Lines for the report at the end (e.g. chunk coverage after a failure); empty by default.</summary>
    IReadOnlyList<string> Notes => [];
}
