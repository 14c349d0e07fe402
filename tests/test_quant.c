/* int8 weights: the VNNI products against the portable ones (bit for bit)
   and against the integer sums; the activations' quantization; the
   quantizer (which tensors, the rounding bound, the dequantized floats);
   int8 checkpoints (round trip, size, every corruption refused cleanly);
   what a quantized model refuses (training, float imports, a second
   quantization); and the step-path evaluation. Every block kind's int8 step
   is in test_blocks (int8_step). */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

static mr_rng rng;

static mr_model *q_model(int V, const char *layers, const char *ffn, int dim, int tied) {
    mr_model_cfg cfg = mr_model_defaults(V);
    mr_model *m = NULL;
    mr_error e;
    cfg.dim = dim; cfg.n_layers = 3; cfg.ffn_hidden = 2 * dim; cfg.conv_kernel = 3; cfg.tie_embeddings = tied;
    cfg.attn.n_heads = 4; cfg.attn.n_kv_heads = 2; cfg.max_context = 64;
    cfg.rwkv.head_size = 16; cfg.rwkv.mix_rank = 8; cfg.rwkv.decay_rank = 8;
    if (mr_model_cfg_set_layers(&cfg, layers, &e) != MR_OK || mr_model_cfg_set_ffn(&cfg, ffn, &e) != MR_OK ||
        mr_model_new(&m, &cfg, NULL, &e) != MR_OK) {
        MR_CHECK_MSG(0, "%s: %s", layers, e.msg);
        return NULL;
    }
    mr_model_init_weights(m, &rng);
    return m;
}

/* the VNNI kernel (where compiled) equals the portable one bit for bit, and
   both equal (sum - corr) * (scale * sx) from 64-bit integer sums */
static void test_kernel(void) {
    static const int Ns[] = {1, 5, 15, 16, 17, 33, 64, 100};
    static const int lds[] = {64, 128, 192, 256, 320, 512, 1024, 4096};
    int a, b, n, k, bad = 0, bad_ref = 0;
    for (a = 0; a < (int)(sizeof Ns / sizeof Ns[0]); a++)
        for (b = 0; b < (int)(sizeof lds / sizeof lds[0]); b++) {
            int N = Ns[a], ld = lds[b];
            int8_t *Q = (int8_t *)malloc((size_t)N * ld);
            uint8_t *xu = (uint8_t *)malloc((size_t)ld);
            int32_t *corr = (int32_t *)malloc(sizeof(int32_t) * N);
            float *sc = (float *)malloc(sizeof(float) * N), *y1 = (float *)malloc(sizeof(float) * N), *y2 = (float *)malloc(sizeof(float) * N);
            float sx = 0.01f + mr_rng_uniform(&rng);
            for (k = 0; k < N * ld; k++) Q[k] = (int8_t)((int)mr_rng_below(&rng, 256) - 128);
            if (a == 0) for (k = 0; k < N * ld; k++) Q[k] = -128;   /* the extremes: every product at its largest */
            for (k = 0; k < ld; k++) xu[k] = a == 0 ? 255 : (uint8_t)mr_rng_below(&rng, 256);
            for (n = 0; n < N; n++) { corr[n] = (int32_t)mr_rng_below(&rng, 1000) - 500; sc[n] = mr_rng_uniform(&rng) * 0.1f; }
            for (n = 0; n < N; n++) y1[n] = y2[n] = NAN;
            mr__q8_gemv(N, ld, Q, corr, sc, xu, sx, y1);
            mr__q8_gemv_c(N, ld, Q, corr, sc, xu, sx, y2);
            bad += memcmp(y1, y2, sizeof(float) * N) != 0;
            for (n = 0; n < N; n++) {
                int64_t s = 0;
                for (k = 0; k < ld; k++) s += (int64_t)xu[k] * Q[(size_t)n * ld + k];
                bad_ref += y2[n] != (float)(int32_t)(s - corr[n]) * (sc[n] * sx);
            }
            free(Q); free(xu); free(corr); free(sc); free(y1); free(y2);
        }
    MR_CHECK_MSG(bad == 0, "%d shapes: the VNNI products differ from the portable ones", bad);
    MR_CHECK_MSG(bad_ref == 0, "%d rows differ from the 64-bit integer sums", bad_ref);
    printf("  int8 products: %s\n", MR__Q8_VNNI ? "AVX-512 VNNI" : "portable C");
}

