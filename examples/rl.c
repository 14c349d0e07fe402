/* minrnn-rl: group-relative policy optimisation (GRPO, arXiv 2402.03300) on
   tasks whose answers a program checks, and the supervised warm start.

     minrnn-rl --sft --task reverse --out runs/sft       a model that sometimes succeeds
     minrnn-rl --model runs/sft/model.bin --task reverse --out runs/rl

   A task instance is a prompt and its answer: copy "abc:" -> "abc", reverse
   "abc>" -> "cba", arithmetic "3+5=" -> "8", or the lines prompt<TAB>answer
   of --task-file. The model reads "\n" + prompt (every stream from a fresh
   state, so the completion is conditioned on the whole prompt) and writes the
   answer and "\n". Prompts are split by a hash of their text: a held-out
   prompt is never trained on, in either mode.

   RL, per update: P prompts, G completions each, sampled as one batch of P G
   streams (mr_rollout, the sampling log-probabilities kept); rewards from the
   verifier (exact match 1, else 0, or per-position partial credit);
   advantages within each group; the clipped GRPO loss with a k3 KL to the
   frozen starting model (mr_grpo_loss), mu AdamW updates on the same
   rollouts. */
#define MINRNN_IMPLEMENTATION
#include "../minrnn.h"
#include "common.h"
#include "plot.h"

#include <ctype.h>
#include <signal.h>
#include <time.h>

#define PROG "minrnn-rl"
#define MAXS 256          /* characters of a prompt or an answer */
#define EVAL_B 64         /* held-out prompts per greedy rollout */

static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) { g_stop = 1; signal(sig, SIG_DFL); }

enum { T_COPY, T_REVERSE, T_ARITH, T_FILE };
static const char *const task_names[] = {"copy", "reverse", "arith"};

typedef struct args {
    int sft, task, min_len, max_len, digits, partial, filter, scale, agg, top_k, max_new, mu, group, prompts;
    int dim, depth, batch, eval_every, eval_prompts, log_every, save_every, threads, steps;
    const char *task_file, *model, *out, *resume, *layers;
    char alphabet[MAXS], ops[8];
    double budget, lr, eps, beta, temperature, top_p, clip, wd;
    uint64_t seed;
} args;

typedef struct task {
    int kind, min_len, max_len, digits, max_prompt, max_answer;
    char alphabet[MAXS], ops[8];
    char **fp, **fa;                 /* --task-file: prompts and answers */
    int n_file, *ftrain, n_ftrain;   /* the lines whose prompts are for training */
} task;

typedef struct item { char p[MAXS], a[MAXS]; } item;

/* ---- tasks -------------------------------------------------------------- */
static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; }
    return h;
}
/* one prompt in ten is held out, by its text */
static int is_held(const char *prompt) { return fnv1a(prompt) % 10 == 0; }

static void arith_answer(int a, int b, char op, char *out) {
    long v = op == '+' ? a + b : op == '-' ? a - b : (long)a * b;
    snprintf(out, MAXS, "%ld", v);
}
/* a random instance of a built-in task */
static void task_draw(const task *tk, mr_rng *r, item *it) {
    if (tk->kind == T_COPY || tk->kind == T_REVERSE) {
        int n = tk->min_len + (int)mr_rng_below(r, (uint64_t)(tk->max_len - tk->min_len + 1)), i, na = (int)strlen(tk->alphabet);
        for (i = 0; i < n; i++) it->p[i] = tk->alphabet[mr_rng_below(r, (uint64_t)na)];
        for (i = 0; i < n; i++) it->a[i] = tk->kind == T_COPY ? it->p[i] : it->p[n - 1 - i];
        it->p[n] = tk->kind == T_COPY ? ':' : '>';
        it->p[n + 1] = 0; it->a[n] = 0;
    } else {
        int lim = tk->digits == 1 ? 10 : 100, a = (int)mr_rng_below(r, (uint64_t)lim), b = (int)mr_rng_below(r, (uint64_t)lim);
        char op = tk->ops[mr_rng_below(r, (uint64_t)strlen(tk->ops))];
        snprintf(it->p, MAXS, "%d%c%d=", a, op, b);
        arith_answer(a, b, op, it->a);
    }
}
/* a training instance: never a held-out prompt */
static void task_train(const task *tk, mr_rng *r, item *it) {
    if (tk->kind == T_FILE) {
        int i = tk->ftrain[mr_rng_below(r, (uint64_t)tk->n_ftrain)];
        snprintf(it->p, MAXS, "%s", tk->fp[i]); snprintf(it->a, MAXS, "%s", tk->fa[i]);
        return;
    }
    do task_draw(tk, r, it); while (is_held(it->p));
}
/* The held-out set: up to n distinct held-out prompts, the same for every run
   (a fixed generator, not --seed). */
static int task_heldout(const task *tk, int n, item **out) {
    item *h = (item *)calloc((size_t)n, sizeof *h);
    int k = 0, i, tries;
    mr_rng r;
    if (!h) ex_fail(PROG, "out of memory for the held-out prompts");
    mr_rng_seed(&r, 0x5eed4e1dull);
    if (tk->kind == T_FILE) {
        for (i = 0; i < tk->n_file && k < n; i++) {
            int j, dup = 0;
            if (!is_held(tk->fp[i])) continue;
            for (j = 0; j < k; j++) dup |= !strcmp(h[j].p, tk->fp[i]);
            if (dup) continue;
            snprintf(h[k].p, MAXS, "%s", tk->fp[i]); snprintf(h[k].a, MAXS, "%s", tk->fa[i]); k++;
        }
    } else
        for (tries = 0; tries < 200000 && k < n; tries++) {
            item it;
            int j, dup = 0;
            task_draw(tk, &r, &it);
            if (!is_held(it.p)) continue;
            for (j = 0; j < k && !dup; j++) dup = !strcmp(h[j].p, it.p);
            if (!dup) h[k++] = it;
        }
    *out = h;
    return k;
}

static void task_file_load(task *tk, const char *path) {
    uint8_t *buf;
    size_t len, i, start = 0;
    mr_error err;
    int line = 0, cap = 0;
    char msg[512];
    if (mr_read_file(path, &buf, &len, (size_t)1 << 30, NULL, &err) != MR_OK) ex_die(PROG, err.msg);
    for (i = 0; i <= len; i++) {
        char *tab, *s;
        size_t n;
        if (i < len && buf[i] != '\n') continue;
        n = i - start;
        s = (char *)buf + start;
        start = i + 1;
        line++;
        if (n && s[n - 1] == '\r') n--;
        if (!n) continue;   /* blank lines are skipped */
        s[n] = 0;
        tab = strchr(s, '\t');
        if (!tab || tab == s || !tab[1] || strchr(tab + 1, '\t')) {
            snprintf(msg, sizeof msg, "%s line %d: expected prompt<TAB>answer, both non-empty, one tab", path, line);
            ex_die(PROG, msg);
        }
        *tab = 0;
        if (strlen(s) >= MAXS - 1 || strlen(tab + 1) >= MAXS - 1) { snprintf(msg, sizeof msg, "%s line %d: a prompt or answer over %d bytes", path, line, MAXS - 2); ex_die(PROG, msg); }
        if (tk->n_file == cap) {
            cap = cap ? 2 * cap : 256;
            tk->fp = (char **)realloc(tk->fp, sizeof(char *) * (size_t)cap);
            tk->fa = (char **)realloc(tk->fa, sizeof(char *) * (size_t)cap);
            if (!tk->fp || !tk->fa) ex_fail(PROG, "out of memory for the task file");
        }
        tk->fp[tk->n_file] = s; tk->fa[tk->n_file] = tab + 1; tk->n_file++;
    }
    if (!tk->n_file) { snprintf(msg, sizeof msg, "%s holds no prompt<TAB>answer line", path); ex_die(PROG, msg); }
    tk->ftrain = (int *)malloc(sizeof(int) * (size_t)tk->n_file);
    if (!tk->ftrain) ex_fail(PROG, "out of memory");
    for (i = 0; i < (size_t)tk->n_file; i++) if (!is_held(tk->fp[i])) tk->ftrain[tk->n_ftrain++] = (int)i;
    if (!tk->n_ftrain || tk->n_ftrain == tk->n_file) {
        snprintf(msg, sizeof msg, "%s: its %d prompts all fall on one side of the held-out split (one in ten by a hash of the prompt): "
                 "it needs prompts for training and for evaluation", path, tk->n_file);
        ex_die(PROG, msg);
    }
    /* buf stays: the lines point into it */
}

