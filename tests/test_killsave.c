/* Crash safety of mr_ckpt_save: a child process saves a checkpoint over and
   over (every weight = k, meta.step = k, k = 1, 2, 3, ...) and the parent
   kills it with SIGKILL at a random moment (seeded, so reproducible). After
   every kill the file must load, be self-consistent (every weight equals
   meta.step, so a torn mix of two saves is caught) and hold either the last
   save the child finished or the one it was in the middle of; k never goes
   back. A stale PATH.tmp left by a kill must never stop the next save.
   POSIX only (fork, kill, waitpid, nanosleep, mkdtemp). The child does no
   OpenMP work (saving uses no threads), so fork under -fopenmp is safe.
   MR_TEST_QUICK (the sanitizer run) does 40 kills instead of 200. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

#define KS_VOCAB_TEXT "abcdefghijklmnop"   /* 16 distinct bytes: vocabulary 16 */

/* seeded xorshift64* for the kill times */
static uint64_t ks_rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t ks_rand(void) {
    uint64_t x = ks_rng_state;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    ks_rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static double ks_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}
static void ks_sleep_us(long us) {
    struct timespec ts, rem;
    ts.tv_sec = us / 1000000;
    ts.tv_nsec = (us % 1000000) * 1000;
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR) ts = rem;
}
static int ks_exists(const char *path) { return access(path, F_OK) == 0; }

/* vocabulary 16, dim 16, 2 MinGRU layers, SwiGLU 256: 25,936 weights (~104 KB) */
static mr_model *ks_model(mr_vocab *v) {
    mr_model_cfg cfg = mr_model_defaults(16);
    mr_model *m = NULL;
    mr_rng r;
    cfg.dim = 16; cfg.n_layers = 2; cfg.ffn_hidden = 256;
    mr_vocab_from_text(v, (const uint8_t *)KS_VOCAB_TEXT, strlen(KS_VOCAB_TEXT));
    if (mr_model_new(&m, &cfg, NULL, NULL) != MR_OK) return NULL;
    mr_rng_seed(&r, 3);
    mr_model_init_weights(m, &r);
    return m;
}
static int64_t ks_numel(const mr_model *m) {
    int64_t n = 0;
    int i;
    for (i = 0; i < m->ps->n; i++) n += mr_tensor_numel(m->ps->t[i]);
    return n;
}
static void ks_set_all(mr_model *m, float val) {
    int i;
    int64_t k, n;
    for (i = 0; i < m->ps->n; i++)
        for (k = 0, n = mr_tensor_numel(m->ps->t[i]); k < n; k++) m->ps->t[i]->data[k] = val;
}
/* number of weights that differ from val */
static int64_t ks_count_off(const mr_model *m, float val) {
    int i;
    int64_t k, n, bad = 0;
    for (i = 0; i < m->ps->n; i++)
        for (k = 0, n = mr_tensor_numel(m->ps->t[i]); k < n; k++) bad += m->ps->t[i]->data[k] != val;
    return bad;
}

/* Writes k = first, first+1, ... forever; after each completed save, k goes
   down the pipe (8 bytes: an atomic pipe write). Never returns. */
static void ks_child(mr_model *m, const mr_vocab *v, const char *path, int64_t first, int wfd) {
    mr_train_meta meta;
    mr_error e;
    int64_t k;
    memset(&meta, 0, sizeof meta);
    for (k = first;; k++) {
        if (k >= ((int64_t)1 << 24)) _exit(5);   /* no longer exact as a float */
        ks_set_all(m, (float)k);
        meta.step = k;
        if (mr_ckpt_save(m, v, &meta, path, &e) != MR_OK) {
            fprintf(stderr, "  child: save of k=%lld failed: %s\n", (long long)k, e.msg);
            _exit(3);
        }
        if (write(wfd, &k, sizeof k) != (ssize_t)sizeof k) _exit(4);
    }
}