static void test_activations(void) {
    const float x[5] = {1.f, -0.5f, 0.f, 0.25f, -1.f};
    float bad[3] = {1.f, NAN, 2.f}, z[4] = {0, 0, 0, 0};
    uint8_t xu[64];
    int k, ok = 1;
    float sx = mr__q8_act(x, 5, 64, xu);
    MR_CHECK(sx == 1.f / 127.f);
    /* 127, -63.5 -> -64 (half away from zero), 0, 31.75 -> 32, -127; then the shift by 128 */
    MR_CHECK(xu[0] == 255 && xu[1] == 64 && xu[2] == 128 && xu[3] == 160 && xu[4] == 1);
    for (k = 5; k < 64; k++) ok &= xu[k] == 128;
    MR_CHECK_MSG(ok, "the padding is not the value 0");
    MR_CHECK(isnan(mr__q8_act(bad, 3, 64, xu)) && xu[0] == 128 && xu[2] == 128);   /* NaN in, NaN products out */
    bad[1] = INFINITY;
    MR_CHECK(isnan(mr__q8_act(bad, 3, 64, xu)));
    MR_CHECK(mr__q8_act(z, 4, 64, xu) == 0.f && xu[0] == 128);
    /* a subnormal row: 127 / max |x| is infinite, the values still round (the fuzz target found the cast of inf) */
    {
        const float tiny[4] = {1e-40f, -5e-41f, 0.f, 2.5e-41f};
        float st = mr__q8_act(tiny, 4, 64, xu);
        MR_CHECK(st > 0.f && isfinite(127.f / 1e-40f) == 0);
        MR_CHECK_MSG(xu[0] == 255 && xu[1] == 64 && xu[2] == 128 && xu[3] == 160, "%d %d %d %d", xu[0], xu[1], xu[2], xu[3]);
        MR_CHECK(mr__q8_round(INFINITY) == 127 && mr__q8_round(-INFINITY) == -127 && mr__q8_round(NAN) == 0 && mr__q8_round(-3e9f) == -127);
    }
}