/* the characters the task's prompts and answers use, and "\n" */
static int task_chars(const task *tk, char *out) {
    int seen[256] = {0}, i, n = 0;
    const char *s;
    seen['\n'] = 1;
    if (tk->kind == T_FILE) {
        for (i = 0; i < tk->n_file; i++) {
            for (s = tk->fp[i]; *s; s++) seen[(unsigned char)*s] = 1;
            for (s = tk->fa[i]; *s; s++) seen[(unsigned char)*s] = 1;
        }
    } else if (tk->kind == T_ARITH) {
        for (s = "0123456789="; *s; s++) seen[(unsigned char)*s] = 1;
        for (s = tk->ops; *s; s++) seen[(unsigned char)*s] = 1;
    } else {
        for (s = tk->alphabet; *s; s++) seen[(unsigned char)*s] = 1;
        seen[tk->kind == T_COPY ? ':' : '>'] = 1;
    }
    for (i = 0; i < 256; i++) if (seen[i]) out[n++] = (char)i;
    return n;
}
static void task_init(task *tk, const args *a) {
    int i;
    memset(tk, 0, sizeof *tk);
    tk->kind = a->task; tk->min_len = a->min_len; tk->max_len = a->max_len; tk->digits = a->digits;
    snprintf(tk->alphabet, sizeof tk->alphabet, "%s", a->alphabet);
    snprintf(tk->ops, sizeof tk->ops, "%s", a->ops);
    if (tk->kind == T_FILE) {
        task_file_load(tk, a->task_file);
        for (i = 0; i < tk->n_file; i++) {
            int lp = (int)strlen(tk->fp[i]), la = (int)strlen(tk->fa[i]);
            tk->max_prompt = lp > tk->max_prompt ? lp : tk->max_prompt;
            tk->max_answer = la > tk->max_answer ? la : tk->max_answer;
        }
    } else if (tk->kind == T_ARITH) {
        tk->max_prompt = 2 * tk->digits + 2;
        tk->max_answer = strchr(tk->ops, '*') ? 2 * tk->digits : tk->digits + 1;
    } else {
        tk->max_prompt = tk->max_len + 1;
        tk->max_answer = tk->max_len;
    }
}

/* reward of a completion's text (its final "\n" removed) against the answer */
static float reward(const char *text, int stopped, const char *answer, int partial) {
    size_t nt = strlen(text), na = strlen(answer), i, hit = 0, mx;
    if (stopped && nt == na && !memcmp(text, answer, na)) return 1.f;
    if (!partial) return 0.f;
    for (i = 0; i < nt && i < na; i++) hit += text[i] == answer[i];
    mx = nt > na ? nt : na;
    return mx ? 0.9f * (float)hit / (float)mx : 0.f;   /* below an exact match's 1 */
}

/* ---- the run ------------------------------------------------------------ */
typedef struct rl {
    args a;
    task tk;
    mr_vocab vocab;
    int nl;                       /* the id of "\n" */
    mr_model *m, *ref;
    mr_ctx *ctx;
    mr_adamw adam;
    mr_rng rng;
    mr_train_meta meta;
    item *held;
    int n_held;
    int64_t step, start_step;
    double t0, wall0;
    FILE *hist;
    char args_str[MR_ARGS_MAX];
} rl;

static int encode(const rl *r, const char *s, int32_t *out) {
    int n = 0;
    for (; *s; s++) out[n++] = r->vocab.index[(unsigned char)*s];
    return n;
}
/* "\n" + prompt */
static int encode_prompt(const rl *r, const char *p, int32_t *out) {
    out[0] = r->nl;
    return 1 + encode(r, p, out + 1);
}
static void decode(const rl *r, const int32_t *t, int n, char *out, int *stopped) {
    int i, k = 0;
    *stopped = 0;
    for (i = 0; i < n && k < MAXS - 1; i++) {
        if (t[i] == r->nl) { *stopped = 1; break; }
        out[k++] = (char)r->vocab.chars[t[i]];
    }
    out[k] = 0;
}

static double elapsed(const rl *r) { return r->wall0 + (ex_now() - r->t0); }

/* Held-out exact match of greedy completions, EVAL_B streams at a time. */
static double eval_heldout(rl *r) {
    int done = 0, hits = 0;
    int32_t *pbuf = (int32_t *)malloc(sizeof(int32_t) * EVAL_B * (MAXS + 2));
    int32_t *tok = (int32_t *)malloc(sizeof(int32_t) * EVAL_B * (size_t)r->a.max_new);
    float *lp = (float *)malloc(sizeof(float) * EVAL_B * (size_t)r->a.max_new);
    const int32_t *pp[EVAL_B];
    int pl[EVAL_B], len[EVAL_B];
    mr_rollout_cfg c;
    mr_error err;
    if (!pbuf || !tok || !lp) ex_fail(PROG, "out of memory for the evaluation");
    memset(&c, 0, sizeof c);
    c.temperature = 0.f; c.top_p = 1.f; c.max_len = r->a.max_new; c.stop = r->nl;
    while (done < r->n_held) {
        int B = r->n_held - done < EVAL_B ? r->n_held - done : EVAL_B, b;
        mr_state *st;
        if (mr_state_new(&st, r->m, B, &err) != MR_OK) ex_fail(PROG, err.msg);
        for (b = 0; b < B; b++) { pl[b] = encode_prompt(r, r->held[done + b].p, pbuf + b * (MAXS + 2)); pp[b] = pbuf + b * (MAXS + 2); }
        if (mr_rollout(r->ctx, r->m, st, pp, pl, &c, &r->rng, tok, lp, len, NULL) != MR_OK) ex_fail(PROG, mr_ctx_error(r->ctx));
        for (b = 0; b < B; b++) {
            char text[MAXS];
            int stopped;
            decode(r, tok + (size_t)b * c.max_len, len[b], text, &stopped);
            hits += stopped && !strcmp(text, r->held[done + b].a);
        }
        mr_state_free(st);
        done += B;
    }
    free(pbuf); free(tok); free(lp);
    return r->n_held ? (double)hits / r->n_held : 0;
}

static void save(rl *r, const char *name) {
    char path[4096];
    mr_train_state ts;
    mr_rng rngs[2];
    mr_error err;
    r->meta.step = r->step;
    r->meta.wall_time = elapsed(r);
    r->meta.created_unix = (int64_t)time(NULL);
    snprintf(r->meta.args, sizeof r->meta.args, "%s", r->args_str);
    memset(&ts, 0, sizeof ts);
    ts.adamw = &r->adam;
    rngs[0] = r->rng; rngs[1] = *mr_ctx_rng(r->ctx);
    ts.rngs = rngs; ts.n_rngs = 2;
    snprintf(path, sizeof path, "%s/%s", r->a.out, name);
    if (mr_ckpt_save_train(r->m, &r->vocab, &r->meta, &ts, path, &err) != MR_OK) {
        char b[4400];
        snprintf(b, sizeof b, "saving %s failed: %s", path, err.msg);
        ex_fail(PROG, b);
    }
}

