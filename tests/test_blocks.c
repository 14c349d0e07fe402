/* Every block kind through the block tables: one row per configuration in
   `rows` gets a whole-model gradient check (fresh and with a carried state),
   parallel vs step equality, chunked vs one pass; plus the attention and
   RoPE ops on their own (GQA, odd head_dim, T = 1, long T, with a cache),
   the KV cache against full recomputation over 300 greedy tokens, sessions
   of attention stacks, and the configuration errors. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"
#include "model_common.h"

static mr_ctx *ctx;
static mr_rng rng;
static int row_context = 64;   /* max_context of the row models */

/* ---- the per-block test table ---- */
typedef struct brow { const char *name, *layers, *ffn; int conv, pos_emb, heads, kv_heads; float theta; } brow;
static const brow rows[] = {
    {"mingru", "mingru*2", "swiglu", 0, 0, 2, 2, 1e4f},
    {"minlstm", "minlstm*2", "relu2", 3, 0, 2, 2, 1e4f},
    {"gru", "gru*2", "gelu", 0, 0, 2, 2, 1e4f},
    {"attn", "attn*2", "swiglu", 0, 0, 2, 2, 1e4f},
    {"attn-gqa", "attn*2", "gelu", 0, 0, 4, 2, 1e4f},
    {"gpt", "attn*2", "relu2", 0, 1, 3, 1, 0.f},            /* learned positions, no RoPE, head_dim 4 */
    {"attn-odd", "attn", "none", 0, 0, 4, 4, 1e4f},          /* head_dim 3 */
    {"rwkv6", "rwkv6*2", "rwkv-cmix", 0, 0, 2, 2, 1e4f},    /* 3 wkv heads of 4 */
    {"rwkv6-conv", "rwkv6,mingru", "swiglu", 2, 0, 2, 2, 1e4f},
    {"rwkv-mixed", "gru,rwkv6", "rwkv-cmix", 3, 0, 2, 2, 1e4f},
    {"hybrid", "mingru,attn,gru,minlstm", "swiglu", 2, 0, 2, 1, 500.f},
    {"rwkv+gru", "gru+rwkv6*2", "rwkv-cmix", 0, 0, 2, 2, 1e4f},       /* two mixers per block */
    {"rwkv-two", "mingru+attn,rwkv6+minlstm", "swiglu", 2, 0, 2, 1, 500.f},
    {"moe", "mingru,gru", "moe", 0, 0, 2, 2, 1e4f},                    /* 4 experts, top-1 */
    {"moe-k2", "attn,minlstm", "moe", 2, 0, 2, 2, 1e4f},               /* 5 experts, top-2, renormalised */
    {"rwkv-moe", "gru+rwkv6*2", "moe", 0, 0, 2, 2, 1e4f},              /* the Rust project's GRU + RWKV + MoE */
};
/* a conv of one tap (no tail state), only in the step tests (a row above would change the
   random models of every later test) */
static const brow row_conv1 = {"conv1", "minlstm,gru", "gelu", 1, 0, 2, 2, 1e4f};
#define NROWS ((int)(sizeof rows / sizeof rows[0]))

static const brow *find_row(const char *name) {
    int r;
    for (r = 0; r < NROWS - 1 && strcmp(rows[r].name, name); r++) {}
    return &rows[r];
}
static mr_model *row_model(const brow *r, int V) {
    mr_model_cfg cfg = mr_model_defaults(V);
    mr_model *m = NULL;
    mr_error e;
    cfg.dim = 12; cfg.n_layers = 2; cfg.ffn_hidden = 16; cfg.conv_kernel = r->conv; cfg.pos_emb = r->pos_emb;
    cfg.attn.n_heads = r->heads; cfg.attn.n_kv_heads = r->kv_heads; cfg.attn.rope_theta = r->theta;
    cfg.max_context = row_context; cfg.tie_embeddings = r->pos_emb ? 0 : 1;
    cfg.rwkv.head_size = 4; cfg.rwkv.mix_rank = 3; cfg.rwkv.decay_rank = 5;
    if (!strcmp(r->name, "attn-odd")) cfg.dim = 12;
    if (strstr(r->name, "moe")) {
        cfg.ffn_hidden = 6;
        cfg.gru_hidden_norm = 1;
        if (strstr(r->name, "k2")) { cfg.moe.n_experts = 5; cfg.moe.top_k = 2; cfg.moe.renorm = 1; }
    }
    if (mr_model_cfg_set_layers(&cfg, r->layers, &e) != MR_OK || mr_model_cfg_set_ffn(&cfg, r->ffn, &e) != MR_OK ||
        mr_model_new(&m, &cfg, NULL, &e) != MR_OK) {
        MR_CHECK_MSG(0, "%s: %s", r->name, e.msg);
        return NULL;
    }
    mr_model_init_weights(m, &rng);
    if (!strncmp(r->name, "rwkv", 4)) {   /* RWKV's init zeroes the output projections and LoRA A: move off them */
        int i;
        int64_t k;
        for (i = 0; i < m->ps->n; i++)
            for (k = 0; k < mr_tensor_numel(m->ps->t[i]); k++) m->ps->t[i]->data[k] += 0.3f * (2.f * mr_rng_uniform(&rng) - 1.f);
    }
    return m;
}

