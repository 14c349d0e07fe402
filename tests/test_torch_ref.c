/* The whole language model against a PyTorch reference (tools/torch_ref.py,
   float64): loss, logits, the state after the call and the gradient of every
   parameter, on fixed weights, for every scan algorithm. The models: MinGRU /
   MinLSTM stacks, GPT blocks (attention with learned positions, GELU or
   squared-ReLU MLPs, grouped-query heads, odd head dims, RoPE) and hybrids of
   MinGRU, MinLSTM, GRU and attention layers, one of them going on at position
   pos0 > 0 from a filled KV cache. The state compared is h[:, T-1] of a
   recurrent layer and the KV cache rows [0, pos0 + T) of an attention layer.
   A fixture without an initial state also runs once without any state (the
   attention kernel's own key/value buffers instead of the cache).
   The fixtures in tests/fixtures are committed, so this test needs no Python;
   it must run from the repository root, and a missing fixture is a failure.
   Tolerance: 1e-4 relative to max(1, |ref|) per element; the printed "scaled"
   error divides by the largest |ref| of the tensor instead. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

#ifndef FX_DIR
#define FX_DIR "tests/fixtures/"
#endif
#define FX_TOL 1e-4
#define FX_VERSION 4

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
    int vocab, dim, n_layers, ffn, tie, B, T, has_state, n_params;
    float expansion, eps, rope_theta;
    int n_heads, n_kv_heads, pos_emb, max_context, pos0, gru_hidden_norm, rwkv_head, mix_rank, decay_rank;
    uint8_t mixer[MR_MAX_LAYERS], ffn_kind[MR_MAX_LAYERS], mixer_b[MR_MAX_LAYERS];
    int moe_experts, moe_top_k, moe_renorm;
    float moe_balance, moe_zloss;
    int32_t *tokens, *targets;
    float *st0[MR_MAX_LAYERS];          /* the state before the call: h0, or cached keys then values */
    int64_t st0_n[MR_MAX_LAYERS], last_n[MR_MAX_LAYERS];
    char name[FX_MAX_P][64];
    int ndim[FX_MAX_P];
    int64_t shape[FX_MAX_P][3], numel[FX_MAX_P];
    float *data[FX_MAX_P];
    double loss, *logits, *last[MR_MAX_LAYERS], *grad[FX_MAX_P];
    uint8_t *buf;
} fx;

