/* Checkpoints: round trips (char, byte and BPE vocabularies), and a loader
   that returns a clean error on every truncation, bit flip and bad version. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"
#include "ckpt_common.h"

static void test_roundtrip(void) {
    const char *text = "hello, world";
    mr_vocab v, v2;
    mr_model *m, *m2 = NULL;
    mr_train_meta meta, meta2;
    uint8_t *buf;
    size_t len;
    mr_error e;
    mr_vocab_from_text(&v, (const uint8_t *)text, strlen(text));
    m = small_model(v.n, "gru,minlstm");
    memset(&meta, 0, sizeof meta);
    meta.step = 123; meta.val_loss = 1.25; meta.tokens_seen = 1 << 20;
    MR_CHECK(mr_ckpt_save_mem(m, &v, &meta, &buf, &len, &e) == MR_OK);
    MR_CHECK(mr_ckpt_load_mem(&m2, &v2, &meta2, buf, len, NULL, &e) == MR_OK);
    MR_CHECK(m2 && same_weights(m, m2));
    MR_CHECK(m2 && !memcmp(&m->cfg, &m2->cfg, sizeof m->cfg));
    MR_CHECK(v2.kind == MR_VOCAB_CHARS && v2.n == v.n && !memcmp(v2.chars, v.chars, (size_t)v.n));
    MR_CHECK(meta2.step == 123 && meta2.val_loss == 1.25 && meta2.tokens_seen == 1 << 20);
    mr_model_free(m2);
    mr_buffer_free(buf);
    mr_model_free(m);
    /* byte vocabulary */
    mr_vocab_bytes(&v);
    m = small_model(256, "mingru");
    MR_CHECK(mr_ckpt_save_mem(m, &v, NULL, &buf, &len, &e) == MR_OK);
    MR_CHECK(mr_ckpt_load_mem(&m2, &v2, NULL, buf, len, NULL, &e) == MR_OK);
    MR_CHECK(m2 && same_weights(m, m2) && v2.kind == MR_VOCAB_BYTES && v2.n == 256);
    mr_model_free(m2); mr_buffer_free(buf); mr_model_free(m);
}

static void test_bpe_vocab(void) {
    const char *text = "the cat sat on the mat; the cat ate the rat. the end.";
    mr_bpe *t;
    mr_bpe_train_opts o = mr_bpe_train_defaults();
    mr_vocab v, v2;
    mr_model *m, *m2 = NULL;
    uint8_t *buf;
    size_t len;
    mr_error e;
    o.vocab_size = 270;
    MR_CHECK(mr_bpe_train(&t, (const uint8_t *)text, strlen(text), &o, NULL, &e) == MR_OK);
    memset(&v, 0, sizeof v);
    v.kind = MR_VOCAB_BPE;
    v.n = mr_bpe_vocab_size(t);
    MR_CHECK(mr_bpe_save_json_mem(t, &v.bpe_json, &v.bpe_len, &e) == MR_OK);
    m = small_model(v.n, "mingru");
    MR_CHECK(mr_ckpt_save_mem(m, &v, NULL, &buf, &len, &e) == MR_OK);
    MR_CHECK(mr_ckpt_load_mem(&m2, &v2, NULL, buf, len, NULL, &e) == MR_OK);
    MR_CHECK(m2 && v2.kind == MR_VOCAB_BPE && v2.bpe_len == v.bpe_len && !memcmp(v2.bpe_json, v.bpe_json, v.bpe_len));
    mr_vocab_free(&v2);
    mr_model_free(m2);
    mr_buffer_free(buf);
    /* a model whose vocabulary size disagrees with the tokenizer is refused */
    mr_model_free(m);
    m = small_model(v.n + 1, "mingru");
    MR_CHECK(mr_ckpt_save_mem(m, &v, NULL, &buf, &len, &e) == MR_OK);
    MR_CHECK(mr_ckpt_load_mem(&m2, &v2, NULL, buf, len, NULL, &e) == MR_ERR_FORMAT && m2 == NULL);
    mr_buffer_free(buf);
    mr_model_free(m);
    mr_bpe_free_buffer(t, v.bpe_json);
    mr_bpe_free(t);
}