static void progress(const rl *r, const char *line) {
    double t = elapsed(r), eta = -1;
    char e[32] = "";
    if (r->a.steps) eta = r->step > r->start_step ? (t - r->wall0) / (double)(r->step - r->start_step) * (double)(r->a.steps - r->step) : -1;
    else eta = r->a.budget - t;
    if (eta >= 0) ex_fmt_time(e, sizeof e, eta);
    fprintf(stderr, "%s%s%s\n", line, eta >= 0 ? "  ETA " : "", e);
}
static int should_stop(const rl *r) {
    if (g_stop) return 1;
    if (r->a.steps) return r->step >= r->a.steps;
    return elapsed(r) >= r->a.budget;
}
/* a cosine from lr to lr/10 over the run (its steps or its time), after 20 warm-up steps */
static float lr_now(const rl *r, int cosine) {
    double f = r->a.steps ? (double)r->step / r->a.steps : elapsed(r) / r->a.budget;
    double w = r->step < 20 ? (r->step + 1) / 20.0 : 1.0;
    if (f > 1) f = 1;
    return (float)(r->a.lr * w * (cosine ? 0.1 + 0.9 * 0.5 * (1 + cos(3.14159265358979 * f)) : 1.0));
}

/* ---- supervised warm start ---------------------------------------------- */
/* DIR/curve.svg from DIR/history.csv: the held-out exact match (and, for
   GRPO, the sampled completions' exact match and, when it differs from that
   (partial credit), their mean reward, each averaged over 50 updates) against
   steps and against wall time. Returns 0, or -1 when the history cannot be
   read or the plot cannot be written. */
static int plot_history(const char *dir, const char *title) {
    char hp[4200], sp[4200];
    FILE *f;
    char line[4096];
    int n = 0, cap = 0, k, p, ns, sft = 0, partial = 0, rc = -1;
    double *v = NULL;   /* per row: step, wall, held-out, sampled exact, reward (NaN where absent) */
    snprintf(hp, sizeof hp, "%s/history.csv", dir);
    snprintf(sp, sizeof sp, "%s/curve.svg", dir);
    if (!(f = fopen(hp, "r"))) return -1;
    while (fgets(line, sizeof line, f)) {
        const char *q = line;
        double c[12];
        if (!strncmp(line, "step,", 5)) sft = 1;
        if (!isdigit((unsigned char)line[0])) continue;
        for (k = 0; k < 12; k++) c[k] = pl_field(&q);
        if (n == cap) {
            double *nv = (double *)realloc(v, sizeof(double) * 5 * (size_t)(cap = cap ? 2 * cap : 1024));
            if (!nv) { free(v); fclose(f); return -1; }
            v = nv;
        }
        v[5 * n] = c[0]; v[5 * n + 1] = c[1];
        v[5 * n + 2] = 100 * (sft ? c[4] : c[11]);
        v[5 * n + 3] = sft ? NAN : 100 * c[3];
        v[5 * n + 4] = sft ? NAN : 100 * c[2];
        partial |= !sft && c[2] != c[3] && !isnan(c[2]);
        n++;
    }
    fclose(f);
    if (n) {
        double *buf = (double *)malloc(sizeof(double) * 17 * (size_t)(n + 1));
        pl_series s[2][3];
        pl_panel pn[2];
        if (buf) {
            /* moving averages over the last 50 rows with a value, from prefix sums */
            double *ex = buf + 12 * n, *rw = buf + 13 * n, *ce = buf + 14 * n, *cr = ce + n + 1, *cn = cr + n + 1;
            ce[0] = cr[0] = cn[0] = 0;
            for (k = 0; k < n; k++) {
                int ok = !isnan(v[5 * k + 3]);
                ce[k + 1] = ce[k] + (ok ? v[5 * k + 3] : 0); cr[k + 1] = cr[k] + (ok ? v[5 * k + 4] : 0); cn[k + 1] = cn[k] + ok;
            }
            for (k = 0; k < n; k++) {
                int j = k + 1 > 50 ? k + 1 - 50 : 0;
                double c = cn[k + 1] - cn[j];
                ex[k] = c > 0 && !isnan(v[5 * k + 3]) ? (ce[k + 1] - ce[j]) / c : NAN;
                rw[k] = c > 0 && !isnan(v[5 * k + 3]) ? (cr[k + 1] - cr[j]) / c : NAN;
            }
            for (p = 0; p < 2; p++) {
                int j, c;
                const double *yy[3];
                const char *names[3] = {"held-out exact match (greedy)", "sampled exact match (50-update mean)", "sampled reward x 100 (50-update mean)"};
                yy[0] = NULL; yy[1] = ex; yy[2] = rw;
                ns = sft ? 1 : (partial ? 3 : 2);
                for (j = 0; j < ns; j++) {
                    double *xs = buf + (size_t)(p * 3 + j) * 2 * n, *ys = xs + n;
                    c = 0;
                    for (k = 0; k < n; k++) {
                        double y = j ? yy[j][k] : v[5 * k + 2], x = v[5 * k + p];
                        if (isfinite(x) && isfinite(y)) { xs[c] = x; ys[c] = y; c++; }
                    }
                    s[p][j].name = names[j]; s[p][j].x = xs; s[p][j].y = ys; s[p][j].n = c; s[p][j].dashed = j > 0;
                }
                pn[p].xlabel = p ? "wall time (s)" : sft ? "step" : "update";
                pn[p].ylabel = "percent"; pn[p].s = s[p]; pn[p].ns = ns; pn[p].y_cap = 0;
            }
            rc = pl_write_svg(sp, title, pn, 2);
            free(buf);
        }
    }
    free(v);
    return rc;
}
/* DIR/curve.svg at each evaluation and at the end; a plot that cannot be
   written is said once and the run goes on */
static void write_plot(rl *r) {
    char title[400];
    static int warned;
    fflush(r->hist);
    snprintf(title, sizeof title, "minrnn-rl %s, task %s: %s d=%d L=%d", r->a.sft ? "warm start" : "GRPO", r->a.task == T_FILE ? r->a.task_file : task_names[r->a.task],
             mr_mixer_name(r->m->cfg.mixer[0]), r->m->cfg.dim, r->m->cfg.n_layers);
    if (plot_history(r->a.out, title) && !warned) { fprintf(stderr, "\n%s: cannot write '%s/curve.svg' (the run goes on)\n", PROG, r->a.out); warned = 1; }
}

