using MpiPipeline.Algorithms;
using MpiPipeline.Engines;
using MpiPipeline.Mpi;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.DataParallel;

/// <summary>
/// Local SGD with periodic averaging (the slides' Eq. (a)/(b)): each worker j takes tau local steps on its own
/// replica, then the replicas are averaged with one Allreduce:
///     (b) x_j^(t+1) = x_j^(t) - eta * g~_j^(t)                          if tau does not divide t+1,
///     (a) x_j^(t+1) = (1/p) * sum_{j=1..p} [x_j^(t) - eta * g~_j^(t)]     if tau divides t+1.
/// Communication rounds: T / tau instead of T. Momentum buffers stay local to each worker (they are not averaged):
/// the update is linear in them, so with tau = 1 the average of the replicas follows exactly the PSGD trajectory,
/// and averaging them would double the traffic for no gain in that case.
/// </summary>
internal sealed class LocalSgd(int tau) : IDataParallelAlgorithm
{
    /// <summary>--tau, shared with RI-SGD.</summary>
    public static AlgorithmOption TauOption { get; } = new(TrainFlags.Tau, o => o.Tau != new TrainOptions().Tau);

    public static AlgorithmRegistration Registration { get; } = new(
        "local-sgd", "local SGD: tau local steps, then the models averaged (one Allreduce)", [TauOption, DataParallelEngine.SplitOption, DataParallelEngine.TrainLossOption],
        context => new DataParallelEngine(context, new LocalSgd(context.Options.Tau)))
    {
        Validate = (options, workers) =>
        {
            options.RequireBatchDivisibleBy(workers);
            RequireTau(options);
        },
        Describe = (o, _) => $"local-sgd (tau = {o.Tau})",
        DataParallel = true,
    };

    public string Name => Registration.Name;

    internal static void RequireTau(TrainOptions options)
    {
        if (options.Tau < 1)
        {
            throw new InputException($"--tau must be >= 1 (got {options.Tau}): tau is the number of local steps between two averagings");
        }
    }

    public bool ReplicasIdentical { get; private set; } = true;

    public LossResult Step(long t, Worker worker)
    {
        var loss = worker.ComputeGradient(t);      // g~_j^(t) on worker j's own replica x_j^(t)
        worker.OptimizerStep();                    // (b) x_j^(t+1) = x_j^(t) - eta * g~_j^(t)
        ReplicasIdentical = worker.Group.Size == 1;
        if ((t + 1) % tau == 0 && worker.Group.Size > 1)
        {
            worker.AverageModels();                // (a) x_j^(t+1) = (1/p) sum_j x_j^(t+1)   (one Allreduce)
            ReplicasIdentical = true;
        }

        return loss;
    }

    /// <summary>The replicas are identical after an averaging step (checkpoints hold every worker's replica).</summary>
    public void Resumed(long step, Worker worker) => ReplicasIdentical = worker.Group.Size == 1 || step % tau == 0;

    public void Finish(Worker worker)
    {
        if (!ReplicasIdentical)
        {
            worker.AverageModels();                // the run ends with one model: a last averaging round
            ReplicasIdentical = true;
        }
    }
}
