/* Training checkpoints and inference sessions: optimizer, generator, data
   position and recurrent state round trip bit for bit; a restore that does
   not fit the caller's objects is refused and leaves them untouched; every
   truncation and byte flip of a training checkpoint or a session file is a
   clean error; a run resumed from a saved state produces the logits of an
   uninterrupted run bit for bit.
   MR_TEST_QUICK=1 (the sanitizer run) checks every 7th truncation and flip. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"
#include "ckpt_common.h"

static int quick(void) { const char *q = getenv("MR_TEST_QUICK"); return q && *q && *q != '0'; }

static void fill_random(float *x, size_t n, mr_rng *r) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = mr_rng_normal(r);
}
/* A few optimizer steps with random gradients: moments and step count nonzero. */
static void take_steps(mr_adamw *a, mr_sgd *s, mr_params *ps, mr_rng *r, int n) {
    int i;
    for (i = 0; i < n; i++) {
        fill_random(ps->grad, ps->numel, r);
        if (a) mr_adamw_step(a, NULL, 1e-2f);
        if (s) mr_sgd_step(s, NULL, 1e-2f);
    }
}
static mr_state *random_state(const mr_model *m, int batch, mr_rng *r) {
    mr_state *s = NULL;
    if (mr_state_new(&s, m, batch, NULL) != MR_OK) return NULL;
    fill_random(s->buf, mr_state_floats(s), r);
    s->valid = 1;
    return s;
}
static int same_state(const mr_state *a, const mr_state *b) {
    return a->batch == b->batch && a->valid == b->valid && mr_state_floats(a) == mr_state_floats(b) &&
           !memcmp(a->buf, b->buf, sizeof(float) * mr_state_floats(a));
}
/* Buffers over a model's parameters agree on every tensor (the alignment
   padding between tensors holds nothing). */
static int same_per_tensor(const mr_params *pa, const float *a, const mr_params *pb, const float *b) {
    int i;
    if (pa->n != pb->n) return 0;
    for (i = 0; i < pa->n; i++) {
        size_t n = (size_t)mr_tensor_numel(pa->t[i]);
        if (pa->offset[i] != pb->offset[i] || n != (size_t)mr_tensor_numel(pb->t[i]) || memcmp(a + pa->offset[i], b + pb->offset[i], n * 4)) return 0;
    }
    return 1;
}
static int same_adamw(const mr_adamw *a, const mr_adamw *b) {
    return a->t == b->t && same_per_tensor(a->ps, a->m, b->ps, b->m) && same_per_tensor(a->ps, a->v, b->ps, b->v);
}
static int same_sgd(const mr_sgd *a, const mr_sgd *b) {
    if (a->t != b->t || !a->buf != !b->buf) return 0;
    return !a->buf || same_per_tensor(a->ps, a->buf, b->ps, b->buf);
}
static void set_meta(mr_train_meta *meta) {
    memset(meta, 0, sizeof *meta);
    meta->step = 4242; meta->tokens_seen = (int64_t)1 << 33; meta->epoch = 7;
    meta->train_loss = 1.5; meta->val_loss = 1.75; meta->best_val_loss = 1.625; meta->wall_time = 12.5; meta->created_unix = 1700000000;
    strcpy(meta->args, "--arch gru,mingru --lr 3e-3 --data \"some file.txt\" --seed 42");
}
static int same_meta(const mr_train_meta *a, const mr_train_meta *b) {
    return a->step == b->step && a->tokens_seen == b->tokens_seen && a->epoch == b->epoch && a->train_loss == b->train_loss &&
           a->val_loss == b->val_loss && a->best_val_loss == b->best_val_loss && a->wall_time == b->wall_time &&
           a->created_unix == b->created_unix && !strcmp(a->args, b->args);
}

static mr_sgd_cfg sgd_cfg(float momentum) {
    mr_sgd_cfg c;
    c.momentum = momentum; c.weight_decay = 0.01f; c.nesterov = 1;
    return c;
}
/* A full training setup (AdamW or SGD, 2 generators, 3 data positions, a
   batch-2 state) around a small char-vocabulary model. */
typedef struct setup {
    mr_vocab v;
    mr_model *m;
    mr_adamw adamw;
    mr_sgd sgd;
    int use_sgd;
    mr_rng rngs[2];
    int64_t pos[3];
    mr_state *st;
    mr_train_meta meta;
    mr_train_state ts;
} setup;
static int setup_init(setup *s, int use_sgd, float momentum) {
    mr_rng r;
    mr_sgd_cfg sc;
    memset(s, 0, sizeof *s);
    mr_rng_seed(&r, 77);
    mr_vocab_from_text(&s->v, (const uint8_t *)"hello, checkpoint world", 23);
    s->m = small_model(s->v.n, "gru,minlstm");
    if (!s->m) return 0;
    s->use_sgd = use_sgd;
    if (use_sgd) {
        sc = sgd_cfg(momentum);
        if (mr_sgd_init(&s->sgd, s->m->ps, sc, NULL) != MR_OK) return 0;
        take_steps(NULL, &s->sgd, s->m->ps, &r, 3);
    } else {
        if (mr_adamw_init(&s->adamw, s->m->ps, mr_adamw_defaults(), NULL) != MR_OK) return 0;
        take_steps(&s->adamw, NULL, s->m->ps, &r, 3);
    }
    mr_rng_seed(&s->rngs[0], 1234); mr_rng_seed(&s->rngs[1], 5678);
    mr_rng_u64(&s->rngs[0]); mr_rng_normal(&s->rngs[1]);
    s->pos[0] = 123456789012345LL; s->pos[1] = -1; s->pos[2] = 77;
    s->st = random_state(s->m, 2, &r);
    if (!s->st) return 0;
    set_meta(&s->meta);
    s->ts.adamw = use_sgd ? NULL : &s->adamw;
    s->ts.sgd = use_sgd ? &s->sgd : NULL;
    s->ts.rngs = s->rngs; s->ts.n_rngs = 2;
    s->ts.data_pos = s->pos; s->ts.n_data_pos = 3;
    s->ts.state = s->st;
    return 1;
}
static void setup_free(setup *s) {
    if (s->use_sgd) mr_sgd_free(&s->sgd); else mr_adamw_free(&s->adamw);
    mr_state_free(s->st);
    mr_model_free(s->m);
}

