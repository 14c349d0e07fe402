/* Gradient checks of every op against central differences, on several
   shapes with odd sizes (1, 3, 17, 129). */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

static mr_ctx *ctx;
static mr_rng rng;
static int32_t ids[4096], tgt[4096];

typedef struct spec { int ta, tb, bias, kind, bcast, extra; float s, c; } spec;

/* Builds n inputs with the given 2-D shapes in a fresh params set. */
static mr_params *make_inputs(int n, const int64_t (*shapes)[2], mr_tensor **ts, float lo, float hi) {
    mr_params *ps = NULL;
    MR_CHECK(mr_params_new(&ps, NULL, NULL) == MR_OK);
    int i;
    for (i = 0; i < n; i++) {
        int nd = shapes[i][0] == 0 ? 1 : 2;
        int64_t sh[2];
        if (nd == 1) sh[0] = shapes[i][1]; else { sh[0] = shapes[i][0]; sh[1] = shapes[i][1]; }
        ts[i] = mr_params_add(ps, "x", nd, sh, 0);
    }
    MR_CHECK(mr_params_alloc(ps, NULL) == MR_OK);
    for (i = 0; i < n; i++) mr_params_init_uniform(ps, ts[i], lo, hi, &rng);
    return ps;
}

static void run_check(const char *what, mr_gradcheck_fn fn, void *ud, int n, mr_tensor **ts) {
    mr_gradcheck_result r;
    mr_status s = mr_gradcheck(ctx, fn, ts, n, ud, 1e-2f, 2e-3, 1e-2, 48, 1234, &r);
    MR_CHECK_MSG(s == MR_OK, "%s: gradcheck status %s (%s)", what, mr_status_str(s), mr_ctx_error(ctx));
    MR_CHECK_MSG(r.checked > 0 && r.failed == 0, "%s: %lld of %lld elements off; worst input %d idx %lld analytic %.6g numeric %.6g",
                 what, (long long)r.failed, (long long)r.checked, r.worst_input, (long long)r.worst_index,
                 r.worst_analytic, r.worst_numeric);
    mr_ctx_clear_error(ctx);
}

static const int64_t sizes[] = {1, 3, 17, 129};

/* ---- matmul ---- */
static mr_tensor *fn_matmul(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    spec *s = (spec *)ud;
    (void)n;
    return mr_matmul(c, in[0], in[1], s->ta, s->tb, s->bias ? in[2] : NULL);
}
static void test_matmul(void) {
    int ta, tb, bias, mi, ki, ni;
    for (ta = 0; ta < 2; ta++) for (tb = 0; tb < 2; tb++) for (bias = 0; bias < 2; bias++)
    for (mi = 0; mi < 4; mi++) for (ki = 0; ki < 4; ki++) for (ni = 0; ni < 4; ni += (mi == 3 && ki == 3 ? 2 : 1)) {
        int64_t M = sizes[mi], K = sizes[ki], N = sizes[ni], sh[3][2];
        mr_tensor *ts[3];
        mr_params *ps;
        spec s;
        char what[64];
        memset(&s, 0, sizeof s);
        s.ta = ta; s.tb = tb; s.bias = bias;
        sh[0][0] = ta ? K : M; sh[0][1] = ta ? M : K;
        sh[1][0] = tb ? N : K; sh[1][1] = tb ? K : N;
        sh[2][0] = 0; sh[2][1] = N;
        ps = make_inputs(bias ? 3 : 2, (const int64_t(*)[2])sh, ts, -0.5f, 0.5f);
        snprintf(what, sizeof what, "matmul ta=%d tb=%d bias=%d %lldx%lldx%lld", ta, tb, bias, (long long)M, (long long)K, (long long)N);
        run_check(what, fn_matmul, &s, bias ? 3 : 2, ts);
        mr_params_free(ps);
    }
}
/* matmul of a 3-D input and of a strided slice */
static mr_tensor *fn_matmul3(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    int64_t sh[3] = {3, 5, 17};
    mr_tensor *x = mr_view_reshape(c, in[0], 3, sh);
    mr_tensor *xs = mr_view_slice(c, x, 2, 9);   /* [3,5,9] strided */
    (void)n; (void)ud;
    return mr_matmul(c, xs, in[1], 0, 1, NULL);
}
static void test_matmul_views(void) {
    int64_t sh[2][2] = {{15, 17}, {7, 9}};
    mr_tensor *ts[2];
    mr_params *ps = make_inputs(2, (const int64_t(*)[2])sh, ts, -1, 1);
    run_check("matmul 3-D strided", fn_matmul3, NULL, 2, ts);
    mr_params_free(ps);
}

