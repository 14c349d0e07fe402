/* Causal attention: forward+backward time and memory of mr_attention at
   T = 256, 1024, 4096 (B=1, H=4, hd=32: the GPT d128 block), and generation
   tokens/s of the GPT d128 L4 H4 model (--layers attn*4) with the KV cache
   at positions 100 and 1000 (one stream, the cache prefilled by a parallel
   pass). Memory is the context's arena high-water mark for the op alone:
   inputs, outputs, saved state and the backward's scratch (no [T, T]).
   Usage: bench_attention [--threads N (2)] */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec; }

int main(int argc, char **argv) {
    int threads = 2, i, k;
    static const int Ts[] = {256, 1024, 4096};
    mr_ctx *ctx;
    mr_ctx_params cp = mr_ctx_defaults();
    mr_rng rng;
    for (i = 1; i < argc; i++) if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    cp.n_threads = threads;
    if (mr_ctx_new(&ctx, &cp) != MR_OK) return 1;
    mr_rng_seed(&rng, 1);
    printf("bench_attention: threads %d\n", threads);
    for (k = 0; k < 3; k++) {
        int T = Ts[k], H = 4, hd = 32, reps = T <= 256 ? 20 : T <= 1024 ? 4 : 1, r;
        int64_t n = (int64_t)T * 3 * H * hd;
        float *x = (float *)malloc(sizeof(float) * (size_t)n), *g = (float *)malloc(sizeof(float) * (size_t)n);
        double tf = 1e30, tb = 1e30;
        size_t peak = 0;
        int64_t sh[3] = {1, T, 3 * H * hd};
        for (i = 0; i < n; i++) x[i] = mr_rng_normal(&rng);
        for (r = 0; r < reps + 1; r++) {
            mr_tensor *in, *o, *l;
            double t0, t1, t2;
            mr_ctx_reset(ctx);
            in = mr_tensor_wrap(ctx, x, 3, sh);
            in->grad = g; in->flags |= MR_TENSOR_REQUIRES_GRAD;
            memset(g, 0, sizeof(float) * (size_t)n);
            t0 = now();
            o = mr_attention(ctx, in, H, H, 10000.f, 0, NULL, NULL, 0);
            t1 = now();
            l = mr_sum(ctx, o);
            if (!l || mr_backward(ctx, l) != MR_OK) { fprintf(stderr, "%s\n", mr_ctx_error(ctx)); return 1; }
            t2 = now();
            if (r > 0) { if (t1 - t0 < tf) tf = t1 - t0; if (t2 - t1 < tb) tb = t2 - t1; }
            if (mr_ctx_arena_used(ctx) > peak) peak = mr_ctx_arena_used(ctx);
        }
        printf("attention T %5d  B 1 H 4 hd 32: forward %8.2f ms  backward %8.2f ms  arena %7.2f MiB "
               "(a [T,T] score matrix per head would be %.1f MiB)\n", T, 1e3 * tf, 1e3 * tb, (double)peak / 1048576.0,
               4.0 * T * T * H / 1048576.0);
        free(x); free(g);
    }
    {   /* generation with the cache */
        mr_model_cfg cfg = mr_model_defaults(65);
        mr_model *m;
        mr_state *st;
        mr_error e;
        float lg[65];
        int32_t *pre = (int32_t *)malloc(sizeof(int32_t) * 1100), tok = 1;
        static const int P[] = {100, 1000};
        cfg.max_context = 2048;
        if (mr_model_cfg_set_layers(&cfg, "attn*4", &e) != MR_OK || mr_model_new(&m, &cfg, NULL, &e) != MR_OK) { fprintf(stderr, "%s\n", e.msg); return 1; }
        mr_model_init_weights(m, &rng);
        mr_state_new(&st, m, 1, &e);
        for (i = 0; i < 1100; i++) pre[i] = (int32_t)mr_rng_below(&rng, 65);
        mr_ctx_set_no_grad(ctx, 1);
        for (k = 0; k < 2; k++) {
            int w, nstep = 50;
            double best = 1e30;
            for (w = 0; w < 5; w++) {
                double t0;
                mr_state_reset(st);
                mr_ctx_reset(ctx);
                mr_model_forward(ctx, m, pre, 1, P[k], st, 0);
                mr_ctx_reset(ctx);
                t0 = now();
                for (i = 0; i < nstep; i++) {
                    if (mr_model_step(ctx, m, &tok, st, lg) != MR_OK) { fprintf(stderr, "%s\n", mr_ctx_error(ctx)); return 1; }
                    mr_ctx_reset(ctx);
                    tok = (int32_t)((i * 7) % 65);
                }
                if (now() - t0 < best) best = now() - t0;
            }
            printf("generation GPT d128 L4 H4 (attn*4), one stream, from position %4d: %8.0f tokens/s\n", P[k], nstep / best);
        }
        mr_state_free(st);
        mr_model_free(m);
        free(pre);
    }
    mr_ctx_free(ctx);
    return 0;
}
