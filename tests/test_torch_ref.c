/* The whole language model against a PyTorch reference (tools/torch_ref.py,
   float64): loss, logits, final states and the gradient of every parameter,
   on fixed weights, for every scan algorithm. The fixtures in tests/fixtures
   are committed, so this test needs no Python; it must run from the repository
   root, and a missing fixture is a failure. Tolerance: 1e-4 relative to
   max(1, |ref|) per element; the printed "scaled" error divides by the largest
   |ref| of the tensor instead. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

#ifndef FX_DIR
#define FX_DIR "tests/fixtures/"
#endif
#define FX_TOL 1e-4

/* --- fixture reader (format: see tools/torch_ref.py) ---------------------- */
typedef struct fx_cur { const uint8_t *p, *end; int bad; } fx_cur;
static const uint8_t *fx_take(fx_cur *c, size_t n) {
    const uint8_t *r = c->p;
    if (c->bad || (size_t)(c->end - c->p) < n) { c->bad = 1; return NULL; }
    c->p += n;
    return r;
}
static uint32_t fx_u32(fx_cur *c) {
    const uint8_t *b = fx_take(c, 4);
    return b ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24 : 0;
}
static float fx_f32(fx_cur *c) {
    uint32_t u = fx_u32(c);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static double fx_f64(fx_cur *c) {
    uint64_t lo = fx_u32(c), hi = fx_u32(c), u = lo | hi << 32;
    double d;
    memcpy(&d, &u, 8);
    return d;
}

#define FX_MAX_P 64
typedef struct fx {
    int vocab, dim, n_layers, ffn, tie, B, T, has_h0, n_params;
    float expansion, eps;
    uint8_t mixer[MR_MAX_LAYERS];
    int32_t *tokens, *targets;
    float *h0[MR_MAX_LAYERS];
    int64_t h0_n[MR_MAX_LAYERS], last_n[MR_MAX_LAYERS];
    char name[FX_MAX_P][64];
    int ndim[FX_MAX_P];
    int64_t shape[FX_MAX_P][2], numel[FX_MAX_P];
    float *data[FX_MAX_P];
    double loss, *logits, *last[MR_MAX_LAYERS], *grad[FX_MAX_P];
    uint8_t *buf;
} fx;

static void fx_free(fx *f) {
    int i;
    free(f->buf);
    free(f->tokens); free(f->targets); free(f->logits);
    for (i = 0; i < MR_MAX_LAYERS; i++) { free(f->h0[i]); free(f->last[i]); }
    for (i = 0; i < FX_MAX_P; i++) { free(f->data[i]); free(f->grad[i]); }
    memset(f, 0, sizeof *f);
}
static double *fx_f64s(fx_cur *c, int64_t n) {
    double *d = (double *)malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    int64_t i;
    if (!d) { c->bad = 1; return NULL; }
    for (i = 0; i < n; i++) d[i] = fx_f64(c);
    return d;
}
static float *fx_f32s(fx_cur *c, int64_t n) {
    float *d = (float *)malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    int64_t i;
    if (!d) { c->bad = 1; return NULL; }
    for (i = 0; i < n; i++) d[i] = fx_f32(c);
    return d;
}

/* Loads tests/fixtures/<file>; on failure fails the current test and returns 0. */
static int fx_load(fx *f, const char *file) {
    char path[256];
    FILE *fp;
    long len;
    fx_cur c;
    int i, l;
    int64_t n, j;
    const uint8_t *m;
    memset(f, 0, sizeof *f);
    snprintf(path, sizeof path, FX_DIR "%s", file);
    fp = fopen(path, "rb");
    MR_CHECK_MSG(fp != NULL, "missing fixture %s (run the tests from the repository root; "
                 "regenerate with /usr/bin/python3 tools/torch_ref.py)", path);
    if (!fp) return 0;
    fseek(fp, 0, SEEK_END); len = ftell(fp); fseek(fp, 0, SEEK_SET);
    f->buf = (uint8_t *)malloc(len > 0 ? (size_t)len : 1);
    if (!f->buf || len <= 0 || fread(f->buf, 1, (size_t)len, fp) != (size_t)len) {
        fclose(fp); MR_CHECK_MSG(0, "cannot read %s", path); return 0;
    }
    fclose(fp);
    c.p = f->buf; c.end = f->buf + len; c.bad = 0;
    m = fx_take(&c, 4);
    if (!m || memcmp(m, "MRFX", 4)) { MR_CHECK_MSG(0, "%s: bad magic", path); return 0; }
    if ((i = (int)fx_u32(&c)) != 1) { MR_CHECK_MSG(0, "%s: fixture version %d, expected 1", path, i); return 0; }
    f->vocab = (int)fx_u32(&c); f->dim = (int)fx_u32(&c); f->n_layers = (int)fx_u32(&c);
    f->ffn = (int)fx_u32(&c); f->tie = (int)fx_u32(&c); f->B = (int)fx_u32(&c); f->T = (int)fx_u32(&c);
    f->has_h0 = (int)fx_u32(&c);
    f->expansion = fx_f32(&c); f->eps = fx_f32(&c);
    if (c.bad || f->vocab < 2 || f->vocab > 4096 || f->dim < 1 || f->dim > 4096 || f->n_layers < 1 ||
        f->n_layers > MR_MAX_LAYERS || f->B < 1 || f->B > 64 || f->T < 1 || f->T > 4096) {
        MR_CHECK_MSG(0, "%s: bad header", path); return 0;
    }
    m = fx_take(&c, (size_t)f->n_layers);
    if (m) memcpy(f->mixer, m, (size_t)f->n_layers);
    n = (int64_t)f->B * f->T;
    f->tokens = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
    f->targets = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
    if (!f->tokens || !f->targets) { MR_CHECK_MSG(0, "out of memory"); return 0; }
    for (j = 0; j < n; j++) f->tokens[j] = (int32_t)fx_u32(&c);
    for (j = 0; j < n; j++) f->targets[j] = (int32_t)fx_u32(&c);
    if (f->has_h0) for (l = 0; l < f->n_layers; l++) {
        f->h0_n[l] = fx_u32(&c);
        if (f->h0_n[l] > (int64_t)f->B * 65536) c.bad = 1;
        if (c.bad) break;
        f->h0[l] = fx_f32s(&c, f->h0_n[l]);
    }
    f->n_params = (int)fx_u32(&c);
    if (c.bad || f->n_params < 1 || f->n_params > FX_MAX_P) { MR_CHECK_MSG(0, "%s: bad parameter count", path); return 0; }
    for (i = 0; i < f->n_params && !c.bad; i++) {
        uint32_t nl = fx_u32(&c);
        int d;
        if (nl >= sizeof f->name[i]) { c.bad = 1; break; }
        m = fx_take(&c, nl);
        if (!m) break;
        memcpy(f->name[i], m, nl); f->name[i][nl] = 0;
        f->ndim[i] = (int)fx_u32(&c);
        if (f->ndim[i] < 1 || f->ndim[i] > 2) { c.bad = 1; break; }
        f->numel[i] = 1;
        for (d = 0; d < f->ndim[i]; d++) {
            f->shape[i][d] = fx_u32(&c);
            if (f->shape[i][d] < 1 || f->shape[i][d] > 65536) c.bad = 1;
            f->numel[i] *= f->shape[i][d];
        }
        if (c.bad) break;
        f->data[i] = fx_f32s(&c, f->numel[i]);
    }
    f->loss = fx_f64(&c);
    f->logits = fx_f64s(&c, n * f->vocab);
    for (l = 0; l < f->n_layers && !c.bad; l++) {
        f->last_n[l] = fx_u32(&c);
        if (f->last_n[l] > (int64_t)f->B * 65536) { c.bad = 1; break; }
        f->last[l] = fx_f64s(&c, f->last_n[l]);
    }
    for (i = 0; i < f->n_params && !c.bad; i++) f->grad[i] = fx_f64s(&c, f->numel[i]);
    m = fx_take(&c, 4);
    if (c.bad || !m || memcmp(m, "MRFX", 4) || c.p != c.end) { MR_CHECK_MSG(0, "%s: truncated or malformed", path); return 0; }
    return 1;
}

/* --- comparison ------------------------------------------------------------ */
typedef struct fx_err { double rel, scaled; int64_t idx; double got, ref; } fx_err;
/* rel: max |got-ref| / max(1,|ref|); scaled: max |got-ref| / max|ref| of the tensor. */
static fx_err fx_cmp(const float *got, const double *ref, int64_t n) {
    fx_err e;
    double amax = 0;
    int64_t i;
    memset(&e, 0, sizeof e);
    for (i = 0; i < n; i++) if (fabs(ref[i]) > amax) amax = fabs(ref[i]);
    for (i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]), s = fabs(ref[i]) > 1 ? fabs(ref[i]) : 1;
        if (!(d == d)) d = HUGE_VAL;
        if (d / s > e.rel || !(d / s == d / s)) { e.rel = d / s; e.idx = i; e.got = got[i]; e.ref = ref[i]; }
        if (amax > 0 && d / amax > e.scaled) e.scaled = d / amax;
    }
    return e;
}

