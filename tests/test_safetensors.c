/* safetensors export/import: an exact round trip with the documented header
   layout and tensor names, the F64/BF16/F16 conversions (mr__half_to_f32 on
   all 65536 halves), a refusal with a message for every kind of bad file
   that leaves the model untouched (missing/extra/duplicate tensors, dtypes,
   shapes, data_offsets, header length and JSON shape), every truncation,
   header byte flips and random header edits; and a round trip through
   tools/safetensors_roundtrip.py (numpy), skipped when /usr/bin/python3 has
   no numpy. MR_ST_PY=PYTHON picks the interpreter (then a missing numpy is a
   failure); MR_ST_PY=0 skips that test. MR_TEST_QUICK=1 (the sanitizer run)
   does fewer flips and edits. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"
#include <stdarg.h>

#define ST_DIR "build/"
#define ST_SCRIPT "tools/safetensors_roundtrip.py"

/* build/STEM.PID.safetensors: two runs at once (make test beside make sanitize)
   must not share files. */
static const char *st_path(char *out, size_t n, const char *stem) {
#if defined(_WIN32)
    long pid = 0;
#else
    long pid = (long)getpid();   /* <unistd.h>, included by minrnn.h */
#endif
    snprintf(out, n, "%s%s.%ld.safetensors", ST_DIR, stem, pid);
    return out;
}

static int st_quick(void) { const char *q = getenv("MR_TEST_QUICK"); return q && *q && *q != '0'; }
static int st_le(void) { const uint32_t one = 1; uint8_t b; memcpy(&b, &one, 1); return b == 1; }

/* V=11, d=8, conv 2, expansion 1.5 (so MinGRU/MinLSTM layers have w_out), FFN 12. */
static mr_model *st_model(const char *arch, int tie, uint64_t seed) {
    mr_model_cfg cfg = mr_model_defaults(11);
    mr_model *m = NULL;
    mr_rng r;
    cfg.dim = 8; cfg.n_layers = 1; cfg.ffn_hidden = 12; cfg.conv_kernel = 2; cfg.expansion = 1.5f;
    cfg.tie_embeddings = tie;
    if (mr_model_cfg_set_layers(&cfg, arch, NULL) != MR_OK || mr_model_new(&m, &cfg, NULL, NULL) != MR_OK) return NULL;
    if (seed) { mr_rng_seed(&r, seed); mr_model_init_weights(m, &r); }
    return m;
}
static float *st_snap(const mr_model *m) {
    float *s = (float *)malloc(sizeof(float) * m->ps->numel);
    memcpy(s, m->ps->data, sizeof(float) * m->ps->numel);
    return s;
}
static int st_same_snap(const mr_model *m, const float *s) { return !memcmp(m->ps->data, s, sizeof(float) * m->ps->numel); }
static int st_same_weights(const mr_model *a, const mr_model *b) {
    int i;
    if (a->ps->n != b->ps->n) return 0;
    for (i = 0; i < a->ps->n; i++) {
        const mr_tensor *x = a->ps->t[i], *y = b->ps->t[i];
        if (strcmp(x->name, y->name) || mr_tensor_numel(x) != mr_tensor_numel(y) ||
            memcmp(x->data, y->data, sizeof(float) * (size_t)mr_tensor_numel(x))) return 0;
    }
    return 1;
}
static uint64_t st_u64(const uint8_t *p) { uint64_t v = 0; int i; for (i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i); return v; }

