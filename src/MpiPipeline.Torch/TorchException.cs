using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MpiPipeline.Torch;

/// <summary>What kind of failure the bridge reported (the <c>mpp_status</c> codes of mpp_bridge.h).</summary>
public enum BridgeStatus
{
    Ok = 0,

    /// <summary>A bad argument: layer spec, shape, size, slot, device, optimizer setting.</summary>
    InvalidArgument = 1,

    /// <summary>libtorch raised an error (c10::Error).</summary>
    Torch = 2,

    /// <summary>Out of host or device memory.</summary>
    OutOfMemory = 3,

    /// <summary>Any other C++ exception inside the bridge.</summary>
    Internal = 4,

    /// <summary>The bridge library could not be found, loaded, or is the wrong version.</summary>
    NotLoaded = 100,
}

/// <summary>
/// A failure inside the libtorch bridge, or the bridge could not be loaded. Carries the native message (C++ exceptions
/// never cross the boundary: each export catches them and returns a status, see <see cref="Check"/>).
/// </summary>
public sealed class TorchException : Exception
{
    internal TorchException(string function, BridgeStatus status, string nativeMessage)
        : base($"{nativeMessage} ({function})")
    {
        Function = function;
        Status = status;
        NativeMessage = nativeMessage;
    }

    /// <summary>The bridge function (mpp_...) or C# operation that failed.</summary>
    public string Function { get; }

    public BridgeStatus Status { get; }

    /// <summary>The message as the bridge wrote it (libtorch errors without their C++ backtrace).</summary>
    public string NativeMessage { get; }

    /// <summary>The one check every bridge call goes through: a non-zero status becomes a TorchException with mpp_last_error().</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Check(int status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != 0)
        {
            Throw(status, call);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(int status, string call)
    {
        var message = Marshal.PtrToStringUTF8(NativeMethods.mpp_last_error());
        var paren = call.IndexOf('(');
        var function = paren > 0 ? call[..paren].Replace("NativeMethods.", "") : call;
        var kind = Enum.IsDefined((BridgeStatus)status) ? (BridgeStatus)status : BridgeStatus.Internal;
        throw new TorchException(function, kind, string.IsNullOrEmpty(message) ? $"status {status} without a message" : message);
    }
}