/* The caller's objects for a restore, filled with junk so "untouched" means something. */
typedef struct target {
    mr_adamw adamw;
    mr_sgd sgd;
    mr_rng rngs[3];
    int64_t pos[4];
    mr_state *st;
    mr_train_state ts;
} target;
static int target_init(target *t, const mr_model *m, int use_sgd, float momentum, int batch) {
    mr_rng r;
    mr_sgd_cfg sc;
    int i;
    memset(t, 0, sizeof *t);
    mr_rng_seed(&r, 31337);
    sc = sgd_cfg(momentum);
    if (mr_adamw_init(&t->adamw, m->ps, mr_adamw_defaults(), NULL) != MR_OK) return 0;
    if (mr_sgd_init(&t->sgd, m->ps, sc, NULL) != MR_OK) return 0;
    fill_random(t->adamw.m, m->ps->numel, &r);
    fill_random(t->adamw.v, m->ps->numel, &r);
    t->adamw.t = 99;
    if (t->sgd.buf) fill_random(t->sgd.buf, m->ps->numel, &r);
    t->sgd.t = 98;
    for (i = 0; i < 3; i++) mr_rng_seed(&t->rngs[i], 100 + (uint64_t)i);
    for (i = 0; i < 4; i++) t->pos[i] = -1000 - i;
    t->st = random_state(m, batch, &r);
    if (!t->st) return 0;
    t->st->valid = 0;
    t->ts.adamw = use_sgd ? NULL : &t->adamw;
    t->ts.sgd = use_sgd ? &t->sgd : NULL;
    t->ts.rngs = t->rngs; t->ts.n_rngs = 2;
    t->ts.data_pos = t->pos; t->ts.n_data_pos = 3;
    t->ts.state = t->st;
    return 1;
}
static void target_free(target *t) {
    mr_adamw_free(&t->adamw);
    mr_sgd_free(&t->sgd);
    mr_state_free(t->st);
}
/* A deep copy of a target's contents, to check a refusal changed nothing. */
typedef struct snapshot { float *am, *av, *sb; int64_t at, st_; mr_rng rngs[3]; int64_t pos[4]; float *state; int valid; size_t n, ns; } snapshot;
static void snap_take(snapshot *c, const target *t) {
    c->n = t->adamw.ps->numel;
    c->am = (float *)malloc(c->n * 4); memcpy(c->am, t->adamw.m, c->n * 4);
    c->av = (float *)malloc(c->n * 4); memcpy(c->av, t->adamw.v, c->n * 4);
    c->sb = NULL;
    if (t->sgd.buf) { c->sb = (float *)malloc(c->n * 4); memcpy(c->sb, t->sgd.buf, c->n * 4); }
    c->at = t->adamw.t; c->st_ = t->sgd.t;
    memcpy(c->rngs, t->rngs, sizeof c->rngs);
    memcpy(c->pos, t->pos, sizeof c->pos);
    c->ns = mr_state_floats(t->st);
    c->state = (float *)malloc(c->ns * 4); memcpy(c->state, t->st->buf, c->ns * 4);
    c->valid = t->st->valid;
}
static int snap_same(const snapshot *c, const target *t) {
    return c->at == t->adamw.t && c->st_ == t->sgd.t && !memcmp(c->am, t->adamw.m, c->n * 4) && !memcmp(c->av, t->adamw.v, c->n * 4) &&
           (!c->sb || !memcmp(c->sb, t->sgd.buf, c->n * 4)) && !memcmp(c->rngs, t->rngs, sizeof c->rngs) &&
           !memcmp(c->pos, t->pos, sizeof c->pos) && c->ns == mr_state_floats(t->st) &&
           !memcmp(c->state, t->st->buf, c->ns * 4) && c->valid == t->st->valid;
}
static void snap_free(snapshot *c) { free(c->am); free(c->av); free(c->sb); free(c->state); }

/* Where the sections of a container lie: tag offsets and payload extents. */
typedef struct layout { int n; size_t tag[16], pay[16], len[16]; char name[16][5]; size_t end; } layout;
static int parse_layout(const uint8_t *b, size_t len, layout *L) {
    size_t off = 16;
    L->n = 0;
    while (off + 4 <= len) {
        uint64_t sl = 0;
        int k;
        if (!memcmp(b + off, "END!", 4)) { L->end = off; return 1; }
        if (L->n == 16 || off + 12 > len) return 0;
        for (k = 0; k < 8; k++) sl |= (uint64_t)b[off + 4 + k] << (8 * k);
        L->tag[L->n] = off; L->pay[L->n] = off + 12; L->len[L->n] = (size_t)sl;
        memcpy(L->name[L->n], b + off, 4); L->name[L->n][4] = 0;
        L->n++;
        off += 12 + (size_t)sl + 4;
    }
    return 0;
}
/* Index of the section whose tag holds byte i, -1 if none. */
static int in_tag(const layout *L, size_t i) {
    int k;
    for (k = 0; k < L->n; k++) if (i >= L->tag[k] && i < L->tag[k] + 4) return k;
    return -1;
}
static int in_payload(const layout *L, size_t i) {
    int k;
    for (k = 0; k < L->n; k++) if (i >= L->pay[k] && i < L->pay[k] + L->len[k]) return k;
    return -1;
}

static void roundtrip(int use_sgd, float momentum) {
    setup s;
    target t;
    mr_model *m2 = NULL;
    mr_vocab v2;
    mr_train_meta meta2;
    uint8_t *buf = NULL;
    size_t len = 0;
    mr_error e;
    int i;
    MR_CHECK(setup_init(&s, use_sgd, momentum));
    if (use_sgd) MR_CHECK(s.sgd.t == 3 && (momentum == 0.f || s.sgd.buf[0] != 0.f));
    else MR_CHECK(s.adamw.t == 3 && s.adamw.m[0] != 0.f && s.adamw.v[0] != 0.f);
    MR_CHECK_MSG(mr_ckpt_save_train_mem(s.m, &s.v, &s.meta, &s.ts, &buf, &len, &e) == MR_OK, "%s", e.msg);
    MR_CHECK_MSG(mr_ckpt_load_mem(&m2, &v2, &meta2, buf, len, NULL, &e) == MR_OK, "%s", e.msg);
    if (!m2) { mr_buffer_free(buf); setup_free(&s); return; }
    MR_CHECK(same_weights(s.m, m2) && !memcmp(&s.m->cfg, &m2->cfg, sizeof m2->cfg));
    MR_CHECK(v2.kind == MR_VOCAB_CHARS && v2.n == s.v.n && !memcmp(v2.chars, s.v.chars, (size_t)v2.n));
    MR_CHECK(same_meta(&s.meta, &meta2));
    MR_CHECK_MSG(!strcmp(meta2.args, s.meta.args), "args '%s'", meta2.args);
    MR_CHECK(target_init(&t, m2, use_sgd, momentum, 2));
    MR_CHECK_MSG(mr_ckpt_restore_mem(buf, len, m2, &t.ts, &e) == MR_OK, "%s", e.msg);
    if (use_sgd) MR_CHECK(same_sgd(&s.sgd, &t.sgd));
    else MR_CHECK(same_adamw(&s.adamw, &t.adamw));
    MR_CHECK(!memcmp(s.rngs, t.rngs, sizeof s.rngs));
    MR_CHECK(!memcmp(s.pos, t.pos, sizeof s.pos));
    MR_CHECK(same_state(s.st, t.st));
    /* resumed: the next step of both runs is identical */
    {
        mr_rng r1, r2;
        mr_rng_seed(&r1, 5); mr_rng_seed(&r2, 5);
        take_steps(use_sgd ? NULL : &s.adamw, use_sgd ? &s.sgd : NULL, s.m->ps, &r1, 1);
        take_steps(use_sgd ? NULL : &t.adamw, use_sgd ? &t.sgd : NULL, m2->ps, &r2, 1);
        MR_CHECK(same_weights(s.m, m2));
        for (i = 0; i < 2; i++) MR_CHECK(mr_rng_u64(&s.rngs[i]) == mr_rng_u64(&t.rngs[i]));
    }
    target_free(&t);
    mr_model_free(m2);
    mr_buffer_free(buf);
    setup_free(&s);
}
static void test_train_roundtrip_adamw(void) { roundtrip(0, 0.f); }
static void test_train_roundtrip_sgd(void) { roundtrip(1, 0.9f); }
/* SGD without momentum has no buffer: only the step count is saved. */
static void test_train_roundtrip_sgd_no_momentum(void) { roundtrip(1, 0.f); }