/* ---- building safetensors files by hand ---- */
typedef struct st_sb { char *p; size_t n, cap; } st_sb;
static void st_put(st_sb *b, const void *s, size_t n) {
    if (b->n + n + 1 > b->cap) { b->cap = (b->n + n + 1) * 2; b->p = (char *)realloc(b->p, b->cap); }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void st_printf(st_sb *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    int k;
    va_start(ap, fmt);
    k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    st_put(b, tmp, (size_t)k);
}
/* One tensor of a handmade file. offs replaces the text "[begin,end]" of
   data_offsets, raw the whole value {dtype, shape, data_offsets}; the data
   bytes go into the data section in entry order either way. */
typedef struct st_ent {
    const char *name, *dtype;
    int ndim;
    int64_t shape[4];
    const uint8_t *data;
    size_t nbytes;
    const char *offs, *raw;
} st_ent;
/* u64 LE header length, header, data: a new malloc'd buffer of exactly *len bytes. */
static uint8_t *st_wrap(const char *hdr, size_t hlen, const uint8_t *data, size_t dlen, size_t *len) {
    uint8_t *b = (uint8_t *)malloc(8 + hlen + dlen + 1);
    int i;
    for (i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, hdr, hlen);
    if (dlen) memcpy(b + 8 + hlen, data, dlen);
    *len = 8 + hlen + dlen;
    return b;
}
/* meta: the value of __metadata__ (NULL: none); tail: text after the final '}'. */
static uint8_t *st_build(const st_ent *e, int n, const char *meta, const char *tail, size_t *len) {
    st_sb h = {0, 0, 0}, d = {0, 0, 0};
    uint8_t *out;
    int i, k, first = 1;
    st_put(&h, "{", 1);
    if (meta) { st_printf(&h, "\"__metadata__\":%s", meta); first = 0; }
    for (i = 0; i < n; i++) {
        st_printf(&h, "%s\"%s\":", first ? "" : ",", e[i].name);
        first = 0;
        if (e[i].raw) st_put(&h, e[i].raw, strlen(e[i].raw));
        else {
            st_printf(&h, "{\"dtype\":\"%s\",\"shape\":[", e[i].dtype);
            for (k = 0; k < e[i].ndim; k++) st_printf(&h, "%s%lld", k ? "," : "", (long long)e[i].shape[k]);
            if (e[i].offs) st_printf(&h, "],\"data_offsets\":%s}", e[i].offs);
            else st_printf(&h, "],\"data_offsets\":[%zu,%zu]}", d.n, d.n + e[i].nbytes);
        }
        if (e[i].nbytes) st_put(&d, e[i].data, e[i].nbytes);
    }
    st_put(&h, "}", 1);
    if (tail) st_put(&h, tail, strlen(tail));
    while ((h.n + 8) % 8) st_put(&h, " ", 1);
    out = st_wrap(h.p, h.n, (const uint8_t *)d.p, d.n, len);
    free(h.p);
    free(d.p);
    return out;
}
/* The model's tensors as F32 entries (a little-endian host). */
static int st_ents(const mr_model *m, st_ent *e) {
    int i, k;
    memset(e, 0, sizeof(st_ent) * (size_t)m->ps->n);
    for (i = 0; i < m->ps->n; i++) {
        const mr_tensor *t = m->ps->t[i];
        e[i].name = t->name;
        e[i].dtype = "F32";
        e[i].ndim = t->ndim;
        for (k = 0; k < t->ndim; k++) e[i].shape[k] = t->shape[k];
        e[i].data = (const uint8_t *)t->data;
        e[i].nbytes = sizeof(float) * (size_t)mr_tensor_numel(t);
    }
    return m->ps->n;
}
static size_t st_begin(const st_ent *e, int k) { size_t o = 0; int i; for (i = 0; i < k; i++) o += e[i].nbytes; return o; }

/* An import that must fail with MR_ERR_FORMAT and a message (containing
   needle, when given) and leave the weights as they were. */
static void st_refused(mr_model *m, const uint8_t *buf, size_t len, const char *what, const char *needle) {
    float *s = st_snap(m);
    uint8_t *cp = (uint8_t *)malloc(len ? len : 1);   /* exactly len bytes: ASan sees overreads */
    mr_error e;
    mr_status st;
    if (len) memcpy(cp, buf, len);
    memset(&e, 0, sizeof e);
    st = mr_safetensors_load_mem(m, cp, len, &e);
    MR_CHECK_MSG(st == MR_ERR_FORMAT && e.status == MR_ERR_FORMAT, "%s: status %d (%s)", what, (int)st, e.msg);
    MR_CHECK_MSG(e.msg[0], "%s: no message", what);
    if (needle) MR_CHECK_MSG(strstr(e.msg, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", what, e.msg, needle);
    MR_CHECK_MSG(st_same_snap(m, s), "%s: a refused import changed the weights", what);
    if (getenv("MR_TEST_VERBOSE")) printf("  %-34s -> %s\n", what, e.msg);
    free(cp);
    free(s);
}
static void st_refused_ents(mr_model *m, const st_ent *e, int n, const char *meta, const char *tail, const char *what, const char *needle) {
    size_t len;
    uint8_t *b = st_build(e, n, meta, tail, &len);
    st_refused(m, b, len, what, needle);
    free(b);
}

/* ---- exact round trip, header layout, names ---- */
static void test_roundtrip(void) {
    mr_model *m = st_model("mingru,minlstm,gru", 0, 7), *m2 = st_model("mingru,minlstm,gru", 0, 0), *t1;
    uint8_t *buf = NULL, *buf2 = NULL, *fbuf = NULL;
    size_t len, len2, flen, i, j, off = 0, pos = 0;
    uint64_t hlen;
    char *hdr;
    mr_error e;
    char path[256];
    /* the shapes of docs/FORMAT.md "Tensor names" (V=11, d=8, di=12, H=12, K=2) */
    static const char *const want[] = {
        "\"embedding\":{\"dtype\":\"F32\",\"shape\":[11,8],",
        "\"layers.0.norm1\":{\"dtype\":\"F32\",\"shape\":[8],",
        "\"layers.0.conv.weight\":{\"dtype\":\"F32\",\"shape\":[8,2],",
        "\"layers.0.conv.bias\":{\"dtype\":\"F32\",\"shape\":[8],",
        "\"layers.0.conv.pointwise\":{\"dtype\":\"F32\",\"shape\":[8,8],",
        "\"layers.0.mixer.w_in\":{\"dtype\":\"F32\",\"shape\":[24,8],",
        "\"layers.0.mixer.w_out\":{\"dtype\":\"F32\",\"shape\":[8,12],",
        "\"layers.0.norm2\":{\"dtype\":\"F32\",\"shape\":[8],",
        "\"layers.0.ffn.w13\":{\"dtype\":\"F32\",\"shape\":[24,8],",
        "\"layers.0.ffn.w2\":{\"dtype\":\"F32\",\"shape\":[8,12],",
        "\"layers.1.mixer.w_in\":{\"dtype\":\"F32\",\"shape\":[36,8],",
        "\"layers.1.mixer.w_out\":{\"dtype\":\"F32\",\"shape\":[8,12],",
        "\"layers.2.gru.w_x\":{\"dtype\":\"F32\",\"shape\":[24,8],",
        "\"layers.2.gru.b_x\":{\"dtype\":\"F32\",\"shape\":[24],",
        "\"layers.2.gru.w_h\":{\"dtype\":\"F32\",\"shape\":[24,8],",
        "\"layers.2.gru.b_hn\":{\"dtype\":\"F32\",\"shape\":[8],",
        "\"norm_f\":{\"dtype\":\"F32\",\"shape\":[8],",
        "\"head\":{\"dtype\":\"F32\",\"shape\":[11,8],"};
    MR_CHECK(m && m2);
    if (!m || !m2) return;
    for (i = 0; i < m2->ps->numel; i++) MR_CHECK(m2->ps->data[i] == 0.f);
    MR_CHECK(mr_safetensors_save_mem(m, &buf, &len, &e) == MR_OK);
    MR_CHECK(mr_safetensors_load_mem(m2, buf, len, &e) == MR_OK);
    MR_CHECK_MSG(st_same_weights(m, m2), "the imported weights differ");
    MR_CHECK(mr_safetensors_save_mem(m2, &buf2, &len2, &e) == MR_OK);
    MR_CHECK_MSG(len2 == len && !memcmp(buf, buf2, len), "the second export differs from the first");
    /* layout: u64 LE length, JSON object padded with spaces, data 8-byte aligned and contiguous */
    MR_CHECK(len >= 8);
    hlen = st_u64(buf);
    MR_CHECK_MSG(hlen <= len - 8 && (8 + hlen) % 8 == 0, "header length %llu", (unsigned long long)hlen);
    hdr = (char *)malloc((size_t)hlen + 1);
    memcpy(hdr, buf + 8, (size_t)hlen);
    hdr[hlen] = 0;
    MR_CHECK(strlen(hdr) == hlen && hdr[0] == '{');
    for (i = (size_t)hlen; i > 0 && hdr[i - 1] == ' '; i--) {}
    MR_CHECK_MSG(i > 0 && hdr[i - 1] == '}' && hlen - i < 8, "the header ends with %zu spaces", (size_t)hlen - i);
    MR_CHECK(!strncmp(hdr, "{\"__metadata__\":{\"format\":\"pt\",", strlen("{\"__metadata__\":{\"format\":\"pt\",")));
    for (j = 0; j < sizeof want / sizeof want[0]; j++) MR_CHECK_MSG(strstr(hdr, want[j]) != NULL, "header lacks %s", want[j]);
    for (j = 0; j < (size_t)m->ps->n; j++) {   /* every tensor in order, offsets contiguous, data exact */
        const mr_tensor *t = m->ps->t[j];
        size_t nb = sizeof(float) * (size_t)mr_tensor_numel(t);
        st_sb s = {0, 0, 0};
        const char *at;
        int d;
        st_printf(&s, "\"%s\":{\"dtype\":\"F32\",\"shape\":[", t->name);
        for (d = 0; d < t->ndim; d++) st_printf(&s, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        st_printf(&s, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        at = strstr(hdr, s.p);
        MR_CHECK_MSG(at && (size_t)(at - hdr) >= pos, "entry %s missing or out of order", s.p);
        if (at) pos = (size_t)(at - hdr);
        MR_CHECK_MSG(8 + hlen + off + nb <= len && !memcmp(buf + 8 + hlen + off, t->data, nb), "data of %s", t->name);
        off += nb;
        free(s.p);
    }
    MR_CHECK_MSG(8 + hlen + off == len, "the data ends at %zu, the file at %zu", (size_t)(8 + hlen + off), len);
    free(hdr);
    /* a tied model has no "head" */
    t1 = st_model("mingru", 1, 3);
    mr_buffer_free(buf2);
    buf2 = NULL;
    MR_CHECK(t1 && mr_safetensors_save_mem(t1, &buf2, &len2, &e) == MR_OK);
    if (buf2) {
        char *h = (char *)malloc((size_t)st_u64(buf2) + 1);
        memcpy(h, buf2 + 8, (size_t)st_u64(buf2));
        h[st_u64(buf2)] = 0;
        MR_CHECK(!strstr(h, "\"head\"") && strstr(h, "\"embedding\""));
        free(h);
    }
    mr_buffer_free(buf2);
    mr_model_free(t1);
    /* the file functions */
    memset(m2->ps->data, 0, sizeof(float) * m2->ps->numel);
    st_path(path, sizeof path, "test_safetensors");
    MR_CHECK_MSG(mr_safetensors_save(m, path, &e) == MR_OK, "%s", e.msg);
    MR_CHECK(mr_read_file(path, &fbuf, &flen, (size_t)1 << 30, NULL, &e) == MR_OK);
    MR_CHECK(fbuf && flen == len && !memcmp(fbuf, buf, len));
    mr_buffer_free(fbuf);
    MR_CHECK(mr_safetensors_load(m2, path, &e) == MR_OK && st_same_weights(m, m2));
    remove(path);
    MR_CHECK(mr_safetensors_save(m, "/nonexistent-dir/x.safetensors", &e) == MR_ERR_IO && e.msg[0]);
    MR_CHECK(mr_safetensors_load(m2, "/nonexistent-dir/x.safetensors", &e) == MR_ERR_IO && e.msg[0]);
    /* NULL arguments */
    MR_CHECK(mr_safetensors_save_mem(NULL, &buf2, &len2, &e) == MR_ERR_ARG);
    MR_CHECK(mr_safetensors_save_mem(m, NULL, &len2, &e) == MR_ERR_ARG);
    MR_CHECK(mr_safetensors_load_mem(NULL, buf, len, &e) == MR_ERR_ARG);
    MR_CHECK(mr_safetensors_load_mem(m2, NULL, 8, &e) == MR_ERR_ARG);
    st_refused(m2, NULL, 0, "empty file", "8-byte");
    MR_CHECK(st_same_weights(m, m2));
    mr_buffer_free(buf);
    mr_model_free(m);
    mr_model_free(m2);
}

/* ---- dtype conversions ---- */
/* IEEE half -> double from its definition, independently of the library. */
static double st_half_ref(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, f = h & 1023;
    double v;
    if (e == 31) v = f ? NAN : INFINITY;
    else if (e == 0) v = ldexp((double)f, -24);
    else v = ldexp(1024.0 + f, e - 25);
    return s ? -v : v;
}
static int st_same_float(float got, double want) {   /* bitwise (so -0 != +0); NaN: any NaN of the same sign */
    float w = (float)want;
    if (want != want) return got != got && !signbit(got) == !signbit(want);
    return !memcmp(&got, &w, 4);
}
static void test_half_to_f32(void) {
    static const struct { uint16_t h; double v; } cases[] = {
        {0x0001, 5.9604644775390625e-08}, {0x03ff, 6.0975551605224609e-05}, {0x0400, 6.103515625e-05},
        {0x3c00, 1.0}, {0xc000, -2.0}, {0x7bff, 65504.0}, {0x3555, 0.333251953125}, {0x8001, -5.9604644775390625e-08},
        {0x0000, 0.0}};
    size_t i;
    uint32_t u;
    float f;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        MR_CHECK_MSG(mr__half_to_f32(cases[i].h) == (float)cases[i].v && (signbit(mr__half_to_f32(cases[i].h)) != 0) == ((cases[i].h >> 15) != 0),
                     "half 0x%04x -> %.9g, want %.9g", cases[i].h, (double)mr__half_to_f32(cases[i].h), cases[i].v);
    MR_CHECK(mr__half_to_f32(0x0001) == ldexpf(1.f, -24) && mr__half_to_f32(0x0400) == ldexpf(1.f, -14));
    f = mr__half_to_f32(0x7c00); MR_CHECK(isinf(f) && f > 0);
    f = mr__half_to_f32(0xfc00); MR_CHECK(isinf(f) && f < 0);
    f = mr__half_to_f32(0x8000); memcpy(&u, &f, 4); MR_CHECK_MSG(u == 0x80000000u, "-0 -> 0x%08x", u);
    f = mr__half_to_f32(0x7e00); MR_CHECK(f != f);
    f = mr__half_to_f32(0x7c01); MR_CHECK(f != f);   /* signalling NaN stays a NaN, not inf */
    f = mr__half_to_f32(0xfe00); MR_CHECK(f != f && signbit(f));
    for (u = 0; u < 65536; u++)
        if (!st_same_float(mr__half_to_f32((uint16_t)u), st_half_ref((uint16_t)u))) {
            MR_CHECK_MSG(0, "half 0x%04x -> %.9g, want %.9g", u, (double)mr__half_to_f32((uint16_t)u), st_half_ref((uint16_t)u));
            break;
        }
}

static void test_dtypes(void) {
    static const uint16_t special[] = {0x0001, 0x03ff, 0x0400, 0x3c00, 0xc000, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0x0000, 0x7e00, 0x8001, 0x83ff, 0xfbff};
    mr_model *src = st_model("mingru,minlstm,gru", 0, 11), *dst = st_model("mingru,minlstm,gru", 0, 12);
    st_ent e[MR__MAX_PARAMS];
    uint8_t *bytes[MR__MAX_PARAMS], *buf;
    float *want[MR__MAX_PARAMS];
    int n, i, kinds[4] = {0, 0, 0, 0};
    size_t len, k;
    mr_error er;
    uint32_t x = 12345;
    if (!st_le()) MR_SKIP("big-endian host: the handmade files assume little-endian floats");
    MR_CHECK(src && dst);
    if (!src || !dst) return;
    n = st_ents(src, e);
    /* tensor i: F32, F64, BF16, F16 in turn; want[i] the floats the import must give */
    for (i = 0; i < n; i++) {
        const mr_tensor *t = src->ps->t[i];
        size_t cnt = (size_t)mr_tensor_numel(t);
        int kind = i % 4;
        bytes[i] = (uint8_t *)malloc(cnt * 8);
        want[i] = (float *)malloc(cnt * 4);
        kinds[kind]++;
        for (k = 0; k < cnt; k++) {
            float w = t->data[k];
            uint32_t wb;
            x = x * 1664525u + 1013904223u;
            memcpy(&wb, &w, 4);
            if (kind == 0) { memcpy(bytes[i] + 4 * k, &w, 4); want[i][k] = w; }
            else if (kind == 1) {   /* a float as a double (exact); every 3rd not a float: rounded */
                double d = (double)w;
                if (k % 3 == 2) d += ldexp((double)w, -30);
                if (k == 1 && i == 1) d = 1e300;
                if (k == 4 && i == 1) d = -1e-300;
                memcpy(bytes[i] + 8 * k, &d, 8);
                want[i][k] = (float)d;
            } else if (kind == 2) {   /* bf16: the top half of a float (random bits every 5th), exact */
                uint16_t h = (uint16_t)(k % 5 == 4 ? x >> 16 : wb >> 16);
                uint32_t v = (uint32_t)h << 16;
                bytes[i][2 * k] = (uint8_t)h; bytes[i][2 * k + 1] = (uint8_t)(h >> 8);
                memcpy(&want[i][k], &v, 4);
            } else {   /* f16: the special values, then random halves */
                uint16_t h = (uint16_t)(k < sizeof special / sizeof special[0] ? special[k] : x >> 16);
                bytes[i][2 * k] = (uint8_t)h; bytes[i][2 * k + 1] = (uint8_t)(h >> 8);
                want[i][k] = (float)st_half_ref(h);
            }
        }
        e[i].dtype = kind == 0 ? "F32" : kind == 1 ? "F64" : kind == 2 ? "BF16" : "F16";
        e[i].data = bytes[i];
        e[i].nbytes = cnt * (kind == 0 ? 4 : kind == 1 ? 8 : 2);
    }
    MR_CHECK(kinds[0] && kinds[1] && kinds[2] && kinds[3]);
    buf = st_build(e, n, "{\"format\":\"pt\"}", NULL, &len);
    MR_CHECK_MSG(mr_safetensors_load_mem(dst, buf, len, &er) == MR_OK, "%s", er.msg);
    for (i = 0; i < n; i++) {
        const mr_tensor *t = dst->ps->t[i];
        for (k = 0; k < (size_t)mr_tensor_numel(t); k++) {
            float w = want[i][k];
            if (!(w != w ? t->data[k] != t->data[k] && !signbit(t->data[k]) == !signbit(w) : !memcmp(&t->data[k], &w, 4))) {
                MR_CHECK_MSG(0, "%s (%s) [%zu]: %.9g, want %.9g", t->name, e[i].dtype, k, (double)t->data[k], (double)w);
                break;
            }
        }
    }
    MR_CHECK(isinf(dst->ps->t[1]->data[1]) && dst->ps->t[1]->data[1] > 0);
    MR_CHECK(dst->ps->t[1]->data[4] == 0.f && signbit(dst->ps->t[1]->data[4]));
    free(buf);
    /* all F64, all BF16-representable: exact copies of src */
    for (i = 0; i < n; i++) {
        const mr_tensor *t = src->ps->t[i];
        for (k = 0; k < (size_t)mr_tensor_numel(t); k++) { double d = t->data[k]; memcpy(bytes[i] + 8 * k, &d, 8); }
        e[i].dtype = "F64";
        e[i].nbytes = 8 * (size_t)mr_tensor_numel(t);
    }
    memset(dst->ps->data, 0, sizeof(float) * dst->ps->numel);
    buf = st_build(e, n, NULL, NULL, &len);
    MR_CHECK(mr_safetensors_load_mem(dst, buf, len, &er) == MR_OK && st_same_weights(src, dst));
    free(buf);
    for (i = 0; i < n; i++) {
        mr_tensor *t = src->ps->t[i];
        for (k = 0; k < (size_t)mr_tensor_numel(t); k++) {
            uint32_t u;
            memcpy(&u, &t->data[k], 4);
            u &= 0xffff0000u;
            memcpy(&t->data[k], &u, 4);   /* src now holds bf16 values */
            bytes[i][2 * k] = (uint8_t)(u >> 16); bytes[i][2 * k + 1] = (uint8_t)(u >> 24);
        }
        e[i].dtype = "BF16";
        e[i].nbytes = 2 * (size_t)mr_tensor_numel(t);
    }
    memset(dst->ps->data, 0, sizeof(float) * dst->ps->numel);
    buf = st_build(e, n, NULL, NULL, &len);
    MR_CHECK(mr_safetensors_load_mem(dst, buf, len, &er) == MR_OK && st_same_weights(src, dst));
    free(buf);
    for (i = 0; i < n; i++) { free(bytes[i]); free(want[i]); }
    mr_model_free(src);
    mr_model_free(dst);
}

/* ---- refusals ---- */
static void test_refusals(void) {
    mr_model *src = st_model("mingru,minlstm,gru", 0, 21), *dst = st_model("mingru,minlstm,gru", 0, 22), *tied;
    st_ent e[MR__MAX_PARAMS + 2], sv;
    int n, last, mid, big, nf;
    size_t len, b, en;
    uint8_t *buf, *b2;
    char offs[128], raw[256];
    uint64_t hlen;
    static const float one = 1.f;
    mr_error er;
    mr_rng rng;
    if (!st_le()) MR_SKIP("big-endian host: the handmade files assume little-endian floats");
    MR_CHECK(src && dst);
    if (!src || !dst) return;
    n = st_ents(src, e);
    last = n - 1;        /* head [11, 8]; the failing entry comes after valid ones: nothing may be written before it */
    mid = n / 2;
    big = 0;             /* embedding [11, 8] */
    nf = mr__params_index(src->ps, "norm_f");   /* [8] */
    MR_CHECK(!strcmp(e[last].name, "head") && e[last].ndim == 2 && e[last].shape[0] == 11 && e[last].shape[1] == 8);
    MR_CHECK(nf > 0 && e[nf].ndim == 1 && e[nf].shape[0] == 8);
    /* the handmade file of src's tensors loads (the baseline of every case below) */
    buf = st_build(e, n, "{\"a\":\"b\"}", NULL, &len);
    tied = st_model("mingru,minlstm,gru", 0, 0);
    MR_CHECK(mr_safetensors_load_mem(tied, buf, len, &er) == MR_OK && st_same_weights(src, tied));
    mr_model_free(tied);
    free(buf);

    /* missing, unknown, duplicated tensors */
    st_refused_ents(dst, e, n - 1, NULL, NULL, "missing last tensor", e[last].name);
    sv = e[mid]; e[mid] = e[last];
    st_refused_ents(dst, e, n - 1, NULL, NULL, "missing middle tensor", sv.name);
    e[mid] = sv;
    memset(&e[n], 0, sizeof e[n]);
    e[n].name = "bogus"; e[n].dtype = "F32"; e[n].ndim = 1; e[n].shape[0] = 1; e[n].data = (const uint8_t *)&one; e[n].nbytes = 4;
    st_refused_ents(dst, e, n + 1, NULL, NULL, "extra unknown tensor", "bogus");
    e[n].name = "layers.3.norm1";
    st_refused_ents(dst, e, n + 1, NULL, NULL, "tensor of a 4th layer", "layers.3.norm1");
    e[n].name = "Embedding";
    st_refused_ents(dst, e, n + 1, NULL, NULL, "name in the wrong case", "Embedding");
    e[n] = e[mid];
    st_refused_ents(dst, e, n + 1, NULL, NULL, "duplicate tensor key", "twice");
    e[n] = e[0];
    st_refused_ents(dst, e, n + 1, NULL, NULL, "duplicate first tensor", e[0].name);
    tied = st_model("mingru,minlstm,gru", 1, 5);
    st_refused_ents(tied, e, n, NULL, NULL, "untied file into a tied model", "head");
    mr_model_free(tied);
    tied = st_model("mingru,minlstm,gru", 1, 5);
    MR_CHECK(mr_safetensors_save_mem(tied, &buf, &len, &er) == MR_OK);
    st_refused(dst, buf, len, "tied file into an untied model", "head");
    mr_buffer_free(buf);
    mr_model_free(tied);
    tied = st_model("gru,minlstm,mingru", 0, 5);
    MR_CHECK(mr_safetensors_save_mem(tied, &buf, &len, &er) == MR_OK);
    st_refused(dst, buf, len, "file of other mixers", NULL);
    mr_buffer_free(buf);
    mr_model_free(tied);
    {   /* names the library cannot hold or match: too long, empty, with a NUL */
        char longname[200];
        memset(longname, 'a', sizeof longname - 1);
        longname[sizeof longname - 1] = 0;
        e[n] = e[mid]; e[n].name = longname;
        st_refused_ents(dst, e, n + 1, NULL, NULL, "200-byte name", NULL);
        e[n].name = "";
        st_refused_ents(dst, e, n + 1, NULL, NULL, "empty name", "name");
        e[n].name = "norm_f\\u0000";
        st_refused_ents(dst, e, n + 1, NULL, NULL, "name with a NUL", NULL);
        sv = e[0]; e[0].name = "";   /* the first key, before any string is pooled */
        st_refused_ents(dst, e, n, NULL, NULL, "empty first name", "name");
        e[0] = sv;
    }

    /* dtypes */
    e[last].dtype = "I32";
    st_refused_ents(dst, e, n, NULL, NULL, "unknown dtype I32", "dtype");
    e[last].dtype = "f32";
    st_refused_ents(dst, e, n, NULL, NULL, "lower-case dtype", "dtype");
    e[last].dtype = "F8_E4M3";
    st_refused_ents(dst, e, n, NULL, NULL, "dtype F8_E4M3", "dtype");
    e[last].dtype = "F16";   /* a known dtype whose size disagrees with the data */
    st_refused_ents(dst, e, n, NULL, NULL, "F16 dtype over F32 data", NULL);
    e[last].dtype = "F32";
    sv = e[mid];
    e[mid].raw = "{\"dtype\":32,\"shape\":[8],\"data_offsets\":[0,32]}";
    st_refused_ents(dst, e, n, NULL, NULL, "dtype not a string", "dtype");
    e[mid] = sv;

    /* shapes */
    sv = e[big];
    e[big].ndim = 1; e[big].shape[0] = 88;
    st_refused_ents(dst, e, n, NULL, NULL, "wrong rank (flattened)", "dims");
    e[big].ndim = 3; e[big].shape[0] = 11; e[big].shape[1] = 8; e[big].shape[2] = 1;
    st_refused_ents(dst, e, n, NULL, NULL, "wrong rank (extra 1)", "dims");
    e[big].ndim = 2; e[big].shape[0] = 8; e[big].shape[1] = 11;
    st_refused_ents(dst, e, n, NULL, NULL, "transposed shape", "shape");
    e[big].shape[0] = 12; e[big].shape[1] = 8; e[big].nbytes = 4 * 96;   /* wrong dim, data to match */
    {
        float *more = (float *)calloc(96, sizeof(float));
        e[big].data = (const uint8_t *)more;
        st_refused_ents(dst, e, n, NULL, NULL, "wrong dim", "shape");
        free(more);
    }
    e[big] = sv;
    sv = e[last];   /* norm_f or head: fix their shapes by hand */
    snprintf(raw, sizeof raw, "{\"dtype\":\"F32\",\"shape\":[11.0,8],\"data_offsets\":[%zu,%zu]}", st_begin(e, last), st_begin(e, last) + e[last].nbytes);
    e[last].raw = raw;
    st_refused_ents(dst, e, n, NULL, NULL, "non-integer dim", "shape");
    snprintf(raw, sizeof raw, "{\"dtype\":\"F32\",\"shape\":[-11,-8],\"data_offsets\":[%zu,%zu]}", st_begin(e, last), st_begin(e, last) + e[last].nbytes);
    st_refused_ents(dst, e, n, NULL, NULL, "negative dims", "shape");
    snprintf(raw, sizeof raw, "{\"dtype\":\"F32\",\"shape\":\"11,8\",\"data_offsets\":[%zu,%zu]}", st_begin(e, last), st_begin(e, last) + e[last].nbytes);
    st_refused_ents(dst, e, n, NULL, NULL, "shape not an array", NULL);
    snprintf(raw, sizeof raw, "{\"dtype\":\"F32\",\"shape\":[11,\"8\"],\"data_offsets\":[%zu,%zu]}", st_begin(e, last), st_begin(e, last) + e[last].nbytes);
    st_refused_ents(dst, e, n, NULL, NULL, "dim a string", "shape");
    snprintf(raw, sizeof raw, "{\"dtype\":\"F32\",\"shape\":[11,18446744073709551624],\"data_offsets\":[%zu,%zu]}", st_begin(e, last), st_begin(e, last) + e[last].nbytes);
    st_refused_ents(dst, e, n, NULL, NULL, "dim past 2^64", "shape");
    e[last] = sv;

    /* data_offsets, of the last tensor (b = its begin, en = its end = the data size) */
    b = st_begin(e, last);
    en = b + e[last].nbytes;
    e[last].offs = offs;
    snprintf(offs, sizeof offs, "[%zu,%zu]", b + 4, en + 4);
    st_refused_ents(dst, e, n, NULL, NULL, "offsets past the end", "outside");
    snprintf(offs, sizeof offs, "[%zu,%zu]", b, (size_t)1 << 40);
    st_refused_ents(dst, e, n, NULL, NULL, "offset 2^40", NULL);
    snprintf(offs, sizeof offs, "[%zu,%zu]", en, b);
    st_refused_ents(dst, e, n, NULL, NULL, "reversed offsets", NULL);
    snprintf(offs, sizeof offs, "[%zu,%zu]", b, en - 4);
    st_refused_ents(dst, e, n, NULL, NULL, "one float short", "size");
    snprintf(offs, sizeof offs, "[%zu,%zu]", b + 4, en);
    st_refused_ents(dst, e, n, NULL, NULL, "begin one float late", NULL);
    snprintf(offs, sizeof offs, "[%zu,%zu]", b, en + 4);
    st_refused_ents(dst, e, n, NULL, NULL, "one float long", NULL);
    snprintf(offs, sizeof offs, "[-4,%zu]", en - b - 4);
    st_refused_ents(dst, e, n, NULL, NULL, "negative begin", "data_offsets");
    snprintf(offs, sizeof offs, "[%zu,-%zu]", b, en);
    st_refused_ents(dst, e, n, NULL, NULL, "negative end", "data_offsets");
    snprintf(offs, sizeof offs, "[%zu.0,%zu]", b, en);
    st_refused_ents(dst, e, n, NULL, NULL, "non-integer begin", "data_offsets");
    snprintf(offs, sizeof offs, "[%zu,%zue0]", b, en);
    st_refused_ents(dst, e, n, NULL, NULL, "exponent end", "data_offsets");
    snprintf(offs, sizeof offs, "[\"%zu\",\"%zu\"]", b, en);
    st_refused_ents(dst, e, n, NULL, NULL, "string offsets", "data_offsets");
    snprintf(offs, sizeof offs, "[%zu]", b);
    st_refused_ents(dst, e, n, NULL, NULL, "one offset", "data_offsets");
    snprintf(offs, sizeof offs, "[%zu,%zu,%zu]", b, en, en);
    st_refused_ents(dst, e, n, NULL, NULL, "three offsets", "data_offsets");
    snprintf(offs, sizeof offs, "{\"begin\":%zu,\"end\":%zu}", b, en);
    st_refused_ents(dst, e, n, NULL, NULL, "offsets an object", "data_offsets");
    snprintf(offs, sizeof offs, "[18446744073709551615,%zu]", en);
    st_refused_ents(dst, e, n, NULL, NULL, "begin 2^64-1", "data_offsets");
    snprintf(offs, sizeof offs, "[9223372036854775807,%zu]", en);
    st_refused_ents(dst, e, n, NULL, NULL, "begin 2^63-1", NULL);
    snprintf(offs, sizeof offs, "[%zu,9223372036854775807]", b);
    st_refused_ents(dst, e, n, NULL, NULL, "end 2^63-1", NULL);
    snprintf(offs, sizeof offs, "[-9223372036854775808,%zu]", en);
    st_refused_ents(dst, e, n, NULL, NULL, "begin -2^63", "data_offsets");
    snprintf(offs, sizeof offs, "null");
    st_refused_ents(dst, e, n, NULL, NULL, "null offsets", "data_offsets");
    e[last].offs = NULL;
    {   /* the tensors must tile the data: no bytes after them, no gap, no overlap */
        size_t nb = st_begin(e, nf);
        buf = st_build(e, n, NULL, NULL, &len);
        b2 = (uint8_t *)malloc(len + 4);
        memcpy(b2, buf, len);
        memset(b2 + len, 0, 4);
        st_refused(dst, b2, len + 4, "4 bytes after the last tensor", "bytes");
        free(b2);
        free(buf);
        e[last].offs = offs;
        snprintf(offs, sizeof offs, "[%zu,%zu]", b + 4, en + 4);
        buf = st_build(e, n, NULL, NULL, &len);
        b2 = (uint8_t *)malloc(len + 4);
        memcpy(b2, buf, len);
        memset(b2 + len, 0, 4);
        st_refused(dst, b2, len + 4, "4-byte gap before the last tensor", "bytes");
        free(b2);
        free(buf);
        e[last].offs = NULL;
        e[nf].offs = offs;   /* norm_f reads layers.0.norm1's bytes; its own are a gap */
        snprintf(offs, sizeof offs, "[%zu,%zu]", st_begin(e, 1), st_begin(e, 1) + 32);
        MR_CHECK(e[1].nbytes == 32 && nb != st_begin(e, 1));
        st_refused_ents(dst, e, n, NULL, NULL, "two tensors on the same bytes", "overlap");
        e[nf].offs = NULL;
    }
    {   /* entries in any order (here reversed, data too) load */
        st_ent *rev = (st_ent *)malloc(sizeof(st_ent) * (size_t)n);
        int i;
        for (i = 0; i < n; i++) rev[i] = e[n - 1 - i];
        buf = st_build(rev, n, NULL, NULL, &len);
        memset(dst->ps->data, 0, sizeof(float) * dst->ps->numel);
        MR_CHECK(mr_safetensors_load_mem(dst, buf, len, &er) == MR_OK && st_same_weights(src, dst));
        free(buf);
        free(rev);
        mr_rng_seed(&rng, 22);
        mr_model_init_weights(dst, &rng);
    }

    /* tensor entries that are not objects or lack keys */
    sv = e[last];
    e[last].raw = "[\"F32\",[8],[0,32]]";
    st_refused_ents(dst, e, n, NULL, NULL, "entry an array", "not an object");
    e[last].raw = "\"F32\"";
    st_refused_ents(dst, e, n, NULL, NULL, "entry a string", "not an object");
    e[last].raw = "null";
    st_refused_ents(dst, e, n, NULL, NULL, "entry null", "not an object");
    e[last] = sv;
    sv = e[nf];
    snprintf(raw, sizeof raw, "{\"shape\":[8],\"data_offsets\":[%zu,%zu]}", st_begin(e, nf), st_begin(e, nf) + 32);
    e[nf].raw = raw;
    st_refused_ents(dst, e, n, NULL, NULL, "missing dtype key", "lacks");
    snprintf(raw, sizeof raw, "{\"dtype\":\"F32\",\"data_offsets\":[%zu,%zu]}", st_begin(e, nf), st_begin(e, nf) + 32);
    st_refused_ents(dst, e, n, NULL, NULL, "missing shape key", "lacks");
    e[nf] = sv;
    sv = e[mid];
    e[mid].raw = "{}";
    st_refused_ents(dst, e, n, NULL, NULL, "empty entry", "lacks");
    e[mid].raw = "{\"dtype\":\"F32\",\"shape\":[8]}";
    st_refused_ents(dst, e, n, NULL, NULL, "missing data_offsets key", "lacks");
    e[mid] = sv;
    {   /* a duplicated key inside an entry */
        int k = nf;
        size_t nb = st_begin(e, k);
        sv = e[k];
        snprintf(raw, sizeof raw, "{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[%zu,%zu]}", nb, nb + 32);
        e[k].raw = raw;
        st_refused_ents(dst, e, n, NULL, NULL, "dtype key twice", "twice");
        snprintf(raw, sizeof raw, "{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[%zu,%zu],\"shape\":[8]}", nb, nb + 32);
        st_refused_ents(dst, e, n, NULL, NULL, "shape key twice", "twice");
        e[k] = sv;
    }

    /* the header: metadata, JSON shape, trailing text, length */
    st_refused_ents(dst, e, n, "\"x\"", NULL, "__metadata__ a string", "__metadata__");
    st_refused_ents(dst, e, n, "[]", NULL, "__metadata__ an array", "__metadata__");
    st_refused_ents(dst, e, n, "null", NULL, "__metadata__ null", "__metadata__");
    st_refused_ents(dst, e, n, NULL, " x", "trailing garbage", "trailing");
    st_refused_ents(dst, e, n, NULL, "}", "trailing brace", "trailing");
    st_refused_ents(dst, e, n, NULL, "{}", "two objects", "trailing");
    buf = st_build(e, n, NULL, "\n\t\r", &len);   /* trailing whitespace is fine: it loads */
    memset(dst->ps->data, 0, sizeof(float) * dst->ps->numel);
    MR_CHECK(mr_safetensors_load_mem(dst, buf, len, &er) == MR_OK && st_same_weights(src, dst));
    free(buf);
    mr_rng_seed(&rng, 22);
    mr_model_init_weights(dst, &rng);
    {
        static const char *const hdrs[] = {"[]", "\"x\"", "123", "null", "true", "", "        ", "{", "{\"a\"", "{\"a\":}", "{,}", "[{}]",
                                           "{\"\":{}}", "{\"\":1}", "{\"a\":1,}", "{\"norm_f\":{\"dtype\":\"F32\"}", "\xef\xbb\xbf{}"};
        static const char *const what[] = {"header an array", "header a string", "header a number", "header null",
                                           "header true", "empty header", "blank header", "unclosed header",
                                           "key without value", "missing value", "lone comma", "object in an array",
                                           "only an empty key (no string pooled)", "empty key, number", "trailing comma",
                                           "unclosed entry", "byte-order mark"};
        size_t i;
        char *deep = (char *)malloc(100001);
        memset(deep, '[', 100000);
        deep[100000] = 0;
        memcpy(deep, "{\"a\":", 5);   /* must not recurse 100000 deep */
        buf = st_wrap(deep, 100000, NULL, 0, &len);
        st_refused(dst, buf, len, "100000 nested arrays", NULL);
        free(buf);
        free(deep);
        for (i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
            buf = st_wrap(hdrs[i], strlen(hdrs[i]), NULL, 0, &len);
            st_refused(dst, buf, len, what[i], i < 5 ? "not an object" : NULL);
            free(buf);
        }
    }
    buf = st_build(e, n, NULL, NULL, &len);
    hlen = st_u64(buf);
    b2 = (uint8_t *)malloc(len);
    {
        static const uint64_t deltas[] = {1, 8, 4096};
        size_t i;
        int k;
        for (i = 0; i < 3; i++) {   /* the length larger than the file */
            uint64_t h = (uint64_t)(len - 8) + deltas[i];
            memcpy(b2, buf, len);
            for (k = 0; k < 8; k++) b2[k] = (uint8_t)(h >> (8 * k));
            st_refused(dst, b2, len, "header length past the file", "exceeds");
        }
        memcpy(b2, buf, len);
        memset(b2, 0xff, 8);
        st_refused(dst, b2, len, "header length 2^64-1", "exceeds");
        memcpy(b2, buf, len);
        b2[7] = 0x80;
        st_refused(dst, b2, len, "header length 2^63+", "exceeds");
        memcpy(b2, buf, len);
        for (k = 0; k < 8; k++) b2[k] = (uint8_t)((hlen - 1) >> (8 * k));   /* one byte short: the data shifts by one */
        st_refused(dst, b2, len, "header length one short", NULL);
        memcpy(b2, buf, len);
        for (k = 0; k < 8; k++) b2[k] = (uint8_t)((hlen + 4) >> (8 * k));
        st_refused(dst, b2, len, "header length four long", NULL);
    }
    free(b2);
    /* the header may end (after its padding) with whitespace other than spaces, and
       carry its metadata anywhere: it still loads */
    MR_CHECK(mr_safetensors_load_mem(dst, buf, len, &er) == MR_OK && st_same_weights(src, dst));
    free(buf);
    mr_model_free(src);
    mr_model_free(dst);
}

/* ---- truncations, flips, random header edits ---- */
static void test_truncation_and_flips(void) {
    mr_model *src = st_model("mingru,gru", 0, 31), *dst = st_model("mingru,gru", 0, 32);
    uint8_t *buf, *cp;
    size_t len, i, hend;
    float *s0;
    long oks = 0, errs = 0, bad_msg = 0, touched = 0, wrong = 0, it, iters;
    int m;
    mr_error er;
    static const uint8_t masks[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x5a, 0xff};
    static const char alphabet[] = "{}[],:\"\\ 0123456789-+.eEaFBI_ \x00\x80\xff";
    uint32_t x = 777;
    MR_CHECK(src && dst);
    if (!src || !dst) return;
    MR_CHECK(mr_safetensors_save_mem(src, &buf, &len, &er) == MR_OK);
    hend = 8 + (size_t)st_u64(buf);
    cp = (uint8_t *)malloc(len);
    s0 = st_snap(dst);
    for (i = 0; i < len; i++) {   /* every truncation; the prefix ends where the allocation ends */
        memcpy(cp + len - i, buf, i);
        memset(&er, 0, sizeof er);
        if (mr_safetensors_load_mem(dst, cp + len - i, i, &er) == MR_OK) oks++;
        else { errs++; if (!er.msg[0] || er.status != MR_ERR_FORMAT) bad_msg++; }
        if (!st_same_snap(dst, s0)) { touched++; memcpy(dst->ps->data, s0, sizeof(float) * dst->ps->numel); }
    }
    MR_CHECK_MSG(oks == 0 && errs == (long)len, "%ld of %zu truncations loaded", oks, len);
    MR_CHECK_MSG(bad_msg == 0, "%ld truncations refused without MR_ERR_FORMAT and a message", bad_msg);
    MR_CHECK_MSG(touched == 0, "%ld truncations changed the weights", touched);
    /* every header byte (the length too) flipped by each mask: loads or is refused cleanly */
    oks = errs = bad_msg = touched = 0;
    for (i = 0; i < hend; i++)
        for (m = 0; m < (int)sizeof masks; m++) {
            if (st_quick() && masks[m] != 0x01 && masks[m] != 0x20 && masks[m] != 0x5a && masks[m] != 0x80) continue;
            memcpy(cp, buf, len);
            cp[i] ^= masks[m];
            memset(&er, 0, sizeof er);
            if (mr_safetensors_load_mem(dst, cp, len, &er) == MR_OK) {   /* (a flip in the metadata) */
                oks++;
                if (!st_same_weights(src, dst)) wrong++;
                memcpy(dst->ps->data, s0, sizeof(float) * dst->ps->numel);
            } else {
                errs++;
                if (!er.msg[0]) bad_msg++;
                if (!st_same_snap(dst, s0)) { touched++; memcpy(dst->ps->data, s0, sizeof(float) * dst->ps->numel); }
            }
        }
    MR_CHECK_MSG(bad_msg == 0, "%ld flips refused without a message", bad_msg);
    MR_CHECK_MSG(touched == 0, "%ld refused flips changed the weights", touched);
    MR_CHECK_MSG(wrong == 0, "%ld flips loaded other weights", wrong);
    MR_CHECK(errs > oks);
    if (getenv("MR_TEST_VERBOSE")) printf("  header flips: %ld loaded, %ld refused\n", oks, errs);
    /* random edits of 1-4 header bytes to JSON-ish characters */
    oks = errs = bad_msg = touched = 0;
    iters = st_quick() ? 3000 : 20000;
    for (it = 0; it < iters; it++) {
        int k, nk;
        memcpy(cp, buf, len);
        x = x * 1664525u + 1013904223u;
        nk = 1 + (int)(x >> 30);
        for (k = 0; k < nk; k++) {
            size_t at;
            x = x * 1664525u + 1013904223u;
            at = 8 + (size_t)(x >> 8) % (hend - 8);
            x = x * 1664525u + 1013904223u;
            cp[at] = (uint8_t)alphabet[(x >> 16) % (sizeof alphabet - 1)];
        }
        memset(&er, 0, sizeof er);
        if (mr_safetensors_load_mem(dst, cp, len, &er) == MR_OK) { oks++; memcpy(dst->ps->data, s0, sizeof(float) * dst->ps->numel); }
        else {
            errs++;
            if (!er.msg[0]) bad_msg++;
            if (!st_same_snap(dst, s0)) { touched++; memcpy(dst->ps->data, s0, sizeof(float) * dst->ps->numel); }
        }
    }
    MR_CHECK_MSG(bad_msg == 0, "%ld edits refused without a message", bad_msg);
    MR_CHECK_MSG(touched == 0, "%ld refused edits changed the weights", touched);
    if (getenv("MR_TEST_VERBOSE")) printf("  header edits: %ld loaded, %ld refused\n", oks, errs);
    /* a byte changed in the data loads (safetensors has no checksum) */
    memcpy(cp, buf, len);
    cp[len - 1] ^= 0x01;
    MR_CHECK(mr_safetensors_load_mem(dst, cp, len, &er) == MR_OK && !st_same_weights(src, dst));
    free(s0);
    free(cp);
    mr_buffer_free(buf);
    mr_model_free(src);
    mr_model_free(dst);
}

/* ---- through tools/safetensors_roundtrip.py (numpy) ---- */
static void test_python_roundtrip(void) {
    static const char *const dts[] = {"same", "f64", "f16", "bf16"};
    const char *py = getenv("MR_ST_PY");
    int forced = py && *py;
    char in[256], out[256], cmd[1024];
    FILE *f;
    mr_model *src, *dst;
    uint8_t *a = NULL, *b = NULL;
    size_t la, lb, i, k;
    mr_error er;
    int d, rc;
    if (py && !strcmp(py, "0")) MR_SKIP("MR_ST_PY=0");
    if (!forced) py = "/usr/bin/python3";
    if (!(f = fopen(ST_SCRIPT, "r"))) {
        MR_CHECK_MSG(!forced, "no %s (run from the repository root)", ST_SCRIPT);
        MR_SKIP("no " ST_SCRIPT " here (run from the repository root)");
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", py);
    if (system(cmd) != 0) {
        MR_CHECK_MSG(!forced, "MR_ST_PY=%s has no numpy", py);
        MR_SKIP("no /usr/bin/python3 with numpy");
    }
    st_path(in, sizeof in, "st_in");
    st_path(out, sizeof out, "st_out");
    src = st_model("mingru,minlstm,gru", 0, 41);
    dst = st_model("mingru,minlstm,gru", 0, 42);
    MR_CHECK(src && dst);
    if (!src || !dst) return;
    MR_CHECK_MSG(mr_safetensors_save(src, in, &er) == MR_OK, "%s", er.msg);
    for (d = 0; d < 4; d++) {
        snprintf(cmd, sizeof cmd, "%s %s %s %s --dtype %s --no-torch%s", py, ST_SCRIPT, in, out, dts[d],
                 getenv("MR_TEST_VERBOSE") ? "" : " --quiet");
        remove(out);
        rc = system(cmd);
        MR_CHECK_MSG(rc == 0, "'%s' exited with %d", cmd, rc);
        if (rc != 0) continue;
        memset(dst->ps->data, 0xff, sizeof(float) * dst->ps->numel);   /* NaNs: a tensor left unwritten shows */
        MR_CHECK_MSG(mr_safetensors_load(dst, out, &er) == MR_OK, "--dtype %s: %s", dts[d], er.msg);
        if (d < 2) MR_CHECK_MSG(st_same_weights(src, dst), "--dtype %s: the weights differ", dts[d]);
        else {   /* f16 / bf16: within half an ulp */
            double rel = d == 2 ? ldexp(1, -11) : ldexp(1, -8), tiny = d == 2 ? ldexp(1, -25) : 0;
            long bad = 0;
            for (i = 0; i < (size_t)src->ps->n; i++) {
                const mr_tensor *s = src->ps->t[i], *t = dst->ps->t[i];
                for (k = 0; k < (size_t)mr_tensor_numel(s); k++) {
                    double x = s->data[k], y = t->data[k], tol = fabs(x) * rel;
                    if (!(fabs(x - y) <= (tol > tiny ? tol : tiny))) bad++;
                }
            }
            MR_CHECK_MSG(bad == 0, "--dtype %s: %ld weights off by more than half an ulp", dts[d], bad);
        }
        if (d == 0) {   /* the script writes the format as minrnn does: the same bytes */
            MR_CHECK(mr_read_file(in, &a, &la, (size_t)1 << 30, NULL, &er) == MR_OK);
            MR_CHECK(mr_read_file(out, &b, &lb, (size_t)1 << 30, NULL, &er) == MR_OK);
            MR_CHECK_MSG(a && b && la == lb && !memcmp(a, b, la), "the script's F32 file differs from minrnn's");
            mr_buffer_free(a); mr_buffer_free(b);
            a = b = NULL;
        }
    }
    /* the script refuses a truncated file */
    MR_CHECK(mr_read_file(in, &a, &la, (size_t)1 << 30, NULL, &er) == MR_OK);
    if (a) {
        f = fopen(out, "wb");
        MR_CHECK(f && fwrite(a, 1, la - 3, f) == la - 3);
        if (f) fclose(f);
        snprintf(cmd, sizeof cmd, "%s %s %s --quiet --no-torch 2>/dev/null", py, ST_SCRIPT, out);
        MR_CHECK_MSG(system(cmd) != 0, "the script read a truncated file");
        mr_buffer_free(a);
    }
    remove(in);
    remove(out);
    mr_model_free(src);
    mr_model_free(dst);
}

MR_TEST_MAIN({"roundtrip", test_roundtrip}, {"half_to_f32", test_half_to_f32}, {"dtypes", test_dtypes},
             {"refusals", test_refusals}, {"truncation_and_flips", test_truncation_and_flips},
             {"python_roundtrip", test_python_roundtrip})
