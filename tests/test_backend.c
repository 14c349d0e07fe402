/* The backend table that minrnn_cuda.cu fills: a mock backend (naive kernels
   in double, counting its calls) must be used for every GEMM and scan of a
   training step, give the CPU's results, report its failures through the
   context, and be refused when its API version differs. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

typedef struct mock { int gemm, scan_fwd, scan_bwd, fail_gemm; } mock;

static mr_status mock_gemm(void *ud, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc) {
    mock *mk = (mock *)ud;
    int i, j, k;
    mk->gemm++;
    if (mk->fail_gemm) return MR_ERR_BACKEND;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            double s = 0;
            for (k = 0; k < K; k++) s += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) * (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            C[(size_t)i * ldc + j] = (float)(alpha * s + (beta == 0.f ? 0.0 : (double)beta * C[(size_t)i * ldc + j]));
        }
    return MR_OK;
}
static mr_status mock_scan_fwd(void *ud, int B, int T, int C, const float *a, const float *b, const float *h0, float *h) {
    int bb, t, c;
    ((mock *)ud)->scan_fwd++;
    for (bb = 0; bb < B; bb++)
        for (c = 0; c < C; c++) {
            double x = h0 ? h0[(size_t)bb * C + c] : 0.0;
            for (t = 0; t < T; t++) {
                size_t i = ((size_t)bb * T + t) * C + c;
                x = (double)a[i] * x + b[i];
                h[i] = (float)x;
            }
        }
    return MR_OK;
}
static mr_status mock_scan_bwd(void *ud, int B, int T, int C, const float *a, const float *h, const float *h0,
                               const float *dh, const float *dhT, float *da, float *db, float *dh0) {
    int bb, t, c;
    ((mock *)ud)->scan_bwd++;
    for (bb = 0; bb < B; bb++)
        for (c = 0; c < C; c++) {
            double g = dhT ? dhT[(size_t)bb * C + c] : 0.0;
            for (t = T - 1; t >= 0; t--) {
                size_t i = ((size_t)bb * T + t) * C + c;
                double hp = t > 0 ? h[i - C] : h0 ? h0[(size_t)bb * C + c] : 0.0;
                g = (t < T - 1 ? g * a[i + C] : g) + dh[i];
                db[i] = (float)g;
                da[i] = (float)(g * hp);
            }
            if (dh0) dh0[(size_t)bb * C + c] = (float)(g * a[(size_t)bb * T * C + c]);
        }
    return MR_OK;
}

/* One training step's loss and gradients for a model, with or without the mock. */
static double step(mr_model *m, const mr_backend *be, const int32_t *tok, int B, int T, float *grads, mr_ctx **keep) {
    mr_ctx *ctx;
    mr_ctx_params cp = mr_ctx_defaults();
    mr_tensor *lg, *l;
    mr_state *st = NULL;
    double loss = -1;
    cp.n_threads = 2;
    if (mr_ctx_new(&ctx, &cp) != MR_OK) return -1;
    if (be) MR_CHECK(mr_ctx_set_backend(ctx, be) == MR_OK && mr_ctx_backend(ctx) != NULL);
    mr_state_new(&st, m, B, NULL);
    mr_params_zero_grad(m->ps);
    /* two chunks with the state carried: the second starts from an initial state */
    lg = mr_model_forward(ctx, m, tok, B, T / 2, st, 1);
    l = mr_cross_entropy(ctx, lg, tok + 1, -1);
    if (l && mr_backward(ctx, l) == MR_OK) loss = l->data[0];
    mr_ctx_reset(ctx);
    lg = mr_model_forward(ctx, m, tok + T / 2, B, T / 2, st, 1);
    l = mr_cross_entropy(ctx, lg, tok + T / 2 + 1, -1);
    if (l && mr_backward(ctx, l) == MR_OK && loss >= 0) loss += l->data[0]; else loss = -1;
    memcpy(grads, m->ps->grad, sizeof(float) * m->ps->numel);
    mr_state_free(st);
    if (keep) *keep = ctx; else mr_ctx_free(ctx);
    return loss;
}