static void run_sft(rl *r) {
    int B = r->a.batch, T = r->tk.max_prompt + r->tk.max_answer + 2, b;
    int32_t *x = (int32_t *)malloc(sizeof(int32_t) * (size_t)B * T), *y = (int32_t *)malloc(sizeof(int32_t) * (size_t)B * T);
    double loss_ema = -1;
    int32_t *seq = (int32_t *)malloc(sizeof(int32_t) * (size_t)B * (T + 1));
    int *ns = (int *)malloc(sizeof(int) * (size_t)B), *nps = (int *)malloc(sizeof(int) * (size_t)B);
    if (!x || !y || !seq || !ns || !nps) ex_fail(PROG, "out of memory for the batch");
    while (!should_stop(r)) {
        double loss;
        float gn, lr = lr_now(r, 1);
        int Tm = 1, t;
        for (b = 0; b < B; b++) {   /* row b: "\n" prompt answer "\n", the loss on the answer and its "\n" */
            item it;
            int32_t *q = seq + (size_t)b * (T + 1);
            task_train(&r->tk, &r->rng, &it);
            nps[b] = encode_prompt(r, it.p, q);
            ns[b] = nps[b] + encode(r, it.a, q + nps[b]);
            q[ns[b]++] = r->nl;
            Tm = ns[b] - 1 > Tm ? ns[b] - 1 : Tm;
        }
        for (b = 0; b < B; b++)
            for (t = 0; t < Tm; t++) {
                const int32_t *q = seq + (size_t)b * (T + 1);
                x[b * Tm + t] = t < ns[b] - 1 ? q[t] : r->nl;
                y[b * Tm + t] = t < ns[b] - 1 && t + 1 >= nps[b] ? q[t + 1] : -1;
            }
        if (mr_train_step(r->ctx, r->m, &r->adam, NULL, x, y, B, Tm, 0, NULL, lr, (float)r->a.clip, &loss, &gn) != MR_OK) {
            char m[600];
            snprintf(m, sizeof m, "step %lld: %s", (long long)r->step + 1, mr_ctx_error(r->ctx));
            ex_fail(PROG, m);
        }
        mr_ctx_reset(r->ctx);
        r->step++;
        loss_ema = loss_ema < 0 ? loss : 0.95 * loss_ema + 0.05 * loss;
        if (r->step % r->a.log_every == 0 || should_stop(r) || r->step % r->a.eval_every == 0) {
            char line[512];
            int ev = r->step % r->a.eval_every == 0 || should_stop(r);
            double acc = ev ? eval_heldout(r) : -1;
            snprintf(line, sizeof line, "sft step %lld  loss %.4f  lr %.2e%s", (long long)r->step, loss_ema, (double)lr, "");
            if (ev) snprintf(line + strlen(line), sizeof line - strlen(line), "  held-out exact %.1f%% (%d prompts)", 100 * acc, r->n_held);
            progress(r, line);
            fprintf(r->hist, "%lld,%.2f,%.5f,%.3e,", (long long)r->step, elapsed(r), loss_ema, (double)lr);
            if (ev) fprintf(r->hist, "%.4f\n", acc); else fprintf(r->hist, "\n");
            fflush(r->hist);
            if (ev) write_plot(r);
        }
        if (r->a.save_every && r->step % r->a.save_every == 0) save(r, "model.bin");
    }
    free(x); free(y); free(seq); free(ns); free(nps);
}

/* ---- GRPO --------------------------------------------------------------- */
typedef struct batch {
    int n, cap, L;                   /* completions, capacity, max completion tokens */
    item *it;                        /* prompt and answer of each */
    int32_t *prompt, *tok;           /* [cap, MAXS + 2], [cap, L] */
    int *plen, *len;
    float *logp, *rew, *adv;         /* [cap, L], [cap], [cap] */
    /* the update's rows, [cap, TM] each (cw: [cap, L]), allocated once */
    int32_t *ux, *utok;
    float *uw, *uold, *uref, *uadv, *cw;
} batch;
/* TM: the longest "\n" prompt completion row (max_prompt + 1 + L) */
static void batch_new(batch *b, int cap, int L, int TM) {
    size_t u = (size_t)cap * (size_t)TM;
    memset(b, 0, sizeof *b);
    b->cap = cap; b->L = L;
    b->ux = (int32_t *)malloc(sizeof(int32_t) * u); b->utok = (int32_t *)malloc(sizeof(int32_t) * u);
    b->uw = (float *)malloc(sizeof(float) * u); b->uold = (float *)malloc(sizeof(float) * u);
    b->uref = (float *)malloc(sizeof(float) * u); b->uadv = (float *)malloc(sizeof(float) * u);
    b->cw = (float *)malloc(sizeof(float) * (size_t)cap * L);
    if (!b->ux || !b->utok || !b->uw || !b->uold || !b->uref || !b->uadv || !b->cw) ex_fail(PROG, "out of memory for the update");
    b->it = (item *)malloc(sizeof(item) * (size_t)cap);
    b->prompt = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap * (MAXS + 2));
    b->tok = (int32_t *)malloc(sizeof(int32_t) * (size_t)cap * L);
    b->plen = (int *)malloc(sizeof(int) * (size_t)cap);
    b->len = (int *)malloc(sizeof(int) * (size_t)cap);
    b->logp = (float *)malloc(sizeof(float) * (size_t)cap * L);
    b->rew = (float *)malloc(sizeof(float) * (size_t)cap);
    b->adv = (float *)malloc(sizeof(float) * (size_t)cap);
    if (!b->it || !b->prompt || !b->tok || !b->plen || !b->len || !b->logp || !b->rew || !b->adv) ex_fail(PROG, "out of memory for the rollouts");
}
static void batch_free(batch *b) {
    free(b->it); free(b->prompt); free(b->tok); free(b->plen); free(b->len); free(b->logp); free(b->rew); free(b->adv);
    free(b->ux); free(b->utok); free(b->uw); free(b->uold); free(b->uref); free(b->uadv); free(b->cw);
}

typedef struct upd_stats { double reward, exact, kl, clip, flat, len, roll_tps, upd_tps, loss; int groups, sampled; } upd_stats;

/* P prompts, G completions each, into rows off .. off + P G of b; rewards */
static void rollout_groups(rl *r, batch *b, int off, int P, mr_state *st, double *tokens) {
    int G = r->a.group, i, k;
    const int32_t *pp[4096];
    mr_rollout_cfg c;
    for (i = 0; i < P; i++) {
        item it;
        task_train(&r->tk, &r->rng, &it);
        for (k = 0; k < G; k++) {
            int j = off + i * G + k;
            b->it[j] = it;
            b->plen[j] = encode_prompt(r, it.p, b->prompt + (size_t)j * (MAXS + 2));
            pp[j - off] = b->prompt + (size_t)j * (MAXS + 2);
        }
    }
    memset(&c, 0, sizeof c);
    c.temperature = (float)r->a.temperature; c.top_k = r->a.top_k; c.top_p = (float)r->a.top_p; c.max_len = b->L; c.stop = r->nl;
    if (mr_rollout(r->ctx, r->m, st, pp, b->plen + off, &c, &r->rng, b->tok + (size_t)off * b->L, b->logp + (size_t)off * b->L, b->len + off, NULL) != MR_OK)
        ex_fail(PROG, mr_ctx_error(r->ctx));
    for (i = off; i < off + P * G; i++) {
        char text[MAXS];
        int stopped;
        decode(r, b->tok + (size_t)i * b->L, b->len[i], text, &stopped);
        b->rew[i] = reward(text, stopped, b->it[i].a, r->a.partial);
        *tokens += b->len[i];
    }
}

/* Rollouts for one update: P groups (with --filter-groups, P groups whose
   rewards differ, sampling up to 4 P prompts), their advantages. */