/* max |a - b| over two states' blocks (KV caches: the rows below a's pos, the filled ones) */
static double state_maxdiff(const mr_state *s1, const mr_state *s2) {
    double maxs = 0;
    int i;
    for (i = 0; i < s1->n_blocks; i++) {
        const mr_state_block *a = &s1->blocks[i], *c = &s2->blocks[i];
        int64_t k, inner = 1;
        int d;
        for (d = a->time_axis + 1; a->time_axis && d < a->ndim; d++) inner *= a->shape[d];
        for (k = 0; k < a->n; k++) {
            if (a->time_axis && (k / inner) % a->shape[a->time_axis] >= s1->pos) continue;
            if (fabs(a->data[k] - c->data[k]) > maxs) maxs = fabs(a->data[k] - c->data[k]);
        }
    }
    return maxs;
}
static void test_parallel_vs_step(void) {
    enum { B = 2, T = 11, V = 13 };
    int r, warm;
    for (r = 0; r < NROWS; r++) for (warm = 0; warm < 2; warm++) {
        mr_model *m = row_model(&rows[r], V);
        mr_state *s1, *s2;
        int32_t tok[B * T], pre[B * 5];
        float lg_par[B * T * V], lg_step[B * V];
        int i;
        double maxd = 0, maxs = 0;
        if (!m) continue;
        for (i = 0; i < B * T; i++) tok[i] = (int32_t)mr_rng_below(&rng, V);
        for (i = 0; i < B * 5; i++) pre[i] = (int32_t)mr_rng_below(&rng, V);
        mr_state_new(&s1, m, B, NULL); mr_state_new(&s2, m, B, NULL);
        mr_ctx_reset(ctx);
        mr_ctx_set_no_grad(ctx, 1);
        if (warm) {
            mr_model_forward(ctx, m, pre, B, 5, s1, 0);
            mr_model_forward(ctx, m, pre, B, 5, s2, 0);
            mr_ctx_reset(ctx);
        }
        maxd = mt_parallel_vs_step(ctx, m, tok, B, T, s1, s2, lg_par, lg_step);
        mr_ctx_set_no_grad(ctx, 0);
        /* 2e-5: rounding only, but the rows whose weights were all perturbed by 0.3 amplify it (rwkv+gru
           moves between 1e-6 and 1.2e-5 with the compiler's inlining alone) */
        MR_CHECK_MSG(maxd < 2e-5, "%s warm=%d: max |parallel - step| = %g", rows[r].name, warm, maxd);
        MR_CHECK(s1->pos == s2->pos && s1->pos == (warm ? 5 : 0) + T);
        maxs = state_maxdiff(s1, s2);   /* the final states agree */
        MR_CHECK_MSG(maxs < 1e-5, "%s warm=%d: states differ by %g", rows[r].name, warm, maxs);
        mr_state_free(s1); mr_state_free(s2);
        mr_model_free(m);
    }
}

static void test_chunked_vs_long(void) {
    enum { B = 2, T = 21, V = 11, CH = 7 };
    int r;
    for (r = 0; r < NROWS; r++) {
        mr_model *m = row_model(&rows[r], V);
        mr_state *st;
        int32_t tok[B * T], chunk[B * CH];
        float lg_long[B * T * V];
        mr_tensor *lg;
        int i, k, b, t;
        double maxd = 0;
        if (!m) continue;
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
        MR_CHECK_MSG(maxd < 1e-5, "%s: max |chunked - long| = %g", rows[r].name, maxd);
        mr_state_free(st);
        mr_model_free(m);
    }
}

/* the state lives as long as the tape: an attention backward reads its cache */
typedef struct mspec { mr_model *m; int32_t tok[2 * 6], pre[2 * 4]; int B, T; mr_state *warm, *st; } mspec;
static mr_tensor *fn_model(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    mspec *s = (mspec *)ud;
    mr_state *st = NULL;
    mr_tensor *lg;
    (void)in; (void)n;
    if (s->warm) {   /* a constant carried state (from a 4-token prefix with the unperturbed weights) */
        st = s->st;
        memcpy(st->buf, s->warm->buf, sizeof(float) * mr_state_floats(st));
        st->pos = s->warm->pos; st->valid = 1;
    }
    lg = mr_model_forward(c, s->m, s->tok, s->B, s->T, st, 0);
    return lg;
}
static void test_model_gradcheck(void) {
    int r, warm;
    for (r = 0; r < NROWS; r++) for (warm = 0; warm < 2; warm++) {
        mspec s;
        mr_gradcheck_result res;
        memset(&res, 0, sizeof res);
        mr_status st;
        int i;
        memset(&s, 0, sizeof s);
        if (!(s.m = row_model(&rows[r], 7))) continue;
        s.B = 2; s.T = 6;
        for (i = 0; i < 12; i++) s.tok[i] = (int32_t)mr_rng_below(&rng, 7);
        for (i = 0; i < 8; i++) s.pre[i] = (int32_t)mr_rng_below(&rng, 7);
        if (warm) {
            int prev = mr_ctx_set_no_grad(ctx, 1);
            mr_state_new(&s.warm, s.m, s.B, NULL);
            mr_state_new(&s.st, s.m, s.B, NULL);
            mr_model_forward(ctx, s.m, s.pre, s.B, 4, s.warm, 0);
            mr_ctx_reset(ctx);
            mr_ctx_set_no_grad(ctx, prev);
        }
        st = mr_gradcheck(ctx, fn_model, s.m->ps->t, s.m->ps->n, &s, 1e-3f, 2e-3, 1e-2, 6, 99, &res);
        MR_CHECK_MSG(st == MR_OK, "%s: %s", rows[r].name, mr_ctx_error(ctx));
        MR_CHECK_MSG(res.checked > 0 && res.failed == 0 && res.kinks * 20 <= res.checked,
                     "%s warm=%d: %lld of %lld off (%lld kinks); worst input %d (%s) idx %lld analytic %.6g numeric %.6g", rows[r].name,
                     warm, (long long)res.failed, (long long)res.checked, (long long)res.kinks, res.worst_input,
                     s.m->ps->t[res.worst_input]->name, (long long)res.worst_index, res.worst_analytic, res.worst_numeric);
        mr_ctx_clear_error(ctx);
        mr_state_free(s.warm);
        mr_state_free(s.st);
        mr_model_free(s.m);
    }
}

