using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace MpiPipeline.TorchSharp;

/// <summary>
/// A tensor's own memory as a span, for MPI to read and write in place. TorchSharp 0.107 has no public data pointer
/// (its <c>bytes</c> property is a span only for CPU tensors, with no contiguity check), so this calls the export its
/// own accessors use, <c>THSTensor_data</c> (<c>at::Tensor::data_ptr()</c>), found in the very LibTorchSharp that
/// TorchSharp loaded.
/// </summary>
internal static unsafe class TensorMemory
{
    private static readonly delegate* unmanaged<nint, nint> DataPointer = Resolve();

    /// <summary>True when <paramref name="tensor"/> is contiguous host memory MPI can read in place.</summary>
    public static bool IsHostContiguous(Tensor tensor) => tensor.device_type == DeviceType.CPU && tensor.is_contiguous();

    /// <summary>The address of the tensor's first element (its storage plus the view's offset).</summary>
    public static nint Address(Tensor tensor)
    {
        var address = DataPointer(tensor.Handle);
        if (address == 0 && tensor.numel() > 0)
        {
            throw new InvalidOperationException("THSTensor_data returned no address for a non-empty tensor");
        }

        return address;
    }

    /// <summary>The elements of a contiguous fp32 host tensor, in place.</summary>
    public static Span<float> Floats(Tensor tensor)
    {
        if (!IsHostContiguous(tensor) || tensor.dtype != ScalarType.Float32)
        {
            throw new ArgumentException($"expected a contiguous float32 CPU tensor, got {tensor.dtype} on {tensor.device}", nameof(tensor));
        }

        return new Span<float>((void*)Address(tensor), checked((int)tensor.numel()));
    }

    /// <summary>The bytes of a contiguous host tensor of any element type, in place.</summary>
    public static Span<byte> Bytes(Tensor tensor)
    {
        if (!IsHostContiguous(tensor))
        {
            throw new ArgumentException($"expected a contiguous CPU tensor, got one on {tensor.device}", nameof(tensor));
        }

        return new Span<byte>((void*)Address(tensor), checked((int)(tensor.numel() * tensor.element_size())));
    }

    private static delegate* unmanaged<nint, nint> Resolve()
    {
        // Any TorchSharp call loads LibTorchSharp (and libtorch) through TorchSharp's own search first.
        torch.InitializeDeviceType(DeviceType.CPU);
        if (!NativeLibrary.TryLoad("LibTorchSharp", typeof(torch).Assembly, null, out var library)
            || !NativeLibrary.TryGetExport(library, "THSTensor_data", out var export))
        {
            throw new InvalidOperationException("LibTorchSharp's THSTensor_data was not found next to TorchSharp");
        }

        return (delegate* unmanaged<nint, nint>)export;
    }
}