static void collect(rl *r, batch *b, mr_state *st, upd_stats *us) {
    int P = r->a.prompts, G = r->a.group, rounds = 0, g, keep = 0, flat_total = 0, sampled = 0, i;
    double tokens = 0, t = ex_now();
    b->n = 0;
    for (;;) {
        int flat, base = b->n;
        rollout_groups(r, b, base, P, st, &tokens);
        rounds++;
        sampled += P;
        mr_grpo_advantages(b->rew + base, P, G, r->a.scale, b->adv + base, &flat);
        flat_total += flat;
        for (i = 0; i < P * G; i++) { us->reward += b->rew[base + i]; us->exact += b->rew[base + i] == 1.f; us->len += b->len[base + i]; }
        if (!r->a.filter) { b->n = P * G; keep = P; break; }
        /* keep the groups with a signal, packed from row keep G */
        for (g = 0; g < P && keep < P; g++) {
            int row = base + g * G, j, same = 1;
            for (j = 1; j < G; j++) same &= b->rew[row + j] == b->rew[row];
            if (same) continue;
            if (row != keep * G) {
                for (j = 0; j < G; j++) {
                    int d = keep * G + j, s = row + j;
                    b->it[d] = b->it[s];
                    memcpy(b->prompt + (size_t)d * (MAXS + 2), b->prompt + (size_t)s * (MAXS + 2), sizeof(int32_t) * (MAXS + 2));
                    memcpy(b->tok + (size_t)d * b->L, b->tok + (size_t)s * b->L, sizeof(int32_t) * (size_t)b->L);
                    memcpy(b->logp + (size_t)d * b->L, b->logp + (size_t)s * b->L, sizeof(float) * (size_t)b->L);
                    b->plen[d] = b->plen[s]; b->len[d] = b->len[s]; b->rew[d] = b->rew[s]; b->adv[d] = b->adv[s];
                }
            }
            keep++;
        }
        b->n = keep * G;
        if (keep >= P || rounds >= 4) break;
    }
    us->groups = keep;
    us->sampled = sampled;
    us->reward /= (double)sampled * G; us->exact /= (double)sampled * G; us->len /= (double)sampled * G;
    us->flat = (double)flat_total / sampled;
    us->roll_tps = tokens / (ex_now() - t + 1e-9);
}

/* mu AdamW updates of the GRPO loss on the rollouts in b */
static void update(rl *r, const batch *b, upd_stats *us) {
    int n = b->n, T = 1, i, t, e, V = (int)r->m->cfg.vocab_size;
    int32_t *x = b->ux, *tok = b->utok;
    float *w = b->uw, *old = b->uold, *ref = b->uref, *adv = b->uadv, *cw = b->cw;
    mr_grpo_cfg gc = mr_grpo_defaults();
    double t0 = ex_now(), ntok = 0;
    if (!n) return;
    for (i = 0; i < n; i++) T = b->plen[i] + b->len[i] - 1 > T ? b->plen[i] + b->len[i] - 1 : T;
    mr_grpo_token_weights(b->len, n, b->L, b->L, r->a.agg, cw);
    for (i = 0; i < n; i++) {   /* row i: "\n" prompt completion, predicting each completion token */
        const int32_t *p = b->prompt + (size_t)i * (MAXS + 2), *c = b->tok + (size_t)i * b->L;
        int np = b->plen[i];
        for (t = 0; t < T; t++) {
            int j = t + 1 - np;   /* the completion token row t predicts */
            size_t q = (size_t)i * T + t;
            x[q] = t < np ? p[t] : t - np < b->len[i] ? c[t - np] : r->nl;
            tok[q] = 0; w[q] = old[q] = ref[q] = adv[q] = 0.f;
            if (j >= 0 && j < b->len[i]) { tok[q] = c[j]; w[q] = cw[(size_t)i * b->L + j]; old[q] = b->logp[(size_t)i * b->L + j]; adv[q] = b->adv[i]; }
        }
        ntok += np + b->len[i] - 1;
    }
    gc.eps = (float)r->a.eps; gc.beta = (float)r->a.beta; gc.temperature = (float)(r->a.temperature > 0 ? r->a.temperature : 1);
    if (gc.beta > 0.f) {   /* the frozen reference's log-probabilities, once */
        int prev = mr_ctx_set_no_grad(r->ctx, 1);
        mr_tensor *lg = mr_model_forward(r->ctx, r->ref, x, n, T, NULL, 0);
        int64_t q;
        if (!lg) ex_fail(PROG, mr_ctx_error(r->ctx));
        for (q = 0; q < (int64_t)n * T; q++) if (w[q] != 0.f) ref[q] = mr_logprob(lg->data + q * lg->row_stride, V, gc.temperature, tok[q]);
        mr_ctx_set_no_grad(r->ctx, prev);
        mr_ctx_reset(r->ctx);
    }
    us->loss = 0;
    for (e = 0; e < r->a.mu; e++) {
        mr_grpo_stats gs;
        mr_tensor *lg = mr_model_forward(r->ctx, r->m, x, n, T, NULL, 0);
        mr_tensor *loss = lg ? mr_grpo_loss(r->ctx, lg, tok, w, old, gc.beta > 0.f ? ref : NULL, adv, gc, &gs) : NULL;
        if (!loss || mr_backward(r->ctx, loss) != MR_OK) ex_fail(PROG, mr_ctx_error(r->ctx));
        us->loss += loss->data[0] / r->a.mu;
        us->kl += gs.kl / r->a.mu;
        us->clip += gs.clip_frac / r->a.mu;
        if (mr_train_apply(r->ctx, r->m, &r->adam, NULL, lr_now(r, 0), (float)r->a.clip, NULL) != MR_OK) {
            char m[600];
            snprintf(m, sizeof m, "update %lld: %s", (long long)r->step + 1, mr_ctx_error(r->ctx));
            ex_fail(PROG, m);
        }
        mr_ctx_reset(r->ctx);
    }
    us->upd_tps = ntok * r->a.mu / (ex_now() - t0 + 1e-9);
}

static void run_rl(rl *r) {
    batch b;
    mr_state *st;
    mr_error err;
    int PG = r->a.prompts * r->a.group;
    double acc0 = -1;
    batch_new(&b, r->a.filter ? 2 * PG : PG, r->a.max_new, r->tk.max_prompt + 1 + r->a.max_new);   /* filtering keeps up to P - 1 groups beside a new round */
    if (mr_state_new(&st, r->m, PG, &err) != MR_OK) ex_fail(PROG, err.msg);
    if (r->step == 0) {
        acc0 = eval_heldout(r);
        fprintf(stderr, "%s: held-out exact match at the start: %.1f%% (%d prompts)\n", PROG, 100 * acc0, r->n_held);
        fprintf(r->hist, "0,%.2f,,,,,,,,,,%.4f\n", elapsed(r), acc0);
        fflush(r->hist);
    }
    while (!should_stop(r)) {
        upd_stats us;
        char line[600];
        int ev;
        double acc = -1;
        memset(&us, 0, sizeof us);
        collect(r, &b, st, &us);
        update(r, &b, &us);
        r->step++;
        ev = r->step % r->a.eval_every == 0 || should_stop(r);
        if (ev) acc = eval_heldout(r);
        if (ev || r->step % r->a.log_every == 0) {
            snprintf(line, sizeof line, "update %lld  reward %.3f  exact %.1f%%  kl %.4f  clip %.3f  flat %.2f  len %.1f  rollout %.1fk tok/s  update %.1fk tok/s",
                     (long long)r->step, us.reward, 100 * us.exact, us.kl, us.clip, us.flat, us.len, us.roll_tps / 1e3, us.upd_tps / 1e3);
            if (ev) snprintf(line + strlen(line), sizeof line - strlen(line), "  held-out %.1f%%", 100 * acc);
            progress(r, line);
        }
        fprintf(r->hist, "%lld,%.2f,%.5f,%.5f,%.6f,%.5f,%.4f,%.3f,%.0f,%.0f,%.6g,", (long long)r->step, elapsed(r), us.reward, us.exact, us.kl, us.clip, us.flat,
                us.len, us.roll_tps, us.upd_tps, us.loss);
        if (ev) fprintf(r->hist, "%.4f\n", acc); else fprintf(r->hist, "\n");
        fflush(r->hist);
        if (ev) write_plot(r);
        if (r->a.save_every && r->step % r->a.save_every == 0) save(r, "model.bin");
    }
    mr_state_free(st);
    batch_free(&b);
}