/* ---- binary ---- */
static mr_tensor *fn_binary(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    spec *s = (spec *)ud;
    (void)n;
    if (s->kind == 0) return mr_add(c, in[0], in[1]);
    if (s->kind == 1) return mr_sub(c, in[0], in[1]);
    return mr_mul(c, in[0], in[1]);
}
static void test_binary(void) {
    int kind, bc, ri, ci;
    for (kind = 0; kind < 3; kind++) for (bc = 0; bc < 2; bc++) for (ri = 0; ri < 4; ri++) for (ci = 0; ci < 4; ci++) {
        int64_t sh[2][2];
        mr_tensor *ts[2];
        mr_params *ps;
        spec s;
        char what[64];
        memset(&s, 0, sizeof s);
        s.kind = kind;
        sh[0][0] = sizes[ri]; sh[0][1] = sizes[ci];
        sh[1][0] = bc ? 0 : sizes[ri]; sh[1][1] = sizes[ci];
        ps = make_inputs(2, (const int64_t(*)[2])sh, ts, -1, 1);
        snprintf(what, sizeof what, "binary %d bcast=%d %lldx%lld", kind, bc, (long long)sh[0][0], (long long)sh[0][1]);
        run_check(what, fn_binary, &s, 2, ts);
        mr_params_free(ps);
    }
}

/* ---- unary ---- */
static mr_tensor *fn_unary(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    spec *s = (spec *)ud;
    (void)n;
    switch (s->kind) {
    case 0: return mr_scale(c, in[0], s->s);
    case 1: return mr_affine(c, in[0], s->s, s->c);
    case 2: return mr_sigmoid(c, in[0]);
    case 3: return mr_tanh(c, in[0]);
    case 4: return mr_softplus(c, in[0]);
    case 5: return mr_silu(c, in[0]);
    case 6: return mr_relu(c, in[0]);
    case 7: return mr_gelu(c, in[0]);
    case 8: return mr_exp(c, in[0]);
    case 9: return mr_log(c, in[0]);
    case 10: return mr_sum(c, in[0]);
    case 11: return mr_mean(c, in[0]);
    case 12: return mr_softmax(c, in[0]);
    default: return NULL;
    }
}
static void test_unary(void) {
    static const char *names[] = {"scale", "affine", "sigmoid", "tanh", "softplus", "silu", "relu", "gelu", "exp", "log", "sum", "mean", "softmax"};
    int kind, ri, ci;
    for (kind = 0; kind < 13; kind++) for (ri = 0; ri < 4; ri++) for (ci = 0; ci < 4; ci++) {
        int64_t sh[1][2];
        mr_tensor *ts[1];
        mr_params *ps;
        spec s;
        char what[64];
        int64_t i, n;
        memset(&s, 0, sizeof s);
        s.kind = kind; s.s = -1.7f; s.c = 0.3f;
        sh[0][0] = sizes[ri]; sh[0][1] = sizes[ci];
        ps = make_inputs(1, (const int64_t(*)[2])sh, ts, kind == 9 ? 0.2f : -3.f, kind == 9 ? 3.f : 3.f);
        n = mr_tensor_numel(ts[0]);
        if (kind == 6) /* keep relu inputs away from the kink */
            for (i = 0; i < n; i++) if (fabsf(ts[0]->data[i]) < 0.05f) ts[0]->data[i] = 0.5f;
        snprintf(what, sizeof what, "%s %lldx%lld", names[kind], (long long)sh[0][0], (long long)sh[0][1]);
        run_check(what, fn_unary, &s, 1, ts);
        mr_params_free(ps);
    }
}

/* ---- embedding ---- */
static mr_tensor *fn_embedding(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    spec *s = (spec *)ud;
    (void)n;
    return mr_embedding(c, in[0], ids, s->extra);
}
static void test_embedding(void) {
    int vi, di, ni;
    for (vi = 0; vi < 4; vi++) for (di = 0; di < 4; di++) for (ni = 0; ni < 4; ni++) {
        int64_t sh[1][2], i;
        mr_tensor *ts[1];
        mr_params *ps;
        spec s;
        char what[64];
        memset(&s, 0, sizeof s);
        s.extra = (int)sizes[ni];
        sh[0][0] = sizes[vi]; sh[0][1] = sizes[di];
        for (i = 0; i < s.extra; i++) ids[i] = (int32_t)mr_rng_below(&rng, (uint64_t)sizes[vi]); /* repeats: scatter-add */
        ps = make_inputs(1, (const int64_t(*)[2])sh, ts, -1, 1);
        snprintf(what, sizeof what, "embedding V=%lld D=%lld n=%d", (long long)sh[0][0], (long long)sh[0][1], s.extra);
        run_check(what, fn_embedding, &s, 1, ts);
        mr_params_free(ps);
    }
}