static void test_mock_backend(void) {
    const char *archs[] = {"mingru", "minlstm", "gru,mingru"};
    int k;
    for (k = 0; k < 3; k++) {
        mr_model_cfg cfg = mr_model_defaults(11);
        mr_model *m = NULL;
        mr_rng r;
        mock mk;
        mr_backend be;
        int32_t tok[3 * 17 + 1];
        float *g0, *g1;
        double l0, l1, maxd = 0, maxg = 0;
        size_t i;
        cfg.dim = 12; cfg.n_layers = 2; cfg.ffn_hidden = 20; cfg.conv_kernel = 3; cfg.expansion = 1.5f;
        cfg.scan_algo = MR_SCAN_CHUNKED;
        MR_CHECK(mr_model_cfg_set_layers(&cfg, archs[k], NULL) == MR_OK);
        MR_CHECK(mr_model_new(&m, &cfg, NULL, NULL) == MR_OK);
        mr_rng_seed(&r, 5 + k);
        mr_model_init_weights(m, &r);
        for (i = 0; i < sizeof tok / sizeof tok[0]; i++) tok[i] = (int32_t)mr_rng_below(&r, 11);
        g0 = (float *)malloc(sizeof(float) * m->ps->numel);
        g1 = (float *)malloc(sizeof(float) * m->ps->numel);
        memset(&mk, 0, sizeof mk);
        memset(&be, 0, sizeof be);
        be.api_version = MR_BACKEND_API_VERSION; be.name = "mock"; be.ud = &mk;
        be.gemm = mock_gemm; be.scan_fwd = mock_scan_fwd; be.scan_bwd = mock_scan_bwd;
        l0 = step(m, NULL, tok, 3, 16, g0, NULL);
        l1 = step(m, &be, tok, 3, 16, g1, NULL);
        for (i = 0; i < m->ps->numel; i++) {
            double d = fabs((double)g0[i] - g1[i]);
            if (d > maxd) maxd = d;
            if (fabs(g0[i]) > maxg) maxg = fabs(g0[i]);
        }
        MR_CHECK_MSG(l0 > 0 && fabs(l0 - l1) < 1e-5 * l0, "%s: loss cpu %g, mock %g", archs[k], l0, l1);
        MR_CHECK_MSG(maxd <= 1e-4 * (maxg > 1 ? maxg : 1), "%s: gradients differ by %g (max |g| %g)", archs[k], maxd, maxg);
        MR_CHECK_MSG(mk.gemm > 10, "%s: gemm called %d times", archs[k], mk.gemm);
        /* the GRU's recurrence is not a linear scan: a pure-GRU stack calls no scan */
        MR_CHECK_MSG(mk.scan_fwd >= 2 && mk.scan_bwd >= 2, "%s: scan_fwd %d, scan_bwd %d", archs[k], mk.scan_fwd, mk.scan_bwd);
        free(g0); free(g1);
        mr_model_free(m);
    }
}

static void test_backend_errors(void) {
    mr_ctx *ctx;
    mr_ctx_params cp = mr_ctx_defaults();
    mr_model_cfg cfg = mr_model_defaults(7);
    mr_model *m = NULL;
    mr_rng r;
    mock mk;
    mr_backend be;
    int32_t tok[8] = {1, 2, 3, 4, 5, 6, 0, 1};
    mr_tensor *lg;
    cfg.dim = 8; cfg.n_layers = 1; cfg.ffn_hidden = 8;
    MR_CHECK(mr_model_new(&m, &cfg, NULL, NULL) == MR_OK);
    mr_rng_seed(&r, 1);
    mr_model_init_weights(m, &r);
    MR_CHECK(mr_ctx_new(&ctx, &cp) == MR_OK);
    memset(&mk, 0, sizeof mk);
    memset(&be, 0, sizeof be);
    be.api_version = MR_BACKEND_API_VERSION + 1; be.name = "future"; be.ud = &mk; be.gemm = mock_gemm;
    MR_CHECK(mr_ctx_set_backend(ctx, &be) == MR_ERR_VERSION && mr_ctx_backend(ctx) == NULL);
    MR_CHECK(strstr(mr_ctx_error(ctx), "future") != NULL);
    mr_ctx_clear_error(ctx);
    /* a failing kernel: the op returns NULL and the context names the backend */
    be.api_version = MR_BACKEND_API_VERSION; be.name = "broken";
    mk.fail_gemm = 1;
    MR_CHECK(mr_ctx_set_backend(ctx, &be) == MR_OK);
    lg = mr_model_forward(ctx, m, tok, 1, 7, NULL, 0);
    MR_CHECK(lg == NULL && mr_ctx_status(ctx) == MR_ERR_BACKEND && strstr(mr_ctx_error(ctx), "broken"));
    mr_ctx_clear_error(ctx);
    mr_ctx_reset(ctx);
    /* NULL restores the CPU */
    MR_CHECK(mr_ctx_set_backend(ctx, NULL) == MR_OK && mr_ctx_backend(ctx) == NULL);
    mk.gemm = 0;
    lg = mr_model_forward(ctx, m, tok, 1, 7, NULL, 0);
    MR_CHECK(lg != NULL && mk.gemm == 0);
    mr_ctx_free(ctx);
    mr_model_free(m);
}

MR_TEST_MAIN({"mock_backend", test_mock_backend}, {"backend_errors", test_backend_errors})
