using MpiPipeline.Mpi;

namespace MpiPipeline.Pipeline;

/// <summary>
/// The 2-D grid of a pipeline x data-parallel run: S stages times D replicas on S * D ranks. World rank
/// r = d * S + s holds stage s of replica d, so each replica's pipeline is a block of S consecutive ranks and
/// D = 1 gives rank = stage. Two sub-communicators from Comm_split:
/// <list type="bullet">
/// <item><see cref="Pipeline"/>: the S ranks of replica d (color d, key s), its rank is the stage: activations and
/// gradients go point to point between neighbours here;</item>
/// <item><see cref="Replicas"/>: the D ranks that hold stage s (color s, key d), its rank is the replica: they average
/// their stage's gradients with one Allreduce per mini-batch.</item>
/// </list>
/// Both are freed by <see cref="Free"/>, collectively, on every rank (never by a finalizer).
/// </summary>
/// <param name="Stages">S.</param>
/// <param name="ReplicaCount">D.</param>
/// <param name="Stage">s, this rank's stage.</param>
/// <param name="Replica">d, this rank's replica.</param>
internal sealed record PipelineGrid(int Stages, int ReplicaCount, int Stage, int Replica, Communicator Pipeline, Communicator Replicas)
{
    public bool IsFirstStage => Stage == 0;

    public bool IsLastStage => Stage == Stages - 1;

    /// <summary>Splits <paramref name="world"/> (collective); S * D must equal its size.</summary>
    public static PipelineGrid Create(Communicator world, int stages, int replicas)
    {
        if ((long)stages * replicas != world.Size)
        {
            throw new InputException($"a grid of {stages} stages x {replicas} replicas needs {(long)stages * replicas} ranks, the job has {world.Size}");
        }

        var stage = world.Rank % stages;
        var replica = world.Rank / stages;
        var pipeline = world.Split(replica, stage)!;
        var group = world.Split(stage, replica)!;
        return new PipelineGrid(stages, replicas, stage, replica, pipeline, group);
    }

    /// <summary>Frees both sub-communicators (collective: every rank of the world calls it at the same point).</summary>
    public void Free()
    {
        Pipeline.Free();
        Replicas.Free();
    }
}
