/* Data-parallel training (build/minrnn-train-mpi under mpirun, make mpi):
   P = 1, 2 and 4 processes in --reproducible mode give bit-identical weights
   (and the same as the single-process trainer), the fast float allreduce at
   P = 2 matches P = 1 to 1e-5 and repeats itself exactly, a checkpoint
   resumes with the same P and with another P, carried stream states travel
   between ranks, a killed or hung rank ends the job with an error, Ctrl-C
   saves, and bad flags are refused. Skips without mpirun or the program
   (make test builds it when mpicc exists). */
#define _POSIX_C_SOURCE 200809L
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"
#include "cli_common.h"
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <sys/wait.h>

#define DIR "build/mpi-test"
#define DATA "tests/data/shakespeare_12k.txt"
#define PROGRAM "build/minrnn-train-mpi"
/* one machine: shared memory only, more processes than cores allowed, no pinning */
#define MPIRUN "mpirun --oversubscribe --bind-to none --mca btl self,vader -np"

/* 1: ready; 0: no program or no mpirun; -1: mpirun cannot start a process
   on this machine (Open MPI needs a network interface, loopback at least:
   build/mpi-test/probe.log says why) */
static int have_mpi(void) {
    static int known = 0, ok = 0;
    FILE *f;
    if (known) return ok;
    known = 1;
    f = fopen(PROGRAM, "rb");
    if (!f) return ok = 0;
    fclose(f);
    if (system("command -v mpirun >/dev/null 2>&1") != 0) return ok = 0;
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);   /* CI runs as root */
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    if (system("mkdir -p " DIR) != 0) return ok = 0;
    return ok = system(MPIRUN " 1 true > " DIR "/probe.log 2>&1") == 0 ? 1 : -1;
}
#define NEED_MPI() do { int h_ = have_mpi(); \
    if (h_ == 0) MR_SKIP(PROGRAM " or mpirun missing (make mpi needs mpicc)"); \
    if (h_ < 0) MR_SKIP("mpirun cannot start a process here (" DIR "/probe.log)"); } while (0)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct loaded { mr_model *m; mr_vocab v; mr_train_meta meta; int ok; } loaded;
static void load(loaded *l, const char *name) {
    char path[512];
    memset(l, 0, sizeof *l);
    snprintf(path, sizeof path, DIR "/%s/model.bin", name);
    l->ok = mr_ckpt_load(&l->m, &l->v, &l->meta, path, NULL, NULL) == MR_OK;
}
static void unload(loaded *l) { mr_model_free(l->m); mr_vocab_free(&l->v); }
/* -1: cannot load; else the relative distance ||a - b|| / ||a|| of the weights (0: bit-identical) */
static double distance(const char *a, const char *b) {
    loaded x, y;
    double d = -1;
    load(&x, a); load(&y, b);
    if (x.ok && y.ok && x.m->ps->numel == y.m->ps->numel) {
        size_t k, n = x.m->ps->numel;
        double num = 0, den = 0;
        if (!memcmp(x.m->ps->data, y.m->ps->data, sizeof(float) * n)) d = 0;
        else {
            for (k = 0; k < n; k++) {
                double e = (double)x.m->ps->data[k] - (double)y.m->ps->data[k];
                num += e * e; den += (double)x.m->ps->data[k] * x.m->ps->data[k];
            }
            d = den > 0 ? sqrt(num / den) : 1;
            if (d == 0) d = 1e-300;   /* differ only in sign of zero or NaN bits */
        }
    }
    unload(&x); unload(&y);
    return d;
}
/* Trains `name` with P processes (0: the single-process build/minrnn-train). */
static int train(int P, const char *name, const char *flags) {
    if (P == 0)
        return sh("rm -rf " DIR "/%s && build/minrnn-train --data " DATA " %s --out " DIR "/%s > " DIR "/%s.log 2>&1", name, flags, name, name);
    return sh("rm -rf " DIR "/%s && " MPIRUN " %d " PROGRAM " --data " DATA " %s --out " DIR "/%s > " DIR "/%s.log 2>&1", name, P, flags, name, name);
}
static int resume(int P, const char *name, const char *flags) {
    return sh(MPIRUN " %d " PROGRAM " --resume " DIR "/%s/model.bin %s >> " DIR "/%s.log 2>&1", P, name, flags, name);
}
#define CHECK_SAME(a, b) do { double d_ = distance(a, b); MR_CHECK_MSG(d_ == 0, "%s vs %s: weights differ (relative distance %.3g; -1: not loaded)", a, b, d_); } while (0)

