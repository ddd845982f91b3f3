using MpiPipeline.Exchange;
using MpiPipeline.Exchange.Compression;
using MpiPipeline.Mpi;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MpiPipeline.TorchSharp;

/// <summary>
/// Data-parallel training of a TorchSharp module over MPI. The constructor moves the module's parameters into one
/// flat tensor (each parameter becomes a view of it, so optimizers built before or after keep working) and points
/// every parameter's <c>.grad</c> at a view of one flat gradient tensor, so backward accumulates in place and MPI
/// reads and writes the tensors' own memory: no managed copy, no gather. Then it broadcasts rank 0's parameters and
/// buffers. Per step, after <c>loss.backward()</c>:
/// <list type="bullet">
/// <item><see cref="AverageGradients"/>: PSGD, through the project's exchange (dense Allreduce, or any compressor of it).</item>
/// <item>or, every tau steps after <c>optimizer.step()</c>, <see cref="AverageModels"/>: local SGD.</item>
/// <item><see cref="Broadcast"/>: rank 0's buffers (batch-norm statistics) to every rank.</item>
/// </list>
/// Copies happen only where the memory cannot be MPI's: a gradient that is not the view (after <c>zero_grad(set_to_none:
/// true)</c> backward allocates new ones; TorchSharp's optimizers zero in place) is copied into the view and the view
/// put back (<see cref="GradientCopies"/> counts them; <see cref="ZeroGradients"/> avoids them), and
/// parameters on a device (CUDA) are staged through pinned host buffers, one device-host copy each way per round.
/// Overlapping the exchange with backward, as the bridge's bucketed exchange does, needs a hook that fires once a
/// parameter's gradient is accumulated; TorchSharp 0.107 exposes no tensor or autograd hooks, so the round starts
/// after backward.
/// </summary>
public sealed class DataParallel : IDisposable
{
    private readonly nn.Module module;
    private readonly Parameter[] parameters;
    private readonly Tensor flatParameters;
    private readonly Tensor flatGradients;
    private readonly Tensor[] gradientViews;
    private readonly nint[] gradientAddresses;
    private readonly Tensor? hostParameters;
    private readonly Tensor? hostGradients;
    private readonly IGradientExchange exchange;
    private bool disposed;

    public DataParallel(nn.Module module, Communicator communicator, DataParallelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(communicator);
        options ??= new DataParallelOptions();
        if (options.TuneMalloc)
        {
            MallocTuning.Apply();
        }

        this.module = module;
        Communicator = communicator;
        parameters = [.. module.parameters()];
        if (parameters.Length == 0)
        {
            throw new InputException("DataParallel: the module has no parameters");
        }

        var device = parameters[0].device;
        foreach (var (name, p) in module.named_parameters())
        {
            if (p.dtype != ScalarType.Float32 || p.device_type != device.type || p.device_index != device.index)
            {
                throw new InputException($"DataParallel: parameter '{name}' is {p.dtype} on {p.device}; every parameter must be float32 on {device}");
            }
        }

        Length = checked((int)parameters.Sum(p => p.numel()));
        CheckSameModule(communicator, module, parameters);

        using (torch.no_grad())
        {
            flatParameters = torch.empty(Length, ScalarType.Float32, device).DetachFromDisposeScope();
            flatGradients = torch.zeros(Length, ScalarType.Float32, device).DetachFromDisposeScope();
            gradientViews = new Tensor[parameters.Length];
            var offset = 0L;
            for (var i = 0; i < parameters.Length; i++)
            {
                var p = parameters[i];
                var n = p.numel();
                using var slice = flatParameters.narrow(0, offset, n);
                using var shaped = slice.view(p.shape);
                shaped.copy_(p);
                p.set_(shaped);
                gradientViews[i] = flatGradients.narrow(0, offset, n).view(p.shape).DetachFromDisposeScope();
                using var old = p.grad;
                if (old is not null)
                {
                    gradientViews[i].copy_(old);
                }

                p.grad = gradientViews[i];
                offset += n;
            }
        }

        gradientAddresses = [.. gradientViews.Select(TensorMemory.Address)];
        Staged = options.ForceStaging || !TensorMemory.IsHostContiguous(flatParameters);
        if (Staged)
        {
            hostParameters = HostBuffer(device);
            hostGradients = HostBuffer(device);
        }

        var compressor = options.Compressor
            ?? CompressorRegistry.Create(options.Compress, new CompressorContext(options.Seed, communicator.Rank));
        exchange = compressor is null
            ? new AllreduceExchange(communicator, options.Wait)
            : new CompressedExchange(communicator, options.Wait, compressor);
        BroadcastParameters();
        Broadcast();
    }

    public Communicator Communicator { get; }

    /// <summary>Parameters' elements: the length of one round's fp32 buffer.</summary>
    public int Length { get; }

    /// <summary>The module's parameters live on a device (or staging was forced): rounds go through host buffers.</summary>
    public bool Staged { get; }

