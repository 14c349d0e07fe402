/* Training and generation throughput of the default model (mr_model_defaults(65):
   d=128, 4 layers, SwiGLU 512, tied head) on random tokens.
     train: tokens/s of one step = forward + cross-entropy + backward + clip
            + AdamW + zero grad + mr_ctx_reset, batch 32 x context 256;
            the median over timing windows, after warm-up steps.
     gen:   tokens/s of mr_model_step with batch 1 (state carried).
   Compare with bench/bench_train_torch.py (same model in PyTorch, 2 threads).
   Usage: bench_train [--threads N (2)] [--arch mingru|minlstm|gru|SPEC|all (all)]
                      [--ffn KIND (swiglu)] [--ffn-hidden H (512)]
                      [--experts E (4)] [--top-k K (1)]   (--ffn moe)
                      [--batch B (32)] [--ctx T (256)] [--quick]
   With MoE layers the step's loss is the cross-entropy plus the router losses, as in training. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"

static double bt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static int bt_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double bt_median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, bt_cmp);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

typedef struct bt_opts { int threads, B, T, quick, ffn_hidden, experts, top_k; const char *ffn; } bt_opts;

static int bt_train_step(mr_ctx *ctx, mr_model *m, mr_adamw *opt, const int32_t *x, const int32_t *y, int B, int T,
                         float *loss_out) {
    mr_tensor *logits = mr_model_forward(ctx, m, x, B, T, NULL, 1);
    mr_tensor *loss = mr_cross_entropy(ctx, logits, y, -1);
    if (loss && mr_model_aux_loss(m)) loss = mr_add(ctx, loss, mr_model_aux_loss(m));
    if (!loss || mr_ctx_status(ctx) != MR_OK || mr_backward(ctx, loss) != MR_OK) {
        fprintf(stderr, "step failed: %s\n", mr_ctx_error(ctx));
        return 0;
    }
    *loss_out = loss->data[0];
    mr_clip_grad_norm(m->ps, 1.0f);
    mr_adamw_step(opt, ctx, 1e-3f);
    mr_params_zero_grad(m->ps);
    mr_ctx_reset(ctx);
    return 1;
}

static int bt_run(const char *arch, const bt_opts *o) {
    mr_model_cfg cfg = mr_model_defaults(65);
    mr_model *m = NULL;
    mr_ctx *ctx = NULL;
    mr_ctx_params cp = mr_ctx_defaults();
    mr_adamw opt;
    mr_error err;
    mr_rng rng;
    mr_state *st = NULL;
    int32_t *data, tok;
    int64_t n = (int64_t)o->B * (o->T + 1), i, j;
    int B = o->B, T = o->T, w, s, steps, windows = o->quick ? 2 : 3, n_gen;
    double t0, t_step, times[8], tps, gtps;
    float loss = 0, first_loss = 0, *logits;
    int32_t *x, *y;

    memset(&err, 0, sizeof err);
    if (mr_model_cfg_set_layers(&cfg, arch, &err) != MR_OK) { fprintf(stderr, "%s\n", err.msg); return 0; }
    if (o->ffn && mr_model_cfg_set_ffn(&cfg, o->ffn, &err) != MR_OK) { fprintf(stderr, "%s\n", err.msg); return 0; }
    if (o->ffn_hidden >= 0) cfg.ffn_hidden = o->ffn_hidden;
    cfg.moe.n_experts = o->experts; cfg.moe.top_k = o->top_k;
    cp.n_threads = o->threads;
    if (mr_ctx_new(&ctx, &cp) != MR_OK || mr_model_new(&m, &cfg, NULL, &err) != MR_OK) {
        fprintf(stderr, "init failed: %s\n", err.msg);
        mr_ctx_free(ctx);
        return 0;
    }
    mr_rng_seed(&rng, 42);
    mr_model_init_weights(m, &rng);
    if (mr_adamw_init(&opt, m->ps, mr_adamw_defaults(), &err) != MR_OK) { fprintf(stderr, "%s\n", err.msg); return 0; }
    data = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
    x = (int32_t *)malloc(sizeof(int32_t) * (size_t)B * (size_t)T);
    y = (int32_t *)malloc(sizeof(int32_t) * (size_t)B * (size_t)T);
    logits = (float *)malloc(sizeof(float) * 65);
    if (!data || !x || !y || !logits) { fprintf(stderr, "out of memory\n"); return 0; }
    for (i = 0; i < n; i++) data[i] = (int32_t)mr_rng_below(&rng, 65);
    for (i = 0; i < B; i++) for (j = 0; j < T; j++) {   /* next-token targets */
        x[i * T + j] = data[i * (T + 1) + j];
        y[i * T + j] = data[i * (T + 1) + j + 1];
    }

    /* warm-up: the first step sizes the arena; the second runs without malloc */
    t0 = bt_now();
    if (!bt_train_step(ctx, m, &opt, x, y, B, T, &first_loss)) return 0;
    if (!bt_train_step(ctx, m, &opt, x, y, B, T, &loss)) return 0;
    t_step = (bt_now() - t0) / 2;
    /* windows of about 1.5 s (0.5 s quick) */
    steps = (int)((o->quick ? 0.5 : 1.5) / (t_step > 1e-6 ? t_step : 1e-6));
    if (steps < 1) steps = 1;
    for (w = 0; w < windows; w++) {
        t0 = bt_now();
        for (s = 0; s < steps; s++) if (!bt_train_step(ctx, m, &opt, x, y, B, T, &loss)) return 0;
        times[w] = (bt_now() - t0) / steps;
    }
    tps = (double)B * T / bt_median(times, windows);

    /* generation: batch 1, one token per call */
    if (mr_state_new(&st, m, 1, &err) != MR_OK) { fprintf(stderr, "%s\n", err.msg); return 0; }
    tok = 0;
    t0 = bt_now();
    for (i = 0; i < 20; i++) {   /* warm-up, and the time of one token */
        if (mr_model_step(ctx, m, &tok, st, logits) != MR_OK) { fprintf(stderr, "gen: %s\n", mr_ctx_error(ctx)); return 0; }
        mr_ctx_reset(ctx);
        tok = (int32_t)((i * 7) % 65);
    }
    t_step = (bt_now() - t0) / 20;
    n_gen = (int)((o->quick ? 0.2 : 0.5) / (t_step > 1e-7 ? t_step : 1e-7));
    if (n_gen < 10) n_gen = 10;
    for (w = 0; w < windows; w++) {
        t0 = bt_now();
        for (i = 0; i < n_gen; i++) {
            if (st->max_pos && st->pos >= st->max_pos) mr_state_reset(st);   /* attention: the cache is full */
            if (mr_model_step(ctx, m, &tok, st, logits) != MR_OK) { fprintf(stderr, "gen: %s\n", mr_ctx_error(ctx)); return 0; }
            mr_ctx_reset(ctx);
            tok = (int32_t)((i * 7) % 65);
        }
        times[w] = (bt_now() - t0) / n_gen;
    }
    gtps = 1.0 / bt_median(times, windows);

    printf("%-8s %s threads %d  B %d T %d  params %lld (active %lld)  train %8.0f tokens/s  (%.1f ms/step, %d x %d steps, loss %.3f -> %.3f)  "
           "gen B=1 %8.0f tokens/s\n", arch, o->ffn ? o->ffn : "swiglu", o->threads, B, T, (long long)mr_params_count(m->ps),
           (long long)mr_model_cfg_active_param_count(&m->cfg), tps,
           1e3 * B * T / tps, windows, steps, first_loss, loss, gtps);
    fflush(stdout);
    mr_state_free(st);
    free(data); free(x); free(y); free(logits);
    mr_adamw_free(&opt);
    mr_model_free(m);
    mr_ctx_free(ctx);
    return 1;
}

