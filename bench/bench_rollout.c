/* GRPO rollouts (issue 12): completion tokens/s of mr_rollout.
     single: G completions of one prompt sampled one after another, each a
             one-stream rollout (what a loop over G generations does);
     G=8:    the same G = 8 completions as one rollout of 8 streams in lockstep,
             its speedup over single;
     B=64:   8 prompts x G = 8 streams, minrnn-rl's default batch;
     update: the GRPO update on those 64 rows (forward, loss, backward, AdamW),
             prompt + completion tokens/s, for scale.
   A reverse-task shape: a 10-token prompt ("\n" + 8 letters + ">"), 10
   completion tokens, temperature 1, no stop token (every stream runs to the
   end). Random weights (the speed does not depend on them); the median of
   timing windows after warm-up; rows for 1 thread and for all cores.
   Usage: bench_rollout [--quick] [--model NAME] */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"

#define PL 10
#define CL 10

static double br_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int br_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static void br_fail(const char *what, const char *msg) {
    fprintf(stderr, "bench_rollout: %s: %s\n", what, msg);
    exit(1);
}

typedef struct br_model { const char *name, *layers, *ffn; int ffn_hidden; } br_model;
static const br_model models[] = {
    {"mingru", "mingru", "swiglu", 512},   /* minrnn-rl's default model: d 128, 4 layers */
    {"gru", "gru", "swiglu", 512},
    {"attn", "attn", "swiglu", 512},
    {"rwkv6", "rwkv6", "rwkv-cmix", 448},
};
#define NMODELS ((int)(sizeof models / sizeof models[0]))

typedef struct br_job { mr_ctx *ctx; mr_model *m; mr_state *st1, *stG, *st64; int32_t prompt[64][PL]; mr_rng rng; } br_job;

/* completion tokens of one window of `reps` repetitions of mode (0 single, 1 G = 8, 2 B = 64) */
static double br_once(br_job *j, int mode, int reps) {
    int32_t tok[64 * CL];
    float lp[64 * CL];
    int len[64], plen[64], i, r;
    const int32_t *pp[64];
    mr_rollout_cfg c;
    double n = 0;
    memset(&c, 0, sizeof c);
    c.temperature = 1.f; c.top_p = 1.f; c.max_len = CL; c.stop = -1;
    for (i = 0; i < 64; i++) { pp[i] = j->prompt[mode == 2 ? i : 0]; plen[i] = PL; }
    for (r = 0; r < reps; r++) {
        if (mode == 0) {
            for (i = 0; i < 8; i++) {
                if (mr_rollout(j->ctx, j->m, j->st1, pp, plen, &c, &j->rng, tok, lp, len, NULL) != MR_OK) br_fail("rollout", mr_ctx_error(j->ctx));
                n += len[0];
            }
        } else {
            mr_state *st = mode == 1 ? j->stG : j->st64;
            if (mr_rollout(j->ctx, j->m, st, pp, plen, &c, &j->rng, tok, lp, len, NULL) != MR_OK) br_fail("rollout", mr_ctx_error(j->ctx));
            for (i = 0; i < st->batch; i++) n += len[i];
        }
    }
    return n;
}
static double br_rate(br_job *j, int mode, double secs) {
    double t0 = br_now(), per, times[3];
    int reps, w;
    br_once(j, mode, 1);
    per = br_now() - t0;
    reps = (int)(secs / 3 / (per > 1e-9 ? per : 1e-9));
    if (reps < 2) reps = 2;
    for (w = 0; w < 3; w++) {
        double n;
        t0 = br_now();
        n = br_once(j, mode, reps);
        times[w] = n / (br_now() - t0);
    }
    qsort(times, 3, sizeof times[0], br_cmp);
    return times[1];
}

