/* The command-line programs, run as a user runs them: exact --resume (random
   windows with dropout; TBPTT streams with SGD and backprop pieces), a save
   that fails while training goes on, generation sessions saved and continued,
   safetensors export/import, and bad input (clean message, exit status 2).
   Needs the programs in build/ (make test builds them); skips without them. */
#define _POSIX_C_SOURCE 200809L
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"
#include "cli_common.h"
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <sys/stat.h>

#define DIR "build/cli-test"
#define DATA "tests/data/shakespeare_12k.txt"

static int have_programs(void) {
    FILE *f = fopen("build/minrnn-train", "rb");
    if (!f) return 0;
    fclose(f);
    f = fopen(DATA, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}
/* The per-step rows of a history.csv (step, tokens, lr, loss, grad norm), without elapsed time. */
static char *step_rows(const char *path) {
    char *s = slurp(path, NULL), *out, *line, *o;
    if (!s) return NULL;
    out = (char *)malloc(strlen(s) + 1);
    o = out;
    for (line = s; *line;) {
        char *e = strchr(line, '\n'), *c1, *c2;
        size_t L;
        if (!e) break;
        *e = 0;
        L = strlen(line);
        /* step rows end with ",,," (no validation columns) */
        if (L > 3 && !strcmp(line + L - 3, ",,,") && (c1 = strchr(line, ',')) && (c1 = strchr(c1 + 1, ',')) && (c2 = strchr(c1 + 1, ','))) {
            memcpy(o, line, (size_t)(c1 - line)); o += c1 - line;
            memcpy(o, c2, strlen(c2)); o += strlen(c2);
            *o++ = '\n';
        }
        line = e + 1;
    }
    *o = 0;
    mr_buffer_free(s);
    return out;
}
static int same_weights(const char *a, const char *b) {
    mr_model *ma = NULL, *mb = NULL;
    mr_vocab va, vb;
    int same = 0;
    if (mr_ckpt_load(&ma, &va, NULL, a, NULL, NULL) == MR_OK && mr_ckpt_load(&mb, &vb, NULL, b, NULL, NULL) == MR_OK)
        same = ma->ps->numel == mb->ps->numel && !memcmp(ma->ps->data, mb->ps->data, sizeof(float) * ma->ps->numel);
    mr_model_free(ma); mr_model_free(mb);
    mr_vocab_free(&va); mr_vocab_free(&vb);
    return same;
}

static void check_resume(const char *name, const char *flags) {
    char *full, *resumed;
    MR_CHECK(sh("rm -rf " DIR "/%s-a " DIR "/%s-b", name, name) == 0);
    /* uninterrupted */
    MR_CHECK(sh("build/minrnn-train --data " DATA " %s --out " DIR "/%s-a >/dev/null 2>&1", flags, name) == 0);
    /* stopped at step 13 (the schedule still that of the whole run), then resumed */
    MR_CHECK(sh("build/minrnn-train --data " DATA " %s --out " DIR "/%s-b --stop-at-step 13 >/dev/null 2>&1", flags, name) == 0);
    MR_CHECK(sh("build/minrnn-train --resume " DIR "/%s-b/model.bin >/dev/null 2>&1", name) == 0);
    {
        char pa[256], pb[256];
        snprintf(pa, sizeof pa, DIR "/%s-a/history.csv", name);
        snprintf(pb, sizeof pb, DIR "/%s-b/history.csv", name);
        full = step_rows(pa);
        resumed = step_rows(pb);
        MR_CHECK_MSG(full && resumed && strlen(full) > 100 && !strcmp(full, resumed), "%s: the resumed run's losses differ:\n%s---\n%s", name,
                     full ? full : "(none)", resumed ? resumed : "(none)");
        free(full); free(resumed);
        snprintf(pa, sizeof pa, DIR "/%s-a/model.bin", name);
        snprintf(pb, sizeof pb, DIR "/%s-b/model.bin", name);
        MR_CHECK_MSG(same_weights(pa, pb), "%s: final weights differ", name);
    }
}

static void test_resume_exact(void) {
    if (!have_programs()) MR_SKIP("build/minrnn-train or " DATA " missing");
    sh("mkdir -p " DIR);
    check_resume("random", "--dim 24 --depth 2 --batch 4 --chunk-size 32 --steps 30 --eval-every 10 --log-every 1 "
                           "--threads 2 --dropout 0.1 --arch mingru,minlstm --conv 3 --warmup 5");
    check_resume("stream", "--dim 16 --depth 2 --batch 3 --chunk-size 32 --backprop-tokens 16 --batching stream --steps 30 "
                           "--eval-every 0 --log-every 1 --threads 2 --optimizer sgd --lr 0.05 --arch gru,mingru --gru-norm "
                           "--schedule linear");
}

static void test_failed_save_goes_on(void) {
    if (!have_programs()) MR_SKIP("build/minrnn-train missing");
    /* a directory where the temporary file would go makes every save of model_best.bin fail */
    MR_CHECK(sh("rm -rf " DIR "/fail && mkdir -p " DIR "/fail/model_best.bin.tmp") == 0);
    MR_CHECK(sh("build/minrnn-train --data " DATA " --dim 16 --depth 1 --batch 2 --chunk-size 32 --steps 20 --eval-every 5 "
                "--threads 1 --out " DIR "/fail > " DIR "/fail.log 2>&1") == 0);
    MR_CHECK(sh("grep -q 'saving .*model_best.bin failed.*training goes on' " DIR "/fail.log") == 0);
    MR_CHECK(sh("grep -q 'saved " DIR "/fail/model.bin' " DIR "/fail.log") == 0);
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/fail/model.bin --length 5 --quiet >/dev/null 2>&1") == 0);
}

static void test_sessions(void) {
    char *full, *p1, *p2;
    size_t n1;
    if (!have_programs()) MR_SKIP("build/minrnn-generate missing");
    MR_CHECK(sh("test -f " DIR "/random-a/model.bin || build/minrnn-train --data " DATA " --dim 24 --depth 2 --batch 4 "
                "--chunk-size 32 --steps 30 --threads 2 --out " DIR "/random-a >/dev/null 2>&1") == 0);
    /* greedy: 80 tokens at once equal 30 + a saved session + 50 more */
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/random-a/model.bin --prompt 'ROMEO:' --length 80 --temperature 0 --quiet > " DIR "/full.txt") == 0);
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/random-a/model.bin --prompt 'ROMEO:' --length 30 --temperature 0 --quiet "
                "--state-out " DIR "/s.state > " DIR "/p1.txt") == 0);
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/random-a/model.bin --state-in " DIR "/s.state --length 50 --temperature 0 --quiet > " DIR "/p2.txt") == 0);
    full = slurp(DIR "/full.txt", NULL); p1 = slurp(DIR "/p1.txt", &n1); p2 = slurp(DIR "/p2.txt", NULL);
    MR_CHECK(full && p1 && p2 && n1 > 1);
    if (full && p1 && p2 && n1 > 1) {
        p1[n1 - 1] = 0;   /* the newline printed at the end */
        MR_CHECK_MSG(strlen(full) == strlen(p1) + strlen(p2) && !strncmp(full, p1, strlen(p1)) && !strcmp(full + strlen(p1), p2),
                     "continued session differs:\n%s\nvs\n%s|%s", full, p1, p2);
    }
    mr_buffer_free(full); mr_buffer_free(p1); mr_buffer_free(p2);
    /* a session of another model is refused */
    MR_CHECK(sh("test -f " DIR "/stream-a/model.bin") == 0);
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/stream-a/model.bin --state-in " DIR "/s.state --length 5 >/dev/null 2>" DIR "/err.txt") == 2);
    MR_CHECK(sh("grep -q 'another model configuration' " DIR "/err.txt") == 0);
}

