/* Layers and the recurrent LM: gradient checks of every layer, parallel vs
   step equivalence, chunked (hidden-state passing) vs one long pass. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"
#include "model_common.h"

static mr_ctx *ctx;
static mr_rng rng;

static float g_eps = 1e-2f;
static void run_check(const char *what, mr_gradcheck_fn fn, void *ud, int n, mr_tensor **ts, int per) {
    mr_gradcheck_result r;
    mr_status s = mr_gradcheck(ctx, fn, ts, n, ud, g_eps, 2e-3, 1e-2, per, 99, &r);
    MR_CHECK_MSG(s == MR_OK, "%s: status %s (%s)", what, mr_status_str(s), mr_ctx_error(ctx));
    MR_CHECK_MSG(r.checked > 0 && r.failed == 0, "%s: %lld of %lld off; worst input %d idx %lld analytic %.6g numeric %.6g",
                 what, (long long)r.failed, (long long)r.checked, r.worst_input, (long long)r.worst_index, r.worst_analytic, r.worst_numeric);
    mr_ctx_clear_error(ctx);
}

typedef struct lspec { int kind, algo, chunk, B, T, C, K; float *h0; } lspec;
static mr_tensor *fn_layer(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    lspec *s = (lspec *)ud;
    int64_t sh[3];
    mr_tensor *x;
    (void)n;
    sh[0] = s->B; sh[1] = s->T;
    switch (s->kind) {
    case 0: sh[2] = 2 * s->C; x = mr_view_reshape(c, in[0], 3, sh); return mr_mingru_core(c, x, s->h0, s->algo, s->chunk);
    case 1: sh[2] = 3 * s->C; x = mr_view_reshape(c, in[0], 3, sh); return mr_minlstm_core(c, x, s->h0, s->algo, s->chunk);
    case 2: sh[2] = 3 * s->C; x = mr_view_reshape(c, in[0], 3, sh); return mr_gru_core_ex(c, x, in[1], in[2], s->h0, s->K ? 1e-5f : 0.f);
    case 3: sh[2] = s->C; x = mr_view_reshape(c, in[0], 3, sh); return mr_causal_conv(c, x, in[1], in[2], s->h0);
    default: return mr_swiglu(c, in[0]);
    }
}
static mr_params *mk(int n, const int64_t (*sh)[2], mr_tensor **ts, float lo, float hi) {
    mr_params *ps = NULL;
    MR_CHECK(mr_params_new(&ps, NULL, NULL) == MR_OK);
    int i;
    for (i = 0; i < n; i++) {
        int64_t s[2];
        int nd = sh[i][0] ? 2 : 1;
        if (nd == 2) { s[0] = sh[i][0]; s[1] = sh[i][1]; } else s[0] = sh[i][1];
        ts[i] = mr_params_add(ps, "t", nd, s, 0);
    }
    mr_params_alloc(ps, NULL);
    for (i = 0; i < n; i++) mr_params_init_uniform(ps, ts[i], lo, hi, &rng);
    return ps;
}

static void test_min_cores(void) {
    static const int dims[][3] = {{1, 1, 1}, {2, 3, 3}, {3, 17, 5}, {1, 129, 3}, {2, 5, 17}};
    int kind, d, h0, algo;
    for (kind = 0; kind < 2; kind++) for (d = 0; d < 5; d++) for (h0 = 0; h0 < 2; h0++) for (algo = 1; algo <= 3; algo++) {
        lspec s;
        int64_t sh[1][2];
        mr_tensor *ts[1];
        mr_params *ps;
        float h0buf[64];
        char what[96];
        int i;
        if (algo == 3 && kind == 1) continue;
        memset(&s, 0, sizeof s);
        s.kind = kind; s.algo = algo; s.chunk = 4; s.B = dims[d][0]; s.T = dims[d][1]; s.C = dims[d][2];
        for (i = 0; i < 64; i++) h0buf[i] = 0.2f + 0.5f * mr_rng_uniform(&rng);  /* positive (log scan) */
        s.h0 = h0 ? h0buf : NULL;
        sh[0][0] = (int64_t)s.B * s.T; sh[0][1] = (kind == 0 ? 2 : 3) * s.C;
        ps = mk(1, (const int64_t(*)[2])sh, ts, -2, 2);
        {   /* keep the g() branch inputs away from its kink at 0 */
            int64_t r, cc, parts = kind == 0 ? 2 : 3;
            for (r = 0; r < sh[0][0]; r++) for (cc = (parts - 1) * s.C; cc < parts * s.C; cc++)
                if (fabsf(ts[0]->data[r * sh[0][1] + cc]) < 0.05f) ts[0]->data[r * sh[0][1] + cc] = 0.3f;
        }
        snprintf(what, sizeof what, "%s algo=%d h0=%d B=%d T=%d C=%d", kind ? "minlstm" : "mingru", algo, h0, s.B, s.T, s.C);
        run_check(what, fn_layer, &s, 1, ts, 40);
        mr_params_free(ps);
    }
}
static void test_gru_core(void) {
    static const int dims[][3] = {{1, 1, 1}, {2, 3, 3}, {3, 17, 5}, {1, 40, 3}};
    int d, h0, nrm;
    for (d = 0; d < 4; d++) for (h0 = 0; h0 < 2; h0++) for (nrm = 0; nrm < 2; nrm++) {
        lspec s;
        int64_t sh[3][2];
        mr_tensor *ts[3];
        mr_params *ps;
        float h0buf[64];
        char what[64];
        int i;
        memset(&s, 0, sizeof s);
        s.kind = 2; s.B = dims[d][0]; s.T = dims[d][1]; s.C = dims[d][2]; s.K = nrm;
        for (i = 0; i < 64; i++) h0buf[i] = mr_rng_uniform(&rng) - 0.5f;
        s.h0 = h0 ? h0buf : NULL;
        sh[0][0] = (int64_t)s.B * s.T; sh[0][1] = 3 * s.C;
        sh[1][0] = 3 * s.C; sh[1][1] = s.C;
        sh[2][0] = 0; sh[2][1] = s.C;
        ps = mk(3, (const int64_t(*)[2])sh, ts, -1, 1);
        snprintf(what, sizeof what, "gru h0=%d norm=%d B=%d T=%d C=%d", h0, nrm, s.B, s.T, s.C);
        g_eps = 2e-3f;   /* 17 steps of tanh/sigmoid: smaller steps keep the truncation error down */
        run_check(what, fn_layer, &s, 3, ts, 40);
        g_eps = 1e-2f;
        mr_params_free(ps);
    }
}
static void test_conv(void) {
    static const int dims[][4] = {{1, 1, 1, 1}, {2, 3, 3, 2}, {3, 17, 5, 4}, {1, 5, 3, 8}};
    int d, tail;
    for (d = 0; d < 4; d++) for (tail = 0; tail < 2; tail++) {
        lspec s;
        int64_t sh[3][2];
        mr_tensor *ts[3];
        mr_params *ps;
        float tb[256];
        char what[64];
        int i;
        memset(&s, 0, sizeof s);
        s.kind = 3; s.B = dims[d][0]; s.T = dims[d][1]; s.C = dims[d][2]; s.K = dims[d][3];
        for (i = 0; i < 256; i++) tb[i] = mr_rng_uniform(&rng) - 0.5f;
        s.h0 = tail ? tb : NULL;
        sh[0][0] = (int64_t)s.B * s.T; sh[0][1] = s.C;
        sh[1][0] = s.C; sh[1][1] = s.K;
        sh[2][0] = 0; sh[2][1] = s.C;
        ps = mk(3, (const int64_t(*)[2])sh, ts, -1, 1);
        snprintf(what, sizeof what, "conv tail=%d B=%d T=%d C=%d K=%d", tail, s.B, s.T, s.C, s.K);
        run_check(what, fn_layer, &s, 3, ts, 40);
        mr_params_free(ps);
    }
}
static void test_conv_causal(void) {
    /* changing a future input never changes an earlier output */
    int64_t sx[3] = {1, 8, 2}, sw[2] = {2, 3}, sb[1] = {2};
    mr_tensor *x, *w, *b, *y1, *y2;
    float keep[16];
    int i;
    mr_ctx_reset(ctx);
    x = mr_tensor_new(ctx, 3, sx, 0); w = mr_tensor_new(ctx, 2, sw, 0); b = mr_tensor_new(ctx, 1, sb, 0);
    for (i = 0; i < 16; i++) x->data[i] = mr_rng_uniform(&rng);
    for (i = 0; i < 6; i++) w->data[i] = mr_rng_uniform(&rng) + 0.1f;
    b->data[0] = b->data[1] = 0;
    y1 = mr_causal_conv(ctx, x, w, b, NULL);
    memcpy(keep, y1->data, sizeof keep);
    x->data[2 * 5] += 1.0f;   /* time 5 */
    y2 = mr_causal_conv(ctx, x, w, b, NULL);
    for (i = 0; i < 10; i++) MR_CHECK(keep[i] == y2->data[i]);
    MR_CHECK(keep[10] != y2->data[10]);
    mr_ctx_reset(ctx);
}
static void test_swiglu(void) {
    int64_t sh[1][2] = {{17, 2 * 9}};
    mr_tensor *ts[1];
    lspec s;
    mr_params *ps = mk(1, (const int64_t(*)[2])sh, ts, -2, 2);
    memset(&s, 0, sizeof s);
    s.kind = 4;
    run_check("swiglu", fn_layer, &s, 1, ts, 60);
    mr_params_free(ps);
}
static void test_dropout(void) {
    int64_t sh[2] = {64, 64}, i, zeros = 0;
    mr_tensor *x, *y;
    double s = 0;
    mr_ctx_reset(ctx);
    x = mr_tensor_new(ctx, 2, sh, 1);
    mr_tensor_fill(x, 1.0f);
    y = mr_dropout(ctx, x, 0.25f);
    for (i = 0; i < 4096; i++) { s += y->data[i]; zeros += y->data[i] == 0.f; MR_CHECK(y->data[i] == 0.f || fabsf(y->data[i] - 1.f / 0.75f) < 1e-6f); }
    MR_CHECK(zeros > 900 && zeros < 1150);
    MR_CHECK(fabs(s / 4096 - 1.0) < 0.05);
    MR_CHECK(mr_backward(ctx, mr_sum(ctx, y)) == MR_OK);
    for (i = 0; i < 4096; i++) MR_CHECK(x->grad[i] == y->data[i]);   /* d/dx (x*mask) = mask = y/x, x = 1 */
    mr_ctx_reset(ctx);
    mr_ctx_set_no_grad(ctx, 1);
    x = mr_tensor_new(ctx, 2, sh, 0);
    MR_CHECK(mr_dropout(ctx, x, 0.5f) == x);
    mr_ctx_set_no_grad(ctx, 0);
    mr_ctx_reset(ctx);
}

