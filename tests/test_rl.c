/* GRPO (the [rl] section) and minrnn-rl: group advantages, token weights of
   both aggregations, the clipped loss with its k3 KL and its gradient against
   a hand computation (double precision, its own finite differences) and
   against mr_gradcheck; batched rollouts (determinism, conditioning on the
   prompt, greedy batches equal single streams, their log-probabilities equal
   the parallel forward's, stops, bad arguments); and the program: bad input,
   a warm start and GRPO run twice with identical histories, Ctrl-C and
   --resume. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"
#include "cli_common.h"

#include <signal.h>
#include <unistd.h>

static mr_ctx *ctx;
static void teardown(void) { mr_ctx_free(ctx); ctx = NULL; }
static void need_ctx(void) {
    mr_ctx_params p = mr_ctx_defaults();
    if (ctx) return;
    p.n_threads = 1;
    if (mr_ctx_new(&ctx, &p) != MR_OK) { fprintf(stderr, "no context\n"); exit(1); }
    atexit(teardown);
}

static void test_advantages(void) {
    float r[12] = {1, 0, 0, 1, /* mean .5, sd sqrt(1/3) */ 1, 1, 1, 1, /* flat */ 0, 0.5f, 0, 0.25f};
    float a[12], u[12];
    int flat = -1, i;
    double sd = sqrt(1.0 / 3.0), m3 = 0.1875, v3 = 0, sd3;
    mr_grpo_advantages(r, 3, 4, 1, a, &flat);
    MR_CHECK(flat == 1);
    for (i = 0; i < 4; i++) MR_CHECK_NEAR(a[i], (r[i] - 0.5) / (sd + 1e-4), 1e-6);
    for (i = 4; i < 8; i++) MR_CHECK(a[i] == 0.f);
    for (i = 8; i < 12; i++) v3 += (r[i] - m3) * (r[i] - m3);
    sd3 = sqrt(v3 / 3);
    for (i = 8; i < 12; i++) MR_CHECK_NEAR(a[i], (r[i] - m3) / (sd3 + 1e-4), 1e-6);
    mr_grpo_advantages(r, 3, 4, 0, u, NULL);   /* Dr. GRPO: not scaled */
    for (i = 0; i < 4; i++) MR_CHECK_NEAR(u[i], r[i] - 0.5, 1e-7);
    for (i = 8; i < 12; i++) MR_CHECK_NEAR(u[i], r[i] - m3, 1e-7);
    {
        double s = 0;
        for (i = 0; i < 12; i++) s += a[i];
        MR_CHECK(fabs(s) < 1e-5);   /* each group's advantages sum to 0 */
    }
}

static void test_token_weights(void) {
    int len[3] = {2, 5, 1}, i, t;
    float w[3 * 6];
    mr_grpo_token_weights(len, 3, 6, 6, MR_GRPO_AGG_GRPO, w);
    for (i = 0; i < 3; i++)
        for (t = 0; t < 6; t++) MR_CHECK_NEAR(w[i * 6 + t], t < len[i] ? 1.0 / (3.0 * len[i]) : 0.0, 1e-7);
    mr_grpo_token_weights(len, 3, 6, 8, MR_GRPO_AGG_DR, w);
    for (i = 0; i < 3; i++)
        for (t = 0; t < 6; t++) MR_CHECK_NEAR(w[i * 6 + t], t < len[i] ? 1.0 / (3.0 * 8) : 0.0, 1e-7);
}

/* ---- the loss against a hand computation ---- */
#define NR 8
#define NV 5
static float lg0[NR * NV];
static int32_t tk[NR] = {1, 3, 0, 4, 2, 2, 1, 0};
static float wt[NR], old_lp[NR], ref_lp[NR], adv[NR];
static const double TEMP = 0.7, EPS = 0.2, BETA = 0.3;

