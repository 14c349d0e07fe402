/* Format compatibility: files written by earlier versions of minrnn load and
   behave as they did. tests/fixtures/v1_* were written by format 1 (the
   positional CONF and per-layer STAT of commit 2d7c4a8; see
   tools/make_v1_fixtures.c): a checkpoint, a training checkpoint and a
   session, with the greedy ids they generated then. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

#define FX "tests/fixtures/"
#define NGEN 60
#define NSESS 20

static int read_ids(int32_t *ids) {
    FILE *f = fopen(FX "v1_tokens.txt", "r");
    char line[1024];
    int n = 0;
    if (!f) return 0;
    if (!fgets(line, sizeof line, f)) { fclose(f); return 0; }   /* comment */
    while (n < NGEN && fscanf(f, "%d", &ids[n]) == 1) n++;
    fclose(f);
    return n;
}
static int argmax(const float *l, int V) { int i, b = 0; for (i = 1; i < V; i++) if (l[i] > l[b]) b = i; return b; }

/* greedy continuation of n tokens from logits and state */
static void greedy(mr_ctx *ctx, mr_model *m, mr_state *st, float *logits, int n, int32_t *out) {
    int i;
    for (i = 0; i < n; i++) {
        out[i] = argmax(logits, m->cfg.vocab_size);
        if (mr_model_step(ctx, m, &out[i], st, logits) != MR_OK) { MR_CHECK_MSG(0, "%s", mr_ctx_error(ctx)); return; }
        mr_ctx_reset(ctx);
    }
}

static void test_v1_checkpoint_generates(void) {
    mr_model *m = NULL;
    mr_vocab v;
    mr_train_meta meta;
    mr_error err;
    mr_ctx *ctx;
    mr_state *st;
    int32_t want[NGEN], got[NGEN], ids[8];
    float *logits;
    mr_tensor *lg;
    int i, V;
    MR_CHECK(read_ids(want) == NGEN);
    if (mr_ckpt_load(&m, &v, &meta, FX "v1_model.bin", NULL, &err) != MR_OK) { MR_CHECK_MSG(0, "%s", err.msg); return; }
    MR_CHECK(m->cfg.n_layers == 3 && m->cfg.dim == 16 && m->cfg.conv_kernel == 3 && m->cfg.ffn_hidden == 24);
    MR_CHECK(m->cfg.mixer[0] == MR_MIXER_MINGRU && m->cfg.mixer[1] == MR_MIXER_MINLSTM && m->cfg.mixer[2] == MR_MIXER_GRU);
    MR_CHECK(meta.step == 7 && !strncmp(meta.args, "--dim 16", 8));
    MR_CHECK(v.kind == MR_VOCAB_CHARS);
    V = m->cfg.vocab_size;
    MR_CHECK(mr_ctx_new(&ctx, NULL) == MR_OK);
    mr_ctx_set_threads(ctx, 1);
    MR_CHECK(mr_state_new(&st, m, 1, &err) == MR_OK);
    MR_CHECK(mr_vocab_encode(&v, (const uint8_t *)"ROMEO:", 6, ids, &err) == MR_OK);
    logits = (float *)malloc(sizeof(float) * (size_t)V);
    mr_ctx_set_no_grad(ctx, 1);
    lg = mr_model_forward(ctx, m, ids, 1, 6, st, 0);
    MR_CHECK(lg != NULL);
    if (lg) memcpy(logits, lg->data + 5 * V, sizeof(float) * (size_t)V);
    mr_ctx_reset(ctx);
    greedy(ctx, m, st, logits, NGEN, got);
    for (i = 0; i < NGEN; i++) MR_CHECK_MSG(got[i] == want[i], "token %d: %d, format 1 generated %d", i, got[i], want[i]);
    free(logits);
    mr_state_free(st);
    mr_ctx_free(ctx);
    mr_model_free(m);
    mr_vocab_free(&v);
}

static void test_v1_session_continues(void) {
    mr_model *m = NULL;
    mr_vocab v;
    mr_error err;
    mr_ctx *ctx;
    mr_state *st;
    int32_t want[NGEN], got[NGEN - NSESS];
    float *logits;
    int i, has = 0;
    MR_CHECK(read_ids(want) == NGEN);
    if (mr_ckpt_load(&m, &v, NULL, FX "v1_model.bin", NULL, &err) != MR_OK) { MR_CHECK_MSG(0, "%s", err.msg); return; }
    MR_CHECK(mr_ctx_new(&ctx, NULL) == MR_OK);
    mr_ctx_set_threads(ctx, 1);
    MR_CHECK(mr_state_new(&st, m, 1, &err) == MR_OK);
    logits = (float *)malloc(sizeof(float) * (size_t)m->cfg.vocab_size);
    if (mr_state_load(m, st, logits, &has, FX "v1_session.mrs", &err) != MR_OK) MR_CHECK_MSG(0, "%s", err.msg);
    else {
        MR_CHECK(has == 1);
        greedy(ctx, m, st, logits, NGEN - NSESS, got);
        for (i = 0; i < NGEN - NSESS; i++) MR_CHECK_MSG(got[i] == want[NSESS + i], "token %d: %d, expected %d", NSESS + i, got[i], want[NSESS + i]);
    }
    {   /* a session of format 1 is still refused for another batch */
        mr_state *s2;
        MR_CHECK(mr_state_new(&s2, m, 2, &err) == MR_OK);
        MR_CHECK(mr_state_load(m, s2, NULL, NULL, FX "v1_session.mrs", &err) == MR_ERR_FORMAT);
        mr_state_free(s2);
    }
    free(logits);
    mr_state_free(st);
    mr_ctx_free(ctx);
    mr_model_free(m);
    mr_vocab_free(&v);
}

