/* minrnn-train: train a character-level (or byte-level) recurrent language
   model on a text file and save it. Run with --help for the flags. */
#define _POSIX_C_SOURCE 200809L
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "common.h"
#include <math.h>
#include <unistd.h>
#include <sys/stat.h>
#include <signal.h>

static const char *PROG = "minrnn-train";

/* Ctrl-C / SIGTERM: finish the step, save, exit; a second one kills. */
static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) { g_stop = 1; signal(sig, SIG_DFL); }

typedef struct args {
    const char *data, *out, *arch, *schedule, *optimizer, *batching, *scan, *tokenizer, *resume, *ffn_kind, *pos_emb;
    int dim, depth, conv, ffn, batch, chunk, backprop, threads, bytes, tie, gru_norm, heads, kv_heads, max_context;
    double rope_theta;
    long long steps, warmup, eval_every, log_every, save_every, context, stop_at;
    double epochs, time_budget, lr, min_lr_factor, weight_decay, grad_clip, dropout, expansion, val_fraction, beta2;
    unsigned long long seed;
    int eval_windows_max;
} args;

static void usage(void) {
    int k;
    printf(
        "usage: minrnn-train [flags]\n"
        "  --data FILE           training text (default: data/tinyshakespeare.txt)\n"
        "  --out DIR             where model.bin, model_best.bin and history.csv go (default: runs/default)\n"
        "  --bytes               byte vocabulary (256) instead of the file's characters\n"
        "  --tokenizer T.json    train on the ids of a BPE tokenizer (see minrnn-bpe train); --data may\n"
        "                        then also be ids from minrnn-bpe encode --out X.u16 or X.u32\n"
        "  --val-fraction F      last fraction of the file used for validation (default 0.1)\n"
        "model:\n"
        "  --layers SPEC         the mixer of each layer: one kind for all --depth layers, or a comma\n"
        "                        list with kind*N repeats: attn*4 (a GPT), mingru,mingru,attn,mingru\n"
        "                        (a hybrid); --arch is the same flag (default mingru)\n"
        "  --dim D --depth N     width and layers (default 128, 4)\n"
        "  --expansion E         MinGRU/MinLSTM inner width factor (default 1)\n"
        "  --conv K              causal depthwise conv of kernel K before each mixer (default 0: none)\n"
        "  --ffn KIND            the FFN of every layer (default swiglu); a number is the hidden size\n"
        "                        (the older spelling of --ffn-hidden N)\n"
        "  --ffn-hidden N        FFN hidden size (default 4*dim; 0: no FFN)\n"
        "  --heads H             attention heads (default 4; must divide --dim)\n"
        "  --kv-heads K          key/value heads, grouped-query attention (default --heads; must divide it)\n"
        "  --rope-theta T        RoPE base (default 10000; 0: no rotary embedding)\n"
        "  --max-context N       positions one stream holds: the KV cache and the position table\n"
        "                        (default max(1024, --chunk-size)); generation stops with an error there\n"
        "  --pos-emb none|learned  learned absolute position embedding, as the minimal GPT (default none)\n"
        "  --untied              separate output head (default: tied to the embedding)\n"
        "  --dropout P           dropout on residual branches (default auto: 0.1 when the run is projected\n"
        "                        to see the training data more than 12 times, else 0)\n"
        "  --gru-norm            GRU layers: RMS-normalize the hidden state before the recurrent matrix\n"
        "  --scan S              auto | sequential | chunked | log (default auto)\n"
        "batches:\n"
        "  --batch B             rows per step (default 32)\n"
        "  --chunk-size T        tokens per row per step (default 256)\n"
        "  --backprop-tokens P   gradients flow through P tokens; T is split into T/P pieces with the\n"
        "                        state carried (detached) between them (default T)\n"
        "  --batching M          random (random windows, empty state) | stream (each row reads its own\n"
        "                        contiguous stream, state carried across steps: TBPTT) (default random)\n"
        "  --context-length L    stream mode: reset the state every L tokens (default 0: never)\n"
        "optimization:\n"
        "  --steps N | --epochs E | --time-budget SECONDS   when to stop (default: 600 seconds); the\n"
        "                        budget is wall time and includes evaluation and the final save\n"
        "  --lr LR (default 6e-3)  --min-lr-factor F (0.1)  --warmup N (100)  --schedule cosine|linear|constant\n"
        "  --weight-decay W (0.1)  --grad-clip C (1.0, 0: off)  --optimizer adamw|sgd  --beta2 B (0.99)\n"
        "  --seed S  --threads N (default: all cores)\n"
        "  --eval-every N (250)  --log-every N (10)  --save-every N (500; 0: only at the end and on improvement)\n"
        "checkpoints:\n"
        "  --resume FILE         continue the run saved in FILE (DIR/model.bin): weights, optimizer,\n"
        "                        generators, data position and the flags of the run (flags given now\n"
        "                        override them); with the same --threads the run continues bit for bit\n"
        "  --stop-at-step N      stop (and save) after step N, keeping the schedule of --steps/--epochs\n"
        "Ctrl-C (or SIGTERM) stops after the current step and saves DIR/model.bin, ready for --resume.\n");
    printf("layer kinds (--layers):\n");
    for (k = 0; mr_mixer_name(k); k++) printf("  %-20s %s\n", mr_mixer_name(k), mr_mixer_desc(k));
    printf("FFN kinds (--ffn):\n");
    for (k = 0; mr_ffn_name(k); k++) printf("  %-20s %s\n", mr_ffn_name(k), mr_ffn_desc(k));
}

/* The validation loss, windowed or stateful (the library's evaluations);
   NAN with a message when the evaluation fails. */
