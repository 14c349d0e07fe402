/* Writes the seed corpus of tests/fuzz/fuzz_ckpt.c into a directory: valid
   files of every kind the target reads.
     ckpt_{char,byte,bpe}.bin           checkpoints of each vocabulary kind
     ckpt_{char,byte,bpe}_train.bin     the same with a training state (AdamW
                                        or SGD, 2 generators, 3 data positions,
                                        a batch-1 state: what the target restores)
     ckpt_fixed_train.bin               the fixed model with a training state
     ckpt_q8_{char,moe}.bin             int8 checkpoints (mr_model_quantize; dtype 1
                                        tensors), which the target also steps
     session_logits.bin, session_nologits.bin, session_batch2.bin
                                        session files of the fixed model
     model.safetensors                  the fixed model's export
     tokenizer.json                     a BPE tokenizer
   Usage: make_corpus DIR */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "fuzz_common.h"
#include <stdio.h>

static const char *g_dir;
static int g_failed;

static void put(const char *name, const void *buf, size_t len) {
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) { fprintf(stderr, "make_corpus: cannot write %s\n", path); g_failed = 1; return; }
    printf("  %-26s %7zu bytes\n", name, len);
}
static void ok(mr_status s, const mr_error *e, const char *what) {
    if (s != MR_OK) { fprintf(stderr, "make_corpus: %s: %s\n", what, e->msg); exit(1); }
}
static void steps(mr_params *ps, mr_adamw *a, mr_sgd *s, mr_rng *r) {
    int k;
    size_t i;
    for (k = 0; k < 2; k++) {
        for (i = 0; i < ps->numel; i++) ps->grad[i] = mr_rng_normal(r);
        if (a) mr_adamw_step(a, NULL, 1e-2f);
        if (s) mr_sgd_step(s, NULL, 1e-2f);
    }
}
/* A checkpoint of m, and one with a training state (sgd: SGD, else AdamW). */
static void ckpts(const char *stem, mr_model *m, const mr_vocab *v, int sgd) {
    mr_train_meta meta;
    mr_train_state ts;
    mr_adamw opt;
    mr_sgd so;
    mr_sgd_cfg sc;
    mr_rng rngs[FZ_RNGS], r;
    int64_t pos[FZ_DATA] = {12345, 0, 7};
    mr_state *st;
    mr_error e;
    uint8_t *buf;
    size_t len, i;
    char name[64];
    memset(&meta, 0, sizeof meta);
    meta.step = 100; meta.tokens_seen = 51200; meta.epoch = 2; meta.train_loss = 2.5; meta.val_loss = 2.75;
    meta.best_val_loss = 2.7; meta.wall_time = 3.5; meta.created_unix = 1700000000;
    ok(mr_ckpt_save_mem(m, v, &meta, &buf, &len, &e), &e, stem);
    snprintf(name, sizeof name, "%s.bin", stem);
    put(name, buf, len);
    mr_buffer_free(buf);
    strcpy(meta.args, "--arch mingru --dim 4 --lr 1e-2");
    mr_rng_seed(&r, 1);
    memset(&ts, 0, sizeof ts);
    if (sgd) {
        sc.momentum = 0.9f; sc.weight_decay = 0.f; sc.nesterov = 0;
        ok(mr_sgd_init(&so, m->ps, sc, &e), &e, "sgd");
        steps(m->ps, NULL, &so, &r);
        ts.sgd = &so;
    } else {
        ok(mr_adamw_init(&opt, m->ps, mr_adamw_defaults(), &e), &e, "adamw");
        steps(m->ps, &opt, NULL, &r);
        ts.adamw = &opt;
    }
    for (i = 0; i < FZ_RNGS; i++) mr_rng_seed(&rngs[i], 10 + i);
    ok(mr_state_new(&st, m, 1, &e), &e, "state");
    for (i = 0; i < mr_state_floats(st); i++) st->buf[i] = mr_rng_normal(&r);
    st->valid = 1;
    st->pos = 3;   /* KV cache rows [0, 3) of attention layers are stored */
    ts.rngs = rngs; ts.n_rngs = FZ_RNGS;
    ts.data_pos = pos; ts.n_data_pos = FZ_DATA;
    ts.state = st;
    ok(mr_ckpt_save_train_mem(m, v, &meta, &ts, &buf, &len, &e), &e, stem);
    snprintf(name, sizeof name, "%s_train.bin", stem);
    put(name, buf, len);
    mr_buffer_free(buf);
    mr_state_free(st);
    if (sgd) mr_sgd_free(&so); else mr_adamw_free(&opt);
}

