/* [train]: the shared training step and evaluations, against the same work
   written out with the model's forward and the tape. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

static mr_model *tiny(const char *layers, int max_context, uint64_t seed) {
    mr_model_cfg cfg = mr_model_defaults(13);
    mr_model *m = NULL;
    mr_error e;
    mr_rng r;
    cfg.dim = 8; cfg.n_layers = 2; cfg.ffn_hidden = 12; cfg.max_context = max_context;
    cfg.attn.n_heads = 2; cfg.attn.n_kv_heads = 1;
    MR_CHECK(mr_model_cfg_set_layers(&cfg, layers, &e) == MR_OK);
    MR_CHECK_MSG(mr_model_new(&m, &cfg, NULL, &e) == MR_OK, "%s", e.msg);
    if (m) { mr_rng_seed(&r, seed); mr_model_init_weights(m, &r); }
    return m;
}
static mr_ctx *ctx_new(void) {
    mr_ctx *c = NULL;
    mr_ctx_params p = mr_ctx_defaults();
    p.n_threads = 2;
    MR_CHECK(mr_ctx_new(&c, &p) == MR_OK);
    return c;
}
static void tokens(int32_t *x, int n, uint64_t seed) {
    mr_rng r;
    int i;
    mr_rng_seed(&r, seed);
    for (i = 0; i < n; i++) x[i] = (int32_t)mr_rng_below(&r, 13);
}

/* mr_train_grad with bptt pieces = the pieces run by hand with the state carried. */
static void test_grad_pieces(void) {
    static const char *stacks[] = {"mingru,gru", "minlstm,attn"};
    int si;
    for (si = 0; si < 2; si++) {
        enum { B = 3, T = 12, P = 4 };
        mr_model *m = tiny(stacks[si], 64, 5);
        mr_ctx *c = ctx_new();
        mr_state *s1 = NULL, *s2 = NULL;
        int32_t x[B * T + 1], in[B * P], tg[B * P];
        double loss = 0, ref = 0;
        float *g1;
        int64_t n, k;
        int piece, b;
        double maxd = 0;
        if (!m || !c) return;
        tokens(x, B * T + 1, 9);
        MR_CHECK(mr_state_new(&s1, m, B, NULL) == MR_OK && mr_state_new(&s2, m, B, NULL) == MR_OK);
        MR_CHECK_MSG(mr_train_grad(c, m, x, x + 1, B, T, P, s1, &loss) == MR_OK, "%s", mr_ctx_error(c));
        n = (int64_t)m->ps->numel;
        g1 = (float *)malloc(sizeof(float) * (size_t)n);
        memcpy(g1, m->ps->grad, sizeof(float) * (size_t)n);
        mr_params_zero_grad(m->ps);
        for (piece = 0; piece < T / P; piece++) {
            mr_tensor *l;
            for (b = 0; b < B; b++) {
                memcpy(in + b * P, x + b * T + piece * P, sizeof(int32_t) * P);
                memcpy(tg + b * P, x + 1 + b * T + piece * P, sizeof(int32_t) * P);
            }
            l = mr_scale(c, mr_cross_entropy(c, mr_model_forward(c, m, in, B, P, s2, 1), tg, -1), 1.0f / (T / P));
            MR_CHECK(l && mr_backward(c, l) == MR_OK);
            if (l) ref += l->data[0];
            mr_ctx_reset(c);
        }
        for (k = 0; k < n; k++) if (fabs(g1[k] - m->ps->grad[k]) > maxd) maxd = fabs(g1[k] - m->ps->grad[k]);
        MR_CHECK_MSG(maxd == 0 && loss == ref, "%s: loss %.9g vs %.9g, max grad diff %g", stacks[si], loss, ref, maxd);
        MR_CHECK(s1->pos == T && s2->pos == T);
        /* T not a multiple of bptt, bad sizes: an error, nothing run */
        MR_CHECK(mr_train_grad(c, m, x, x + 1, B, T, 5, s1, &loss) == MR_ERR_ARG && loss != loss);
        mr_ctx_reset(c);
        free(g1);
        mr_state_free(s1); mr_state_free(s2); mr_model_free(m); mr_ctx_free(c);
    }
}

/* mr_train_step = grad, clip, AdamW, zero; the same twice gives the same
   weights; a diverged loss leaves the weights as they were. */