static void test_safetensors_cli(void) {
    if (!have_programs()) MR_SKIP("build/minrnn-convert missing");
    MR_CHECK(sh("build/minrnn-convert export " DIR "/random-a/model.bin " DIR "/w.safetensors >/dev/null") == 0);
    MR_CHECK(sh("build/minrnn-convert import " DIR "/random-b/model.bin " DIR "/w.safetensors " DIR "/imported.bin >/dev/null") == 0);
    MR_CHECK(same_weights(DIR "/random-a/model.bin", DIR "/imported.bin"));
    /* weights of another shape are refused */
    MR_CHECK(sh("build/minrnn-convert import " DIR "/stream-a/model.bin " DIR "/w.safetensors " DIR "/x.bin 2>/dev/null") == 2);
    MR_CHECK(sh("build/minrnn-convert info " DIR "/random-b/model.bin | grep -q 'step 30'") == 0);
}

/* --streams B: B samples, stream 0 the single-stream sample of the same seed, stream 1 that of seed + 1 */
static void test_streams(void) {
    char *s3, *s1, *s1b, *p;
    if (!have_programs()) MR_SKIP("build/minrnn-generate missing");
    MR_CHECK(sh("test -f " DIR "/random-a/model.bin") == 0);
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/random-a/model.bin --prompt 'ROMEO:' --length 60 --seed 9 --quiet --streams 3 > "
                DIR "/st3.txt") == 0);
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/random-a/model.bin --prompt 'ROMEO:' --length 60 --seed 9 --quiet > " DIR "/st1.txt") == 0);
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/random-a/model.bin --prompt 'ROMEO:' --length 60 --seed 10 --quiet > " DIR "/st1b.txt") == 0);
    MR_CHECK(sh("test $(grep -c '^### sample ' " DIR "/st3.txt) = 3") == 0);
    s3 = slurp(DIR "/st3.txt", NULL); s1 = slurp(DIR "/st1.txt", NULL); s1b = slurp(DIR "/st1b.txt", NULL);
    MR_CHECK(s3 && s1 && s1b);
    if (s3 && s1 && s1b) {
        p = strstr(s3, "### sample 0\n");
        MR_CHECK_MSG(p && !strncmp(p + 13, s1, strlen(s1)), "stream 0 differs from the single sample:\n%s\nvs\n%s", s3, s1);
        p = strstr(s3, "### sample 1\n");
        MR_CHECK_MSG(p && !strncmp(p + 13, s1b, strlen(s1b)), "stream 1 differs from the sample of seed + 1");
    }
    mr_buffer_free(s3); mr_buffer_free(s1); mr_buffer_free(s1b);
}

