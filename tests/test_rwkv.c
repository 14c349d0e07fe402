/* RWKV-6 ops on their own: the wkv kernel against a double-precision
   recurrence (any T, odd head counts, a carried state, step by step), its
   gradient against central differences (T = 1, 2, 17, across the 16-step
   recompute chunks, with a carried state), finiteness at T = 65536 with
   extreme decays, the group norm and the token shift. The blocks
   themselves are in test_blocks.c's table; PyTorch in test_torch_ref.c. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

static mr_ctx *ctx;
static mr_rng rng;

static float urand(float lo, float hi) { return lo + (hi - lo) * mr_rng_uniform(&rng); }

/* the recurrence in double: y [B,T,C], S [B,H,N,N] in/out */
static void wkv_ref(int B, int T, int H, int N, const float *r, const float *k, const float *v, const float *w, const float *u,
                    double *S, double *y) {
    int b, t, h, i, j, C = H * N;
    for (b = 0; b < B; b++) for (h = 0; h < H; h++) {
        double *Sh = S + ((size_t)b * H + h) * N * N;
        for (t = 0; t < T; t++) {
            size_t o = ((size_t)b * T + t) * C + (size_t)h * N;
            for (j = 0; j < N; j++) {
                double acc = 0;
                for (i = 0; i < N; i++) acc += r[o + i] * (Sh[i * N + j] + (double)u[h * N + i] * k[o + i] * v[o + j]);
                y[o + j] = acc;
            }
            for (i = 0; i < N; i++) {
                double d = exp(-exp((double)w[o + i]));
                for (j = 0; j < N; j++) Sh[i * N + j] = d * Sh[i * N + j] + (double)k[o + i] * v[o + j];
            }
        }
    }
}

static mr_tensor *wrap3(float *p, int B, int T, int C) {
    int64_t sh[3];
    sh[0] = B; sh[1] = T; sh[2] = C;
    return mr_tensor_wrap(ctx, p, 3, sh);
}