/* ---- whole models ---- */
static mr_model *make_model(const char *arch, int conv, float expansion, int algo, int V) {
    mr_model_cfg cfg = mr_model_defaults(V);
    mr_model *m = NULL;
    mr_error e;
    cfg.dim = 12; cfg.n_layers = 2; cfg.ffn_hidden = 20; cfg.conv_kernel = conv; cfg.expansion = expansion;
    cfg.scan_algo = algo; cfg.scan_chunk = 3;
    cfg.gru_hidden_norm = conv > 0;   /* GRU layers with and without the hidden RMSNorm */
    if (mr_model_cfg_set_layers(&cfg, arch, &e) != MR_OK) return NULL;
    if (mr_model_new(&m, &cfg, NULL, &e) != MR_OK) return NULL;
    mr_model_init_weights(m, &rng);
    return m;
}
static const char *archs[] = {"mingru", "minlstm", "gru", "gru,mingru,minlstm"};

static void test_parallel_vs_step(void) {
    int a, conv, warm, algo;
    enum { B = 2, T = 11, V = 13 };
    for (a = 0; a < 4; a++) for (conv = 0; conv <= 4; conv += 4) for (warm = 0; warm < 2; warm++) for (algo = 1; algo <= 3; algo++) {
        mr_model *m = make_model(archs[a], conv, a == 0 ? 1.5f : 1.0f, algo, V);
        mr_state *s1, *s2;
        int32_t tok[B * T], pre[B * 5];
        float lg_par[B * T * V], lg_step[B * V];
        int i;
        double maxd = 0;
        MR_CHECK(m != NULL);
        if (!m) continue;
        for (i = 0; i < B * T; i++) tok[i] = (int32_t)mr_rng_below(&rng, V);
        for (i = 0; i < B * 5; i++) pre[i] = (int32_t)mr_rng_below(&rng, V);
        mr_state_new(&s1, m, B, NULL); mr_state_new(&s2, m, B, NULL);
        mr_ctx_reset(ctx);
        mr_ctx_set_no_grad(ctx, 1);
        if (warm) {   /* an initial state from a 5-token prefix */
            mr_model_forward(ctx, m, pre, B, 5, s1, 0);
            mr_model_forward(ctx, m, pre, B, 5, s2, 0);
            mr_ctx_reset(ctx);
        }
        maxd = mt_parallel_vs_step(ctx, m, tok, B, T, s1, s2, lg_par, lg_step);
        mr_ctx_set_no_grad(ctx, 0);
        MR_CHECK_MSG(maxd < 1e-5, "%s conv=%d warm=%d algo=%d: max |parallel - step| = %g", archs[a], conv, warm, algo, maxd);
        /* final states agree too */
        for (i = 0; i < (int)mr_state_floats(s1); i++) if (fabsf(s1->buf[i] - s2->buf[i]) > 1e-5f) { MR_CHECK_MSG(0, "%s: states differ at %d", archs[a], i); break; }
        mr_state_free(s1); mr_state_free(s2);
        mr_model_free(m);
    }
}