static void test_step(void) {
    enum { B = 2, T = 16 };
    mr_model *m1 = tiny("mingru,attn", 32, 3), *m2 = tiny("mingru,attn", 32, 3);
    mr_ctx *c = ctx_new();
    mr_adamw o1, o2;
    mr_sgd sg;
    int32_t x[B * T + 1];
    double l1, l2;
    float g1, g2, *w;
    int k;
    int64_t i, n;
    if (!m1 || !m2 || !c) return;
    tokens(x, B * T + 1, 4);
    MR_CHECK(mr_adamw_init(&o1, m1->ps, mr_adamw_defaults(), NULL) == MR_OK);
    MR_CHECK(mr_adamw_init(&o2, m2->ps, mr_adamw_defaults(), NULL) == MR_OK);
    for (k = 0; k < 3; k++) {
        mr_tensor *l;
        MR_CHECK(mr_train_step(c, m1, &o1, NULL, x, x + 1, B, T, 0, NULL, 1e-2f, 0.5f, &l1, &g1) == MR_OK);
        l = mr_cross_entropy(c, mr_model_forward(c, m2, x, B, T, NULL, 1), x + 1, -1);
        MR_CHECK(l && mr_backward(c, l) == MR_OK);
        l2 = l ? l->data[0] : 0;
        mr_ctx_reset(c);
        g2 = mr_clip_grad_norm(m2->ps, 0.5f);
        mr_adamw_step(&o2, c, 1e-2f);
        mr_params_zero_grad(m2->ps);
        MR_CHECK_MSG(l1 == l2 && g1 == g2, "step %d: loss %.9g vs %.9g, norm %g vs %g", k, l1, l2, (double)g1, (double)g2);
    }
    MR_CHECK(!memcmp(m1->ps->data, m2->ps->data, sizeof(float) * m1->ps->numel));
    /* one optimizer, of this model */
    MR_CHECK(mr_train_step(c, m1, NULL, NULL, x, x + 1, B, T, 0, NULL, 1e-2f, 0, &l1, NULL) == MR_ERR_ARG);
    mr_ctx_reset(c);
    MR_CHECK(mr_train_step(c, m1, &o2, NULL, x, x + 1, B, T, 0, NULL, 1e-2f, 0, &l1, NULL) == MR_ERR_ARG);
    mr_ctx_reset(c);
    /* divergence: a weight of +inf makes the loss NaN; nothing else changes */
    n = (int64_t)m1->ps->numel;
    w = (float *)malloc(sizeof(float) * (size_t)n);
    m1->emb->data[0] = INFINITY;
    memcpy(w, m1->ps->data, sizeof(float) * (size_t)n);
    MR_CHECK(mr_sgd_init(&sg, m1->ps, mr_sgd_defaults(), NULL) == MR_OK);
    for (k = 0; k < 2; k++) {
        mr_status s = mr_train_step(c, m1, k ? NULL : &o1, k ? &sg : NULL, x, x + 1, B, T, 0, NULL, 1e-2f, 1.0f, &l1, NULL);
        MR_CHECK_MSG(s == MR_ERR_RANGE && strstr(mr_ctx_error(c), "diverged"), "%s: %s", mr_status_str(s), mr_ctx_error(c));
        mr_ctx_reset(c);
        for (i = 0; i < n; i++) if (memcmp(&w[i], &m1->ps->data[i], 4)) break;
        MR_CHECK_MSG(i == n, "weight %lld changed", (long long)i);
        for (i = 0; i < n; i++) if (m1->ps->grad[i] != 0) break;
        MR_CHECK(i == n);
    }
    free(w);
    mr_sgd_free(&sg); mr_adamw_free(&o1); mr_adamw_free(&o2);
    mr_model_free(m1); mr_model_free(m2); mr_ctx_free(c);
}

/* Windows: the mean over windows and the tail, computed by hand. Stateful:
   one stream, restarting where the attention context ends. */