/* int8: quantize, info, generate, eval; the embed example runs from its static buffers */
static void test_int8_cli(void) {
    char *a, *b;
    if (!have_programs()) MR_SKIP("build/minrnn-generate missing");
    MR_CHECK(sh("test -f " DIR "/random-a/model.bin || build/minrnn-train --data " DATA " --dim 24 --depth 2 --batch 4 "
                "--chunk-size 32 --steps 30 --threads 2 --out " DIR "/random-a >/dev/null 2>&1") == 0);
    MR_CHECK(sh("build/minrnn-convert quantize " DIR "/random-a/model.bin " DIR "/q8.bin > " DIR "/q8.txt") == 0);
    MR_CHECK(sh("grep -q 'tensors int8' " DIR "/q8.txt && grep -q 'greedy from token 0' " DIR "/q8.txt") == 0);
    MR_CHECK(sh("build/minrnn-convert info " DIR "/q8.bin | grep -q 'tensors int8'") == 0);
    MR_CHECK(sh("build/minrnn-convert quantize " DIR "/q8.bin " DIR "/q8b.bin 2> " DIR "/q8b.err") != 0);
    MR_CHECK(sh("grep -q 'int8 already' " DIR "/q8b.err") == 0);
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/q8.bin --prompt 'ROMEO:' --length 80 --seed 3 --quiet > " DIR "/q8g.txt") == 0);
    MR_CHECK(sh("test $(wc -c < " DIR "/q8g.txt) -gt 60") == 0);
    MR_CHECK(sh("build/minrnn-convert eval " DIR "/q8.bin " DATA " --val-fraction 0.5 | grep -q 'int8 products'") == 0);
    MR_CHECK(sh("build/minrnn-convert embed " DIR "/q8.bin " DIR "/q8.h --name my_model > /dev/null && grep -q '#define MY_MODEL_HEAP_BYTES' " DIR
                "/q8.h && grep -q 'static const unsigned char my_model\\[' " DIR "/q8.h") == 0);
    MR_CHECK(sh("build/minrnn-convert embed " DIR "/q8.bin " DIR "/q8x.h --name 9bad 2> /dev/null") != 0);
    if (sh("test -x build/minrnn-embed") != 0) { MR_CHECK_MSG(0, "build/minrnn-embed missing"); return; }
    MR_CHECK(sh("build/minrnn-embed 300 7 > " DIR "/em1.txt 2> " DIR "/em1.err") == 0);
    MR_CHECK(sh("build/minrnn-embed 300 7 > " DIR "/em2.txt 2> /dev/null") == 0);
    MR_CHECK(sh("build/minrnn-embed 300 8 > " DIR "/em3.txt 2> /dev/null") == 0);
    MR_CHECK(sh("grep -q 'allocations after start: 0]' " DIR "/em1.err") == 0);
    a = slurp(DIR "/em1.txt", NULL); b = slurp(DIR "/em3.txt", NULL);
    MR_CHECK(sh("cmp -s " DIR "/em1.txt " DIR "/em2.txt") == 0);   /* a fixed seed: the same text */
    MR_CHECK(a && b && strlen(a) > 300 && strcmp(a, b) && !strncmp(a, "ROMEO:", 6));
    mr_buffer_free(a); mr_buffer_free(b);
}