/* ---- attention and RoPE ops ---- */
typedef struct aspec { int B, T, H, KV, hd; float theta; int64_t pos0; float *kc, *vc; int64_t clen; int rope_only; } aspec;
static mr_tensor *fn_attn(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    aspec *s = (aspec *)ud;
    int64_t sh[3];
    (void)n;
    sh[0] = s->B; sh[1] = s->T;
    if (s->rope_only) { sh[2] = (int64_t)s->H * s->hd; return mr_rope(c, mr_view_reshape(c, in[0], 3, sh), s->H, s->theta, s->pos0); }
    sh[2] = (int64_t)(s->H + 2 * s->KV) * s->hd;
    if (s->kc) {   /* the cache rows [0, pos0) are constant: restore what earlier calls of the checker overwrote */
        int64_t b, j;
        for (b = 0; b < s->B; b++) for (j = 0; j < s->clen; j++) {
            size_t o = (size_t)((b * s->clen + j) * s->KV * s->hd);
            int k;
            for (k = 0; k < s->KV * s->hd; k++) { s->kc[o + k] = 0.3f * sinf((float)(o + k)); s->vc[o + k] = 0.5f * cosf((float)(o + k)); }
        }
    }
    return mr_attention(c, mr_view_reshape(c, in[0], 3, sh), s->H, s->KV, s->theta, s->pos0, s->kc, s->vc, s->clen);
}
static void test_attention_gradcheck(void) {
    static const aspec cases[] = {
        {2, 5, 2, 2, 4, 1e4f, 0, 0, 0, 0, 0}, {2, 5, 2, 2, 4, 0.f, 0, 0, 0, 0, 0},   /* MHA with and without RoPE */
        {1, 6, 4, 2, 3, 1e4f, 0, 0, 0, 0, 0},                                        /* GQA, odd head_dim */
        {2, 1, 2, 1, 4, 1e4f, 0, 0, 0, 0, 0},                                        /* T = 1 */
        {1, 70, 2, 1, 2, 100.f, 0, 0, 0, 0, 0},                                      /* T longer than any row block */
        {2, 4, 2, 1, 4, 1e4f, 5, 0, 0, 16, 0},                                       /* with a cache, 5 rows filled */
        {2, 4, 2, 2, 5, 1e4f, 7, 0, 0, 0, 1}, {1, 1, 3, 3, 6, 10.f, 0, 0, 0, 0, 1},  /* RoPE alone, odd hd, T = 1 */
    };
    int c;
    for (c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) {
        aspec s = cases[c];
        mr_params *ps = NULL;
    MR_CHECK(mr_params_new(&ps, NULL, NULL) == MR_OK);
        mr_tensor *x;
        int64_t sh[2];
        float *kc = NULL, *vc = NULL;
        mr_gradcheck_result res;
        memset(&res, 0, sizeof res);
        mr_status st;
        sh[0] = (int64_t)s.B * s.T; sh[1] = (int64_t)(s.rope_only ? s.H : s.H + 2 * s.KV) * s.hd;
        x = mr_params_add(ps, "qkv", 2, sh, 0);
        mr_params_alloc(ps, NULL);
        mr_params_init_uniform(ps, x, -1.5f, 1.5f, &rng);
        if (s.clen) {
            kc = (float *)malloc(sizeof(float) * (size_t)(s.B * s.clen * s.KV * s.hd));
            vc = (float *)malloc(sizeof(float) * (size_t)(s.B * s.clen * s.KV * s.hd));
            s.kc = kc; s.vc = vc;
        }
        st = mr_gradcheck(ctx, fn_attn, &x, 1, &s, 1e-2f, 2e-3, 1e-2, 0, 7, &res);
        MR_CHECK_MSG(st == MR_OK && res.checked > 0 && res.failed == 0, "case %d: %s; %lld of %lld off, idx %lld analytic %.6g numeric %.6g",
                     c, mr_ctx_error(ctx), (long long)res.failed, (long long)res.checked, (long long)res.worst_index, res.worst_analytic,
                     res.worst_numeric);
        mr_ctx_clear_error(ctx);
        mr_ctx_reset(ctx);
        free(kc); free(vc);
        mr_params_free(ps);
    }
}
/* the op against a plain double-precision softmax attention */
static void test_attention_reference(void) {
    enum { B = 2, T = 9, H = 4, KV = 2, hd = 6 };
    float qkv[B * T * (H + 2 * KV) * hd];
    int64_t sh[3] = {B, T, (H + 2 * KV) * hd};
    mr_tensor *x, *o;
    int i, b, t, h, j, d;
    double maxe = 0;
    for (i = 0; i < (int)(sizeof qkv / sizeof qkv[0]); i++) qkv[i] = 2.f * mr_rng_uniform(&rng) - 1.f;
    mr_ctx_reset(ctx);
    x = mr_tensor_wrap(ctx, qkv, 3, sh);
    o = mr_attention(ctx, x, H, KV, 0.f, 0, NULL, NULL, 0);
    MR_CHECK(o != NULL);
    if (!o) return;
    for (b = 0; b < B; b++) for (t = 0; t < T; t++) for (h = 0; h < H; h++) {
        const float *q = qkv + ((b * T + t) * (H + 2 * KV) + h) * hd;
        double s[T], mx = -1e300, sum = 0, out[hd];
        int g = h / (H / KV);
        for (j = 0; j <= t; j++) {
            const float *k = qkv + ((b * T + j) * (H + 2 * KV) + H + g) * hd;
            s[j] = 0;
            for (d = 0; d < hd; d++) s[j] += (double)q[d] * k[d];
            s[j] /= sqrt((double)hd);
            if (s[j] > mx) mx = s[j];
        }
        for (j = 0; j <= t; j++) { s[j] = exp(s[j] - mx); sum += s[j]; }
        for (d = 0; d < hd; d++) out[d] = 0;
        for (j = 0; j <= t; j++) for (d = 0; d < hd; d++) out[d] += s[j] / sum * qkv[((b * T + j) * (H + 2 * KV) + H + KV + g) * hd + d];
        for (d = 0; d < hd; d++) {
            double e = fabs(out[d] - o->data[((b * T + t) * H + h) * hd + d]);
            if (e > maxe) maxe = e;
        }
    }
    MR_CHECK_MSG(maxe < 1e-5, "attention vs double reference: %g", maxe);
    mr_ctx_reset(ctx);
}