/* ---- rmsnorm ---- */
static mr_tensor *fn_rms(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    (void)ud;
    return mr_rmsnorm(c, in[0], n > 1 ? in[1] : NULL, 1e-5f);
}
static void test_rmsnorm(void) {
    int w, ri, ci;
    for (w = 0; w < 2; w++) for (ri = 0; ri < 4; ri++) for (ci = 0; ci < 4; ci++) {
        int64_t sh[2][2];
        mr_tensor *ts[2];
        mr_params *ps;
        char what[64];
        sh[0][0] = sizes[ri]; sh[0][1] = sizes[ci]; sh[1][0] = 0; sh[1][1] = sizes[ci];
        ps = make_inputs(w ? 2 : 1, (const int64_t(*)[2])sh, ts, -2, 2);
        if (sh[0][1] == 1) { /* one column: y = x/sqrt(x^2+eps) is a step of width ~3e-3 at 0 */
            int64_t i;
            for (i = 0; i < sh[0][0]; i++) if (fabsf(ts[0]->data[i]) < 0.3f) ts[0]->data[i] = 0.7f;
        }
        snprintf(what, sizeof what, "rmsnorm w=%d %lldx%lld", w, (long long)sh[0][0], (long long)sh[0][1]);
        run_check(what, fn_rms, NULL, w ? 2 : 1, ts);
        mr_params_free(ps);
    }
}

/* ---- cross-entropy ---- */
static mr_tensor *fn_ce(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    (void)n; (void)ud;
    return mr_cross_entropy(c, in[0], tgt, -1);
}
static void test_cross_entropy(void) {
    int ri, ci;
    for (ri = 0; ri < 4; ri++) for (ci = 0; ci < 4; ci++) {
        int64_t sh[1][2], i;
        mr_tensor *ts[1];
        mr_params *ps;
        char what[64];
        sh[0][0] = sizes[ri]; sh[0][1] = sizes[ci];
        for (i = 0; i < sh[0][0]; i++) tgt[i] = (i % 4 == 3) ? -1 : (int32_t)mr_rng_below(&rng, (uint64_t)sh[0][1]);
        ps = make_inputs(1, (const int64_t(*)[2])sh, ts, -3, 3);
        snprintf(what, sizeof what, "cross_entropy %lldx%lld", (long long)sh[0][0], (long long)sh[0][1]);
        run_check(what, fn_ce, NULL, 1, ts);
        mr_params_free(ps);
    }
}
static void test_cross_entropy_values(void) {
    float logits[6] = {1, 2, 3, 0, 0, 0};
    int32_t t[2] = {2, -100};
    int64_t sh[2] = {2, 3};
    mr_tensor *x, *l;
    mr_ctx_reset(ctx);
    x = mr_tensor_wrap(ctx, logits, 2, sh);
    l = mr_cross_entropy(ctx, x, t, -100);
    MR_CHECK(l != NULL);
    if (l) MR_CHECK_NEAR(l->data[0], log(exp(1.) + exp(2.) + exp(3.)) - 3.0, 1e-6);
    t[0] = -100;
    l = mr_cross_entropy(ctx, x, t, -100);
    MR_CHECK(l && l->data[0] == 0.f);   /* all ignored */
    t[0] = 3;
    l = mr_cross_entropy(ctx, x, t, -100);
    MR_CHECK(l == NULL && mr_ctx_status(ctx) == MR_ERR_RANGE);
    mr_ctx_reset(ctx);
}

/* ---- concat / split / slice ---- */
static mr_tensor *fn_concat(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    mr_tensor *parts[3], *cat, *sp[2] = {NULL, NULL};
    int64_t sizes2[2];
    (void)ud;
    parts[0] = in[0]; parts[1] = in[1]; parts[2] = in[2];
    cat = mr_concat(c, n, parts);
    if (!cat) return NULL;
    /* split the concatenation unevenly and weight the parts differently */
    sizes2[0] = 1; sizes2[1] = mr_tensor_cols(cat) - 1;
    if (mr_split(c, cat, 2, sizes2, sp) != MR_OK) return NULL;
    return mr_concat(c, 2, (mr_tensor *const[]){mr_scale(c, sp[1], 2.f), mr_tanh(c, sp[0])});
}
static void test_concat_split(void) {
    int ri, ci;
    for (ri = 0; ri < 4; ri++) for (ci = 0; ci < 4; ci++) {
        int64_t sh[3][2];
        mr_tensor *ts[3];
        mr_params *ps;
        char what[64];
        sh[0][0] = sh[1][0] = sh[2][0] = sizes[ri];
        sh[0][1] = sizes[ci]; sh[1][1] = 1; sh[2][1] = sizes[3 - ci];
        ps = make_inputs(3, (const int64_t(*)[2])sh, ts, -1, 1);
        snprintf(what, sizeof what, "concat/split rows=%lld", (long long)sh[0][0]);
        run_check(what, fn_concat, NULL, 3, ts);
        mr_params_free(ps);
    }
}

