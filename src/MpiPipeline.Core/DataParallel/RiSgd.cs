using MpiPipeline.Algorithms;
using MpiPipeline.Data;
using MpiPipeline.Engines;
using MpiPipeline.Mpi;
using MpiPipeline.Torch;
using MpiPipeline.Training;

namespace MpiPipeline.DataParallel;

/// <summary>
/// Redundancy-infused local SGD, RI-SGD(tau, q) (Haddadpour, Kamani, Mahdavi, Cadambe, ICML 2019). The data set is cut
/// into p chunks D_1..D_p; worker j holds the q chunks D_j..D_{j+q-1} (mod p), redundancy mu = q/p, and samples its
/// mini-batches from all of them (<see cref="ChunkSampler"/>). The update is local SGD's:
///     (b) x_j^(t+1) = x_j^(t) - eta * g~_j^(t)                          if tau does not divide t+1,
///     (a) x_j^(t+1) = (1/p) * sum_j [x_j^(t) - eta * g~_j^(t)]          if tau divides t+1.
/// The redundancy buys intra-gradient diversity and fault tolerance: with q >= 2 a failed worker's chunks are still
/// held by a neighbour. q = 1 is local SGD on disjoint shards.
///
/// Failure (--fail-rank r --fail-step s) is an emulated fail-stop: MPICH and Open MPI without ULFM abort the job when a
/// process dies, so worker r announces at step s that it leaves; at every step the workers agree on who is still there
/// (an Allgather of a leave flag: the role MPIX_Comm_agree plays under ULFM), form the survivors' communicator with
/// Comm_split (MPIX_Comm_shrink's role), free the old one, and go on. Whatever worker r computed since the last
/// averaging is lost, as it would be.
/// </summary>
internal sealed class RiSgd(int tau, int q, int? failRank, long? failStep) : IDataParallelAlgorithm
{
    private readonly List<string> notes = [];
    private int p;
    private int[] alive = [];

    public static AlgorithmRegistration Registration { get; } = new(
        "ri-sgd", "redundancy-infused local SGD: each worker holds q of the p data chunks; tau local steps between averagings",
        [
            LocalSgd.TauOption,
            DataParallelEngine.SplitOption,
            DataParallelEngine.TrainLossOption,
            new(TrainFlags.Redundancy, o => o.Redundancy != new TrainOptions().Redundancy),
            new(TrainFlags.FailRank, o => o.FailRank is not null),
            new(TrainFlags.FailStep, o => o.FailStep is not null),
        ],
        context => new DataParallelEngine(context,
            new RiSgd(context.Options.Tau, context.Options.Redundancy, context.Options.FailRank, context.Options.FailStep)))
    {
        Validate = Check,
        DefaultSplit = DataSplit.Chunks,
        Describe = (o, workers) => $"ri-sgd (tau = {o.Tau}, q = {o.Redundancy}, mu = {o.Redundancy}/{workers})",
        DataParallel = true,
    };

    public string Name => Registration.Name;

    private static void Check(TrainOptions o, int workers)
    {
        o.RequireBatchDivisibleBy(workers);
        LocalSgd.RequireTau(o);
        if (o.Redundancy < 1 || o.Redundancy > workers)
        {
            throw new InputException($"--redundancy {o.Redundancy} is out of range: each of the p = {workers} workers holds q chunks out of p, so 1 <= q <= {workers}");
        }

        if (o.Split == DataSplit.Shuffle)
        {
            throw new InputException("--algo ri-sgd samples from the chunks each worker holds; --split shuffle does not apply");
        }

        if (o.FailRank is null && o.FailStep is null)
        {
            return;
        }

        if (o.FailRank is null || o.FailStep is null)
        {
            throw new InputException("--fail-rank and --fail-step go together");
        }

        if (o.FailRank < 1 || o.FailRank >= workers)
        {
            throw new InputException($"--fail-rank {o.FailRank} is out of range: 1..{workers - 1} (rank 0 reports the results and cannot be the failed one)");
        }

        TrainFlags.RequireAtLeast(TrainFlags.FailStep, o.FailStep, 0);
    }

    public bool ReplicasIdentical { get; private set; } = true;

    public bool Stopped { get; private set; }

    public IReadOnlyList<string> Notes => notes;

    public LossResult Step(long t, Worker worker)
    {
        if (p == 0)
        {
            p = worker.Group.Size;
            alive = [.. Enumerable.Range(0, p)];
        }

        if (failRank is not null && AgreeOnMembership(t, worker))
        {
            return default;                        // this worker has failed: it takes part in nothing more
        }

        var loss = worker.ComputeGradient(t);      // g~_j^(t), xi_j^(t) drawn from D_j u ... u D_{j+q-1}
        worker.OptimizerStep();                    // (b) x_j^(t+1) = x_j^(t) - eta * g~_j^(t)
        ReplicasIdentical = worker.Group.Size == 1;
        if ((t + 1) % tau == 0 && worker.Group.Size > 1)
        {
            worker.AverageModels();                // (a) average over the (surviving) workers
            ReplicasIdentical = true;
        }

        return loss;
    }

    /// <summary>The replicas are identical after an averaging step (checkpoints hold every worker's replica).</summary>
    public void Resumed(long step, Worker worker) => ReplicasIdentical = worker.Group.Size == 1 || step % tau == 0;

    public void Finish(Worker worker)
    {
        if (!Stopped && !ReplicasIdentical)
        {
            worker.AverageModels();
            ReplicasIdentical = true;
        }
    }

    /// <summary>Every worker says whether it leaves at step t; returns true on the worker that left.</summary>
    private bool AgreeOnMembership(long t, Worker worker)
    {
        var leaving = worker.Id == failRank && t >= failStep ? 1 : 0;
        var flags = new int[worker.Group.Size];
        worker.Group.Allgather<int>([leaving], flags);
        if (!flags.Contains(1))
        {
            return false;
        }

        var gone = alive.Where((_, i) => flags[i] == 1).ToArray();
        alive = [.. alive.Where((_, i) => flags[i] == 0)];
        var survivors = worker.Group.Split(leaving == 1 ? -1 : 0, worker.Id);
        worker.ReplaceGroup(survivors);
        if (leaving == 1)
        {
            Stopped = true;
            return true;
        }

        var coverage = RedundantChunks.Covered(alive, p, q);
        notes.Add($"worker {string.Join(", ", gone)} failed at step {t}; {alive.Length} survivors ({string.Join(", ", alive)}) go on in a new communicator");
        notes.Add(coverage.Missing.Count == 0
            ? $"every chunk is still covered (q = {q}): chunks {string.Join(", ", coverage.Covered)} of {p}"
            : $"chunks lost with the failed worker (q = {q}): {string.Join(", ", coverage.Missing)}; training goes on without them");
        return false;
    }
}