static void test_bad_input(void) {
    static const struct { const char *cmd; const char *msg; } cases[] = {
        {"build/minrnn-train --data /nonexistent/x.txt", "cannot open"},
        {"build/minrnn-train --data " DIR "/empty.txt", "is empty"},
        {"build/minrnn-train --data " DIR "/short.txt", "too short"},
        {"build/minrnn-train --frobnicate", "unknown flag"},
        {"build/minrnn-train --dim abc", "expects an integer"},
        {"build/minrnn-train --dim 0", "must be in"},
        {"build/minrnn-train --batch -3", "must be in"},
        {"build/minrnn-train --lr 0", "must be in"},
        {"build/minrnn-train --resume /nonexistent.bin", "cannot open"},
        {"build/minrnn-train --resume " DATA, "bad magic"},
        {"build/minrnn-generate --model /nonexistent.bin", "cannot open"},
        {"build/minrnn-generate --model " DATA, "bad magic"},
        {"build/minrnn-generate --model " DIR "/random-a/model.bin --length 0", "must be in"},
        {"build/minrnn-generate --model " DIR "/random-a/model.bin --state-in " DATA, "bad magic"},
        {"build/minrnn-generate", "--model FILE is required"},
        {"build/minrnn-convert export " DATA " x.safetensors", "bad magic"},
        {"build/minrnn-convert import " DIR "/random-a/model.bin " DATA " x.bin", "safetensors"},
        {"build/minrnn-convert frob", "unknown command"},
        {"build/minrnn-train --out " DIR "/nothing --layers mingru,transformer", "unknown layer kind 'transformer'"},
        {"build/minrnn-train --out " DIR "/nothing --layers attn*2 --heads 5", "--heads 5 does not divide --dim 128"},
        {"build/minrnn-train --out " DIR "/nothing --layers attn --kv-heads 3", "--kv-heads 3 does not divide --heads 4"},
        {"build/minrnn-train --out " DIR "/nothing --layers attn --chunk-size 512 --max-context 256", "longer than the model's context"},
        {"build/minrnn-train --out " DIR "/nothing --ffn mixture", "unknown FFN kind"},
        {"build/minrnn-train --out " DIR "/nothing --ffn moe --experts 3 --top-k 3", "--top-k 3 must be less than --experts 3"},
        {"build/minrnn-train --out " DIR "/nothing --ffn moe --experts 1", "--experts"},
        {"build/minrnn-train --out " DIR "/nothing --layers rwkv6 --rwkv-head-size 48", "--rwkv-head-size 48 does not divide --dim 128"},
        {"build/minrnn-train --out " DIR "/nothing --layers rwkv6 --rwkv-ranks 32", "--rwkv-ranks wants R1,R2"},
        {"build/minrnn-train --out " DIR "/nothing --layers gru+rwkv6 --rwkv-head-size 48", "--rwkv-head-size 48 does not divide --dim 128"},
        {"build/minrnn-train --out " DIR "/nothing --layers gru+rwkv6+attn", "at most two mixers per block"},
        {"build/minrnn-generate --model " DIR "/hybrid/model.bin --length 200", "exceed the model's context of 64"},
        {"build/minrnn-generate --model " DIR "/random-a/model.bin --streams 2 --state-out " DIR "/x.state", "not with --streams"},
        {"build/minrnn-generate --model " DIR "/random-a/model.bin --streams 0", "must be in"},
    };
    size_t i;
    if (!have_programs()) MR_SKIP("programs missing");
    MR_CHECK(sh("test -f " DIR "/hybrid/model.bin || build/minrnn-train --data " DATA " --dim 24 --depth 2 --batch 4 --layers mingru,attn "
                "--heads 2 --max-context 64 --chunk-size 32 --steps 10 --threads 2 --out " DIR "/hybrid >/dev/null 2>&1") == 0);
    MR_CHECK(sh("rm -rf " DIR "/nothing") == 0);
    MR_CHECK(sh(": > " DIR "/empty.txt && printf 'hello world, a short file' > " DIR "/short.txt") == 0);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = sh("%s >/dev/null 2>" DIR "/err.txt", cases[i].cmd);
        char *e = slurp(DIR "/err.txt", NULL);
        MR_CHECK_MSG(rc == 2 && e && strstr(e, cases[i].msg), "'%s': exit %d, message '%s' (want '%s')", cases[i].cmd, rc, e ? e : "", cases[i].msg);
        mr_buffer_free(e);
    }
    MR_CHECK_MSG(sh("test -e " DIR "/nothing") != 0, "a refused run wrote its output directory");
}

