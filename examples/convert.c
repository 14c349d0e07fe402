/* minrnn-convert: move weights between minrnn checkpoints and .safetensors.

     minrnn-convert export MODEL.bin OUT.safetensors
         writes every weight as F32 under the names of docs/FORMAT.md
     minrnn-convert import MODEL.bin IN.safetensors OUT.bin
         takes the configuration and vocabulary of MODEL.bin and the weights of
         IN.safetensors (F32, F16, BF16 or F64; every tensor, with its shape)
     minrnn-convert info MODEL.bin
         prints the configuration, the vocabulary and the training metadata
     minrnn-convert quantize MODEL.bin OUT.bin [--float-embedding] [--float-head]
         writes the model with int8 weights (per-row scales; mr_model_quantize):
         about a quarter of the size; minrnn-generate runs it with int8 products
     minrnn-convert eval MODEL.bin TEXT [--val-fraction F] [--threads N]
         the loss (nats per token) on the last F (0.1) of TEXT's tokens: through
         the step path (what generation computes; int8 products for an int8
         model) and, for comparison, the parallel forward with the state carried */
#define _POSIX_C_SOURCE 200809L
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "common.h"
#include <stdio.h>
#include <string.h>

static const char *PROG = "minrnn-convert";

static void usage(void) {
    printf("usage: minrnn-convert export MODEL.bin OUT.safetensors\n"
           "       minrnn-convert import MODEL.bin IN.safetensors OUT.bin\n"
           "       minrnn-convert info MODEL.bin\n"
           "       minrnn-convert quantize MODEL.bin OUT.bin [--float-embedding] [--float-head]\n"
           "       minrnn-convert eval MODEL.bin TEXT [--val-fraction F (0.1)] [--threads N (1)]\n");
}

/* n greedy tokens from token 0 through the step path */
static void greedy(mr_model *m, int n, int32_t *out) {
    mr_ctx *ctx = NULL;
    mr_ctx_params cp = mr_ctx_defaults();
    mr_state *st = NULL;
    mr_error err;
    float *lg = (float *)malloc(sizeof(float) * (size_t)m->cfg.vocab_size);
    int32_t tok = 0;
    int i, k;
    cp.n_threads = 1;
    if (!lg || mr_ctx_new(&ctx, &cp) != MR_OK || mr_state_new(&st, m, 1, &err) != MR_OK) ex_fail(PROG, "out of memory");
    for (i = 0; i < n; i++) {
        if (st->max_pos && st->pos >= st->max_pos) mr_state_reset(st);
        if (mr_model_step(ctx, m, &tok, st, lg) != MR_OK) ex_fail(PROG, mr_ctx_error(ctx));
        mr_ctx_reset(ctx);
        for (k = 1, tok = 0; k < m->cfg.vocab_size; k++) if (lg[k] > lg[tok]) tok = k;
        out[i] = tok;
    }
    mr_state_free(st);
    mr_ctx_free(ctx);
    free(lg);
}

/* the loss on the validation tokens of TEXT: the step path, then the parallel stateful pass */
static int eval_cmd(mr_model *m, const mr_vocab *v, const char *path, double frac, int threads) {
    uint8_t *text = NULL;
    size_t len = 0, n = 0;
    int32_t *ids;
    mr_bpe *bpe = NULL;
    mr_ctx *ctx = NULL;
    mr_ctx_params cp = mr_ctx_defaults();
    mr_error err;
    double l_step, l_par, t0, t1, t2;
    int64_t nv;
    if (mr_read_file(path, &text, &len, (size_t)1 << 31, NULL, &err) != MR_OK) { fprintf(stderr, "%s: %s\n", PROG, err.msg); return 2; }
    ids = (int32_t *)malloc(sizeof(int32_t) * (len ? len : 1));
    if (!ids) ex_fail(PROG, "out of memory");
    if (v->kind == MR_VOCAB_BPE) {
        if (mr_bpe_load_json_mem(&bpe, v->bpe_json, v->bpe_len, NULL, &err) != MR_OK ||
            mr_bpe_encode(bpe, text, len, 1, ids, len, &n, &err) != MR_OK) ex_die_err(PROG, &err);
        mr_bpe_free(bpe);
    } else {
        if (mr_vocab_encode(v, text, len, ids, &err) != MR_OK) ex_die_err(PROG, &err);
        n = len;
    }
    nv = (int64_t)((double)n * frac);
    if (nv < 2) ex_die(PROG, "the validation part of TEXT has fewer than 2 tokens");
    cp.n_threads = threads;
    if (mr_ctx_new(&ctx, &cp) != MR_OK) ex_fail(PROG, "cannot create a context (out of memory)");
    t0 = ex_now();
    if (mr_eval_step(ctx, m, ids + (n - (size_t)nv), nv, &l_step) != MR_OK) ex_fail(PROG, mr_ctx_error(ctx));
    t1 = ex_now();
    if (mr_eval_stateful(ctx, m, ids + (n - (size_t)nv), nv, 256, &l_par) != MR_OK) ex_fail(PROG, mr_ctx_error(ctx));
    t2 = ex_now();
    printf("%lld validation tokens; step path %.4f nats/token (%.0f tokens/s)%s; parallel forward %.4f (%.1f s)\n", (long long)nv, l_step,
           (double)(nv - 1) / (t1 - t0), mr_model_n_quantized(m) ? ", int8 products" : "", l_par, t2 - t1);
    mr_ctx_free(ctx);
    free(ids);
    mr_buffer_free(text);
    return 0;
}

