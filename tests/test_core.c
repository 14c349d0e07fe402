/* Core tests: random numbers, optimizers, schedules, clipping, allocation
   counting (no malloc in a warm step), thread isolation and determinism. */
#include <pthread.h>
static long n_malloc, n_realloc, n_free;
#include <stdlib.h>
static void *cnt_malloc(size_t n) { n_malloc++; return malloc(n); }
static void *cnt_realloc(void *p, size_t n) { n_realloc++; return realloc(p, n); }
static void cnt_free(void *p) { if (p) n_free++; free(p); }
#define MINRNN_MALLOC(sz, ud) ((void)(ud), cnt_malloc(sz))
#define MINRNN_REALLOC(p, o, n, ud) ((void)(ud), (void)(o), cnt_realloc((p), (n)))
#define MINRNN_FREE(p, ud) ((void)(ud), cnt_free(p))
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

static void test_rng(void) {
    mr_rng a, b;
    int i, hist[10] = {0};
    double s = 0, ss = 0;
    mr_rng_seed(&a, 7); mr_rng_seed(&b, 7);
    for (i = 0; i < 1000; i++) MR_CHECK(mr_rng_u64(&a) == mr_rng_u64(&b));
    mr_rng_seed(&b, 8);
    MR_CHECK(mr_rng_u64(&a) != mr_rng_u64(&b));
    for (i = 0; i < 100000; i++) {
        float u = mr_rng_uniform(&a), g = mr_rng_normal(&a);
        MR_CHECK(u >= 0.f && u < 1.f);
        hist[(int)(u * 10)]++;
        s += g; ss += g * g;
    }
    for (i = 0; i < 10; i++) MR_CHECK(hist[i] > 9500 && hist[i] < 10500);
    MR_CHECK(fabs(s / 100000) < 0.02 && fabs(ss / 100000 - 1) < 0.03);
    for (i = 0; i < 1000; i++) MR_CHECK(mr_rng_below(&a, 3) < 3);
}

static void test_adamw(void) {
    /* against the textbook formula in double on one parameter with and without decay */
    mr_params *ps = NULL;
    MR_CHECK(mr_params_new(&ps, NULL, NULL) == MR_OK);
    int64_t sh2[2] = {2, 3}, sh1[1] = {3};
    mr_tensor *w = mr_params_add(ps, "w", 2, sh2, 0), *b = mr_params_add(ps, "b", 1, sh1, 0);
    mr_adamw opt;
    mr_adamw_cfg cfg = mr_adamw_defaults();
    double rw[6], rb[3], m[9] = {0}, v[9] = {0};
    int step, i;
    MR_CHECK(mr_params_alloc(ps, NULL) == MR_OK);
    MR_CHECK(b->flags & MR_TENSOR_NO_DECAY);
    MR_CHECK(!(w->flags & MR_TENSOR_NO_DECAY));
    for (i = 0; i < 6; i++) rw[i] = w->data[i] = 0.1f * (float)(i + 1);
    for (i = 0; i < 3; i++) rb[i] = b->data[i] = -0.2f * (float)(i + 1);
    MR_CHECK(mr_adamw_init(&opt, ps, cfg, NULL) == MR_OK);
    for (step = 1; step <= 5; step++) {
        double lr = 0.01 * step, bc1 = 1 - pow(0.9, step), bc2 = 1 - pow(0.95, step);
        for (i = 0; i < 9; i++) {
            double g = 0.3 * sin(step * 1.0 + i), *p = i < 6 ? &rw[i] : &rb[i - 6];
            if (i < 6) w->grad[i] = (float)g; else b->grad[i - 6] = (float)g;
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.95 * v[i] + 0.05 * g * g;
            if (i < 6) *p *= 1 - lr * 0.1;
            *p -= lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + 1e-8);
        }
        mr_adamw_step(&opt, NULL, (float)lr);
    }
    for (i = 0; i < 6; i++) MR_CHECK_NEAR(w->data[i], rw[i], 1e-5);
    for (i = 0; i < 3; i++) MR_CHECK_NEAR(b->data[i], rb[i], 1e-5);
    mr_adamw_free(&opt);
    mr_params_free(ps);
}

