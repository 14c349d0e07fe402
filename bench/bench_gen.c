/* Generation throughput (issue 14): tokens/s of one step per token.
     bound:   the weights read once per token: the model's parameter floats
              summed in a vector loop, the read bandwidth (GB/s) this gives
              over the model's own buffer, divided by its bytes -> tokens/s;
     general: mr_model_forward with T = 1 in no-grad mode (the tape's ops),
              batch 1 (what mr_model_step did before the step path);
     step:    mr_model_step (every block's own step, no tape), batch 1;
     B=8, 16, 64: mr_model_step over that many streams, aggregate tokens/s;
     int8:    the same model through mr_model_quantize (every matrix and the
              embedding/head int8, VNNI products), batch 1, its speedup over
              step, and B = 8 and 64; i8 bound: the read GB/s over the bytes
              of int8 weights and scales plus the float rest (mr_model_weight_bytes;
              the int8 weights of a small model fit in L2, so this bound is loose).
   One thread unless --threads; the median of timing windows after warm-up.
   Random weights and tokens (the speed does not depend on them); an
   attention model's positions run 0..511 and start again.
   Usage: bench_gen [--threads N (1)] [--quick] [--model NAME] */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

typedef struct bg_model { const char *name, *layers, *ffn; int dim, n_layers, ffn_hidden; } bg_model;
static const bg_model models[] = {
    {"default", "mingru", "swiglu", 128, 4, 512},   /* mr_model_defaults(65): 0.93M parameters */
    {"small", "mingru", "swiglu", 64, 2, 256},      /* 0.12M */
    {"minlstm", "minlstm", "swiglu", 128, 4, 512},
    {"gru", "gru", "swiglu", 128, 4, 512},
    {"attn", "attn", "swiglu", 128, 4, 512},
    {"rwkv6", "rwkv6", "rwkv-cmix", 128, 4, 448},
    {"hybrid", "mingru,attn,mingru,attn", "swiglu", 128, 4, 512},
    {"moe", "mingru", "moe", 128, 4, 256},
};
#define NMODELS ((int)(sizeof models / sizeof models[0]))

/* the weights read once: GB/s of a vector sum over the parameter buffer */
typedef float bg_v __attribute__((vector_size(64)));
static double bg_read_gbs(const mr_params *ps, double secs) {
    size_t n = ps->numel / 64 * 64, i;
    double t0, t, times[5];
    volatile float sink;
    int w;
    for (w = 0; w < 5; w++) {
        bg_v a = {0}, b = {0}, c = {0}, d = {0};
        int r, nrep = 0;
        t0 = bg_now();
        do {
            for (r = 0; r < 16; r++)
                for (i = 0; i < n; i += 64) {
                    bg_v x0, x1, x2, x3;
                    memcpy(&x0, ps->data + i, 64); memcpy(&x1, ps->data + i + 16, 64);
                    memcpy(&x2, ps->data + i + 32, 64); memcpy(&x3, ps->data + i + 48, 64);
                    a += x0; b += x1; c += x2; d += x3;
                }
            nrep += 16;
            t = bg_now() - t0;
        } while (t < secs / 5);
        a += b + c + d;
        sink = a[0];
        (void)sink;
        times[w] = (double)n * 4 * nrep / t / 1e9;
    }
    qsort(times, 5, sizeof times[0], bg_cmp);
    return times[2];
}

/* tokens/s of mode (0: general, 1: step) over B streams */
static double bg_gen(mr_ctx *ctx, mr_model *m, int B, int mode, double secs, mr_rng *rng) {
    mr_state *st = NULL;
    mr_error err;
    int V = m->cfg.vocab_size, w, i, b, n = 4;
    int32_t *tok = (int32_t *)malloc(sizeof(int32_t) * (size_t)B);
    float *lg = (float *)malloc(sizeof(float) * (size_t)B * (size_t)V);
    double times[3], t0, tps = 0;
    if (!tok || !lg || mr_state_new(&st, m, B, &err) != MR_OK) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (b = 0; b < B; b++) tok[b] = (int32_t)mr_rng_below(rng, V);
    for (w = -1; w < 3; w++) {
        t0 = bg_now();
        for (i = 0; i < n; i++) {
            mr_status s = MR_OK;
            if (st->pos >= 512) mr_state_reset(st);
            if (mode) s = mr_model_step(ctx, m, tok, st, lg);
            else {
                int prev = mr_ctx_set_no_grad(ctx, 1);
                mr_tensor *o = mr_model_forward(ctx, m, tok, B, 1, st, 0);
                mr_ctx_set_no_grad(ctx, prev);
                if (o) mr_tensor_copy_to(o, lg); else s = mr_ctx_status(ctx);
            }
            if (s != MR_OK) { fprintf(stderr, "gen: %s\n", mr_ctx_error(ctx)); exit(1); }
            mr_ctx_reset(ctx);
            for (b = 0; b < B; b++) tok[b] = (int32_t)((tok[b] * 7 + (int)(lg[b * V] > 0) + 3) % V);
        }
        if (w < 0) {   /* warm-up, and the window's length from it */
            double per = (bg_now() - t0) / n;
            n = (int)(secs / 3 / (per > 1e-9 ? per : 1e-9));
            if (n < 8) n = 8;
            mr_state_reset(st);
            continue;
        }
        times[w] = (double)n * B / (bg_now() - t0);
    }
    qsort(times, 3, sizeof times[0], bg_cmp);
    tps = times[1];
    mr_state_free(st);
    free(tok); free(lg);
    return tps;
}