int main(int argc, char **argv) {
    static const char *all[] = {"mingru", "minlstm", "gru"};
    const char *arch = "all";
    bt_opts o;
    int i;
    o.threads = 2; o.B = 32; o.T = 256; o.quick = 0; o.ffn = NULL; o.ffn_hidden = -1; o.experts = 4; o.top_k = 1;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) o.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--arch") && i + 1 < argc) arch = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) o.B = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) o.T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) o.quick = 1;
        else if (!strcmp(argv[i], "--ffn") && i + 1 < argc) o.ffn = argv[++i];
        else if (!strcmp(argv[i], "--ffn-hidden") && i + 1 < argc) o.ffn_hidden = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--experts") && i + 1 < argc) o.experts = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--top-k") && i + 1 < argc) o.top_k = atoi(argv[++i]);
        else if (i == 1 && atoi(argv[i]) > 0) o.threads = atoi(argv[i]);   /* like bench_gemm: [nthreads] */
        else { fprintf(stderr, "usage: %s [--threads N] [--arch mingru|minlstm|gru|attn*4|SPEC|all] [--ffn KIND] [--ffn-hidden H] [--batch B] [--ctx T] [--quick]\n", argv[0]); return 2; }
    }
    if (o.B < 1 || o.T < 1) { fprintf(stderr, "batch and context must be >= 1\n"); return 2; }
    printf("bench_train: default model (d=128, 4 layers, SwiGLU 512, tied, V=65), forward+backward+clip+AdamW\n");
    if (!strcmp(arch, "all")) {
        for (i = 0; i < 3; i++) if (!bt_run(all[i], &o)) return 1;
    } else if (!bt_run(arch, &o)) return 1;
    return 0;
}