/* ---- the KV cache ---- */
static int argmax(const float *l, int V) { int i, b = 0; for (i = 1; i < V; i++) if (l[i] > l[b]) b = i; return b; }
static void test_kv_cache_greedy_300(void) {
    enum { V = 17, N = 300 };
    mr_model_cfg cfg = mr_model_defaults(V);
    mr_model *m = NULL;
    mr_state *st;
    mr_error e;
    int32_t seq[N + 1];
    float lg[V];
    int i, bad = 0;
    double maxd = 0;
    cfg.dim = 16; cfg.ffn_hidden = 32; cfg.max_context = 320; cfg.attn.n_heads = 4; cfg.attn.n_kv_heads = 2;
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "attn,mingru,attn", &e) == MR_OK);
    MR_CHECK(mr_model_new(&m, &cfg, NULL, &e) == MR_OK);
    if (!m) return;
    mr_model_init_weights(m, &rng);
    for (i = 0; i < m->ps->n; i++)   /* sharper logits: fewer near ties */
        if (!strcmp(m->ps->t[i]->name, "embedding")) { int64_t k; for (k = 0; k < mr_tensor_numel(m->ps->t[i]); k++) m->ps->t[i]->data[k] *= 20.f; }
    mr_state_new(&st, m, 1, NULL);
    seq[0] = 3;
    mr_ctx_reset(ctx);
    for (i = 0; i < N; i++) {   /* greedy with the cache */
        MR_CHECK(mr_model_step(ctx, m, &seq[i], st, lg) == MR_OK);
        mr_ctx_reset(ctx);
        seq[i + 1] = argmax(lg, V);
    }
    mr_ctx_set_no_grad(ctx, 1);
    for (i = 0; i < N; i++) {   /* full recomputation of each prefix, no state */
        mr_tensor *full = mr_model_forward(ctx, m, seq, 1, i + 1, NULL, 0);
        int j;
        MR_CHECK(full != NULL);
        if (!full) break;
        if (argmax(full->data + (int64_t)i * V, V) != seq[i + 1]) bad++;
        if (i == N - 1) {
            mr_state *s2;
            float lg2[V];
            mr_state_new(&s2, m, 1, NULL);
            for (j = 0; j < N; j++) { mr_model_step(ctx, m, &seq[j], s2, lg2); }
            for (j = 0; j < V; j++) if (fabs(lg2[j] - full->data[(int64_t)i * V + j]) > maxd) maxd = fabs(lg2[j] - full->data[(int64_t)i * V + j]);
            mr_state_free(s2);
        }
        mr_ctx_reset(ctx);
    }
    mr_ctx_set_no_grad(ctx, 0);
    MR_CHECK_MSG(bad == 0, "%d of %d greedy tokens differ from full recomputation", bad, N);
    MR_CHECK_MSG(maxd < 1e-4, "logits at position 299: cache vs recomputation %g", maxd);
    {   /* one more token than the context holds: a clear error */
        int32_t t2[21];
        mr_tensor *r;
        for (i = 0; i < 20; i++) { MR_CHECK(mr_model_step(ctx, m, &seq[i], st, lg) == MR_OK); mr_ctx_reset(ctx); }
        MR_CHECK(st->pos == 320);
        MR_CHECK(mr_model_step(ctx, m, &seq[0], st, lg) == MR_ERR_RANGE && strstr(mr_ctx_error(ctx), "context"));
        mr_ctx_reset(ctx);
        for (i = 0; i < 21; i++) t2[i] = 1;
        mr_state_reset(st);
        r = mr_model_forward(ctx, m, seq, 1, 321, NULL, 0);
        MR_CHECK(r == NULL && mr_ctx_status(ctx) == MR_ERR_RANGE);
        mr_ctx_reset(ctx);
        (void)t2;
    }
    mr_state_free(st);
    mr_model_free(m);
}

/* The step path (mr_model_step: every block's step, no tape) against the
   general one (mr_model_forward with T = 1: the tape's ops) for every row:
   1,000 greedy tokens from each are the same, every logit agrees to 1e-5
   (relative, 1 at least), and so do the states at the end. */
static void test_step_vs_general(void) {
    enum { V = 13, N = 1000 };
    int r;
    row_context = N + 8;
    for (r = 0; r <= NROWS; r++) {
        const brow *row = r < NROWS ? &rows[r] : &row_conv1;
        mr_model *m = row_model(row, V);
        mr_state *s1, *s2;
        int32_t t1 = 1, t2 = 1;
        float lg1[V], lg2[V];
        int i, j, same = 1, prev;
        double maxd = 0, maxs = 0;
        if (!m) continue;
        mr_state_new(&s1, m, 1, NULL); mr_state_new(&s2, m, 1, NULL);
        mr_ctx_reset(ctx);
        for (i = 0; i < N && same; i++) {
            mr_tensor *lg;
            prev = mr_ctx_set_no_grad(ctx, 1);
            lg = mr_model_forward(ctx, m, &t1, 1, 1, s1, 0);
            mr_ctx_set_no_grad(ctx, prev);
            MR_CHECK_MSG(lg != NULL, "%s: %s", row->name, mr_ctx_error(ctx));
            if (!lg) break;
            mr_tensor_copy_to(lg, lg1);
            mr_ctx_reset(ctx);
            MR_CHECK(mr_model_step(ctx, m, &t2, s2, lg2) == MR_OK);
            mr_ctx_reset(ctx);
            for (j = 0; j < V; j++) if (mt_reldiff(lg2[j], lg1[j]) > maxd) maxd = mt_reldiff(lg2[j], lg1[j]);
            t1 = argmax(lg1, V); t2 = argmax(lg2, V);
            same = t1 == t2;
        }
        MR_CHECK_MSG(same && i == N, "%s: the greedy tokens part at token %d", row->name, i);
        MR_CHECK_MSG(maxd < 1e-5, "%s: logits of the two steps differ by %g", row->name, maxd);
        maxs = state_maxdiff(s1, s2);
        MR_CHECK_MSG(maxs < 1e-5 && s1->pos == N && s2->pos == N, "%s: states differ by %g", row->name, maxs);
        mr_state_free(s1); mr_state_free(s2);
        mr_model_free(m);
    }
    row_context = 64;
}
/* B streams in one step (matrix-vector products for B <= 4, the packed GEMM
   above) against each stream stepped alone: logits to 1e-5 */
