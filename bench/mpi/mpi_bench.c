/*
 * The limit for `mpipipe bench mpi`: the same OSU-style loops in C (src/MpiPipeline.Core/Benchmarks/MpiBenchmark.cs
 * and IterationSchedule.cs must stay the same loop and schedule). Built by each MPI's own mpicc (mk/bench-mpi.mk).
 *
 *   mpi_bench [--min-size BYTES] [--max-size BYTES] [--step N] [--ops pingpong,allreduce]
 *             [--iterations SCALE] [--samples N] [--warmup SECONDS] [--thread multiple|single]
 *
 * Prints, on rank 0, '#' comment lines and one line per operation and size: "op size_bytes min_us median_us",
 * the format of `mpipipe bench mpi --raw`. With --schedule as the last argument it prints, without starting MPI,
 * "size_bytes warmup_ops ops_per_sample samples" per size (a unit test compares that with IterationSchedule.cs).
 *
 * Per operation: a warm-up of at least --warmup seconds at the first size (rank 0's clock, broadcast). Per size:
 * ops = max(1, floor(scale * min(1000, 4 MiB / size))), a barrier and max(1, ops / 10) untimed ops, then `samples`
 * batches of `ops`, each started by a barrier and timed with MPI_Wtime; a sample is batch time / ops (halved for
 * ping-pong: one-way latency), the slowest rank's (MPI_MAX). Buffers are page-aligned and touched before use.
 *
 * MPI starts as the binding starts it, MPI_Init_thread(MPI_THREAD_MULTIPLE) (MpiEnvironment.Initialize); --thread single
 * uses MPI_Init instead. Open MPI 4.1 is measurably slower at small sizes with a thread level than with MPI_Init (see
 * bench/results/mpi.md), so the baseline must ask for the same level as the binding to compare the binding alone.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TAG = 7, MAX_OPS_PER_SAMPLE = 1000, ALIGNMENT = 4096 };
static const long BYTES_PER_SAMPLE = 4L << 20;

enum op { PINGPONG, ALLREDUCE };
static const char *op_name[] = { "pingpong", "allreduce" };

struct options {
    long min_size, max_size, step;
    int ops[2], n_ops;
    double scale;
    int samples;
    double warmup_seconds;
    int thread_single;
};

static int rank, world_size, mpi_started;

static void fail(const char *message, const char *arg)
{
    if (rank == 0) {
        fprintf(stderr, "mpi_bench: %s%s\n", message, arg ? arg : "");
    }
    if (mpi_started) {
        MPI_Finalize();
    }
    exit(2);
}

static long parse_size(const char *text)
{
    char *end;
    long value = strtol(text, &end, 10);
    int shift = 0;
    if (end == text || value <= 0) {
        fail("not a size: ", text);
    }
    if (*end == 'K' || *end == 'k') {
        shift = 10, end++;
    } else if (*end == 'M' || *end == 'm') {
        shift = 20, end++;
    } else if (*end == 'G' || *end == 'g') {
        shift = 30, end++;
    }
    if (shift != 0 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)) {
        end += strlen(end);
    } else if (shift == 0 && strcmp(end, "B") == 0) {
        end++;
    }
    if (*end != '\0' || value > (1L << (31 - shift))) {
        fail("not a size (bytes, or a K, KiB, M, MiB, G or GiB suffix, up to 1 GiB): ", text);
    }
    return value << shift;
}

static void parse_ops(const char *text, struct options *o)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text);
    o->n_ops = 0;
    for (char *word = strtok(copy, ","); word != NULL; word = strtok(NULL, ",")) {
        if (o->n_ops == 2) {
            fail("too many operations: ", text);
        }
        if (strcmp(word, "pingpong") == 0) {
            o->ops[o->n_ops++] = PINGPONG;
        } else if (strcmp(word, "allreduce") == 0) {
            o->ops[o->n_ops++] = ALLREDUCE;
        } else {
            fail("unknown operation: ", word);
        }
    }
}

static int is_power_of_two(long v) { return v > 0 && (v & (v - 1)) == 0; }

static struct options parse(int argc, char **argv)
{
    struct options o = { 8, 64L << 20, 2, { PINGPONG, ALLREDUCE }, 2, 1.0, 21, 0.5, 0 };
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (i + 1 >= argc) {
            fail("missing value after ", flag);
        }
        const char *value = argv[++i];
        if (strcmp(flag, "--min-size") == 0) o.min_size = parse_size(value);
        else if (strcmp(flag, "--max-size") == 0) o.max_size = parse_size(value);
        else if (strcmp(flag, "--step") == 0) o.step = atol(value);
        else if (strcmp(flag, "--ops") == 0) parse_ops(value, &o);
        else if (strcmp(flag, "--iterations") == 0) o.scale = atof(value);
        else if (strcmp(flag, "--samples") == 0) o.samples = atoi(value);
        else if (strcmp(flag, "--warmup") == 0) o.warmup_seconds = atof(value);
        else if (strcmp(flag, "--thread") == 0 && strcmp(value, "single") == 0) o.thread_single = 1;
        else if (strcmp(flag, "--thread") == 0 && strcmp(value, "multiple") == 0) o.thread_single = 0;
        else fail("unknown option: ", flag);
    }
    if (!is_power_of_two(o.min_size) || o.min_size < 4 || !is_power_of_two(o.max_size) || o.max_size > (1L << 30)
        || o.max_size < o.min_size || o.step < 2 || !is_power_of_two(o.step) || !(o.scale > 0) || o.samples < 1
        || !(o.warmup_seconds >= 0)) {
        fail("bad options (sizes: powers of two from 4 B to 1 GiB, min <= max; step a power of two >= 2; "
             "scale > 0; samples >= 1; warmup >= 0)", NULL);
    }
    return o;
}

/* ops per sample = max(1, floor(scale * min(1000, 4 MiB / size))) */
static int ops_per_sample(long size, double scale)
{
    long unscaled = BYTES_PER_SAMPLE / size;
    if (unscaled > MAX_OPS_PER_SAMPLE) {
        unscaled = MAX_OPS_PER_SAMPLE;
    }
    double ops = floor(scale * (double)unscaled);
    if (ops > 1073741823.0) {
        ops = 1073741823.0;
    }
    return ops < 1 ? 1 : (int)ops;
}

