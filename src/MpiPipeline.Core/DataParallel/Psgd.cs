using MpiPipeline.Algorithms;
using MpiPipeline.Engines;
using MpiPipeline.Mpi;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.DataParallel;

/// <summary>
/// Parallel (synchronous mini-batch) SGD, as in the lecture notes: every step each of the p workers computes the
/// gradient of its own mini-batch xi_j^(t) at the common point x^(t); the gradients are averaged with an Allreduce
/// over the fused flat gradient buffer (by default in buckets started during backward, <see cref="Training.GradientOverlap"/>;
/// one Allreduce after it with --no-overlap), and every worker applies the same optimizer step:
///     x^(t+1) = x^(t) - eta * (1/p) * sum_{j=1..p} grad f(x^(t); xi_j^(t)).
/// With p = 1 this is plain single-rank training (--algo single).
/// </summary>
internal sealed class Psgd : IDataParallelAlgorithm
{
    public static AlgorithmRegistration Registration { get; } = new(
        "psgd", "parallel SGD: the workers' gradients averaged every step (Allreduce in buckets overlapped with backward)",
        [DataParallelEngine.SplitOption, .. DataParallelEngine.GradientOptions, DataParallelEngine.CompressOption, DataParallelEngine.TraceOption,
            DataParallelEngine.SlowWorkersOption, DataParallelEngine.TrainLossOption],
        context => new DataParallelEngine(context, new Psgd()))
    {
        Validate = (options, workers) =>
        {
            options.RequireBatchDivisibleBy(workers);
            SlowWorkers.Parse(options.SlowWorkers).Validate(workers, 0);
        },
        DataParallel = true,
    };

    /// <summary>One rank: PSGD with p = 1 (its results are named psgd).</summary>
    public static AlgorithmRegistration Single { get; } = new(
        "single", "one rank, no communication: the reference the parallel runs are checked against", [DataParallelEngine.SplitOption, DataParallelEngine.TrainLossOption],
        context => new DataParallelEngine(context, new Psgd()))
    {
        Validate = (_, workers) =>
        {
            if (workers != 1)
            {
                throw new InputException($"--algo single trains on one rank, but the job has {workers} ranks; use --algo psgd (or run with -n 1)");
            }
        },
    };

    public string Name => Registration.Name;

    public bool ReplicasIdentical => true;

    public bool AveragesGradients => true;

    public LossResult Step(long t, Worker worker)
    {
        var loss = worker.ComputeGradient(t);      // g_j^(t) = grad f(x^(t); xi_j^(t))
        if (worker.Group.Size > 1)
        {
            worker.AverageGradients();             // g^(t) = (1/p) sum_j g_j^(t)   (Allreduce, per bucket when overlapped)
        }

        worker.OptimizerStep();                    // x^(t+1) = x^(t) - eta * update(g^(t)), identical on every worker
        return loss;
    }
}