static void test_batched_step(void) {
    enum { V = 13, T = 6 };
    static const int Bs[2] = {3, 9};
    int r, bi;
    for (r = 0; r < NROWS; r++) for (bi = 0; bi < 2; bi++) {
        int B = Bs[bi], b, t, j;
        mr_model *m = row_model(&rows[r], V);
        mr_state *sb, *s1[9];
        int32_t tok[9];
        float lgb[9 * V], lg1[V];
        double maxd = 0;
        if (!m) continue;
        mr_state_new(&sb, m, B, NULL);
        for (b = 0; b < B; b++) mr_state_new(&s1[b], m, 1, NULL);
        mr_ctx_reset(ctx);
        for (t = 0; t < T; t++) {
            for (b = 0; b < B; b++) tok[b] = (int32_t)mr_rng_below(&rng, V);
            MR_CHECK(mr_model_step(ctx, m, tok, sb, lgb) == MR_OK);
            mr_ctx_reset(ctx);
            for (b = 0; b < B; b++) {
                MR_CHECK(mr_model_step(ctx, m, &tok[b], s1[b], lg1) == MR_OK);
                mr_ctx_reset(ctx);
                for (j = 0; j < V; j++) if (mt_reldiff(lgb[b * V + j], lg1[j]) > maxd) maxd = mt_reldiff(lgb[b * V + j], lg1[j]);
            }
        }
        MR_CHECK_MSG(maxd < 1e-5, "%s B=%d: batched vs single streams %g", rows[r].name, B, maxd);
        mr_state_free(sb);
        for (b = 0; b < B; b++) mr_state_free(s1[b]);
        mr_model_free(m);
    }
}

/* int8 weights, every row: the int8 step (int8 products, activations
   quantized per row) against the general step on the same (dequantized)
   weights within the activations' rounding, and B = 3 streams in one int8
   step equal to each stream stepped alone, bit for bit */
static void test_int8_step(void) {
    enum { V = 13, T = 40, B = 3 };
    int r;
    for (r = 0; r <= NROWS; r++) {
        const brow *row = r < NROWS ? &rows[r] : &row_conv1;
        mr_model *m = row_model(row, V);
        mr_state *sb, *s1[B], *sg[B];
        mr_error e;
        int32_t tok[B];
        float lgb[B * V], lg1[V];
        double maxd = 0, maxd0 = 0;
        int b, t, j, same = 1;
        if (!m) continue;
        MR_CHECK_MSG(mr_model_quantize(m, MR_Q8_ALL, &e) == MR_OK, "%s: %s", row->name, e.msg);
        MR_CHECK(mr_model_n_quantized(m) > 0 && mr_model_weight_bytes(m) < (size_t)mr_params_count(m->ps) * 4);
        mr_state_new(&sb, m, B, NULL);
        for (b = 0; b < B; b++) { mr_state_new(&s1[b], m, 1, NULL); mr_state_new(&sg[b], m, 1, NULL); }
        mr_ctx_reset(ctx);
        for (t = 0; t < T; t++) {
            for (b = 0; b < B; b++) tok[b] = (int32_t)mr_rng_below(&rng, V);
            MR_CHECK(mr_model_step(ctx, m, tok, sb, lgb) == MR_OK);
            mr_ctx_reset(ctx);
            for (b = 0; b < B; b++) {
                mr_tensor *lg;
                int prev;
                MR_CHECK(mr_model_step(ctx, m, &tok[b], s1[b], lg1) == MR_OK);
                mr_ctx_reset(ctx);
                same &= !memcmp(lg1, lgb + b * V, sizeof lg1);
                prev = mr_ctx_set_no_grad(ctx, 1);
                lg = mr_model_forward(ctx, m, &tok[b], 1, 1, sg[b], 0);
                mr_ctx_set_no_grad(ctx, prev);
                if (lg) for (j = 0; j < V; j++) if (mt_reldiff(lg1[j], lg->data[j]) > maxd) maxd = mt_reldiff(lg1[j], lg->data[j]);
                mr_ctx_reset(ctx);
            }
            if (t == 0) maxd0 = maxd;
        }
        MR_CHECK_MSG(same, "%s: the batched int8 step differs from the single streams", row->name);
        /* measured: first token at most 0.043, 40 tokens at most 0.14 (d = 12, RWKV rows' weights
           perturbed by 0.3: their states reach hundreds); a MoE row's routing can flip on the
           activations' rounding (0.85 measured), so it is held to the first token */
        MR_CHECK_MSG(maxd0 < 0.08, "%s: int8 step vs float step on the dequantized weights, first token %g", row->name, maxd0);
        MR_CHECK_MSG(maxd < 0.25 || strstr(row->name, "moe"), "%s: int8 step vs float step on the dequantized weights %g", row->name, maxd);
        mr_state_free(sb);
        for (b = 0; b < B; b++) { mr_state_free(s1[b]); mr_state_free(sg[b]); }
        mr_model_free(m);
    }
}

