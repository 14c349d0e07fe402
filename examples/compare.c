/* minrnn-compare: architectures side by side on the same text, split, seed
   and wall-time budget (or number of steps), at an equal parameter count.
   Each model is trained by minrnn-train in its own process (a crash or a
   divergence in one is recorded with its reason and the others go on), and
   every model gets the trainer's evaluation over the whole validation split.
   Writes DIR/summary.csv, DIR/history.json, DIR/loss.svg, DIR/report.html
   and each model's run in DIR/NAME/ (model.bin, history.csv, train.log). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "common.h"
#include "plot.h"
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <sys/resource.h>

static const char *PROG = "minrnn-compare";

#define CMP_MAX_MODELS 32
#define CMP_MAX_ARGS 96
#define CMP_DIM_MAX 4096

/* The default set: name, the trainer's --layers, the other model flags
   (--depth applies to a single kind), and what it is. */
static const struct cmp_kind { const char *name, *layers, *flags, *desc; } k_kinds[] = {
    {"mingru", "mingru", "--ffn swiglu", "MinGRU (parallel scan), SwiGLU FFN"},
    {"minlstm", "minlstm", "--ffn swiglu", "MinLSTM (parallel scan), SwiGLU FFN"},
    {"gru", "gru", "--ffn swiglu", "classic GRU (sequential), SwiGLU FFN"},
    {"rwkv6", "rwkv6", "--ffn rwkv-cmix", "RWKV-6 time mixing and channel mixing"},
    {"gpt", "attn", "--ffn gelu --pos-emb learned --rope-theta 0", "Transformer as the minimal GPT: learned positions, GELU MLP"},
    {"hybrid", "mingru,mingru,attn,mingru", "--ffn swiglu", "MinGRU x attention (RoPE) at layer 3 of 4"},
    {"gru-rwkv-moe", "gru+rwkv6*2", "--gru-norm --ffn moe --experts 4 --top-k 1", "2 blocks of GRU + RWKV-6, MoE FFN (1 shared + 3 routed, top-1)"},
};
#define CMP_N_KINDS ((int)(sizeof k_kinds / sizeof k_kinds[0]))

typedef struct entry {
    char name[96], dir[128];          /* the name shown, and its directory under DIR */
    char layers[512], desc[160];
    char flags[1024];                 /* model flags, then the --set override: split into words */
    char *words[CMP_MAX_ARGS];
    int n_words, single, depth;
    int dim_fixed, ffn_fixed;         /* --dim / --ffn-hidden given in the override: not solved */
    /* the plan */
    int dim, ffn_hidden;              /* ffn_hidden -1: the trainer's default for dim */
    long long params, active;
    char config[1400];                /* the trainer's model flags, as one line */
    /* the result */
    char status[32], reason[512];
    double peak_rss_mb, run_wall;
} entry;

typedef struct cmp {
    const char *data, *out, *models, *match;
    double budget, val_fraction;
    long long steps, target, seed;
    int threads, depth, plan_only, resume, target_given;
    char eval_every[32];
    const char *sets[CMP_MAX_MODELS];
    int n_sets;
    char **pass; int n_pass;           /* after --: flags for every minrnn-train run */
    char train[4096];                  /* the minrnn-train program */
    entry e[CMP_MAX_MODELS];
    int n;
    char cmdline[4096];
} cmp;

static volatile sig_atomic_t g_int = 0;
static void on_signal(int sig) { (void)sig; g_int = 1; }

static void usage(void) {
    int k;
    printf("usage: minrnn-compare --data FILE --budget SECONDS [flags] [-- TRAINER FLAGS]\n"
           "Trains each model in turn, each in its own minrnn-train process, on the same data, split,\n"
           "seed and budget, at an equal parameter count, and writes DIR/summary.csv, history.json,\n"
           "loss.svg and report.html (open it in a browser) and each model's run in DIR/NAME/.\n"
           "  --data FILE         training text (default data/tinyshakespeare.txt)\n"
           "  --budget SECONDS    wall time per model: training, evaluations and the final save\n"
           "  --steps N           steps per model instead of a budget (two comparisons with the same\n"
           "                      --seed and --threads give identical losses)\n"
           "  --models LIST       the models, separated by commas (default: all of the set below); a\n"
           "                      custom entry is NAME=LAYERS in the trainer's --layers syntax, or the\n"
           "                      layer spec itself; separate it from other entries by ';' or a space:\n"
           "                      --models 'mingru,gpt;mix=mingru,attn,mingru,attn'\n"
           "  --params N          target parameter count (k and M allowed: 2.5M; default: the default\n"
           "                      model's on this data); each model's --dim (and if that is not close\n"
           "                      enough, its --ffn-hidden) is solved to within 10%% (2%% when it can)\n"
           "  --match total|active  MoE models: match total parameters (default) or those one token uses\n"
           "  --depth N           layers of the single-kind models (default 4)\n"
           "  --set NAME=FLAGS    trainer flags for one model (any number of --set): --set 'gpt=--heads 8';\n"
           "                      with --dim its width is taken as given, with --ffn-hidden its FFN\n"
           "  --seed S            (default 1337)  --threads N (default: the trainer's, all cores)\n"
           "  --val-fraction F    last fraction of the file for validation (default 0.1)\n"
           "  --eval-every E      the trainer's --eval-every (default: a tenth of the budget, as Ns, or\n"
           "                      of the steps)\n"
           "  --out DIR           (default runs/compare)\n"
           "  --plan              print the configurations and their parameter counts, then exit\n"
           "  --resume            continue the comparison in --out (after Ctrl-C): finished models are\n"
           "                      kept, the interrupted one resumes from its checkpoint\n"
           "  -- FLAGS            the rest goes to every minrnn-train run (-- --batch 16 --lr 3e-3)\n"
           "Ctrl-C stops after the current model has saved; --resume picks the comparison up.\n"
           "minrnn-train is looked for beside this program (MINRNN_TRAIN names another).\n"
           "models:\n");
    for (k = 0; k < CMP_N_KINDS; k++) printf("  %-14s %s\n    %*s--layers %s %s\n", k_kinds[k].name, k_kinds[k].desc, 0, "", k_kinds[k].layers, k_kinds[k].flags);
}