int main(int argc, char **argv) {
    static const char text[] = "the cat sat on the mat; the cat ate the rat. the end. <|endoftext|>";
    static const char *const specials[] = {"<|endoftext|>"};
    mr_vocab v;
    mr_model *m;
    mr_error e;
    mr_bpe *t;
    mr_bpe_train_opts o = mr_bpe_train_defaults();
    mr_state *st;
    mr_rng r;
    float logits[2 * FZ_V];
    uint8_t *buf;
    size_t len, i;
    if (argc != 2) { fprintf(stderr, "usage: make_corpus DIR\n"); return 2; }
    g_dir = argv[1];
    /* characters */
    mr_vocab_from_text(&v, (const uint8_t *)"hello, fuzz", 11);
    if (!(m = fz_model(v.n, "mingru,attn", 4, 1))) return 1;
    ckpts("ckpt_char", m, &v, 0);
    mr_model_free(m);
    /* RWKV-6 with the channel mix (shift and wkv state blocks), characters */
    if (!(m = fz_model(v.n, "rwkv6,gru", 4, 4))) return 1;
    ckpts("ckpt_rwkv", m, &v, 0);
    mr_model_free(m);
    /* GRU + RWKV-6 blocks (two mixers) with the MoE FFN */
    if (!(m = fz_model(v.n, "gru+rwkv6,mingru", 4, 5))) return 1;
    ckpts("ckpt_moe", m, &v, 0);
    ok(mr_model_quantize(m, MR_Q8_ALL, &e), &e, "quantize");
    ok(mr_ckpt_save_mem(m, &v, NULL, &buf, &len, &e), &e, "q8 moe");
    put("ckpt_q8_moe.bin", buf, len);
    mr_buffer_free(buf);
    mr_model_free(m);
    if (!(m = fz_model(v.n, "mingru,attn,rwkv6", 8, 6))) return 1;   /* untied head (small vocabulary), a conv */
    ok(mr_model_quantize(m, MR_Q8_ALL, &e), &e, "quantize");
    ok(mr_ckpt_save_mem(m, &v, NULL, &buf, &len, &e), &e, "q8 char");
    put("ckpt_q8_char.bin", buf, len);
    mr_buffer_free(buf);
    mr_model_free(m);
    /* bytes, SGD */
    mr_vocab_bytes(&v);
    if (!(m = fz_model(256, "minlstm,gru", 2, 2))) return 1;
    ckpts("ckpt_byte", m, &v, 1);
    mr_model_free(m);
    /* BPE */
    o.vocab_size = 262;
    o.special_tokens = specials;
    o.n_special = 1;
    ok(mr_bpe_train(&t, (const uint8_t *)text, sizeof text - 1, &o, NULL, &e), &e, "bpe");
    memset(&v, 0, sizeof v);
    v.kind = MR_VOCAB_BPE;
    v.n = mr_bpe_vocab_size(t);
    ok(mr_bpe_save_json_mem(t, &v.bpe_json, &v.bpe_len, &e), &e, "bpe json");
    put("tokenizer.json", v.bpe_json, v.bpe_len);
    if (!(m = fz_model(v.n, "gru", 2, 3))) return 1;
    ckpts("ckpt_bpe", m, &v, 0);
    mr_model_free(m);
    mr_bpe_free_buffer(t, v.bpe_json);
    mr_bpe_free(t);
    /* the fixed model: a training checkpoint, session files, safetensors */
    m = fz_fixed_model();
    if (!m) return 1;
    memset(&v, 0, sizeof v);
    mr_vocab_from_text(&v, (const uint8_t *)"abcdefghijklmnop", FZ_V);
    ckpts("ckpt_fixed", m, &v, 0);
    mr_rng_seed(&r, 5);
    for (i = 0; i < 2 * FZ_V; i++) logits[i] = mr_rng_normal(&r);
    ok(mr_state_new(&st, m, FZ_BATCH, &e), &e, "state");
    for (i = 0; i < mr_state_floats(st); i++) st->buf[i] = mr_rng_normal(&r);
    st->valid = 1;
    st->pos = 5;   /* KV cache rows [0, 5) are stored */
    ok(mr_state_save_mem(m, st, logits, &buf, &len, &e), &e, "session");
    put("session_logits.bin", buf, len);
    mr_buffer_free(buf);
    ok(mr_state_save_mem(m, st, NULL, &buf, &len, &e), &e, "session");
    put("session_nologits.bin", buf, len);
    mr_buffer_free(buf);
    mr_state_free(st);
    ok(mr_state_new(&st, m, 2, &e), &e, "state");
    ok(mr_state_save_mem(m, st, logits, &buf, &len, &e), &e, "session");
    put("session_batch2.bin", buf, len);
    mr_buffer_free(buf);
    mr_state_free(st);
    ok(mr_safetensors_save_mem(m, &buf, &len, &e), &e, "safetensors");
    put("model.safetensors", buf, len);
    mr_buffer_free(buf);
    mr_model_free(m);
    return g_failed;
}
