using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

[assembly: DisableRuntimeMarshalling]

namespace MpiPipeline.Mpi;

/// <summary>
/// The MPI C functions, bound with [LibraryImport] to the library <see cref="MpiLibrary"/> loaded.
/// Every handle goes as <see cref="nint"/> (valid for both ABIs on x86-64 and AArch64 Linux); output handles are
/// written into a zeroed 8-byte slot. Return codes are checked by <see cref="MpiException.Check"/>, never here.
/// </summary>
internal static unsafe partial class NativeMethods
{
    private const string Lib = MpiLibrary.ImportName;

    [LibraryImport(Lib)] public static partial int MPI_Init_thread(int* argc, byte*** argv, int required, int* provided);
    [LibraryImport(Lib)] public static partial int MPI_Finalize();
    [LibraryImport(Lib)] public static partial int MPI_Abort(nint comm, int errorcode);
    [LibraryImport(Lib)] public static partial int MPI_Initialized(int* flag);
    [LibraryImport(Lib)] public static partial int MPI_Finalized(int* flag);
    [LibraryImport(Lib)] public static partial int MPI_Query_thread(int* provided);
    [LibraryImport(Lib)] public static partial int MPI_Comm_rank(nint comm, int* rank);
    [LibraryImport(Lib)] public static partial int MPI_Comm_size(nint comm, int* size);
    [LibraryImport(Lib)] public static partial int MPI_Get_processor_name(byte* name, int* resultlen);
    [LibraryImport(Lib)] public static partial int MPI_Get_library_version(byte* version, int* resultlen);
    [LibraryImport(Lib)] public static partial int MPI_Get_version(int* version, int* subversion);
    [LibraryImport(Lib)] public static partial double MPI_Wtime();
    [LibraryImport(Lib)] public static partial int MPI_Error_string(int errorcode, byte* text, int* resultlen);
    [LibraryImport(Lib)] public static partial int MPI_Error_class(int errorcode, int* errorclass);
    [LibraryImport(Lib)] public static partial int MPI_Comm_set_errhandler(nint comm, nint errhandler);

    [LibraryImport(Lib)] public static partial int MPI_Send(void* buf, int count, nint datatype, int dest, int tag, nint comm);
    [LibraryImport(Lib)] public static partial int MPI_Recv(void* buf, int count, nint datatype, int source, int tag, nint comm, void* status);
    [LibraryImport(Lib)]
    public static partial int MPI_Sendrecv(void* sendbuf, int sendcount, nint sendtype, int dest, int sendtag,
        void* recvbuf, int recvcount, nint recvtype, int source, int recvtag, nint comm, void* status);
    [LibraryImport(Lib)] public static partial int MPI_Isend(void* buf, int count, nint datatype, int dest, int tag, nint comm, nint* request);
    [LibraryImport(Lib)] public static partial int MPI_Irecv(void* buf, int count, nint datatype, int source, int tag, nint comm, nint* request);
    [LibraryImport(Lib)] public static partial int MPI_Wait(nint* request, void* status);
    [LibraryImport(Lib)] public static partial int MPI_Waitall(int count, void* requests, void* statuses);
    [LibraryImport(Lib)] public static partial int MPI_Test(nint* request, int* flag, void* status);
    [LibraryImport(Lib)] public static partial int MPI_Waitany(int count, void* requests, int* index, void* status);
    [LibraryImport(Lib)] public static partial int MPI_Testany(int count, void* requests, int* index, int* flag, void* status);
    [LibraryImport(Lib)] public static partial int MPI_Probe(int source, int tag, nint comm, void* status);
    [LibraryImport(Lib)] public static partial int MPI_Iprobe(int source, int tag, nint comm, int* flag, void* status);
    [LibraryImport(Lib)] public static partial int MPI_Get_count(void* status, nint datatype, int* count);

    [LibraryImport(Lib)] public static partial int MPI_Barrier(nint comm);
    [LibraryImport(Lib)] public static partial int MPI_Bcast(void* buf, int count, nint datatype, int root, nint comm);
    [LibraryImport(Lib)] public static partial int MPI_Reduce(void* sendbuf, void* recvbuf, int count, nint datatype, nint op, int root, nint comm);
    [LibraryImport(Lib)] public static partial int MPI_Allreduce(void* sendbuf, void* recvbuf, int count, nint datatype, nint op, nint comm);
    [LibraryImport(Lib)] public static partial int MPI_Iallreduce(void* sendbuf, void* recvbuf, int count, nint datatype, nint op, nint comm, nint* request);
    [LibraryImport(Lib)]
    public static partial int MPI_Gather(void* sendbuf, int sendcount, nint sendtype, void* recvbuf, int recvcount, nint recvtype, int root, nint comm);
    [LibraryImport(Lib)]
    public static partial int MPI_Allgather(void* sendbuf, int sendcount, nint sendtype, void* recvbuf, int recvcount, nint recvtype, nint comm);
    [LibraryImport(Lib)]
    public static partial int MPI_Allgatherv(void* sendbuf, int sendcount, nint sendtype, void* recvbuf, int* recvcounts, int* displs, nint recvtype, nint comm);
    [LibraryImport(Lib)]
    public static partial int MPI_Iallgather(void* sendbuf, int sendcount, nint sendtype, void* recvbuf, int recvcount, nint recvtype, nint comm, nint* request);
    [LibraryImport(Lib)]
    public static partial int MPI_Iallgatherv(void* sendbuf, int sendcount, nint sendtype, void* recvbuf, int* recvcounts, int* displs, nint recvtype, nint comm, nint* request);
    [LibraryImport(Lib)]
    public static partial int MPI_Scatter(void* sendbuf, int sendcount, nint sendtype, void* recvbuf, int recvcount, nint recvtype, int root, nint comm);
    [LibraryImport(Lib)]
    public static partial int MPI_Reduce_scatter_block(void* sendbuf, void* recvbuf, int recvcount, nint datatype, nint op, nint comm);
    [LibraryImport(Lib)]
    public static partial int MPI_Alltoall(void* sendbuf, int sendcount, nint sendtype, void* recvbuf, int recvcount, nint recvtype, nint comm);
    [LibraryImport(Lib)]
    public static partial int MPI_Alltoallv(void* sendbuf, int* sendcounts, int* sdispls, nint sendtype,
        void* recvbuf, int* recvcounts, int* rdispls, nint recvtype, nint comm);

    [LibraryImport(Lib)] public static partial int MPI_Comm_dup(nint comm, nint* newcomm);
    [LibraryImport(Lib)] public static partial int MPI_Comm_split(nint comm, int color, int key, nint* newcomm);
    [LibraryImport(Lib)] public static partial int MPI_Comm_split_type(nint comm, int splitType, int key, nint info, nint* newcomm);
    [LibraryImport(Lib)] public static partial int MPI_Comm_free(nint* comm);

    /// <summary>libc setenv: Environment.SetEnvironmentVariable does not reach native getenv (UCX reads it in MPI_Init).</summary>
    [LibraryImport("libc.so.6", StringMarshalling = StringMarshalling.Utf8)]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int setenv(string name, string value, int overwrite);

    /// <summary>libc nanosleep; <paramref name="request"/> is a struct timespec { long tv_sec; long tv_nsec; } (64-bit Linux).</summary>
    [LibraryImport("libc.so.6")]
    [UnmanagedCallConv(CallConvs = [typeof(CallConvCdecl)])]
    public static partial int nanosleep(long* request, long* remaining);
}
