/* libFuzzer target for everything minrnn reads from untrusted bytes: every
   input is fed to all five readers (their magics and headers differ, so a
   reader that does not recognize an input rejects it at once):
     1. mr_ckpt_load_mem, then, when it loads, mr_ckpt_restore_mem into an
        AdamW, 2 generators, 3 data positions and a batch-1 state created for
        the loaded model, and once more into an SGD with momentum; a model
        with int8 weights is also stepped (3 tokens, 2 streams);
     2. mr_state_load_mem against a fixed small model (tests/fuzz/fuzz_common.h);
     3. mr_safetensors_load_mem into that model;
     4. mr_bpe_load_json_mem, then, when it loads, an encode/decode round trip.
   Checkpoints and session files carry a CRC-32 per section, which would stop
   almost every mutation at the checksum; so an input with either magic is
   also fed, with every section's CRC recomputed, to readers 1 and 2, which
   takes the mutations to the parsers behind the checksum.
   A crash, a sanitizer report, a leak or an allocation over -malloc_limit_mb
   is a finding. Build and run: make fuzz (FUZZ_SECONDS=60). */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "fuzz_common.h"

static mr_model *g_model;   /* the fixed model; its weights may change (safetensors) */

static void fuzz_ckpt(const uint8_t *data, size_t size) {
    mr_model *m = NULL;
    mr_vocab v;
    mr_train_meta meta;
    mr_error e;
    mr_adamw opt;
    mr_sgd sgd;
    mr_sgd_cfg sc;
    mr_rng rngs[FZ_RNGS];
    int64_t pos[FZ_DATA];
    mr_state *st = NULL;
    mr_train_state ts;
    if (mr_ckpt_load_mem(&m, &v, &meta, data, size, NULL, &e) != MR_OK) return;
    if (mr_model_n_quantized(m) && m->cfg.vocab_size <= 4096 && m->cfg.dim <= 64) {   /* the int8 step on whatever the file holds */
        mr_ctx *ctx = NULL;
        mr_ctx_params cp = mr_ctx_defaults();
        static float lg[2 * 4096];
        int32_t tok[2] = {0, 1};
        int k;
        cp.n_threads = 1;
        if (mr_ctx_new(&ctx, &cp) == MR_OK && mr_state_new(&st, m, 2, &e) == MR_OK) {
            for (k = 0; k < 3 && mr_model_step(ctx, m, tok, st, lg) == MR_OK; k++) { mr_ctx_reset(ctx); tok[1] = (int32_t)(k % m->cfg.vocab_size); }
            mr_state_free(st);
            st = NULL;
        }
        mr_ctx_free(ctx);
    }
    memset(&ts, 0, sizeof ts);
    memset(rngs, 0, sizeof rngs);
    memset(pos, 0, sizeof pos);
    if (mr_adamw_init(&opt, m->ps, mr_adamw_defaults(), &e) == MR_OK) {
        if (mr_state_new(&st, m, 1, &e) == MR_OK) {
            ts.adamw = &opt;
            ts.rngs = rngs; ts.n_rngs = FZ_RNGS;
            ts.data_pos = pos; ts.n_data_pos = FZ_DATA;
            ts.state = st;
            (void)mr_ckpt_restore_mem(data, size, m, &ts, &e);
            mr_state_free(st);
        }
        mr_adamw_free(&opt);
    }
    sc.momentum = 0.9f; sc.weight_decay = 0.f; sc.nesterov = 0;
    if (mr_sgd_init(&sgd, m->ps, sc, &e) == MR_OK) {
        memset(&ts, 0, sizeof ts);
        ts.sgd = &sgd;
        (void)mr_ckpt_restore_mem(data, size, m, &ts, &e);
        mr_sgd_free(&sgd);
    }
    mr_vocab_free(&v);
    mr_model_free(m);
}

static void fuzz_state(const uint8_t *data, size_t size) {
    mr_state *st = NULL;
    float logits[FZ_BATCH * FZ_V];
    int has = 0;
    mr_error e;
    if (mr_state_new(&st, g_model, FZ_BATCH, &e) != MR_OK) abort();
    (void)mr_state_load_mem(g_model, st, logits, &has, data, size, &e);
    mr_state_free(st);
}

static void fuzz_bpe(const uint8_t *data, size_t size) {
    static const char text[] = "the cat sat on the mat. <|endoftext|> caf\xc3\xa9 \xff\xfe 123";
    mr_bpe *t = NULL;
    mr_error e;
    int32_t *ids = NULL;
    size_t n = 0, nb = 0;
    uint8_t out[4 * sizeof text];
    if (mr_bpe_load_json_mem(&t, (const char *)data, size, NULL, &e) != MR_OK) return;
    if (mr_bpe_encode_alloc(t, (const uint8_t *)text, sizeof text - 1, 1, &ids, &n, &e) == MR_OK) {
        (void)mr_bpe_decode(t, ids, n, out, sizeof out, &nb, &e);
        mr_bpe_free_buffer(t, ids);
    }
    mr_bpe_free(t);
}

/* A copy of a container with each section's CRC set to match its payload
   (as far as the sections fit); NULL when nothing changes. */
static uint8_t *fix_crcs(const uint8_t *data, size_t size) {
    uint8_t *c;
    size_t off = 16;
    int changed = 0;
    if (size < 16 || (memcmp(data, "MRNNCKPT", 8) && memcmp(data, "MRNNSTAT", 8))) return NULL;
    if (!(c = (uint8_t *)malloc(size))) abort();
    memcpy(c, data, size);
    while (size - off >= 12 && memcmp(c + off, "END!", 4)) {
        uint64_t len = 0;
        uint32_t crc;
        int k;
        for (k = 0; k < 8; k++) len |= (uint64_t)c[off + 4 + k] << (8 * k);
        if (len > size - off - 12 || size - off - 12 - (size_t)len < 4) break;
        crc = mr__crc32(c + off + 12, (size_t)len);
        for (k = 0; k < 4; k++) {
            uint8_t b = (uint8_t)(crc >> (8 * k));
            if (c[off + 12 + len + (size_t)k] != b) { c[off + 12 + len + (size_t)k] = b; changed = 1; }
        }
        off += 12 + (size_t)len + 4;
    }
    if (!changed) { free(c); return NULL; }
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mr_error e;
    if (!g_model && !(g_model = fz_fixed_model())) abort();
    uint8_t *fixed = fix_crcs(data, size);
    fuzz_ckpt(data, size);
    fuzz_state(data, size);
    if (fixed) {
        fuzz_ckpt(fixed, size);
        fuzz_state(fixed, size);
        free(fixed);
    }
    (void)mr_safetensors_load_mem(g_model, data, size, &e);
    fuzz_bpe(data, size);
    return 0;
}
