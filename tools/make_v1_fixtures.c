/* Writes the format-1 fixtures of tests/test_compat.c: a checkpoint, a
   training checkpoint and a session file in the layout minrnn wrote up to
   commit 2d7c4a8 (positional CONF, per-layer STAT), and the greedy tokens
   they must generate. It was run once at that commit; the files in
   tests/fixtures/v1_* are its output and must never be regenerated. It is
   written against that commit's API (mr_model_cfg_set_mixers, renamed
   mr_model_cfg_set_layers since) and does not build with today's header;
   to rerun it, build it against minrnn.h of 2d7c4a8:
     git show 2d7c4a8:minrnn.h > /tmp/v1/minrnn.h
     cc -O2 -I/tmp/v1 -isystem /usr/include/stb tools/make_v1_fixtures.c -o /tmp/mk -lm && /tmp/mk DIR */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include <stdio.h>
#include <stdlib.h>

#define NGEN 60
#define NSESS 20
static const char *TEXT = "ROMEO: the quick brown fox jumps over the lazy dog.\nJULIET: what?\n";

static int argmax2(const float *l, int V, float *margin) {
    int i, b = 0, s = -1;
    for (i = 1; i < V; i++) if (l[i] > l[b]) b = i;
    for (i = 0; i < V; i++) if (i != b && (s < 0 || l[i] > l[s])) s = i;
    *margin = l[b] - l[s];
    return b;
}
static int wr(const char *dir, const char *name, const uint8_t *p, size_t n) {
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) return 1;
    return fclose(f) != 0;
}
int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : ".";
    mr_vocab v;
    mr_model_cfg cfg;
    mr_model *m;
    mr_ctx *ctx;
    mr_error err;
    mr_rng r;
    mr_state *st, *st_sess;
    int32_t ids[256], gen[NGEN];
    float *logits, *sess_logits, minmargin = 1e9f;
    int V, n, i, seed;
    uint8_t *buf; size_t len;
    FILE *f;
    char path[512];
    mr_vocab_from_text(&v, (const uint8_t *)TEXT, strlen(TEXT));
    V = v.n;
    cfg = mr_model_default_cfg(V);
    cfg.dim = 16; cfg.n_layers = 3; cfg.conv_kernel = 3; cfg.expansion = 1.5f; cfg.ffn_hidden = 24;
    cfg.tie_embeddings = 0; cfg.gru_hidden_norm = 1;
    if (mr_model_cfg_set_mixers(&cfg, "mingru,minlstm,gru", &err) != MR_OK) return 1;
    if (mr_model_new(&m, &cfg, NULL, &err) != MR_OK) { fprintf(stderr, "%s\n", err.msg); return 1; }
    if (mr_ctx_init(&ctx, NULL) != MR_OK) return 1;
    mr_ctx_set_threads(ctx, 1);
    logits = (float *)malloc(sizeof(float) * V);
    sess_logits = (float *)malloc(sizeof(float) * V);
    mr_state_new(&st, m, 1, &err);
    mr_state_new(&st_sess, m, 1, &err);
    for (seed = 1; seed < 1000; seed++) {   /* weights whose greedy choices have clear margins */
        mr_tensor *lg;
        mr_rng_seed(&r, (uint64_t)seed);
        mr_model_init_weights(m, &r);
        mr_state_reset(st);
        mr_vocab_encode(&v, (const uint8_t *)"ROMEO:", 6, ids, &err);
        n = 6;
        lg = mr_model_forward(ctx, m, ids, 1, n, st, 0);
        memcpy(logits, lg->data + (size_t)(n - 1) * V, sizeof(float) * V);
        mr_ctx_reset(ctx);
        minmargin = 1e9f;
        for (i = 0; i < NGEN; i++) {
            float mg;
            gen[i] = argmax2(logits, V, &mg);
            if (mg < minmargin) minmargin = mg;
            mr_model_step(ctx, m, &gen[i], st, logits);
            mr_ctx_reset(ctx);
            if (i == NSESS - 1) {
                memcpy(st_sess->buf, st->buf, sizeof(float) * mr_state_floats(st));
                st_sess->valid = st->valid;
                memcpy(sess_logits, logits, sizeof(float) * V);
            }
        }
        if (minmargin > 2e-3f) break;
    }
    fprintf(stderr, "seed %d, smallest greedy margin %g\n", seed, minmargin);
    {
        mr_train_meta meta;
        memset(&meta, 0, sizeof meta);
        meta.step = 7; meta.tokens_seen = 700; meta.val_loss = 3.25; meta.train_loss = 3.5; meta.best_val_loss = 3.25;
        strcpy(meta.args, "--dim 16 --depth 3 --arch mingru,minlstm,gru --conv 3 --expansion 1.5 --ffn 24");
        if (mr_ckpt_save_mem(m, &v, &meta, &buf, &len, &err) != MR_OK || wr(dir, "v1_model.bin", buf, len)) return 1;
        mr_buffer_free(buf);
    }
    if (mr_state_save_mem(m, st_sess, sess_logits, &buf, &len, &err) != MR_OK || wr(dir, "v1_session.mrs", buf, len)) return 1;
    mr_buffer_free(buf);
    {   /* a training checkpoint: AdamW after one step, two generators, a data position, the session's state */
        mr_adamw opt;
        mr_train_state ts;
        mr_rng rngs[2];
        int64_t pos[3] = {11, 22, 33};
        mr_tensor *lg, *loss;
        int32_t tg[5];
        mr_adamw_init(&opt, m->ps, mr_adamw_default(), &err);
        for (i = 0; i < 5; i++) tg[i] = ids[i + 1];
        lg = mr_model_forward(ctx, m, ids, 1, 5, NULL, 1);
        loss = mr_cross_entropy(ctx, mr_view_reshape(ctx, lg, 2, (int64_t[]){5, V}), tg, -1);
        mr_backward(ctx, loss);
        mr_ctx_reset(ctx);
        for (i = 0; i < (int)m->ps->numel; i++) opt.m[i] = 0.25f * (float)(i % 7), opt.v[i] = 0.125f * (float)(i % 5);
        opt.t = 1;
        mr_rng_seed(&rngs[0], 5); mr_rng_seed(&rngs[1], 6);
        memset(&ts, 0, sizeof ts);
        ts.adamw = &opt; ts.rngs = rngs; ts.n_rngs = 2; ts.data_pos = pos; ts.n_data_pos = 3; ts.state = st_sess;
        if (mr_ckpt_save_train_mem(m, &v, NULL, &ts, &buf, &len, &err) != MR_OK || wr(dir, "v1_train.bin", buf, len)) return 1;
        mr_buffer_free(buf);
        mr_adamw_free(&opt);
    }
    snprintf(path, sizeof path, "%s/v1_tokens.txt", dir);
    f = fopen(path, "w");
    fprintf(f, "# greedy ids after the prompt \"ROMEO:\" (v1_model.bin); the session v1_session.mrs holds the state after the first %d\n", NSESS);
    for (i = 0; i < NGEN; i++) fprintf(f, "%d%c", gen[i], i + 1 < NGEN ? ' ' : '\n');
    fclose(f);
    mr_state_free(st); mr_state_free(st_sess); mr_model_free(m); mr_ctx_free(ctx); free(logits); free(sess_logits);
    return 0;
}