static void test_sgd_clip(void) {
    mr_params *ps = NULL;
    MR_CHECK(mr_params_new(&ps, NULL, NULL) == MR_OK);
    int64_t sh[1] = {4};
    mr_tensor *w = mr_params_add(ps, "w", 1, sh, MR_PARAMS_DECAY);
    mr_sgd opt;
    mr_sgd_cfg cfg = {0.9f, 0.0f, 0};
    double buf = 0, ref = 1.0;
    int step;
    float n;
    MR_CHECK(mr_params_alloc(ps, NULL) == MR_OK);
    mr_tensor_fill(w, 1.0f);
    MR_CHECK(mr_sgd_init(&opt, ps, cfg, NULL) == MR_OK);
    for (step = 0; step < 4; step++) {
        double g = 0.5 + step;
        mr_tensor_fill((mr_tensor[]){{w->grad, NULL, 1, 0, {4}, 4, NULL}}, (float)g);
        buf = step == 0 ? g : 0.9 * buf + g;
        ref -= 0.1 * buf;
        mr_sgd_step(&opt, NULL, 0.1f);
    }
    MR_CHECK_NEAR(w->data[0], ref, 1e-6);
    mr_sgd_free(&opt);
    /* clipping: norm of (3,4,0,0) is 5 */
    memset(w->grad, 0, 4 * sizeof(float));
    w->grad[0] = 3; w->grad[1] = 4;
    n = mr_clip_grad_norm(ps, 1.0f);
    MR_CHECK_NEAR(n, 5.0, 1e-6);
    MR_CHECK_NEAR(w->grad[0], 0.6, 1e-5);
    MR_CHECK_NEAR(w->grad[1], 0.8, 1e-5);
    n = mr_clip_grad_norm(ps, 10.0f);   /* below the limit: unchanged */
    MR_CHECK_NEAR(n, 1.0, 1e-5);
    MR_CHECK_NEAR(w->grad[1], 0.8, 1e-5);
    mr_params_free(ps);
}

static void test_schedules(void) {
    mr_lr_sched s = {MR_SCHED_COSINE, 1.0f, 10, 110, 0.1f};
    MR_CHECK_NEAR(mr_lr_at(&s, 0), 0.1, 1e-6);
    MR_CHECK_NEAR(mr_lr_at(&s, 9), 1.0, 1e-6);
    MR_CHECK_NEAR(mr_lr_at(&s, 10), 1.0, 1e-6);
    MR_CHECK_NEAR(mr_lr_at(&s, 60), 0.55, 1e-6);
    MR_CHECK_NEAR(mr_lr_at(&s, 110), 0.1, 1e-6);
    MR_CHECK_NEAR(mr_lr_at(&s, 500), 0.1, 1e-6);
    s.kind = MR_SCHED_LINEAR;
    MR_CHECK_NEAR(mr_lr_at(&s, 60), 0.55, 1e-6);
    MR_CHECK_NEAR(mr_lr_at(&s, 35), 0.775, 1e-6);
    s.kind = MR_SCHED_CONSTANT;
    MR_CHECK_NEAR(mr_lr_at(&s, 60), 1.0, 1e-6);
    s.warmup_steps = 0;
    MR_CHECK_NEAR(mr_lr_at(&s, 0), 1.0, 1e-6);
}