static void test_wkv_reference(void) {
    static const int cases[][4] = {{1, 1, 1, 4}, {2, 7, 3, 4}, {1, 40, 2, 64}, {3, 17, 5, 3}, {2, 33, 1, 16}};
    int ci;
    for (ci = 0; ci < (int)(sizeof cases / sizeof cases[0]); ci++) {
        int B = cases[ci][0], T = cases[ci][1], H = cases[ci][2], N = cases[ci][3], C = H * N, init;
        size_t n = (size_t)B * T * C, ns = (size_t)B * H * N * N, i;
        float *r = malloc(n * 4), *k = malloc(n * 4), *v = malloc(n * 4), *w = malloc(n * 4), *u = malloc((size_t)C * 4);
        float *s0 = malloc(ns * 4), *s1 = malloc(ns * 4), *ys = malloc(n * 4), *yw = malloc(n * 4);
        double *S = malloc(ns * 8), *y = malloc(n * 8), maxd = 0, maxs = 0;
        for (i = 0; i < n; i++) { r[i] = urand(-1, 1); k[i] = urand(-1, 1); v[i] = urand(-1, 1); w[i] = urand(-3, 1.5f); }
        for (i = 0; i < (size_t)C; i++) u[i] = urand(-1, 1);
        for (init = 0; init < 2; init++) {
            mr_tensor *out;
            int t, b;
            for (i = 0; i < ns; i++) { s0[i] = init ? urand(-1, 1) : 0.f; S[i] = s0[i]; s1[i] = s0[i]; }
            wkv_ref(B, T, H, N, r, k, v, w, u, S, y);
            mr_ctx_reset(ctx);
            out = mr_wkv6(ctx, wrap3(r, B, T, C), wrap3(k, B, T, C), wrap3(v, B, T, C), wrap3(w, B, T, C), mr_tensor_wrap(ctx, u, 1, (int64_t[]){C}),
                          H, init ? s0 : NULL, s0);
            MR_CHECK_MSG(out != NULL, "%s", mr_ctx_error(ctx));
            if (!out) continue;
            memcpy(yw, out->data, n * 4);   /* the arena is reset below */
            for (i = 0; i < n; i++) if (fabs(yw[i] - y[i]) > maxd) maxd = fabs(yw[i] - y[i]);
            for (i = 0; i < ns; i++) if (fabs(s0[i] - S[i]) > maxs) maxs = fabs(s0[i] - S[i]);
            /* token by token through the state equals the whole sequence */
            for (t = 0; t < T; t++) {
                float rt[4096], kt[4096], vt[4096], wt[4096];
                mr_tensor *o1;
                for (b = 0; b < B; b++) {
                    size_t src = ((size_t)b * T + t) * C;
                    memcpy(rt + b * C, r + src, (size_t)C * 4); memcpy(kt + b * C, k + src, (size_t)C * 4);
                    memcpy(vt + b * C, v + src, (size_t)C * 4); memcpy(wt + b * C, w + src, (size_t)C * 4);
                }
                mr_ctx_reset(ctx);
                o1 = mr_wkv6(ctx, wrap3(rt, B, 1, C), wrap3(kt, B, 1, C), wrap3(vt, B, 1, C), wrap3(wt, B, 1, C),
                             mr_tensor_wrap(ctx, u, 1, (int64_t[]){C}), H, s1, s1);
                if (o1) for (b = 0; b < B; b++) memcpy(ys + ((size_t)b * T + t) * C, o1->data + (size_t)b * C, (size_t)C * 4);
            }
            for (i = 0; i < n; i++) if (fabs(ys[i] - yw[i]) > 1e-5 * (1 + fabs(yw[i]))) { MR_CHECK_MSG(0, "case %d: step %zu differs", ci, i); break; }
            for (i = 0; i < ns; i++) if (fabs(s1[i] - s0[i]) > 1e-5 * (1 + fabs(s0[i]))) { MR_CHECK_MSG(0, "case %d: step state %zu differs", ci, i); break; }
        }
        MR_CHECK_MSG(maxd < 1e-4 && maxs < 1e-4, "case %d (B%d T%d H%d N%d): max |y - ref| %g, |S - ref| %g", ci, B, T, H, N, maxd, maxs);
        free(r); free(k); free(v); free(w); free(u); free(s0); free(s1); free(ys); free(yw); free(S); free(y);
    }
}

typedef struct wspec { int B, T, H, N; float *s0; } wspec;
static mr_tensor *fn_wkv(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    wspec *s = (wspec *)ud;
    int64_t sh[3];
    mr_tensor *x[4];
    int i;
    (void)n;
    sh[0] = s->B; sh[1] = s->T; sh[2] = (int64_t)s->H * s->N;
    for (i = 0; i < 4; i++) x[i] = mr_view_reshape(c, in[i], 3, sh);
    return mr_wkv6(c, x[0], x[1], x[2], x[3], in[4], s->H, s->s0, NULL);
}
static void test_wkv_gradcheck(void) {
    static const wspec cases[] = {{2, 1, 2, 4, 0}, {1, 2, 3, 3, 0}, {2, 17, 3, 4, 0}, {1, 33, 1, 5, 0}, {2, 20, 2, 4, (float *)1}};
    int ci;
    for (ci = 0; ci < (int)(sizeof cases / sizeof cases[0]); ci++) {
        wspec s = cases[ci];
        mr_params *ps = NULL;
        mr_tensor *t[5];
        int64_t sh[2];
        float *s0 = NULL;
        mr_gradcheck_result res;
        mr_status st;
        int i;
        static const char *nm[5] = {"r", "k", "v", "w", "u"};
        MR_CHECK(mr_params_new(&ps, NULL, NULL) == MR_OK);
        sh[0] = (int64_t)s.B * s.T; sh[1] = (int64_t)s.H * s.N;
        for (i = 0; i < 4; i++) t[i] = mr_params_add(ps, nm[i], 2, sh, 0);
        t[4] = mr_params_add(ps, nm[4], 1, &sh[1], 0);
        mr_params_alloc(ps, NULL);
        for (i = 0; i < 3; i++) mr_params_init_uniform(ps, t[i], -1.f, 1.f, &rng);
        mr_params_init_uniform(ps, t[3], -2.5f, 1.f, &rng);
        mr_params_init_uniform(ps, t[4], -1.f, 1.f, &rng);
        if (s.s0) {
            size_t ns = (size_t)s.B * s.H * s.N * s.N, j;
            s0 = malloc(ns * 4);
            for (j = 0; j < ns; j++) s0[j] = urand(-1, 1);
            s.s0 = s0;
        }
        memset(&res, 0, sizeof res);
        st = mr_gradcheck(ctx, fn_wkv, t, 5, &s, 1e-2f, 1e-3, 1e-2, 0, 11 + ci, &res);
        MR_CHECK_MSG(st == MR_OK && res.checked > 0 && res.failed == 0, "case %d (B%d T%d H%d N%d%s): %s; %lld of %lld off, input %s idx %lld analytic %.6g numeric %.6g",
                     ci, s.B, s.T, s.H, s.N, s0 ? ", s0" : "", mr_ctx_error(ctx), (long long)res.failed, (long long)res.checked,
                     res.worst_input >= 0 && res.worst_input < 5 ? nm[res.worst_input] : "?", (long long)res.worst_index,
                     res.worst_analytic, res.worst_numeric);
        mr_ctx_clear_error(ctx);
        mr_ctx_reset(ctx);
        free(s0);
        mr_params_free(ps);
    }
}

