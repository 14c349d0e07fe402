/* Allocation: the checkpoint, session, safetensors and file code allocate
   only through the caller's allocator (the model's, the loader's, or the one
   passed), never through the compile-time default; every buffer they hand
   out is freed through the allocator that made it; and an allocator that
   runs out at any point makes each call fail with MR_ERR_NOMEM, leak nothing
   and leave no half-built object. */
#include <stdlib.h>
#include <stdio.h>
static long g_default_calls;   /* allocations that went through MINRNN_MALLOC & co. */
#define MINRNN_MALLOC(sz, ud) ((void)(ud), g_default_calls++, malloc(sz))
#define MINRNN_REALLOC(p, oldsz, newsz, ud) ((void)(ud), (void)(oldsz), g_default_calls++, realloc((p), (newsz)))
#define MINRNN_FREE(p, ud) ((void)(ud), free(p))
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

/* A caller's allocator: counts calls and live blocks, and can fail from the
   fail_at-th allocation on (-1: never). Blocks carry their size in front. */
typedef struct counting { long calls, live, fail_at; size_t bytes; } counting;
static void *c_alloc(size_t n, void *ud) {
    counting *c = (counting *)ud;
    size_t *p;
    if (c->fail_at >= 0 && c->calls >= c->fail_at) return NULL;
    c->calls++;
    p = (size_t *)malloc(n + 16);
    if (!p) return NULL;
    p[0] = n; c->live++; c->bytes += n;
    return (char *)p + 16;
}
static void c_free(void *q, void *ud) {
    counting *c = (counting *)ud;
    size_t *p;
    if (!q) return;
    p = (size_t *)((char *)q - 16);
    c->live--; c->bytes -= p[0];
    free(p);
}
static void *c_realloc(void *q, size_t o, size_t n, void *ud) {
    counting *c = (counting *)ud;
    void *r;
    if (!q) return c_alloc(n, ud);
    MR_CHECK_MSG(o == ((size_t *)((char *)q - 16))[0], "realloc: old size %zu, the block has %zu", o, ((size_t *)((char *)q - 16))[0]);
    r = c_alloc(n, ud);
    if (!r) return NULL;
    memcpy(r, q, o < n ? o : n);
    c_free(q, c);
    return r;
}
static mr_allocator make_alloc(counting *c) {
    mr_allocator a;
    a.alloc = c_alloc; a.realloc = c_realloc; a.free = c_free; a.ud = c;
    memset(c, 0, sizeof *c);
    c->fail_at = -1;
    return a;
}

static mr_model *model_with(const mr_allocator *al, int vocab) {
    mr_model_cfg cfg = mr_model_defaults(vocab);
    mr_model *m = NULL;
    mr_error e;
    mr_rng rng;
    cfg.dim = 16; cfg.ffn_hidden = 24; cfg.max_context = 32; cfg.attn.n_heads = 2; cfg.attn.n_kv_heads = 2;
    MR_CHECK(mr_model_cfg_set_layers(&cfg, "mingru,attn,gru", &e) == MR_OK);
    MR_CHECK_MSG(mr_model_new(&m, &cfg, al, &e) == MR_OK, "%s", e.msg);
    if (m) { mr_rng_seed(&rng, 3); mr_model_init_weights(m, &rng); }
    return m;
}

/* Everything the checkpoint section does, with a caller's allocator: no call
   reaches the default allocator, and everything is given back. */