static void test_meta_args(void) {
    mr_vocab v, v2;
    mr_model *m = small_model(256, "mingru"), *m2 = NULL;
    mr_train_meta meta, meta2;
    uint8_t *buf;
    size_t len;
    mr_error e;
    mr_vocab_bytes(&v);
    set_meta(&meta);
    memset(meta.args, 'a', MR_ARGS_MAX - 1);   /* the longest args */
    meta.args[MR_ARGS_MAX - 1] = 0;
    MR_CHECK(mr_ckpt_save_mem(m, &v, &meta, &buf, &len, &e) == MR_OK);
    MR_CHECK(mr_ckpt_load_mem(&m2, &v2, &meta2, buf, len, NULL, &e) == MR_OK && strlen(meta2.args) == MR_ARGS_MAX - 1 && same_meta(&meta, &meta2));
    mr_model_free(m2); mr_buffer_free(buf);
    meta.args[0] = 0;   /* empty args */
    MR_CHECK(mr_ckpt_save_mem(m, &v, &meta, &buf, &len, &e) == MR_OK);
    MR_CHECK(mr_ckpt_load_mem(&m2, &v2, &meta2, buf, len, NULL, &e) == MR_OK && meta2.args[0] == 0 && same_meta(&meta, &meta2));
    mr_model_free(m2); mr_buffer_free(buf);
    memset(meta.args, 'b', MR_ARGS_MAX);   /* not NUL-terminated: refused */
    MR_CHECK(mr_ckpt_save_mem(m, &v, &meta, &buf, &len, &e) == MR_ERR_ARG && e.msg[0]);
    mr_model_free(m);
}

static void test_restore_refusals(void) {
    setup s;
    target t;
    snapshot c;
    uint8_t *buf = NULL, *plain = NULL;
    size_t len = 0, plen = 0;
    mr_error e;
    mr_status st;
    mr_model *other, *rm;
    MR_CHECK(setup_init(&s, 0, 0.f));
    rm = s.m;
    MR_CHECK(mr_ckpt_save_train_mem(s.m, &s.v, &s.meta, &s.ts, &buf, &len, &e) == MR_OK);
    MR_CHECK(mr_ckpt_save_mem(s.m, &s.v, &s.meta, &plain, &plen, &e) == MR_OK);
#define REFUSE(what, file, flen, expect) do { \
        snap_take(&c, &t); e.msg[0] = 0; \
        st = mr_ckpt_restore_mem(file, flen, rm, &t.ts, &e); \
        MR_CHECK_MSG(st == (expect) && e.msg[0], "%s: status %s, '%s'", what, mr_status_str(st), e.msg); \
        MR_CHECK_MSG(snap_same(&c, &t), "%s: the objects changed", what); \
        snap_free(&c); } while (0)
    /* SGD asked, the file holds AdamW (every other member fits) */
    MR_CHECK(target_init(&t, s.m, 1, 0.9f, 2));
    REFUSE("sgd for adamw", buf, len, MR_ERR_FORMAT);
    MR_CHECK_MSG(strstr(e.msg, "AdamW") && strstr(e.msg, "SGD"), "'%s'", e.msg);
    target_free(&t);
    /* another number of generators; the optimizer fits */
    MR_CHECK(target_init(&t, s.m, 0, 0.f, 2));
    t.ts.n_rngs = 3;
    REFUSE("3 rngs", buf, len, MR_ERR_FORMAT);
    t.ts.n_rngs = 1;
    REFUSE("1 rng", buf, len, MR_ERR_FORMAT);
    t.ts.n_rngs = 2;
    /* another data position size */
    t.ts.n_data_pos = 4;
    REFUSE("4 data positions", buf, len, MR_ERR_FORMAT);
    t.ts.n_data_pos = 2;
    REFUSE("2 data positions", buf, len, MR_ERR_FORMAT);
    t.ts.n_data_pos = 3;
    target_free(&t);
    /* a state of another batch */
    MR_CHECK(target_init(&t, s.m, 0, 0.f, 3));
    REFUSE("batch 3", buf, len, MR_ERR_FORMAT);
    MR_CHECK_MSG(strstr(e.msg, "batch"), "'%s'", e.msg);
    target_free(&t);
    /* a file without training state: every member is refused on its own */
    MR_CHECK(target_init(&t, s.m, 0, 0.f, 2));
    REFUSE("plain: all", plain, plen, MR_ERR_FORMAT);
    {
        mr_train_state full = t.ts, one;
        memset(&one, 0, sizeof one); one.adamw = full.adamw; t.ts = one;
        REFUSE("plain: adamw", plain, plen, MR_ERR_FORMAT);
        memset(&one, 0, sizeof one); one.rngs = full.rngs; one.n_rngs = 2; t.ts = one;
        REFUSE("plain: rngs", plain, plen, MR_ERR_FORMAT);
        memset(&one, 0, sizeof one); one.data_pos = full.data_pos; one.n_data_pos = 3; t.ts = one;
        REFUSE("plain: data", plain, plen, MR_ERR_FORMAT);
        memset(&one, 0, sizeof one); one.state = full.state; t.ts = one;
        REFUSE("plain: state", plain, plen, MR_ERR_FORMAT);
        /* nothing requested: nothing to refuse */
        memset(&one, 0, sizeof one); t.ts = one;
        MR_CHECK(mr_ckpt_restore_mem(plain, plen, s.m, &t.ts, &e) == MR_OK);
        t.ts = full;
    }
    /* a model of another configuration */
    other = small_model(s.v.n, "mingru,minlstm");
    MR_CHECK(other != NULL);
    if (other) {
        snap_take(&c, &t);
        t.ts.adamw = NULL;   /* the adamw belongs to s.m; only the model differs */
        st = mr_ckpt_restore_mem(buf, len, other, &t.ts, &e);
        MR_CHECK_MSG(st == MR_ERR_FORMAT && snap_same(&c, &t), "other model: %s '%s'", mr_status_str(st), e.msg);
        t.ts.adamw = &t.adamw;
        snap_free(&c);
        /* an optimizer of another model */
        st = mr_ckpt_restore_mem(buf, len, s.m, &t.ts, &e);
        MR_CHECK(st == MR_OK);
        {
            target t2;
            MR_CHECK(target_init(&t2, other, 0, 0.f, 2));
            t2.ts.rngs = NULL; t2.ts.n_rngs = 0; t2.ts.data_pos = NULL; t2.ts.n_data_pos = 0; t2.ts.state = NULL;
            snap_take(&c, &t2);
            st = mr_ckpt_restore_mem(buf, len, s.m, &t2.ts, &e);
            MR_CHECK_MSG(st == MR_ERR_ARG && snap_same(&c, &t2), "foreign optimizer: %s '%s'", mr_status_str(st), e.msg);
            snap_free(&c);
            /* a state created for another model (same batch) */
            t2.ts.adamw = NULL; t2.ts.state = t2.st;
            snap_take(&c, &t2);
            st = mr_ckpt_restore_mem(buf, len, s.m, &t2.ts, &e);
            MR_CHECK_MSG(st != MR_OK && snap_same(&c, &t2), "foreign state: %s '%s'", mr_status_str(st), e.msg);
            snap_free(&c);
            target_free(&t2);
        }
        mr_model_free(other);
    }
    /* both optimizers at once */
    t.ts.sgd = &t.sgd;
    REFUSE("two optimizers", buf, len, MR_ERR_ARG);
    t.ts.sgd = NULL;
    target_free(&t);
    /* SGD with momentum in the file, SGD without momentum in the run, and back */
    {
        setup s2;
        uint8_t *b2;
        size_t l2;
        MR_CHECK(setup_init(&s2, 1, 0.9f));
        rm = s2.m;
        MR_CHECK(mr_ckpt_save_train_mem(s2.m, &s2.v, NULL, &s2.ts, &b2, &l2, &e) == MR_OK);
        MR_CHECK(target_init(&t, s2.m, 1, 0.f, 2));
        REFUSE("momentum file, no-momentum run", b2, l2, MR_ERR_FORMAT);
        target_free(&t);
        mr_buffer_free(b2);
        setup_free(&s2);
        MR_CHECK(setup_init(&s2, 1, 0.f));
        rm = s2.m;
        MR_CHECK(mr_ckpt_save_train_mem(s2.m, &s2.v, NULL, &s2.ts, &b2, &l2, &e) == MR_OK);
        MR_CHECK(target_init(&t, s2.m, 1, 0.9f, 2));
        REFUSE("no-momentum file, momentum run", b2, l2, MR_ERR_FORMAT);
        target_free(&t);
        mr_buffer_free(b2);
        setup_free(&s2);
    }