/* ---- arguments ---------------------------------------------------------- */
static void usage(void) {
    printf("usage: minrnn-rl --sft --task T --out DIR [flags]          supervised warm start\n"
           "       minrnn-rl --model CKPT --task T --out DIR [flags]   GRPO from a checkpoint\n"
           "       minrnn-rl --resume DIR/model.bin [flags]             continue either\n"
           "       minrnn-rl --plot DIR                                 redraw DIR/curve.svg from DIR/history.csv\n"
           "tasks:\n"
           "  --task copy|reverse|arith   copy 'abc:' -> 'abc', reverse 'abc>' -> 'cba', arith '3+5=' -> '8'\n"
           "  --task-file FILE      lines prompt<TAB>answer (exact-match reward) instead of --task\n"
           "  --min-len N --max-len N  copy/reverse lengths (default 4, 8)   --alphabet S (default a-z)\n"
           "  --digits 1|2          arith operands (default 1)   --ops S  arith operators from +-* (default +-*)\n"
           "  One prompt in ten (by a hash of its text) is held out: never trained on, used for evaluation.\n"
           "  The model reads \"\\n\" + prompt from a fresh state and writes the answer and \"\\n\".\n"
           "common:\n"
           "  --out DIR             DIR/model.bin (resumable), DIR/history.csv, DIR/curve.svg (default runs/rl)\n"
           "  --steps N | --time-budget SECONDS   (default: 600 seconds; wall time, evaluation included)\n"
           "  --lr LR               AdamW (SFT default 3e-3, cosine to 1/10; RL default 3e-5, constant)\n"
           "  --grad-clip C (1.0)  --weight-decay W (SFT 0.01, RL 0)  --seed S (1)  --threads N (all cores)\n"
           "  --eval-every N        greedy held-out exact match every N steps or updates (SFT 100, RL 10)\n"
           "  --eval-prompts N      held-out prompts evaluated (default 256)   --log-every N (SFT 20, RL 1)\n"
           "  --save-every N        also save DIR/model.bin every N steps or updates (default 0: at the end)\n"
           "supervised (--sft): the loss on the answer and its \"\\n\"\n"
           "  --model CKPT          start from a checkpoint (default: a new model)\n"
           "  --layers SPEC --dim D --depth N   a new model (default mingru, 128, 4)   --batch B (64)\n"
           "GRPO:\n"
           "  --group G             completions per prompt (default 8, at least 2)\n"
           "  --prompts P           prompts per update (default 8): P G streams sampled as one batch\n"
           "  --epochs-per-batch MU updates on the same rollouts (default 1)\n"
           "  --eps E               clip range of the ratio (default 0.2)\n"
           "  --beta B              weight of the k3 KL to the starting model (default 0.04; 0: none)\n"
           "  --scale-rewards group|none  advantages (r - mean) / (std + 1e-4), or r - mean (Dr. GRPO) (default group)\n"
           "  --loss-agg grpo|dr_grpo     mean over each completion then over completions, or the sum over\n"
           "                        B times the maximum length (default grpo)\n"
           "  --temperature T (1)  --top-k K (0: off)  --top-p P (1: off)   sampling; the policy is softmax(logits / T)\n"
           "  --max-new N           completion tokens at most (default the longest answer + 2)\n"
           "  --partial-credit      reward 0.9 x the fraction of positions right when not exact (default: 0)\n"
           "  --filter-groups       skip groups whose rewards are all equal (no signal), sampling up to 4 P\n"
           "                        prompts so each update has P groups\n"
           "  The loss printed is near 0 when MU = 1 and beta = 0, by construction: the ratio is 1 and the\n"
           "  advantages of a group sum to 0; its gradient is not 0.\n"
           "Ctrl-C (or SIGTERM) stops after the current step, saves DIR/model.bin and exits 130.\n");
}

static void defaults(args *a) {
    memset(a, 0, sizeof *a);
    a->task = -1; a->min_len = 4; a->max_len = 8; a->digits = 1;
    snprintf(a->alphabet, sizeof a->alphabet, "abcdefghijklmnopqrstuvwxyz");
    snprintf(a->ops, sizeof a->ops, "+-*");
    a->out = "runs/rl"; a->layers = "mingru"; a->dim = 128; a->depth = 4; a->batch = 64;
    a->group = 8; a->prompts = 8; a->mu = 1; a->eps = 0.2; a->beta = 0.04; a->scale = 1; a->agg = MR_GRPO_AGG_GRPO;
    a->temperature = 1; a->top_p = 1; a->clip = 1.0; a->wd = -1; a->lr = -1; a->eval_every = -1; a->log_every = -1;
    a->eval_prompts = 256; a->seed = 1; a->budget = 600;
}

