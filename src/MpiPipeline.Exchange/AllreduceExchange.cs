using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;
using MpiPipeline.Mpi;

namespace MpiPipeline.Exchange;

/// <summary>
/// <c>--exchange allreduce</c>: one dense fp32 Allreduce (sum) over the whole buffer, then a scale by 1/n. With
/// <paramref name="wait"/> null it is MPI's own blocking MPI_Allreduce; otherwise an MPI_Iallreduce polled with that
/// wait (yielding or sleeping), so that on an oversubscribed node a rank that arrives early leaves its core to the
/// ranks still computing.
/// </summary>
public sealed class AllreduceExchange(Communicator group, IdleWait? wait) : IGradientExchange
{
    public const string ExchangeName = "allreduce";

    public string Name => ExchangeName;

    public Communicator Group { get; set; } = group;

    public IdleWait? Wait { get; } = wait;

    public ExchangeCounters Counters { get; } = new();

    public void AverageGradients(Span<float> gradients) => Round(gradients);

    public void AverageModels(Span<float> parameters) => Round(parameters);

    public void AverageUncounted(Span<float> buffer) => Mean(buffer);

    private void Round(Span<float> buffer)
    {
        var clock = Stopwatch.StartNew();
        Mean(buffer);
        Counters.AddRound((long)buffer.Length * sizeof(float), Group.Size, clock.Elapsed.TotalSeconds);
    }

    private void Mean(Span<float> buffer)
    {
        Sum(buffer);
        Scale(buffer, 1f / Group.Size);
    }

    /// <summary>The in-place sum over the group, blocking or polled; the memory may be a device's (a CUDA-aware MPI):
    /// nothing here reads it.</summary>
    internal void Sum(Span<float> buffer)
    {
        if (Wait is { } idle)
        {
            Group.Allreduce(buffer, ReduceOp.Sum, idle);
        }
        else
        {
            Group.Allreduce(buffer, ReduceOp.Sum);
        }
    }

    /// <summary>buffer *= factor, vectorized.</summary>
    public static void Scale(Span<float> buffer, float factor)
    {
        var vectors = MemoryMarshal.Cast<float, Vector<float>>(buffer);
        var f = new Vector<float>(factor);
        for (var i = 0; i < vectors.Length; i++)
        {
            vectors[i] *= f;
        }

        for (var i = vectors.Length * Vector<float>.Count; i < buffer.Length; i++)
        {
            buffer[i] *= factor;
        }
    }
}