/* T = 65536 with the decay at its extremes (w0 = -20: d = 1 in float; w0 = +20: d = 0, and its
   derivative exp(w - exp(w)) must be 0, not inf * 0): outputs and gradients stay finite */
static void test_wkv_extremes(void) {
    enum { T = 65536, H = 2, N = 8, C = H * N };
    int e;
    for (e = 0; e < 3; e++) {
        mr_params *ps = NULL;
        mr_tensor *t[5], *x[4], *y;
        int64_t sh[3] = {1, T, C};
        int i, bad = 0;
        int64_t j;
        static const char *nm[5] = {"r", "k", "v", "w", "u"};
        MR_CHECK(mr_params_new(&ps, NULL, NULL) == MR_OK);
        for (i = 0; i < 4; i++) t[i] = mr_params_add(ps, nm[i], 3, sh, 0);
        t[4] = mr_params_add(ps, nm[4], 1, &sh[2], 0);
        mr_params_alloc(ps, NULL);
        for (i = 0; i < 3; i++) mr_params_init_uniform(ps, t[i], -1.f, 1.f, &rng);
        mr_params_init_uniform(ps, t[4], -1.f, 1.f, &rng);
        for (j = 0; j < (int64_t)T * C; j++) t[3]->data[j] = e == 0 ? -20.f : e == 1 ? 20.f : ((j / C) % 2 ? 20.f : -20.f) + urand(-2, 2);
        mr_ctx_reset(ctx);
        for (i = 0; i < 4; i++) x[i] = t[i];
        y = mr_wkv6(ctx, x[0], x[1], x[2], x[3], t[4], H, NULL, NULL);
        MR_CHECK(y != NULL && mr_backward(ctx, mr_sum(ctx, y)) == MR_OK);
        if (y) for (j = 0; j < (int64_t)T * C; j++) if (!isfinite(y->data[j])) bad++;
        for (i = 0; i < 5; i++) for (j = 0; j < mr_tensor_numel(t[i]); j++) if (!isfinite(t[i]->grad[j])) bad++;
        MR_CHECK_MSG(bad == 0, "w0 case %d: %d non-finite values", e, bad);
        if (e == 0 && y) MR_CHECK(fabsf(y->data[(int64_t)(T - 1) * C]) > 1.f);   /* no decay: the state kept everything */
        mr_ctx_reset(ctx);
        mr_params_free(ps);
    }
}