static void parse(args *a, int argc, char **argv) {
    int i;
    char b[600];
    for (i = 0; i < argc; i++) {
        const char *f = argv[i];
#define V ex_val(PROG, argc, argv, &i)
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { usage(); exit(0); }
        else if (ex_is_version(f)) { ex_version(PROG); exit(0); }
        else if (!strcmp(f, "--sft")) a->sft = 1;
        else if (!strcmp(f, "--rl")) a->sft = 0;
        else if (!strcmp(f, "--task")) {
            const char *v = V;
            int k;
            for (k = 0; k < 3 && strcmp(v, task_names[k]); k++) {}
            if (k == 3) { snprintf(b, sizeof b, "unknown task '%s' (copy, reverse, arith; or --task-file FILE)", v); ex_die(PROG, b); }
            a->task = k; a->task_file = NULL;
        } else if (!strcmp(f, "--task-file")) { a->task_file = V; a->task = T_FILE; }
        else if (!strcmp(f, "--min-len")) a->min_len = (int)ex_int(PROG, f, V, 1, 100);
        else if (!strcmp(f, "--max-len")) a->max_len = (int)ex_int(PROG, f, V, 1, 100);
        else if (!strcmp(f, "--digits")) a->digits = (int)ex_int(PROG, f, V, 1, 2);
        else if (!strcmp(f, "--alphabet")) {
            const char *v = V, *s;
            if (!*v || strlen(v) >= MAXS) ex_die(PROG, "--alphabet needs 1 to 255 characters");
            for (s = v; *s; s++) if (*s == '\n' || *s == ':' || *s == '>') ex_die(PROG, "--alphabet cannot hold newline, ':' or '>' (the tasks' separators)");
            snprintf(a->alphabet, sizeof a->alphabet, "%s", v);
        } else if (!strcmp(f, "--ops")) {
            const char *v = V, *s;
            if (!*v || strlen(v) > 3) ex_die(PROG, "--ops takes 1 to 3 of +, -, *");
            for (s = v; *s; s++) if (!strchr("+-*", *s)) { snprintf(b, sizeof b, "--ops: '%c' is not one of +, -, *", *s); ex_die(PROG, b); }
            snprintf(a->ops, sizeof a->ops, "%s", v);
        } else if (!strcmp(f, "--model")) a->model = V;
        else if (!strcmp(f, "--resume")) a->resume = V;
        else if (!strcmp(f, "--out")) a->out = V;
        else if (!strcmp(f, "--layers") || !strcmp(f, "--arch")) a->layers = V;
        else if (!strcmp(f, "--dim")) a->dim = (int)ex_int(PROG, f, V, 4, 4096);
        else if (!strcmp(f, "--depth")) a->depth = (int)ex_int(PROG, f, V, 1, MR_MAX_LAYERS);
        else if (!strcmp(f, "--batch")) a->batch = (int)ex_int(PROG, f, V, 1, 4096);
        else if (!strcmp(f, "--steps")) a->steps = (int)ex_int(PROG, f, V, 1, 100000000);
        else if (!strcmp(f, "--time-budget")) { a->budget = ex_num(PROG, f, V, 1e-3, 1e7); a->steps = 0; }
        else if (!strcmp(f, "--lr")) a->lr = ex_num(PROG, f, V, 0, 10);
        else if (!strcmp(f, "--grad-clip")) a->clip = ex_num(PROG, f, V, 0, 1e6);
        else if (!strcmp(f, "--weight-decay")) a->wd = ex_num(PROG, f, V, 0, 10);
        else if (!strcmp(f, "--seed")) a->seed = (uint64_t)ex_int(PROG, f, V, 0, 0x7fffffffffffffffll);
        else if (!strcmp(f, "--threads")) a->threads = (int)ex_int(PROG, f, V, 1, 1024);
        else if (!strcmp(f, "--eval-every")) a->eval_every = (int)ex_int(PROG, f, V, 1, 100000000);
        else if (!strcmp(f, "--eval-prompts")) a->eval_prompts = (int)ex_int(PROG, f, V, 1, 100000);
        else if (!strcmp(f, "--log-every")) a->log_every = (int)ex_int(PROG, f, V, 1, 100000000);
        else if (!strcmp(f, "--save-every")) a->save_every = (int)ex_int(PROG, f, V, 0, 100000000);
        else if (!strcmp(f, "--group")) {
            const char *v = V;
            a->group = (int)ex_int(PROG, f, v, -1000000, 1000000);
            if (a->group < 2) { snprintf(b, sizeof b, "--group %d: a group needs at least 2 completions (its advantages compare them)", a->group); ex_die(PROG, b); }
            if (a->group > 512) ex_die(PROG, "--group must be at most 512");
        } else if (!strcmp(f, "--prompts")) a->prompts = (int)ex_int(PROG, f, V, 1, 512);
        else if (!strcmp(f, "--epochs-per-batch")) a->mu = (int)ex_int(PROG, f, V, 1, 64);
        else if (!strcmp(f, "--eps")) a->eps = ex_num(PROG, f, V, 0, 0.99);
        else if (!strcmp(f, "--beta")) a->beta = ex_num(PROG, f, V, 0, 100);
        else if (!strcmp(f, "--scale-rewards")) {
            const char *v = V;
            if (!strcmp(v, "group")) a->scale = 1; else if (!strcmp(v, "none")) a->scale = 0;
            else { snprintf(b, sizeof b, "--scale-rewards must be group or none, not '%s'", v); ex_die(PROG, b); }
        } else if (!strcmp(f, "--loss-agg")) {
            const char *v = V;
            if (!strcmp(v, "grpo")) a->agg = MR_GRPO_AGG_GRPO; else if (!strcmp(v, "dr_grpo")) a->agg = MR_GRPO_AGG_DR;
            else { snprintf(b, sizeof b, "--loss-agg must be grpo or dr_grpo, not '%s'", v); ex_die(PROG, b); }
        } else if (!strcmp(f, "--temperature")) a->temperature = ex_num(PROG, f, V, 1e-3, 100);
        else if (!strcmp(f, "--top-k")) a->top_k = (int)ex_int(PROG, f, V, 0, 1 << 20);
        else if (!strcmp(f, "--top-p")) a->top_p = ex_num(PROG, f, V, 1e-6, 1);
        else if (!strcmp(f, "--max-new")) a->max_new = (int)ex_int(PROG, f, V, 1, MAXS - 2);
        else if (!strcmp(f, "--partial-credit")) a->partial = 1;
        else if (!strcmp(f, "--filter-groups")) a->filter = 1;
        else { snprintf(b, sizeof b, "unknown flag '%s' (see --help)", f); ex_die(PROG, b); }
#undef V
    }
}

/* the flags of the run, kept in the checkpoint for --resume: argv joined by \x1f */
static void join_args(char *out, size_t cap, int argc, char **argv) {
    size_t n = 0;
    int i;
    out[0] = 0;
    for (i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);
        if (!strcmp(argv[i], "--resume")) { i++; continue; }
        if (n + l + 2 >= cap) ex_die(PROG, "the flags are too long to keep in the checkpoint");
        if (n) out[n++] = '\x1f';
        memcpy(out + n, argv[i], l); n += l; out[n] = 0;
    }
}