/* which tensors become int8, the rounding bound, the dequantized floats */
static void test_quantizer(void) {
    mr_model *m = q_model(70, "mingru,attn,rwkv6", "swiglu", 32, 0), *m2;
    mr_error e;
    float *orig;
    int i, fl;
    if (!m) return;
    orig = (float *)malloc(sizeof(float) * m->ps->numel);
    memcpy(orig, m->ps->data, sizeof(float) * m->ps->numel);
    MR_CHECK(mr_model_n_quantized(m) == 0 && mr_model_weight_bytes(m) == (size_t)mr_params_count(m->ps) * 4);
    MR_CHECK(mr_model_quantize(m, MR_Q8_ALL, &e) == MR_OK);
    for (i = 0; i < m->ps->n; i++) {
        const mr_tensor *t = m->ps->t[i];
        const mr_q8 *q = &m->q8[i];
        const float *w0 = orig + m->ps->offset[i];
        /* float: the vectors, the conv taps [d, K] and the time mix's token-shift mixes [5, d]
           (elementwise); int8: every other matrix, the LoRAs maa_w1 / maa_w2 included */
        int expect = t->ndim >= 2 && !mr__ends_with(t->name, ".conv.weight") && strcmp(t->name, "layers.2.tmix.maa");
        int64_t r, k;
        double worst = 0;
        int exact = 1, pad = 1, cor = 1;
        MR_CHECK_MSG((q->q != NULL) == expect, "%s: int8 %d, expected %d", t->name, q->q != NULL, expect);
        if (!q->q) { MR_CHECK(!memcmp(t->data, w0, sizeof(float) * (size_t)mr_tensor_numel(t))); continue; }
        MR_CHECK(q->rows == mr_tensor_rows(t) && q->cols == mr_tensor_cols(t) && q->ld % 64 == 0 && q->ld >= q->cols && q->ld < q->cols + 64);
        for (r = 0; r < q->rows; r++) {
            int32_t s = 0;
            float amax = 0;
            for (k = 0; k < q->cols; k++) amax = fabsf(w0[r * q->cols + k]) > amax ? fabsf(w0[r * q->cols + k]) : amax;
            exact &= q->scale[r] == amax / 127.f;
            for (k = 0; k < q->cols; k++) {
                double d = fabs((double)t->data[r * q->cols + k] - w0[r * q->cols + k]) / (q->scale[r] > 0 ? q->scale[r] : 1);
                if (d > worst) worst = d;
                exact &= t->data[r * q->cols + k] == (float)q->q[r * q->ld + k] * q->scale[r];
                s += q->q[r * q->ld + k];
            }
            for (k = q->cols; k < q->ld; k++) pad &= q->q[r * q->ld + k] == 0;
            cor &= q->corr[r] == 128 * s;
        }
        MR_CHECK_MSG(worst <= 0.5 + 1e-4, "%s: a weight moved by %g of its row's scale", t->name, worst);
        MR_CHECK_MSG(exact && pad && cor, "%s: scales %d, dequantized floats, padding %d, corrections %d", t->name, exact, pad, cor);
    }
    MR_CHECK(m->q8[mr__params_index(m->ps, "embedding")].q && m->q8[mr__params_index(m->ps, "head")].q);
    MR_CHECK(mr_model_weight_bytes(m) < (size_t)mr_params_count(m->ps) * 4 / 3);
    MR_CHECK(mr_model_quantize(m, MR_Q8_ALL, &e) == MR_ERR_ARG);   /* twice */
    mr_model_free(m);
    /* the flags: embedding and head stay float */
    for (fl = 0; fl < 4; fl++) {
        m2 = q_model(70, "mingru", "swiglu", 32, 0);
        if (!m2) continue;
        MR_CHECK(mr_model_quantize(m2, fl, &e) == MR_OK);
        MR_CHECK((m2->q8[mr__params_index(m2->ps, "embedding")].q != NULL) == ((fl & MR_Q8_EMBEDDING) != 0));
        MR_CHECK((m2->q8[mr__params_index(m2->ps, "head")].q != NULL) == ((fl & MR_Q8_HEAD) != 0));
        mr_model_free(m2);
    }
    m2 = q_model(70, "mingru", "swiglu", 32, 0);   /* a weight that is not finite */
    if (m2) {
        m2->layers[0].mix[0]->data[3] = NAN;
        MR_CHECK(mr_model_quantize(m2, MR_Q8_ALL, &e) == MR_ERR_RANGE && mr_model_n_quantized(m2) == 0);
        mr_model_free(m2);
    }
    free(orig);
}