/* a hybrid's session (KV cache, h, position) continues exactly, as a recurrent one does */
/* greedy: 80 tokens at once equal 30, a saved session (DIR/g.state), then 50 more */
static void check_session_continues(const char *model) {
    char *full, *p1, *p2;
    size_t n1;
    MR_CHECK(sh("build/minrnn-generate --model %s --prompt 'ROMEO:' --length 80 --temperature 0 --quiet > " DIR "/gfull.txt", model) == 0);
    MR_CHECK(sh("build/minrnn-generate --model %s --prompt 'ROMEO:' --length 30 --temperature 0 --quiet "
                "--state-out " DIR "/g.state > " DIR "/gp1.txt", model) == 0);
    MR_CHECK(sh("build/minrnn-generate --model %s --state-in " DIR "/g.state --length 50 --temperature 0 --quiet > " DIR "/gp2.txt", model) == 0);
    full = slurp(DIR "/gfull.txt", NULL); p1 = slurp(DIR "/gp1.txt", &n1); p2 = slurp(DIR "/gp2.txt", NULL);
    MR_CHECK(full && p1 && p2 && n1 > 1);
    if (full && p1 && p2 && n1 > 1) {
        p1[n1 - 1] = 0;
        MR_CHECK_MSG(strlen(full) == strlen(p1) + strlen(p2) && !strncmp(full, p1, strlen(p1)) && !strcmp(full + strlen(p1), p2),
                     "%s: continued session differs:\n%s\nvs\n%s|%s", model, full, p1, p2);
    }
    mr_buffer_free(full); mr_buffer_free(p1); mr_buffer_free(p2);
}
/* RWKV-6 with the channel mix: the shift and wkv states continue exactly */
static void test_sessions_rwkv(void) {
    if (!have_programs()) MR_SKIP("programs missing");
    MR_CHECK(sh("rm -rf " DIR "/rwkv && build/minrnn-train --data " DATA " --dim 16 --batch 4 --layers rwkv6*2 --ffn rwkv-cmix "
                "--rwkv-head-size 8 --rwkv-ranks 4,8 --chunk-size 32 --steps 10 --threads 2 --out " DIR "/rwkv >/dev/null 2>&1") == 0);
    check_session_continues(DIR "/rwkv/model.bin");
    MR_CHECK(sh("build/minrnn-convert info " DIR "/rwkv/model.bin | grep -q 'rwkv6,rwkv6), ffn (rwkv-cmix,rwkv-cmix), rwkv head size 8, LoRA ranks 4/8'") == 0);
    /* two mixers per block (GRU then RWKV-6): both states continue */
    MR_CHECK(sh("rm -rf " DIR "/grwkv && build/minrnn-train --data " DATA " --dim 16 --batch 4 --layers 'gru+rwkv6*2' --gru-norm --ffn rwkv-cmix "
                "--rwkv-head-size 8 --rwkv-ranks 4,8 --chunk-size 32 --steps 10 --threads 2 --out " DIR "/grwkv >/dev/null 2>&1") == 0);
    check_session_continues(DIR "/grwkv/model.bin");
    MR_CHECK(sh("build/minrnn-convert info " DIR "/grwkv/model.bin | grep -q '(gru+rwkv6,gru+rwkv6), ffn (rwkv-cmix,rwkv-cmix), rwkv head size 8'") == 0);
}
/* MoE training: the active parameters, the router statistics in the log and in history.csv, a session */
static void test_train_moe(void) {
    char *h, *lg;
    if (!have_programs()) MR_SKIP("programs missing");
    MR_CHECK(sh("rm -rf " DIR "/moe && build/minrnn-train --data " DATA " --dim 16 --batch 4 --layers 'gru+rwkv6,mingru' --ffn moe --experts 3 "
                "--rwkv-head-size 8 --rwkv-ranks 4,8 --chunk-size 32 --steps 12 --log-every 4 --eval-every 6 --threads 2 --out " DIR "/moe "
                ">/dev/null 2>" DIR "/moe.log") == 0);
    lg = slurp(DIR "/moe.log", NULL);
    h = slurp(DIR "/moe/history.csv", NULL);
    MR_CHECK_MSG(lg && strstr(lg, "active per token") && strstr(lg, "MoE: 3 experts of hidden 32 (1 shared, 2 routed), top-1") && strstr(lg, "moe bal "),
                 "log: %s", lg ? lg : "");
    MR_CHECK_MSG(h && strstr(h, "val_stateful_loss,moe_balance,moe_zloss,moe_load_1,moe_load_2\n"), "history: %s", h ? h : "");
    if (h) {   /* every row has the same 13 fields; the log rows carry the statistics */
        const char *p = h;
        int rows = 0, bad = 0, stats = 0;
        while (*p) {
            const char *e = strchr(p, '\n');
            int commas = 0;
            const char *q;
            if (!e) break;
            for (q = p; q < e; q++) commas += *q == ',';
            if (commas != 12) bad++;
            if (rows && e - p > 2 && e[-1] != ',') stats++;
            rows++;
            p = e + 1;
        }
        MR_CHECK_MSG(rows >= 5 && bad == 0 && stats >= 3, "history: %d rows, %d with another field count, %d with statistics", rows, bad, stats);
    }
    mr_buffer_free(lg); mr_buffer_free(h);
    check_session_continues(DIR "/moe/model.bin");
    MR_CHECK(sh("build/minrnn-convert info " DIR "/moe/model.bin | grep -q '(gru+rwkv6,mingru), ffn (moe,moe)'") == 0);
}
/* A copy of checkpoint `in` whose CONF field `tag` has its first payload byte set to v (the
   section's CRC recomputed, so only the value is wrong); 0 when the field is not there. */