static void test_eval(void) {
    enum { N = 75, T = 10 };
    mr_model *m = tiny("mingru,attn", 24, 8);
    mr_ctx *c = ctx_new();
    mr_state *st = NULL;
    int32_t x[N];
    double lw, ls, sum = 0, cnt = 0;
    int64_t w, pos = 0;
    if (!m || !c) return;
    tokens(x, N, 2);
    MR_CHECK_MSG(mr_eval_windows(c, m, x, N, 3, T, &lw) == MR_OK, "%s", mr_ctx_error(c));
    mr_ctx_set_no_grad(c, 1);
    for (w = 0; w + T <= N - 1; w += T) {
        mr_tensor *l = mr_cross_entropy(c, mr_model_forward(c, m, x + w, 1, T, NULL, 0), x + w + 1, -1);
        MR_CHECK(l != NULL);
        if (l) { sum += l->data[0] * T; cnt += T; }
        mr_ctx_reset(c);
    }
    if (w < N - 1) {
        int len = (int)(N - 1 - w);
        mr_tensor *l = mr_cross_entropy(c, mr_model_forward(c, m, x + w, 1, len, NULL, 0), x + w + 1, -1);
        if (l) { sum += l->data[0] * len; cnt += len; }
        mr_ctx_reset(c);
    }
    MR_CHECK_MSG(fabs(lw - sum / cnt) < 1e-6, "windows %.9g, by hand %.9g", lw, sum / cnt);
    MR_CHECK_MSG(mr_eval_stateful(c, m, x, N, T, &ls) == MR_OK, "%s", mr_ctx_error(c));
    MR_CHECK(mr_ctx_no_grad(c) == 1);   /* the caller's setting is kept */
    sum = cnt = 0;
    MR_CHECK(mr_state_new(&st, m, 1, NULL) == MR_OK);
    while (pos < N - 1) {
        int len = (int)(N - 1 - pos < T ? N - 1 - pos : T);
        mr_tensor *l;
        if (st->pos + len > 24) mr_state_reset(st);   /* the model's context: 24 */
        l = mr_cross_entropy(c, mr_model_forward(c, m, x + pos, 1, len, st, 0), x + pos + 1, -1);
        MR_CHECK(l != NULL);
        if (l) { sum += l->data[0] * len; cnt += len; }
        pos += len;
        mr_ctx_reset(c);
    }
    MR_CHECK_MSG(fabs(ls - sum / cnt) < 1e-6, "stateful %.9g, by hand %.9g", ls, sum / cnt);
    MR_CHECK(ls != lw);
    /* a window longer than the context is an error, stateful passes are cut to it */
    MR_CHECK(mr_eval_windows(c, m, x, N, 2, 30, &lw) != MR_OK && lw != lw);
    mr_ctx_reset(c);
    MR_CHECK(mr_eval_stateful(c, m, x, N, 30, &ls) == MR_OK && ls == ls);
    MR_CHECK(mr_eval_windows(c, m, x, 1, 2, T, &lw) == MR_ERR_ARG);
    mr_ctx_reset(c);
    mr_state_free(st); mr_model_free(m); mr_ctx_free(c);
}

/* Data parallelism's parts: the gradient of a batch is the mean of its
   halves' (the loss is a mean over equal rows), mr_train_apply is the rest of
   mr_train_step, and the fixed-point sum gives the same bits in any order and
   grouping, close to the exact sum. */