typedef struct ks_loaded { int ok; int64_t step, off; } ks_loaded;
static ks_loaded ks_load(const char *path, int64_t want_numel) {
    ks_loaded r;
    mr_model *m2 = NULL;
    mr_vocab v2;
    mr_train_meta meta;
    mr_error e;
    memset(&r, 0, sizeof r);
    memset(&meta, 0, sizeof meta);
    meta.step = -1;
    e.msg[0] = 0;
    if (mr_ckpt_load(&m2, &v2, &meta, path, NULL, &e) != MR_OK || !m2) {
        fprintf(stderr, "  load of %s failed: %s\n", path, e.msg);
        r.step = -1;
        return r;
    }
    r.ok = 1;
    r.step = meta.step;
    r.off = ks_numel(m2) != want_numel ? want_numel : ks_count_off(m2, (float)meta.step);
    if (v2.kind != MR_VOCAB_CHARS || v2.n != 16) r.ok = 0;
    mr_model_free(m2);
    mr_vocab_free(&v2);
    return r;
}

static int ks_mkdir(char *dir, size_t cap) {
    const char *tmpl = "/tmp/minrnn-killsave-XXXXXX";
    if (strlen(tmpl) + 1 > cap) return 0;
    memcpy(dir, tmpl, strlen(tmpl) + 1);
    return mkdtemp(dir) != NULL;
}
static void ks_cleanup(const char *dir, const char *path, const char *tmp) {
    remove(path);
    remove(tmp);
    MR_CHECK_MSG(rmdir(dir) == 0, "cannot remove %s: %s", dir, strerror(errno));
}