static double eval_loss(mr_ctx *ctx, mr_model *m, const int32_t *val, int64_t n, int B, int T, int stateful) {
    double loss = NAN;
    mr_status s = stateful ? mr_eval_stateful(ctx, m, val, n, T, &loss) : mr_eval_windows(ctx, m, val, n, B, T, &loss);
    if (s != MR_OK) { fprintf(stderr, "\n%s: evaluation: %s\n", PROG, mr_ctx_error(ctx)); mr_ctx_reset(ctx); return NAN; }
    return loss;
}

static void fmt_time(char *buf, size_t n, double s) {
    if (s < 0 || s != s) s = 0;
    if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(fmod(s, 3600) / 60));
    else snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

static void set_defaults(args *a) {
    a->data = NULL; a->out = "runs/default"; a->arch = "mingru"; a->schedule = "cosine"; a->optimizer = "adamw";
    a->batching = "random"; a->scan = "auto";
    a->ffn_kind = "swiglu"; a->pos_emb = "none"; a->heads = 4; a->kv_heads = 0; a->rope_theta = 10000; a->max_context = 0;
    a->dim = 128; a->depth = 4; a->conv = 0; a->ffn = -1; a->batch = 32; a->chunk = 256; a->backprop = 0; a->threads = 0; a->tie = 1;
    a->steps = 0; a->warmup = 100; a->eval_every = 250; a->log_every = 10; a->save_every = 500; a->context = 0;
    a->epochs = 0; a->time_budget = 0; a->lr = 6e-3; a->min_lr_factor = 0.1; a->weight_decay = 0.1; a->grad_clip = 1.0;
    a->dropout = -1; a->expansion = 1.0; a->val_fraction = 0.1; a->seed = 1337; a->beta2 = 0.99;
}

/* Applies the flags of argv[1..argc-1] over *a. */
static void parse_args(args *a, int argc, char **argv) {
    int i;
    for (i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { usage(); exit(0); }
        else if (!strcmp(f, "--data")) a->data = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--out")) a->out = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--bytes")) a->bytes = 1;
        else if (!strcmp(f, "--tokenizer")) a->tokenizer = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--val-fraction")) a->val_fraction = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0.001, 0.9);
        else if (!strcmp(f, "--arch") || !strcmp(f, "--layers")) a->arch = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--ffn-hidden")) a->ffn = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 0, 1 << 20);
        else if (!strcmp(f, "--heads")) a->heads = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 65536);
        else if (!strcmp(f, "--kv-heads")) a->kv_heads = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 65536);
        else if (!strcmp(f, "--rope-theta")) a->rope_theta = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0, 1e12);
        else if (!strcmp(f, "--max-context")) a->max_context = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 1 << 20);
        else if (!strcmp(f, "--pos-emb")) a->pos_emb = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--dim")) a->dim = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 65536);
        else if (!strcmp(f, "--depth")) a->depth = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, MR_MAX_LAYERS);
        else if (!strcmp(f, "--expansion")) a->expansion = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0.01, 64);
        else if (!strcmp(f, "--conv")) a->conv = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 0, 64);
        else if (!strcmp(f, "--ffn")) {
            const char *v = ex_val(PROG, argc, argv, &i);
            if (*v >= '0' && *v <= '9') a->ffn = (int)ex_int(PROG, f, v, 0, 1 << 20);
            else a->ffn_kind = v;
        }
        else if (!strcmp(f, "--untied")) a->tie = 0;
        else if (!strcmp(f, "--gru-norm")) a->gru_norm = 1;
        else if (!strcmp(f, "--resume")) a->resume = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--stop-at-step")) a->stop_at = ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, (long long)1 << 40);
        else if (!strcmp(f, "--dropout")) a->dropout = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0, 0.99);
        else if (!strcmp(f, "--scan")) a->scan = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--batch")) a->batch = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 1 << 16);
        else if (!strcmp(f, "--chunk-size")) a->chunk = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 1 << 20);
        else if (!strcmp(f, "--backprop-tokens")) a->backprop = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 1 << 20);
        else if (!strcmp(f, "--batching")) a->batching = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--context-length")) a->context = ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 0, (long long)1 << 40);
        else if (!strcmp(f, "--steps")) a->steps = ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, (long long)1 << 40);
        else if (!strcmp(f, "--epochs")) a->epochs = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 1e-6, 1e6);
        else if (!strcmp(f, "--time-budget")) a->time_budget = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0.001, 1e8);
        else if (!strcmp(f, "--lr")) a->lr = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 1e-9, 10);
        else if (!strcmp(f, "--min-lr-factor")) a->min_lr_factor = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0, 1);
        else if (!strcmp(f, "--warmup")) a->warmup = ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 0, (long long)1 << 40);
        else if (!strcmp(f, "--schedule")) a->schedule = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--weight-decay")) a->weight_decay = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0, 10);
        else if (!strcmp(f, "--grad-clip")) a->grad_clip = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0, 1e6);
        else if (!strcmp(f, "--optimizer")) a->optimizer = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--beta2")) a->beta2 = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0, 0.999999);
        else if (!strcmp(f, "--seed")) a->seed = (unsigned long long)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 0, (long long)1 << 62);
        else if (!strcmp(f, "--threads")) a->threads = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 1024);
        else if (!strcmp(f, "--eval-every")) a->eval_every = ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 0, (long long)1 << 40);
        else if (!strcmp(f, "--log-every")) a->log_every = ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, (long long)1 << 40);
        else if (!strcmp(f, "--save-every")) a->save_every = ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 0, (long long)1 << 40);
        else { char b[300]; snprintf(b, sizeof b, "unknown flag '%s' (try --help)", f); ex_die(PROG, b); }
    }
}