static void test_chunked_vs_long(void) {
    /* hidden-state passing: 3 chunks of 7 == one pass of 21, logits and gradients */
    int a, conv;
    enum { B = 2, T = 21, V = 11, CH = 7 };
    for (a = 0; a < 4; a++) for (conv = 0; conv <= 3; conv += 3) {
        mr_model *m = make_model(archs[a], conv, 1.0f, MR_SCAN_AUTO, V);
        mr_state *st;
        int32_t tok[B * T], chunk[B * CH];
        float lg_long[B * T * V];
        mr_tensor *lg;
        int i, k, b, t;
        double maxd = 0;
        if (!m) { MR_CHECK(0); continue; }
        for (i = 0; i < B * T; i++) tok[i] = (int32_t)mr_rng_below(&rng, V);
        mr_ctx_reset(ctx);
        lg = mr_model_forward(ctx, m, tok, B, T, NULL, 0);
        MR_CHECK(lg != NULL);
        if (lg) mr_tensor_copy_to(lg, lg_long);
        mr_ctx_reset(ctx);
        mr_state_new(&st, m, B, NULL);
        for (k = 0; k < T / CH; k++) {
            for (b = 0; b < B; b++) for (t = 0; t < CH; t++) chunk[b * CH + t] = tok[b * T + k * CH + t];
            lg = mr_model_forward(ctx, m, chunk, B, CH, st, 0);
            MR_CHECK(lg != NULL);
            if (lg) for (b = 0; b < B; b++) for (t = 0; t < CH; t++) for (i = 0; i < V; i++) {
                double d = fabs(lg->data[(b * CH + t) * V + i] - lg_long[(b * T + k * CH + t) * V + i]);
                if (d > maxd) maxd = d;
            }
            mr_ctx_reset(ctx);
        }
        MR_CHECK_MSG(maxd < 1e-5, "%s conv=%d: max |chunked - long| = %g", archs[a], conv, maxd);
        mr_state_free(st);
        mr_model_free(m);
    }
}