static double ref_logp(const double *l, int tok) {
    double m = l[0], s = 0;
    int c;
    for (c = 1; c < NV; c++) m = l[c] > m ? l[c] : m;
    for (c = 0; c < NV; c++) s += exp((l[c] - m) / TEMP);
    return (l[tok] - m) / TEMP - log(s);
}
/* the GRPO loss in double, written from the formula */
static double hand_loss(const double *l, double *clipped) {
    double L = 0;
    int r;
    if (clipped) *clipped = 0;
    for (r = 0; r < NR; r++) {
        double lp, rho, cl, A = adv[r], un, cu, d;
        if (wt[r] == 0.f) continue;
        lp = ref_logp(l + r * NV, tk[r]);
        rho = exp(lp - old_lp[r]);
        cl = rho < 1 - EPS ? 1 - EPS : rho > 1 + EPS ? 1 + EPS : rho;
        un = rho * A; cu = cl * A;
        if (clipped && cu < un) *clipped += 1;
        d = ref_lp[r] - lp;
        L += wt[r] * (-(un < cu ? un : cu) + BETA * (exp(d) - d - 1));
    }
    return L;
}
static void setup_batch(void) {
    mr_rng g;
    int r, c;
    /* ratios: two clipped (A > 0 above 1 + eps, A < 0 below 1 - eps), two past the range on
       the unclipped side, the rest inside; one row with weight 0 */
    static const double lrho[NR] = {0.4, -0.5, 0.3, -0.4, 0.05, -0.1, 0.0, 0.2};
    static const float A[NR] = {1.2f, -0.7f, -0.9f, 0.8f, 0.5f, -1.1f, 0.3f, 2.0f};
    static const float W[NR] = {0.25f, 0.25f, 0.125f, 0.125f, 0.0625f, 0.0625f, 0.125f, 0.f};
    mr_rng_seed(&g, 42);
    for (r = 0; r < NR * NV; r++) lg0[r] = 2.f * mr_rng_normal(&g);
    for (r = 0; r < NR; r++) {
        double l[NV];
        for (c = 0; c < NV; c++) l[c] = lg0[r * NV + c];
        old_lp[r] = (float)(ref_logp(l, tk[r]) - lrho[r]);   /* rho = exp(lrho) */
        ref_lp[r] = (float)(ref_logp(l, tk[r]) + 0.3 * mr_rng_normal(&g));
        adv[r] = A[r]; wt[r] = W[r];
    }
}
static mr_grpo_cfg gcfg(void) {
    mr_grpo_cfg c = mr_grpo_defaults();
    c.eps = (float)EPS; c.beta = (float)BETA; c.temperature = (float)TEMP;
    return c;
}
static void test_loss_hand(void) {
    mr_tensor *x, *loss;
    mr_grpo_stats st;
    double l[NR * NV], clipped, L;
    int i;
    mr_grpo_cfg d = mr_grpo_defaults();
    need_ctx();
    MR_CHECK(d.eps == 0.2f && d.beta == 0.04f && d.temperature == 1.f);
    setup_batch();
    for (i = 0; i < NR * NV; i++) l[i] = lg0[i];
    L = hand_loss(l, &clipped);
    MR_CHECK(clipped == 2);
    x = mr_tensor_new2(ctx, NR, NV, 1);
    memcpy(x->data, lg0, sizeof lg0);
    loss = mr_grpo_loss(ctx, x, tk, wt, old_lp, ref_lp, adv, gcfg(), &st);
    MR_CHECK(loss != NULL);
    if (!loss) return;
    MR_CHECK_NEAR(loss->data[0], L, 1e-5);
    MR_CHECK(st.tokens == NR - 1);
    MR_CHECK_NEAR(st.clip_frac, 2.0 / 7.0, 1e-9);
    MR_CHECK(mr_backward(ctx, loss) == MR_OK);
    for (i = 0; i < NR * NV; i++) {   /* against central differences of the hand loss in double */
        double h = 1e-5, p, m, num;
        l[i] = lg0[i] + h; p = hand_loss(l, NULL);
        l[i] = lg0[i] - h; m = hand_loss(l, NULL);
        l[i] = lg0[i];
        num = (p - m) / (2 * h);
        MR_CHECK_MSG(fabs(x->grad[i] - num) < 1e-5 + 1e-4 * fabs(num), "row %d col %d: %g vs %g", i / NV, i % NV, (double)x->grad[i], num);
    }
    for (i = 0; i < NV; i++) MR_CHECK(x->grad[7 * NV + i] == 0.f);   /* the weight-0 row */
    mr_ctx_reset(ctx);
    {   /* without the KL, the clipped rows (0: A > 0, rho above 1 + eps; 1: A < 0, below 1 - eps) get no gradient */
        mr_grpo_cfg c = gcfg();
        double g2 = 0, g3 = 0;
        c.beta = 0.f;
        x = mr_tensor_new2(ctx, NR, NV, 1);
        memcpy(x->data, lg0, sizeof lg0);
        loss = mr_grpo_loss(ctx, x, tk, wt, old_lp, NULL, adv, c, &st);
        MR_CHECK(loss && mr_backward(ctx, loss) == MR_OK && st.kl == 0);
        for (i = 0; i < NV; i++) {
            MR_CHECK(x->grad[0 * NV + i] == 0.f && x->grad[1 * NV + i] == 0.f);
            g2 += fabs(x->grad[2 * NV + i]); g3 += fabs(x->grad[3 * NV + i]);
        }
        MR_CHECK(g2 > 1e-3 && g3 > 1e-3);   /* past the range on the unclipped side: a gradient */
        mr_ctx_reset(ctx);
    }
}
static mr_tensor *gc_fn(mr_ctx *c, mr_tensor **in, int n, void *ud) {
    (void)n; (void)ud;
    return mr_grpo_loss(c, in[0], tk, wt, old_lp, ref_lp, adv, gcfg(), NULL);
}
static void test_loss_gradcheck(void) {
    mr_tensor *x;
    mr_gradcheck_result res;
    mr_status s;
    mr_params *ps = NULL;
    int64_t sh[2] = {NR, NV};
    need_ctx();
    setup_batch();
    /* the input lives outside the arena: mr_gradcheck resets the context between passes */
    MR_CHECK(mr_params_new(&ps, NULL, NULL) == MR_OK);
    x = mr_params_add(ps, "logits", 2, sh, 0);
    MR_CHECK(mr_params_alloc(ps, NULL) == MR_OK);
    memcpy(x->data, lg0, sizeof lg0);
    s = mr_gradcheck(ctx, gc_fn, &x, 1, NULL, 1e-2f, 2e-3, 1e-2, 0, 7, &res);
    MR_CHECK_MSG(s == MR_OK && res.checked == NR * NV && res.failed == 0, "status %d (%s), %lld of %lld failed (worst %g vs %g)", (int)s,
                 mr_ctx_error(ctx), (long long)res.failed, (long long)res.checked, res.worst_analytic, res.worst_numeric);
    mr_ctx_reset(ctx);
    mr_params_free(ps);
}
/* both aggregations end to end: completion lengths 3 and 1, rho 1, beta 0: the loss is
   -sum w A; with equal lengths in a group it is 0 */
