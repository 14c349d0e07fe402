/* GFLOP/s of minrnn's packed CPU GEMM vs OpenBLAS cblas_sgemm at the
   training shapes (8192 rows, K in {128, 256}, N in {384, 512, 1024}):
     fwd   Y[8192,N]  = X[8192,K] @ W^T, W stored [N,K]   (ta=0, tb=1, beta 0)
     bwd_x dX[8192,K] += dY[8192,N] @ W[N,K]              (ta=0, tb=0, beta 1)
     bwd_w dW[N,K]   += dY^T @ X, K = 8192               (ta=1, tb=0, beta 1)
   Each number is the median of several timed calls after a warm-up.
   Usage: bench_gemm [nthreads (default 2)] [--quick]
   Run with `env -u OPENBLAS_CORETYPE` so OpenBLAS picks its own (AVX-512)
   kernels. Needs -lopenblas. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"

static double bg_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int bg_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double bg_median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, bg_cmp);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

typedef struct bg_case { const char *name; int ta, tb, M, N, K; float beta; } bg_case;

static void *bg_ws;
static int bg_nt;

static void bg_run(const bg_case *c, int lib, const float *A, const float *B, float *C) {
    int lda = c->ta ? c->M : c->K, ldb = c->tb ? c->K : c->N;
    if (lib == 0)
        mr__gemm_cpu(c->ta, c->tb, c->M, c->N, c->K, 1.f, A, lda, B, ldb, c->beta, C, c->N, bg_nt, bg_ws);
    else
        cblas_sgemm(CblasRowMajor, c->ta ? CblasTrans : CblasNoTrans, c->tb ? CblasTrans : CblasNoTrans,
                    c->M, c->N, c->K, 1.f, A, lda, B, ldb, c->beta, C, c->N);
}

/* Median seconds of one call. The libraries are timed one after the other,
   not in turns: each one's idle threads spin for a while after a call and
   would slow the other down. */
static double bg_time(const bg_case *c, int lib, const float *A, const float *B, float *C, int warm, int reps) {
    double t[64], s;
    int i;
    for (i = 0; i < warm; i++) bg_run(c, lib, A, B, C);
    for (i = 0; i < reps; i++) {
        s = bg_now();
        bg_run(c, lib, A, B, C);
        t[i] = bg_now() - s;
    }
    return bg_median(t, reps);
}

int main(int argc, char **argv) {
    static const int Ks[] = {128, 256}, Ns[] = {384, 512, 1024};
    const int rows = 8192;
    int quick = 0, i, ki, ni, ci, warm, reps;
    size_t maxel = (size_t)rows * 1024, e;
    float *A, *B, *C, *C2;
    unsigned char *raw;
    double worst = 1e9, maxdiff = 0;
    bg_nt = 2;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (atoi(argv[i]) > 0) bg_nt = atoi(argv[i]);
    }
    warm = quick ? 1 : 3;
    reps = quick ? 5 : 15;
    openblas_set_num_threads(bg_nt);
    raw = (unsigned char *)malloc(mr__gemm_workspace_bytes(bg_nt) + 64);
    bg_ws = (void *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    A = (float *)malloc(maxel * sizeof(float));
    B = (float *)malloc(maxel * sizeof(float));
    C = (float *)malloc(maxel * sizeof(float));
    C2 = (float *)malloc(maxel * sizeof(float));
    for (e = 0; e < maxel; e++) {
        A[e] = (float)((e * 2654435761u) % 1000) / 1000.f - 0.5f;
        B[e] = (float)((e * 40503u + 7) % 1000) / 1000.f - 0.5f;
    }
    printf("threads %d, %s, median of %d after %d warm-up\n", bg_nt, quick ? "quick" : "full", reps, warm);
    printf("%-6s %6s %6s %6s %10s %10s %7s\n", "case", "M", "N", "K", "ours", "openblas", "ratio");
    for (ki = 0; ki < 2; ki++) for (ni = 0; ni < 3; ni++) {
        int K = Ks[ki], N = Ns[ni];
        bg_case cs[3];
        cs[0].name = "fwd";   cs[0].ta = 0; cs[0].tb = 1; cs[0].M = rows; cs[0].N = N; cs[0].K = K;    cs[0].beta = 0.f;
        cs[1].name = "bwd_x"; cs[1].ta = 0; cs[1].tb = 0; cs[1].M = rows; cs[1].N = K; cs[1].K = N;    cs[1].beta = 1.f;
        cs[2].name = "bwd_w"; cs[2].ta = 1; cs[2].tb = 0; cs[2].M = N;    cs[2].N = K; cs[2].K = rows; cs[2].beta = 1.f;
        for (ci = 0; ci < 3; ci++) {
            const bg_case *c = &cs[ci];
            double flop = 2.0 * c->M * c->N * c->K, t0, t1;
            size_t nc = (size_t)c->M * c->N;
            memset(C, 0, nc * sizeof(float));
            memset(C2, 0, nc * sizeof(float));
            bg_run(c, 0, A, B, C);   /* agreement check, one call each from C = 0 */
            bg_run(c, 1, A, B, C2);
            for (e = 0; e < nc; e++) {
                double d = fabs((double)C[e] - C2[e]) / (1.0 + fabs((double)C2[e]));
                if (d > maxdiff) maxdiff = d;
            }
            t0 = bg_time(c, 0, A, B, C, warm, reps);
            t1 = bg_time(c, 1, A, B, C2, warm, reps);
            printf("%-6s %6d %6d %6d %10.1f %10.1f %7.2f\n", c->name, c->M, c->N, c->K,
                   flop / t0 * 1e-9, flop / t1 * 1e-9, t1 / t0);
            fflush(stdout);
            if (t1 / t0 < worst) worst = t1 / t0;
        }
    }
    printf("worst ratio %.2f; max relative difference vs openblas %.2e\n", worst, maxdiff);
    free(A); free(B); free(C); free(C2); free(raw);
    return 0;
}