/* ---- a composite: 2-layer MLP with RMSNorm and cross-entropy ---- */
static mr_tensor *fn_mlp(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    mr_tensor *h;
    (void)n; (void)ud;
    h = mr_embedding(c, in[0], ids, 17);
    h = mr_rmsnorm(c, h, in[1], 1e-5f);
    h = mr_gelu(c, mr_matmul(c, h, in[2], 0, 1, in[3]));
    h = mr_matmul(c, h, in[4], 0, 1, NULL);
    return mr_cross_entropy(c, h, tgt, -1);
}
static void test_composite(void) {
    int64_t sh[5][2] = {{11, 9}, {0, 9}, {13, 9}, {0, 13}, {11, 13}}, i;
    mr_tensor *ts[5];
    mr_params *ps;
    for (i = 0; i < 17; i++) { ids[i] = (int32_t)mr_rng_below(&rng, 11); tgt[i] = (int32_t)mr_rng_below(&rng, 11); }
    ps = make_inputs(5, (const int64_t(*)[2])sh, ts, -1, 1);
    run_check("mlp", fn_mlp, NULL, 5, ts);
    mr_params_free(ps);
}

/* ---- errors never abort ---- */
static void test_errors(void) {
    int64_t a[2] = {3, 4}, b[2] = {5, 6}, bad[2] = {0, 4};
    mr_tensor *x, *y, *z;
    mr_ctx_reset(ctx);
    x = mr_tensor_new(ctx, 2, a, 0);
    y = mr_tensor_new(ctx, 2, b, 0);
    z = mr_matmul(ctx, x, y, 0, 0, NULL);
    MR_CHECK(z == NULL && mr_ctx_status(ctx) == MR_ERR_SHAPE);
    MR_CHECK(strlen(mr_ctx_error(ctx)) > 0);
    /* later ops propagate NULL without touching the first error */
    MR_CHECK(mr_tanh(ctx, z) == NULL && mr_ctx_status(ctx) == MR_ERR_SHAPE);
    mr_ctx_reset(ctx);
    MR_CHECK(mr_tensor_new(ctx, 2, bad, 0) == NULL && mr_ctx_status(ctx) == MR_ERR_ARG);
    mr_ctx_reset(ctx);
    MR_CHECK(mr_tensor_new(ctx, 5, a, 0) == NULL && mr_ctx_status(ctx) == MR_ERR_ARG);
    mr_ctx_reset(ctx);
    x = mr_tensor_new(ctx, 2, a, 0);
    MR_CHECK(mr_view_slice(ctx, x, 2, 3) == NULL && mr_ctx_status(ctx) == MR_ERR_SHAPE);
    mr_ctx_reset(ctx);
    x = mr_tensor_new(ctx, 2, a, 0);
    ids[0] = 7;
    MR_CHECK(mr_embedding(ctx, x, ids, 1) == NULL && mr_ctx_status(ctx) == MR_ERR_RANGE);
    mr_ctx_reset(ctx);
    x = mr_tensor_new(ctx, 2, a, 0);   /* no grad anywhere: backward is a state error */
    MR_CHECK(mr_backward(ctx, mr_sum(ctx, x)) == MR_ERR_STATE);
    mr_ctx_reset(ctx);
    MR_CHECK(mr_status_str(MR_ERR_FORMAT)[0] != 0);
}

/* ---- a fixed-size caller arena: full is an error, never an abort ---- */
static void test_fixed_arena(void) {
    static char buf[1 << 16];
    mr_ctx *c;
    mr_ctx_params p = mr_ctx_defaults();
    int64_t sh[2] = {100, 100};
    p.arena_buffer = buf; p.arena_bytes = sizeof buf; p.n_threads = 1;
    MR_CHECK(mr_ctx_new(&c, &p) == MR_OK);
    MR_CHECK(mr_tensor_new(c, 2, sh, 0) != NULL);
    MR_CHECK(mr_tensor_new(c, 2, sh, 0) == NULL && mr_ctx_status(c) == MR_ERR_ARENA);
    mr_ctx_reset(c);
    MR_CHECK(mr_tensor_new(c, 2, sh, 0) != NULL && mr_ctx_status(c) == MR_OK);
    mr_ctx_free(c);
}