static void pingpong(unsigned char *message, long size, int ops)
{
    if (rank == 0) {
        for (int i = 0; i < ops; i++) {
            MPI_Send(message, (int)size, MPI_UINT8_T, 1, TAG, MPI_COMM_WORLD);
            MPI_Recv(message, (int)size, MPI_UINT8_T, 1, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
    } else if (rank == 1) {
        for (int i = 0; i < ops; i++) {
            MPI_Recv(message, (int)size, MPI_UINT8_T, 0, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(message, (int)size, MPI_UINT8_T, 0, TAG, MPI_COMM_WORLD);
        }
    }
}

static void allreduce(float *send, float *receive, long size, int ops)
{
    for (int i = 0; i < ops; i++) {
        MPI_Allreduce(send, receive, (int)(size / 4), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
}

static void batch(enum op op, void *send, void *receive, long size, int ops)
{
    if (op == PINGPONG) {
        pingpong(send, size, ops);
    } else {
        allreduce(send, receive, size, ops);
    }
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *samples, int n)
{
    double *sorted = malloc(sizeof(double) * (size_t)n);
    memcpy(sorted, samples, sizeof(double) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(double), compare_doubles);
    double m = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    free(sorted);
    return m;
}

static void *touched_buffer(long bytes, int fill)
{
    void *p = NULL;
    if (posix_memalign(&p, ALIGNMENT, (size_t)bytes) != 0) {
        fail("out of memory", NULL);
    }
    memset(p, fill, (size_t)bytes);
    return p;
}

static void warm_up(enum op op, void *send, void *receive, const struct options *o)
{
    int ops = ops_per_sample(o->min_size, o->scale);
    int more = 1;
    MPI_Barrier(MPI_COMM_WORLD);
    double start = MPI_Wtime();
    while (more) {
        batch(op, send, receive, o->min_size, ops);
        more = MPI_Wtime() - start < o->warmup_seconds;
        MPI_Bcast(&more, 1, MPI_INT, 0, MPI_COMM_WORLD);
    }
}

static int warmup_ops(int ops) { return ops / 10 < 1 ? 1 : ops / 10; }

static void print_schedule(const struct options *o)
{
    for (long size = o->min_size; size <= o->max_size; size *= o->step) {
        int ops = ops_per_sample(size, o->scale);
        printf("%ld %d %d %d\n", size, warmup_ops(ops), ops, o->samples);
    }
}

static void measure(enum op op, void *send, void *receive, long size, const struct options *o, double *microseconds)
{
    int ops = ops_per_sample(size, o->scale);
    MPI_Barrier(MPI_COMM_WORLD);
    batch(op, send, receive, size, warmup_ops(ops));

    double per_op = (op == PINGPONG ? 0.5 : 1.0) * 1e6 / ops;
    for (int s = 0; s < o->samples; s++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double start = MPI_Wtime();
        batch(op, send, receive, size, ops);
        microseconds[s] = (MPI_Wtime() - start) * per_op;
    }

    if (op == PINGPONG && rank > 1) {
        memset(microseconds, 0, sizeof(double) * (size_t)o->samples);
    }
    MPI_Allreduce(MPI_IN_PLACE, microseconds, o->samples, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) {
        double min = microseconds[0];
        for (int s = 1; s < o->samples; s++) {
            min = microseconds[s] < min ? microseconds[s] : min;
        }
        printf("%s %ld %.3f %.3f\n", op_name[op], size, min, median(microseconds, o->samples));
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[argc - 1], "--schedule") == 0) {
        struct options o = parse(argc - 1, argv);
        print_schedule(&o);
        return 0;
    }

    int single = 0, provided = 0;
    for (int i = 1; i + 1 < argc; i++) {
        single |= strcmp(argv[i], "--thread") == 0 && strcmp(argv[i + 1], "single") == 0;
    }
    if (single) {
        MPI_Init(&argc, &argv);
        MPI_Query_thread(&provided);
    } else {
        MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    }
    mpi_started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    struct options o = parse(argc, argv);

    char library[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(library, &length);
    library[strcspn(library, "\n")] = '\0';
    for (char *c = library; *c; c++) {
        if (*c == '\t') {
            *c = ' ';
        }
    }
    if (rank == 0) {
        printf("# mpi_bench (C) ranks=%d library: %s\n", world_size, library);
        printf("# thread level provided: %d (%s)\n", provided, single ? "MPI_Init" : "MPI_Init_thread MULTIPLE");
        printf("# op size_bytes min_us median_us\n");
    }

    double *microseconds = malloc(sizeof(double) * (size_t)o.samples);
    for (int k = 0; k < o.n_ops; k++) {
        enum op op = o.ops[k];
        if (op == PINGPONG && world_size < 2) {
            if (rank == 0) {
                fprintf(stderr, "mpi_bench: ping-pong skipped: it needs at least 2 ranks and the job has %d.\n", world_size);
            }
            continue;
        }
        void *send = touched_buffer(o.max_size, 1);
        void *receive = touched_buffer(o.max_size, 0);
        warm_up(op, send, receive, &o);
        for (long size = o.min_size; size <= o.max_size; size *= o.step) {
            measure(op, send, receive, size, &o, microseconds);
        }
        free(send);
        free(receive);
    }

    free(microseconds);
    MPI_Finalize();
    return 0;
}