/* random windows with dropout (its masks drawn per shard), attention beside MinGRU */
#define RANDOM "--steps 20 --batch 8 --chunk-size 32 --dim 32 --depth 2 --layers mingru,attn --heads 2 --dropout 0.1 --warmup 5 --eval-every 10 --save-every 0 --threads 1"
/* TBPTT streams: each rank carries the states of its rows; RWKV-6 + GRU, MoE, SGD */
#define STREAM "--steps 20 --batch 8 --chunk-size 32 --backprop-tokens 16 --batching stream --dim 32 --depth 1 --layers gru+rwkv6 " \
               "--rwkv-head-size 16 --rwkv-ranks 8,8 --ffn moe --ffn-hidden 32 --optimizer sgd --lr 0.05 --eval-every 0 --save-every 0 --threads 1"

static void test_reproducible_p124(void) {
    NEED_MPI();
    MR_CHECK(train(0, "r0", RANDOM " --reproducible") == 0);
    MR_CHECK(train(1, "r1", RANDOM " --reproducible") == 0);
    MR_CHECK(train(2, "r2", RANDOM " --reproducible") == 0);
    MR_CHECK(train(4, "r4", RANDOM " --reproducible") == 0);
    CHECK_SAME("r0", "r1");
    CHECK_SAME("r1", "r2");
    CHECK_SAME("r1", "r4");
    MR_CHECK(train(1, "s1", STREAM " --reproducible") == 0);
    MR_CHECK(train(2, "s2", STREAM " --reproducible") == 0);
    MR_CHECK(train(4, "s4", STREAM " --reproducible") == 0);
    CHECK_SAME("s1", "s2");
    CHECK_SAME("s1", "s4");
    {   /* the split evaluation: the same validation loss, whatever P */
        loaded a, b;
        load(&a, "r1"); load(&b, "r4");
        MR_CHECK(a.ok && b.ok);
        if (a.ok && b.ok) MR_CHECK_NEAR(a.meta.val_loss, b.meta.val_loss, 1e-6);
        MR_CHECK(a.ok && a.meta.step == 20 && b.ok && b.meta.step == 20);
        unload(&a); unload(&b);
    }
    /* threads do not change a sum: 2 threads per process give the same bits */
    MR_CHECK(train(2, "r2t", RANDOM " --reproducible --threads 2") == 0);
    CHECK_SAME("r1", "r2t");
}

static void test_fast_allreduce(void) {
    double d;
    NEED_MPI();
    /* dropout masks are drawn per shard: the same --shards for both */
    MR_CHECK(train(1, "f1", RANDOM " --shards 2") == 0);
    MR_CHECK(train(2, "f2", RANDOM) == 0);
    MR_CHECK(train(2, "f2b", RANDOM) == 0);
    d = distance("f1", "f2");
    MR_CHECK_MSG(d >= 0 && d <= 1e-5, "fast P=2 vs P=1: relative distance %.3g", d);
    CHECK_SAME("f2", "f2b");   /* the same P repeats itself exactly */
    MR_CHECK(train(4, "f4", RANDOM " --shards 4") == 0);
    MR_CHECK(train(1, "f14", RANDOM " --shards 4") == 0);
    d = distance("f14", "f4");
    MR_CHECK_MSG(d >= 0 && d <= 1e-5, "fast P=4 vs P=1: relative distance %.3g", d);
    /* no dropout: the plain trainer (one pass over the whole batch) */
    MR_CHECK(train(0, "n0", RANDOM " --dropout 0") == 0);
    MR_CHECK(train(2, "n2", RANDOM " --dropout 0") == 0);
    d = distance("n0", "n2");
    MR_CHECK_MSG(d >= 0 && d <= 1e-5, "fast P=2 vs minrnn-train: relative distance %.3g", d);
    MR_CHECK(train(1, "g1", STREAM) == 0);
    MR_CHECK(train(2, "g2", STREAM) == 0);
    d = distance("g1", "g2");
    MR_CHECK_MSG(d >= 0 && d <= 1e-5, "fast stream P=2 vs P=1: relative distance %.3g", d);
}