/* A tiny language model step: embedding -> rmsnorm -> silu MLP -> head. */
typedef struct tiny { mr_ctx *ctx; mr_params *ps; mr_adamw opt; mr_tensor *emb, *nw, *w1, *b1, *w2; uint64_t seed; float loss; } tiny;
enum { TV = 37, TD = 24, TH = 48, TN = 64 };
static void tiny_init(tiny *m, uint64_t seed, int threads) {
    mr_ctx_params p = mr_ctx_defaults();
    int64_t se[2] = {TV, TD}, sn[1] = {TD}, s1[2] = {TH, TD}, sb[1] = {TH}, s2[2] = {TV, TH};
    mr_rng r;
    int i;
    p.n_threads = threads;
    p.arena_bytes = 4096;   /* tiny on purpose: the first step grows it */
    mr_ctx_new(&m->ctx, &p);
    mr_params_new(&m->ps, NULL, NULL);
    m->emb = mr_params_add(m->ps, "emb", 2, se, 0);
    m->nw = mr_params_add(m->ps, "norm", 1, sn, 0);
    m->w1 = mr_params_add(m->ps, "w1", 2, s1, 0);
    m->b1 = mr_params_add(m->ps, "b1", 1, sb, 0);
    m->w2 = mr_params_add(m->ps, "w2", 2, s2, 0);
    mr_params_alloc(m->ps, NULL);
    mr_rng_seed(&r, seed);
    for (i = 0; i < m->ps->n; i++) mr_params_init_normal(m->ps, m->ps->t[i], 0.3f, &r);
    mr_tensor_fill(m->nw, 1.0f);
    mr_adamw_init(&m->opt, m->ps, mr_adamw_defaults(), NULL);
    m->seed = seed;
}
static int tiny_step(tiny *m, int step) {
    int32_t ids[TN], tg[TN];
    mr_ctx *c = m->ctx;
    mr_tensor *h, *l;
    int i;
    for (i = 0; i < TN; i++) { ids[i] = (int32_t)((i * 7 + step * 3 + (int)m->seed) % TV); tg[i] = (int32_t)((ids[i] * 5 + 1) % TV); }
    h = mr_embedding(c, m->emb, ids, TN);
    h = mr_rmsnorm(c, h, m->nw, 1e-5f);
    h = mr_silu(c, mr_matmul(c, h, m->w1, 0, 1, m->b1));
    h = mr_matmul(c, h, m->w2, 0, 1, NULL);
    l = mr_cross_entropy(c, h, tg, -1);
    if (mr_backward(c, l) != MR_OK) return 0;
    m->loss = l->data[0];
    mr_clip_grad_norm(m->ps, 1.0f);
    mr_adamw_step(&m->opt, m->ctx, 1e-2f);
    mr_params_zero_grad(m->ps);
    mr_ctx_reset(c);
    return 1;
}
static void tiny_free(tiny *m) { mr_adamw_free(&m->opt); mr_params_free(m->ps); mr_ctx_free(m->ctx); }

static void test_no_malloc_warm_step(void) {
    tiny m;
    long before;
    int s;
    tiny_init(&m, 1, 2);
    for (s = 0; s < 3; s++) MR_CHECK(tiny_step(&m, s));
    before = n_malloc + n_realloc + n_free;
    for (s = 3; s < 20; s++) MR_CHECK(tiny_step(&m, s));
    MR_CHECK_MSG(n_malloc + n_realloc + n_free == before, "%ld allocator calls in 17 warm steps", n_malloc + n_realloc + n_free - before);
    MR_CHECK(m.loss < 3.0f);  /* it learns (ln 37 = 3.6) */
    tiny_free(&m);
}

/* the whole recurrent LM (every mixer, conv, state passing): no allocator call once warm */
static void test_no_malloc_model_step(void) {
    static const char *archs[] = {"mingru", "minlstm", "gru"};
    int a;
    for (a = 0; a < 3; a++) {
        mr_model_cfg cfg = mr_model_defaults(29);
        mr_model *m;
        mr_ctx *c;
        mr_ctx_params p = mr_ctx_defaults();
        mr_adamw opt;
        mr_state *st;
        mr_rng r;
        int32_t tok[4 * 33];
        long before = 0;
        int s, i;
        cfg.dim = 16; cfg.n_layers = 2; cfg.ffn_hidden = 32; cfg.conv_kernel = 3; cfg.dropout = 0.1f;
        MR_CHECK(mr_model_cfg_set_layers(&cfg, archs[a], NULL) == MR_OK);
        MR_CHECK(mr_model_new(&m, &cfg, NULL, NULL) == MR_OK);
        mr_rng_seed(&r, 3);
        mr_model_init_weights(m, &r);
        p.n_threads = 2; p.arena_bytes = 4096;
        mr_ctx_new(&c, &p);
        mr_adamw_init(&opt, m->ps, mr_adamw_defaults(), NULL);
        mr_state_new(&st, m, 4, NULL);
        for (s = 0; s < 12; s++) {
            mr_tensor *lg, *l;
            if (s == 3) before = n_malloc + n_realloc + n_free;
            for (i = 0; i < 4 * 33; i++) tok[i] = (int32_t)((i * 7 + s) % 29);
            lg = mr_model_forward(c, m, tok, 4, 32, st, 1);
            l = mr_cross_entropy(c, lg, tok + 1, -1);
            MR_CHECK(l && mr_backward(c, l) == MR_OK);
            mr_clip_grad_norm(m->ps, 1.0f);
            mr_adamw_step(&opt, c, 1e-3f);
            mr_params_zero_grad(m->ps);
            mr_ctx_reset(c);
        }
        MR_CHECK_MSG(n_malloc + n_realloc + n_free == before, "%s: %ld allocator calls in 9 warm steps", archs[a], n_malloc + n_realloc + n_free - before);
        mr_state_free(st); mr_adamw_free(&opt); mr_ctx_free(c); mr_model_free(m);
    }
}