static int patch_conf(const char *in, const char *out, unsigned tag, uint8_t v) {
    size_t n = 0, off = 16, found = 0;
    uint8_t *b = (uint8_t *)slurp(in, &n);
    FILE *f;
    while (b && off + 12 <= n) {
        uint64_t len = 0;
        int i;
        for (i = 0; i < 8; i++) len |= (uint64_t)b[off + 4 + i] << (8 * i);
        if (off + 12 + len + 4 > n) break;
        if (!memcmp(b + off, "CONF", 4)) {
            size_t q = off + 12, e = off + 12 + (size_t)len;
            uint32_t crc;
            while (q + 8 <= e) {
                unsigned t = b[q] | b[q + 1] << 8;
                uint32_t fl = b[q + 4] | b[q + 5] << 8 | (uint32_t)b[q + 6] << 16 | (uint32_t)b[q + 7] << 24;
                if (t == tag && fl > 0) { b[q + 8] = v; found = 1; }
                q += 8 + fl;
            }
            crc = mr__crc32(b + off + 12, (size_t)len);
            for (i = 0; i < 4; i++) b[e + i] = (uint8_t)(crc >> (8 * i));
            break;
        }
        off += 12 + (size_t)len + 4;
    }
    if (found && (f = fopen(out, "wb"))) { fwrite(b, 1, n, f); fclose(f); }
    mr_buffer_free(b);
    return (int)found;
}
/* a checkpoint with an unknown block (mixer, second mixer, FFN): one message naming it, exit 2 */
static void test_unknown_block(void) {
    static const struct { unsigned tag; const char *msg; } cases[] = {
        {13, "layer 0: unknown mixer 9"}, {24, "layer 0: unknown second mixer 8"}, {14, "layer 0: unknown FFN 9"},
    };
    size_t i;
    if (!have_programs()) MR_SKIP("programs missing");
    MR_CHECK(sh("test -f " DIR "/moe/model.bin || build/minrnn-train --data " DATA " --dim 16 --batch 4 --layers 'gru+rwkv6,mingru' --ffn moe "
                "--experts 3 --rwkv-head-size 8 --rwkv-ranks 4,8 --chunk-size 32 --steps 4 --threads 2 --out " DIR "/moe >/dev/null 2>&1") == 0);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *e;
        int rc;
        MR_CHECK_MSG(patch_conf(DIR "/moe/model.bin", DIR "/bad_block.bin", cases[i].tag, 9), "CONF field %u not found", cases[i].tag);
        rc = sh("build/minrnn-generate --model " DIR "/bad_block.bin --length 5 >/dev/null 2>" DIR "/err.txt");
        e = slurp(DIR "/err.txt", NULL);
        MR_CHECK_MSG(rc == 2 && e && strstr(e, cases[i].msg) && !strchr(strchr(e, '\n') ? strchr(e, '\n') + 1 : "", '\n'),
                     "field %u: exit %d, '%s' (want one line with '%s')", cases[i].tag, rc, e ? e : "", cases[i].msg);
        mr_buffer_free(e);
        rc = sh("build/minrnn-convert info " DIR "/bad_block.bin >/dev/null 2>" DIR "/err.txt");
        e = slurp(DIR "/err.txt", NULL);
        MR_CHECK_MSG(rc != 0 && e && strstr(e, cases[i].msg), "convert info, field %u: exit %d, '%s'", cases[i].tag, rc, e ? e : "");
        mr_buffer_free(e);
    }
}
static void test_sessions_attention(void) {
    if (!have_programs()) MR_SKIP("programs missing");
    MR_CHECK(sh("test -f " DIR "/gpt/model.bin || build/minrnn-train --data " DATA " --dim 24 --batch 4 --layers attn*2 --pos-emb learned "
                "--rope-theta 0 --ffn relu2 --heads 2 --kv-heads 1 --max-context 96 --chunk-size 32 --steps 10 --threads 2 --out " DIR "/gpt >/dev/null 2>&1") == 0);
    check_session_continues(DIR "/gpt/model.bin");
    /* 6 + 30 + 50 = 86 positions used: 20 more exceed the context of 96 */
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/gpt/model.bin --state-in " DIR "/g.state --length 70 >/dev/null 2>" DIR "/err.txt") == 2);
    MR_CHECK(sh("grep -q 'exceed the model' " DIR "/err.txt") == 0);
    MR_CHECK(sh("build/minrnn-convert info " DIR "/gpt/model.bin | grep -q 'attn,attn), ffn (relu2,relu2), 2 heads, 1 kv heads'") == 0);
}

static void test_bpe_ids_file(void) {
    char *h1, *h2;
    if (!have_programs()) MR_SKIP("programs missing");
    MR_CHECK(sh("rm -rf " DIR "/bpe-t " DIR "/bpe-u && build/minrnn-bpe train --input " DATA " --vocab-size 300 --out " DIR "/tok.json >/dev/null 2>&1") == 0);
    MR_CHECK(sh("build/minrnn-bpe encode --tokenizer " DIR "/tok.json " DATA " --out " DIR "/ids.u16 >/dev/null 2>&1") == 0);
    /* training on the text and on its ids gives the same run */
    MR_CHECK(sh("build/minrnn-train --data " DATA " --tokenizer " DIR "/tok.json --dim 16 --depth 1 --batch 2 --chunk-size 32 --steps 8 "
                "--log-every 1 --eval-every 0 --threads 1 --out " DIR "/bpe-t >/dev/null 2>&1") == 0);
    MR_CHECK(sh("build/minrnn-train --data " DIR "/ids.u16 --tokenizer " DIR "/tok.json --dim 16 --depth 1 --batch 2 --chunk-size 32 --steps 8 "
                "--log-every 1 --eval-every 0 --threads 1 --out " DIR "/bpe-u >/dev/null 2>&1") == 0);
    h1 = step_rows(DIR "/bpe-t/history.csv");
    h2 = step_rows(DIR "/bpe-u/history.csv");
    MR_CHECK(h1 && h2 && strlen(h1) > 50 && !strcmp(h1, h2));
    free(h1); free(h2);
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/bpe-u/model.bin --length 10 --quiet >/dev/null 2>&1") == 0);
    /* a file of odd length is refused */
    MR_CHECK(sh("printf 'abc' > " DIR "/odd.u16 && build/minrnn-train --data " DIR "/odd.u16 --tokenizer " DIR "/tok.json >/dev/null 2>&1") == 2);
}