#undef REFUSE
    mr_buffer_free(plain);
    mr_buffer_free(buf);
    setup_free(&s);
}

/* Every truncation and single-byte flip of a full training checkpoint. */
static void test_train_corruption(void) {
    setup s;
    target t;
    snapshot c;
    layout L;
    uint8_t *buf = NULL, *cp;
    size_t len = 0, i, step = quick() ? 7 : 1;
    mr_error e;
    mr_model *m2;
    mr_vocab v2;
    mr_train_meta meta2;
    long bad_load = 0, bad_restore = 0, not_crc = 0, changed = 0, n = 0;
    mr_status st;
    MR_CHECK(setup_init(&s, 0, 0.f));
    MR_CHECK(mr_ckpt_save_train_mem(s.m, &s.v, &s.meta, &s.ts, &buf, &len, &e) == MR_OK);
    MR_CHECK(parse_layout(buf, len, &L) && L.n == 8 && L.end + 4 == len);
    MR_CHECK(target_init(&t, s.m, 0, 0.f, 2));
    snap_take(&c, &t);
    cp = (uint8_t *)malloc(len + 64);
    for (i = 0; i < len; i += step) {   /* truncations: never OK, objects untouched */
        memcpy(cp, buf, i);
        m2 = (mr_model *)&m2;
        e.msg[0] = 0;
        st = mr_ckpt_load_mem(&m2, &v2, &meta2, cp, i, NULL, &e);
        if (st == MR_OK) { bad_load++; mr_model_free(m2); mr_vocab_free(&v2); }
        else if (m2 != NULL || !e.msg[0]) bad_load++;
        if (mr_ckpt_restore_mem(cp, i, s.m, &t.ts, &e) == MR_OK) bad_restore++;
        if (i % (step * 50) == 0 && !snap_same(&c, &t)) changed++;
    }
    MR_CHECK_MSG(bad_load == 0 && bad_restore == 0 && changed == 0, "truncations: %ld loads, %ld restores went wrong, %ld changed", bad_load, bad_restore, changed);
    for (i = 0; i < len; i += step) {   /* single-byte flips */
        int tg = in_tag(&L, i), py = in_payload(&L, i);
        /* a renamed section is an unknown one, which loaders skip: the
           optional sections may lose their tag without an error */
        int load_may_pass = tg >= 0 && strcmp(L.name[tg], "CONF") && strcmp(L.name[tg], "VOCB") && strcmp(L.name[tg], "TENS");
        int restore_may_pass = tg >= 0 && (!strcmp(L.name[tg], "VOCB") || !strcmp(L.name[tg], "TENS") || !strcmp(L.name[tg], "META"));
        memcpy(cp, buf, len);
        cp[i] ^= 0x5a;
        m2 = NULL;
        n++;
        st = mr_ckpt_load_mem(&m2, &v2, &meta2, cp, len, NULL, &e);
        if (st == MR_OK) {
            if (!load_may_pass) bad_load++;
            else if (!same_weights(s.m, m2)) bad_load++;
            mr_model_free(m2); mr_vocab_free(&v2);
        } else if (py >= 0 && st != MR_ERR_CHECKSUM) not_crc++;
        st = mr_ckpt_restore_mem(cp, len, s.m, &t.ts, &e);
        if (st == MR_OK) {
            if (!restore_may_pass) bad_restore++;
            snap_free(&c); snap_take(&c, &t);   /* a pass restored the saved values */
        } else {
            if (py >= 0 && st != MR_ERR_CHECKSUM) not_crc++;
            if (!snap_same(&c, &t)) changed++;
        }
    }
    MR_CHECK_MSG(bad_load == 0 && bad_restore == 0, "flips: %ld loads and %ld restores accepted corrupt files (of %ld)", bad_load, bad_restore, n);
    MR_CHECK_MSG(not_crc == 0, "%ld payload flips not reported as CRC mismatches", not_crc);
    MR_CHECK_MSG(changed == 0, "%ld refused restores changed the objects", changed);
    /* extra bytes after END! */
    memcpy(cp, buf, len);
    cp[len] = 0;
    MR_CHECK(mr_ckpt_load_mem(&m2, &v2, NULL, cp, len + 1, NULL, &e) == MR_ERR_FORMAT && strstr(e.msg, "after the END"));
    MR_CHECK(mr_ckpt_restore_mem(cp, len + 1, s.m, &t.ts, &e) == MR_ERR_FORMAT && strstr(e.msg, "after the END"));
    memcpy(cp + len, "END!", 4);
    MR_CHECK(mr_ckpt_load_mem(&m2, &v2, NULL, cp, len + 4, NULL, &e) == MR_ERR_FORMAT);
    /* a duplicated section (the RNGS section repeated before END!) */
    {
        int k;
        for (k = 0; k < L.n && strcmp(L.name[k], "RNGS"); k++) {}
        MR_CHECK(k < L.n);
        if (k < L.n) {
            size_t sl = 12 + L.len[k] + 4;
            uint8_t *d = (uint8_t *)malloc(len + sl);
            memcpy(d, buf, L.end);
            memcpy(d + L.end, buf + L.tag[k], sl);
            memcpy(d + L.end + sl, "END!", 4);
            MR_CHECK(mr_ckpt_load_mem(&m2, &v2, NULL, d, len + sl, NULL, &e) == MR_ERR_FORMAT && strstr(e.msg, "twice") && strstr(e.msg, "RNGS"));
            MR_CHECK(mr_ckpt_restore_mem(d, len + sl, s.m, &t.ts, &e) == MR_ERR_FORMAT && strstr(e.msg, "twice"));
            free(d);
        }
    }
    /* a newer format version: the message names both versions */
    memcpy(cp, buf, len);
    cp[8] = 99;
    MR_CHECK(mr_ckpt_load_mem(&m2, &v2, NULL, cp, len, NULL, &e) == MR_ERR_VERSION && strstr(e.msg, "version 99") && strstr(e.msg, "library's 2"));
    MR_CHECK(mr_ckpt_restore_mem(cp, len, s.m, &t.ts, &e) == MR_ERR_VERSION && strstr(e.msg, "99") && strstr(e.msg, "library's 2"));
    MR_CHECK(snap_same(&c, &t));
    snap_free(&c);
    free(cp);
    target_free(&t);
    mr_buffer_free(buf);
    setup_free(&s);
}