typedef struct run { uint64_t seed; int threads, steps; float w[TV * TD]; float loss; } run;
static void *run_thread(void *arg) {
    run *r = (run *)arg;
    tiny m;
    int s;
    tiny_init(&m, r->seed, r->threads);
    for (s = 0; s < r->steps; s++) tiny_step(&m, s);
    memcpy(r->w, m.emb->data, sizeof r->w);
    r->loss = m.loss;
    tiny_free(&m);
    return NULL;
}
static void test_threads_isolated(void) {
    run seq[2], par[2];
    pthread_t th[2];
    int i;
    for (i = 0; i < 2; i++) { seq[i].seed = par[i].seed = (uint64_t)(i + 11); seq[i].threads = par[i].threads = 1; seq[i].steps = par[i].steps = 30; }
    for (i = 0; i < 2; i++) run_thread(&seq[i]);
    for (i = 0; i < 2; i++) pthread_create(&th[i], NULL, run_thread, &par[i]);
    for (i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (i = 0; i < 2; i++) {
        MR_CHECK(memcmp(seq[i].w, par[i].w, sizeof seq[i].w) == 0);
        MR_CHECK(seq[i].loss == par[i].loss);
    }
    MR_CHECK(memcmp(seq[0].w, seq[1].w, sizeof seq[0].w) != 0);
}
static void test_deterministic(void) {
    static run a, b, c;
    a.seed = b.seed = c.seed = 5; a.steps = b.steps = c.steps = 25;
    a.threads = b.threads = 2; c.threads = 1;
    run_thread(&a); run_thread(&b); run_thread(&c);
    MR_CHECK(memcmp(a.w, b.w, sizeof a.w) == 0);
    MR_CHECK_MSG(memcmp(a.w, c.w, sizeof a.w) == 0, "1 and 2 threads differ");
}

typedef struct counting { long calls; size_t live; } counting;
static void *ua_alloc(size_t n, void *ud) { ((counting *)ud)->calls++; return malloc(n); }
static void ua_free(void *p, void *ud) { ((counting *)ud)->calls++; free(p); }
static void test_allocator_callbacks(void) {
    /* a run-time allocator (with its user pointer) overrides the macros */
    mr_ctx *c;
    mr_ctx_params p = mr_ctx_defaults();
    mr_allocator al;
    counting cnt = {0, 0};
    long before = n_malloc;
    int64_t sh[2] = {512, 1024};
    al.alloc = ua_alloc; al.realloc = NULL; al.free = ua_free; al.ud = &cnt;
    p.allocator = &al;
    p.arena_bytes = 4096;
    MR_CHECK(mr_ctx_new(&c, &p) == MR_OK);
    MR_CHECK(mr_tensor_new(c, 2, sh, 0) != NULL);   /* grows the arena */
    mr_ctx_reset(c);
    mr_ctx_free(c);
    MR_CHECK(cnt.calls >= 6);
    MR_CHECK(n_malloc == before);
}

MR_TEST_MAIN({"rng", test_rng}, {"adamw", test_adamw}, {"sgd_clip", test_sgd_clip}, {"schedules", test_schedules},
             {"no_malloc_warm_step", test_no_malloc_warm_step}, {"no_malloc_model_step", test_no_malloc_model_step}, {"threads_isolated", test_threads_isolated},
             {"deterministic", test_deterministic}, {"allocator_callbacks", test_allocator_callbacks})