static void fx_free(fx *f) {
    int i;
    free(f->buf);
    free(f->tokens); free(f->targets); free(f->logits);
    for (i = 0; i < MR_MAX_LAYERS; i++) { free(f->st0[i]); free(f->last[i]); }
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
    if ((i = (int)fx_u32(&c)) != FX_VERSION) {
        MR_CHECK_MSG(0, "%s: fixture version %d, expected %d", path, i, FX_VERSION);
        return 0;
    }
    f->vocab = (int)fx_u32(&c); f->dim = (int)fx_u32(&c); f->n_layers = (int)fx_u32(&c);
    f->ffn = (int)fx_u32(&c); f->tie = (int)fx_u32(&c); f->B = (int)fx_u32(&c); f->T = (int)fx_u32(&c);
    f->has_state = (int)fx_u32(&c);
    f->expansion = fx_f32(&c); f->eps = fx_f32(&c);
    if (c.bad || f->vocab < 2 || f->vocab > 4096 || f->dim < 1 || f->dim > 4096 || f->n_layers < 1 ||
        f->n_layers > MR_MAX_LAYERS || f->B < 1 || f->B > 64 || f->T < 1 || f->T > 4096) {
        MR_CHECK_MSG(0, "%s: bad header", path); return 0;
    }
    m = fx_take(&c, (size_t)f->n_layers);
    if (m) memcpy(f->mixer, m, (size_t)f->n_layers);
    m = fx_take(&c, (size_t)f->n_layers);
    if (m) memcpy(f->ffn_kind, m, (size_t)f->n_layers);
    f->n_heads = (int)fx_u32(&c); f->n_kv_heads = (int)fx_u32(&c); f->rope_theta = fx_f32(&c);
    f->pos_emb = (int)fx_u32(&c); f->max_context = (int)fx_u32(&c); f->pos0 = (int)fx_u32(&c);
    f->gru_hidden_norm = (int)fx_u32(&c);
    f->rwkv_head = (int)fx_u32(&c); f->mix_rank = (int)fx_u32(&c); f->decay_rank = (int)fx_u32(&c);
    m = fx_take(&c, (size_t)f->n_layers);
    if (m) memcpy(f->mixer_b, m, (size_t)f->n_layers);
    f->moe_experts = (int)fx_u32(&c); f->moe_top_k = (int)fx_u32(&c); f->moe_renorm = (int)fx_u32(&c);
    f->moe_balance = fx_f32(&c); f->moe_zloss = fx_f32(&c);
    for (l = 0; l < f->n_layers; l++)
        if (f->mixer[l] >= MR_MIXER_COUNT || f->ffn_kind[l] >= MR_FFN_COUNT || f->mixer_b[l] > MR_MIXER_COUNT) c.bad = 1;
    if (c.bad || f->n_heads < 1 || f->n_heads > f->dim || f->dim % f->n_heads || f->n_kv_heads < 1 ||
        f->n_heads % f->n_kv_heads || f->max_context < 1 || f->max_context > 65536 || f->pos0 < 0 ||
        f->pos0 > 65536 || (f->pos0 > 0 && !f->has_state)) {
        MR_CHECK_MSG(0, "%s: bad header", path); return 0;
    }
    n = (int64_t)f->B * f->T;
    f->tokens = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
    f->targets = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
    if (!f->tokens || !f->targets) { MR_CHECK_MSG(0, "out of memory"); return 0; }
    for (j = 0; j < n; j++) f->tokens[j] = (int32_t)fx_u32(&c);
    for (j = 0; j < n; j++) f->targets[j] = (int32_t)fx_u32(&c);
    if (f->has_state) for (l = 0; l < f->n_layers; l++) {
        f->st0_n[l] = fx_u32(&c);
        if (f->st0_n[l] > (int64_t)f->B * (1 << 22)) c.bad = 1;
        if (c.bad) break;
        f->st0[l] = fx_f32s(&c, f->st0_n[l]);
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
        if (f->ndim[i] < 1 || f->ndim[i] > 3) { c.bad = 1; break; }
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
        if (f->last_n[l] > (int64_t)f->B * (1 << 22)) { c.bad = 1; break; }
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

/* Copies rows [0, P) of every (batch, head) between a KV cache block
   [B, KV, cap, hd] and packed rows [B, KV, P, hd]. */
/* rows [BKV][P][hd] <-> a cache block: values [BKV][cap][hd], or keys
   transposed [BKV][hd][cap] (transposed != 0) */
static void fx_kv_rows(float *block, float *rows, int64_t BKV, int64_t cap, int64_t P, int64_t hd, int to_block, int transposed) {
    int64_t u, j, d;
    for (u = 0; u < BKV; u++) {
        float *b = block + u * cap * hd, *r = rows + u * P * hd;
        for (j = 0; j < P; j++)
            for (d = 0; d < hd; d++) {
                float *x = transposed ? &b[d * cap + j] : &b[j * hd + d];
                if (to_block) *x = r[j * hd + d]; else r[j * hd + d] = *x;
            }
    }
}

/* The fixture's configuration through the configuration API: the layer spec
   by name ("mingru,attn,gru,minlstm"), the FFN by name when every layer has
   the same one (else per layer), the attention and position settings. */
static int fx_config(const fx *f, mr_model_cfg *cfg, char *spec, size_t cap, const char *file) {
    mr_error err;
    int l, same = 1;
    size_t n = 0;
    memset(&err, 0, sizeof err);
    *cfg = mr_model_defaults(f->vocab);
    cfg->dim = f->dim; cfg->n_layers = f->n_layers; cfg->expansion = f->expansion; cfg->ffn_hidden = f->ffn;
    cfg->tie_embeddings = f->tie; cfg->norm_eps = f->eps;
    spec[0] = 0;
    for (l = 0; l < f->n_layers; l++) {
        const char *nm = mr_mixer_name(f->mixer[l]), *nb = f->mixer_b[l] ? mr_mixer_name(f->mixer_b[l] - 1) : NULL;
        n += (size_t)snprintf(spec + (n < cap ? n : cap - 1), n < cap ? cap - n : 1, "%s%s%s%s", l ? "," : "", nm ? nm : "?",
                              f->mixer_b[l] ? "+" : "", f->mixer_b[l] ? (nb ? nb : "?") : "");
    }
    MR_CHECK_MSG(mr_model_cfg_set_layers(cfg, spec, &err) == MR_OK, "%s: layers '%s': %s", file, spec, err.msg);
    MR_CHECK_MSG(cfg->n_layers == f->n_layers, "%s: '%s' gives %d layers, fixture %d", file, spec, cfg->n_layers, f->n_layers);
    for (l = 0; l < f->n_layers; l++) {
        MR_CHECK_MSG(cfg->mixer[l] == f->mixer[l] && cfg->mixer_b[l] == f->mixer_b[l], "%s: layer %d mixers %d+%d, fixture %d+%d", file, l,
                     cfg->mixer[l], cfg->mixer_b[l], f->mixer[l], f->mixer_b[l]);
        if (f->ffn_kind[l] != f->ffn_kind[0]) same = 0;
    }
    if (same) MR_CHECK_MSG(mr_model_cfg_set_ffn(cfg, mr_ffn_name(f->ffn_kind[0]), &err) == MR_OK, "%s: ffn: %s", file, err.msg);
    else for (l = 0; l < f->n_layers; l++) cfg->ffn[l] = f->ffn_kind[l];
    cfg->attn.n_heads = f->n_heads; cfg->attn.n_kv_heads = f->n_kv_heads; cfg->attn.rope_theta = f->rope_theta;
    cfg->pos_emb = f->pos_emb; cfg->max_context = f->max_context; cfg->gru_hidden_norm = f->gru_hidden_norm;
    cfg->rwkv.head_size = f->rwkv_head; cfg->rwkv.mix_rank = f->mix_rank; cfg->rwkv.decay_rank = f->decay_rank;
    cfg->moe.n_experts = f->moe_experts; cfg->moe.top_k = f->moe_top_k; cfg->moe.renorm = f->moe_renorm;
    cfg->moe.balance = f->moe_balance; cfg->moe.zloss = f->moe_zloss;
    return cfg->n_layers == f->n_layers;
}

/* A layer's state blocks, flat as the fixture holds them (one after another;
   a KV cache block as its rows [0, P)), copied into the state (to_block) or
   out of it; flat NULL: only counts. Returns the floats. */
static int64_t fx_layer_state(mr_state *st, int l, float *flat, int64_t P, int hd, int64_t bkv, int cap, int to_block) {
    int64_t off = 0;
    int i;
    for (i = st->first[l]; i < st->first[l + 1]; i++) {
        mr_state_block *b = &st->blocks[i];
        int64_t n = b->time_axis ? bkv * P * hd : b->n;
        if (flat) {
            if (b->time_axis) fx_kv_rows(b->data, flat + off, bkv, cap, P, hd, to_block, b->kind == MR_STATE_KEYS);
            else if (to_block) memcpy(b->data, flat + off, sizeof(float) * (size_t)n);
            else memcpy(flat + off, b->data, sizeof(float) * (size_t)n);
        }
        off += n;
    }
    return off;
}

typedef struct fx_res { double loss, logits, state, grads, scaled; int worst; } fx_res;

/* One forward + backward with the given scan algorithm; with_state: through
   an mr_state (initial state from the fixture when it has one; the state
   after the call is compared), else with no state at all. */
static int fx_run_once(const fx *f, const char *file, int algo, int with_state, fx_res *r) {
    mr_model_cfg cfg;
    mr_model *m = NULL;
    mr_state *st = NULL;
    mr_ctx *ctx = NULL;
    mr_ctx_params cp = mr_ctx_defaults();
    mr_error err;
    mr_tensor *logits = NULL, *loss = NULL;
    float *tmp = NULL;
    char spec[256];
    const char *an = with_state ? fx_algo_name(algo) : "no state";
    int i, l, ok = 0, hd = f->dim / f->n_heads;
    int64_t bkv = (int64_t)f->B * f->n_kv_heads;
    fx_err e;
    memset(&err, 0, sizeof err);
    memset(r, 0, sizeof *r);
    r->worst = -1;
    if (!fx_config(f, &cfg, spec, sizeof spec, file)) return 0;
    cfg.scan_algo = algo;
    cfg.scan_chunk = algo == MR_SCAN_CHUNKED ? 4 : 0;   /* T = 5, 6, 9, 19: a ragged last chunk */
    cp.n_threads = 2;
    cp.seed = 1;
    MR_CHECK_MSG(mr_model_new(&m, &cfg, NULL, &err) == MR_OK, "%s: mr_model_new: %s", file, err.msg);
    MR_CHECK(mr_ctx_new(&ctx, &cp) == MR_OK);
    if (!m || !ctx) goto done;
    MR_CHECK_MSG(m->ps->n == f->n_params, "%s: model has %d parameters, fixture %d", file, m->ps->n, f->n_params);
    for (i = 0; i < f->n_params; i++) {
        mr_tensor *t = mr_params_find(m->ps, f->name[i]);
        int same = t && t->ndim == f->ndim[i], d;
        for (d = 0; same && d < t->ndim; d++) same = t->shape[d] == f->shape[i][d];
        MR_CHECK_MSG(same, "%s: parameter %s missing or of another shape", file, f->name[i]);
        if (same) mr_tensor_copy_from(t, f->data[i]);
        if (i < m->ps->n) MR_CHECK_MSG(!strcmp(m->ps->t[i]->name, f->name[i]), "%s: parameter %d is %s, fixture %s",
                                       file, i, m->ps->t[i]->name, f->name[i]);
    }
    if (with_state) {
        MR_CHECK_MSG(mr_state_new(&st, m, f->B, &err) == MR_OK, "mr_state_new: %s", err.msg);
        if (!st) goto done;
    }
    if (st && f->has_state) {   /* the stream so far: h0, KV cache rows [0, pos0), shift and wkv states, position pos0 */
        for (l = 0; l < f->n_layers; l++) {
            int64_t n = fx_layer_state(st, l, NULL, f->pos0, hd, bkv, f->max_context, 1);
            MR_CHECK_MSG(n == f->st0_n[l], "%s: layer %d state %lld floats, fixture %lld", file, l, (long long)n, (long long)f->st0_n[l]);
            if (n != f->st0_n[l]) goto done;
            fx_layer_state(st, l, f->st0[l], f->pos0, hd, bkv, f->max_context, 1);
        }
        st->valid = 1;
        st->pos = f->pos0;
    }
    mr_params_zero_grad(m->ps);
    logits = mr_model_forward(ctx, m, f->tokens, f->B, f->T, st, 1);
    loss = mr_cross_entropy(ctx, logits, f->targets, -1);
    if (loss && mr_model_aux_loss(m)) loss = mr_add(ctx, loss, mr_model_aux_loss(m));   /* the MoE router losses, as the reference's */
    MR_CHECK_MSG(loss && mr_ctx_status(ctx) == MR_OK, "%s [%s]: forward: %s", file, an, mr_ctx_error(ctx));
    if (loss) MR_CHECK(mr_backward(ctx, loss) == MR_OK);
    if (!loss || mr_ctx_status(ctx) != MR_OK) goto done;
    MR_CHECK_MSG(!st || st->pos == f->pos0 + f->T, "%s: state position %lld after the call, expected %d", file,
                 (long long)(st ? st->pos : 0), f->pos0 + f->T);

    r->loss = fabs((double)loss->data[0] - f->loss) / (fabs(f->loss) > 1 ? fabs(f->loss) : 1);
    MR_CHECK_MSG(r->loss <= FX_TOL, "%s [%s]: loss %.9g, reference %.9g", file, an, loss->data[0], f->loss);
    tmp = (float *)malloc(sizeof(float) * (size_t)((int64_t)f->B * f->T * f->vocab));
    if (!tmp) { MR_CHECK(tmp != NULL); goto done; }
    mr_tensor_copy_to(logits, tmp);
    e = fx_cmp(tmp, f->logits, (int64_t)f->B * f->T * f->vocab);
    r->logits = e.rel;
    MR_CHECK_MSG(e.rel <= FX_TOL, "%s [%s]: logits[%lld] %.9g, reference %.9g", file, an, (long long)e.idx, e.got, e.ref);
    free(tmp);
    tmp = NULL;
    for (l = 0; st && l < f->n_layers; l++) {
        int64_t n = fx_layer_state(st, l, NULL, (int64_t)f->pos0 + f->T, hd, bkv, f->max_context, 0);
        const float *got;
        MR_CHECK_MSG(n == f->last_n[l], "%s: layer %d final state %lld floats, fixture %lld", file, l, (long long)n, (long long)f->last_n[l]);
        if (n != f->last_n[l]) continue;
        tmp = (float *)malloc(sizeof(float) * (size_t)(n ? n : 1));
        if (!tmp) { MR_CHECK(tmp != NULL); goto done; }
        fx_layer_state(st, l, tmp, (int64_t)f->pos0 + f->T, hd, bkv, f->max_context, 0);
        got = tmp;
        e = fx_cmp(got, f->last[l], f->last_n[l]);
        if (e.rel > r->state) r->state = e.rel;
        MR_CHECK_MSG(e.rel <= FX_TOL, "%s [%s]: layer %d (%s) final state[%lld] %.9g, reference %.9g", file, an, l,
                     mr_mixer_name(f->mixer[l]), (long long)e.idx, e.got, e.ref);
        free(tmp);
        tmp = NULL;
    }
    for (i = 0; i < f->n_params; i++) {
        mr_tensor *t = mr_params_find(m->ps, f->name[i]);
        if (!t || mr_tensor_numel(t) != f->numel[i]) continue;
        e = fx_cmp(t->grad, f->grad[i], f->numel[i]);
        if (e.rel > r->grads) { r->grads = e.rel; r->worst = i; }
        if (e.scaled > r->scaled) r->scaled = e.scaled;
        MR_CHECK_MSG(e.rel <= FX_TOL, "%s [%s]: d %s[%lld] = %.9g, reference %.9g", file, an, f->name[i],
                     (long long)e.idx, e.got, e.ref);
        MR_CHECK_MSG(e.scaled <= FX_TOL, "%s [%s]: d %s off by %.3g of its largest element", file, an, f->name[i], e.scaled);
    }
    if (getenv("MR_TEST_VERBOSE"))
        printf("  %s [%s]: loss %.7f (ref %.7f) err %.1e; max err: logits %.1e, state %.1e, grads %.1e (%s), "
               "grads/max|ref| %.1e\n", file, an, loss->data[0], f->loss, r->loss, r->logits, r->state,
               r->grads, r->worst >= 0 ? f->name[r->worst] : "-", r->scaled);
    ok = 1;
done:
    free(tmp);
    mr_state_free(st);
    mr_model_free(m);
    mr_ctx_free(ctx);
    return ok;
}

static void run_fixture(const char *file) {
    static const int algos[] = {MR_SCAN_AUTO, MR_SCAN_SEQUENTIAL, MR_SCAN_CHUNKED, MR_SCAN_LOG};
    fx f;
    int ai, l, n_algo = (int)(sizeof algos / sizeof algos[0]);
    double all[5] = {0, 0, 0, 0, 0};
    char layers[256], ffns[256];
    size_t nl = 0, nf = 0;
    if (!fx_load(&f, file)) { fx_free(&f); return; }
    /* every scan algorithm through a state; once without a state when the fixture starts fresh */
    for (ai = 0; ai < n_algo + !f.has_state; ai++) {
        fx_res r;
        int with_state = ai < n_algo;
        if (!fx_run_once(&f, file, with_state ? algos[ai] : MR_SCAN_AUTO, with_state, &r)) break;
        if (r.loss > all[0]) all[0] = r.loss;
        if (r.logits > all[1]) all[1] = r.logits;
        if (r.state > all[2]) all[2] = r.state;
        if (r.grads > all[3]) all[3] = r.grads;
        if (r.scaled > all[4]) all[4] = r.scaled;
    }
    layers[0] = ffns[0] = 0;
    for (l = 0; l < f.n_layers; l++) {
        const char *mn = mr_mixer_name(f.mixer[l]), *fn = mr_ffn_name(f.ffn > 0 ? f.ffn_kind[l] : MR_FFN_NONE);
        const char *mb = f.mixer_b[l] ? mr_mixer_name(f.mixer_b[l] - 1) : NULL;
        nl += (size_t)snprintf(layers + (nl < sizeof layers ? nl : sizeof layers - 1), nl < sizeof layers ? sizeof layers - nl : 1,
                               "%s%s%s%s", l ? "," : "", mn ? mn : "?", mb ? "+" : "", mb ? mb : "");
        nf += (size_t)snprintf(ffns + (nf < sizeof ffns ? nf : sizeof ffns - 1), nf < sizeof ffns ? sizeof ffns - nf : 1,
                               "%s%s", l ? "," : "", fn ? fn : "?");
    }
    printf("  %s (%s; ffn %s; %s; state %s, pos0 %d; %d scan algorithms%s): max err loss %.1e, logits %.1e, "
           "state %.1e, grads %.1e, grads/max|ref| %.1e (tol %.0e)\n", file, layers, ffns, f.tie ? "tied" : "untied",
           f.has_state ? "yes" : "no", f.pos0, n_algo, f.has_state ? "" : " + no state", all[0], all[1], all[2], all[3],
           all[4], FX_TOL);
    fx_free(&f);
}

static void test_tied_no_h0(void) { run_fixture("torch_ref_tied.mrfx"); }
static void test_untied_h0(void) { run_fixture("torch_ref_untied_h0.mrfx"); }
static void test_expansion1_h0(void) { run_fixture("torch_ref_e1_h0.mrfx"); }
/* GPT blocks: attn*2, learned positions, no RoPE, GELU, untied, 2 heads of 4, T = 19 */
static void test_gpt_gelu(void) { run_fixture("torch_ref_gpt_gelu.mrfx"); }
/* attn*2, 4 query heads on 2 KV heads of 3 (odd), RoPE + learned positions, relu2, tied, T = 5 */
static void test_gpt_relu2_gqa(void) { run_fixture("torch_ref_gpt_relu2_gqa.mrfx"); }
/* mingru,attn,gru,minlstm, SwiGLU, RoPE only, h0, expansion 1.5, 2 heads on 1 KV head, T = 9 */
static void test_hybrid_h0(void) { run_fixture("torch_ref_hybrid_h0.mrfx"); }
/* mingru,mingru,attn,gru (hidden norm), FFNs swiglu,none,relu2,gelu, at position 5 from a filled
   KV cache and h0, 2 heads on 1 KV head of 5, RoPE base 100 + learned positions, T = 6 */
static void test_hybrid_pos0(void) { run_fixture("torch_ref_hybrid_pos0.mrfx"); }
/* rwkv6*2 with rwkv-cmix, 3 wkv heads of 4, LoRA ranks 3 and 5, untied, T = 19 (over a wkv chunk) */
static void test_rwkv6_cmix(void) { run_fixture("torch_ref_rwkv6_cmix.mrfx"); }
/* gru (hidden norm), rwkv6, mingru with FFNs rwkv-cmix, swiglu, rwkv-cmix, from a carried state
   (h0, shift and wkv states), 2 wkv heads of 4, T = 9 */
static void test_rwkv_mixed_h0(void) { run_fixture("torch_ref_rwkv_mixed_h0.mrfx"); }
/* mingru, minlstm with the MoE FFN: 5 experts, top-2 by router probabilities, balance 0.3 and
   z-loss 0.05 in the loss, untied, T = 9 */
static void test_moe_top2(void) { run_fixture("torch_ref_moe_top2.mrfx"); }
/* GRU + RWKV + MoE: gru+rwkv6 twice (hidden norm), MoE of 4 experts top-1, from a carried state */
static void test_grwkv_moe_h0(void) { run_fixture("torch_ref_grwkv_moe_h0.mrfx"); }
/* mingru+attn (two mixers) with a renormalised top-2 MoE of 5 experts, then rwkv6 with SwiGLU */
static void test_two_mixers_moe(void) { run_fixture("torch_ref_two_mixers_moe.mrfx"); }

MR_TEST_MAIN({"tied_no_h0", test_tied_no_h0}, {"untied_h0", test_untied_h0}, {"expansion1_h0", test_expansion1_h0},
             {"gpt_gelu", test_gpt_gelu}, {"gpt_relu2_gqa", test_gpt_relu2_gqa}, {"hybrid_h0", test_hybrid_h0},
             {"hybrid_pos0", test_hybrid_pos0}, {"rwkv6_cmix", test_rwkv6_cmix}, {"rwkv_mixed_h0", test_rwkv_mixed_h0},
             {"moe_top2", test_moe_top2}, {"grwkv_moe_h0", test_grwkv_moe_h0}, {"two_mixers_moe", test_two_mixers_moe})