/* ---- session files ---- */
static mr_model *session_model(int dim, const char *arch) {
    mr_model_cfg cfg = mr_model_defaults(13);
    mr_model *m = NULL;
    mr_rng r;
    cfg.dim = dim; cfg.n_layers = 3; cfg.ffn_hidden = 10; cfg.conv_kernel = 3; cfg.expansion = 1.5f; cfg.gru_hidden_norm = 1;
    mr_model_cfg_set_layers(&cfg, arch, NULL);
    if (mr_model_new(&m, &cfg, NULL, NULL) != MR_OK) return NULL;
    mr_rng_seed(&r, 11);
    mr_model_init_weights(m, &r);
    return m;
}

static void test_session_roundtrip(void) {
    mr_model *m = session_model(8, "gru,mingru,minlstm");
    mr_state *s, *s2;
    mr_rng r;
    float lg[2 * 13], lg2[2 * 13];
    uint8_t *buf, *buf2;
    size_t len, len2;
    int has = -1, valid;
    mr_error e;
    MR_CHECK(m != NULL);
    if (!m) return;
    mr_rng_seed(&r, 3);
    s = random_state(m, 2, &r);
    fill_random(lg, 2 * 13, &r);
    for (valid = 1; valid >= 0; valid--) {
        s->valid = valid;
        /* with logits */
        MR_CHECK(mr_state_save_mem(m, s, lg, &buf, &len, &e) == MR_OK);
        mr_state_new(&s2, m, 2, NULL);
        memset(lg2, 0, sizeof lg2);
        MR_CHECK_MSG(mr_state_load_mem(m, s2, lg2, &has, buf, len, &e) == MR_OK, "%s", e.msg);
        MR_CHECK(has == 1 && same_state(s, s2) && !memcmp(lg, lg2, sizeof lg));
        has = -1;
        MR_CHECK(mr_state_load_mem(m, s2, NULL, &has, buf, len, &e) == MR_OK && has == 1);   /* logits not wanted */
        MR_CHECK(mr_state_load_mem(m, s2, NULL, NULL, buf, len, &e) == MR_OK);
        mr_state_free(s2);
        /* without logits: has_logits 0, the caller's logits untouched */
        MR_CHECK(mr_state_save_mem(m, s, NULL, &buf2, &len2, &e) == MR_OK && len2 < len);
        mr_state_new(&s2, m, 2, NULL);
        memset(lg2, 0x7f, sizeof lg2);
        has = -1;
        MR_CHECK(mr_state_load_mem(m, s2, lg2, &has, buf2, len2, &e) == MR_OK && has == 0 && same_state(s, s2));
        MR_CHECK(lg2[0] == lg2[2 * 13 - 1] && ((uint8_t *)lg2)[0] == 0x7f);
        mr_state_free(s2);
        /* a checkpoint is not a session file and a session file not a checkpoint */
        {
            mr_model *m3 = NULL;
            mr_vocab v3;
            mr_state_new(&s2, m, 2, NULL);
            MR_CHECK(mr_ckpt_load_mem(&m3, &v3, NULL, buf, len, NULL, &e) == MR_ERR_FORMAT && m3 == NULL);
            MR_CHECK(mr_ckpt_restore_mem(buf, len, m, &(mr_train_state){0}, &e) == MR_ERR_FORMAT);
            mr_state_free(s2);
        }
        mr_buffer_free(buf);
        mr_buffer_free(buf2);
    }
    mr_state_free(s);
    mr_model_free(m);
}