/* --- small helpers ------------------------------------------------------ */
/* a formatted message, then exit with code (ex_exit) */
static void exit_msg(int code, const char *fmt, ...) {
    char b[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    ex_exit(PROG, b, code);
}
#define die(...) exit_msg(EX_USAGE, __VA_ARGS__)    /* the command is wrong */
#define fail(...) exit_msg(EX_FAIL, __VA_ARGS__)    /* a failure while running */
static int is_kind(const char *s) {
    int k;
    for (k = 0; k < CMP_N_KINDS; k++) if (!strcmp(s, k_kinds[k].name)) return k;
    return -1;
}
/* splits s (modified) at spaces and tabs into w; returns the count, -1 if more than max */
static int split_words(char *s, char **w, int n, int max) {
    while (*s) {
        while (*s == ' ' || *s == '\t') *s++ = 0;
        if (!*s) break;
        if (n >= max) return -1;
        w[n++] = s;
        while (*s && *s != ' ' && *s != '\t') s++;
    }
    return n;
}
static int has_word(const entry *e, const char *f) {
    int i;
    for (i = 0; i < e->n_words; i++) if (!strcmp(e->words[i], f)) return 1;
    return 0;
}
static const char *word_value(const entry *e, const char *f) {   /* the last value of flag f */
    const char *v = NULL;
    int i;
    for (i = 0; i + 1 < e->n_words; i++) if (!strcmp(e->words[i], f)) v = e->words[i + 1];
    return v;
}
static int gcd(int a, int b) { while (b) { int t = a % b; a = b; b = t; } return a; }
static int lcm(int a, int b) { return a / gcd(a, b) * b; }
static void fmt_count(char *b, size_t n, long long v) {   /* 926,976 */
    char t[32];
    int L, i, o = 0;
    snprintf(t, sizeof t, "%lld", v < 0 ? -v : v);
    L = (int)strlen(t);
    if (v < 0 && o < (int)n - 1) b[o++] = '-';
    for (i = 0; i < L && o < (int)n - 1; i++) {
        b[o++] = t[i];
        if ((L - i - 1) % 3 == 0 && i < L - 1 && o < (int)n - 1) b[o++] = ',';
    }
    b[o] = 0;
}
/* a whole file as a NUL-terminated string (free with mr_buffer_free), NULL when it cannot be read */
static char *read_text(const char *path) {
    uint8_t *b = NULL;
    size_t n = 0;
    return mr_read_file(path, &b, &n, (size_t)1 << 30, NULL, NULL) == MR_OK ? (char *)b : NULL;
}

/* Runs argv with its standard output into out (and standard error into
   err); returns the exit status, or -1 when it cannot run. */
static int run_capture(char *const *argv, char *out, size_t ocap, char *err, size_t ecap) {
    int po[2], pe[2], st = 0;
    pid_t pid;
    size_t n;
    ssize_t r;
    if (pipe(po) != 0) return -1;
    if (pipe(pe) != 0) { close(po[0]); close(po[1]); return -1; }
    pid = fork();
    if (pid < 0) { close(po[0]); close(po[1]); close(pe[0]); close(pe[1]); return -1; }
    if (pid == 0) {
        dup2(po[1], 1); dup2(pe[1], 2);
        close(po[0]); close(po[1]); close(pe[0]); close(pe[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(po[1]); close(pe[1]);
    n = 0;
    while ((r = read(po[0], out + n, ocap - 1 - n)) > 0) n += (size_t)r;
    out[n] = 0;
    n = 0;
    while ((r = read(pe[0], err + n, ecap - 1 - n)) > 0) n += (size_t)r;
    err[n] = 0;
    close(po[0]); close(pe[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFEXITED(st)) return WEXITSTATUS(st) == 127 ? -1 : WEXITSTATUS(st);
    return -1;
}
static void chomp(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
}

/* --- the trainer's arguments --------------------------------------------- */
typedef struct argbuf { char *v[CMP_MAX_ARGS * 2 + 32]; int n; char store[64][32]; int ns; } argbuf;
static void ab_add(argbuf *a, const char *s) {
    if (a->n < (int)(sizeof a->v / sizeof a->v[0]) - 1) a->v[a->n++] = (char *)s;
    a->v[a->n] = NULL;
}
static void ab_num(argbuf *a, const char *flag, long long v) {
    if (a->ns >= 64) return;
    snprintf(a->store[a->ns], sizeof a->store[0], "%lld", v);
    ab_add(a, flag);
    ab_add(a, a->store[a->ns++]);
}
static void ab_dbl(argbuf *a, const char *flag, double v) {
    if (a->ns >= 64) return;
    snprintf(a->store[a->ns], sizeof a->store[0], "%.17g", v);
    ab_add(a, flag);
    ab_add(a, a->store[a->ns++]);
}
/* the flags that fix the model: layers, depth, the kind's flags and overrides, the solved width */
static void ab_model(const cmp *c, argbuf *a, const entry *e, int dim, int ffn_hidden) {
    int i;
    ab_add(a, "--data"); ab_add(a, c->data);
    ab_dbl(a, "--val-fraction", c->val_fraction);
    ab_add(a, "--layers"); ab_add(a, e->layers);
    if (e->single) ab_num(a, "--depth", e->depth);
    for (i = 0; i < c->n_pass; i++) ab_add(a, c->pass[i]);
    for (i = 0; i < e->n_words; i++) ab_add(a, e->words[i]);
    if (!e->dim_fixed) ab_num(a, "--dim", dim);
    if (!e->ffn_fixed && ffn_hidden >= 0) ab_num(a, "--ffn-hidden", ffn_hidden);
}

/* The trainer's parameter counts for entry e at (dim, ffn_hidden); 0 when
   it refuses the configuration (its message in why), -1 when it cannot run. */
static int count_params(const cmp *c, const entry *e, int dim, int ffn_hidden, long long *params, long long *active, char *why, size_t wn) {
    argbuf a;
    char out[512], err[2048];
    int rc;
    memset(&a, 0, sizeof a);
    ab_add(&a, c->train);
    ab_model(c, &a, e, dim, ffn_hidden);
    ab_add(&a, "--print-params");
    rc = run_capture(a.v, out, sizeof out, err, sizeof err);
    if (rc < 0) { snprintf(why, wn, "cannot run %.900s", c->train); return -1; }
    if (rc != 0 || sscanf(out, "params %lld active %lld", params, active) != 2) {
        char *m = strstr(err, "minrnn-train: ");
        chomp(err);
        snprintf(why, wn, "%s", m ? m + 14 : err[0] ? err : "no parameter count");
        if (strchr(why, '\n')) *strchr(why, '\n') = 0;
        return 0;
    }
    return 1;
}
static long long pick(const cmp *c, long long p, long long a) { return !strcmp(c->match, "active") ? a : p; }
static double rel_err(long long v, long long t) { return ((double)v - (double)t) / (double)t; }

/* Solves e's width (on the grid the model allows) and, if that misses the
   target by more than 2%, its FFN hidden size (multiples of 8); exits with a
   message when the target is out of reach within 10%. */
static void solve(cmp *c, entry *e) {
    char why[1024];
    long long p = 0, a = 0;
    int step = 8, lo, hi, best, rc;
    const char *hv = word_value(e, "--heads"), *rv = word_value(e, "--rwkv-head-size");
    if (strstr(e->layers, "attn")) step = lcm(step, 2 * (hv ? atoi(hv) > 0 ? atoi(hv) : 1 : 4));
    if (strstr(e->layers, "rwkv6")) step = lcm(step, rv ? atoi(rv) > 0 ? atoi(rv) : 1 : 64);
    if (e->dim_fixed) {
        e->dim = atoi(word_value(e, "--dim"));
        rc = count_params(c, e, e->dim, -1, &p, &a, why, sizeof why);
        if (rc < 0) fail("%s", why);
        if (rc == 0) die("%s: minrnn-train refuses the configuration: %s", e->name, why);
        e->ffn_hidden = -1; e->params = p; e->active = a;
        return;
    }
    /* the smallest grid width whose count reaches the target */
    lo = 1; hi = CMP_DIM_MAX / step;
    rc = count_params(c, e, hi * step, -1, &p, &a, why, sizeof why);
    if (rc < 0) fail("%s", why);
    if (rc == 0) die("%s: minrnn-train refuses the configuration: %s", e->name, why);
    if (pick(c, p, a) < c->target) {
        if (rel_err(pick(c, p, a), c->target) < -0.10)
            die("%s cannot reach %lld parameters: its largest width (--dim %d) has %lld", e->name, c->target, hi * step, pick(c, p, a));
        lo = hi;
    }
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        rc = count_params(c, e, mid * step, -1, &p, &a, why, sizeof why);
        if (rc <= 0) die("%s: minrnn-train refuses --dim %d: %s", e->name, mid * step, why);
        if (pick(c, p, a) >= c->target) hi = mid; else lo = mid + 1;
    }
    best = lo;
    count_params(c, e, best * step, -1, &p, &a, why, sizeof why);
    e->dim = best * step; e->ffn_hidden = -1; e->params = p; e->active = a;
    if (best > 1) {
        long long p2, a2;
        if (count_params(c, e, (best - 1) * step, -1, &p2, &a2, why, sizeof why) == 1 &&
            fabs(rel_err(pick(c, p2, a2), c->target)) < fabs(rel_err(pick(c, p, a), c->target))) {
            e->dim = (best - 1) * step; e->params = p2; e->active = a2;
        }
    }
    /* the FFN's hidden size, when the width alone is too coarse */
    if (fabs(rel_err(pick(c, e->params, e->active), c->target)) > 0.02 && !e->ffn_fixed) {
        const char *fk = word_value(e, "--ffn");
        if (!fk || strcmp(fk, "none")) {
            int h_lo = 1, h_hi = 16 * e->dim / 8, hb;
            long long bp = e->params, ba = e->active, p3, a3;
            int bh = -1;
            while (h_lo < h_hi) {
                int mid = (h_lo + h_hi) / 2;
                if (count_params(c, e, e->dim, mid * 8, &p3, &a3, why, sizeof why) != 1) break;
                if (pick(c, p3, a3) >= c->target) h_hi = mid; else h_lo = mid + 1;
            }
            for (hb = h_lo - 1; hb <= h_lo; hb++) {
                if (hb < 1 || count_params(c, e, e->dim, hb * 8, &p3, &a3, why, sizeof why) != 1) continue;
                if (fabs(rel_err(pick(c, p3, a3), c->target)) < fabs(rel_err(pick(c, bp, ba), c->target))) { bp = p3; ba = a3; bh = hb * 8; }
            }
            if (bh >= 0) { e->ffn_hidden = bh; e->params = bp; e->active = ba; }
        }
    }
    if (fabs(rel_err(pick(c, e->params, e->active), c->target)) > 0.10)
        die("%s cannot reach %lld parameters within 10%%: the closest is --dim %d with %lld", e->name, c->target, e->dim, pick(c, e->params, e->active));
}

/* e's configuration as one line of trainer flags */
static void describe(const cmp *c, entry *e) {
    argbuf a;
    size_t n = 0;
    int i, skip;
    memset(&a, 0, sizeof a);
    ab_model(c, &a, e, e->dim, e->ffn_hidden);
    e->config[0] = 0;
    for (i = 0; i < a.n; i++) {
        skip = !strcmp(a.v[i], "--data") || !strcmp(a.v[i], "--val-fraction");
        if (skip) { i++; continue; }
        n += (size_t)snprintf(e->config + n, n < sizeof e->config ? sizeof e->config - n : 0, "%s%s", n ? " " : "", a.v[i]);
        if (n >= sizeof e->config) break;
    }
}

/* --- the list of models -------------------------------------------------- */
static void add_entry(cmp *c, const char *name, const char *layers, const char *flags, const char *desc) {
    entry *e;
    size_t i;
    int j;
    if (c->n >= CMP_MAX_MODELS) die("--models: at most %d models", CMP_MAX_MODELS);
    for (j = 0; j < c->n; j++) if (!strcmp(c->e[j].name, name)) die("--models: '%s' is named twice", name);
    e = &c->e[c->n++];
    memset(e, 0, sizeof *e);
    if (strlen(name) >= sizeof e->name || strlen(layers) >= sizeof e->layers) die("--models: '%s' is too long", name);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->layers, sizeof e->layers, "%s", layers);
    snprintf(e->desc, sizeof e->desc, "%s", desc);
    snprintf(e->flags, sizeof e->flags, "%s", flags);
    for (i = 0; name[i] && i < sizeof e->dir - 1; i++) {   /* a directory name */
        char ch = name[i];
        e->dir[i] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ? ch : '_';
    }
    e->dir[i] = 0;
    e->single = !strchr(layers, ',') && !strchr(layers, '*');
    e->depth = c->depth;
    snprintf(e->status, sizeof e->status, "not run");
    e->peak_rss_mb = NAN; e->run_wall = NAN;
}
static int is_spec(const char *s, char *why, size_t wn) {
    mr_model_cfg cfg = mr_model_defaults(65);
    mr_error err;
    if (mr_model_cfg_set_layers(&cfg, s, &err) == MR_OK) return 1;
    snprintf(why, wn, "%s", err.msg);
    return 0;
}
static void parse_models(cmp *c) {
    char buf[4096], *w[CMP_MAX_MODELS * 2];
    int n, i, k;
    if (strlen(c->models) >= sizeof buf) die("--models is too long");
    snprintf(buf, sizeof buf, "%s", c->models);
    for (i = 0; buf[i]; i++) if (buf[i] == ';') buf[i] = ' ';
    n = split_words(buf, w, 0, (int)(sizeof w / sizeof w[0]));
    if (n <= 0) die("--models is empty");
    for (i = 0; i < n; i++) {
        char *eq = strchr(w[i], '='), why[600];
        if (eq) {   /* NAME=SPEC */
            *eq = 0;
            if (!w[i][0] || !eq[1]) die("--models: '%s=%s' wants NAME=LAYERS", w[i], eq + 1);
            if (!is_spec(eq + 1, why, sizeof why)) die("--models: %s: %s", w[i], why);
            add_entry(c, w[i], eq + 1, "--ffn swiglu", "custom");
            continue;
        }
        {   /* names separated by commas, or one layer spec */
            char tmp[4096], *p, *q;
            int all = 1;
            snprintf(tmp, sizeof tmp, "%s", w[i]);
            for (p = tmp; p; p = q) {
                q = strchr(p, ',');
                if (q) *q++ = 0;
                if (is_kind(p) < 0) all = 0;
            }
            if (all) {
                snprintf(tmp, sizeof tmp, "%s", w[i]);
                for (p = tmp; p; p = q) {
                    q = strchr(p, ',');
                    if (q) *q++ = 0;
                    k = is_kind(p);
                    add_entry(c, p, k_kinds[k].layers, k_kinds[k].flags, k_kinds[k].desc);
                }
            } else if (is_spec(w[i], why, sizeof why)) add_entry(c, w[i], w[i], "--ffn swiglu", "custom");
            else {
                char known[400];
                size_t o = 0;
                for (k = 0; k < CMP_N_KINDS; k++) o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", k ? ", " : "", k_kinds[k].name);
                die("--models: unknown model '%s' (known: %s; or a layer spec, NAME=LAYERS, separated from names by ';': %s)", w[i], known, why);
            }
        }
    }
    for (i = 0; i < c->n_sets; i++) {   /* --set NAME=FLAGS */
        const char *s = c->sets[i], *eq = strchr(s, '=');
        int found = 0;
        size_t L;
        if (!eq || eq == s) die("--set '%s' wants NAME=FLAGS", s);
        L = (size_t)(eq - s);
        for (k = 0; k < c->n; k++)
            if (strlen(c->e[k].name) == L && !strncmp(c->e[k].name, s, L)) {
                entry *e = &c->e[k];
                size_t m = strlen(e->flags);
                if (m + strlen(eq + 1) + 2 >= sizeof e->flags) die("--set '%s' is too long", s);
                snprintf(e->flags + m, sizeof e->flags - m, " %s", eq + 1);
                found = 1;
            }
        if (!found) die("--set '%s': no model '%.*s' in --models", s, (int)L, s);
    }
    for (k = 0; k < c->n; k++) {
        entry *e = &c->e[k];
        int j;
        e->n_words = split_words(e->flags, e->words, 0, CMP_MAX_ARGS);
        if (e->n_words < 0) die("%s: too many flags", e->name);
        for (j = 0; j < e->n_words; j++) {
            const char *f = e->words[j];
            if (!strcmp(f, "--layers") || !strcmp(f, "--arch") || !strcmp(f, "--out") || !strcmp(f, "--data") || !strcmp(f, "--resume") ||
                !strcmp(f, "--time-budget") || !strcmp(f, "--steps") || !strcmp(f, "--epochs") || !strcmp(f, "--seed") || !strcmp(f, "--val-fraction"))
                die("%s: %s is the comparison's to set, not a model's (--models, --out, --budget, --steps, --seed, --val-fraction)", e->name, f);
            if (!strcmp(f, "--depth")) die("%s: set the depth with --depth (single kinds) or in the layer spec", e->name);
        }
        e->dim_fixed = has_word(e, "--dim");
        e->ffn_fixed = has_word(e, "--ffn-hidden");
    }
}

/* --- running one model --------------------------------------------------- */
/* Reads DIR/NAME/history.csv into h; the last row with a train loss, and the last validation loss */
typedef struct progress { double step, tokens, wall, train, val; } progress;
static int read_progress(const char *path, progress *p) {
    pl_hist h;
    int k;
    memset(p, 0, sizeof *p);
    p->train = p->val = NAN;
    if (pl_hist_read(path, &h) || h.n == 0) { pl_hist_free(&h); return 0; }
    k = h.n - 1;
    p->step = h.step[k]; p->tokens = h.tokens[k]; p->wall = h.wall[k];
    for (k = h.n - 1; k >= 0; k--) if (isfinite(h.train[k])) { p->train = h.train[k]; break; }
    for (k = h.n - 1; k >= 0; k--) if (isfinite(h.val[k])) { p->val = h.val[k]; break; }
    pl_hist_free(&h);
    return 1;
}

static void write_result(const cmp *c, const entry *e) {
    char path[4400];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s/result.tsv", c->out, e->dir);
    f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "%s\t%.1f\t%.3f\t%s\n", e->status, e->peak_rss_mb, e->run_wall, e->reason);
    fclose(f);
}
static int read_result(const cmp *c, entry *e) {
    char path[4400], line[1024], st[64];
    FILE *f;
    double rss = NAN, wall = NAN;
    snprintf(path, sizeof path, "%s/%s/result.tsv", c->out, e->dir);
    f = fopen(path, "r");
    if (!f) return 0;
    if (!fgets(line, sizeof line, f)) { fclose(f); return 0; }
    fclose(f);
    chomp(line);
    {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL, *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;
        if (!t1 || !t2 || !t3) return 0;
        *t1 = *t2 = *t3 = 0;
        snprintf(st, sizeof st, "%s", line);
        rss = strtod(t1 + 1, NULL); wall = strtod(t2 + 1, NULL);
        snprintf(e->reason, sizeof e->reason, "%s", t3 + 1);
    }
    snprintf(e->status, sizeof e->status, "%.31s", st);
    e->peak_rss_mb = rss; e->run_wall = wall;
    return 1;
}

/* The last line of the run's log that names the trainer: why it stopped */
static void log_reason(const char *log, char *out, size_t n) {
    char *b = read_text(log), *p, *last = NULL;
    out[0] = 0;
    if (!b) return;
    for (p = b; (p = strstr(p, "minrnn-train: ")) != NULL; p++) last = p;
    if (last) {
        char *e = strchr(last, '\n');
        if (e) *e = 0;
        snprintf(out, n, "%s", last + 14);
    }
    mr_buffer_free(b);
}

/* one line of progress: el is the model's wall time so far */
static void status_line(const cmp *c, int idx, int tty, const progress *p, double el) {
    const entry *e = &c->e[idx];
    char eta[32], all[32];
    double rem, tps = p->wall > 0 ? p->tokens / p->wall : 0;
    int left = c->n - idx - 1, k;
    if (c->budget > 0) rem = c->budget - el;
    else rem = p->step > 0 ? el / p->step * ((double)c->steps - p->step) : NAN;
    ex_fmt_time(eta, sizeof eta, rem);
    {   /* the whole comparison: the models after this one take a budget each (or as long as this one) */
        double per = c->budget > 0 ? c->budget : p->step > 0 ? el / p->step * (double)c->steps : NAN;
        for (k = idx + 1; k < c->n; k++) if (strcmp(c->e[k].status, "not run") && strcmp(c->e[k].status, "interrupted")) left--;
        ex_fmt_time(all, sizeof all, rem + (left > 0 ? left : 0) * per);
    }
    {
        char tl[32] = "-", vl[32] = "-";
        if (isfinite(p->train)) snprintf(tl, sizeof tl, "%.4f", p->train);
        if (isfinite(p->val)) snprintf(vl, sizeof vl, "%.4f", p->val);
        fprintf(stderr, "%s[%d/%d] %-14s step %-6.0f loss %-7s val %-7s %6.1fk tok/s  ETA %s  (all: %s)%s", tty ? "\r" : "", idx + 1, c->n, e->name,
                p->step, tl, vl, tps / 1000.0, eta, all, tty ? "   " : "\n");
    }
}

/* Trains entry e (or resumes it); records its status. Returns 1 when the comparison was interrupted. */
static int run_model(cmp *c, int idx, int resume_it) {
    entry *e = &c->e[idx];
    char dir[4400], log[4500], hist[4500], ckpt[4500];
    argbuf a;
    pid_t pid;
    int st = 0, sent = 0, tty = isatty(2), fd;
    struct rusage ru;
    double t0 = ex_now(), last_print = 0, interval = tty ? 1.0 : c->budget > 0 && c->budget < 120 ? 10.0 : 30.0;
    progress p;
    snprintf(dir, sizeof dir, "%s/%s", c->out, e->dir);
    snprintf(log, sizeof log, "%s/train.log", dir);
    snprintf(hist, sizeof hist, "%s/history.csv", dir);
    snprintf(ckpt, sizeof ckpt, "%s/model.bin", dir);
    if (resume_it && access(ckpt, R_OK) != 0) resume_it = 0;   /* stopped before its first save: from the start */
    if (ex_mkdir_p(dir) != 0) fail("cannot create '%s': %s", dir, strerror(errno));
    memset(&a, 0, sizeof a);
    ab_add(&a, c->train);
    if (resume_it) {   /* its flags from the checkpoint; the stop as the comparison says */
        ab_add(&a, "--resume"); ab_add(&a, ckpt);
        if (c->budget > 0) ab_dbl(&a, "--time-budget", c->budget); else ab_num(&a, "--steps", c->steps);
    }
    else {
        ab_model(c, &a, e, e->dim, e->ffn_hidden);
        ab_add(&a, "--out"); ab_add(&a, dir);
        ab_num(&a, "--seed", c->seed);
        if (c->threads) ab_num(&a, "--threads", c->threads);
        if (c->budget > 0) ab_dbl(&a, "--time-budget", c->budget); else ab_num(&a, "--steps", c->steps);
        ab_add(&a, "--eval-every"); ab_add(&a, c->eval_every);
        remove(hist);
    }
    fd = open(log, O_WRONLY | O_CREAT | (resume_it ? O_APPEND : O_TRUNC), 0666);
    if (fd < 0) fail("cannot write '%s': %s", log, strerror(errno));
    {   /* the command, first in the log */
        char cmd[8192];
        size_t n = 0;
        int i;
        for (i = 0; i < a.n && n < sizeof cmd; i++) n += (size_t)snprintf(cmd + n, sizeof cmd - n, "%s%s", i ? " " : "$ ", a.v[i]);
        if (n < sizeof cmd) n += (size_t)snprintf(cmd + n, sizeof cmd - n, "\n");
        if (write(fd, cmd, n < sizeof cmd ? n : sizeof cmd - 1) < 0) {}
    }
    fprintf(stderr, "[%d/%d] %s: %s%s\n", idx + 1, c->n, e->name, resume_it ? "resuming " : "", resume_it ? ckpt : e->config);
    pid = fork();
    if (pid < 0) fail("cannot start minrnn-train: %s", strerror(errno));
    if (pid == 0) {   /* its own process group: Ctrl-C reaches the comparison, which passes one SIGINT on */
        setpgid(0, 0);
        dup2(fd, 1); dup2(fd, 2); close(fd);
        execv(a.v[0], a.v);
        fprintf(stderr, "minrnn-train: cannot run %s: %s\n", a.v[0], strerror(errno));
        _exit(126);
    }
    close(fd);
    for (;;) {
        pid_t r = wait4(pid, &st, WNOHANG, &ru);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) { memset(&ru, 0, sizeof ru); st = 0; break; }
        if (g_int && !sent) { kill(pid, SIGINT); sent = 1; fprintf(stderr, "%s%s: interrupted: %s saves, then the comparison stops\n", tty ? "\n" : "", PROG, e->name); }
        if (ex_now() - last_print >= interval) {
            if (read_progress(hist, &p)) status_line(c, idx, tty, &p, resume_it ? p.wall : ex_now() - t0);
            last_print = ex_now();
        }
        {
            struct timespec ts = {0, 200000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (tty) fputc('\n', stderr);
    {   /* a resumed model: the larger peak and the sum of the runs' wall times */
        double rss = (double)ru.ru_maxrss / 1024.0, prev = resume_it && isfinite(e->peak_rss_mb) ? e->peak_rss_mb : 0;
        e->peak_rss_mb = rss > prev ? rss : prev;
        e->run_wall = (resume_it && isfinite(e->run_wall) ? e->run_wall : 0) + ex_now() - t0;
    }
    e->reason[0] = 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && !g_int) snprintf(e->status, sizeof e->status, "ok");
    else if (WIFEXITED(st) && (WEXITSTATUS(st) == EX_INTERRUPTED || (WEXITSTATUS(st) == 0 && g_int))) {
        snprintf(e->status, sizeof e->status, "interrupted");
        snprintf(e->reason, sizeof e->reason, "stopped by Ctrl-C; --resume continues it");
    } else if (WIFEXITED(st)) {
        snprintf(e->status, sizeof e->status, "failed");
        log_reason(log, e->reason, sizeof e->reason);
        if (!e->reason[0]) snprintf(e->reason, sizeof e->reason, "minrnn-train exited with status %d", WEXITSTATUS(st));
    } else if (WIFSIGNALED(st)) {
        snprintf(e->status, sizeof e->status, "crashed");
        snprintf(e->reason, sizeof e->reason, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    } else {
        snprintf(e->status, sizeof e->status, "failed");
        snprintf(e->reason, sizeof e->reason, "lost track of the process");
    }
    write_result(c, e);
    if (strcmp(e->status, "ok")) fprintf(stderr, "%s: %s %s: %s\n", PROG, e->name, e->status, e->reason);
    else if (read_progress(hist, &p)) fprintf(stderr, "%s: %s done: val %.4f nats/char after %.0f steps in %.1fs\n", PROG, e->name, p.val, p.step, p.wall);
    return g_int != 0;
}

/* --- the outputs ---------------------------------------------------------- */
typedef struct res { pl_hist h; int have; double train, val, val_bpc, val_st, steps, tokens, wall; } res;
static void load_res(const cmp *c, const entry *e, res *r) {
    char path[4500];
    int k;
    memset(r, 0, sizeof *r);
    r->train = r->val = r->val_bpc = r->val_st = r->steps = r->tokens = r->wall = NAN;
    snprintf(path, sizeof path, "%s/%s/history.csv", c->out, e->dir);
    if (!strcmp(e->status, "not run") || pl_hist_read(path, &r->h) || r->h.n == 0) { pl_hist_free(&r->h); return; }
    r->have = 1;
    k = r->h.n - 1;
    r->steps = r->h.step[k]; r->tokens = r->h.tokens[k]; r->wall = r->h.wall[k];
    if (!strcmp(e->status, "ok")) {   /* the final row: the whole validation split, windows and one stream */
        r->train = r->h.final_train; r->val = r->h.val[k]; r->val_bpc = r->h.val_bpc[k]; r->val_st = r->h.val_stateful[k];
    } else {   /* the last values reached */
        for (k = r->h.n - 1; k >= 0; k--) if (isfinite(r->h.train[k])) { r->train = r->h.train[k]; break; }
        for (k = r->h.n - 1; k >= 0; k--) if (isfinite(r->h.val[k])) { r->val = r->h.val[k]; r->val_bpc = r->h.val_bpc[k]; break; }
    }
}
static void csv_field(FILE *f, const char *s) {
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++) { if (*s == '"') fputc('"', f); fputc(*s, f); }
        fputc('"', f);
    } else fputs(s, f);
}
static void num(FILE *f, const char *fmt, double v) { if (isfinite(v)) fprintf(f, fmt, v); }
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') { fputc('\\', f); fputc(*s, f); }
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}
static void json_num(FILE *f, double v, const char *fmt) { if (isfinite(v)) fprintf(f, fmt, v); else fputs("null", f); }
static FILE *open_tmp(const char *dir, const char *name, char *tmp, size_t n) {
    snprintf(tmp, n, "%s/%s.tmp", dir, name);
    return fopen(tmp, "w");
}
static int close_tmp(FILE *f, const char *tmp, const char *dir, const char *name) {
    char path[4500];
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (bad || rename(tmp, path) != 0) { remove(tmp); return -1; }
    return 0;
}
static void cpu_name(char *b, size_t n) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(b, n, "unknown CPU");
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            char *v = strchr(line, ':') + 1;
            while (*v == ' ' || *v == '\t') v++;
            chomp(v);
            snprintf(b, n, "%s", v);
            break;
        }
    fclose(f);
}
static void html_text(FILE *f, const char *s) { pl_text(f, s); }