int main(int argc, char **argv) {
    int threads = 1, quick = 0, i, k;
    const char *only = NULL;
    double secs;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--threads N] [--quick] [--model NAME]\n", argv[0]);
            return 2;
        }
    }
    secs = quick ? 0.15 : 0.6;
    printf("%-8s %9s %7s %8s %8s %8s %9s %9s %9s %9s %9s %9s %9s %8s %9s %9s\n", "model", "params", "MB", "read GB/s", "bound", "general", "step",
           "speedup", "B=8", "B=16", "B=64", "i8 bound", "int8", "vs step", "i8 B=8", "i8 B=64");
    for (k = 0; k < NMODELS; k++) {
        const bg_model *bm = &models[k];
        mr_model_cfg cfg = mr_model_defaults(65);
        mr_model *m = NULL;
        mr_ctx *ctx = NULL;
        mr_ctx_params cp = mr_ctx_defaults();
        mr_error err;
        mr_rng rng;
        double gbs, bound, gen0, gen1, g8, g16, g64, mb, qbound, q1, q8, q64;
        if (only && strcmp(only, bm->name)) continue;
        cfg.dim = bm->dim; cfg.n_layers = bm->n_layers; cfg.ffn_hidden = bm->ffn_hidden;
        if (mr_model_cfg_set_layers(&cfg, bm->layers, &err) != MR_OK || mr_model_cfg_set_ffn(&cfg, bm->ffn, &err) != MR_OK ||
            mr_model_new(&m, &cfg, NULL, &err) != MR_OK) {
            fprintf(stderr, "%s: %s\n", bm->name, err.msg);
            return 1;
        }
        mr_rng_seed(&rng, 1);
        mr_model_init_weights(m, &rng);
        cp.n_threads = threads;
        if (mr_ctx_new(&ctx, &cp) != MR_OK) { fprintf(stderr, "no context\n"); return 1; }
        mb = (double)m->ps->numel * 4 / 1e6;
        gbs = bg_read_gbs(m->ps, secs);
        bound = gbs * 1e9 / ((double)mr_model_cfg_active_param_count(&m->cfg) * 4);   /* the weights one token reads */
        gen0 = bg_gen(ctx, m, 1, 0, secs, &rng);
        gen1 = bg_gen(ctx, m, 1, 1, secs, &rng);
        g8 = bg_gen(ctx, m, 8, 1, secs, &rng);
        g16 = bg_gen(ctx, m, 16, 1, secs, &rng);
        g64 = bg_gen(ctx, m, 64, 1, secs, &rng);
        if (mr_model_quantize(m, MR_Q8_ALL, &err) != MR_OK) { fprintf(stderr, "%s: %s\n", bm->name, err.msg); return 1; }
        qbound = gbs * 1e9 / (double)mr_model_weight_bytes(m);
        q1 = bg_gen(ctx, m, 1, 1, secs, &rng);
        q8 = bg_gen(ctx, m, 8, 1, secs, &rng);
        q64 = bg_gen(ctx, m, 64, 1, secs, &rng);
        printf("%-8s %9lld %7.2f %8.1f %8.0f %8.0f %9.0f %8.2fx %9.0f %9.0f %9.0f %9.0f %9.0f %7.2fx %9.0f %9.0f\n", bm->name,
               (long long)mr_params_count(m->ps), mb, gbs, bound, gen0, gen1, gen1 / gen0, g8, g16, g64, qbound, q1, q1 / gen1, q8, q64);
        fflush(stdout);
        mr_ctx_free(ctx);
        mr_model_free(m);
    }
    printf("threads %d; tokens/s; bound = read GB/s / (4 bytes x parameters); attention positions 0..511\n", threads);
    return 0;
}
