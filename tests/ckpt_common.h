/* Shared by the checkpoint tests: a small model of every part (conv,
   expansion 1.5, FFN) with fixed weights, and bitwise weight comparison. */
#ifndef MR_CKPT_COMMON_H
#define MR_CKPT_COMMON_H
static mr_model *small_model(int V, const char *arch) {
    mr_model_cfg cfg = mr_model_defaults(V);
    mr_model *m = NULL;
    mr_rng r;
    cfg.dim = 8; cfg.n_layers = 2; cfg.ffn_hidden = 12; cfg.conv_kernel = 2; cfg.expansion = 1.5f;
    mr_model_cfg_set_layers(&cfg, arch, NULL);
    if (mr_model_new(&m, &cfg, NULL, NULL) != MR_OK) return NULL;
    mr_rng_seed(&r, 9);
    mr_model_init_weights(m, &r);
    return m;
}
static int same_weights(const mr_model *a, const mr_model *b) {
    return a->ps->numel == b->ps->numel && !memcmp(a->ps->data, b->ps->data, sizeof(float) * a->ps->numel);
}
#endif