static int write_outputs(const cmp *c) {
    static res r[CMP_MAX_MODELS];
    char tmp[4500];
    FILE *f;
    int i, k, bad = 0;
    double ln2 = log(2.0);
    for (i = 0; i < c->n; i++) load_res(c, &c->e[i], &r[i]);
    /* summary.csv */
    if (!(f = open_tmp(c->out, "summary.csv", tmp, sizeof tmp))) return -1;
    fprintf(f, "model,config,params,active_params,tokens_per_s,peak_rss_mb,train_loss_nats,train_bpc,val_loss_nats,val_bpc,val_stateful_nats,steps,tokens,wall_s,status,reason\n");
    for (i = 0; i < c->n; i++) {
        const entry *e = &c->e[i];
        csv_field(f, e->name); fputc(',', f); csv_field(f, e->config);
        fprintf(f, ",%lld,%lld,", e->params, e->active);
        num(f, "%.0f", r[i].tokens / r[i].wall); fputc(',', f);
        num(f, "%.1f", e->peak_rss_mb); fputc(',', f);
        num(f, "%.5f", r[i].train); fputc(',', f); num(f, "%.5f", r[i].train / ln2); fputc(',', f);
        num(f, "%.5f", r[i].val); fputc(',', f); num(f, "%.5f", r[i].val_bpc); fputc(',', f); num(f, "%.5f", r[i].val_st); fputc(',', f);
        num(f, "%.0f", r[i].steps); fputc(',', f); num(f, "%.0f", r[i].tokens); fputc(',', f); num(f, "%.1f", r[i].wall); fputc(',', f);
        csv_field(f, e->status); fputc(',', f); csv_field(f, e->reason); fputc('\n', f);
    }
    bad |= close_tmp(f, tmp, c->out, "summary.csv");
    /* history.json */
    if (!(f = open_tmp(c->out, "history.json", tmp, sizeof tmp))) return -1;
    fprintf(f, "{\n  \"data\": "); json_str(f, c->data);
    fprintf(f, ",\n  \"budget_s\": "); json_num(f, c->budget > 0 ? c->budget : NAN, "%g");
    fprintf(f, ",\n  \"steps\": "); json_num(f, c->budget > 0 ? NAN : (double)c->steps, "%.0f");
    fprintf(f, ",\n  \"target_params\": %lld,\n  \"seed\": %lld,\n  \"models\": [", c->target, c->seed);
    for (i = 0; i < c->n; i++) {
        const entry *e = &c->e[i];
        fprintf(f, "%s\n    {\"name\": ", i ? "," : ""); json_str(f, e->name);
        fprintf(f, ", \"config\": "); json_str(f, e->config);
        fprintf(f, ", \"params\": %lld, \"active_params\": %lld, \"status\": ", e->params, e->active); json_str(f, e->status);
        fprintf(f, ", \"reason\": "); json_str(f, e->reason);
        fprintf(f, ",\n     \"history\": [");
        for (k = 0; k < r[i].h.n; k++) {
            fprintf(f, "%s\n       {\"step\": ", k ? "," : "");
            json_num(f, r[i].h.step[k], "%.0f"); fprintf(f, ", \"tokens\": "); json_num(f, r[i].h.tokens[k], "%.0f");
            fprintf(f, ", \"wall_s\": "); json_num(f, r[i].h.wall[k], "%.3f");
            fprintf(f, ", \"train_loss\": "); json_num(f, r[i].h.train[k], "%.6g");
            fprintf(f, ", \"val_loss\": "); json_num(f, r[i].h.val[k], "%.6g");
            fputc('}', f);
        }
        fprintf(f, "%s]}", r[i].h.n ? "\n     " : "");
    }
    fprintf(f, "\n  ]\n}\n");
    bad |= close_tmp(f, tmp, c->out, "history.json");
    /* loss.svg: validation loss against wall time and against tokens */
    {
        pl_series *s1 = (pl_series *)calloc((size_t)c->n + 1, sizeof *s1), *s2 = (pl_series *)calloc((size_t)c->n + 1, sizeof *s2);
        double **bufs = (double **)calloc((size_t)c->n + 1, sizeof *bufs);
        char names[CMP_MAX_MODELS][160], title[200], path[4500];
        pl_panel pn[2];
        int ns = 0;
        if (!s1 || !s2 || !bufs) { free(s1); free(s2); free(bufs); return -1; }
        for (i = 0; i < c->n; i++) {
            int n = r[i].h.n > 0 ? r[i].h.n : 1;
            bufs[i] = (double *)malloc(sizeof(double) * 4 * (size_t)n);
            if (!bufs[i]) continue;
            snprintf(names[i], sizeof names[i], "%s%s", c->e[i].name, !strcmp(c->e[i].status, "ok") || !strcmp(c->e[i].status, "not run") ? "" : strcmp(c->e[i].status, "interrupted") ? " (failed)" : " (interrupted)");
            s1[ns] = pl_hist_series(&r[i].h, r[i].h.wall, r[i].h.val, bufs[i], bufs[i] + n, names[i], 0);
            s2[ns] = pl_hist_series(&r[i].h, r[i].h.tokens, r[i].h.val, bufs[i] + 2 * n, bufs[i] + 3 * n, names[i], 0);
            ns++;
        }
        pn[0].xlabel = "wall time (s)"; pn[0].ylabel = "validation loss (nats/char)"; pn[0].s = s1; pn[0].ns = ns; pn[0].y_cap = 1.0;
        pn[1] = pn[0]; pn[1].xlabel = "tokens seen"; pn[1].s = s2;
        if (c->budget > 0) snprintf(title, sizeof title, "validation loss, %lld parameters each, %g s per model", c->target, c->budget);
        else snprintf(title, sizeof title, "validation loss, %lld parameters each, %lld steps per model", c->target, c->steps);
        snprintf(path, sizeof path, "%s/loss.svg", c->out);
        bad |= pl_write_svg(path, title, pn, 2);
        for (i = 0; i < c->n; i++) free(bufs[i]);
        free(bufs); free(s1); free(s2);
    }
    /* report.html: the table and the plot, self-contained */
    if (!(f = open_tmp(c->out, "report.html", tmp, sizeof tmp))) return -1;
    {
        char cpu[256], when[64], path[4500], cnt[32];
        time_t now = time(NULL);
        struct tm tmv;
        char *svg;
        gmtime_r(&now, &tmv);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tmv);
        cpu_name(cpu, sizeof cpu);
        fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>minrnn-compare</title>\n<style>\n"
                   "body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1180px}\n"
                   "table{border-collapse:collapse;font-size:13px;margin:12px 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}\n"
                   "th{background:#f2f2f2}td.l{text-align:left}tr.best td{background:#eef7ee}td.bad{color:#b00}\n"
                   "code{font-size:12px}.cfg td,.cfg th{text-align:left;font-size:12px}\n</style></head><body>\n<h1>minrnn-compare</h1>\n<p>");
        fprintf(f, "%s on ", when); html_text(f, cpu);
        fprintf(f, " (%ld cores). Data <code>", sysconf(_SC_NPROCESSORS_ONLN)); html_text(f, c->data);
        fmt_count(cnt, sizeof cnt, c->target);
        fprintf(f, "</code>, the last %g%% for validation, seed %lld; target %s parameters (%s); ", 100 * c->val_fraction, c->seed, cnt, c->match);
        if (c->budget > 0) fprintf(f, "%g s of wall time per model (evaluations and the save included).", c->budget);
        else fprintf(f, "%lld steps per model.", c->steps);
        fprintf(f, " Validation loss: the trainer's evaluation over the whole validation split, in windows of the training length "
                   "from an empty state (stateful: one stream through the split).</p>\n<p><code>");
        html_text(f, c->cmdline);
        fprintf(f, "</code></p>\n<table><tr><th>model</th><th>parameters</th><th>active</th><th>tokens/s</th><th>peak RSS (MB)</th>"
                   "<th>train loss</th><th>val loss (nats/char)</th><th>val bits/char</th><th>val stateful</th><th>steps</th><th>tokens</th><th>wall (s)</th><th>status</th></tr>\n");
        {
            int best = -1;
            for (i = 0; i < c->n; i++) if (isfinite(r[i].val) && !strcmp(c->e[i].status, "ok") && (best < 0 || r[i].val < r[best].val)) best = i;
            for (i = 0; i < c->n; i++) {
                const entry *e = &c->e[i];
                char b1[32], b2[32];
                fmt_count(b1, sizeof b1, e->params); fmt_count(b2, sizeof b2, e->active);
                fprintf(f, "<tr%s><td class=\"l\">", i == best ? " class=\"best\"" : ""); html_text(f, e->name);
                fprintf(f, "</td><td>%s</td><td>%s</td><td>", b1, b2);
                if (isfinite(r[i].tokens / r[i].wall)) { fmt_count(b1, sizeof b1, (long long)(r[i].tokens / r[i].wall)); fputs(b1, f); }
                fputs("</td><td>", f); num(f, "%.0f", e->peak_rss_mb);
                fputs("</td><td>", f); num(f, "%.4f", r[i].train);
                fputs("</td><td>", f); num(f, "%.4f", r[i].val);
                fputs("</td><td>", f); num(f, "%.4f", r[i].val_bpc);
                fputs("</td><td>", f); num(f, "%.4f", r[i].val_st);
                fputs("</td><td>", f); num(f, "%.0f", r[i].steps);
                fputs("</td><td>", f); if (isfinite(r[i].tokens)) { fmt_count(b1, sizeof b1, (long long)r[i].tokens); fputs(b1, f); }
                fputs("</td><td>", f); num(f, "%.1f", r[i].wall);
                fprintf(f, "</td><td class=\"l%s\">", strcmp(e->status, "ok") ? " bad" : ""); html_text(f, e->status);
                if (e->reason[0]) { fputs(": ", f); html_text(f, e->reason); }
                fputs("</td></tr>\n", f);
            }
        }
        fputs("</table>\n", f);
        snprintf(path, sizeof path, "%s/loss.svg", c->out);
        svg = read_text(path);
        if (svg) {   /* inline, without its XML declaration */
            char *s = strstr(svg, "<svg");
            fprintf(f, "<div>%s</div>\n", s ? s : "");
            mr_buffer_free(svg);
        }
        fputs("<h2>Configurations</h2>\n<table class=\"cfg\"><tr><th>model</th><th>what</th><th>minrnn-train flags</th></tr>\n", f);
        for (i = 0; i < c->n; i++) {
            fputs("<tr><td>", f); html_text(f, c->e[i].name); fputs("</td><td>", f); html_text(f, c->e[i].desc);
            fputs("</td><td><code>", f); html_text(f, c->e[i].config); fputs("</code></td></tr>\n", f);
        }
        fputs("</table>\n<p>Each model's run (checkpoint, history.csv, its own loss.svg, train.log) is in its directory beside this report; "
              "sample one with <code>minrnn-generate --model DIR/NAME/model.bin</code>.</p>\n</body></html>\n", f);
    }
    bad |= close_tmp(f, tmp, c->out, "report.html");
    for (i = 0; i < c->n; i++) pl_hist_free(&r[i].h);
    return bad ? -1 : 0;
}

