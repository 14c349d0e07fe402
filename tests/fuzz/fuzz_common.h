/* Shared by the fuzz target and its seed-corpus generator: the fixed model
   that session files and safetensors inputs are loaded against (the seeds
   are written for exactly this configuration; it has every state block kind). */
#ifndef MR_FUZZ_COMMON_H
#define MR_FUZZ_COMMON_H
#define FZ_V 16       /* vocabulary of the fixed model */
#define FZ_BATCH 1    /* batch of the session files the target loads */
#define FZ_RNGS 2     /* generators a training restore asks for */
#define FZ_DATA 3     /* data positions a training restore asks for */

static mr_model *fz_model(int V, const char *arch, int dim, uint64_t seed) {
    mr_model_cfg cfg = mr_model_defaults(V);
    mr_model *m = NULL;
    mr_rng r;
    cfg.dim = dim; cfg.ffn_hidden = 6; cfg.conv_kernel = 3; cfg.expansion = 1.5f; cfg.gru_hidden_norm = 1;
    cfg.tie_embeddings = V > 64;
    cfg.attn.n_heads = 2; cfg.attn.n_kv_heads = 1; cfg.max_context = 8;   /* attention layers: a small KV cache */   /* small vocabularies get an untied head: one more tensor */
    cfg.rwkv.head_size = 2; cfg.rwkv.mix_rank = 2; cfg.rwkv.decay_rank = 3;   /* RWKV-6 layers: 2 wkv heads */
    if (mr_model_cfg_set_layers(&cfg, arch, NULL) != MR_OK) return NULL;
    if (strchr(arch, '+')) {   /* two mixers per block: with the MoE FFN (3-D expert tensors, CONF fields 24-29) */
        cfg.moe.n_experts = 3; cfg.moe.top_k = 1;
        if (mr_model_cfg_set_ffn(&cfg, "moe", NULL) != MR_OK) return NULL;
    } else if (strstr(arch, "rwkv6") && mr_model_cfg_set_ffn(&cfg, "rwkv-cmix", NULL) != MR_OK) return NULL;   /* its shift state too */
    if (mr_model_new(&m, &cfg, NULL, NULL) != MR_OK) return NULL;
    mr_rng_seed(&r, seed);
    mr_model_init_weights(m, &r);
    return m;
}
static mr_model *fz_fixed_model(void) { return fz_model(FZ_V, "mingru,attn,gru,minlstm", 4, 7); }
#endif