/* the attention step's rows on two threads (many streams, a long cache) equal one thread's, bit for bit */
static void test_attention_step_threads(void) {
    enum { V = 13, B = 16, N = 160 };
    mr_model_cfg cfg = mr_model_defaults(V);
    mr_model *m = NULL;
    mr_state *s1, *s2;
    mr_ctx *c1;
    mr_ctx_params p = mr_ctx_defaults();
    mr_error e;
    int32_t tok[B];
    float lg1[B * V], lg2[B * V];
    int i, b, same = 1;
    cfg.dim = 64; cfg.n_layers = 2; cfg.ffn_hidden = 32; cfg.max_context = N; cfg.attn.n_heads = 4; cfg.attn.n_kv_heads = 2;
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "attn,mingru", &e) == MR_OK);
    MR_CHECK(mr_model_new(&m, &cfg, NULL, &e) == MR_OK);
    if (!m) return;
    mr_model_init_weights(m, &rng);
    p.n_threads = 1;
    MR_CHECK(mr_ctx_new(&c1, &p) == MR_OK);
    mr_state_new(&s1, m, B, NULL); mr_state_new(&s2, m, B, NULL);
    for (i = 0; i < N; i++) {
        for (b = 0; b < B; b++) tok[b] = (int32_t)mr_rng_below(&rng, V);
        MR_CHECK(mr_model_step(c1, m, tok, s1, lg1) == MR_OK); mr_ctx_reset(c1);
        MR_CHECK(mr_model_step(ctx, m, tok, s2, lg2) == MR_OK); mr_ctx_reset(ctx);
        if (memcmp(lg1, lg2, sizeof lg1)) same = 0;
    }
    MR_CHECK_MSG(same, "the attention step on %d threads differs from one thread", mr_ctx_threads(ctx));
    mr_state_free(s1); mr_state_free(s2);
    mr_ctx_free(c1);
    mr_model_free(m);
}

/* sessions of an attention stack: saved after a prompt, loaded into a fresh
   state, the continuation is the same; other models are refused by name */
static void test_session_attention(void) {
    enum { V = 13 };
    const brow *r = find_row("hybrid");   /* h, conv tails and KV caches */
    mr_model *m = row_model(r, V), *m2;
    mr_state *s1, *s2, *s3;
    int32_t pre[2 * 9], tok[2];
    float lg1[2 * V], lg2[2 * V];
    uint8_t *buf = NULL;
    size_t len = 0;
    mr_error e;
    int i, has = 0;
    brow other = *r;
    if (!m) return;
    for (i = 0; i < 18; i++) pre[i] = (int32_t)mr_rng_below(&rng, V);
    mr_state_new(&s1, m, 2, NULL); mr_state_new(&s2, m, 2, NULL);
    mr_ctx_reset(ctx);
    mr_ctx_set_no_grad(ctx, 1);
    MR_CHECK(mr_model_forward(ctx, m, pre, 2, 9, s1, 0) != NULL);
    mr_ctx_reset(ctx);
    MR_CHECK(mr_state_save_mem(m, s1, NULL, &buf, &len, &e) == MR_OK);
    MR_CHECK(mr_state_load_mem(m, s2, NULL, &has, buf, len, &e) == MR_OK && has == 0);
    MR_CHECK(s2->pos == 9 && s2->valid);
    for (i = 0; i < 5; i++) {
        tok[0] = i; tok[1] = i + 2;
        MR_CHECK(mr_model_step(ctx, m, tok, s1, lg1) == MR_OK); mr_ctx_reset(ctx);
        MR_CHECK(mr_model_step(ctx, m, tok, s2, lg2) == MR_OK); mr_ctx_reset(ctx);
        MR_CHECK(!memcmp(lg1, lg2, sizeof lg1));
    }
    /* fewer KV heads: the same tensors count differs and the cache blocks have another shape */
    other.kv_heads = 2;
    m2 = row_model(&other, V);
    if (m2) {
        mr_state_new(&s3, m2, 2, NULL);
        MR_CHECK(mr_state_load_mem(m2, s3, NULL, NULL, buf, len, &e) == MR_ERR_FORMAT);
        mr_state_free(s3);
        mr_model_free(m2);
    }
    {   /* a checkpoint of it round-trips and its CONF keeps every attention setting */
        mr_vocab v;
        mr_model *m3 = NULL;
        uint8_t *cb;
        size_t cl;
        mr_vocab_bytes(&v);
        v.n = V; v.kind = MR_VOCAB_CHARS;
        for (i = 0; i < 256; i++) v.index[i] = (int16_t)(i < V ? i : -1);
        MR_CHECK(mr_ckpt_save_mem(m, &v, NULL, &cb, &cl, &e) == MR_OK);
        MR_CHECK(mr_ckpt_load_mem(&m3, &v, NULL, cb, cl, NULL, &e) == MR_OK);
        if (m3) {
            MR_CHECK(m3->cfg.attn.n_heads == m->cfg.attn.n_heads && m3->cfg.attn.n_kv_heads == m->cfg.attn.n_kv_heads &&
                     m3->cfg.attn.rope_theta == m->cfg.attn.rope_theta && m3->cfg.max_context == m->cfg.max_context &&
                     !memcmp(m3->cfg.mixer, m->cfg.mixer, 4) && !memcmp(m3->cfg.ffn, m->cfg.ffn, 4));
            MR_CHECK(!memcmp(m3->ps->data, m->ps->data, sizeof(float) * m->ps->numel));
        }
        mr_model_free(m3);
        mr_buffer_free(cb);
    }
    mr_ctx_set_no_grad(ctx, 0);
    mr_buffer_free(buf);
    mr_state_free(s1); mr_state_free(s2);
    mr_model_free(m);
}