static void test_session_refusals(void) {
    mr_model *m = session_model(8, "gru,mingru,minlstm");
    mr_model *wide = session_model(10, "gru,mingru,minlstm"), *arch = session_model(8, "mingru,gru,minlstm");
    mr_model *same = NULL;
    mr_state *s, *t;
    mr_rng r;
    float lg[2 * 13], lg2[3 * 13];
    uint8_t *buf, *ck;
    size_t len, cl;
    float *copy;
    int has;
    mr_error e;
    mr_vocab v;
    mr_status st;
    MR_CHECK(m && wide && arch);
    if (!m || !wide || !arch) return;
    mr_rng_seed(&r, 4);
    s = random_state(m, 2, &r);
    fill_random(lg, 2 * 13, &r);
    MR_CHECK(mr_state_save_mem(m, s, lg, &buf, &len, &e) == MR_OK);
#define SREFUSE(what, model, state, logits) do { \
        size_t nf_ = mr_state_floats(state); \
        copy = (float *)malloc(nf_ * 4); memcpy(copy, (state)->buf, nf_ * 4); \
        memset(lg2, 0x33, sizeof lg2); has = -1; e.msg[0] = 0; \
        st = mr_state_load_mem(model, state, logits, &has, buf, len, &e); \
        MR_CHECK_MSG(st == MR_ERR_FORMAT && e.msg[0] && has == 0, "%s: %s '%s'", what, mr_status_str(st), e.msg); \
        MR_CHECK_MSG(!memcmp(copy, (state)->buf, nf_ * 4) && ((uint8_t *)lg2)[0] == 0x33, "%s: changed", what); \
        free(copy); } while (0)
    mr_state_new(&t, wide, 2, NULL);
    SREFUSE("another dim", wide, t, lg2);
    mr_state_free(t);
    mr_state_new(&t, arch, 2, NULL);
    SREFUSE("another mixer order", arch, t, lg2);
    mr_state_free(t);
    mr_state_new(&t, m, 3, NULL);
    SREFUSE("batch 3", m, t, lg2);
    MR_CHECK_MSG(strstr(e.msg, "batch") || strstr(e.msg, "LOGT"), "'%s'", e.msg);
    mr_state_free(t);
    /* a state of another model passed with this model */
    mr_state_new(&t, wide, 2, NULL);
    copy = (float *)malloc(mr_state_floats(t) * 4);
    memcpy(copy, t->buf, mr_state_floats(t) * 4);
    st = mr_state_load_mem(m, t, NULL, NULL, buf, len, &e);
    MR_CHECK_MSG(st != MR_OK && !memcmp(copy, t->buf, mr_state_floats(t) * 4), "a state of another model: %s", mr_status_str(st));
    free(copy);
    mr_state_free(t);
    /* a checkpoint given as a session file */
    mr_vocab_bytes(&v);
    {
        mr_model *bm = small_model(256, "mingru");
        MR_CHECK(mr_ckpt_save_mem(bm, &v, NULL, &ck, &cl, &e) == MR_OK);
        mr_state_new(&t, m, 2, NULL);
        MR_CHECK(mr_state_load_mem(m, t, NULL, NULL, ck, cl, &e) == MR_ERR_FORMAT && strstr(e.msg, "magic"));
        mr_state_free(t);
        mr_buffer_free(ck);
        mr_model_free(bm);
    }
    /* a model that differs only in settings that do not change the state loads */
    {
        mr_model_cfg c = m->cfg;
        c.dropout = 0.25f; c.scan_algo = MR_SCAN_SEQUENTIAL; c.scan_chunk = 5;
        MR_CHECK(mr_model_new(&same, &c, NULL, NULL) == MR_OK);
        mr_state_new(&t, same, 2, NULL);
        MR_CHECK(mr_state_load_mem(same, t, lg2, &has, buf, len, &e) == MR_OK && has == 1 && same_state(s, t));
        mr_state_free(t);
        mr_model_free(same);
    }
#undef SREFUSE
    mr_buffer_free(buf);
    mr_state_free(s);
    mr_model_free(m); mr_model_free(wide); mr_model_free(arch);
}

static void test_session_corruption(void) {
    mr_model *m = session_model(8, "gru,mingru,minlstm");
    mr_state *s, *t;
    mr_rng r;
    float lg[2 * 13], lg2[2 * 13], lgc[2 * 13];
    uint8_t *buf, *cp;
    size_t len, i, nf, step = quick() ? 7 : 1;
    layout L;
    float *copy;
    long bad = 0, not_crc = 0, changed = 0;
    int has;
    mr_error e;
    mr_status st;
    MR_CHECK(m != NULL);
    if (!m) return;
    mr_rng_seed(&r, 5);
    s = random_state(m, 2, &r);
    fill_random(lg, 2 * 13, &r);
    MR_CHECK(mr_state_save_mem(m, s, lg, &buf, &len, &e) == MR_OK);
    MR_CHECK(parse_layout(buf, len, &L) && L.n == 3 && !strcmp(L.name[2], "LOGT"));
    t = random_state(m, 2, &r);
    nf = mr_state_floats(t);
    copy = (float *)malloc(nf * 4);
    memcpy(copy, t->buf, nf * 4);
    fill_random(lg2, 2 * 13, &r);
    memcpy(lgc, lg2, sizeof lg2);
    cp = (uint8_t *)malloc(len + 1);
    for (i = 0; i < len; i += step) {
        memcpy(cp, buf, i);
        e.msg[0] = 0;
        if (mr_state_load_mem(m, t, lg2, &has, cp, i, &e) == MR_OK || !e.msg[0] || has != 0) bad++;
        if (memcmp(copy, t->buf, nf * 4) || memcmp(lg2, lgc, sizeof lg2)) changed++;
    }
    MR_CHECK_MSG(bad == 0 && changed == 0, "truncations: %ld loaded, %ld changed the state", bad, changed);
    for (i = 0; i < len; i += step) {
        int tg = in_tag(&L, i), py = in_payload(&L, i);
        memcpy(cp, buf, len);
        cp[i] ^= 0x5a;
        st = mr_state_load_mem(m, t, lg2, &has, cp, len, &e);
        if (st == MR_OK) {   /* only a renamed LOGT (an unknown section) loads, without logits */
            if (!(tg == 2 && has == 0 && same_state(s, t))) bad++;
            memcpy(t->buf, copy, nf * 4); t->valid = 1;
        } else {
            if (py >= 0 && st != MR_ERR_CHECKSUM) not_crc++;
            if (memcmp(copy, t->buf, nf * 4) || memcmp(lg2, lgc, sizeof lg2)) changed++;
        }
    }
    MR_CHECK_MSG(bad == 0 && not_crc == 0 && changed == 0, "flips: %ld loaded, %ld not CRC errors, %ld changed the state", bad, not_crc, changed);
    memcpy(cp, buf, len);
    cp[len] = 'x';
    MR_CHECK(mr_state_load_mem(m, t, NULL, NULL, cp, len + 1, &e) == MR_ERR_FORMAT);
    cp[8] = 3;
    MR_CHECK(mr_state_load_mem(m, t, NULL, NULL, cp, len, &e) == MR_ERR_VERSION && strstr(e.msg, "version 3") && strstr(e.msg, "library's 2"));
    free(cp);
    free(copy);
    mr_buffer_free(buf);
    mr_state_free(s); mr_state_free(t);
    mr_model_free(m);
}

