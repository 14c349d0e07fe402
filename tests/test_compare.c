/* minrnn-compare, run as a user runs it: the equal-parameter solving (every
   default model within 10% of the target at three targets, each count
   checked against the trainer's own), a comparison in which one model fails
   (a forced NaN) while the others complete, determinism with --steps, the
   four output files, Ctrl-C then --resume, minrnn-train's own loss.svg, and
   bad input (one message, non-zero exit, nothing written). Needs the
   programs in build/ (make test builds them); skips without them. */
#define _POSIX_C_SOURCE 200809L
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"
#include "cli_common.h"
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>

#define DIR "build/compare-test"
#define DATA "tests/data/shakespeare_12k.txt"
#define CMP "build/minrnn-compare --data " DATA
/* a small, fast run: the trainer's flags after -- */
#define TINY " -- --batch 4 --chunk-size 32 --threads 1"

static int have_programs(void) {
    FILE *f = fopen("build/minrnn-compare", "rb");
    if (!f) return 0;
    fclose(f);
    if (!(f = fopen("build/minrnn-train", "rb"))) return 0;
    fclose(f);
    return 1;
}

/* The plan at three targets: 7 models, each within 10% of the target, and the
   printed count is what minrnn-train itself counts for the printed flags. */
static void test_plan(void) {
    static const long long targets[3] = {300000, 926976, 3000000};
    int t;
    if (!have_programs()) MR_SKIP("programs missing");
    sh("mkdir -p " DIR);
    for (t = 0; t < 3; t++) {
        char *out, *line;
        int n = 0;
        MR_CHECK(sh(CMP " --plan --params %lld > " DIR "/plan.txt 2>&1", targets[t]) == 0);
        out = slurp(DIR "/plan.txt", NULL);
        if (!out) { MR_CHECK(0); continue; }
        for (line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
            char name[64], cnt[32], act[32], flags[1024], *nl;
            double pct;
            long long p = 0, q = 0, pt = 0, at = 0;
            size_t k;
            if (strncmp(line, "  ", 2)) continue;
            nl = strchr(line, '\n');
            if (nl) *nl = 0;
            if (sscanf(line, " %63s %31s params (%lf%%) active %31s %1023[^\n]", name, cnt, &pct, act, flags) != 5) { MR_CHECK_MSG(0, "plan line '%s'", line); if (nl) *nl = '\n'; continue; }
            if (nl) *nl = '\n';
            for (k = 0; cnt[k]; k++) if (cnt[k] != ',') p = p * 10 + (cnt[k] - '0');
            for (k = 0; act[k]; k++) if (act[k] != ',') q = q * 10 + (act[k] - '0');
            n++;
            MR_CHECK_MSG(pct >= -10 && pct <= 10 && fabs((double)p / (double)targets[t] - 1) <= 0.10, "%s: %lld parameters for a target of %lld", name, p, targets[t]);
            /* the trainer's count for the same flags */
            MR_CHECK(sh("build/minrnn-train --data " DATA " %s --print-params > " DIR "/pp.txt 2>&1", flags) == 0);
            {
                char *pp = slurp(DIR "/pp.txt", NULL);
                MR_CHECK_MSG(pp && sscanf(pp, "params %lld active %lld", &pt, &at) == 2 && pt == p && at == q,
                             "%s: the plan says %lld/%lld, minrnn-train %lld/%lld", name, p, q, pt, at);
                mr_buffer_free(pp);
            }
        }
        MR_CHECK_MSG(n == 7, "%d models in the plan for %lld", n, targets[t]);
        mr_buffer_free(out);
    }
    /* the default target is the default model's count on this data; --match active for the MoE model */
    MR_CHECK(sh(CMP " --plan --models mingru 2>&1 | grep -q 'mingru .* ( +0.0%%).*--dim 128$'") == 0);
    MR_CHECK(sh(CMP " --plan --models gru-rwkv-moe --match active --params 500k 2>&1 | grep -q 'active *\\(4[5-9][0-9]\\|5[0-4][0-9]\\),[0-9]*'") == 0);
    /* a custom entry and a --set override (a fixed width is taken as given) */
    MR_CHECK(sh(CMP " --plan --models 'mingru;mix=mingru,attn' --set 'mix=--dim 64' 2>&1 | grep -q '^  mix .*--layers mingru,attn --ffn swiglu --dim 64$'") == 0);
}