/* --- the arguments --------------------------------------------------------- */
static long long parse_count(const char *s) {
    char *end;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno) die("--params expects a count such as 926976, 900k or 2.5M, got '%s'", s);
    if (*end == 'k' || *end == 'K') { v *= 1e3; end++; }
    else if (*end == 'M' || *end == 'm') { v *= 1e6; end++; }
    if (*end || !(v >= 1) || v > 1e11) die("--params expects a positive count such as 926976, 900k or 2.5M, got '%s'", s);
    return (long long)llround(v);
}
static void parse_args(cmp *c, int argc, char **argv, int from_file) {
    int i;
    for (i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--")) { c->pass = argv + i + 1; c->n_pass = argc - i - 1; break; }
        if (!from_file && (!strcmp(f, "--help") || !strcmp(f, "-h"))) { usage(); exit(0); }
        if (!from_file && ex_is_version(f)) { ex_version(PROG); exit(0); }
        if (!strcmp(f, "--data")) c->data = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--out")) c->out = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--models")) c->models = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--budget")) {
            const char *v = ex_val(PROG, argc, argv, &i);
            char *end;
            double b = strtod(v, &end);
            if (end == v || *end || !(b > 0) || b > 1e8) die("--budget must be a positive number of seconds, got '%s'", v);
            c->budget = b; c->steps = 0;
        }
        else if (!strcmp(f, "--steps")) { c->steps = ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, (long long)1 << 40); c->budget = 0; }
        else if (!strcmp(f, "--params")) { c->target = parse_count(ex_val(PROG, argc, argv, &i)); c->target_given = 1; }
        else if (!strcmp(f, "--match")) {
            c->match = ex_val(PROG, argc, argv, &i);
            if (strcmp(c->match, "total") && strcmp(c->match, "active")) die("--match must be total or active");
        }
        else if (!strcmp(f, "--depth")) c->depth = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, MR_MAX_LAYERS);
        else if (!strcmp(f, "--set")) {
            if (c->n_sets >= CMP_MAX_MODELS) die("at most %d --set", CMP_MAX_MODELS);
            c->sets[c->n_sets++] = ex_val(PROG, argc, argv, &i);
        }
        else if (!strcmp(f, "--seed")) c->seed = ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 0, (long long)1 << 62);
        else if (!strcmp(f, "--threads")) c->threads = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 1024);
        else if (!strcmp(f, "--val-fraction")) c->val_fraction = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0.001, 0.9);
        else if (!strcmp(f, "--eval-every")) {
            const char *v = ex_val(PROG, argc, argv, &i);
            if (strlen(v) >= sizeof c->eval_every) die("--eval-every '%s' is too long", v);
            snprintf(c->eval_every, sizeof c->eval_every, "%s", v);
        }
        else if (!strcmp(f, "--plan")) c->plan_only = 1;
        else if (!strcmp(f, "--resume") && !from_file) c->resume = 1;
        else die("unknown flag '%s' (try --help)", f);
    }
}