static void test_loss_aggregations(void) {
    int len[2] = {3, 1}, i;
    float w[2 * 3], a[6], o[6], lg[6 * NV];
    int32_t t[6] = {0, 1, 2, 3, 0, 0};
    mr_grpo_cfg c = mr_grpo_defaults();
    mr_tensor *x, *loss;
    need_ctx();
    c.beta = 0.f;
    for (i = 0; i < 6 * NV; i++) lg[i] = (float)((i * 7) % 5) * 0.3f;
    for (i = 0; i < 6; i++) { o[i] = mr_logprob(lg + i * NV, NV, 1.f, t[i]); a[i] = i < 3 ? 0.5f : -0.5f; }
    for (i = 0; i < 2; i++) {
        int agg = i ? MR_GRPO_AGG_DR : MR_GRPO_AGG_GRPO;
        double want = agg == MR_GRPO_AGG_GRPO ? -(3 * (0.5 / 6) + 1 * (-0.5 / 2)) : -(3 * 0.5 - 0.5) / 6.0;
        mr_grpo_token_weights(len, 2, 3, 3, agg, w);
        x = mr_tensor_new2(ctx, 6, NV, 1);
        memcpy(x->data, lg, sizeof lg);
        loss = mr_grpo_loss(ctx, x, t, w, o, NULL, a, c, NULL);
        MR_CHECK(loss && fabs(loss->data[0] - want) < 1e-6);
        mr_ctx_reset(ctx);
    }
    len[1] = 3;   /* equal lengths: the group's term is 0 by construction */
    mr_grpo_token_weights(len, 2, 3, 3, MR_GRPO_AGG_GRPO, w);
    x = mr_tensor_new2(ctx, 6, NV, 1);
    memcpy(x->data, lg, sizeof lg);
    loss = mr_grpo_loss(ctx, x, t, w, o, NULL, a, c, NULL);
    MR_CHECK(loss && fabs(loss->data[0]) < 1e-7);
    MR_CHECK(loss && mr_backward(ctx, loss) == MR_OK);
    {
        double g = 0;
        for (i = 0; i < 6 * NV; i++) g += fabs(x->grad[i]);
        MR_CHECK(g > 1e-3);   /* the gradient is not */
    }
    mr_ctx_reset(ctx);
    /* bad arguments */
    x = mr_tensor_new2(ctx, 6, NV, 1);
    c.beta = 0.1f;
    MR_CHECK(mr_grpo_loss(ctx, x, t, w, o, NULL, a, c, NULL) == NULL && strstr(mr_ctx_error(ctx), "reference"));
    mr_ctx_reset(ctx);
    x = mr_tensor_new2(ctx, 6, NV, 1);
    c.beta = 0; c.temperature = 0;
    MR_CHECK(mr_grpo_loss(ctx, x, t, w, o, NULL, a, c, NULL) == NULL);
    mr_ctx_reset(ctx);
    x = mr_tensor_new2(ctx, 6, NV, 1);
    c.temperature = 1; t[2] = NV;
    MR_CHECK(mr_grpo_loss(ctx, x, t, w, o, NULL, a, c, NULL) == NULL && strstr(mr_ctx_error(ctx), "outside"));
    mr_ctx_reset(ctx);
    MR_CHECK(isnan(mr_logprob(lg, NV, 0.f, 1)) && isnan(mr_logprob(lg, NV, 1.f, NV)));
}

