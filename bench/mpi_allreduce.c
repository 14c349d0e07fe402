/* The gradient reduction of minrnn-train-mpi, timed alone: MPI_Allreduce
   (sum, in place) of the default model's gradients (926,976 floats: 3.7 MB;
   --n sets the count) as floats (the fast mode) and as int64 (the
   --reproducible fixed-point sum, twice the bytes), plus the fixed-point
   conversion on one process (mr_grad_fixed_add of S = 4 shards and
   mr_grad_fixed_get). Medians over --reps repetitions after warm-up,
   printed by rank 0. Run under mpirun: bench/bench_mpi.sh does. */
#define _POSIX_C_SOURCE 199309L
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    size_t n = 926976, k;
    int reps = 50, rank, size, i, r, e;
    float *g, *g4;
    int64_t *acc;
    double *t, med_f, med_i, med_fx;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n")) n = (size_t)atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    }
    g = (float *)malloc(sizeof(float) * n);
    g4 = (float *)malloc(sizeof(float) * n * 4);
    acc = (int64_t *)malloc(sizeof(int64_t) * n);
    t = (double *)malloc(sizeof(double) * (size_t)reps);
    if (!g || !g4 || !acc || !t) { fprintf(stderr, "out of memory\n"); MPI_Abort(MPI_COMM_WORLD, 1); }
    for (k = 0; k < n; k++) g[k] = (float)((double)((k * 2654435761u) % 1000) * 1e-6 - 5e-4);
    for (k = 0; k < 4 * n; k++) g4[k] = g[k % n] * (float)(1 + k / n);
    for (r = 0; r < reps + 5; r++) {   /* floats */
        double t0;
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, g, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (r >= 5) t[r - 5] = MPI_Wtime() - t0;
        for (k = 0; k < n; k++) g[k] *= 1.0f / (float)size;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    med_f = t[reps / 2];
    for (r = 0; r < reps + 5; r++) {   /* int64 */
        double t0;
        memset(acc, 0, sizeof(int64_t) * n);
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, acc, (int)n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        if (r >= 5) t[r - 5] = MPI_Wtime() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    med_i = t[reps / 2];
    e = mr_grad_fixed_exp(4e-3, 4);
    for (r = 0; r < reps + 5; r++) {   /* fixed-point conversion of 4 shards, then back */
        double t0 = MPI_Wtime();
        memset(acc, 0, sizeof(int64_t) * n);
        for (i = 0; i < 4; i++) mr_grad_fixed_add(acc, g4 + (size_t)i * n, n, e);
        mr_grad_fixed_get(g, acc, n, e, 0.25);
        if (r >= 5) t[r - 5] = MPI_Wtime() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    med_fx = t[reps / 2];
    if (rank == 0) {
        printf("allreduce of %zu values over %d processes: float %.3f ms (%.2f GB/s of buffer), int64 %.3f ms (%.2f GB/s); "
               "fixed-point add of 4 shards + get %.3f ms\n", n, size, 1e3 * med_f, 4.0 * (double)n / med_f * 1e-9, 1e3 * med_i,
               8.0 * (double)n / med_i * 1e-9, 1e3 * med_fx);
    }
    free(g); free(g4); free(acc); free(t);
    MPI_Finalize();
    return 0;
}