static void test_resume(void) {
    NEED_MPI();
    /* reproducible: stopped at step 9 with P = 2, resumed with P = 2 and with P = 4 (and 1) */
    MR_CHECK(train(2, "rr", RANDOM " --reproducible") == 0);
    MR_CHECK(train(2, "rr2", RANDOM " --reproducible --stop-at-step 9") == 0);
    MR_CHECK(sh("rm -rf " DIR "/rr4 " DIR "/rr1 && cp -r " DIR "/rr2 " DIR "/rr4 && cp -r " DIR "/rr2 " DIR "/rr1") == 0);
    MR_CHECK(resume(2, "rr2", "--out " DIR "/rr2") == 0);
    MR_CHECK(resume(4, "rr4", "--out " DIR "/rr4") == 0);
    MR_CHECK(resume(1, "rr1", "--out " DIR "/rr1") == 0);
    CHECK_SAME("rr", "rr2");
    CHECK_SAME("rr", "rr4");
    CHECK_SAME("rr", "rr1");
    /* streams: the carried states gathered into the checkpoint and handed out again */
    MR_CHECK(train(2, "ss", STREAM " --reproducible") == 0);
    MR_CHECK(train(4, "ss4", STREAM " --reproducible --stop-at-step 11") == 0);
    MR_CHECK(resume(2, "ss4", "--out " DIR "/ss4") == 0);
    CHECK_SAME("ss", "ss4");
    /* fast mode: the same P continues bit for bit */
    MR_CHECK(train(2, "ff", STREAM) == 0);
    MR_CHECK(train(2, "ff2", STREAM " --stop-at-step 7") == 0);
    MR_CHECK(resume(2, "ff2", "--out " DIR "/ff2") == 0);
    CHECK_SAME("ff", "ff2");
}

/* Starts a long run of P processes in the background; returns once it wrote
   DIR/name/file (model.bin: the first save at step 200; history.csv: training began). */
#define LONG "--steps 100000000 --batch 4 --chunk-size 32 --dim 16 --depth 1 --threads 1 --eval-every 0 --save-every 200"
static int start_long(const char *name, int P, const char *extra, const char *file) {
    int k;
    char path[256];
    sh("rm -rf " DIR "/%s", name);
    if (sh("rm -f " DIR "/%s.rc; (" MPIRUN " %d " PROGRAM " --data " DATA " " LONG " %s --out " DIR "/%s > " DIR "/%s.log 2>&1 & echo $! > " DIR "/%s.pid; "
           "wait $!; echo $? > " DIR "/%s.rc.tmp; mv " DIR "/%s.rc.tmp " DIR "/%s.rc) &",
           name, P, extra, name, name, name, name, name, name) != 0) return 0;
    snprintf(path, sizeof path, DIR "/%s/%s", name, file);
    for (k = 0; k < 300; k++) {   /* up to 30 s for the first save */
        FILE *f = fopen(path, "rb");
        if (f) { fclose(f); sh("sleep 0.5"); return 1; }
        sh("sleep 0.1");
    }
    return 0;
}
/* Waits up to `limit` seconds for the run's exit status (-1: none). */
static int wait_rc(const char *name, double limit, double *took) {
    double t0 = now_s();
    char path[256];
    snprintf(path, sizeof path, DIR "/%s.rc", name);
    while (now_s() - t0 < limit) {
        FILE *f = fopen(path, "r");
        int rc = -1;
        if (f) {
            int got = fscanf(f, "%d", &rc);
            fclose(f);
            if (got == 1) { *took = now_s() - t0; return rc; }
        }
        sh("sleep 0.2");
    }
    *took = now_s() - t0;
    return -1;
}
static void check_intact(const char *name) {
    loaded l;
    load(&l, name);
    MR_CHECK_MSG(l.ok && l.meta.step > 0, "%s: the last checkpoint does not load", name);
    unload(&l);
}