/* ---- no-grad records nothing; grads accumulate across micro-batches ---- */
static void test_nograd_accumulate(void) {
    mr_params *ps = NULL;
    MR_CHECK(mr_params_new(&ps, NULL, NULL) == MR_OK);
    int64_t sh[2] = {4, 3}, xs[2] = {2, 3};
    mr_tensor *w = mr_params_add(ps, "w", 2, sh, 0), *x, *l;
    float once[12];
    int i;
    MR_CHECK(mr_params_alloc(ps, NULL) == MR_OK);
    mr_params_init_normal(ps, w, 1.f, &rng);
    mr_ctx_reset(ctx);
    mr_ctx_set_no_grad(ctx, 1);
    x = mr_tensor_new(ctx, 2, xs, 0);
    mr_tensor_fill(x, 0.5f);
    l = mr_sum(ctx, mr_matmul(ctx, x, w, 0, 1, NULL));
    MR_CHECK(l && !mr_requires_grad(l));
    MR_CHECK(mr_backward(ctx, l) == MR_ERR_STATE);
    mr_ctx_set_no_grad(ctx, 0);
    mr_ctx_reset(ctx);
    for (i = 0; i < 2; i++) {
        x = mr_tensor_new(ctx, 2, xs, 0);
        mr_tensor_fill(x, 0.5f);
        l = mr_sum(ctx, mr_tanh(ctx, mr_matmul(ctx, x, w, 0, 1, NULL)));
        MR_CHECK(mr_backward(ctx, l) == MR_OK);
        if (i == 0) memcpy(once, w->grad, sizeof once);
        mr_ctx_reset(ctx);
    }
    for (i = 0; i < 12; i++) MR_CHECK_NEAR(w->grad[i], 2 * once[i], 1e-6);
    mr_params_free(ps);
}

/* ---- the checker itself catches a wrong backward (10% off) ---- */
static void bad_bwd(mr_ctx *c, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    int64_t i, n = mr_tensor_numel(out);
    (void)c; (void)n_in; (void)data;
    for (i = 0; i < n; i++) in[0]->grad[i] += 1.1f * 2.f * in[0]->data[i] * out->grad[i];
}
static mr_tensor *fn_bad(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    mr_tensor *out = mr_tensor_new(c, in[0]->ndim, in[0]->shape, 0);
    int64_t i;
    (void)n; (void)ud;
    if (!out) return NULL;
    for (i = 0; i < mr_tensor_numel(out); i++) out->data[i] = in[0]->data[i] * in[0]->data[i];
    mr_tape_record(c, out, in, 1, bad_bwd, NULL);
    return out;
}
static void test_gradcheck_catches_bugs(void) {
    int64_t sh[1][2] = {{3, 17}};
    mr_tensor *ts[1];
    mr_params *ps = make_inputs(1, (const int64_t(*)[2])sh, ts, 0.5f, 2.f);
    mr_gradcheck_result r;
    MR_CHECK(mr_gradcheck(ctx, fn_bad, ts, 1, NULL, 1e-2f, 2e-3, 1e-2, 0, 1, &r) == MR_OK);
    MR_CHECK_MSG(r.checked == 51 && r.failed >= 45, "checked %lld failed %lld kinks %lld", (long long)r.checked, (long long)r.failed, (long long)r.kinks);
    mr_params_free(ps);
}

int main(int argc, char **argv) {
    static const mr_test_case cases[] = {
        {"matmul", test_matmul}, {"matmul_views", test_matmul_views}, {"binary", test_binary},
        {"unary", test_unary}, {"embedding", test_embedding}, {"rmsnorm", test_rmsnorm},
        {"cross_entropy", test_cross_entropy}, {"cross_entropy_values", test_cross_entropy_values},
        {"concat_split", test_concat_split}, {"composite", test_composite}, {"errors", test_errors},
        {"fixed_arena", test_fixed_arena}, {"gradcheck_catches_bugs", test_gradcheck_catches_bugs}, {"nograd_accumulate", test_nograd_accumulate},
    };
    mr_ctx_params p = mr_ctx_defaults();
    int rc;
    p.n_threads = 2;
    if (mr_ctx_new(&ctx, &p) != MR_OK) { printf("0 passed, 1 failed\n"); return 1; }
    mr_rng_seed(&rng, 42);
    rc = mr_test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
    mr_ctx_free(ctx);
    return rc;
}
