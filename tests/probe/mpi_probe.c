/* Prints the MPI constants and struct layout that the C# binding hard-codes, as "KEY VALUE" lines.
 * Compiled by each MPI's own mpicc (see Makefile target `probe`); MpiPipeline.Tests compares the output
 * with MpiPipeline.Mpi.AbiTable. Handles print as hex integers for the MPICH ABI and as the exported global's
 * name for Open MPI (where a handle is the address of a global). */
#include <mpi.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#ifdef OPEN_MPI
#define HANDLE(key, h, sym) printf("%s %s\n", key, ((void *)(h) == (void *)&(sym)) ? #sym : "MISMATCH")
#else
#define HANDLE(key, h, sym) printf("%s 0x%08x\n", key, (unsigned)(h))
#endif
#define INT(key, v) printf("%s %lld\n", key, (long long)(v))
#define PTR(key, v) printf("%s %lld\n", key, (long long)(intptr_t)(v))

int main(void) {
#ifdef OPEN_MPI
    printf("ABI openmpi\n");
#else
    printf("ABI mpich\n");
#endif
    HANDLE("COMM_WORLD", MPI_COMM_WORLD, ompi_mpi_comm_world);
    HANDLE("COMM_SELF", MPI_COMM_SELF, ompi_mpi_comm_self);
    HANDLE("COMM_NULL", MPI_COMM_NULL, ompi_mpi_comm_null);
    HANDLE("FLOAT", MPI_FLOAT, ompi_mpi_float);
    HANDLE("DOUBLE", MPI_DOUBLE, ompi_mpi_double);
    HANDLE("INT", MPI_INT, ompi_mpi_int);
    HANDLE("INT64_T", MPI_INT64_T, ompi_mpi_int64_t);
    HANDLE("BYTE", MPI_BYTE, ompi_mpi_byte);
    HANDLE("UINT8_T", MPI_UINT8_T, ompi_mpi_uint8_t);
    HANDLE("SUM", MPI_SUM, ompi_mpi_op_sum);
    HANDLE("MAX", MPI_MAX, ompi_mpi_op_max);
    HANDLE("MIN", MPI_MIN, ompi_mpi_op_min);
    HANDLE("REQUEST_NULL", MPI_REQUEST_NULL, ompi_request_null);
    HANDLE("ERRORS_RETURN", MPI_ERRORS_RETURN, ompi_mpi_errors_return);
    HANDLE("INFO_NULL", MPI_INFO_NULL, ompi_mpi_info_null);
    INT("STATUS_SIZE", sizeof(MPI_Status));
    INT("STATUS_SOURCE", offsetof(MPI_Status, MPI_SOURCE));
    INT("STATUS_TAG", offsetof(MPI_Status, MPI_TAG));
    INT("STATUS_ERROR", offsetof(MPI_Status, MPI_ERROR));
    INT("HANDLE_SIZE", sizeof(MPI_Comm));
    INT("REQUEST_SIZE", sizeof(MPI_Request));
    PTR("STATUS_IGNORE", MPI_STATUS_IGNORE);
    PTR("STATUSES_IGNORE", MPI_STATUSES_IGNORE);
    PTR("IN_PLACE", MPI_IN_PLACE);
    INT("ANY_SOURCE", MPI_ANY_SOURCE);
    INT("ANY_TAG", MPI_ANY_TAG);
    INT("PROC_NULL", MPI_PROC_NULL);
    INT("UNDEFINED", MPI_UNDEFINED);
    INT("SUCCESS", MPI_SUCCESS);
    INT("THREAD_SINGLE", MPI_THREAD_SINGLE);
    INT("THREAD_FUNNELED", MPI_THREAD_FUNNELED);
    INT("THREAD_SERIALIZED", MPI_THREAD_SERIALIZED);
    INT("THREAD_MULTIPLE", MPI_THREAD_MULTIPLE);
    INT("COMM_TYPE_SHARED", MPI_COMM_TYPE_SHARED);
    INT("MAX_PROCESSOR_NAME", MPI_MAX_PROCESSOR_NAME);
    INT("MAX_ERROR_STRING", MPI_MAX_ERROR_STRING);
    INT("MAX_LIBRARY_VERSION_STRING", MPI_MAX_LIBRARY_VERSION_STRING);
    INT("SIZEOF_AINT", sizeof(MPI_Aint));
    INT("SIZEOF_COUNT", sizeof(MPI_Count));
    return 0;
}