/* ---- int8 checkpoints ---- */
static int find_sec(const uint8_t *b, size_t len, const char *tag, size_t *off, size_t *n) {
    size_t p = 16;
    while (p + 12 <= len && memcmp(b + p, "END!", 4)) {
        uint64_t l = 0;
        int i;
        for (i = 0; i < 8; i++) l |= (uint64_t)b[p + 4 + i] << (8 * i);
        if (!memcmp(b + p, tag, 4)) { *off = p + 12; *n = (size_t)l; return 1; }
        p += 12 + (size_t)l + 4;
    }
    return 0;
}
static void fix_crc(uint8_t *b, size_t off, size_t n) {
    uint32_t c = mr__crc32(b + off, n);
    int i;
    for (i = 0; i < 4; i++) b[off + n + i] = (uint8_t)(c >> (8 * i));
}
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void wr32(uint8_t *p, uint32_t v) { int i; for (i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
/* in the TENS payload at off: the offsets of tensor name's dtype field and of its data */
static int find_tensor(const uint8_t *b, size_t off, const char *name, size_t *dt_at, size_t *data_at) {
    size_t p = off + 4;
    uint32_t nt = rd32(b + off), i;
    for (i = 0; i < nt; i++) {
        uint32_t nl = rd32(b + p), dt, nd, d;
        int64_t numel = 1, rows = 1;
        int hit = nl == strlen(name) && !memcmp(b + p + 4, name, nl);
        p += 4 + nl;
        dt = rd32(b + p); nd = rd32(b + p + 4);
        if (hit) *dt_at = p;
        p += 8;
        for (d = 0; d < nd; d++) {
            uint64_t x = 0;
            int k;
            for (k = 0; k < 8; k++) x |= (uint64_t)b[p + k] << (8 * k);
            numel *= (int64_t)x;
            if (d + 1 < nd) rows *= (int64_t)x;
            p += 8;
        }
        p = (p + 63) / 64 * 64;
        if (hit) { *data_at = p; return 1; }
        p += dt == 0 ? (size_t)numel * 4 : (size_t)(rows * 4 + numel);
    }
    return 0;
}
static int same_q8(const mr_model *a, const mr_model *b) {
    int i;
    if (mr_model_n_quantized(a) != mr_model_n_quantized(b) || memcmp(a->ps->data, b->ps->data, sizeof(float) * a->ps->numel)) return 0;
    for (i = 0; i < a->ps->n; i++) {
        const mr_q8 *x = &a->q8[i], *y = &b->q8[i];
        if ((x->q == NULL) != (y->q == NULL)) return 0;
        if (x->q && (memcmp(x->q, y->q, (size_t)(x->rows * x->ld)) || memcmp(x->scale, y->scale, 4 * (size_t)x->rows) ||
                     memcmp(x->corr, y->corr, 4 * (size_t)x->rows)))
            return 0;
    }
    return 1;
}
static void test_checkpoint(void) {
    mr_vocab v, v2;
    mr_model *m, *m2 = NULL;
    mr_error e;
    uint8_t *fbuf, *buf, *cp;
    size_t flen, len, off = 0, n = 0, dt_at = 0, data_at = 0, k;
    mr_ctx *ctx;
    mr_ctx_params p = mr_ctx_defaults();
    mr_state *s1, *s2;
    float lg1[70], lg2[70];
    int32_t tok = 3;
    int t, same = 1, r;
    memset(&v, 0, sizeof v);
    v.n = 70; v.kind = MR_VOCAB_CHARS;
    for (k = 0; k < 70; k++) v.chars[k] = (uint8_t)(40 + k);
    m = q_model(70, "mingru,gru,rwkv6", "swiglu", 64, 1);
    if (!m) return;
    MR_CHECK(mr_ckpt_save_mem(m, &v, NULL, &fbuf, &flen, &e) == MR_OK);
    MR_CHECK(mr_model_quantize(m, MR_Q8_ALL, &e) == MR_OK);
    MR_CHECK(mr_ckpt_save_mem(m, &v, NULL, &buf, &len, &e) == MR_OK);
    printf("  float file %zu bytes, int8 file %zu bytes (%.3f)\n", flen, len, (double)len / (double)flen);
    MR_CHECK(len < flen * 3 / 10);
    MR_CHECK_MSG(mr_ckpt_load_mem(&m2, &v2, NULL, buf, len, NULL, &e) == MR_OK, "%s", e.msg);
    MR_CHECK(m2 && same_q8(m, m2));
    /* the loaded model steps the same bits */
    p.n_threads = 1;
    MR_CHECK(mr_ctx_new(&ctx, &p) == MR_OK);
    if (m2) {
        mr_state_new(&s1, m, 1, NULL); mr_state_new(&s2, m2, 1, NULL);
        for (t = 0; t < 20; t++) {
            MR_CHECK(mr_model_step(ctx, m, &tok, s1, lg1) == MR_OK); mr_ctx_reset(ctx);
            MR_CHECK(mr_model_step(ctx, m2, &tok, s2, lg2) == MR_OK); mr_ctx_reset(ctx);
            same &= !memcmp(lg1, lg2, sizeof lg1);
            tok = (tok * 7 + 1) % 70;
        }
        MR_CHECK_MSG(same, "the loaded int8 model steps other logits");
        mr_state_free(s1); mr_state_free(s2);
        mr_model_free(m2); m2 = NULL;
    }
    mr_ctx_free(ctx);
    /* every truncation is refused */
    for (k = 0; k < len; k += 1 + k / 50) {
        mr_status s = mr_ckpt_load_mem(&m2, &v2, NULL, buf, k, NULL, &e);
        MR_CHECK_MSG(s == MR_ERR_FORMAT, "truncated at %zu: %d", k, s);
        if (s == MR_OK) { mr_vocab_free(&v2); mr_model_free(m2); m2 = NULL; }
    }
    /* behind the CRC: bad scales, a bad dtype, int8 where it cannot be, a short tensor */
    MR_CHECK(find_sec(buf, len, "TENS", &off, &n));
    cp = (uint8_t *)malloc(len);
    for (r = 0; r < 6; r++) {
        const char *name = r < 3 ? "layers.0.mixer.w_in" : r == 3 ? "layers.1.norm1" : r == 4 ? "layers.0.mixer.w_in" : "embedding";
        const char *want = r < 3 ? "scale" : r == 3 ? "cannot be int8" : r == 4 ? "dtype" : "";
        mr_status s;
        memcpy(cp, buf, len);
        MR_CHECK(find_tensor(cp, off, name, &dt_at, &data_at));
        if (r == 0) { float x = NAN; memcpy(cp + data_at + 4, &x, 4); }
        if (r == 1) { float x = -1.f; memcpy(cp + data_at, &x, 4); }
        if (r == 2) { float x = INFINITY; memcpy(cp + data_at + 8, &x, 4); }
        if (r == 3) wr32(cp + dt_at, 1);
        if (r == 4) wr32(cp + dt_at, 2);
        if (r == 5) MR_CHECK(rd32(cp + dt_at) == 1);
        if (r == 5) wr32(cp + dt_at, 0);   /* int8 bytes read as floats: the sizes no longer add up */
        fix_crc(cp, off, n);
        s = mr_ckpt_load_mem(&m2, &v2, NULL, cp, len, NULL, &e);
        MR_CHECK_MSG(s == MR_ERR_FORMAT && strstr(e.msg, want), "case %d: %d '%s'", r, s, e.msg);
        if (s == MR_OK) { mr_model_free(m2); m2 = NULL; }
    }
    /* an int8 value of -128 (not written by the quantizer) loads and steps */
    memcpy(cp, buf, len);
    MR_CHECK(find_tensor(cp, off, "layers.0.mixer.w_in", &dt_at, &data_at));
    cp[data_at + 4 * (size_t)m->q8[mr__params_index(m->ps, "layers.0.mixer.w_in")].rows] = 0x80;
    fix_crc(cp, off, n);
    MR_CHECK(mr_ckpt_load_mem(&m2, &v2, NULL, cp, len, NULL, &e) == MR_OK);
    if (m2) { MR_CHECK(m2->q8[mr__params_index(m2->ps, "layers.0.mixer.w_in")].q[0] == -128); mr_model_free(m2); m2 = NULL; }
    free(cp);
    mr_buffer_free(buf); mr_buffer_free(fbuf);
    mr_model_free(m);
}

/* what an int8 model refuses: training (weights untouched), float imports */
static void test_refusals(void) {
    mr_model *m = q_model(20, "mingru", "swiglu", 16, 1);
    mr_error e;
    mr_ctx *ctx;
    mr_ctx_params p = mr_ctx_defaults();
    mr_adamw opt;
    int32_t x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8] = {2, 3, 4, 5, 6, 7, 8, 9};
    double loss;
    float *before;
    uint8_t *st;
    size_t stlen;
    if (!m) return;
    MR_CHECK(mr_safetensors_save_mem(m, &st, &stlen, &e) == MR_OK);
    MR_CHECK(mr_model_quantize(m, MR_Q8_ALL, &e) == MR_OK);
    before = (float *)malloc(sizeof(float) * m->ps->numel);
    memcpy(before, m->ps->data, sizeof(float) * m->ps->numel);
    MR_CHECK(mr_ctx_new(&ctx, &p) == MR_OK);
    MR_CHECK(mr_adamw_init(&opt, m->ps, mr_adamw_defaults(), &e) == MR_OK);
    MR_CHECK(mr_train_step(ctx, m, &opt, NULL, x, y, 1, 8, 0, NULL, 1e-2f, 1.f, &loss, NULL) == MR_ERR_ARG);
    MR_CHECK(strstr(mr_ctx_error(ctx), "int8") != NULL);
    MR_CHECK(!memcmp(before, m->ps->data, sizeof(float) * m->ps->numel));
    MR_CHECK(mr_safetensors_load_mem(m, st, stlen, &e) == MR_ERR_ARG && strstr(e.msg, "int8"));
    MR_CHECK(!memcmp(before, m->ps->data, sizeof(float) * m->ps->numel));
    {   /* a NaN weight (a hostile file): the step runs and says NaN (the fuzz target found the
           float-to-int cast of a NaN in the exp) */
        mr_state *s1;
        float lg[20];
        int32_t tok = 1;
        mr_ctx_clear_error(ctx);
        mr_ctx_reset(ctx);
        m->layers[0].norm1->data[0] = NAN;
        mr_state_new(&s1, m, 1, NULL);
        MR_CHECK(mr_model_step(ctx, m, &tok, s1, lg) == MR_OK && isnan(lg[0]));
        MR_CHECK(isnan(mr__expf(NAN)) && mr__expf(0.f) == 1.f);
        mr_state_free(s1);
    }
    mr_adamw_free(&opt);
    mr_ctx_free(ctx);
    mr_buffer_free(st);
    free(before);
    mr_model_free(m);
}

/* mr_eval_step equals mr_eval_stateful on a float model; on the int8 model it is close */
static void test_eval_step(void) {
    mr_model *m = q_model(30, "mingru,attn", "swiglu", 32, 1);
    mr_ctx *ctx;
    mr_ctx_params p = mr_ctx_defaults();
    int32_t tok[150];
    double l1, l2, l3;
    int i;
    if (!m) return;
    m->cfg.max_context = 64;
    for (i = 0; i < 150; i++) tok[i] = (int32_t)((i * 7 + i / 5) % 30);
    MR_CHECK(mr_ctx_new(&ctx, &p) == MR_OK);
    MR_CHECK(mr_eval_step(ctx, m, tok, 150, &l1) == MR_OK);
    MR_CHECK(mr_eval_stateful(ctx, m, tok, 150, 64, &l2) == MR_OK);   /* chunks of the context: the same restarts */
    MR_CHECK_MSG(fabs(l1 - l2) < 1e-5, "step %g, parallel %g", l1, l2);
    MR_CHECK(mr_model_quantize(m, MR_Q8_ALL, NULL) == MR_OK);
    MR_CHECK(mr_eval_step(ctx, m, tok, 150, &l3) == MR_OK);
    MR_CHECK_MSG(fabs(l3 - l1) < 0.05 && l3 != l1, "int8 %g, float %g", l3, l1);
    tok[5] = 30;
    MR_CHECK(mr_eval_step(ctx, m, tok, 150, &l3) == MR_ERR_RANGE && isnan(l3));
    mr_ctx_free(ctx);
    mr_model_free(m);
}

int main(int argc, char **argv) {
    static const mr_test_case cases[] = {
        {"kernel", test_kernel}, {"activations", test_activations}, {"quantizer", test_quantizer},
        {"checkpoint", test_checkpoint}, {"refusals", test_refusals}, {"eval_step", test_eval_step},
    };
    mr_rng_seed(&rng, 4242);
    return mr_test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