static void setup(rl *r, int argc, char **argv) {
    args *a = &r->a;
    mr_error err;
    mr_ctx_params cp;
    mr_adamw_cfg oc;
    char b[8600], chars[256], sv[MR_ARGS_MAX];
    int nc, i;
    static char *av[1024];
    int ac = 0;
    uint8_t *ckpt = NULL;
    size_t ckpt_len = 0;
    defaults(a);
    parse(a, argc - 1, argv + 1);
    if (a->resume) {   /* the saved flags, then the ones given now */
        if (mr_read_file(a->resume, &ckpt, &ckpt_len, (size_t)1 << 31, NULL, &err) != MR_OK) ex_die(PROG, err.msg);
        if (mr_ckpt_load_mem(&r->m, &r->vocab, &r->meta, ckpt, ckpt_len, NULL, &err) != MR_OK) {
            snprintf(b, sizeof b, "cannot resume from '%s': %s", a->resume, err.msg); ex_die(PROG, b);
        }
        snprintf(sv, sizeof sv, "%s", r->meta.args);
        if (!strstr(sv, "--task")) { snprintf(b, sizeof b, "'%s' was not written by minrnn-rl (no task in its flags)", a->resume); ex_die(PROG, b); }
        for (i = 0; sv[i] && ac < 1000; ) {
            av[ac++] = sv + i;
            while (sv[i] && sv[i] != '\x1f') i++;
            if (sv[i]) sv[i++] = 0;
        }
        for (i = 1; i < argc && ac < 1023; i++) av[ac++] = argv[i];
        {
            const char *res = a->resume;
            defaults(a);
            parse(a, ac, av);
            a->resume = res;
        }
        join_args(r->args_str, sizeof r->args_str, ac, av);
    } else join_args(r->args_str, sizeof r->args_str, argc - 1, argv + 1);
    if (a->task < 0) ex_die(PROG, "no task: --task copy|reverse|arith or --task-file FILE (see --help)");
    if (!a->sft && !a->model && !a->resume) ex_die(PROG, "GRPO starts from a checkpoint: --model CKPT (make one with --sft first)");
    if (a->min_len > a->max_len) { snprintf(b, sizeof b, "--min-len %d is above --max-len %d", a->min_len, a->max_len); ex_die(PROG, b); }
    if (a->lr < 0) a->lr = a->sft ? 3e-3 : 3e-5;
    if (a->wd < 0) a->wd = a->sft ? 0.01 : 0;
    if (a->eval_every < 0) a->eval_every = a->sft ? 100 : 10;
    if (a->log_every < 0) a->log_every = a->sft ? 20 : 1;
    if (a->prompts * a->group > 4096) ex_die(PROG, "--prompts x --group must be at most 4096 streams");
    task_init(&r->tk, a);
    if (!a->max_new) a->max_new = r->tk.max_answer + 2;
    if (a->max_new > MAXS - 2) a->max_new = MAXS - 2;
    nc = task_chars(&r->tk, chars);

    if (!r->m && a->model) {   /* a checkpoint to start from */
        if (mr_ckpt_load(&r->m, &r->vocab, NULL, a->model, NULL, &err) != MR_OK) { snprintf(b, sizeof b, "cannot load '%s': %s", a->model, err.msg); ex_die(PROG, b); }
    }
    if (r->m) {
        if (r->vocab.kind == MR_VOCAB_BPE) ex_die(PROG, "the checkpoint has a BPE vocabulary: minrnn-rl works with character or byte vocabularies");
        if (mr_model_n_quantized(r->m)) ex_die(PROG, "the checkpoint's weights are int8 (minrnn-convert quantize): training needs the float model");
        for (i = 0; i < nc; i++)
            if (r->vocab.index[(unsigned char)chars[i]] < 0) {
                char what[16];
                if (chars[i] == '\n') snprintf(what, sizeof what, "a newline");
                else snprintf(what, sizeof what, "'%c'", chars[i]);
                snprintf(b, sizeof b, "the checkpoint's vocabulary (%d characters) cannot spell %s, which the task uses", r->vocab.n, what);
                ex_die(PROG, b);
            }
    } else {   /* a new model for the warm start */
        mr_model_cfg cfg;
        mr_rng ir;
        mr_vocab_from_text(&r->vocab, (const uint8_t *)chars, (size_t)nc);
        cfg = mr_model_defaults(r->vocab.n);
        cfg.dim = a->dim; cfg.n_layers = a->depth; cfg.dropout = 0;
        cfg.ffn_hidden = 4 * a->dim;
        if (mr_model_cfg_set_layers(&cfg, a->layers, &err) != MR_OK) ex_die_err(PROG, &err);
        if (!strchr(a->layers, ',') && !strchr(a->layers, '*')) cfg.n_layers = a->depth;
        if (mr_model_cfg_check(&cfg, &err) != MR_OK) ex_die_err(PROG, &err);
        if (mr_model_new(&r->m, &cfg, NULL, &err) != MR_OK) ex_die_err(PROG, &err);
        mr_rng_seed(&ir, a->seed * 7919 + 17);
        mr_model_init_weights(r->m, &ir);
    }
    r->m->cfg.dropout = 0;
    r->nl = r->vocab.index['\n'];

    cp = mr_ctx_defaults();
    cp.n_threads = a->threads; cp.seed = a->seed;
    if (mr_ctx_new(&r->ctx, &cp) != MR_OK) ex_fail(PROG, "cannot create a context (out of memory)");
    oc = mr_adamw_defaults();
    oc.weight_decay = (float)a->wd;
    if (mr_adamw_init(&r->adam, r->m->ps, oc, &err) != MR_OK) ex_die_err(PROG, &err);
    mr_rng_seed(&r->rng, a->seed);
    if (ex_mkdir_p(a->out) != 0) { snprintf(b, sizeof b, "cannot create the directory '%s': %s", a->out, strerror(errno)); ex_fail(PROG, b); }
    if (!a->sft) {   /* the reference: the starting model, kept as DIR/ref.bin so a resumed run has it */
        char path[4096];
        snprintf(path, sizeof path, "%s/ref.bin", a->out);
        if (a->resume) {
            mr_vocab rv;
            if (mr_ckpt_load(&r->ref, &rv, NULL, path, NULL, &err) != MR_OK) { snprintf(b, sizeof b, "cannot load the reference model '%s': %s", path, err.msg); ex_die(PROG, b); }
        } else {
            if (mr_ckpt_save(r->m, &r->vocab, NULL, path, &err) != MR_OK) ex_fail(PROG, err.msg);
            mr_vocab rv;
            if (mr_ckpt_load(&r->ref, &rv, NULL, path, NULL, &err) != MR_OK) ex_fail(PROG, err.msg);
        }
    }
    if (a->resume) {
        mr_train_state ts;
        mr_rng rngs[2];
        memset(&ts, 0, sizeof ts);
        ts.adamw = &r->adam; ts.rngs = rngs; ts.n_rngs = 2;
        if (mr_ckpt_restore_mem(ckpt, ckpt_len, r->m, &ts, &err) != MR_OK) { snprintf(b, sizeof b, "cannot resume from '%s': %s", a->resume, err.msg); ex_die(PROG, b); }
        r->rng = rngs[0]; *mr_ctx_rng(r->ctx) = rngs[1];
        r->step = r->start_step = r->meta.step;
        r->wall0 = r->meta.wall_time;
        mr_buffer_free(ckpt);
    } else memset(&r->meta, 0, sizeof r->meta);
    r->n_held = task_heldout(&r->tk, a->eval_prompts, &r->held);
    if (!r->n_held) ex_die(PROG, "the task has no held-out prompt to evaluate on");
    {
        char path[4096];
        FILE *h;
        snprintf(path, sizeof path, "%s/history.csv", a->out);
        if (a->resume) ex_history_keep(path, (long long)r->step);
        h = fopen(path, a->resume ? "a" : "w");
        if (!h) { snprintf(b, sizeof b, "cannot write '%s': %s", path, strerror(errno)); ex_fail(PROG, b); }
        if (!a->resume)
            fprintf(h, a->sft ? "step,wall_s,loss,lr,heldout_exact\n"
                              : "update,wall_s,reward,exact,kl,clip_frac,zero_var_frac,completion_len,rollout_tok_s,update_tok_s,loss,heldout_exact\n");
        r->hist = h;
    }
    fprintf(stderr, "%s: %s, task %s (%d held-out prompts), model %s d=%d L=%d, %lld params, %d threads\n", PROG, a->sft ? "supervised warm start" : "GRPO",
            a->task == T_FILE ? a->task_file : task_names[a->task], r->n_held, mr_mixer_name(r->m->cfg.mixer[0]), r->m->cfg.dim, r->m->cfg.n_layers,
            (long long)mr_params_count(r->m->ps), mr_ctx_threads(r->ctx));
    if (!a->sft)
        fprintf(stderr, "%s: G %d, %d prompts per update, mu %d, eps %.2g, beta %.2g, %s advantages, %s aggregation, temperature %.2g, lr %.2g, max %d new tokens%s%s\n", PROG,
                a->group, a->prompts, a->mu, a->eps, a->beta, a->scale ? "group-scaled" : "unscaled", a->agg == MR_GRPO_AGG_DR ? "dr_grpo" : "grpo", a->temperature, a->lr,
                a->max_new, a->partial ? ", partial credit" : "", a->filter ? ", groups filtered" : "");
}

int main(int argc, char **argv) {
    static rl r;
    ex_watch_stdout(PROG);
    if (argc >= 2 && !strcmp(argv[1], "--plot")) {   /* redraw DIR/curve.svg from DIR/history.csv */
        char title[4200];
        if (argc != 3) ex_die(PROG, "--plot takes one run directory");
        snprintf(title, sizeof title, "minrnn-rl: %s", argv[2]);
        if (plot_history(argv[2], title)) {
            snprintf(title, sizeof title, "cannot read '%s/history.csv' or write '%s/curve.svg'", argv[2], argv[2]);
            ex_die(PROG, title);
        }
        return EX_OK;
    }
    setup(&r, argc, argv);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    r.t0 = ex_now();
    if (r.a.sft) run_sft(&r); else run_rl(&r);
    save(&r, "model.bin");
    fclose(r.hist);
    {
        double t = elapsed(&r);
        char e[32];
        ex_fmt_time(e, sizeof e, t);
        fprintf(stderr, "%s: %s after %lld %s, %s; saved %s/model.bin\n", PROG, g_stop ? "interrupted" : "done", (long long)r.step, r.a.sft ? "steps" : "updates", e, r.a.out);
    }
    mr_model_free(r.m);
    if (r.ref) mr_model_free(r.ref);
    mr_adamw_free(&r.adam);
    mr_ctx_free(r.ctx);
    return g_stop ? EX_INTERRUPTED : EX_OK;
}
