/* The RWKV-6 wkv kernel (mr_wkv6) at the shape of the d=128 model (B 32,
   T 256, 2 heads of 64), forward and backward, in GFLOP/s against the same
   machine's GEMM (mr_gemm of the model's projections, M = B*T, N = K = 128)
   measured in the same run: the wkv is compute-bound (it reads r, k, v, w
   once, ~16 MB, and does N^2 work per token and head), so the GEMM's rate
   is the practical bound. Flops counted: forward 4 N^2 per (token, head)
   (y += r S: 2; S = d S + k v: 2); backward 13 N^2 (the recompute 2, the
   five row passes 11).
   Usage: bench_wkv [--threads N (2)] [--batch B (32)] [--ctx T (256)] [--heads H (2)] [--head-size N (64)] */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

int main(int argc, char **argv) {
    int threads = 2, B = 32, T = 256, H = 2, N = 64, i, r;
    mr_ctx *ctx = NULL;
    mr_ctx_params cp = mr_ctx_defaults();
    mr_params *ps = NULL;
    mr_tensor *t[5];
    mr_rng rng;
    int64_t sh[3];
    double tf[7], tb[7], tg[7], flops_f, flops_b, gf, gb, gg;
    float *A, *Bm, *Cm;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--heads") && i + 1 < argc) H = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--head-size") && i + 1 < argc) N = atoi(argv[++i]);
        else { fprintf(stderr, "usage: %s [--threads N] [--batch B] [--ctx T] [--heads H] [--head-size N]\n", argv[0]); return 2; }
    }
    if (B < 1 || T < 1 || H < 1 || N < 1 || N > 1024) { fprintf(stderr, "bad sizes\n"); return 2; }
    cp.n_threads = threads;
    if (mr_ctx_new(&ctx, &cp) != MR_OK || mr_params_new(&ps, NULL, NULL) != MR_OK) { fprintf(stderr, "init failed\n"); return 1; }
    sh[0] = B; sh[1] = T; sh[2] = (int64_t)H * N;
    t[0] = mr_params_add(ps, "r", 3, sh, 0); t[1] = mr_params_add(ps, "k", 3, sh, 0);
    t[2] = mr_params_add(ps, "v", 3, sh, 0); t[3] = mr_params_add(ps, "w", 3, sh, 0);
    t[4] = mr_params_add(ps, "u", 1, &sh[2], 0);
    if (mr_params_alloc(ps, NULL) != MR_OK) { fprintf(stderr, "out of memory\n"); return 1; }
    mr_rng_seed(&rng, 3);
    for (i = 0; i < 5; i++) mr_params_init_uniform(ps, t[i], -1.f, 1.f, &rng);
    for (r = 0; r < 9; r++) {
        double a, b, c;
        mr_tensor *y;
        mr_params_zero_grad(ps);
        a = now();
        y = mr_wkv6(ctx, t[0], t[1], t[2], t[3], t[4], H, NULL, NULL);
        b = now();
        if (!y || mr_backward_seed(ctx, y, t[0]->data) != MR_OK) { fprintf(stderr, "wkv failed: %s\n", mr_ctx_error(ctx)); return 1; }
        c = now();
        if (r >= 2) { tf[r - 2] = b - a; tb[r - 2] = c - b; }
        mr_ctx_reset(ctx);
    }
    /* the GEMM of a [B T, 128] x [128, 128] projection, the same run */
    A = (float *)malloc(sizeof(float) * (size_t)B * T * 128);
    Bm = (float *)malloc(sizeof(float) * 128 * 128);
    Cm = (float *)malloc(sizeof(float) * (size_t)B * T * 128);
    if (!A || !Bm || !Cm) { fprintf(stderr, "out of memory\n"); return 1; }
    for (i = 0; i < B * T * 128; i++) A[i] = mr_rng_uniform(&rng);
    for (i = 0; i < 128 * 128; i++) Bm[i] = mr_rng_uniform(&rng);
    for (r = 0; r < 9; r++) {
        double a = now();
        int k;
        for (k = 0; k < 5; k++) mr_gemm(ctx, 0, 1, B * T, 128, 128, 1.f, A, 128, Bm, 128, 0.f, Cm, 128);
        if (r >= 2) tg[r - 2] = (now() - a) / 5;
    }
    qsort(tf, 7, sizeof *tf, cmpd); qsort(tb, 7, sizeof *tb, cmpd); qsort(tg, 7, sizeof *tg, cmpd);
    flops_f = 4.0 * N * N * (double)B * T * H;
    flops_b = 13.0 * N * N * (double)B * T * H;
    gf = flops_f / tf[3] * 1e-9; gb = flops_b / tb[3] * 1e-9; gg = 2.0 * B * T * 128.0 * 128.0 / tg[3] * 1e-9;
    printf("bench_wkv: B %d T %d H %d N %d, %d threads (median of 7)\n", B, T, H, N, threads);
    printf("wkv forward  %8.2f ms  %6.1f GFLOP/s  (%.2f of the GEMM)\n", tf[3] * 1e3, gf, gf / gg);
    printf("wkv backward %8.2f ms  %6.1f GFLOP/s  (%.2f of the GEMM)\n", tb[3] * 1e3, gb, gb / gg);
    printf("GEMM %dx128x128 %6.3f ms  %6.1f GFLOP/s\n", B * T, tg[3] * 1e3, gg);
    free(A); free(Bm); free(Cm);
    mr_params_free(ps);
    mr_ctx_free(ctx);
    return 0;
}
