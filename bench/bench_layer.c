/* bench_layer: forward+backward time of one recurrent layer at T=1024, by
   scan algorithm (MinGRU), against the classic sequential GRU layer.
   usage: bench_layer [threads] */
#define _POSIX_C_SOURCE 200809L
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

/* one layer: pre = x @ W^T; h = core(pre); loss = sum(h * r) */
static double run(mr_ctx *ctx, int kind, int algo, int B, int T, int D, mr_params *ps, mr_tensor *w, mr_tensor *wh, mr_tensor *bhn, const float *xdata) {
    double t[7];
    int rep;
    int64_t sh[3];
    sh[0] = B; sh[1] = T; sh[2] = D;
    for (rep = 0; rep < 7; rep++) {
        double t0 = now();
        mr_tensor *x = mr_tensor_wrap(ctx, (float *)xdata, 3, sh), *pre, *h, *l;
        pre = mr_matmul(ctx, x, w, 0, 1, NULL);
        h = kind == 0 ? mr_mingru_core(ctx, pre, NULL, algo, 0) : mr_gru_core(ctx, pre, wh, bhn, NULL);
        l = mr_sum(ctx, h);
        if (mr_backward(ctx, l) != MR_OK) { fprintf(stderr, "%s\n", mr_ctx_error(ctx)); exit(1); }
        mr_ctx_reset(ctx);
        mr_params_zero_grad(ps);
        t[rep] = now() - t0;
    }
    qsort(t + 1, 6, sizeof(double), cmp);
    return t[3];
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2, bi, D = 128, T = 1024;
    static const int Bs[] = {1, 16};
    mr_ctx *ctx;
    mr_ctx_params cp = mr_ctx_defaults();
    cp.n_threads = threads;
    mr_ctx_new(&ctx, &cp);
    printf("one layer, d=%d, T=%d, forward+backward (input projection included), %d threads, median of 6\n", D, T, threads);
    printf("%4s  %12s %12s %12s %12s   %s\n", "B", "seq ms", "chunked ms", "log ms", "GRU ms", "seq/chunked  GRU/chunked");
    for (bi = 0; bi < 2; bi++) {
        int B = Bs[bi];
        mr_params *ps = NULL;
        if (mr_params_new(&ps, NULL, NULL) != MR_OK) return 1;
        int64_t s1[2] = {2 * D, D}, s3[2] = {3 * D, D}, sh[2] = {3 * D, D}, sb[1] = {D};
        mr_tensor *w = mr_params_add(ps, "w", 2, s1, 0), *w3 = mr_params_add(ps, "w3", 2, s3, 0);
        mr_tensor *wh = mr_params_add(ps, "wh", 2, sh, 0), *bhn = mr_params_add(ps, "bhn", 1, sb, 0);
        float *x = (float *)malloc(sizeof(float) * (size_t)B * T * D);
        mr_rng r;
        double tseq, tch, tlog, tgru;
        int64_t i;
        mr_params_alloc(ps, NULL);
        mr_rng_seed(&r, 1);
        mr_params_init_normal(ps, w, 0.1f, &r); mr_params_init_normal(ps, w3, 0.1f, &r);
        mr_params_init_normal(ps, wh, 0.1f, &r);
        for (i = 0; i < (int64_t)B * T * D; i++) x[i] = mr_rng_normal(&r);
        tseq = run(ctx, 0, MR_SCAN_SEQUENTIAL, B, T, D, ps, w, NULL, NULL, x);
        tch = run(ctx, 0, MR_SCAN_CHUNKED, B, T, D, ps, w, NULL, NULL, x);
        tlog = run(ctx, 0, MR_SCAN_LOG, B, T, D, ps, w, NULL, NULL, x);
        tgru = run(ctx, 1, 0, B, T, D, ps, w3, wh, bhn, x);
        printf("%4d  %12.3f %12.3f %12.3f %12.3f   %8.2fx %10.1fx\n", B, tseq * 1e3, tch * 1e3, tlog * 1e3, tgru * 1e3, tseq / tch, tgru / tch);
        free(x);
        mr_params_free(ps);
    }
    mr_ctx_free(ctx);
    return 0;
}
