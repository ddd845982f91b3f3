using MpiPipeline.Mpi;

namespace MpiPipeline.Exchange;

/// <summary>
/// How the ranks of a group average what they hold: the one seam between an algorithm and MPI for averaging. An
/// exchange owns the waiting (blocking or polled), the encoding of what it sends (dense fp32 here; a compressor keeps
/// its error-feedback state inside), and the counters of what it handed to MPI. The overlapped, bucketed exchange
/// (<see cref="OverlappedAllreduceExchange"/>) starts its Allreduces from the bridge's gradient-ready callback and
/// finishes them in <see cref="AverageGradients"/>; the callers do not change.
/// </summary>
public interface IGradientExchange
{
    /// <summary>Its name as <c>--exchange</c> spells it.</summary>
    string Name { get; }

    /// <summary>The ranks that average together; an algorithm that loses a member (emulated failure) sets the survivors.</summary>
    Communicator Group { get; set; }

    ExchangeCounters Counters { get; }

    /// <summary>g &lt;- (1/n) sum over the group of g: a training round.</summary>
    void AverageGradients(Span<float> gradients);

    /// <summary>x &lt;- (1/n) sum over the group of x (model averaging): a training round, always exact (never compressed).</summary>
    void AverageModels(Span<float> parameters);

    /// <summary>The same mean, not counted as a training round (the average model for evaluation).</summary>
    void AverageUncounted(Span<float> buffer);
}

/// <summary>
/// An exchange whose gradient rounds may go through a compressor (<c>--compress</c>): the engines checkpoint the
/// compressor's residual and, on resume, set <see cref="Round"/> to the steps done.
/// </summary>
public interface ICompressingExchange
{
    /// <summary>The compressor; null: this exchange sends dense fp32.</summary>
    Exchange.Compression.IGradientCompressor? Compressor { get; }

    /// <summary>The round the next gradient averaging is: the compressor's draws are a function of (seed, rank, round).</summary>
    long Round { get; set; }
}