static int flag_has_value(const char *f) {
    return strcmp(f, "--bytes") && strcmp(f, "--untied") && strcmp(f, "--gru-norm") && strcmp(f, "--help") && strcmp(f, "-h");
}
static int is_stop_flag(const char *f) { return !strcmp(f, "--steps") || !strcmp(f, "--epochs") || !strcmp(f, "--time-budget"); }
/* The flags of this run as one string (one per line) for the checkpoint:
   the last occurrence of each flag, without --resume and --stop-at-step.
   Returns 0 when they do not fit or hold a newline. */
static int join_args(char *out, size_t cap, int argc, char **argv) {
    size_t n = 0;
    int i, j;
    out[0] = 0;
    for (i = 1; i < argc; i += 1 + (flag_has_value(argv[i]) && i + 1 < argc)) {
        int nv = flag_has_value(argv[i]) && i + 1 < argc, later = 0, k;
        if (!strcmp(argv[i], "--resume") || !strcmp(argv[i], "--stop-at-step")) continue;
        for (j = i + 1 + nv; j < argc; j += 1 + (flag_has_value(argv[j]) && j + 1 < argc))
            if (!strcmp(argv[j], argv[i])) { later = 1; break; }
        if (later) continue;
        for (k = 0; k <= nv; k++) {
            size_t L = strlen(argv[i + k]);
            if (strchr(argv[i + k], '\n') || n + L + 2 > cap) { out[0] = 0; return 0; }
            memcpy(out + n, argv[i + k], L);
            n += L;
            out[n++] = '\n';
            out[n] = 0;
        }
    }
    return 1;
}
/* Splits a joined string back into argv[1..] (in place). */
static int split_args(char *s, char **argv, int max) {
    int n = 1;
    argv[0] = (char *)PROG;
    while (*s && n < max) {
        char *e = strchr(s, '\n');
        if (!e) break;
        *e = 0;
        argv[n++] = s;
        s = e + 1;
    }
    return n;
}

/* Saves DIR/NAME with the whole training state; reports a failure and goes on. */
typedef struct run {
    mr_model *m;
    mr_vocab *vocab;
    mr_adamw *adam;
    mr_sgd *sgd;
    mr_rng *rng;
    mr_ctx *ctx;
    int64_t *pos;
    int batch;
    mr_state *state;
    const char *args;
} run;
static int save_run(const run *r, const char *dir, const char *name, const mr_train_meta *meta_in) {
    char path[4096];
    mr_train_meta *meta = (mr_train_meta *)malloc(sizeof *meta);
    mr_train_state ts;
    mr_rng rngs[2];
    mr_error err;
    mr_status s;
    if (!meta) { fprintf(stderr, "%s: out of memory saving %s\n", PROG, name); return 0; }
    *meta = *meta_in;
    snprintf(meta->args, sizeof meta->args, "%s", r->args);
    meta->created_unix = (int64_t)time(NULL);
    memset(&ts, 0, sizeof ts);
    ts.adamw = r->adam; ts.sgd = r->sgd;
    rngs[0] = *r->rng; rngs[1] = *mr_ctx_rng(r->ctx);
    ts.rngs = rngs; ts.n_rngs = 2;
    ts.data_pos = r->pos; ts.n_data_pos = r->batch;
    ts.state = r->state;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    s = mr_ckpt_save_train(r->m, r->vocab, meta, &ts, path, &err);
    free(meta);
    if (s != MR_OK) { fprintf(stderr, "\n%s: saving %s failed: %s (training goes on; the previous file is intact)\n", PROG, path, err.msg); return 0; }
    return 1;
}