static void test_cfg_errors(void) {
    mr_model_cfg cfg = mr_model_defaults(65);
    mr_model *m = NULL;
    mr_error e;
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "mingru,transformer", &e) == MR_ERR_ARG && strstr(e.msg, "transformer") && strstr(e.msg, "attn"));
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "attn*", &e) == MR_ERR_ARG);
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "attn*0", &e) == MR_ERR_ARG);
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "attn*65", &e) == MR_ERR_ARG);
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "mingru,", &e) == MR_ERR_ARG);
    MR_CHECK(mr_model_cfg_set_ffn(&cfg, "mixture", &e) == MR_ERR_ARG && strstr(e.msg, "swiglu") && strstr(e.msg, "moe"));
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "gru*2,attn", &e) == MR_OK && cfg.n_layers == 3 && cfg.mixer[0] == MR_MIXER_GRU && cfg.mixer[2] == MR_MIXER_ATTN);
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "attn*4", &e) == MR_OK && cfg.n_layers == 4 && cfg.mixer[3] == MR_MIXER_ATTN);
    cfg.attn.n_heads = 3;
    MR_CHECK(mr_model_new(&m, &cfg, NULL, &e) == MR_ERR_ARG && m == NULL && strstr(e.msg, "divide the width"));
    cfg.attn.n_heads = 4; cfg.attn.n_kv_heads = 3;
    MR_CHECK(mr_model_new(&m, &cfg, NULL, &e) == MR_ERR_ARG && strstr(e.msg, "key/value heads"));
    cfg.attn.n_kv_heads = 2; cfg.max_context = 0;
    MR_CHECK(mr_model_new(&m, &cfg, NULL, &e) == MR_ERR_ARG && strstr(e.msg, "context"));
    cfg.max_context = 16;
    MR_CHECK(mr_model_new(&m, &cfg, NULL, &e) == MR_OK);
    {   /* RWKV: the head size must divide the width */
        mr_model_cfg rc = cfg;
        mr_model *rm = NULL;
        MR_CHECK(mr_model_cfg_set_layers(&rc, "rwkv6*2", &e) == MR_OK);
        rc.rwkv.head_size = 48;
        MR_CHECK(mr_model_new(&rm, &rc, NULL, &e) == MR_ERR_ARG && rm == NULL && strstr(e.msg, "head size 48 does not divide the width 128"));
        rc.rwkv.head_size = 0;
        MR_CHECK(mr_model_new(&rm, &rc, NULL, &e) == MR_ERR_ARG && strstr(e.msg, "head size"));
        rc.rwkv.head_size = 64;
        MR_CHECK(mr_model_new(&rm, &rc, NULL, &e) == MR_OK && mr_model_cfg_param_count(&rc) == mr_params_count(rm->ps));
        mr_model_free(rm);
    }
    MR_CHECK(mr_model_cfg_param_count(&cfg) == mr_params_count(m->ps));
    mr_model_free(m);
    {   /* the count mode of the builder agrees with the built model for every row */
        int r;
        for (r = 0; r < NROWS; r++) {
            mr_model *mm = row_model(&rows[r], 9);
            if (mm) MR_CHECK_MSG(mr_model_cfg_param_count(&mm->cfg) == mr_params_count(mm->ps), "%s", rows[r].name);
            mr_model_free(mm);
        }
    }
    MR_CHECK(mr_mixer_name(MR_MIXER_ATTN) && !strcmp(mr_mixer_name(MR_MIXER_ATTN), "attn") && mr_mixer_name(MR_MIXER_COUNT) == NULL);
    MR_CHECK(!strcmp(mr_ffn_name(MR_FFN_RELU2), "relu2") && mr_ffn_desc(-1) == NULL);
}

/* Two mixers in one block ("a+b"): the spec parser, the tensor and state
   names, the residual structure (a zero second mixer leaves the first's
   model), and the checkpoint round trip of the second mixer's kinds. */