/* the GRPO update on 64 rows of PL + CL - 1 positions: prompt + completion tokens/s */
static double br_update(br_job *j, double secs) {
    enum { N = 64, T = PL + CL - 1 };
    static int32_t x[N * T], tk[N * T];
    static float w[N * T], old[N * T], adv[N * T];
    mr_adamw opt;
    mr_error err;
    mr_grpo_cfg gc = mr_grpo_defaults();
    double t0, times[3];
    int i, t, w_, reps = 0, k;
    gc.beta = 0.f;
    for (i = 0; i < N; i++)
        for (t = 0; t < T; t++) {
            x[i * T + t] = (int32_t)mr_rng_below(&j->rng, (uint64_t)j->m->cfg.vocab_size);
            tk[i * T + t] = (int32_t)mr_rng_below(&j->rng, (uint64_t)j->m->cfg.vocab_size);
            w[i * T + t] = t >= PL - 1 ? 1.f / (N * CL) : 0.f;
            old[i * T + t] = -3.f;
            adv[i * T + t] = (i % 8) < 4 ? 1.f : -1.f;
        }
    if (mr_adamw_init(&opt, j->m->ps, mr_adamw_defaults(), &err) != MR_OK) br_fail("adamw", err.msg);
    for (w_ = -1; w_ < 3; w_++) {
        int n = w_ < 0 ? 1 : reps;
        t0 = br_now();
        for (k = 0; k < n; k++) {
            mr_tensor *lg = mr_model_forward(j->ctx, j->m, x, N, T, NULL, 1);
            mr_tensor *loss = lg ? mr_grpo_loss(j->ctx, lg, tk, w, old, NULL, adv, gc, NULL) : NULL;
            if (!loss || mr_backward(j->ctx, loss) != MR_OK || mr_train_apply(j->ctx, j->m, &opt, NULL, 1e-6f, 1.f, NULL) != MR_OK)
                br_fail("update", mr_ctx_error(j->ctx));
            mr_ctx_reset(j->ctx);
        }
        if (w_ < 0) {
            double per = br_now() - t0;
            reps = (int)(secs / 3 / (per > 1e-9 ? per : 1e-9));
            if (reps < 2) reps = 2;
            continue;
        }
        times[w_] = (double)reps * N * T / (br_now() - t0);
    }
    mr_adamw_free(&opt);
    qsort(times, 3, sizeof times[0], br_cmp);
    return times[1];
}

int main(int argc, char **argv) {
    int quick = 0, i, k, p, ti, threads[2] = {1, 0};
    const char *only = NULL;
    double secs;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--model NAME]\n", argv[0]);
            return 2;
        }
    }
    secs = quick ? 0.3 : 1.5;
    printf("rollouts of a 10-token prompt and 10 sampled tokens (completion tokens/s); update: prompt + completion tokens/s\n");
    printf("%-8s %8s %8s %10s %10s %8s %10s %10s\n", "model", "params", "threads", "single", "G=8", "speedup", "B=64", "update");
    for (k = 0; k < NMODELS; k++) {
        const br_model *bm = &models[k];
        if (only && strcmp(only, bm->name)) continue;
        for (ti = 0; ti < 2; ti++) {
            br_job j;
            mr_model_cfg cfg = mr_model_defaults(30);   /* a task's alphabet: a-z, ':', '>', '\n', ... */
            mr_ctx_params cp = mr_ctx_defaults();
            mr_error err;
            double s1, sg, s64, up;
            memset(&j, 0, sizeof j);
            cfg.ffn_hidden = bm->ffn_hidden;
            if (mr_model_cfg_set_layers(&cfg, bm->layers, &err) != MR_OK || mr_model_cfg_set_ffn(&cfg, bm->ffn, &err) != MR_OK ||
                mr_model_new(&j.m, &cfg, NULL, &err) != MR_OK)
                br_fail(bm->name, err.msg);
            mr_rng_seed(&j.rng, 1);
            mr_model_init_weights(j.m, &j.rng);
            cp.n_threads = threads[ti];
            if (mr_ctx_new(&j.ctx, &cp) != MR_OK) br_fail("context", "out of memory");
            if (ti == 1 && mr_ctx_threads(j.ctx) == 1) { mr_ctx_free(j.ctx); mr_model_free(j.m); break; }   /* one core: no second row */
            if (mr_state_new(&j.st1, j.m, 1, &err) != MR_OK || mr_state_new(&j.stG, j.m, 8, &err) != MR_OK || mr_state_new(&j.st64, j.m, 64, &err) != MR_OK)
                br_fail("state", err.msg);
            for (i = 0; i < 64; i++)
                for (p = 0; p < PL; p++) j.prompt[i][p] = (int32_t)mr_rng_below(&j.rng, 30);
            s1 = br_rate(&j, 0, secs);
            sg = br_rate(&j, 1, secs);
            s64 = br_rate(&j, 2, secs);
            up = br_update(&j, secs);
            printf("%-8s %8lld %8d %10.0f %10.0f %7.2fx %10.0f %10.0f\n", bm->name, (long long)mr_params_count(j.m->ps), mr_ctx_threads(j.ctx), s1, sg, sg / s1, s64, up);
            fflush(stdout);
            mr_state_free(j.st1); mr_state_free(j.stG); mr_state_free(j.st64);
            mr_ctx_free(j.ctx);
            mr_model_free(j.m);
        }
    }
    return 0;
}