static void test_truncation_and_flips(void) {
    mr_vocab v, v2;
    mr_model *m, *m2;
    uint8_t *buf, *cp;
    size_t len, i;
    mr_error e;
    long errors = 0, oks = 0;
    mr_vocab_from_text(&v, (const uint8_t *)"abcdefg", 7);
    m = small_model(v.n, "mingru,gru");
    MR_CHECK(mr_ckpt_save_mem(m, &v, NULL, &buf, &len, &e) == MR_OK);
    cp = (uint8_t *)malloc(len);
    for (i = 0; i < len; i++) {   /* every truncation: a clean error */
        memcpy(cp, buf, i);
        m2 = NULL;
        e.msg[0] = 0;
        if (mr_ckpt_load_mem(&m2, &v2, NULL, cp, i, NULL, &e) == MR_OK) { oks++; mr_model_free(m2); }
        else { errors++; MR_CHECK(m2 == NULL && e.msg[0]); }
    }
    MR_CHECK_MSG(oks == 0, "%ld truncations loaded", oks);
    for (i = 0; i < len; i++) {   /* every single-byte change: an error (CRC, magic, version, lengths) */
        memcpy(cp, buf, len);
        cp[i] ^= 0x5a;
        m2 = NULL;
        if (mr_ckpt_load_mem(&m2, &v2, NULL, cp, len, NULL, &e) == MR_OK) { oks++; mr_model_free(m2); }
    }
    MR_CHECK_MSG(oks == 0, "%ld corrupted files loaded", oks);
    /* a newer format version names both versions */
    memcpy(cp, buf, len);
    cp[8] = 99;
    MR_CHECK(mr_ckpt_load_mem(&m2, &v2, NULL, cp, len, NULL, &e) == MR_ERR_VERSION && strstr(e.msg, "99") && strstr(e.msg, "library's 2"));
    free(cp);
    mr_buffer_free(buf);
    mr_model_free(m);
    MR_CHECK(errors == (long)len);
}

static void test_file_save_load(void) {
    mr_vocab v, v2;
    mr_model *m, *m2 = NULL;
    mr_error e;
    const char *path = "build/test_ckpt.bin";
    mr_vocab_from_text(&v, (const uint8_t *)"xyz", 3);
    m = small_model(v.n, "minlstm");
    MR_CHECK(mr_ckpt_save(m, &v, NULL, path, &e) == MR_OK);
    MR_CHECK(mr_ckpt_load(&m2, &v2, NULL, path, NULL, &e) == MR_OK && m2 && same_weights(m, m2));
    mr_model_free(m2);
    MR_CHECK(mr_ckpt_save(m, &v, NULL, "/nonexistent-dir/x.bin", &e) == MR_ERR_IO && e.msg[0]);
    MR_CHECK(mr_ckpt_load(&m2, &v2, NULL, "/nonexistent-dir/x.bin", NULL, &e) == MR_ERR_IO);
    remove(path);
    mr_model_free(m);
}

/* Regressions from review: an all-zero generator state, a tensor name with a
   NUL inside, and outputs cleared when a load fails. */
static void test_review_regressions(void) {
    mr_vocab v, v2;
    mr_model *m, *m2 = NULL;
    mr_train_meta meta;
    mr_train_state ts;
    mr_rng rngs[1];
    uint8_t *buf;
    size_t len, i;
    mr_error e;
    mr_vocab_from_text(&v, (const uint8_t *)"abcdefg", 7);
    m = small_model(v.n, "mingru");
    memset(&ts, 0, sizeof ts);
    memset(rngs, 0, sizeof rngs);
    ts.rngs = rngs; ts.n_rngs = 1;
    MR_CHECK(mr_ckpt_save_train_mem(m, &v, NULL, &ts, &buf, &len, &e) == MR_OK);
    mr_rng_seed(&rngs[0], 3);
    MR_CHECK(mr_ckpt_restore_mem(buf, len, m, &ts, &e) == MR_ERR_FORMAT && strstr(e.msg, "all-zero"));
    MR_CHECK(rngs[0].s[0] != 0);   /* untouched */
    mr_buffer_free(buf);
    /* "embedding" renamed "embed\0ing" (same length, CRC fixed up): refused */
    MR_CHECK(mr_ckpt_save_mem(m, &v, NULL, &buf, &len, &e) == MR_OK);
    for (i = 0; i + 9 <= len; i++)
        if (!memcmp(buf + i, "embedding", 9)) { buf[i + 5] = 0; break; }
    {   /* recompute the CRC of the TENS section */
        size_t off = 16;
        while (off + 12 <= len && memcmp(buf + off, "END!", 4)) {
            uint64_t sl = 0;
            int k;
            for (k = 0; k < 8; k++) sl |= (uint64_t)buf[off + 4 + k] << (8 * k);
            if (!memcmp(buf + off, "TENS", 4)) {
                uint32_t c = mr__crc32(buf + off + 12, (size_t)sl);
                for (k = 0; k < 4; k++) buf[off + 12 + sl + k] = (uint8_t)(c >> (8 * k));
            }
            off += 12 + (size_t)sl + 4;
        }
    }
    memset(&meta, 0x7f, sizeof meta);
    MR_CHECK(mr_ckpt_load_mem(&m2, &v2, &meta, buf, len, NULL, &e) == MR_ERR_FORMAT && m2 == NULL && strstr(e.msg, "name"));
    MR_CHECK(meta.step == 0 && v2.bpe_json == NULL && v2.n == 0);
    mr_buffer_free(buf);
    mr_model_free(m);
}

MR_TEST_MAIN({"roundtrip", test_roundtrip}, {"bpe_vocab", test_bpe_vocab}, {"truncation_and_flips", test_truncation_and_flips},
             {"file_save_load", test_file_save_load}, {"review_regressions", test_review_regressions})