    /// <summary>Gradients found outside their view (replaced by backward after a zero_grad that set them to none) and
    /// copied into it; 0 when the loop zeroes with <see cref="ZeroGradients"/>.</summary>
    public long GradientCopies { get; private set; }

    /// <summary>What this rank handed to MPI in training rounds (bytes sent, rounds, compression).</summary>
    public ExchangeCounters Counters => exchange.Counters;

    /// <summary>The exchange's name and compressor, for a run's report.</summary>
    public string Describe() => exchange is CompressedExchange c ? $"{c.Name} ({c.Compressor.Spec})" : exchange.Name;

    /// <summary>Zeroes every gradient in place (one fill of the flat gradient): use instead of the optimizer's zero_grad.</summary>
    public void ZeroGradients()
    {
        ThrowIfDisposed();
        using (torch.no_grad())
        {
            flatGradients.zero_();
            Rebind();
        }
    }

    /// <summary>PSGD's round: every gradient &lt;- the mean of that gradient over the ranks.</summary>
    public void AverageGradients()
    {
        ThrowIfDisposed();
        using (torch.no_grad())
        {
            Rebind();
            Round(flatGradients, hostGradients, exchange.AverageGradients);
        }
    }

    /// <summary>Local SGD's round: every parameter &lt;- its mean over the ranks (exact, never compressed).</summary>
    public void AverageModels()
    {
        ThrowIfDisposed();
        using (torch.no_grad())
        {
            Round(flatParameters, hostParameters, exchange.AverageModels);
        }
    }

    /// <summary>Rank 0's buffers (running statistics and the like) to every rank.</summary>
    public void Broadcast()
    {
        ThrowIfDisposed();
        using (torch.no_grad())
        {
            foreach (var buffer in module.buffers())
            {
                if (!Staged && buffer.is_contiguous() && buffer.device_type == DeviceType.CPU)
                {
                    Communicator.Bcast(TensorMemory.Bytes(buffer), 0);
                    continue;
                }

                using var host = buffer.to(DeviceType.CPU).contiguous().clone();
                Communicator.Bcast(TensorMemory.Bytes(host), 0);
                buffer.copy_(host);
            }
        }
    }

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        // The parameters and their gradients keep the flat storages alive; these are only this object's handles.
        foreach (var view in gradientViews)
        {
            view.Dispose();
        }

        flatParameters.Dispose();
        flatGradients.Dispose();
        hostParameters?.Dispose();
        hostGradients?.Dispose();
    }

    private void BroadcastParameters()
    {
        using (torch.no_grad())
        {
            Round(flatParameters, hostParameters, buffer => Communicator.Bcast(buffer, 0));
        }
    }

    /// <summary>Runs <paramref name="average"/> on <paramref name="flat"/>'s memory, or on the host copy when staged.</summary>
    private static void Round(Tensor flat, Tensor? host, SpanAction average)
    {
        if (host is null)
        {
            average(TensorMemory.Floats(flat));
            return;
        }

        host.copy_(flat);
        average(TensorMemory.Floats(host));
        flat.copy_(host);
    }

    private delegate void SpanAction(Span<float> buffer);

    /// <summary>Puts every parameter's gradient back on its view, copying a gradient that backward allocated elsewhere.</summary>
    private void Rebind()
    {
        for (var i = 0; i < parameters.Length; i++)
        {
            using var grad = parameters[i].grad;
            if (grad is not null && TensorMemory.Address(grad) == gradientAddresses[i])
            {
                continue;
            }

            if (grad is null)
            {
                gradientViews[i].zero_();
            }
            else
            {
                gradientViews[i].copy_(grad);
                GradientCopies++;
            }

            parameters[i].grad = gradientViews[i];
        }
    }

    /// <summary>A host buffer of the round's length: pinned where the parameters live on CUDA, so copies are DMA.</summary>
    private Tensor HostBuffer(Device device)
    {
        var host = torch.empty(Length, ScalarType.Float32, torch.CPU);
        if (device.type == DeviceType.CUDA)
        {
            var pinned = host.pin_memory();
            host.Dispose();
            host = pinned;
        }

        return host.DetachFromDisposeScope();
    }

    /// <summary>Every rank must hold the same module: the same parameter and buffer shapes, in the same order.</summary>
    private static void CheckSameModule(Communicator communicator, nn.Module module, Parameter[] parameters)
    {
        // A value every process computes alike (HashCode is seeded per process).
        var layout = parameters.Aggregate(17L, (h, p) => p.shape.Aggregate(h * 31 + p.shape.Length, (g, d) => g * 1_000_003 + d));
        layout = module.buffers().Aggregate(layout, (h, b) => (h * 31 + (int)b.dtype) * 1_000_003 + b.numel());
        var low = communicator.Allreduce(layout, ReduceOp.Min);
        var high = communicator.Allreduce(layout, ReduceOp.Max);
        if (low != high)
        {
            throw new InputException("DataParallel: the ranks' modules differ (parameter or buffer shapes); every rank must build the same module");
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);
}