typedef struct gspec { int groups, with_w, shift; float *prev; } gspec;
static mr_tensor *fn_gn(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    gspec *s = (gspec *)ud;
    (void)n;
    if (s->shift) {
        int64_t sh[3] = {2, 5, 6};
        return mr_token_shift(c, mr_view_reshape(c, in[0], 3, sh), s->prev);
    }
    return mr_group_norm(c, in[0], s->groups, s->with_w ? in[1] : NULL, s->with_w ? in[2] : NULL, 64e-5f);
}
static void test_group_norm_and_shift(void) {
    static const gspec cases[] = {{3, 1, 0, 0}, {1, 0, 0, 0}, {12, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 1, (float *)1}};
    float prev[12];
    int ci, i;
    for (i = 0; i < 12; i++) prev[i] = urand(-1, 1);
    for (ci = 0; ci < (int)(sizeof cases / sizeof cases[0]); ci++) {
        gspec s = cases[ci];
        mr_params *ps = NULL;
        mr_tensor *t[3];
        int64_t sh[2] = {10, 12};
        mr_gradcheck_result res;
        if (s.shift) { sh[1] = 6; s.prev = s.prev ? prev : NULL; }
        MR_CHECK(mr_params_new(&ps, NULL, NULL) == MR_OK);
        t[0] = mr_params_add(ps, "x", 2, sh, 0);
        t[1] = mr_params_add(ps, "w", 1, &sh[1], 0);
        t[2] = mr_params_add(ps, "b", 1, &sh[1], 0);
        mr_params_alloc(ps, NULL);
        for (i = 0; i < 3; i++) mr_params_init_uniform(ps, t[i], -1.5f, 1.5f, &rng);
        memset(&res, 0, sizeof res);
        MR_CHECK(mr_gradcheck(ctx, fn_gn, t, s.with_w ? 3 : 1, &s, 1e-2f, 1e-3, 1e-2, 0, 5, &res) == MR_OK);
        MR_CHECK_MSG(res.checked > 0 && res.failed == 0, "case %d: %lld of %lld off", ci, (long long)res.failed, (long long)res.checked);
        if (!s.shift) {   /* each group of the output has mean b and (without weights) variance ~1 */
            mr_tensor *y;
            mr_ctx_reset(ctx);
            y = mr_group_norm(ctx, t[0], s.groups, NULL, NULL, 1e-6f);
            if (y) {
                int64_t r, c, G = 12 / s.groups;
                for (r = 0; r < 10; r++) {
                    double m = 0, v = 0;
                    for (c = 0; c < G; c++) m += y->data[r * 12 + c];
                    m /= (double)G;
                    for (c = 0; c < G; c++) v += (y->data[r * 12 + c] - m) * (y->data[r * 12 + c] - m);
                    if (G > 1) MR_CHECK(fabs(m) < 1e-5 && fabs(v / (double)G - 1) < 1e-3);
                }
            }
        } else {          /* row 0 of each stream is prev (or 0), row t is x_{t-1} */
            mr_tensor *y;
            mr_ctx_reset(ctx);
            y = fn_gn(ctx, t, 1, &s);
            MR_CHECK(y && y->data[0] == (s.prev ? prev[0] : 0.f) && y->data[5 * 6 + 1] == (s.prev ? prev[7] : 0.f) &&
                     y->data[6 + 2] == t[0]->data[2] && y->data[(5 + 4) * 6 + 3] == t[0]->data[(5 + 3) * 6 + 3]);
        }
        mr_ctx_clear_error(ctx);
        mr_ctx_reset(ctx);
        mr_params_free(ps);
    }
    {   /* bad shapes are errors, not crashes */
        mr_tensor *x = mr_tensor_new(ctx, 2, (int64_t[]){4, 10}, 1);
        MR_CHECK(mr_group_norm(ctx, x, 3, NULL, NULL, 1e-5f) == NULL && mr_ctx_status(ctx) == MR_ERR_SHAPE);
        mr_ctx_clear_error(ctx);
        MR_CHECK(mr_wkv6(ctx, x, x, x, x, x, 2, NULL, NULL) == NULL && mr_ctx_status(ctx) == MR_ERR_SHAPE);
        mr_ctx_clear_error(ctx);
        mr_ctx_reset(ctx);
    }
}

int main(int argc, char **argv) {
    static const mr_test_case cases[] = {
        {"wkv_reference", test_wkv_reference}, {"wkv_gradcheck", test_wkv_gradcheck}, {"wkv_extremes", test_wkv_extremes},
        {"group_norm_and_shift", test_group_norm_and_shift},
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
