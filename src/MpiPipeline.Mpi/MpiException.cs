using System.Runtime.CompilerServices;

namespace MpiPipeline.Mpi;

/// <summary>An MPI call returned an error code (communicators use MPI_ERRORS_RETURN, so errors come back here).</summary>
public sealed class MpiException : Exception
{
    internal MpiException(string function, int errorCode, int errorClass, string mpiMessage)
        : base($"{function} failed: {mpiMessage} (error code {errorCode}, class {errorClass})")
    {
        Function = function;
        ErrorCode = errorCode;
        ErrorClass = errorClass;
        MpiMessage = mpiMessage;
    }

    public string Function { get; }
    public int ErrorCode { get; }
    public int ErrorClass { get; }
    public string MpiMessage { get; }

    /// <summary>The one check every MPI call goes through (mpi4py's CHKERR).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Check(int code, [CallerArgumentExpression(nameof(code))] string call = "")
    {
        if (code != AbiTable.Success)
        {
            Throw(code, call);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(int code, string call)
    {
        var paren = call.IndexOf('(');
        var function = paren > 0 ? call[..paren].Replace("NativeMethods.", "") : call;
        throw new MpiException(function, code, ErrorClassOf(code), ErrorString(code));
    }

    internal static unsafe string ErrorString(int code)
    {
        var buffer = stackalloc byte[Math.Max(MpiLibrary.Table.MaxErrorString, 1024)];
        var length = 0;
        if (NativeMethods.MPI_Error_string(code, buffer, &length) != AbiTable.Success || length <= 0)
        {
            return $"MPI error {code}";
        }

        return System.Text.Encoding.UTF8.GetString(buffer, length).TrimEnd('\0', ' ', '\n');
    }

    private static unsafe int ErrorClassOf(int code)
    {
        var errorClass = 0;
        return NativeMethods.MPI_Error_class(code, &errorClass) == AbiTable.Success ? errorClass : -1;
    }
}