static void test_files(void) {
    const char *sp = "build/test_ckpt_train_session.bin", *cpth = "build/test_ckpt_train.bin";
    mr_model *m = session_model(8, "gru,mingru,minlstm"), *m2 = NULL;
    mr_state *s, *t;
    mr_rng r;
    float lg[2 * 13], lg2[2 * 13];
    int has = -1;
    mr_error e;
    setup su;
    target tg;
    uint8_t *buf;
    size_t len;
    mr_vocab v2;
    MR_CHECK(m != NULL);
    if (!m) return;
    mr_rng_seed(&r, 6);
    s = random_state(m, 2, &r);
    fill_random(lg, 2 * 13, &r);
    MR_CHECK_MSG(mr_state_save(m, s, lg, sp, &e) == MR_OK, "%s", e.msg);
    mr_state_new(&t, m, 2, NULL);
    MR_CHECK(mr_state_load(m, t, lg2, &has, sp, &e) == MR_OK && has == 1 && same_state(s, t) && !memcmp(lg, lg2, sizeof lg));
    MR_CHECK(mr_state_save(m, s, NULL, sp, &e) == MR_OK);
    MR_CHECK(mr_state_load(m, t, lg2, &has, sp, &e) == MR_OK && has == 0 && same_state(s, t));
    remove(sp);
    MR_CHECK(mr_state_load(m, t, NULL, NULL, sp, &e) == MR_ERR_IO);
    MR_CHECK(mr_state_save(m, s, lg, "/nonexistent-dir/s.bin", &e) == MR_ERR_IO && e.msg[0]);
    mr_state_free(t);
    mr_state_free(s);
    mr_model_free(m);
    /* a training checkpoint through a file */
    MR_CHECK(setup_init(&su, 0, 0.f));
    MR_CHECK_MSG(mr_ckpt_save_train(su.m, &su.v, &su.meta, &su.ts, cpth, &e) == MR_OK, "%s", e.msg);
    MR_CHECK(mr_ckpt_load(&m2, &v2, NULL, cpth, NULL, &e) == MR_OK && m2 && same_weights(su.m, m2));
    MR_CHECK(mr_read_file(cpth, &buf, &len, (size_t)1 << 30, NULL, &e) == MR_OK);
    if (m2 && target_init(&tg, m2, 0, 0.f, 2)) {
        MR_CHECK(mr_ckpt_restore_mem(buf, len, m2, &tg.ts, &e) == MR_OK && same_adamw(&su.adamw, &tg.adamw) && same_state(su.st, tg.st));
        target_free(&tg);
    }
    mr_buffer_free(buf);
    mr_model_free(m2);
    remove(cpth);
    setup_free(&su);
}

/* Two halves with the state carried in memory vs two halves with the state
   saved, freed and loaded into a new state (and, through a training
   checkpoint, into a loaded model): the second half's logits agree bit for bit. */
static void test_resume_semantics(void) {
    enum { B = 2, T = 16, H = 8, V = 13 };
    mr_ctx *ctx;
    mr_ctx_params p = mr_ctx_defaults();
    mr_model *m = session_model(8, "gru,mingru,minlstm"), *m2 = NULL;
    mr_state *sa, *sb, *sc;
    mr_rng r;
    int32_t tok[B * T], h1[B * H], h2[B * H];
    float ref[B * H * V], got[B * H * V], whole[B * T * V], last[B * V];
    mr_tensor *lg;
    uint8_t *buf;
    size_t len;
    int b, t, i, has;
    double maxd = 0;
    mr_error e;
    MR_CHECK(m != NULL);
    if (!m) return;
    p.n_threads = 2;
    MR_CHECK(mr_ctx_new(&ctx, &p) == MR_OK);
    mr_ctx_set_no_grad(ctx, 1);
    mr_rng_seed(&r, 8);
    for (i = 0; i < B * T; i++) tok[i] = (int32_t)mr_rng_below(&r, V);
    for (b = 0; b < B; b++) for (t = 0; t < H; t++) { h1[b * H + t] = tok[b * T + t]; h2[b * H + t] = tok[b * T + H + t]; }
    /* uninterrupted: one state object throughout */
    mr_state_new(&sa, m, B, NULL);
    MR_CHECK(mr_model_forward(ctx, m, h1, B, H, sa, 0) != NULL);
    mr_ctx_reset(ctx);
    lg = mr_model_forward(ctx, m, h2, B, H, sa, 0);
    MR_CHECK(lg != NULL);
    if (lg) mr_tensor_copy_to(lg, ref);
    mr_ctx_reset(ctx);
    /* interrupted: save after the first half, load into a new state */
    mr_state_new(&sb, m, B, NULL);
    lg = mr_model_forward(ctx, m, h1, B, H, sb, 0);
    MR_CHECK(lg != NULL);
    if (lg) for (b = 0; b < B; b++) memcpy(last + b * V, lg->data + ((size_t)b * H + H - 1) * V, V * sizeof(float));
    mr_ctx_reset(ctx);
    MR_CHECK(mr_state_save_mem(m, sb, last, &buf, &len, &e) == MR_OK);
    mr_state_free(sb);
    mr_state_new(&sc, m, B, NULL);
    {
        float last2[B * V];
        MR_CHECK(mr_state_load_mem(m, sc, last2, &has, buf, len, &e) == MR_OK && has == 1 && !memcmp(last, last2, sizeof last));
    }
    mr_buffer_free(buf);
    lg = mr_model_forward(ctx, m, h2, B, H, sc, 0);
    MR_CHECK(lg != NULL);
    if (lg) { mr_tensor_copy_to(lg, got); MR_CHECK_MSG(!memcmp(ref, got, sizeof ref), "session resume: logits differ"); }
    mr_ctx_reset(ctx);
    MR_CHECK(same_state(sa, sc));
    mr_state_free(sc);
    /* through a training checkpoint: a loaded model and a restored state */
    {
        mr_vocab v;
        mr_train_state ts;
        mr_vocab_bytes(&v);
        v.kind = MR_VOCAB_CHARS; v.n = V;
        mr_state_new(&sb, m, B, NULL);
        MR_CHECK(mr_model_forward(ctx, m, h1, B, H, sb, 0) != NULL);
        mr_ctx_reset(ctx);
        memset(&ts, 0, sizeof ts);
        ts.state = sb;
        MR_CHECK(mr_ckpt_save_train_mem(m, &v, NULL, &ts, &buf, &len, &e) == MR_OK);
        mr_state_free(sb);
        MR_CHECK_MSG(mr_ckpt_load_mem(&m2, &v, NULL, buf, len, NULL, &e) == MR_OK, "%s", e.msg);
        if (m2) {
            mr_state_new(&sc, m2, B, NULL);
            ts.state = sc;
            MR_CHECK(mr_ckpt_restore_mem(buf, len, m2, &ts, &e) == MR_OK);
            lg = mr_model_forward(ctx, m2, h2, B, H, sc, 0);
            MR_CHECK(lg != NULL);
            if (lg) { mr_tensor_copy_to(lg, got); MR_CHECK_MSG(!memcmp(ref, got, sizeof ref), "checkpoint resume: logits differ"); }
            mr_ctx_reset(ctx);
            mr_state_free(sc);
            mr_model_free(m2);
        }
        mr_buffer_free(buf);
    }
    /* and close to one pass over all T tokens (another summation order) */
    lg = mr_model_forward(ctx, m, tok, B, T, NULL, 0);
    MR_CHECK(lg != NULL);
    if (lg) {
        mr_tensor_copy_to(lg, whole);
        for (b = 0; b < B; b++) for (t = 0; t < H; t++) for (i = 0; i < V; i++) {
            double d = fabs(whole[((size_t)b * T + H + t) * V + i] - ref[((size_t)b * H + t) * V + i]);
            if (d > maxd) maxd = d;
        }
        MR_CHECK_MSG(maxd < 1e-4, "max |one pass - two halves| = %g", maxd);
    }
    mr_ctx_reset(ctx);
    mr_state_free(sa);
    mr_ctx_free(ctx);
    mr_model_free(m);
}