/* The programs' surprises: exit codes (0 ok, 1 failure while running, 2 wrong command), --version,
   a full disk, a directory as a file, flags that would be ignored */
static void test_cli_surprises(void) {
    static const struct { const char *cmd; int rc; const char *msg; } cases[] = {
        {"build/minrnn-train --out '' --steps 1", 2, "--out is empty"},
        {"build/minrnn-train --data " DIR " --steps 1 --out " DIR "/nothing", 2, "it is a directory"},
        {"build/minrnn-train --resume " DIR " --steps 1", 2, "it is a directory"},
        {"build/minrnn-train --tokenizer " DIR " --steps 1 --out " DIR "/nothing", 2, "it is a directory"},
        {"build/minrnn-generate --model " DIR, 2, "it is a directory"},
        {"build/minrnn-convert info " DIR, 2, "it is a directory"},
        {"build/minrnn-bpe encode --tokenizer " DIR " " DATA, 2, "it is a directory"},
        {"build/minrnn-bpe stats --tokenizer " DIR "/tok.json " DIR, 2, "it is a directory"},
        {"build/minrnn-train --layers gru,gru --depth 5 --steps 1 --out " DIR "/nothing", 2, "lists 2 layers but --depth is 5"},
        {"build/minrnn-train --layers 'mingru*3' --depth 2 --steps 1 --out " DIR "/nothing", 2, "lists 3 layers but --depth is 2"},
        {"build/minrnn-train --resume " DIR "/sur/model.bin --dim 32 --steps 5", 2, "--dim cannot change a resumed run"},
        {"build/minrnn-train --resume " DIR "/sur/model.bin --layers gru --steps 5", 2, "--layers cannot change a resumed run"},
        {"build/minrnn-train --resume " DIR "/sur/model.bin --moe-renorm --steps 5", 2, "--moe-renorm cannot change a resumed run"},
        {"build/minrnn-train --resume " DIR "/sur/model.bin --tokenizer " DIR "/tok.json --steps 5", 2, "--tokenizer cannot change"},
        {"build/minrnn-generate --model " DIR "/sur/model.bin --length 50 > /dev/full", 1, "cannot write the output"},
        {"build/minrnn-convert info " DIR "/sur/model.bin > /dev/full", 1, "cannot write the output"},
        {"build/minrnn-bpe stats --tokenizer " DIR "/tok.json " DATA " > /dev/full", 1, "cannot write the output"},
        {"build/minrnn-bpe encode --tokenizer " DIR "/tok.json " DATA " --out /dev/full", 1, "cannot write '/dev/full'"},
        {"build/minrnn-train --data " DATA " --dim 8 --depth 1 --batch 2 --chunk-size 16 --steps 2 --threads 1 --out " DIR "/sur2 > /dev/full", 1,
         "cannot write the output"},
        {"build/minrnn-train --data " DATA " --dim 8 --depth 1 --steps 2 --out /dev/full/x", 1, "cannot write '/dev/full/x/history.csv'"},
    };
    static const char *const progs[] = {"train", "generate", "convert", "bpe"};
    size_t i;
    if (!have_programs()) MR_SKIP("programs missing");
    MR_CHECK(sh("rm -rf " DIR "/sur " DIR "/nothing && build/minrnn-train --data " DATA " --dim 8 --depth 1 --batch 2 --chunk-size 16 --steps 2 "
                "--threads 1 --out " DIR "/sur >/dev/null 2>&1") == 0);
    MR_CHECK(sh("test -f " DIR "/tok.json || build/minrnn-bpe train --input " DATA " --vocab-size 300 --out " DIR "/tok.json >/dev/null 2>&1") == 0);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = sh("%s 2>" DIR "/err.txt%s", cases[i].cmd, strchr(cases[i].cmd, '>') ? "" : " >/dev/null");
        char *e = slurp(DIR "/err.txt", NULL);
        MR_CHECK_MSG(rc == cases[i].rc && e && strstr(e, cases[i].msg), "'%s': exit %d (want %d), message '%s' (want '%s')", cases[i].cmd, rc,
                     cases[i].rc, e ? e : "", cases[i].msg);
        mr_buffer_free(e);
    }
    MR_CHECK_MSG(sh("test -e " DIR "/nothing") != 0, "a refused run wrote its output directory");
    /* the refused resumes left the run as it was */
    MR_CHECK(sh("build/minrnn-convert info " DIR "/sur/model.bin | grep -q 'dim 8, 1 layers'") == 0);
    for (i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        MR_CHECK_MSG(sh("build/minrnn-%s --version > " DIR "/ver.txt 2>&1", progs[i]) == 0, "minrnn-%s --version", progs[i]);
        MR_CHECK_MSG(sh("grep -q '^minrnn-%s (minrnn [0-9]*[.][0-9]*[.][0-9]*)$' " DIR "/ver.txt", progs[i]) == 0, "minrnn-%s --version output", progs[i]);
    }
}