static void test_two_mixers(void) {
    mr_model_cfg cfg = mr_model_defaults(17), one;
    mr_model *m = NULL, *m1 = NULL, *m2 = NULL;
    mr_state *st = NULL;
    mr_error e;
    char sp[48];
    int i, l;
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "gru+rwkv6*2,mingru,attn+gru", &e) == MR_OK && cfg.n_layers == 4);
    MR_CHECK(cfg.mixer[0] == MR_MIXER_GRU && cfg.mixer_b[0] == MR_MIXER_RWKV6 + 1 && cfg.mixer_b[1] == MR_MIXER_RWKV6 + 1);
    MR_CHECK(cfg.mixer[2] == MR_MIXER_MINGRU && cfg.mixer_b[2] == 0 && cfg.mixer[3] == MR_MIXER_ATTN && cfg.mixer_b[3] == MR_MIXER_GRU + 1);
    MR_CHECK(!strcmp(mr_model_layer_spec(&cfg, 0, sp, sizeof sp), "gru+rwkv6") && !strcmp(mr_model_layer_spec(&cfg, 2, sp, sizeof sp), "mingru"));
    MR_CHECK(mr_model_has_attention(&cfg) && mr_model_has_mixer(&cfg, MR_MIXER_RWKV6) && !mr_model_has_mixer(&cfg, MR_MIXER_MINLSTM));
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "mingru+attn", &e) == MR_OK && mr_model_has_attention(&cfg) && cfg.mixer_b[63] == MR_MIXER_ATTN + 1);
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "gru,mingru", &e) == MR_OK && cfg.mixer_b[0] == 0 && cfg.mixer_b[5] == 0 && !mr_model_has_attention(&cfg));
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "gru+", &e) == MR_ERR_ARG && strstr(e.msg, "follow '+'"));
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "+gru", &e) == MR_ERR_ARG && strstr(e.msg, "unknown layer kind"));
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "gru+rwkv6+attn", &e) == MR_ERR_ARG && strstr(e.msg, "at most two"));
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "gru+lstm*2", &e) == MR_ERR_ARG && strstr(e.msg, "'lstm'"));
    cfg.mixer_b[0] = MR_MIXER_COUNT + 1;
    MR_CHECK(mr_model_cfg_check(&cfg, &e) == MR_ERR_ARG && strstr(e.msg, "second mixer"));

    cfg = mr_model_defaults(17);
    cfg.dim = 8; cfg.ffn_hidden = 8; cfg.rwkv.head_size = 4; cfg.rwkv.mix_rank = 2; cfg.rwkv.decay_rank = 3; cfg.conv_kernel = 2;
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "gru+rwkv6,mingru", &e) == MR_OK);
    if (mr_model_new(&m, &cfg, NULL, &e) != MR_OK) { MR_CHECK_MSG(0, "%s", e.msg); return; }
    mr_model_init_weights(m, &rng);
    MR_CHECK(mr_params_find(m->ps, "layers.0.gru.w_x") && mr_params_find(m->ps, "layers.0.mix2.norm1") &&
             mr_params_find(m->ps, "layers.0.mix2.tmix.w_r") && mr_params_find(m->ps, "layers.0.mix2.tmix.ln_x.bias") &&
             !mr_params_find(m->ps, "layers.1.mix2.norm1") && !mr_params_find(m->ps, "layers.0.tmix.w_r"));
    MR_CHECK(mr_model_cfg_param_count(&cfg) == mr_params_count(m->ps));
    MR_CHECK(mr_state_new(&st, m, 2, &e) == MR_OK);
    if (st) {   /* first mixer, second mixer, conv tail, FFN: in that order */
        MR_CHECK(st->first[1] - st->first[0] == 4 && !strcmp(st->blocks[0].name, "layers.0.h") &&
                 !strcmp(st->blocks[1].name, "layers.0.mix2.tmix.shift") && !strcmp(st->blocks[2].name, "layers.0.mix2.tmix.wkv") &&
                 !strcmp(st->blocks[3].name, "layers.0.conv") && mr_state_find(st, 0, MR_STATE_H) == &st->blocks[0]);
        mr_state_free(st);
    }
    {   /* a second mixer whose output projection is zero adds nothing: the model equals the one-mixer model */
        int32_t tok[2 * 9];
        float a[2 * 9 * 17];
        double md = 0;
        mr_tensor *lg;
        one = cfg;
        MR_CHECK(mr_model_cfg_set_layers(&one, "gru,mingru", &e) == MR_OK);
        MR_CHECK(mr_model_new(&m1, &one, NULL, &e) == MR_OK);
        if (m1) {
            for (i = 0; i < m1->ps->n; i++) {
                mr_tensor *src = mr_params_find(m->ps, m1->ps->t[i]->name);
                MR_CHECK_MSG(src != NULL, "%s", m1->ps->t[i]->name);
                if (src) memcpy(m1->ps->t[i]->data, src->data, sizeof(float) * (size_t)mr_tensor_numel(src));
            }
            mr_tensor_fill(mr_params_find(m->ps, "layers.0.mix2.tmix.w_o"), 0.f);
            for (i = 0; i < 2 * 9; i++) tok[i] = (int32_t)mr_rng_below(&rng, 17);
            mr_ctx_reset(ctx);
            lg = mr_model_forward(ctx, m1, tok, 2, 9, NULL, 0);
            if (lg) mr_tensor_copy_to(lg, a);
            lg = mr_model_forward(ctx, m, tok, 2, 9, NULL, 0);
            if (lg) for (i = 0; i < 2 * 9 * 17; i++) if (fabs(lg->data[i] - a[i]) > md) md = fabs(lg->data[i] - a[i]);
            MR_CHECK(lg != NULL);
            MR_CHECK_MSG(md == 0, "a zero second mixer changes the logits by %g", md);
            mr_ctx_reset(ctx);
        }
    }
    {   /* the checkpoint keeps the second mixers; a model without any writes no mixer_b field */
        uint8_t *buf = NULL, *buf1 = NULL;
        size_t len = 0, len1 = 0;
        static const uint8_t field[8] = {24, 0, 1, 0, 2, 0, 0, 0};   /* u16 tag 24, u16 must-understand, u32 length 2 */
        mr_vocab v;
        size_t k;
        int found = 0, found1 = 0;
        mr_vocab_bytes(&v);
        v.n = 17; v.kind = MR_VOCAB_CHARS;
        for (i = 0; i < 256; i++) v.index[i] = (int16_t)(i < 17 ? i : -1);
        MR_CHECK_MSG(mr_ckpt_save_mem(m, &v, NULL, &buf, &len, &e) == MR_OK, "%s", e.msg);
        MR_CHECK(buf && mr_ckpt_load_mem(&m2, &v, NULL, buf, len, NULL, &e) == MR_OK);
        for (k = 0; buf && k + 10 <= len; k++)
            if (!memcmp(buf + k, field, 8) && buf[k + 8] == MR_MIXER_RWKV6 + 1 && buf[k + 9] == 0) found++;
        MR_CHECK(found == 1);
        if (m2) {
            for (l = 0; l < MR_MAX_LAYERS; l++) MR_CHECK(m2->cfg.mixer_b[l] == m->cfg.mixer_b[l] && m2->cfg.mixer[l] == m->cfg.mixer[l]);
            MR_CHECK(mr_params_find(m2->ps, "layers.0.mix2.tmix.w_k") != NULL);
        }
        if (m1) {
            MR_CHECK(mr_ckpt_save_mem(m1, &v, NULL, &buf1, &len1, &e) == MR_OK);
            for (k = 0; buf1 && k + 8 <= len1; k++) if (!memcmp(buf1 + k, field, 8)) found1++;
            MR_CHECK(buf1 && len1 < len && found1 == 0);
        }
        mr_buffer_free(buf); mr_buffer_free(buf1);
    }
    mr_model_free(m); mr_model_free(m1); mr_model_free(m2);
}

int main(int argc, char **argv) {
    static const mr_test_case cases[] = {
        {"parallel_vs_step", test_parallel_vs_step}, {"chunked_vs_long", test_chunked_vs_long},
        {"model_gradcheck", test_model_gradcheck}, {"attention_gradcheck", test_attention_gradcheck},
        {"attention_reference", test_attention_reference}, {"kv_cache_greedy_300", test_kv_cache_greedy_300},
        {"session_attention", test_session_attention}, {"cfg_errors", test_cfg_errors},
        {"two_mixers", test_two_mixers}, {"step_vs_general", test_step_vs_general}, {"batched_step", test_batched_step},
        {"attention_step_threads", test_attention_step_threads}, {"int8_step", test_int8_step},
    };
    mr_ctx_params p = mr_ctx_defaults();
    int rc;
    p.n_threads = 2;
    if (mr_ctx_new(&ctx, &p) != MR_OK) { printf("0 passed, 1 failed\n"); return 1; }
    mr_rng_seed(&rng, 777);
    rc = mr_test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
    mr_ctx_free(ctx);
    return rc;
}
