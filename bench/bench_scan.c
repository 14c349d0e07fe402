/* GB/s of the scan kernels beside a memcpy moving the same bytes, measured in
   the same run with the same thread count.
   Bytes: forward = a, b read + h written (3 x B*T*C floats); backward =
   a, h, dh read + da, db written (5x); log forward 3x; log backward la, lb,
   lh, g read + dla, dlb written (6x). The memcpy copies half the bytes (so it
   reads and writes the same total); ratio = kernel GB/s / memcpy GB/s.
   Each number is the median of several timed calls after a warm-up.
   Usage: bench_scan [--quick]   (build: make build/bench/bench_scan, i.e. -O3 -march=native
   -ffp-contract=fast -fopenmp; --quick skips the log kernels on the 12.6M-element shape) */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"

static double bs_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int bs_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct bs_ctx {
    int B, T, C, nt, op;
    float *a, *b, *h0, *h, *dh, *da, *db, *ws, *src, *dst;
    size_t copy_floats;
} bs_ctx;
enum { BS_FWD_SEQ, BS_FWD_CHUNK, BS_BWD_SEQ, BS_BWD_CHUNK, BS_LFWD_SEQ, BS_LFWD_CHUNK, BS_LBWD_SEQ, BS_LBWD_CHUNK, BS_COPY };
static const char *bs_names[] = {"fwd seq", "fwd chunked", "bwd seq", "bwd chunked", "log fwd seq", "log fwd chunked",
                                 "log bwd seq", "log bwd chunked"};
static const int bs_mult[] = {3, 3, 5, 5, 3, 3, 6, 6};

static void bs_call(bs_ctx *x) {
    int B = x->B, T = x->T, C = x->C, nt = x->nt;
    switch (x->op) {
    case BS_FWD_SEQ: mr__scan_fwd_seq(B, T, C, x->a, x->b, x->h0, x->h, nt); break;
    case BS_FWD_CHUNK: mr__scan_fwd_chunked(B, T, C, x->a, x->b, x->h0, x->h, 0, x->ws, nt); break;
    case BS_BWD_SEQ: mr__scan_bwd_seq(B, T, C, x->a, x->h, x->h0, x->dh, NULL, x->da, x->db, NULL, nt); break;
    case BS_BWD_CHUNK: mr__scan_bwd_chunked(B, T, C, x->a, x->h, x->h0, x->dh, NULL, x->da, x->db, NULL, 0, x->ws, nt); break;
    /* log variants: a, b reinterpreted as log a (< 0), log b */
    case BS_LFWD_SEQ: mr__scan_fwd_log(B, T, C, x->a, x->b, x->h0, x->h, nt); break;
    case BS_LFWD_CHUNK: mr__scan_fwd_log_chunked(B, T, C, x->a, x->b, x->h0, x->h, 0, x->ws, nt); break;
    case BS_LBWD_SEQ: mr__scan_bwd_log(B, T, C, x->a, x->b, x->h, x->h0, x->dh, NULL, x->da, x->db, NULL, nt); break;
    case BS_LBWD_CHUNK:
        mr__scan_bwd_log_chunked(B, T, C, x->a, x->b, x->h, x->h0, x->dh, NULL, x->da, x->db, NULL, 0, x->ws, nt);
        break;
    default: {
        int64_t n = (int64_t)x->copy_floats, per = (n + nt - 1) / nt;
        int i;
        (void)per;
        MR__OMP(parallel for num_threads(nt) schedule(static))
        for (i = 0; i < nt; i++) {
            int64_t lo = i * per, hi = MR__MIN(n, lo + per);
            if (hi > lo) memcpy(x->dst + lo, x->src + lo, (size_t)(hi - lo) * sizeof(float));
        }
    }
    }
}
static double bs_time(bs_ctx *x, int reps) {
    double t[16];
    int r;
    bs_call(x); /* warm-up */
    for (r = 0; r < reps; r++) {
        double t0 = bs_now();
        bs_call(x);
        t[r] = bs_now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, bs_cmp);
    return t[reps / 2];
}

int main(int argc, char **argv) {
    static const int shapes[][3] = {{32, 256, 128}, {32, 1024, 384}, {1, 65536, 128}, {1, 65536, 16}, {4, 4096, 64}};
    int quick = argc > 1 && !strcmp(argv[1], "--quick"), reps = quick ? 3 : 7, s, nt, op;
    int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    printf("scan kernels, GB/s (median of %d); ratio = kernel / memcpy of the same bytes, same threads\n", reps);
    printf("%-16s %3s %-16s %8s %8s %6s %10s\n", "B,T,C", "thr", "kernel", "GB/s", "memcpy", "ratio", "ms");
    for (s = 0; s < nshapes; s++) {
        int B = shapes[s][0], T = shapes[s][1], C = shapes[s][2];
        int64_t n = (int64_t)B * T * C, i;
        bs_ctx x;
        memset(&x, 0, sizeof x);
        x.B = B; x.T = T; x.C = C;
        x.a = (float *)malloc((size_t)n * 4); x.b = (float *)malloc((size_t)n * 4); x.h = (float *)malloc((size_t)n * 4);
        x.dh = (float *)malloc((size_t)n * 4); x.da = (float *)malloc((size_t)n * 4); x.db = (float *)malloc((size_t)n * 4);
        x.h0 = (float *)malloc((size_t)B * C * 4);
        x.ws = (float *)malloc(mr__scan_workspace_floats(B, T, C, 2) * 4);
        x.src = (float *)malloc((size_t)n * 3 * 4); x.dst = (float *)malloc((size_t)n * 3 * 4);
        for (i = 0; i < n; i++) { x.a[i] = -0.01f * (float)(i % 7); x.b[i] = 0.001f * (float)(i % 13); x.dh[i] = 0.5f; }
        for (i = 0; i < (int64_t)B * C; i++) x.h0[i] = 0.1f;
        for (i = 0; i < n * 3; i++) x.src[i] = (float)i, x.dst[i] = 0;
        for (nt = 1; nt <= 2; nt++)
            for (op = 0; op < 8; op++) {
                double tk, tc, bytes = (double)bs_mult[op] * (double)n * 4;
                char shp[32];
                if (quick && op >= BS_LFWD_SEQ && n > (1 << 22)) continue;
                x.nt = nt;
                if (op == BS_BWD_SEQ || op == BS_BWD_CHUNK) { x.op = BS_FWD_SEQ; bs_call(&x); }
                if (op == BS_LBWD_SEQ || op == BS_LBWD_CHUNK) { x.op = BS_LFWD_SEQ; bs_call(&x); }
                x.op = op;
                tk = bs_time(&x, reps);
                x.op = BS_COPY;
                x.copy_floats = (size_t)(bs_mult[op] * n / 2);
                tc = bs_time(&x, reps);
                snprintf(shp, sizeof shp, "%d,%d,%d", B, T, C);
                printf("%-16s %3d %-16s %8.1f %8.1f %6.2f %10.3f\n", shp, nt, bs_names[op], bytes / tk * 1e-9,
                       bytes / tc * 1e-9, tc / tk, tk * 1e3);
                fflush(stdout);
            }
        free(x.a); free(x.b); free(x.h); free(x.dh); free(x.da); free(x.db); free(x.h0); free(x.ws); free(x.src); free(x.dst);
    }
    return 0;
}