/* ---- rollouts ---- */
static mr_model *small_model(const char *layers, int V) {
    mr_model_cfg cfg = mr_model_defaults(V);
    mr_model *m = NULL;
    mr_error e;
    mr_rng g;
    int64_t k;
    cfg.dim = 32; cfg.n_layers = 2; cfg.ffn_hidden = 64; cfg.attn.n_heads = 4; cfg.max_context = 64;
    cfg.rwkv.head_size = 16; cfg.rwkv.mix_rank = 8; cfg.rwkv.decay_rank = 8;
    if (mr_model_cfg_set_layers(&cfg, layers, &e) != MR_OK || mr_model_new(&m, &cfg, NULL, &e) != MR_OK) { MR_CHECK_MSG(0, "%s", e.msg); return NULL; }
    mr_rng_seed(&g, 5);
    mr_model_init_weights(m, &g);
    for (k = 0; k < mr_tensor_numel(m->emb); k++) m->emb->data[k] *= 8.f;   /* a peaked, prompt-sensitive distribution */
    return m;
}
static void test_rollout(void) {
    static const char *kinds[] = {"mingru", "gru", "attn", "rwkv6"};
    int ki;
    need_ctx();
    for (ki = 0; ki < 4; ki++) {
        enum { B = 6, L = 10, V = 12 };
        mr_model *m = small_model(kinds[ki], V);
        mr_state *st = NULL, *one = NULL;
        mr_error e;
        mr_rng g;
        int32_t P[B][5] = {{1, 2, 3}, {1, 2, 4}, {5}, {1, 2, 3, 6, 7}, {8, 9}, {1, 2, 3}}, tok[B * L], tok2[B * L], t1[L];
        const int32_t *pp[B];
        int pl[B] = {3, 3, 1, 5, 2, 3}, len[B], len2[B], l1, b, i;
        float lp[B * L], lp2[B * L], l1p[L];
        mr_rollout_cfg c;
        int64_t steps;
        if (!m) return;
        for (b = 0; b < B; b++) pp[b] = P[b];
        MR_CHECK(mr_state_new(&st, m, B, &e) == MR_OK && mr_state_new(&one, m, 1, &e) == MR_OK);
        memset(&c, 0, sizeof c);
        c.temperature = 1.f; c.top_p = 1.f; c.max_len = L; c.stop = 0;
        mr_rng_seed(&g, 9);
        MR_CHECK(mr_rollout(ctx, m, st, pp, pl, &c, &g, tok, lp, len, &steps) == MR_OK);
        mr_rng_seed(&g, 9);
        MR_CHECK(mr_rollout(ctx, m, st, pp, pl, &c, &g, tok2, lp2, len2, NULL) == MR_OK);
        MR_CHECK(!memcmp(tok, tok2, sizeof tok) && !memcmp(lp, lp2, sizeof lp) && !memcmp(len, len2, sizeof len));   /* deterministic */
        for (b = 0; b < B; b++) {
            MR_CHECK(len[b] >= 1 && len[b] <= L);
            for (i = 0; i < len[b] - 1; i++) MR_CHECK(tok[b * L + i] != 0);   /* only the last may be the stop token */
            MR_CHECK(len[b] == L || tok[b * L + len[b] - 1] == 0);
            for (i = len[b]; i < L; i++) MR_CHECK(tok[b * L + i] == -1 && lp[b * L + i] == 0.f);
            MR_CHECK(steps >= pl[b] + len[b] - 1);
        }
        /* the sampling log-probabilities equal the parallel forward's over prompt + completion */
        for (b = 0; b < B; b++) {
            int32_t seq[32];
            int n = pl[b] + len[b] - 1;
            mr_tensor *lg;
            int prev = mr_ctx_set_no_grad(ctx, 1);
            memcpy(seq, P[b], sizeof(int32_t) * (size_t)pl[b]);
            memcpy(seq + pl[b], tok + b * L, sizeof(int32_t) * (size_t)len[b]);
            lg = mr_model_forward(ctx, m, seq, 1, n, NULL, 0);
            MR_CHECK(lg != NULL);
            for (i = 0; lg && i < len[b]; i++)
                MR_CHECK_NEAR(mr_logprob(lg->data + (int64_t)(pl[b] - 1 + i) * lg->row_stride, V, 1.f, tok[b * L + i]), lp[b * L + i], 1e-4);
            mr_ctx_set_no_grad(ctx, prev);
            mr_ctx_reset(ctx);
        }
        /* conditioned on the prompt: the same generator, prompts 0 and 1 differ in their last
           token, and the first token's log-probability differs */
        {
            double lp_a, lp_b;
            mr_tensor *lg;
            int prev = mr_ctx_set_no_grad(ctx, 1);
            lg = mr_model_forward(ctx, m, P[0], 1, 3, NULL, 0);
            lp_a = lg ? mr_logprob(lg->data + 2 * lg->row_stride, V, 1.f, 5) : 0;
            mr_ctx_reset(ctx);
            lg = mr_model_forward(ctx, m, P[1], 1, 3, NULL, 0);
            lp_b = lg ? mr_logprob(lg->data + 2 * lg->row_stride, V, 1.f, 5) : 0;
            mr_ctx_reset(ctx);
            mr_ctx_set_no_grad(ctx, prev);
            MR_CHECK_MSG(fabs(lp_a - lp_b) > 1e-2, "%s: log p(5 | prompt) %g and %g", kinds[ki], lp_a, lp_b);
        }
        /* greedy: the batch equals each stream alone */
        c.temperature = 0.f;
        MR_CHECK(mr_rollout(ctx, m, st, pp, pl, &c, &g, tok, lp, len, NULL) == MR_OK);
        for (b = 0; b < B; b++) {
            MR_CHECK(mr_rollout(ctx, m, one, pp + b, pl + b, &c, &g, t1, l1p, &l1, NULL) == MR_OK);
            MR_CHECK_MSG(l1 == len[b] && !memcmp(t1, tok + b * L, sizeof(int32_t) * (size_t)l1), "%s stream %d", kinds[ki], b);
            for (i = 0; i < l1; i++) MR_CHECK_NEAR(l1p[i], lp[b * L + i], 1e-5);
        }
        /* bad arguments */
        pl[2] = 0;
        MR_CHECK(mr_rollout(ctx, m, st, pp, pl, &c, &g, tok, lp, len, NULL) == MR_ERR_ARG && strstr(mr_ctx_error(ctx), "empty"));
        mr_ctx_reset(ctx);
        pl[2] = 1; P[2][0] = V;
        MR_CHECK(mr_rollout(ctx, m, st, pp, pl, &c, &g, tok, lp, len, NULL) == MR_ERR_RANGE);
        mr_ctx_reset(ctx);
        P[2][0] = 5;
        if (!strcmp(kinds[ki], "attn")) {
            c.max_len = 62;
            MR_CHECK(mr_rollout(ctx, m, st, pp, pl, &c, &g, tok, lp, len, NULL) == MR_ERR_RANGE && strstr(mr_ctx_error(ctx), "context"));
            mr_ctx_reset(ctx);
        }
        mr_state_free(st); mr_state_free(one);
        mr_model_free(m);
    }
}