typedef struct mspec { mr_model *m; int32_t tok[2 * 6]; int B, T, state; float h0[4096]; } mspec;
static mr_tensor *fn_model(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    mspec *s = (mspec *)ud;
    mr_state *st = NULL;
    mr_tensor *lg;
    (void)in; (void)n;
    if (s->state) {   /* a fixed (constant) initial state */
        mr_state_new(&st, s->m, s->B, NULL);
        memcpy(st->buf, s->h0, sizeof(float) * mr_state_floats(st));
        st->valid = 1;
    }
    lg = mr_model_forward(c, s->m, s->tok, s->B, s->T, st, 0);
    mr_state_free(st);
    return lg;
}
/* Whole models: every sampled weight of every tensor, strict tolerance
   (kinks of g at 0 are resolved by the checker's one-sided differences). */
static void run_model_check(const char *what, void *ud, int n, mr_tensor **ts) {
    mr_gradcheck_result r;
    mr_status s = mr_gradcheck(ctx, fn_model, ts, n, ud, 1e-3f, 2e-3, 1e-2, 6, 99, &r);
    MR_CHECK_MSG(s == MR_OK, "%s: status %s (%s)", what, mr_status_str(s), mr_ctx_error(ctx));
    MR_CHECK_MSG(r.checked > 0 && r.failed == 0 && r.kinks * 20 <= r.checked,
                 "%s: %lld of %lld off; worst input %d idx %lld analytic %.6g numeric %.6g",
                 what, (long long)r.failed, (long long)r.checked, r.worst_input, (long long)r.worst_index, r.worst_analytic, r.worst_numeric);
    mr_ctx_clear_error(ctx);
}
static void test_model_gradcheck(void) {
    int a, conv, state;
    for (a = 0; a < 4; a++) for (conv = 0; conv <= 3; conv += 3) for (state = 0; state < 2; state++) {
        mspec s;
        int i;
        char what[64];
        memset(&s, 0, sizeof s);
        s.m = make_model(archs[a], conv, a == 1 ? 2.0f : 1.0f, MR_SCAN_AUTO, 7);
        s.B = 2; s.T = 6; s.state = state;
        for (i = 0; i < 12; i++) s.tok[i] = (int32_t)mr_rng_below(&rng, 7);
        for (i = 0; i < 4096; i++) s.h0[i] = 0.1f + 0.8f * mr_rng_uniform(&rng);
        snprintf(what, sizeof what, "model %s conv=%d state=%d", archs[a], conv, state);
        run_model_check(what, &s, s.m->ps->n, s.m->ps->t);
        mr_model_free(s.m);
    }
}