static const char *fx_algo_name(int a) {
    return a == MR_SCAN_SEQUENTIAL ? "sequential" : a == MR_SCAN_CHUNKED ? "chunked" : a == MR_SCAN_LOG ? "log" : "auto";
}

static void run_fixture(const char *file) {
    static const int algos[] = {MR_SCAN_AUTO, MR_SCAN_SEQUENTIAL, MR_SCAN_CHUNKED, MR_SCAN_LOG};
    fx f;
    int ai;
    double all[5] = {0, 0, 0, 0, 0};
    if (!fx_load(&f, file)) { fx_free(&f); return; }
    for (ai = 0; ai < (int)(sizeof algos / sizeof algos[0]); ai++) {
        mr_model_cfg cfg;
        mr_model *m = NULL;
        mr_state *st = NULL;
        mr_ctx *ctx = NULL;
        mr_ctx_params cp = mr_ctx_default_params();
        mr_error err;
        mr_tensor *logits, *loss;
        float *tmp;
        int i, l, worst = -1;
        double max_rel = 0, max_scaled = 0, e_loss, e_logit, e_state = 0;
        fx_err e;
        memset(&err, 0, sizeof err);
        cfg = mr_model_default_cfg(f.vocab);
        cfg.dim = f.dim; cfg.n_layers = f.n_layers; cfg.expansion = f.expansion; cfg.ffn_hidden = f.ffn;
        cfg.tie_embeddings = f.tie; cfg.norm_eps = f.eps; cfg.scan_algo = algos[ai];
        cfg.scan_chunk = algos[ai] == MR_SCAN_CHUNKED ? 4 : 0;   /* T = 9: a ragged last chunk */
        for (l = 0; l < f.n_layers; l++) cfg.mixer[l] = f.mixer[l];
        cp.n_threads = 2;
        cp.seed = 1;
        MR_CHECK_MSG(mr_model_new(&m, &cfg, NULL, &err) == MR_OK, "%s: mr_model_new: %s", file, err.msg);
        MR_CHECK(mr_ctx_init(&ctx, &cp) == MR_OK);
        if (!m || !ctx) { mr_model_free(m); mr_ctx_free(ctx); break; }
        MR_CHECK_MSG(m->ps->n == f.n_params, "%s: model has %d parameters, fixture %d", file, m->ps->n, f.n_params);
        for (i = 0; i < f.n_params; i++) {
            mr_tensor *t = mr_params_find(m->ps, f.name[i]);
            int ok = t && t->ndim == f.ndim[i] && t->shape[0] == f.shape[i][0] && (t->ndim == 1 || t->shape[1] == f.shape[i][1]);
            MR_CHECK_MSG(ok, "%s: parameter %s missing or of another shape", file, f.name[i]);
            if (ok) mr_tensor_copy_from(t, f.data[i]);
            if (i < m->ps->n) MR_CHECK_MSG(!strcmp(m->ps->t[i]->name, f.name[i]), "%s: parameter %d is %s, fixture %s",
                                           file, i, m->ps->t[i]->name, f.name[i]);
        }
        /* the state: initial h0 when the fixture has one; it receives the final state either way */
        MR_CHECK_MSG(mr_state_new(&st, m, f.B, &err) == MR_OK, "mr_state_new: %s", err.msg);
        if (!st) { mr_model_free(m); mr_ctx_free(ctx); break; }
        if (f.has_h0) {
            for (l = 0; l < f.n_layers; l++) {
                mr_state_block *hb = mr_state_find(st, l, MR_STATE_H);
                MR_CHECK_MSG(hb && hb->n == f.h0_n[l], "%s: layer %d state %lld floats, fixture %lld", file, l,
                             (long long)(hb ? hb->n : -1), (long long)f.h0_n[l]);
                if (hb && hb->n == f.h0_n[l]) memcpy(hb->data, f.h0[l], sizeof(float) * (size_t)f.h0_n[l]);
            }
            st->valid = 1;
        }
        mr_params_zero_grad(m->ps);
        logits = mr_model_forward(ctx, m, f.tokens, f.B, f.T, st, 1);
        loss = mr_cross_entropy(ctx, logits, f.targets, -1);
        MR_CHECK_MSG(loss && mr_ctx_status(ctx) == MR_OK, "%s: forward: %s", file, mr_ctx_error(ctx));
        if (loss) MR_CHECK(mr_backward(ctx, loss) == MR_OK);
        if (!loss || mr_ctx_status(ctx) != MR_OK) { mr_state_free(st); mr_model_free(m); mr_ctx_free(ctx); break; }

        e_loss = fabs((double)loss->data[0] - f.loss) / (fabs(f.loss) > 1 ? fabs(f.loss) : 1);
        MR_CHECK_MSG(e_loss <= FX_TOL, "%s [%s]: loss %.9g, reference %.9g", file, fx_algo_name(algos[ai]), loss->data[0], f.loss);
        tmp = (float *)malloc(sizeof(float) * (size_t)((int64_t)f.B * f.T * f.vocab));
        if (!tmp) { MR_CHECK(tmp != NULL); break; }
        mr_tensor_copy_to(logits, tmp);
        e = fx_cmp(tmp, f.logits, (int64_t)f.B * f.T * f.vocab);
        e_logit = e.rel;
        MR_CHECK_MSG(e.rel <= FX_TOL, "%s [%s]: logits[%lld] %.9g, reference %.9g", file, fx_algo_name(algos[ai]),
                     (long long)e.idx, e.got, e.ref);
        free(tmp);
        for (l = 0; l < f.n_layers; l++) {
            mr_state_block *hb = mr_state_find(st, l, MR_STATE_H);
            MR_CHECK_MSG(hb && hb->n == f.last_n[l], "%s: layer %d final state size", file, l);
            if (!hb || hb->n != f.last_n[l]) continue;
            e = fx_cmp(hb->data, f.last[l], f.last_n[l]);
            if (e.rel > e_state) e_state = e.rel;
            MR_CHECK_MSG(e.rel <= FX_TOL, "%s [%s]: layer %d final state[%lld] %.9g, reference %.9g", file,
                         fx_algo_name(algos[ai]), l, (long long)e.idx, e.got, e.ref);
        }
        for (i = 0; i < f.n_params; i++) {
            mr_tensor *t = mr_params_find(m->ps, f.name[i]);
            if (!t || mr_tensor_numel(t) != f.numel[i]) continue;
            e = fx_cmp(t->grad, f.grad[i], f.numel[i]);
            if (e.rel > max_rel) { max_rel = e.rel; worst = i; }
            if (e.scaled > max_scaled) max_scaled = e.scaled;
            MR_CHECK_MSG(e.rel <= FX_TOL, "%s [%s]: d %s[%lld] = %.9g, reference %.9g", file, fx_algo_name(algos[ai]),
                         f.name[i], (long long)e.idx, e.got, e.ref);
            MR_CHECK_MSG(e.scaled <= FX_TOL, "%s [%s]: d %s off by %.3g of its largest element", file,
                         fx_algo_name(algos[ai]), f.name[i], e.scaled);
        }
        if (getenv("MR_TEST_VERBOSE"))
            printf("  %s [%s]: loss %.7f (ref %.7f) err %.1e; max err: logits %.1e, state %.1e, grads %.1e (%s), "
                   "grads/max|ref| %.1e\n", file, fx_algo_name(algos[ai]), loss->data[0], f.loss, e_loss, e_logit, e_state,
                   max_rel, worst >= 0 ? f.name[worst] : "-", max_scaled);
        if (e_loss > all[0]) all[0] = e_loss;
        if (e_logit > all[1]) all[1] = e_logit;
        if (e_state > all[2]) all[2] = e_state;
        if (max_rel > all[3]) all[3] = max_rel;
        if (max_scaled > all[4]) all[4] = max_scaled;
        mr_state_free(st);
        mr_model_free(m);
        mr_ctx_free(ctx);
    }
    printf("  %s (%s, h0 %s, 4 scan algorithms): max err loss %.1e, logits %.1e, state %.1e, grads %.1e, "
           "grads/max|ref| %.1e (tol %.0e)\n", file, f.tie ? "tied" : "untied", f.has_h0 ? "yes" : "no",
           all[0], all[1], all[2], all[3], all[4], FX_TOL);
    fx_free(&f);
}

static void test_tied_no_h0(void) { run_fixture("torch_ref_tied.mrfx"); }
static void test_untied_h0(void) { run_fixture("torch_ref_untied_h0.mrfx"); }
static void test_expansion1_h0(void) { run_fixture("torch_ref_e1_h0.mrfx"); }

MR_TEST_MAIN({"tied_no_h0", test_tied_no_h0}, {"untied_h0", test_untied_h0}, {"expansion1_h0", test_expansion1_h0})