static void test_data_parallel(void) {
    enum { B = 4, T = 8, NT = 4 };
    mr_model *m1 = tiny("mingru,gru", 32, 6), *m2 = tiny("mingru,gru", 32, 6);
    mr_ctx *c = ctx_new();
    mr_adamw o1, o2;
    int32_t x[B * T + 1], xi[B * T], xt[B * T];
    double l1, la, lb;
    float g1, g2, *full, *half, *terms, *r1, *r2;
    int64_t *acc1, *acc2;
    size_t n, i;
    int b, k, e;
    double maxd = 0, maxg = 0, maxabs = 0;
    mr_rng r;
    if (!m1 || !m2 || !c) return;
    tokens(x, B * T + 1, 12);
    for (b = 0; b < B; b++) { memcpy(xi + b * T, x + b * T, sizeof(int32_t) * T); memcpy(xt + b * T, x + b * T + 1, sizeof(int32_t) * T); }
    n = m1->ps->numel;
    full = (float *)malloc(sizeof(float) * n); half = (float *)malloc(sizeof(float) * n);
    MR_CHECK(mr_train_grad(c, m1, xi, xt, B, T, 0, NULL, &l1) == MR_OK);
    memcpy(full, m1->ps->grad, sizeof(float) * n);
    mr_params_zero_grad(m1->ps);
    MR_CHECK(mr_train_grad(c, m1, xi, xt, B / 2, T, 0, NULL, &la) == MR_OK);
    memcpy(half, m1->ps->grad, sizeof(float) * n);
    mr_params_zero_grad(m1->ps);
    MR_CHECK(mr_train_grad(c, m1, xi + B / 2 * T, xt + B / 2 * T, B / 2, T, 0, NULL, &lb) == MR_OK);
    for (i = 0; i < n; i++) {
        double d = fabs(0.5 * ((double)half[i] + m1->ps->grad[i]) - full[i]);
        if (d > maxd) maxd = d;
        if (fabs(full[i]) > maxg) maxg = fabs(full[i]);
    }
    MR_CHECK_MSG(maxd <= 1e-5 * maxg && fabs(0.5 * (la + lb) - l1) < 1e-6, "halves: max diff %g of %g, loss %.9g vs %.9g", maxd, maxg, 0.5 * (la + lb), l1);
    mr_params_zero_grad(m1->ps);
    /* mr_train_apply after mr_train_grad = mr_train_step */
    MR_CHECK(mr_adamw_init(&o1, m1->ps, mr_adamw_defaults(), NULL) == MR_OK);
    MR_CHECK(mr_adamw_init(&o2, m2->ps, mr_adamw_defaults(), NULL) == MR_OK);
    MR_CHECK(mr_train_step(c, m1, &o1, NULL, xi, xt, B, T, 0, NULL, 1e-2f, 0.5f, &l1, &g1) == MR_OK);
    MR_CHECK(mr_train_grad(c, m2, xi, xt, B, T, 0, NULL, &la) == MR_OK);
    MR_CHECK(mr_train_apply(c, m2, &o2, NULL, 1e-2f, 0.5f, &g2) == MR_OK);
    MR_CHECK(g1 == g2 && l1 == la && !memcmp(m1->ps->data, m2->ps->data, sizeof(float) * n));
    MR_CHECK(mr_train_apply(c, m2, NULL, NULL, 1e-2f, 0.5f, NULL) == MR_ERR_ARG);
    mr_ctx_reset(c);
    MR_CHECK(mr_train_apply(c, m2, &o1, NULL, 1e-2f, 0.5f, NULL) == MR_ERR_ARG);
    mr_ctx_reset(c);
    /* a gradient that is not finite: MR_ERR_RANGE, weights untouched, gradients zeroed */
    memcpy(full, m2->ps->data, sizeof(float) * n);
    m2->ps->grad[3] = NAN;
    MR_CHECK(mr_train_apply(c, m2, &o2, NULL, 1e-2f, 0.5f, &g2) == MR_ERR_RANGE && g2 != g2);
    mr_ctx_reset(c);
    MR_CHECK(!memcmp(full, m2->ps->data, sizeof(float) * n) && m2->ps->grad[3] == 0);
    mr_adamw_free(&o1); mr_adamw_free(&o2);
    /* fixed point: NT terms of widely ranging magnitudes */
    terms = (float *)malloc(sizeof(float) * n * NT);
    r1 = (float *)malloc(sizeof(float) * n); r2 = (float *)malloc(sizeof(float) * n);
    acc1 = (int64_t *)calloc(n, sizeof(int64_t)); acc2 = (int64_t *)calloc(n, sizeof(int64_t));
    mr_rng_seed(&r, 99);
    for (i = 0; i < n * NT; i++) {
        terms[i] = mr_rng_normal(&r) * ldexpf(1.0f, (int)mr_rng_below(&r, 40) - 30);
        if (fabs(terms[i]) > maxabs) maxabs = fabs(terms[i]);
    }
    e = mr_grad_fixed_exp(maxabs, NT);
    for (k = 0; k < NT; k++) mr_grad_fixed_add(acc1, terms + (size_t)k * n, n, e);   /* 0 1 2 3 */
    {   /* (3 + 1) + (2 + 0): two partial sums, as two processes would hold */
        int64_t *p = (int64_t *)calloc(n, sizeof(int64_t));
        mr_grad_fixed_add(acc2, terms + 3 * n, n, e); mr_grad_fixed_add(acc2, terms + 1 * n, n, e);
        mr_grad_fixed_add(p, terms + 2 * n, n, e); mr_grad_fixed_add(p, terms, n, e);
        for (i = 0; i < n; i++) acc2[i] += p[i];
        free(p);
    }
    mr_grad_fixed_get(r1, acc1, n, e, 1.0 / NT);
    mr_grad_fixed_get(r2, acc2, n, e, 1.0 / NT);
    MR_CHECK(!memcmp(r1, r2, sizeof(float) * n));
    maxd = 0;
    for (i = 0; i < n; i++) {   /* against the sum in double, rounded once (exact here: 4 terms, 40 binades) */
        double ex = 0, d;
        for (k = 0; k < NT; k++) ex += terms[(size_t)k * n + i];
        d = fabs((double)r1[i] - ex / NT) / (fabs(ex / NT) + 1e-30);
        if (d > maxd) maxd = d;
    }
    MR_CHECK_MSG(maxd <= 6e-8, "fixed-point sum: relative error %g", maxd);
    MR_CHECK(mr_grad_fixed_exp(INFINITY, 4) == INT32_MIN && mr_grad_fixed_exp(NAN, 4) == INT32_MIN && mr_grad_fixed_exp(0, 4) == 0);
    MR_CHECK(mr_grad_fixed_exp(1.0, 1) == 61 && mr_grad_fixed_exp(0.75, 4) == 60 && mr_grad_fixed_exp(1.0, 5) == 58);
    free(terms); free(r1); free(r2); free(acc1); free(acc2); free(full); free(half);
    mr_model_free(m1); mr_model_free(m2); mr_ctx_free(c);
}

MR_TEST_MAIN({"grad_pieces", test_grad_pieces}, {"step", test_step}, {"eval", test_eval}, {"data_parallel", test_data_parallel})