/* ---- regressions ---- */
static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    size_t i;
    int k;
    for (i = 0; i < n; i++) { c ^= p[i]; for (k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1; }
    return c ^ 0xffffffffu;
}
static void put_u32(uint8_t *p, uint32_t v) { int k; for (k = 0; k < 4; k++) p[k] = (uint8_t)(v >> (8 * k)); }
static size_t g_largest;
static void *count_alloc(size_t n, void *ud) { (void)ud; if (n > g_largest) g_largest = n; return malloc(n); }
static void *count_realloc(void *p, size_t o, size_t n, void *ud) { (void)ud; (void)o; if (n > g_largest) g_largest = n; return realloc(p, n); }
static void count_free(void *p, void *ud) { (void)ud; free(p); }

/* Found by fuzzing: a checkpoint of a few hundred bytes whose CONF (with a
   valid CRC) asks for dim 65536 and an FFN of 2^20 made mr_ckpt_load_mem
   allocate the model (terabytes) before it looked at the TENS section. It is
   refused now without a large allocation. */
static void test_forged_conf_no_huge_alloc(void) {
    mr_vocab v, v2;
    mr_model *m = small_model(16, "gru,minlstm"), *m2 = (mr_model *)&v;
    mr_allocator al;
    layout L;
    uint8_t *buf;
    size_t len, p;
    mr_error e;
    mr_status st;
    int k;
    mr_vocab_from_text(&v, (const uint8_t *)"abcdefghijklmnop", 16);
    MR_CHECK(m && mr_ckpt_save_mem(m, &v, NULL, &buf, &len, &e) == MR_OK);
    if (!m) return;
    MR_CHECK(parse_layout(buf, len, &L) && !strcmp(L.name[0], "CONF"));
    p = L.pay[0];
    for (k = 0; k < 3; k++) {   /* dim, then the FFN, then both: each the largest CONF allows */
        /* CONF fields are 12 bytes here (u16 tag, u16 flags, u32 length, u32 value): dim is the 2nd, ffn_hidden the 6th */
        if (k != 1) put_u32(buf + p + 12 + 8, 65536);
        if (k != 0) put_u32(buf + p + 5 * 12 + 8, 1u << 20);
        put_u32(buf + p + L.len[0], crc32_ieee(buf + p, L.len[0]));
        al.alloc = count_alloc; al.realloc = count_realloc; al.free = count_free; al.ud = NULL;
        g_largest = 0;
        st = mr_ckpt_load_mem(&m2, &v2, NULL, buf, len, &al, &e);
        MR_CHECK_MSG(st == MR_ERR_FORMAT && m2 == NULL && strstr(e.msg, "TENS"), "forged CONF %d: %s '%s'", k, mr_status_str(st), e.msg);
        MR_CHECK_MSG(g_largest < (1u << 20), "forged CONF %d: allocated %zu bytes", k, g_largest);
    }
    mr_buffer_free(buf);
    mr_model_free(m);
}
/* The loader's parameter count (compared with the TENS bytes before the
   model is allocated) agrees with the tensors mr_model_new makes. */
static void test_param_count_matches(void) {
    static const char *archs[] = {"mingru", "minlstm", "gru", "gru,mingru,minlstm"};
    static const float exps[] = {1.0f, 1.5f, 0.5f, 2.25f};
    int a, conv, ffn, tie, x, bad = 0, n = 0;
    for (a = 0; a < 4; a++) for (conv = 0; conv <= 4; conv += 2) for (ffn = 0; ffn <= 12; ffn += 12) for (tie = 0; tie < 2; tie++)
        for (x = 0; x < 4; x++) {
            mr_model_cfg cfg = mr_model_defaults(11);
            mr_model *m = NULL;
            cfg.dim = 6; cfg.n_layers = 2; cfg.ffn_hidden = ffn; cfg.conv_kernel = conv; cfg.tie_embeddings = tie; cfg.expansion = exps[x];
            mr_model_cfg_set_layers(&cfg, archs[a], NULL);
            if (mr_model_new(&m, &cfg, NULL, NULL) != MR_OK) { bad++; continue; }
            n++;
            if (mr__cfg_param_count(&cfg) != (uint64_t)mr_params_count(m->ps)) {
                bad++;
                MR_CHECK_MSG(0, "%s conv %d ffn %d tie %d exp %g: %llu vs %lld", archs[a], conv, ffn, tie, (double)exps[x],
                             (unsigned long long)mr__cfg_param_count(&cfg), (long long)mr_params_count(m->ps));
            }
            mr_model_free(m);
        }
    MR_CHECK(bad == 0 && n == 4 * 3 * 2 * 2 * 4);
}

MR_TEST_MAIN({"train_roundtrip_adamw", test_train_roundtrip_adamw}, {"train_roundtrip_sgd", test_train_roundtrip_sgd},
             {"train_roundtrip_sgd_no_momentum", test_train_roundtrip_sgd_no_momentum}, {"meta_args", test_meta_args},
             {"restore_refusals", test_restore_refusals}, {"train_corruption", test_train_corruption},
             {"session_roundtrip", test_session_roundtrip}, {"session_refusals", test_session_refusals},
             {"session_corruption", test_session_corruption}, {"files", test_files}, {"resume_semantics", test_resume_semantics},
             {"forged_conf_no_huge_alloc", test_forged_conf_no_huge_alloc}, {"param_count_matches", test_param_count_matches})