/* special tokens written in the text are their ids by default (as Hugging Face reads them), text with --special-tokens off */
static void test_special_tokens_cli(void) {
    if (!have_programs()) MR_SKIP("programs missing");
    MR_CHECK(sh("awk 'BEGIN { for (i = 0; i < 400; i++) printf \"ROMEO: hello there<|endoftext|>\" }' > " DIR "/eot.txt") == 0);
    MR_CHECK(sh("rm -rf " DIR "/eot && build/minrnn-train --data " DIR "/eot.txt --tokenizer tests/fixtures/hf/v1000_special.json --dim 8 --depth 1 "
                "--steps 1 --batch 2 --chunk-size 16 --threads 1 --out " DIR "/eot > " DIR "/eot.log 2>&1 && grep -q '(2880 train, 320 val)' " DIR "/eot.log") == 0);
    MR_CHECK(sh("build/minrnn-train --data " DIR "/eot.txt --tokenizer tests/fixtures/hf/v1000_special.json --special-tokens off --dim 8 --depth 1 "
                "--steps 1 --batch 2 --chunk-size 16 --threads 1 --out " DIR "/eot-off > " DIR "/eot.log 2>&1 && grep -q '(6120 train, 680 val)' " DIR "/eot.log") == 0);
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/eot/model.bin --prompt 'x<|endoftext|>' --length 2 2>&1 >/dev/null | grep -q 'prompt 2 tokens'") == 0);
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/eot/model.bin --prompt 'x<|endoftext|>' --special-tokens off --length 2 2>&1 >/dev/null "
                "| grep -q 'prompt 11 tokens'") == 0);
    MR_CHECK(sh("printf 'a<|endoftext|>' | build/minrnn-bpe encode --tokenizer tests/fixtures/hf/v1000_special.json | grep -qx '97 997'") == 0);
    MR_CHECK(sh("build/minrnn-generate --model " DIR "/eot/model.bin --special-tokens maybe 2>&1 | grep -q 'must be on or off'") == 0);
}

static void test_interrupt(void) {
    mr_model *m = NULL;
    mr_vocab v;
    static mr_train_meta meta;
    if (!have_programs()) MR_SKIP("programs missing");
    /* Ctrl-C: the step finishes, model.bin is saved, exit status 130, and the run resumes */
    MR_CHECK(sh("rm -rf " DIR "/int; build/minrnn-train --data " DATA " --dim 16 --depth 1 --batch 2 --chunk-size 32 --steps 100000000 "
                "--threads 1 --eval-every 0 --out " DIR "/int > " DIR "/int.log 2>&1 & p=$!; sleep 1; kill -INT $p; wait $p") == 130);
    MR_CHECK(sh("grep -q 'interrupted at step' " DIR "/int.log") == 0);
    MR_CHECK(mr_ckpt_load(&m, &v, &meta, DIR "/int/model.bin", NULL, NULL) == MR_OK && meta.step > 0);
    mr_model_free(m);
    mr_vocab_free(&v);
    MR_CHECK(sh("build/minrnn-train --resume " DIR "/int/model.bin --stop-at-step %lld >/dev/null 2>&1", (long long)meta.step + 3) == 0);
    MR_CHECK(mr_ckpt_load(&m, &v, &meta, DIR "/int/model.bin", NULL, NULL) == MR_OK);
    MR_CHECK(m != NULL);
    mr_model_free(m);
    mr_vocab_free(&v);
}

MR_TEST_MAIN({"resume_exact", test_resume_exact}, {"failed_save_goes_on", test_failed_save_goes_on}, {"sessions", test_sessions}, {"streams", test_streams}, {"sessions_attention", test_sessions_attention},
             {"sessions_rwkv", test_sessions_rwkv}, {"train_moe", test_train_moe}, {"unknown_block", test_unknown_block},
             {"safetensors_cli", test_safetensors_cli}, {"int8_cli", test_int8_cli}, {"bad_input", test_bad_input},
             {"bpe_ids_file", test_bpe_ids_file}, {"cli_surprises", test_cli_surprises}, {"special_tokens_cli", test_special_tokens_cli}, {"interrupt", test_interrupt})
