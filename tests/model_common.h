/* Shared by the model tests: a model's parallel pass against its step mode. */
#ifndef MR_MODEL_COMMON_H
#define MR_MODEL_COMMON_H
/* Feeds tok [B, T] in one parallel pass from state s1 and one token at a
   time from state s2 (no-grad, the context reset between calls; the two
   states should start equal); returns max |parallel - step| over the logits.
   lg_par holds B*T*V floats, lg_step B*V. */
/* |x - ref| relative to the reference's size, 1 at least: the two paths round differently */
static double mt_reldiff(double x, double ref) { return fabs(x - ref) / (fabs(ref) > 1 ? fabs(ref) : 1); }
static double mt_parallel_vs_step(mr_ctx *ctx, mr_model *m, const int32_t *tok, int B, int T, mr_state *s1, mr_state *s2,
                                  float *lg_par, float *lg_step) {
    int V = m->cfg.vocab_size, b, t, i, prev = mr_ctx_set_no_grad(ctx, 1);
    int32_t step[64];
    double maxd = 0;
    mr_tensor *lg = mr_model_forward(ctx, m, tok, B, T, s1, 0);
    MR_CHECK_MSG(lg != NULL, "%s", mr_ctx_error(ctx));
    MR_CHECK(B <= 64);
    if (lg) mr_tensor_copy_to(lg, lg_par);
    mr_ctx_reset(ctx);
    for (t = 0; t < T && B <= 64; t++) {
        for (b = 0; b < B; b++) step[b] = tok[b * T + t];
        MR_CHECK(mr_model_step(ctx, m, step, s2, lg_step) == MR_OK);
        mr_ctx_reset(ctx);
        for (b = 0; b < B; b++) for (i = 0; i < V; i++) {
            double d = mt_reldiff(lg_step[b * V + i], lg_par[(b * T + t) * V + i]);
            if (d > maxd) maxd = d;
        }
    }
    mr_ctx_set_no_grad(ctx, prev);
    return maxd;
}
#endif