/* DIR/compare.args: the comparison's own flags, one per line, for --resume */
static int save_args(const cmp *c, int argc, char **argv) {
    char tmp[4500];
    FILE *f = open_tmp(c->out, "compare.args", tmp, sizeof tmp);
    int i;
    if (!f) return -1;
    for (i = 1; i < argc; i++) if (strcmp(argv[i], "--resume")) fprintf(f, "%s\n", argv[i]);
    return close_tmp(f, tmp, c->out, "compare.args");
}
static char *g_args_text;
static char *g_args_v[1024];
static int load_args(const char *out, int *argc) {
    char path[4500], *p;
    int n = 1;
    snprintf(path, sizeof path, "%s/compare.args", out);
    g_args_text = read_text(path);
    if (!g_args_text) return -1;
    g_args_v[0] = (char *)PROG;
    for (p = g_args_text; *p && n < 1023;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        g_args_v[n++] = p;
        if (!e) break;
        p = e + 1;
    }
    g_args_v[n] = NULL;
    *argc = n;
    return 0;
}

static void find_trainer(cmp *c, const char *argv0) {
    const char *env = getenv("MINRNN_TRAIN");
    if (env && *env) { snprintf(c->train, sizeof c->train, "%s", env); }
    else {
        const char *sl = strrchr(argv0, '/');
        if (sl) snprintf(c->train, sizeof c->train, "%.*s/minrnn-train", (int)(sl - argv0), argv0);
        else snprintf(c->train, sizeof c->train, "minrnn-train");
        if (!sl) {   /* on the PATH, as this program was found */
            const char *path = getenv("PATH");
            char cand[4096];
            while (path && *path) {
                const char *e = strchr(path, ':');
                size_t L = e ? (size_t)(e - path) : strlen(path);
                snprintf(cand, sizeof cand, "%.*s/minrnn-train", (int)L, path);
                if (access(cand, X_OK) == 0) { snprintf(c->train, sizeof c->train, "%s", cand); break; }
                path = e ? e + 1 : NULL;
            }
        }
    }
    if (access(c->train, X_OK) != 0) fail("cannot run minrnn-train: '%s' is not an executable (build it, or name it with MINRNN_TRAIN)", c->train);
}