static void test_cfg_errors(void) {
    mr_model_cfg cfg = mr_model_defaults(65);
    mr_model *m = NULL;
    mr_error e;
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "transformer", &e) == MR_ERR_ARG);
    cfg.dim = 0;
    MR_CHECK(mr_model_new(&m, &cfg, NULL, &e) == MR_ERR_ARG && m == NULL && strstr(e.msg, "dim"));
    cfg = mr_model_defaults(1);
    MR_CHECK(mr_model_new(&m, &cfg, NULL, &e) == MR_ERR_ARG);
    cfg = mr_model_defaults(65);
    cfg.dropout = 1.0f;
    MR_CHECK(mr_model_new(&m, &cfg, NULL, &e) == MR_ERR_ARG);
}

int main(int argc, char **argv) {
    static const mr_test_case cases[] = {
        {"min_cores", test_min_cores}, {"gru_core", test_gru_core}, {"conv", test_conv}, {"conv_causal", test_conv_causal},
        {"swiglu", test_swiglu}, {"dropout", test_dropout}, {"parallel_vs_step", test_parallel_vs_step},
        {"chunked_vs_long", test_chunked_vs_long}, {"model_gradcheck", test_model_gradcheck}, {"cfg_errors", test_cfg_errors},
    };
    mr_ctx_params p = mr_ctx_defaults();
    int rc;
    p.n_threads = 2;
    if (mr_ctx_new(&ctx, &p) != MR_OK) { printf("0 passed, 1 failed\n"); return 1; }
    mr_rng_seed(&rng, 4242);
    rc = mr_test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
    mr_ctx_free(ctx);
    return rc;
}