int main(int argc, char **argv) {
    args a;
    int i;
    uint8_t *text = NULL, *ckpt_buf = NULL;
    size_t n_text = 0, ckpt_len = 0;
    mr_error err;
    mr_vocab vocab;
    int32_t *ids = NULL;
    int64_t n_train, n_val;
    mr_model_cfg cfg;
    mr_model *m = NULL;
    mr_ctx *ctx;
    mr_ctx_params cp = mr_ctx_defaults();
    mr_adamw adam;
    mr_sgd sgd;
    mr_state *state = NULL;
    mr_rng rng;
    mr_lr_sched sched;
    int32_t *xin, *xtg;
    int64_t *pos, step = 0, tokens = 0, total_steps, start_step = 0;
    double t0, best_val = INFINITY, last_val = NAN, train_loss_ema = NAN, last_log_t, eval_cost = -1;
    long long tokens_at_log = 0;
    char path[4096];
    FILE *hist;
    int tty = isatty(2), auto_dropout, adam_on;
    mr_bpe *bpe = NULL;
    int64_t n_tokens;
    double val_bytes_per_token = 1.0, t_auto = 0, t_first = 0, t_run, eval_total = 0;
    static mr_train_meta meta0;   /* 4 KiB: not on the stack */
    static char args_now[MR_ARGS_MAX], args_saved[MR_ARGS_MAX];
    run r;
    double t_start = ex_now();   /* the time budget counts from here: loading the data is part of the run */

    memset(&a, 0, sizeof a);
    set_defaults(&a);
    parse_args(&a, argc, argv);
    if (a.resume) {   /* the saved run's flags first, then today's on top */
        static char *av[MR_ARGS_MAX / 2 + 2], *both[MR_ARGS_MAX / 2 + 2 + 1024];
        int ac, k, n = 0, today_stop = 0, today_out = 0;
        const char *resume = a.resume;
        long long stop_at = a.stop_at;
        if (mr_read_file(resume, &ckpt_buf, &ckpt_len, (size_t)-1, NULL, &err) != MR_OK) { fprintf(stderr, "%s: --resume: %s\n", PROG, err.msg); return 2; }
        if (mr_ckpt_load_mem(&m, &vocab, &meta0, ckpt_buf, ckpt_len, NULL, &err) != MR_OK) { fprintf(stderr, "%s: cannot resume from '%s': %s\n", PROG, resume, err.msg); return 2; }
        memcpy(args_saved, meta0.args, sizeof args_saved);
        ac = split_args(args_saved, av, (int)(sizeof av / sizeof av[0]));
        for (k = 1; k < argc; k++) { today_stop |= is_stop_flag(argv[k]); today_out |= !strcmp(argv[k], "--out"); }
        /* the saved flags, less the stop condition when today names one, then today's */
        both[n++] = (char *)PROG;
        for (k = 1; k < ac; k += 1 + (flag_has_value(av[k]) && k + 1 < ac)) {
            if (today_stop && is_stop_flag(av[k])) continue;
            if (!today_out && !strcmp(av[k], "--out")) continue;   /* by default, the run goes on beside its checkpoint */
            both[n++] = av[k];
            if (flag_has_value(av[k]) && k + 1 < ac) both[n++] = av[k + 1];
        }
        if (!today_out) {
            static char dir[4096];
            const char *slash = strrchr(resume, '/');
            snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - resume) : 1, slash ? resume : ".");
            both[n++] = (char *)"--out";
            both[n++] = dir;
        }
        for (k = 1; k < argc && n < (int)(sizeof both / sizeof both[0]); k++) both[n++] = argv[k];
        memset(&a, 0, sizeof a);
        set_defaults(&a);
        parse_args(&a, n, both);
        a.resume = resume;
        a.stop_at = stop_at;
        if (!join_args(args_now, sizeof args_now, n, both)) ex_die(PROG, "the flags do not fit in the checkpoint (4095 bytes, no newlines): shorten the paths");
    } else if (!join_args(args_now, sizeof args_now, argc, argv)) ex_die(PROG, "the flags do not fit in the checkpoint (4095 bytes, no newlines): shorten the paths");
    if (!a.data) {   /* the corpus that ships with the repository, found from the cwd or the binary */
        static char def[4096];
        const char *slash = strrchr(argv[0], '/');
        FILE *f = fopen("data/tinyshakespeare.txt", "rb");
        a.data = "data/tinyshakespeare.txt";
        if (f) fclose(f);
        else if (slash && (size_t)(slash - argv[0]) + 32 < sizeof def) {
            snprintf(def, sizeof def, "%.*s/../data/tinyshakespeare.txt", (int)(slash - argv[0]), argv[0]);
            a.data = def;
        }
    }
    if (a.backprop == 0) a.backprop = a.chunk;
    if (a.chunk % a.backprop) ex_die(PROG, "--chunk-size must be a multiple of --backprop-tokens");
    if (strcmp(a.batching, "random") && strcmp(a.batching, "stream")) ex_die(PROG, "--batching must be random or stream");
    if (strcmp(a.optimizer, "adamw") && strcmp(a.optimizer, "sgd")) ex_die(PROG, "--optimizer must be adamw or sgd");
    if (strcmp(a.schedule, "cosine") && strcmp(a.schedule, "linear") && strcmp(a.schedule, "constant")) ex_die(PROG, "--schedule must be cosine, linear or constant");
    if (!a.steps && !a.epochs && !a.time_budget) a.time_budget = 600;
    adam_on = !strcmp(a.optimizer, "adamw");

    /* data */
    if (mr_read_file(a.data, &text, &n_text, (size_t)1 << 31, NULL, &err) != MR_OK) ex_die(PROG, err.msg);
    if (n_text == 0) { fprintf(stderr, "%s: '%s' is empty\n", PROG, a.data); return 2; }
    if (a.tokenizer || (m && vocab.kind == MR_VOCAB_BPE)) {   /* BPE ids; the tokenizer travels inside the checkpoint */
        size_t n_ids = 0;
        if (m) {
            if (mr_bpe_load_json_mem(&bpe, vocab.bpe_json, vocab.bpe_len, NULL, &err) != MR_OK) { fprintf(stderr, "%s: the checkpoint's tokenizer: %s\n", PROG, err.msg); return 2; }
        } else {
            memset(&vocab, 0, sizeof vocab);
            if (mr_bpe_load_json(&bpe, a.tokenizer, NULL, &err) != MR_OK) { fprintf(stderr, "%s: %s: %s\n", PROG, a.tokenizer, err.msg); return 2; }
            if (mr_bpe_save_json_mem(bpe, &vocab.bpe_json, &vocab.bpe_len, &err) != MR_OK) ex_die(PROG, err.msg);
            vocab.kind = MR_VOCAB_BPE;
            vocab.n = mr_bpe_vocab_size(bpe);
        }
        {
            size_t L = strlen(a.data);
            int width = L > 4 && !strcmp(a.data + L - 4, ".u16") ? 2 : L > 4 && !strcmp(a.data + L - 4, ".u32") ? 4 : 0;
            if (width) {   /* ids already encoded by minrnn-bpe encode --out X.u16|X.u32 (little-endian) */
                size_t k;
                if (n_text % (size_t)width) { fprintf(stderr, "%s: '%s' is not a whole number of %d-byte ids\n", PROG, a.data, width); return 2; }
                n_ids = n_text / (size_t)width;
                if (n_ids > SIZE_MAX / sizeof(int32_t)) ex_die(PROG, "the id file is too large");
                ids = (int32_t *)MINRNN_MALLOC(sizeof(int32_t) * (n_ids ? n_ids : 1), NULL);   /* freed by mr_bpe_free_buffer: same default allocator */
                if (!ids) ex_die(PROG, "out of memory");
                for (k = 0; k < n_ids; k++) {
                    const uint8_t *q = text + k * (size_t)width;
                    uint32_t v = width == 2 ? (uint32_t)(q[0] | q[1] << 8) : (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
                    if (v >= (uint32_t)vocab.n) { fprintf(stderr, "%s: '%s': id %u at position %zu is outside the tokenizer's %d ids\n", PROG, a.data, v, k, vocab.n); return 2; }
                    ids[k] = (int32_t)v;
                }
            } else if (mr_bpe_encode_alloc(bpe, text, n_text, 0, &ids, &n_ids, &err) != MR_OK) ex_die(PROG, err.msg);
        }
        n_tokens = (int64_t)n_ids;
    } else {
        if (!m) { if (a.bytes) mr_vocab_bytes(&vocab); else mr_vocab_from_text(&vocab, text, n_text); }
        if (n_text > SIZE_MAX / sizeof(int32_t)) ex_die(PROG, "the data file is too large");
        ids = (int32_t *)malloc(sizeof(int32_t) * n_text);
        if (!ids) ex_die(PROG, "out of memory");
        if (mr_vocab_encode(&vocab, text, n_text, ids, &err) != MR_OK) {
            fprintf(stderr, "%s: '%s': %s%s\n", PROG, a.data, err.msg, m ? " of the checkpoint" : "");
            return 2;
        }
        n_tokens = (int64_t)n_text;
    }
    if (vocab.n < 2) { fprintf(stderr, "%s: '%s' holds fewer than 2 distinct characters\n", PROG, a.data); return 2; }
    n_val = (int64_t)(n_tokens * a.val_fraction);
    n_train = n_tokens - n_val;
    /* bytes per token of the validation split, to report nats per byte (char) */
    if (bpe) {
        int64_t k;
        size_t nb = 0;
        for (k = n_train; k < n_tokens; k++) { const uint8_t *tb; nb += mr_bpe_token_bytes(bpe, ids[k], &tb); }
        val_bytes_per_token = (double)nb / (double)(n_val > 0 ? n_val : 1);
    }
    if (n_train < a.chunk + 1 || n_val < 2) {
        if (bpe) fprintf(stderr, "%s: '%s' encodes to %lld tokens: too few for chunks of %d tokens plus a validation split "
                         "(need at least %lld tokens; lower --chunk-size)\n", PROG, a.data, (long long)n_tokens, a.chunk,
                         (long long)((a.chunk + 1) / (1.0 - a.val_fraction)) + 2);
        else fprintf(stderr, "%s: '%s' has %zu bytes: too short for chunks of %d tokens plus a validation split "
                     "(need at least %lld bytes; lower --chunk-size)\n", PROG, a.data, n_text, a.chunk,
                     (long long)((a.chunk + 1) / (1.0 - a.val_fraction)) + 2);
        return 2;
    }

    if (!strcmp(a.batching, "stream") && n_train / a.batch < a.chunk + 1) {
        fprintf(stderr, "%s: stream batching needs %d tokens per row and the %lld training tokens give each of the %d rows %lld "
                "(lower --batch or --chunk-size)\n", PROG, a.chunk + 1, (long long)n_train, a.batch, (long long)(n_train / a.batch));
        return 2;
    }

    /* model */
    total_steps = a.steps ? a.steps : a.epochs ? (int64_t)ceil(a.epochs * (double)n_train / ((double)a.batch * a.chunk)) : 0;
    auto_dropout = a.dropout < 0;
    if (!m) {
        cfg = mr_model_defaults(vocab.n);
        cfg.dim = a.dim; cfg.n_layers = a.depth; cfg.expansion = (float)a.expansion; cfg.conv_kernel = a.conv;
        cfg.ffn_hidden = a.ffn < 0 ? 4 * a.dim : a.ffn; cfg.tie_embeddings = a.tie; cfg.gru_hidden_norm = a.gru_norm;
        cfg.dropout = 0;
        if (!auto_dropout) cfg.dropout = (float)a.dropout;
        else if (total_steps) {   /* the length of the run is known now */
            double epochs = (double)total_steps * a.batch * a.chunk / (double)n_train;
            cfg.dropout = epochs > 12 ? 0.1f : 0.0f;
        }
        if (!strcmp(a.scan, "auto")) cfg.scan_algo = MR_SCAN_AUTO;
        else if (!strcmp(a.scan, "sequential")) cfg.scan_algo = MR_SCAN_SEQUENTIAL;
        else if (!strcmp(a.scan, "chunked")) cfg.scan_algo = MR_SCAN_CHUNKED;
        else if (!strcmp(a.scan, "log")) cfg.scan_algo = MR_SCAN_LOG;
        else ex_die(PROG, "--scan must be auto, sequential, chunked or log");
        if (mr_model_cfg_set_layers(&cfg, a.arch, &err) != MR_OK) ex_die(PROG, err.msg);
        if (strchr(a.arch, ',') == NULL && strchr(a.arch, '*') == NULL) cfg.n_layers = a.depth;
        if (mr_model_cfg_set_ffn(&cfg, a.ffn_kind, &err) != MR_OK) ex_die(PROG, err.msg);
        if (!strcmp(a.pos_emb, "learned")) cfg.pos_emb = MR_POS_LEARNED;
        else if (strcmp(a.pos_emb, "none")) ex_die(PROG, "--pos-emb must be none or learned");
        cfg.attn.n_heads = a.heads;
        cfg.attn.n_kv_heads = a.kv_heads ? a.kv_heads : a.heads;
        cfg.attn.rope_theta = (float)a.rope_theta;
        cfg.max_context = a.max_context ? a.max_context : (a.chunk > 1024 ? a.chunk : 1024);
        if ((mr_model_has_attention(&cfg) || cfg.pos_emb) && a.chunk > cfg.max_context) {
            char b[200];
            snprintf(b, sizeof b, "--chunk-size %d is longer than the model's context (--max-context %d)", a.chunk, cfg.max_context);
            ex_die(PROG, b);
        }
        if (mr_model_has_attention(&cfg)) {   /* say which flag is wrong before the library's message */
            char b[200];
            if (cfg.dim % cfg.attn.n_heads) { snprintf(b, sizeof b, "--heads %d does not divide --dim %d", cfg.attn.n_heads, cfg.dim); ex_die(PROG, b); }
            if (cfg.attn.n_heads % cfg.attn.n_kv_heads) { snprintf(b, sizeof b, "--kv-heads %d does not divide --heads %d", cfg.attn.n_kv_heads, cfg.attn.n_heads); ex_die(PROG, b); }
        }
        if (mr_model_new(&m, &cfg, NULL, &err) != MR_OK) ex_die(PROG, err.msg);
        mr_rng_seed(&rng, a.seed);
        mr_model_init_weights(m, &rng);
    } else {
        cfg = m->cfg;
        if (!auto_dropout) m->cfg.dropout = cfg.dropout = (float)a.dropout;
        mr_rng_seed(&rng, a.seed);   /* replaced by the saved generator below */
    }
    cp.n_threads = a.threads;
    cp.seed = a.seed ^ 0x5eedull;
    if (mr_ctx_new(&ctx, &cp) != MR_OK) ex_die(PROG, "cannot create a context");
    if (!a.threads) {   /* record the thread count used, so --resume repeats it (needed for exactness) */
        size_t L = strlen(args_now);
        int th = mr_ctx_threads(ctx);
        if (L + 32 < sizeof args_now) snprintf(args_now + L, sizeof args_now - L, "--threads\n%d\n", th);
    }
    memset(&adam, 0, sizeof adam);
    memset(&sgd, 0, sizeof sgd);
    if (adam_on) {
        mr_adamw_cfg oc = mr_adamw_defaults();
        oc.weight_decay = (float)a.weight_decay;
        oc.beta2 = (float)a.beta2;
        if (mr_adamw_init(&adam, m->ps, oc, &err) != MR_OK) ex_die(PROG, err.msg);
    } else {
        mr_sgd_cfg sc;
        sc.momentum = 0.9f; sc.weight_decay = (float)a.weight_decay; sc.nesterov = 0;
        if (mr_sgd_init(&sgd, m->ps, sc, &err) != MR_OK) ex_die(PROG, err.msg);
    }
    if (!strcmp(a.batching, "stream") || a.backprop < a.chunk)
        if (mr_state_new(&state, m, a.batch, &err) != MR_OK) ex_die(PROG, err.msg);
    xin = (int32_t *)malloc(sizeof(int32_t) * (size_t)a.batch * a.chunk);
    xtg = (int32_t *)malloc(sizeof(int32_t) * (size_t)a.batch * a.chunk);
    pos = (int64_t *)malloc(sizeof(int64_t) * (size_t)a.batch);
    if (!xin || !xtg || !pos) ex_die(PROG, "out of memory for the batch");
    for (i = 0; i < a.batch; i++) pos[i] = (n_train / a.batch) * i;
    r.m = m; r.vocab = &vocab; r.adam = adam_on ? &adam : NULL; r.sgd = adam_on ? NULL : &sgd; r.rng = &rng; r.ctx = ctx;
    r.pos = pos; r.batch = a.batch; r.state = state; r.args = args_now;
    if (ckpt_buf) {   /* optimizer, generators, data position, carried state */
        mr_train_state ts;
        mr_rng rngs[2];
        memset(&ts, 0, sizeof ts);
        ts.adamw = r.adam; ts.sgd = r.sgd;
        ts.rngs = rngs; ts.n_rngs = 2;
        ts.data_pos = pos; ts.n_data_pos = a.batch;
        ts.state = state;
        if (mr_ckpt_restore_mem(ckpt_buf, ckpt_len, m, &ts, &err) != MR_OK) {
            fprintf(stderr, "%s: cannot resume from '%s': %s (were --batch, --optimizer or --batching changed?)\n", PROG, a.resume, err.msg);
            return 2;
        }
        rng = rngs[0];
        *mr_ctx_rng(ctx) = rngs[1];
        step = start_step = meta0.step;
        tokens = meta0.tokens_seen;
        best_val = meta0.best_val_loss;
        last_val = meta0.val_loss;
        train_loss_ema = meta0.train_loss;
        mr_buffer_free(ckpt_buf);
        ckpt_buf = NULL;
    }

    sched.kind = !strcmp(a.schedule, "cosine") ? MR_SCHED_COSINE : !strcmp(a.schedule, "linear") ? MR_SCHED_LINEAR : MR_SCHED_CONSTANT;
    sched.base_lr = (float)a.lr; sched.warmup_steps = a.warmup; sched.min_factor = (float)a.min_lr_factor;
    sched.total_steps = total_steps ? total_steps : 1000000;

    /* output */
    {   /* mkdir -p */
        char dir[4096];
        size_t k, n = strlen(a.out);
        if (n >= sizeof dir) ex_die(PROG, "--out path too long");
        memcpy(dir, a.out, n + 1);
        for (k = 1; k <= n; k++)
            if (dir[k] == '/' || dir[k] == 0) { char c = dir[k]; dir[k] = 0; mkdir(dir, 0777); dir[k] = c; }
    }
    snprintf(path, sizeof path, "%s/history.csv", a.out);
    if (a.resume) {   /* rows after the checkpoint's step (written before a crash) are dropped */
        uint8_t *h = NULL;
        size_t hn = 0;
        if (mr_read_file(path, &h, &hn, (size_t)1 << 30, NULL, NULL) == MR_OK) {
            FILE *f = fopen(path, "w");
            char *line = (char *)h;
            while (f && *line) {
                char *e = strchr(line, '\n');
                size_t L = e ? (size_t)(e - line) + 1 : strlen(line);
                if (line[0] < '0' || line[0] > '9' || strtoll(line, NULL, 10) <= (long long)start_step) fwrite(line, 1, L, f);
                line += L;
            }
            if (f) fclose(f);
            mr_buffer_free(h);
        }
    }
    hist = fopen(path, a.resume ? "a" : "w");
    if (!hist) { fprintf(stderr, "%s: cannot write '%s'\n", PROG, path); return 2; }
    if (!a.resume) fprintf(hist, "step,tokens,elapsed_s,lr,train_loss,grad_norm,val_loss,val_bpc,val_stateful_loss\n");

    fprintf(stderr, "%s: %s, %zu bytes (%lld train, %lld val), vocab %d; model %s d=%d L=%d, %lld params; "
            "batch %d x %d, %d threads%s\n", PROG, a.data, n_text, (long long)n_train, (long long)n_val, vocab.n,
            a.arch, cfg.dim, cfg.n_layers, (long long)mr_params_count(m->ps), a.batch, a.chunk, mr_ctx_threads(ctx),
            a.resume ? ", resumed" : "");
    if (a.resume) fprintf(stderr, "%s: resuming at step %lld (%lld tokens, %.0fs)\n", PROG, (long long)step, (long long)tokens, meta0.wall_time);
    if (auto_dropout && (total_steps || a.resume)) fprintf(stderr, "%s: dropout %.2g (auto)\n", PROG, (double)m->cfg.dropout);

    t0 = t_start - (a.resume ? meta0.wall_time : 0);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    last_log_t = t_run = ex_now();
    tokens_at_log = (long long)tokens;
    for (;;) {
        double elapsed = ex_now() - t0, frac, loss_sum = 0, lr;
        float gnorm;
        int b;
        int64_t s_len = n_train / a.batch;
        if (total_steps && step >= total_steps) break;
        if (a.stop_at && step >= a.stop_at) break;
        if (a.time_budget && elapsed >= a.time_budget) break;
        if (g_stop) { fprintf(stderr, "%s%s: interrupted at step %lld: saving\n", tty ? "\r\n" : "", PROG, (long long)step); break; }
        if (a.time_budget && step > start_step) {   /* wall time: leave room for the final evaluation and save */
            /* seconds per step, not counting the first (the arena grows then) nor evaluations */
            double per_step = step - start_step >= 2 ? (ex_now() - t_first - eval_total) / (double)(step - start_step - 1) : ex_now() - t_run;
            /* the final evaluation: the windowed pass (as measured, or about a third of a
               training step per batch of windows) plus the stateful pass (as long again) */
            double reserve = eval_cost >= 0 ? 2.0 * eval_cost : 2.0 / 3.0 * (double)n_val / ((double)a.batch * a.chunk) * per_step;
            if (elapsed + per_step + reserve > a.time_budget) break;
        }
        /* auto dropout for a time budget: decided from the measured speed after 20 steps */
        /* (absolute steps, so a resumed run decides as the uninterrupted one; once decided, CONF keeps it) */
        if (auto_dropout && !total_steps && start_step < 25 && step == (start_step > 5 ? start_step : 5)) t_auto = ex_now();
        if (auto_dropout && !total_steps && start_step < 25 && step == 25) {
            double per_step = (ex_now() - t_auto) / (double)(25 - (start_step > 5 ? start_step : 5)), epochs = (double)tokens + (a.time_budget - elapsed) / per_step * a.batch * a.chunk;
            epochs /= (double)n_train;
            m->cfg.dropout = epochs > 12 ? 0.1f : 0.0f;
            fprintf(stderr, "%s%s: projected %.1f epochs: dropout %.2g (auto)%s\n", tty ? "\r" : "", PROG, epochs, (double)m->cfg.dropout, tty ? "          " : "");
        }
        /* learning rate: by steps, or by the fraction of the time budget */
        if (total_steps) lr = mr_lr_at(&sched, step);
        else {
            mr_lr_sched s2 = sched;
            frac = elapsed / a.time_budget;
            s2.total_steps = 1000000;
            s2.warmup_steps = 0;
            lr = step < a.warmup ? a.lr * (double)(step + 1) / (double)a.warmup : mr_lr_at(&s2, (int64_t)(frac * 1000000));
        }
        /* batch */
        for (b = 0; b < a.batch; b++) {
            int64_t o;
            if (!strcmp(a.batching, "random")) o = (int64_t)mr_rng_below(&rng, (uint64_t)(n_train - a.chunk - 1) + 1);
            else {
                int64_t seg0 = (n_train / a.batch) * b;
                if (pos[b] < seg0 || pos[b] + a.chunk + 1 > seg0 + s_len || pos[b] + a.chunk + 1 > n_train) pos[b] = seg0;
                o = pos[b];
                pos[b] += a.chunk;
            }
            memcpy(xin + (size_t)b * a.chunk, ids + o, sizeof(int32_t) * (size_t)a.chunk);
            memcpy(xtg + (size_t)b * a.chunk, ids + o + 1, sizeof(int32_t) * (size_t)a.chunk);
        }
        if (state) {
            int reset = !strcmp(a.batching, "random");
            if (a.context > 0 && (step * a.chunk) % a.context < a.chunk && step > 0) reset = 1;
            if (state->max_pos && state->pos + a.chunk > state->max_pos) reset = 1;   /* attention: the cache is full */
            if (reset) mr_state_reset(state);
        }
        if (mr_train_step(ctx, m, adam_on ? &adam : NULL, adam_on ? NULL : &sgd, xin, xtg, a.batch, a.chunk, a.backprop, state,
                          (float)lr, (float)a.grad_clip, &loss_sum, &gnorm) != MR_OK) {
            if (mr_ctx_status(ctx) == MR_ERR_RANGE) fprintf(stderr, "\n%s: the loss diverged at step %lld (lower --lr)\n", PROG, (long long)step + 1);
            else fprintf(stderr, "\n%s: %s\n", PROG, mr_ctx_error(ctx));
            return 1;
        }
        step++;
        tokens += (int64_t)a.batch * a.chunk;
        if (step == start_step + 1) t_first = ex_now();
        train_loss_ema = train_loss_ema != train_loss_ema ? loss_sum : 0.95 * train_loss_ema + 0.05 * loss_sum;
        if (step % a.log_every == 0) {
            double now = ex_now(), tps = (double)(tokens - tokens_at_log) / (now - last_log_t), el = now - t0, eta;
            char etab[32];
            eta = total_steps ? (now - last_log_t) / (double)a.log_every * (double)(total_steps - step) : a.time_budget - el;
            fmt_time(etab, sizeof etab, eta);
            fprintf(stderr, "%sstep %lld  loss %.4f  gnorm %.3f  lr %.2e  %.1fk tok/s  ETA %s%s", tty ? "\r" : "",
                    (long long)step, train_loss_ema, gnorm, lr, tps / 1000.0, etab, tty ? "   " : "\n");
            /* the loss with 9 significant digits: enough to compare runs bit for bit */
            fprintf(hist, "%lld,%lld,%.3f,%.9g,%.9g,%.9g,,,\n", (long long)step, (long long)tokens, el, lr, loss_sum, gnorm);
            fflush(hist);
            tokens_at_log = (long long)tokens;
            last_log_t = now;
        }
        meta0.step = step; meta0.tokens_seen = tokens; meta0.epoch = tokens / n_train; meta0.train_loss = train_loss_ema;
        meta0.best_val_loss = best_val;
        if (a.eval_every && step % a.eval_every == 0) {
            double t_e = ex_now();
            last_val = eval_loss(ctx, m, ids + n_train, n_val, a.batch, a.chunk, 0);
            eval_cost = ex_now() - t_e;
            fprintf(stderr, "%sstep %lld  val %.4f nats/char (%.4f bits/char)%s  [eval %.1fs]%s\n", tty ? "\r" : "", (long long)step,
                    last_val / val_bytes_per_token, last_val / val_bytes_per_token / log(2.0), bpe ? " per byte" : "", eval_cost, tty ? "          " : "");
            fprintf(hist, "%lld,%lld,%.3f,%.6g,,,%.5f,%.5f,\n", (long long)step, (long long)tokens, ex_now() - t0, lr, last_val, last_val / val_bytes_per_token / log(2.0));
            fflush(hist);
            if (last_val < best_val) {
                best_val = last_val;
                meta0.val_loss = last_val; meta0.best_val_loss = best_val; meta0.wall_time = ex_now() - t0;
                save_run(&r, a.out, "model_best.bin", &meta0);
            }
            eval_total += ex_now() - t_e;
        }
        if (a.save_every && step % a.save_every == 0) {
            meta0.val_loss = last_val; meta0.wall_time = ex_now() - t0;
            save_run(&r, a.out, "model.bin", &meta0);
        }
    }
    {
        double el, vw = last_val, vs = NAN, t_e = ex_now();
        /* stopped to be resumed (Ctrl-C, --stop-at-step before the end): save at once, with no final
           evaluation, so the resumed run's records match an uninterrupted one */
        int paused = g_stop || (a.stop_at && step >= a.stop_at && !(total_steps && step >= total_steps));
        if (!paused) {
            vw = eval_loss(ctx, m, ids + n_train, n_val, a.batch, a.chunk, 0);
            vs = eval_loss(ctx, m, ids + n_train, n_val, a.batch, a.chunk, 1);
        }
        el = ex_now() - t0;
        fprintf(stderr, "%sdone: %lld steps, %lld tokens in %.1fs of wall time (final evaluation %.1fs)\n", tty ? "\r\n" : "", (long long)step,
                (long long)tokens, el, ex_now() - t_e);
        if (paused) printf("%s at step %lld; continue with --resume %s/model.bin\n", g_stop ? "interrupted" : "stopped", (long long)step, a.out);
        else if (bpe) printf("final val loss %.4f nats/token = %.4f nats/byte (%.4f bits/byte, %.3f bytes/token) in windows of %d tokens; stateful pass %.4f nats/byte\n",
                        vw, vw / val_bytes_per_token, vw / val_bytes_per_token / log(2.0), val_bytes_per_token, a.chunk, vs / val_bytes_per_token);
        else printf("final val loss %.4f nats/char (%.4f bits/char) in windows of %d; stateful pass %.4f nats/char\n", vw,
                    vw / log(2.0), a.chunk, vs);
        if (!paused) fprintf(hist, "%lld,%lld,%.3f,,%.5f,,%.5f,%.5f,%.5f\n", (long long)step, (long long)tokens, el, train_loss_ema, vw, vw / val_bytes_per_token / log(2.0), vs);
        fclose(hist);
        meta0.step = step; meta0.tokens_seen = tokens; meta0.epoch = tokens / n_train; meta0.train_loss = train_loss_ema;
        meta0.val_loss = vw; meta0.wall_time = el;
        meta0.best_val_loss = !paused && vw < best_val ? vw : best_val;
        if (!save_run(&r, a.out, "model.bin", &meta0)) return 1;
        if (!paused && vw < best_val) save_run(&r, a.out, "model_best.bin", &meta0);
        printf("saved %s/model.bin\n", a.out);
    }
    free(xin); free(xtg); free(pos); mr_buffer_free(text);
    if (bpe) { mr_bpe_free_buffer(bpe, ids); if (vocab.bpe_json && !a.resume) mr_bpe_free_buffer(bpe, vocab.bpe_json); mr_bpe_free(bpe); } else free(ids);
    if (a.resume) mr_vocab_free(&vocab);
    if (adam_on) mr_adamw_free(&adam); else mr_sgd_free(&sgd);
    mr_state_free(state);
    mr_model_free(m);
    mr_ctx_free(ctx);
    return 0;
}