static void test_v1_training_checkpoint_restores(void) {
    mr_model *m = NULL;
    mr_vocab v;
    mr_error err;
    mr_ctx *ctx;
    mr_state *st;
    mr_adamw opt;
    mr_rng rngs[2], want_r;
    int64_t pos[3] = {0, 0, 0};
    mr_train_state ts;
    uint8_t *buf = NULL;
    size_t len = 0;
    int32_t want[NGEN], got[NGEN - NSESS];
    float *logits;
    int i, ok_m = 1;
    MR_CHECK(read_ids(want) == NGEN);
    if (mr_read_file(FX "v1_train.bin", &buf, &len, (size_t)1 << 24, NULL, &err) != MR_OK) { MR_CHECK_MSG(0, "%s", err.msg); return; }
    if (mr_ckpt_load_mem(&m, &v, NULL, buf, len, NULL, &err) != MR_OK) { MR_CHECK_MSG(0, "%s", err.msg); mr_buffer_free(buf); return; }
    MR_CHECK(mr_ctx_new(&ctx, NULL) == MR_OK);
    mr_ctx_set_threads(ctx, 1);
    MR_CHECK(mr_state_new(&st, m, 1, &err) == MR_OK);
    MR_CHECK(mr_adamw_init(&opt, m->ps, mr_adamw_defaults(), &err) == MR_OK);
    memset(&ts, 0, sizeof ts);
    ts.adamw = &opt; ts.rngs = rngs; ts.n_rngs = 2; ts.data_pos = pos; ts.n_data_pos = 3; ts.state = st;
    if (mr_ckpt_restore_mem(buf, len, m, &ts, &err) != MR_OK) MR_CHECK_MSG(0, "%s", err.msg);
    MR_CHECK(opt.t == 1);
    for (i = 0; i < m->ps->n; i++) {   /* the moments were i%7/4 and i%5/8 over the padded buffer */
        size_t k, off = m->ps->offset[i], n = (size_t)mr_tensor_numel(m->ps->t[i]);
        for (k = off; k < off + n; k++)
            if (opt.m[k] != 0.25f * (float)(k % 7) || opt.v[k] != 0.125f * (float)(k % 5)) ok_m = 0;
    }
    MR_CHECK(ok_m);
    MR_CHECK(pos[0] == 11 && pos[1] == 22 && pos[2] == 33);
    mr_rng_seed(&want_r, 6);
    MR_CHECK(!memcmp(&rngs[1], &want_r, sizeof want_r));
    {   /* the restored state is the session's: fed the 20th token, it generates the rest */
        logits = (float *)malloc(sizeof(float) * (size_t)m->cfg.vocab_size);
        MR_CHECK(st->valid == 1);
        {   /* the same floats as the session file's state, whose logits then continue it */
            mr_state *s2;
            MR_CHECK(mr_state_new(&s2, m, 1, &err) == MR_OK);
            MR_CHECK(mr_state_load(m, s2, logits, NULL, FX "v1_session.mrs", &err) == MR_OK);
            MR_CHECK(mr_state_floats(s2) == mr_state_floats(st));
            MR_CHECK(!memcmp(s2->buf, st->buf, sizeof(float) * mr_state_floats(st)));
            mr_state_free(s2);
        }
        greedy(ctx, m, st, logits, NGEN - NSESS, got);
        for (i = 0; i < NGEN - NSESS; i++) MR_CHECK(got[i] == want[NSESS + i]);
        free(logits);
    }
    mr_adamw_free(&opt);
    mr_state_free(st);
    mr_ctx_free(ctx);
    mr_model_free(m);
    mr_vocab_free(&v);
    mr_buffer_free(buf);
}

MR_TEST_MAIN({"v1_checkpoint_generates", test_v1_checkpoint_generates},
             {"v1_session_continues", test_v1_session_continues},
             {"v1_training_checkpoint_restores", test_v1_training_checkpoint_restores})