static void test_caller_allocator_only(void) {
    static const char text[] = "the cat sat on the mat; the cat ate the rat. the end. the cat.";
    counting c;
    mr_allocator al = make_alloc(&c);
    mr_bpe *t = NULL;
    mr_bpe_train_opts o = mr_bpe_train_defaults();
    mr_vocab v, v2;
    mr_model *m, *m2 = NULL;
    mr_state *st = NULL;
    mr_train_meta meta;
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len, len2;
    mr_error e;
    const char *path = "build/tests/alloc_tmp.bin", *spath = "build/tests/alloc_tmp.mrs",
               *tpath = "build/tests/alloc_tmp.safetensors";
    o.vocab_size = 270;
    MR_CHECK(mr_bpe_train(&t, (const uint8_t *)text, sizeof text - 1, &o, &al, &e) == MR_OK);
    if (!t) return;
    memset(&v, 0, sizeof v);
    v.kind = MR_VOCAB_BPE;
    v.n = mr_bpe_vocab_size(t);
    MR_CHECK(mr_bpe_save_json_mem(t, &v.bpe_json, &v.bpe_len, &e) == MR_OK);
    m = model_with(&al, v.n);
    if (!m) { mr_bpe_free_buffer(t, v.bpe_json); mr_bpe_free(t); return; }
    MR_CHECK(mr_state_new(&st, m, 2, &e) == MR_OK);
    memset(&meta, 0, sizeof meta);
    meta.step = 7;
    g_default_calls = 0;
    /* memory */
    MR_CHECK(mr_ckpt_save_mem(m, &v, &meta, &buf, &len, &e) == MR_OK);
    MR_CHECK_MSG(mr_ckpt_load_mem(&m2, &v2, NULL, buf, len, &al, &e) == MR_OK, "%s", e.msg);
    MR_CHECK(m2 && v2.kind == MR_VOCAB_BPE && v2.bpe_len == v.bpe_len);
    mr_vocab_free(&v2); mr_model_free(m2); m2 = NULL; mr_buffer_free(buf);
    MR_CHECK(mr_state_save_mem(m, st, NULL, &buf, &len, &e) == MR_OK);
    MR_CHECK(mr_state_load_mem(m, st, NULL, NULL, buf, len, &e) == MR_OK);
    mr_buffer_free(buf);
    MR_CHECK(mr_safetensors_save_mem(m, &buf, &len, &e) == MR_OK);
    MR_CHECK_MSG(mr_safetensors_load_mem(m, buf, len, &e) == MR_OK, "%s", e.msg);
    mr_buffer_free(buf);
    /* files */
    MR_CHECK(mr_ckpt_save(m, &v, &meta, path, &e) == MR_OK);
    MR_CHECK_MSG(mr_ckpt_load(&m2, &v2, NULL, path, &al, &e) == MR_OK, "%s", e.msg);
    mr_vocab_free(&v2); mr_model_free(m2); m2 = NULL;
    MR_CHECK(mr_read_file(path, &buf2, &len2, (size_t)1 << 30, &al, &e) == MR_OK);
    MR_CHECK(buf2 && buf2[len2] == 0);
    mr_buffer_free(buf2);
    MR_CHECK(mr_state_save(m, st, NULL, spath, &e) == MR_OK);
    MR_CHECK(mr_state_load(m, st, NULL, NULL, spath, &e) == MR_OK);
    MR_CHECK(mr_safetensors_save(m, tpath, &e) == MR_OK);
    MR_CHECK(mr_safetensors_load(m, tpath, &e) == MR_OK);
    remove(path); remove(spath); remove(tpath);
    MR_CHECK_MSG(g_default_calls == 0, "%ld allocations went through the default allocator", g_default_calls);
    mr_state_free(st);
    mr_model_free(m);
    mr_bpe_free_buffer(t, v.bpe_json);
    mr_bpe_free(t);
    MR_CHECK_MSG(c.live == 0 && c.bytes == 0, "%ld blocks (%zu bytes) still live", c.live, c.bytes);
    MR_CHECK(c.calls > 0);
}

/* An allocator that fails from the k-th allocation on, for every k until the
   call succeeds: each failure is MR_ERR_NOMEM with nothing returned and
   nothing leaked. */
static void test_out_of_memory_everywhere(void) {
    static const char text[] = "abcabcabd abd abd the cat";
    counting c, cm;
    mr_allocator al = make_alloc(&c), alm = make_alloc(&cm);
    mr_vocab v, v2;
    mr_model *m, *m2;
    mr_state *st = NULL;
    uint8_t *buf = NULL, *out;
    size_t len, olen;
    mr_error e;
    long k, ok_at = -1, n_fail = 0;
    int what;
    mr_vocab_from_text(&v, (const uint8_t *)text, sizeof text - 1);
    m = model_with(&alm, v.n);
    if (!m) return;
    MR_CHECK(mr_state_new(&st, m, 1, &e) == MR_OK);
    MR_CHECK(mr_ckpt_save_mem(m, &v, NULL, &buf, &len, &e) == MR_OK);
    for (what = 0; what < 4; what++) {
        ok_at = -1;
        for (k = 0; k < 400 && ok_at < 0; k++) {
            mr_status s;
            long live0;
            c.fail_at = -1;
            al = make_alloc(&c);
            c.fail_at = k;
            m2 = NULL; out = NULL;
            live0 = cm.live;
            if (what == 0) {   /* load a checkpoint with allocator al */
                s = mr_ckpt_load_mem(&m2, &v2, NULL, buf, len, &al, &e);
                if (s == MR_OK) { mr_vocab_free(&v2); mr_model_free(m2); }
                else MR_CHECK_MSG(m2 == NULL, "load failing at allocation %ld returned a model", k);
            } else {           /* saves allocate from the model's allocator */
                cm.fail_at = cm.calls + k;
                s = what == 1 ? mr_ckpt_save_mem(m, &v, NULL, &out, &olen, &e)
                  : what == 2 ? mr_state_save_mem(m, st, NULL, &out, &olen, &e)
                              : mr_safetensors_save_mem(m, &out, &olen, &e);
                cm.fail_at = -1;
                if (s == MR_OK) mr_buffer_free(out);
                else MR_CHECK_MSG(out == NULL, "save %d failing at allocation %ld returned a buffer", what, k);
                MR_CHECK_MSG(cm.live == live0, "save %d failing at allocation %ld leaked %ld blocks", what, k, cm.live - live0);
            }
            if (s == MR_OK) ok_at = k;
            else {
                n_fail++;
                MR_CHECK_MSG(s == MR_ERR_NOMEM, "case %d, allocation %ld failing: %s (%s)", what, k, mr_status_str(s), e.msg);
            }
            MR_CHECK_MSG(c.live == 0, "case %d failing at allocation %ld leaked %ld blocks", what, k, c.live);
        }
        MR_CHECK_MSG(ok_at >= 0, "case %d never succeeded", what);
    }
    MR_CHECK(n_fail > 0);
    mr_buffer_free(buf);
    mr_state_free(st);
    mr_model_free(m);
    MR_CHECK_MSG(cm.live == 0, "model allocator: %ld blocks still live", cm.live);
}

MR_TEST_MAIN({"caller_allocator_only", test_caller_allocator_only}, {"out_of_memory_everywhere", test_out_of_memory_everywhere})