/* the summary's field k (0-based) of the row of model name */
static void field(const char *csv, const char *name, int k, char *out, size_t n) {
    const char *line = csv;
    size_t L = strlen(name);
    out[0] = 0;
    while (line && *line) {
        if (!strncmp(line, name, L) && line[L] == ',') {
            const char *p = line;
            int i = 0, q = 0;
            size_t o = 0;
            for (; *p && *p != '\n'; p++) {
                if (*p == '"') { q = !q; continue; }
                if (*p == ',' && !q) { if (i++ == k) break; continue; }
                if (i == k && o + 1 < n) out[o++] = *p;
            }
            out[o] = 0;
            return;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
}

/* One comparison with a forced NaN in one model, twice: the failure is
   recorded with its reason, the others complete, the losses repeat. */
static void test_run(void) {
    static const char *const names[7] = {"mingru", "minlstm", "gru", "rwkv6", "gpt", "hybrid", "gru-rwkv-moe"};
    char *s1, *s2, *html, *js, *svg;
    int i, rc1, rc2;
    if (!have_programs()) MR_SKIP("programs missing");
    rc1 = sh("rm -rf " DIR "/r1 " DIR "/r2; " CMP " --steps 6 --params 300k --set 'gru=--fault-nan-at 3' --out " DIR "/r1" TINY " > " DIR "/r1.log 2>&1");
    rc2 = sh(CMP " --steps 6 --params 300k --set 'gru=--fault-nan-at 3' --out " DIR "/r2" TINY " > " DIR "/r2.log 2>&1");
    MR_CHECK_MSG(rc1 == 0 && rc2 == 0, "exit %d %d", rc1, rc2);   /* a failed model is a result, not a failed comparison */
    s1 = slurp(DIR "/r1/summary.csv", NULL); s2 = slurp(DIR "/r2/summary.csv", NULL);
    html = slurp(DIR "/r1/report.html", NULL); js = slurp(DIR "/r1/history.json", NULL); svg = slurp(DIR "/r1/loss.svg", NULL);
    MR_CHECK(s1 && s2 && html && js && svg);
    if (s1 && s2) {
        MR_CHECK(!strncmp(s1, "model,config,params,active_params,tokens_per_s,peak_rss_mb,train_loss_nats,train_bpc,val_loss_nats,val_bpc,", 100));
        for (i = 0; i < 7; i++) {
            char st[64], why[256], v1[64], v2[64], t1[64], t2[64], rss[64];
            field(s1, names[i], 14, st, sizeof st);
            field(s1, names[i], 15, why, sizeof why);
            field(s1, names[i], 8, v1, sizeof v1); field(s2, names[i], 8, v2, sizeof v2);
            field(s1, names[i], 6, t1, sizeof t1); field(s2, names[i], 6, t2, sizeof t2);
            field(s1, names[i], 5, rss, sizeof rss);
            if (i == 2) MR_CHECK_MSG(!strcmp(st, "failed") && strstr(why, "diverged at step 3"), "gru: '%s' '%s'", st, why);
            else MR_CHECK_MSG(!strcmp(st, "ok") && v1[0] && atof(v1) > 0 && atof(rss) > 1, "%s: status '%s', val '%s', rss '%s'", names[i], st, v1, rss);
            MR_CHECK_MSG(!strcmp(v1, v2) && !strcmp(t1, t2), "%s: val %s / %s, train %s / %s", names[i], v1, v2, t1, t2);
        }
    }
    if (html) MR_CHECK(strstr(html, "<svg") && strstr(html, "<table") && strstr(html, "gru-rwkv-moe") && strstr(html, "failed: the loss diverged") &&
                      !strstr(html, "src=") && !strstr(html, "<link") && !strstr(html, "@import"));   /* nothing fetched */
    if (js) MR_CHECK(strstr(js, "\"name\": \"hybrid\"") && strstr(js, "\"val_loss\": ") && strstr(js, "\"status\": \"failed\""));
    if (svg) MR_CHECK(strstr(svg, "</svg>") && strstr(svg, "gru (failed)") && strstr(svg, "tokens seen") && strstr(svg, "wall time (s)"));
    MR_CHECK(sh("test -f " DIR "/r1/gpt/model.bin && test -f " DIR "/r1/gpt/loss.svg && test -f " DIR "/r1/gpt/train.log") == 0);
    MR_CHECK(sh("grep -q 'model_best\\|6 of 7\\|wrote' " DIR "/r1.log") == 0);
    mr_buffer_free(s1); mr_buffer_free(s2); mr_buffer_free(html); mr_buffer_free(js); mr_buffer_free(svg);
    /* minrnn-train's own plot of its run */
    {
        char *t = slurp(DIR "/r1/mingru/loss.svg", NULL);
        MR_CHECK(t && strstr(t, "validation loss") && strstr(t, "train loss") && strstr(t, ">step<"));
        mr_buffer_free(t);
    }
}

/* Ctrl-C: the current model saves, the comparison exits 130; --resume finishes it */
static void test_resume(void) {
    char *s;
    char st[64], a[64], b[64];
    if (!have_programs()) MR_SKIP("programs missing");
    MR_CHECK(sh("rm -rf " DIR "/int; " CMP " --steps 100000 --params 50k --models 'mingru,gru' --out " DIR "/int -- --batch 2 --chunk-size 16 --threads 1 "
                "--log-every 1 > " DIR "/int.log 2>&1 & p=$!; for i in $(seq 100); do sleep 0.1; "
                "test -f " DIR "/int/mingru/history.csv && test $(wc -l < " DIR "/int/mingru/history.csv) -gt 5 && break; done; "
                "kill -INT $p; wait $p") == 130);
    s = slurp(DIR "/int/summary.csv", NULL);
    field(s ? s : "", "mingru", 14, st, sizeof st);
    field(s ? s : "", "gru", 14, b, sizeof b);
    MR_CHECK_MSG(!strcmp(st, "interrupted") && !strcmp(b, "not run"), "after Ctrl-C: '%s' '%s'", st, b);
    mr_buffer_free(s);
    MR_CHECK(sh("grep -q 'minrnn-compare --resume --out' " DIR "/int.log") == 0);
    /* --resume takes the comparison's flags as recorded */
    MR_CHECK(sh("build/minrnn-compare --resume --out " DIR "/int --steps 3 > /dev/null 2>" DIR "/err.txt") == 2);
    MR_CHECK(sh("grep -q 'give only --out DIR' " DIR "/err.txt") == 0);
    /* a shorter comparison recorded (10 steps past where mingru stopped), then resumed: mingru continues
       from its checkpoint to that step, gru runs */
    s = slurp(DIR "/int/summary.csv", NULL);
    field(s ? s : "", "mingru", 11, a, sizeof a);
    mr_buffer_free(s);
    MR_CHECK_MSG(atoi(a) > 0, "mingru stopped at step '%s'", a);
    snprintf(b, sizeof b, "%d", atoi(a) + 10);
    MR_CHECK(sh("sed -i 's/^100000$/%s/' " DIR "/int/compare.args", b) == 0);
    MR_CHECK(sh("build/minrnn-compare --resume --out " DIR "/int > " DIR "/res.log 2>&1") == 0);
    s = slurp(DIR "/int/summary.csv", NULL);
    field(s ? s : "", "mingru", 14, st, sizeof st);
    field(s ? s : "", "gru", 14, a, sizeof a);
    MR_CHECK_MSG(!strcmp(st, "ok") && !strcmp(a, "ok"), "after --resume: '%s' '%s'", st, a);
    field(s ? s : "", "mingru", 11, a, sizeof a);
    MR_CHECK_MSG(!strcmp(a, b), "mingru steps '%s', want %s", a, b);
    MR_CHECK(sh("grep -q 'resuming at step' " DIR "/int/mingru/train.log") == 0);
    mr_buffer_free(s);
}

/* bad input: one message, a non-zero exit, nothing written */
static void test_bad_input(void) {
    static const struct { const char *cmd; int rc; const char *msg; } cases[] = {
        {CMP " --budget 10 --models mingru,transformer --out " DIR "/bad", 2, "unknown model 'mingru,transformer'"},
        {CMP " --budget 0 --out " DIR "/bad", 2, "--budget must be a positive number of seconds"},
        {CMP " --budget -5 --out " DIR "/bad", 2, "--budget must be a positive number of seconds"},
        {CMP " --out " DIR "/bad", 2, "--budget SECONDS (wall time per model) or --steps N is required"},
        {CMP " --budget 10 --params 1k --out " DIR "/bad", 2, "cannot reach 1000 parameters"},
        {CMP " --budget 10 --params 90000M --models gru --out " DIR "/bad", 2, "gru cannot reach 90000000000 parameters"},
        {CMP " --budget 10 --params lots --out " DIR "/bad", 2, "--params expects"},
        {CMP " --budget 10 --set 'lstm=--dim 8' --out " DIR "/bad", 2, "no model 'lstm'"},
        {CMP " --budget 10 --set 'gpt=--kv-heads 3' --models gpt --out " DIR "/bad", 2, "gpt: minrnn-train refuses the configuration: --kv-heads 3 does not divide"},
        {CMP " --budget 10 --models mingru,mingru --out " DIR "/bad", 2, "named twice"},
        {CMP " --budget 10 --out " DIR "/bad -- --steps 5", 2, "after --: --steps is the comparison's"},
        {"build/minrnn-compare --data /nonexistent.txt --budget 10 --out " DIR "/bad", 2, "cannot open '/nonexistent.txt'"},
        {CMP " --budget 10 --models mingru --out " DATA "/sub", 1, "cannot create the output directory"},
        {CMP " --budget 10 --frob", 2, "unknown flag '--frob'"},
        {"build/minrnn-compare --resume --out " DIR "/nothing-here", 2, "no comparison to continue"},
    };
    size_t i;
    if (!have_programs()) MR_SKIP("programs missing");
    sh("rm -rf " DIR "/bad; mkdir -p " DIR);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = sh("%s > /dev/null 2>" DIR "/err.txt", cases[i].cmd);
        char *e = slurp(DIR "/err.txt", NULL);
        int lines = 0;
        const char *p;
        for (p = e; p && *p; p++) lines += *p == '\n';
        MR_CHECK_MSG(rc == cases[i].rc && e && strstr(e, cases[i].msg) && lines == 1, "'%s': exit %d (want %d), message '%s' (want '%s')", cases[i].cmd, rc,
                     cases[i].rc, e ? e : "", cases[i].msg);
        mr_buffer_free(e);
    }
    MR_CHECK_MSG(sh("test -e " DIR "/bad") != 0, "a refused comparison wrote its output directory");
    /* the trainer's preset: its flags, overridden by those given with it */
    MR_CHECK(sh("build/minrnn-train --data " DATA " --preset shakespeare-15m --print-params 2>&1 | grep -q '^params '") == 0);
    MR_CHECK(sh("build/minrnn-train --data " DATA " --preset shakespeare-15m --dim 8 --steps 1 --threads 1 --batch 2 --chunk-size 16 --out " DIR "/preset "
                "2>&1 | grep -q 'model gru d=8 L=4'") == 0);
    MR_CHECK(sh("build/minrnn-train --preset nope 2>&1 | grep -q \"unknown preset 'nope'\"") == 0);
    MR_CHECK(sh("build/minrnn-train --preset shakespeare-15m --resume x.bin 2>&1 | grep -q 'flags come from its checkpoint'") == 0);
}

MR_TEST_MAIN({"plan", test_plan}, {"run", test_run}, {"resume", test_resume}, {"bad_input", test_bad_input})
