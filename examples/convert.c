/* minrnn-convert: move weights between minrnn checkpoints and .safetensors.

     minrnn-convert export MODEL.bin OUT.safetensors
         writes every weight as F32 under the names of docs/FORMAT.md
     minrnn-convert import MODEL.bin IN.safetensors OUT.bin
         takes the configuration and vocabulary of MODEL.bin and the weights of
         IN.safetensors (F32, F16, BF16 or F64; every tensor, with its shape)
     minrnn-convert info MODEL.bin
         prints the configuration, the vocabulary and the training metadata */
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
           "       minrnn-convert info MODEL.bin\n");
}

int main(int argc, char **argv) {
    mr_model *m = NULL;
    mr_vocab v;
    mr_error err;
    static mr_train_meta meta;
    int i;
    ex_watch_stdout(PROG);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { usage(); return argc < 2 ? 2 : 0; }
    if (ex_is_version(argv[1])) { ex_version(PROG); return 0; }
    if (strcmp(argv[1], "export") && strcmp(argv[1], "import") && strcmp(argv[1], "info")) {
        fprintf(stderr, "%s: unknown command '%s' (export, import or info)\n", PROG, argv[1]);
        return 2;
    }
    if ((!strcmp(argv[1], "export") && argc != 4) || (!strcmp(argv[1], "import") && argc != 5) || (!strcmp(argv[1], "info") && argc != 3)) {
        usage();
        return 2;
    }
    if (mr_ckpt_load(&m, &v, &meta, argv[2], NULL, &err) != MR_OK) { fprintf(stderr, "%s: cannot load '%s': %s\n", PROG, argv[2], err.msg); return ex_code(err.status); }
    if (!strcmp(argv[1], "export")) {
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