int main(int argc, char **argv) {
    mr_model *m = NULL;
    mr_vocab v;
    mr_error err;
    static mr_train_meta meta;
    int i, q8_flags = MR_Q8_ALL, threads = 1;
    double frac = 0.1;
    ex_watch_stdout(PROG);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { usage(); return argc < 2 ? 2 : 0; }
    if (ex_is_version(argv[1])) { ex_version(PROG); return 0; }
    if (strcmp(argv[1], "export") && strcmp(argv[1], "import") && strcmp(argv[1], "info") && strcmp(argv[1], "quantize") && strcmp(argv[1], "eval")) {
        fprintf(stderr, "%s: unknown command '%s' (export, import, info, quantize or eval)\n", PROG, argv[1]);
        return 2;
    }
    if ((!strcmp(argv[1], "export") && argc != 4) || (!strcmp(argv[1], "import") && argc != 5) || (!strcmp(argv[1], "info") && argc != 3) ||
        (!strcmp(argv[1], "quantize") && argc < 4) || (!strcmp(argv[1], "eval") && argc < 4)) {
        usage();
        return 2;
    }
    if (!strcmp(argv[1], "quantize") || !strcmp(argv[1], "eval")) {   /* their flags, before loading */
        for (i = 4; i < argc; i++) {
            const char *f = argv[i];
            if (!strcmp(argv[1], "quantize") && !strcmp(f, "--float-embedding")) q8_flags &= ~MR_Q8_EMBEDDING;
            else if (!strcmp(argv[1], "quantize") && !strcmp(f, "--float-head")) q8_flags &= ~MR_Q8_HEAD;
            else if (!strcmp(argv[1], "eval") && !strcmp(f, "--val-fraction")) frac = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0.0001, 1);
            else if (!strcmp(argv[1], "eval") && !strcmp(f, "--threads")) threads = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 0, 1024);
            else { char b[300]; snprintf(b, sizeof b, "unknown flag '%s' for %s (try --help)", f, argv[1]); ex_die(PROG, b); }
        }
    }
    if (mr_ckpt_load(&m, &v, &meta, argv[2], NULL, &err) != MR_OK) { fprintf(stderr, "%s: cannot load '%s': %s\n", PROG, argv[2], err.msg); return ex_code(err.status); }
    if (!strcmp(argv[1], "eval")) {
        int rc = eval_cmd(m, &v, argv[3], frac, threads);
        mr_vocab_free(&v);
        mr_model_free(m);
        return rc;
    }
    if (!strcmp(argv[1], "quantize")) {
        size_t fb = mr_model_weight_bytes(m);
        static int32_t g0[1000], g1[1000];
        int first = 1000, same = 0;
        if (mr_model_n_quantized(m)) ex_die(PROG, "the model's weights are int8 already");
        greedy(m, 1000, g0);
        if (mr_model_quantize(m, q8_flags, &err) != MR_OK) ex_die_err(PROG, &err);
        greedy(m, 1000, g1);
        for (i = 0; i < 1000; i++) { same += g0[i] == g1[i]; if (g0[i] != g1[i] && first == 1000) first = i; }
        if (mr_ckpt_save(m, &v, &meta, argv[3], &err) != MR_OK) { fprintf(stderr, "%s: %s\n", PROG, err.msg); return 1; }
        printf("wrote %s: %d of %d tensors int8 (%s embedding, %s head); weights %.2f MB -> %.2f MB\n", argv[3], mr_model_n_quantized(m), m->ps->n,
               q8_flags & MR_Q8_EMBEDDING ? "int8" : "float", m->head ? (q8_flags & MR_Q8_HEAD ? "int8" : "float") : "tied", (double)fb / 1e6,
               (double)mr_model_weight_bytes(m) / 1e6);
        printf("greedy from token 0: the first %d of 1000 tokens equal the float model's (%d equal in all)\n", first, same);
    } else if (!strcmp(argv[1], "export")) {
        if (mr_safetensors_save(m, argv[3], &err) != MR_OK) { fprintf(stderr, "%s: %s\n", PROG, err.msg); return 1; }
        printf("wrote %d tensors (%lld weights) to %s\n", m->ps->n, (long long)mr_params_count(m->ps), argv[3]);
    } else if (!strcmp(argv[1], "import")) {
        if (mr_safetensors_load(m, argv[3], &err) != MR_OK) { fprintf(stderr, "%s: cannot import '%s': %s\n", PROG, argv[3], err.msg); return ex_code(err.status); }
        if (mr_ckpt_save(m, &v, &meta, argv[4], &err) != MR_OK) { fprintf(stderr, "%s: %s\n", PROG, err.msg); return 1; }
        printf("wrote %s: the configuration of %s with the weights of %s\n", argv[4], argv[2], argv[3]);
    } else {
        const mr_model_cfg *c = &m->cfg;
        printf("model: vocab %d, dim %d, %d layers (", c->vocab_size, c->dim, c->n_layers);
        for (i = 0; i < c->n_layers; i++) { char sp[48]; printf("%s%s", i ? "," : "", mr_model_layer_spec(c, i, sp, sizeof sp)); }
        printf("), ffn (");
        for (i = 0; i < c->n_layers; i++) printf("%s%s", i ? "," : "", mr_ffn_name(mr_model_ffn_kind(c, i)));
        printf(")");
        if (mr_model_has_attention(c)) printf(", %d heads, %d kv heads, rope theta %g", c->attn.n_heads, c->attn.n_kv_heads, (double)c->attn.rope_theta);
        if (mr_model_has_attention(c) || c->pos_emb) printf(", context %d%s", c->max_context, c->pos_emb ? ", learned positions" : "");
        if (mr_model_has_mixer(c, MR_MIXER_RWKV6)) printf(", rwkv head size %d, LoRA ranks %d/%d", c->rwkv.head_size, c->rwkv.mix_rank, c->rwkv.decay_rank);
        printf(", expansion %g, conv %d, ffn hidden %d, %s head, dropout %g, gru hidden norm %d; %lld weights\n", (double)c->expansion,
               c->conv_kernel, c->ffn_hidden, c->tie_embeddings ? "tied" : "untied", (double)c->dropout, c->gru_hidden_norm,
               (long long)mr_params_count(m->ps));
        if (mr_model_n_quantized(m)) printf("weights: %d of %d tensors int8, %.2f MB\n", mr_model_n_quantized(m), m->ps->n, (double)mr_model_weight_bytes(m) / 1e6);
        printf("vocabulary: %s, %d tokens\n", v.kind == MR_VOCAB_BYTES ? "bytes" : v.kind == MR_VOCAB_CHARS ? "characters" : "BPE", v.n);
        printf("training: step %lld, epoch %lld, %lld tokens, train loss %.4f, val loss %.4f, best %.4f, %.0f s\n",
               (long long)meta.step, (long long)meta.epoch, (long long)meta.tokens_seen, meta.train_loss, meta.val_loss,
               meta.best_val_loss, meta.wall_time);
        if (meta.args[0]) {
            printf("flags:");
            for (i = 0; meta.args[i]; i++) putchar(meta.args[i] == '\n' ? ' ' : meta.args[i]);
            putchar('\n');
        }
    }
    mr_vocab_free(&v);
    mr_model_free(m);
    return 0;
}