/* ---- the program ---- */
#define DIR "build/rl-test"
#define RL "build/minrnn-rl"
static int have_rl(void) { return sh("test -x " RL) == 0; }

static void test_cli_bad_input(void) {
    static const struct { const char *cmd; const char *msg; } cases[] = {
        {RL " --sft --task sort --out " DIR "/x", "unknown task"},
        {RL " --sft --out " DIR "/x", "no task"},
        {RL " --task reverse --out " DIR "/x", "--model"},
        {RL " --sft --task-file " DIR "/empty.tsv --out " DIR "/x", "no prompt<TAB>answer"},
        {RL " --sft --task-file " DIR "/bad.tsv --out " DIR "/x", "line 2: expected prompt<TAB>answer"},
        {RL " --sft --task-file /nonexistent/t.tsv --out " DIR "/x", "cannot open"},
        {RL " --model " DIR "/digits/model.bin --task reverse --group 1 --out " DIR "/x", "at least 2"},
        {RL " --model " DIR "/digits/model.bin --task reverse --out " DIR "/x", "cannot spell '>'"},
        {RL " --model /nonexistent.bin --task reverse --out " DIR "/x", "cannot load"},
        {RL " --model " DIR "/digits/model.bin --task arith --scale-rewards maybe", "group or none"},
        {RL " --model " DIR "/digits/model.bin --task arith --ops /", "not one of"},
        {RL " --sft --task copy --min-len 5 --max-len 3", "above --max-len"},
        {RL " --sft --task copy --frobnicate", "unknown flag"},
        {RL " --sft --task copy --steps 0", "must be in"},
    };
    size_t i;
    if (!have_rl()) MR_SKIP(RL " missing");
    MR_CHECK(sh("mkdir -p " DIR " && : > " DIR "/empty.tsv && printf 'ab\\tba\\nno tab here\\n' > " DIR "/bad.tsv") == 0);
    /* a model whose vocabulary is the arithmetic task's (digits, operators) */
    MR_CHECK(sh(RL " --sft --task arith --dim 16 --depth 1 --steps 2 --batch 4 --threads 1 --eval-prompts 4 --out " DIR "/digits 2> " DIR "/digits.log") == 0);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err;
        int rc = sh("%s > /dev/null 2> " DIR "/bad.err", cases[i].cmd);
        err = slurp(DIR "/bad.err", NULL);
        MR_CHECK_MSG(rc == 2 && err && strstr(err, cases[i].msg) && strchr(err, '\n') == err + strlen(err) - 1, "%s: exit %d, '%s' (want '%s')", cases[i].cmd, rc,
                     err ? err : "(none)", cases[i].msg);
        mr_buffer_free(err);
    }
    MR_CHECK(sh(RL " --help | grep -q 'near 0 when MU = 1 and beta = 0'") == 0);
}