int main(int argc, char **argv) {
    static cmp c;
    int i, k, rc = EX_OK, orig_argc = argc;
    char **orig_argv = argv;
    char why[1024];
    struct stat st;
    ex_watch_stdout(PROG);
    memset(&c, 0, sizeof c);
    c.data = "data/tinyshakespeare.txt"; c.out = "runs/compare"; c.match = "total";
    c.models = "mingru,minlstm,gru,rwkv6,gpt,hybrid,gru-rwkv-moe";
    c.val_fraction = 0.1; c.seed = 1337; c.depth = 4;
    parse_args(&c, argc, argv, 0);
    if (c.resume) {   /* the flags of the comparison being resumed; only --out (and --resume) given now */
        const char *out = c.out;
        for (i = 1; i < argc; i++)
            if (strcmp(argv[i], "--resume") && strcmp(argv[i], "--out") && (i == 1 || strcmp(argv[i - 1], "--out")))
                die("--resume takes the comparison's flags from %s/compare.args: give only --out DIR", out);
        if (load_args(out, &argc) != 0) die("--resume: no comparison to continue in '%s' (%s/compare.args: %s)", out, out, strerror(errno));
        argv = g_args_v;
        memset(&c, 0, sizeof c);
        c.data = "data/tinyshakespeare.txt"; c.out = "runs/compare"; c.match = "total";
        c.models = "mingru,minlstm,gru,rwkv6,gpt,hybrid,gru-rwkv-moe";
        c.val_fraction = 0.1; c.seed = 1337; c.depth = 4;
        parse_args(&c, argc, argv, 1);
        c.out = out; c.resume = 1;
    }
    {   /* the command line, for the report */
        size_t n = 0;
        for (i = 0; i < orig_argc && n < sizeof c.cmdline; i++) n += (size_t)snprintf(c.cmdline + n, sizeof c.cmdline - n, "%s%s", i ? " " : "", orig_argv[i]);
    }
    if (c.budget <= 0 && c.steps <= 0 && !c.plan_only) die("--budget SECONDS (wall time per model) or --steps N is required");
    if (!c.out[0]) die("--out is empty");
    if (stat(c.data, &st) != 0) die("cannot open '%s': %s", c.data, strerror(errno));
    if (S_ISDIR(st.st_mode)) die("'%s' is a directory, not a text file", c.data);
    for (i = 0; i < c.n_pass; i++)
        if (!strcmp(c.pass[i], "--out") || !strcmp(c.pass[i], "--data") || !strcmp(c.pass[i], "--resume") || !strcmp(c.pass[i], "--time-budget") ||
            !strcmp(c.pass[i], "--steps") || !strcmp(c.pass[i], "--epochs") || !strcmp(c.pass[i], "--seed") || !strcmp(c.pass[i], "--tokenizer") ||
            !strcmp(c.pass[i], "--layers") || !strcmp(c.pass[i], "--arch") || !strcmp(c.pass[i], "--dim") || !strcmp(c.pass[i], "--depth") ||
            !strcmp(c.pass[i], "--val-fraction"))
            die("after --: %s is the comparison's to set (or a model's, with --set)", c.pass[i]);
    if (!c.eval_every[0]) {
        if (c.budget > 0) snprintf(c.eval_every, sizeof c.eval_every, "%gs", c.budget / 10 > 1 ? c.budget / 10 : 1);
        else snprintf(c.eval_every, sizeof c.eval_every, "%lld", c.steps / 10 > 0 ? c.steps / 10 : 1);
    }
    find_trainer(&c, orig_argv[0]);
    parse_models(&c);
    if (!c.target_given) {   /* the default model's count on this data */
        entry d;
        long long p, a;
        memset(&d, 0, sizeof d);
        snprintf(d.layers, sizeof d.layers, "mingru");
        d.single = 1; d.depth = 4;
        k = count_params(&c, &d, 128, -1, &p, &a, why, sizeof why);
        if (k < 0) fail("%s", why);
        if (k == 0) die("cannot count the default model's parameters: %s", why);
        c.target = p;
    }
    for (i = 0; i < c.n; i++) { solve(&c, &c.e[i]); describe(&c, &c.e[i]); }
    {
        char cnt[32];
        fmt_count(cnt, sizeof cnt, c.target);
        char tot[32];
        ex_fmt_time(tot, sizeof tot, c.budget * c.n);
        if (c.budget > 0) printf("%s: %d models, target %s parameters (%s), %g s each (%s in all)\n", PROG, c.n, cnt, c.match, c.budget, tot);
        else if (c.steps > 0) printf("%s: %d models, target %s parameters (%s), %lld steps each\n", PROG, c.n, cnt, c.match, c.steps);
        else printf("%s: %d models, target %s parameters (%s)\n", PROG, c.n, cnt, c.match);
    }
    for (i = 0; i < c.n; i++) {
        const entry *e = &c.e[i];
        char b1[32], b2[32];
        fmt_count(b1, sizeof b1, e->params); fmt_count(b2, sizeof b2, e->active);
        printf("  %-14s %12s params (%+5.1f%%)  active %12s  %s\n", e->name, b1, 100 * rel_err(pick(&c, e->params, e->active), c.target), b2, e->config);
    }
    fflush(stdout);
    if (c.plan_only) return EX_OK;
    /* the output directory, only now that the plan stands */
    if (ex_mkdir_p(c.out) != 0) fail("cannot create the output directory '%s': %s", c.out, strerror(errno));
    if (access(c.out, W_OK) != 0) fail("cannot write into '%s': %s", c.out, strerror(errno));
    if (!c.resume && save_args(&c, orig_argc, orig_argv) != 0) fail("cannot write '%s/compare.args': %s", c.out, strerror(errno));
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    for (i = 0; i < c.n && !g_int; i++) {
        entry *e = &c.e[i];
        int resume_it = 0;
        if (c.resume && read_result(&c, e)) {
            if (strcmp(e->status, "interrupted")) continue;   /* finished (or failed): kept */
            resume_it = 1;
        }
        if (run_model(&c, i, resume_it)) { rc = EX_INTERRUPTED; }
        if (write_outputs(&c) != 0) fail("cannot write the outputs into '%s': %s", c.out, strerror(errno));
    }
    if (c.resume) for (; i < c.n; i++) read_result(&c, &c.e[i]);
    if (write_outputs(&c) != 0) fail("cannot write the outputs into '%s': %s", c.out, strerror(errno));
    if (g_int) {
        fprintf(stderr, "%s: interrupted; continue with: minrnn-compare --resume --out %s\n", PROG, c.out);
        return EX_INTERRUPTED;
    }
    {
        int n_bad = 0;
        for (i = 0; i < c.n; i++) n_bad += strcmp(c.e[i].status, "ok") != 0;
        printf("wrote %s/summary.csv, history.json, loss.svg, report.html (%d of %d models ok)\n", c.out, c.n - n_bad, c.n);
    }
    mr_buffer_free(g_args_text);
    return rc;
}