static void test_kill_during_save(void) {
    char dir[64], path[128], tmp[160];
    mr_vocab v;
    mr_model *m;
    mr_train_meta meta;
    mr_error e;
    ks_loaded L;
    int iters = getenv("MR_TEST_QUICK") ? 40 : 200;
    int it, kills = 0, advanced = 0, kept = 0, tmp_left = 0, stale_then_saved = 0, no_save = 0;
    int64_t numel, prev, next_first, total_saves = 0;
    double t0 = ks_now_ms(), save_ms;
    m = ks_model(&v);
    MR_CHECK(m != NULL);
    if (!m) return;
    numel = ks_numel(m);
    MR_CHECK_MSG(numel >= 20000 && numel <= 50000, "%lld weights", (long long)numel);
    if (!ks_mkdir(dir, sizeof dir)) { mr_model_free(m); MR_CHECK_MSG(0, "mkdtemp: %s", strerror(errno)); return; }
    snprintf(path, sizeof path, "%s/model.bin", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    /* the initial checkpoint, k = 0; time a few saves to report the save cost */
    memset(&meta, 0, sizeof meta);
    ks_set_all(m, 0.f);
    {
        double s0 = ks_now_ms();
        int j;
        for (j = 0; j < 10; j++) MR_CHECK(mr_ckpt_save(m, &v, &meta, path, &e) == MR_OK);
        save_ms = (ks_now_ms() - s0) / 10;
    }
    L = ks_load(path, numel);
    MR_CHECK(L.ok && L.step == 0 && L.off == 0);
    prev = 0;
    next_first = 1;

    for (it = 0; it < iters; it++) {
        int fds[2], st = 0, stale = ks_exists(tmp);
        pid_t pid;
        long sleep_us;
        int64_t got, last_done = -1, ndone = 0, first = next_first;
        ssize_t rd;
        /* a quarter of the kills land within 2 ms (around the child's first
           save), the rest uniformly in 0..30 ms (after a few saves, at any
           point of a save: serializing, writing, fsync, rename) */
        sleep_us = (ks_rand() & 3) == 0 ? (long)(ks_rand() % 2000) : (long)(ks_rand() % 30000);
        if (pipe(fds) != 0) { MR_CHECK_MSG(0, "pipe: %s", strerror(errno)); break; }
        fflush(stdout); fflush(stderr);
        pid = fork();
        if (pid < 0) { MR_CHECK_MSG(0, "fork: %s", strerror(errno)); close(fds[0]); close(fds[1]); break; }
        if (pid == 0) { close(fds[0]); ks_child(m, &v, path, first, fds[1]); _exit(6); }
        close(fds[1]);
        ks_sleep_us(sleep_us);
        MR_CHECK(kill(pid, SIGKILL) == 0);
        kills++;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        MR_CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "iteration %d: the saver ended on its own (exit %d)",
                     it, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        while ((rd = read(fds[0], &got, sizeof got)) == (ssize_t)sizeof got) {
            MR_CHECK_MSG(got == first + ndone, "iteration %d: completed save %lld out of order", it, (long long)got);
            last_done = got; ndone++;
        }
        MR_CHECK_MSG(rd == 0, "iteration %d: short read on the pipe", it);
        close(fds[0]);
        total_saves += ndone;
        if (ks_exists(tmp)) tmp_left++;

        L = ks_load(path, numel);
        MR_CHECK_MSG(L.ok, "iteration %d (kill after %ld us, %lld saves done): the checkpoint does not load",
                     it, sleep_us, (long long)ndone);
        if (!L.ok) break;
        MR_CHECK_MSG(L.off == 0, "iteration %d: %lld of %lld weights differ from meta.step %lld (torn file)",
                     it, (long long)L.off, (long long)numel, (long long)L.step);
        MR_CHECK_MSG(L.step >= prev, "iteration %d: k went back from %lld to %lld", it, (long long)prev, (long long)L.step);
        /* the file holds the last finished save, or the one in flight if its
           rename happened before the kill */
        if (ndone == 0)
            MR_CHECK_MSG(L.step == prev || L.step == first, "iteration %d: k %lld, expected %lld or %lld",
                         it, (long long)L.step, (long long)prev, (long long)first);
        else
            MR_CHECK_MSG(L.step == last_done || L.step == last_done + 1, "iteration %d: k %lld, expected %lld or %lld",
                         it, (long long)L.step, (long long)last_done, (long long)(last_done + 1));
        if (L.step > prev) advanced++; else kept++;
        if (ndone == 0) no_save++;
        if (stale && ndone > 0) stale_then_saved++;
        prev = L.step;
        /* the next child starts above every k this one may have begun */
        next_first = (ndone ? last_done + 1 : first) + 1;
        if (next_first <= prev) next_first = prev + 1;
    }
    MR_CHECK_MSG(advanced > 0, "no kill came after a completed save");
    printf("  killsave: %d kills, %d saw a new save, %d the old one (%d before any save finished); "
           "%lld saves in all, %.2f ms per save; a .tmp left after %d kills, %d children saved over a stale .tmp; %.1f s\n",
           kills, advanced, kept, no_save, (long long)total_saves, save_ms, tmp_left, stale_then_saved,
           (ks_now_ms() - t0) / 1e3);

    ks_cleanup(dir, path, tmp);
    mr_model_free(m);
}

/* A stale PATH.tmp (a kill mid-write leaves one, here filled with garbage)
   does not stop a save, and is replaced by the rename. */
static void test_stale_tmp(void) {
    char dir[64], path[128], tmp[160];
    mr_vocab v;
    mr_model *m;
    mr_train_meta meta;
    mr_error e;
    ks_loaded L;
    FILE *f;
    int j;
    m = ks_model(&v);
    MR_CHECK(m != NULL);
    if (!m) return;
    if (!ks_mkdir(dir, sizeof dir)) { mr_model_free(m); MR_CHECK_MSG(0, "mkdtemp: %s", strerror(errno)); return; }
    snprintf(path, sizeof path, "%s/model.bin", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    memset(&meta, 0, sizeof meta);
    for (j = 0; j < 3; j++) {
        /* j = 0: no target yet; a stale .tmp longer (j = 1) and shorter (j = 2) than a checkpoint */
        size_t n = j == 1 ? 400000 : 100, i;
        f = fopen(tmp, "wb");
        MR_CHECK(f != NULL);
        if (!f) break;
        for (i = 0; i < n; i++) fputc((int)(i * 131u % 251u), f);
        fclose(f);
        ks_set_all(m, (float)(j + 7));
        meta.step = j + 7;
        MR_CHECK_MSG(mr_ckpt_save(m, &v, &meta, path, &e) == MR_OK, "save over a stale .tmp: %s", e.msg);
        MR_CHECK(!ks_exists(tmp));
        L = ks_load(path, ks_numel(m));
        MR_CHECK(L.ok && L.step == j + 7 && L.off == 0);
    }
    ks_cleanup(dir, path, tmp);
    mr_model_free(m);
}

MR_TEST_MAIN({"kill_during_save", test_kill_during_save}, {"stale_tmp", test_stale_tmp})