/* history.csv without its time columns (wall_s, and the two tokens/s of RL) */
static char *hist_no_time(const char *path, int rl) {
    char *s = slurp(path, NULL), *o, *p, *q;
    int col = 0;
    if (!s) return NULL;
    o = (char *)malloc(strlen(s) + 1);
    for (p = s, q = o; *p; p++) {
        int skip = col == 1 || (rl && (col == 8 || col == 9));
        if (*p == '\n') { col = 0; *q++ = *p; continue; }
        if (*p == ',') { col++; *q++ = *p; continue; }
        if (!skip) *q++ = *p;
    }
    *q = 0;
    mr_buffer_free(s);
    return o;
}
static void test_cli_runs(void) {
    char *a, *b;
    if (!have_rl()) MR_SKIP(RL " missing");
    /* a warm start and GRPO, twice: identical histories but for the times */
    MR_CHECK(sh(RL " --sft --task reverse --min-len 2 --max-len 3 --alphabet abc --dim 32 --depth 2 --steps 60 --batch 16 --eval-every 30 --threads 2 "
                "--eval-prompts 16 --out " DIR "/sft 2> " DIR "/sft.log") == 0);
    MR_CHECK(sh(RL " --model " DIR "/sft/model.bin --task reverse --min-len 2 --max-len 3 --alphabet abc --steps 4 --group 4 --prompts 3 --eval-every 2 --threads 2 "
                "--eval-prompts 16 --out " DIR "/rl1 2> " DIR "/rl1.log") == 0);
    MR_CHECK(sh(RL " --model " DIR "/sft/model.bin --task reverse --min-len 2 --max-len 3 --alphabet abc --steps 4 --group 4 --prompts 3 --eval-every 2 --threads 2 "
                "--eval-prompts 16 --out " DIR "/rl2 2> /dev/null") == 0);
    a = hist_no_time(DIR "/rl1/history.csv", 1); b = hist_no_time(DIR "/rl2/history.csv", 1);
    MR_CHECK(a && b && !strcmp(a, b));
    MR_CHECK(a && strstr(a, "update,,reward,exact,kl,clip_frac,zero_var_frac,completion_len,,,loss,heldout_exact\n0,,"));
    free(a); free(b);
    MR_CHECK(sh("test $(grep -c '^[1-4],' " DIR "/rl1/history.csv) -eq 4 && test -f " DIR "/rl1/model.bin && test -f " DIR "/rl1/ref.bin") == 0);
    MR_CHECK(sh("grep -q 'held-out exact match at the start' " DIR "/rl1.log && grep -q 'update 4 .*held-out' " DIR "/rl1.log") == 0);
    /* the curves: written by both runs, redrawn by --plot; --plot of a directory without a history fails */
    MR_CHECK(sh("grep -q 'held-out exact match (greedy)' " DIR "/sft/curve.svg && grep -q 'sampled exact match' " DIR "/rl1/curve.svg && "
                "grep -q '<polyline' " DIR "/rl1/curve.svg") == 0);
    MR_CHECK(sh("rm " DIR "/rl1/curve.svg && " RL " --plot " DIR "/rl1 && grep -q '</svg>' " DIR "/rl1/curve.svg") == 0);
    MR_CHECK(sh(RL " --plot " DIR "/nothing-here 2> /dev/null") == 2);
    /* resumed in two halves: the same history as one run */
    MR_CHECK(sh(RL " --model " DIR "/sft/model.bin --task reverse --min-len 2 --max-len 3 --alphabet abc --steps 2 --group 4 --prompts 3 --eval-every 2 --threads 2 "
                "--eval-prompts 16 --out " DIR "/rl3 2> /dev/null") == 0);
    MR_CHECK(sh(RL " --resume " DIR "/rl3/model.bin --steps 4 2> " DIR "/rl3.log") == 0);
    a = hist_no_time(DIR "/rl1/history.csv", 1); b = hist_no_time(DIR "/rl3/history.csv", 1);
    MR_CHECK_MSG(a && b && !strcmp(a, b), "one run:\n%s\nresumed:\n%s", a ? a : "", b ? b : "");
    free(a); free(b);
    /* every option on: dr_grpo, unscaled, mu 2, partial credit, filtered groups, top-k */
    MR_CHECK(sh(RL " --model " DIR "/sft/model.bin --task reverse --min-len 2 --max-len 3 --alphabet abc --steps 2 --group 4 --prompts 2 --threads 2 --eval-prompts 8 "
                "--loss-agg dr_grpo --scale-rewards none --epochs-per-batch 2 --partial-credit --filter-groups --top-k 3 --beta 0 --out " DIR "/rl4 2> " DIR "/rl4.log") == 0);
    MR_CHECK(sh("grep -q 'dr_grpo aggregation' " DIR "/rl4.log && grep -q 'groups filtered' " DIR "/rl4.log") == 0);
    /* a task file */
    MR_CHECK(sh("for i in $(seq 100 160); do printf '%%s?\\t%%s\\n' $i $((i %% 7)); done > " DIR "/mod7.tsv") == 0);
    MR_CHECK(sh(RL " --sft --task-file " DIR "/mod7.tsv --dim 16 --depth 1 --steps 5 --batch 8 --threads 2 --out " DIR "/file 2> " DIR "/file.log") == 0);
    MR_CHECK(sh(RL " --model " DIR "/file/model.bin --task-file " DIR "/mod7.tsv --steps 2 --group 2 --prompts 2 --threads 2 --out " DIR "/file-rl 2> /dev/null") == 0);
}
static void test_cli_interrupt(void) {
    int rc;
    char *a;
    if (!have_rl()) MR_SKIP(RL " missing");
    if (sh("test -f " DIR "/sft/model.bin") != 0) MR_SKIP("needs cli_runs first");
    /* Ctrl-C during a long run: saves, 130, and --resume goes on */
    rc = sh("(" RL " --model " DIR "/sft/model.bin --task reverse --min-len 2 --max-len 3 --alphabet abc --time-budget 60 --group 4 --prompts 3 --threads 2 "
            "--eval-prompts 8 --out " DIR "/rl5 2> " DIR "/rl5.log & p=$!; sleep 2; kill -INT $p; wait $p)");
    MR_CHECK_MSG(rc == 130, "exit %d", rc);
    a = slurp(DIR "/rl5.log", NULL);
    MR_CHECK(a && strstr(a, "interrupted after"));
    mr_buffer_free(a);
    MR_CHECK(sh(RL " --resume " DIR "/rl5/model.bin --time-budget 1 2> " DIR "/rl5b.log") == 0 && sh("grep -q 'done after' " DIR "/rl5b.log") == 0);
}

MR_TEST_MAIN({"advantages", test_advantages}, {"token_weights", test_token_weights}, {"loss_hand", test_loss_hand},
             {"loss_gradcheck", test_loss_gradcheck}, {"loss_aggregations", test_loss_aggregations}, {"rollout", test_rollout},
             {"cli_bad_input", test_cli_bad_input}, {"cli_runs", test_cli_runs}, {"cli_interrupt", test_cli_interrupt})