static void test_killed_rank(void) {
    double took;
    int rc;
    NEED_MPI();
    MR_CHECK(start_long("kill", 2, "", "model.bin"));
    /* one of the two processes (the newest; either will do) */
    sh("kill -9 $(pgrep -n -x minrnn-train-mp)");
    rc = wait_rc("kill", 60, &took);
    MR_CHECK_MSG(rc > 0, "a killed rank: exit status %d after %.1f s", rc, took);
    sh("pkill -9 -f 'out " DIR "/kill' 2>/dev/null");
    check_intact("kill");
}

static void test_hung_rank(void) {
    double took;
    int rc;
    NEED_MPI();
    MR_CHECK(start_long("hang", 2, "--dp-timeout 3", "model.bin"));
    /* one process stops (SIGSTOP): the other waits in the allreduce and gives up after 3 s */
    sh("kill -STOP $(pgrep -n -x minrnn-train-mp)");
    rc = wait_rc("hang", 60, &took);
    MR_CHECK_MSG(rc > 0 && took < 30, "a hung rank: exit status %d after %.1f s", rc, took);
    MR_CHECK(sh("grep -q 'another process died or hangs' " DIR "/hang.log") == 0);
    sh("pkill -9 -f 'out " DIR "/hang' 2>/dev/null");
    check_intact("hang");
}

static void test_interrupt(void) {
    double took;
    int rc;
    loaded l;
    long long saved;
    NEED_MPI();
    /* no periodic saves: a model.bin is the one Ctrl-C wrote */
    MR_CHECK(start_long("int", 2, "--save-every 0", "history.csv"));
    sh("sleep 1; kill -INT $(cat " DIR "/int.pid)");
    rc = wait_rc("int", 30, &took);
    MR_CHECK_MSG(rc >= 0, "Ctrl-C: no exit after %.1f s", took);
    load(&l, "int");
    MR_CHECK(l.ok);
    saved = l.ok ? (long long)l.meta.step : 0;
    unload(&l);
    MR_CHECK_MSG(saved > 0, "Ctrl-C: no checkpoint saved");
    /* and it resumes */
    if (saved > 0) {
        char flags[64];
        snprintf(flags, sizeof flags, "--stop-at-step %lld", saved + 3);
        MR_CHECK(resume(2, "int", flags) == 0);
        load(&l, "int");
        MR_CHECK(l.ok && (long long)l.meta.step == saved + 3);
        unload(&l);
    }
}

static void test_bad_flags(void) {
    NEED_MPI();
    /* a global batch the processes cannot split */
    MR_CHECK(train(2, "bad", "--steps 2 --batch 5 --chunk-size 16 --dim 16 --depth 1") != 0);
    MR_CHECK(sh("grep -q 'not a multiple of the 2 processes' " DIR "/bad.log") == 0);
    MR_CHECK(train(4, "bad", "--steps 2 --batch 8 --chunk-size 16 --dim 16 --depth 1 --reproducible --shards 6") != 0);
    MR_CHECK(sh("grep -q 'not a multiple of the 4 processes' " DIR "/bad.log") == 0);
    /* a missing file: rank 0 reads it, every rank stops with its message */
    MR_CHECK(sh(MPIRUN " 2 " PROGRAM " --data " DIR "/no-such-file --steps 2 > " DIR "/bad.log 2>&1") != 0);
    MR_CHECK(sh("grep -q 'no-such-file' " DIR "/bad.log") == 0);
}

MR_TEST_MAIN({"fast_allreduce", test_fast_allreduce}, {"reproducible_p124", test_reproducible_p124}, {"resume", test_resume},
             {"killed_rank", test_killed_rank}, {"hung_rank", test_hung_rank}, {"interrupt", test_interrupt}, {"bad_flags", test_bad_flags})
