/* minrnn-train: train a character-level (or byte-level) recurrent language
   model on a text file and save it. Run with --help for the flags. */
#define _POSIX_C_SOURCE 200809L
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "common.h"
#include "dp.h"
#include "plot.h"
#include <math.h>
#include <unistd.h>
#include <sys/stat.h>
#include <signal.h>

#ifdef MINRNN_MPI
static const char *PROG = "minrnn-train-mpi";
#else
static const char *PROG = "minrnn-train";
#endif

/* --preset shakespeare-15m: the 15-minute recipe (every configuration tried is in BENCHMARKS.md) */
#define PRESET_SHAKESPEARE_15M "--time-budget 900 --layers gru --dim 112"

/* Ctrl-C / SIGTERM: finish the step, save, exit; a second one kills. */
static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) { g_stop = 1; signal(sig, SIG_DFL); }

typedef struct args {
    const char *data, *out, *arch, *schedule, *optimizer, *batching, *scan, *tokenizer, *resume, *ffn_kind, *pos_emb;
    int dim, depth, conv, ffn, batch, chunk, backprop, threads, bytes, tie, gru_norm, heads, kv_heads, max_context;
    int rwkv_head, rwkv_mix_rank, rwkv_decay_rank;
    int experts, top_k, moe_renorm;
    double moe_balance, moe_zloss;
    double rope_theta;
    long long steps, warmup, eval_every, log_every, save_every, context, stop_at;
    double epochs, time_budget, lr, min_lr_factor, weight_decay, grad_clip, dropout, expansion, val_fraction, beta2;
    unsigned long long seed;
    int eval_windows_max;
    int reproducible, shards, depth_given, no_special;
    double dp_timeout;
    double eval_every_s;   /* --eval-every Ns: evaluate when N seconds of wall time have passed since the last */
    int print_params;      /* --print-params: print the model's parameter counts and exit */
    long long fault_nan;   /* --fault-nan-at STEP (testing): the weights become NaN before that step */
} args;

static void usage(void) {
    int k;
    printf(
        "usage: minrnn-train [flags]\n"
        "  --data FILE           training text (default: data/tinyshakespeare.txt)\n"
        "  --out DIR             where model.bin, model_best.bin, history.csv and loss.svg go (default: runs/default)\n"
        "  --bytes               byte vocabulary (256) instead of the file's characters\n"
        "  --tokenizer T.json    train on the ids of a BPE tokenizer (see minrnn-bpe train); --data may\n"
        "                        then also be ids from minrnn-bpe encode --out X.u16 or X.u32\n"
        "  --special-tokens on|off  with a BPE tokenizer: its added tokens written in the text\n"
        "                        (<|endoftext|>, ...) are their ids (on, the default, as Hugging Face does) or text\n"
        "  --val-fraction F      last fraction of the file used for validation (default 0.1)\n"
        "model:\n"
        "  --layers SPEC         the mixer of each layer: one kind for all --depth layers, or a comma\n"
        "                        list with kind*N repeats: attn*4 (a GPT), mingru,mingru,attn,mingru\n"
        "                        (a hybrid); a+b puts two mixers in one block, each with its own\n"
        "                        norm and residual: gru+rwkv6*2; --arch is the same flag (default mingru)\n"
        "  --dim D --depth N     width and layers (default 128, 4)\n"
        "  --expansion E         MinGRU/MinLSTM inner width factor (default 1)\n"
        "  --conv K              causal depthwise conv of kernel K before each mixer (default 0: none)\n"
        "  --ffn KIND            the FFN of every layer (default swiglu); a number is the hidden size\n"
        "                        (the older spelling of --ffn-hidden N)\n"
        "  --ffn-hidden N        FFN hidden size (default 4*dim; rwkv-cmix: 3.5*dim rounded down to a\n"
        "                        multiple of 32; 0: no FFN)\n"
        "  --heads H             attention heads (default 4; must divide --dim)\n"
        "  --kv-heads K          key/value heads, grouped-query attention (default --heads; must divide it)\n"
        "  --rope-theta T        RoPE base (default 10000; 0: no rotary embedding)\n"
        "  --rwkv-head-size N    rwkv6 layers: channels per wkv head (default 64; must divide --dim)\n"
        "  --rwkv-ranks R1,R2    rwkv6 layers: ranks of the token-shift and decay LoRAs (default 32,64)\n"
        "  --experts E           --ffn moe: experts per layer, expert 0 shared and E-1 routed (default 4)\n"
        "  --top-k K             --ffn moe: routed experts per token (default 1); each expert's hidden\n"
        "                        is --ffn-hidden, by default 4 d / (1 + K): the active FFN weights of the\n"
        "                        dense default\n"
        "  --moe-renorm          --ffn moe: gates are a softmax over the chosen K (default: router probabilities)\n"
        "  --moe-balance C       --ffn moe: load-balance loss coefficient (default 1e-2)\n"
        "  --moe-zloss C         --ffn moe: router z-loss coefficient (default 1e-3)\n"
        "  --max-context N       positions one stream holds: the KV cache and the position table\n"
        "                        (default max(1024, --chunk-size), with --pos-emb learned --chunk-size: the\n"
        "                        positions it trains); generation stops with an error there\n"
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
        "  --eval-every N (250; Ns: every N seconds of wall time)  --log-every N (10)\n"
        "  --save-every N (500; 0: only at the end and on improvement)\n"
        "  --print-params        print the model's parameter counts (params P active A) and exit\n"
        "  --fault-nan-at STEP   testing: make the weights NaN before step STEP (the run must fail cleanly)\n"
        "presets:\n"
        "  --preset shakespeare-15m  " PRESET_SHAKESPEARE_15M "\n"
        "                        the 15-minute recipe for tiny Shakespeare on 2 cores; flags given\n"
        "                        with it override its own\n"
        "checkpoints:\n"
        "  --resume FILE         continue the run saved in FILE (DIR/model.bin): weights, optimizer,\n"
        "                        generators, data position and the flags of the run (flags given now\n"
        "                        override them); with the same --threads the run continues bit for bit\n"
        "  --stop-at-step N      stop (and save) after step N, keeping the schedule of --steps/--epochs\n"
        "Ctrl-C (or SIGTERM) stops after the current step and saves DIR/model.bin, ready for --resume.\n"
        "data parallelism (minrnn-train-mpi under mpirun; see the README, \"Training on several machines\"):\n"
        "  each of the P processes computes the gradients of its B/P rows of every global batch (the same\n"
        "  batches whatever P), the gradients are averaged, every process applies the same update\n"
        "  --reproducible         an exact, order-independent gradient sum over S shards of the batch: the\n"
        "                         weights are bit-identical for any P dividing S (and in minrnn-train)\n"
        "  --shards S             the batch is S shards (a multiple of P dividing --batch), each with its\n"
        "                         own dropout generator: with dropout, runs with another P draw the same\n"
        "                         masks only with the same S (default P; with --reproducible lcm(4, P))\n"
        "  --dp-timeout SECONDS   a process waiting this long for the others stops the job (default 300)\n");
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

/* The windowed validation loss with the windows split across the processes
   (each evaluates a contiguous run of them; the sums are combined, and rank
   0's result is everyone's). */
static double eval_split(mr_ctx *ctx, mr_model *m, const int32_t *val, int64_t n, int B, int T) {
    int64_t nwin, rem, w0, w1, len;
    double v[3] = {0, 0, 0}, out;
    if (dp_size == 1) return eval_loss(ctx, m, val, n, B, T, 0);
    nwin = (n - 1) / T; rem = (n - 1) - nwin * T;
    w0 = nwin * dp_rank / dp_size; w1 = nwin * (dp_rank + 1) / dp_size;
    len = (w1 - w0) * T + (dp_rank == dp_size - 1 ? rem : 0);
    if (len >= 1) {
        double l = eval_loss(ctx, m, val + w0 * T, len + 1, B, T, 0);
        if (l != l) v[2] = 1;
        else { v[0] = l * (double)len; v[1] = (double)len; }
    }
    dp_sum_f64(v, 3);
    out = v[2] > 0 || v[1] <= 0 ? NAN : v[0] / v[1];
    dp_bcast(&out, sizeof out);
    return out;
}


static void set_defaults(args *a) {
    a->data = NULL; a->out = "runs/default"; a->arch = "mingru"; a->schedule = "cosine"; a->optimizer = "adamw";
    a->batching = "random"; a->scan = "auto";
    a->ffn_kind = "swiglu"; a->pos_emb = "none"; a->heads = 4; a->kv_heads = 0; a->rope_theta = 10000; a->max_context = 0;
    a->rwkv_head = 64; a->rwkv_mix_rank = 32; a->rwkv_decay_rank = 64;
    a->experts = 4; a->top_k = 1; a->moe_renorm = 0; a->moe_balance = 1e-2; a->moe_zloss = 1e-3;
    a->dim = 128; a->depth = 4; a->conv = 0; a->ffn = -1; a->batch = 32; a->chunk = 256; a->backprop = 0; a->threads = 0; a->tie = 1;
    a->steps = 0; a->warmup = 100; a->eval_every = 250; a->log_every = 10; a->save_every = 500; a->context = 0;
    a->epochs = 0; a->time_budget = 0; a->lr = 6e-3; a->min_lr_factor = 0.1; a->weight_decay = 0.1; a->grad_clip = 1.0;
    a->dropout = -1; a->expansion = 1.0; a->val_fraction = 0.1; a->seed = 1337; a->beta2 = 0.99;
    a->dp_timeout = 300;
}

/* Applies the flags of argv[1..argc-1] over *a. */
static void parse_args(args *a, int argc, char **argv) {
    int i;
    for (i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { usage(); exit(0); }
        if (ex_is_version(f)) { ex_version(PROG); exit(0); }
        else if (!strcmp(f, "--data")) a->data = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--out")) a->out = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--bytes")) a->bytes = 1;
        else if (!strcmp(f, "--tokenizer")) a->tokenizer = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--special-tokens")) a->no_special = !ex_on_off(PROG, f, ex_val(PROG, argc, argv, &i));
        else if (!strcmp(f, "--val-fraction")) a->val_fraction = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0.001, 0.9);
        else if (!strcmp(f, "--arch") || !strcmp(f, "--layers")) a->arch = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--ffn-hidden")) a->ffn = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 0, 1 << 20);
        else if (!strcmp(f, "--heads")) a->heads = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 65536);
        else if (!strcmp(f, "--kv-heads")) a->kv_heads = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 65536);
        else if (!strcmp(f, "--rope-theta")) a->rope_theta = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0, 1e12);
        else if (!strcmp(f, "--rwkv-head-size")) a->rwkv_head = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 1024);
        else if (!strcmp(f, "--rwkv-ranks")) {
            const char *v = ex_val(PROG, argc, argv, &i);
            char *e1 = NULL, *e2 = NULL;
            long r1 = strtol(v, &e1, 10), r2 = e1 && *e1 == ',' ? strtol(e1 + 1, &e2, 10) : 0;
            if (e1 == v || !e2 || *e2 || r1 < 1 || r1 > 4096 || r2 < 1 || r2 > 4096) ex_die(PROG, "--rwkv-ranks wants R1,R2 (each 1 to 4096), as 32,64");
            a->rwkv_mix_rank = (int)r1; a->rwkv_decay_rank = (int)r2;
        }
        else if (!strcmp(f, "--experts")) a->experts = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 2, MR_MOE_MAX_EXPERTS);
        else if (!strcmp(f, "--top-k")) a->top_k = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, MR_MOE_MAX_EXPERTS - 1);
        else if (!strcmp(f, "--moe-renorm")) a->moe_renorm = 1;
        else if (!strcmp(f, "--moe-balance")) a->moe_balance = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0, 1000);
        else if (!strcmp(f, "--moe-zloss")) a->moe_zloss = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 0, 1000);
        else if (!strcmp(f, "--max-context")) a->max_context = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 1 << 20);
        else if (!strcmp(f, "--pos-emb")) a->pos_emb = ex_val(PROG, argc, argv, &i);
        else if (!strcmp(f, "--dim")) a->dim = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 65536);
        else if (!strcmp(f, "--depth")) { a->depth = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, MR_MAX_LAYERS); a->depth_given = 1; }
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
        else if (!strcmp(f, "--eval-every")) {   /* N steps, or Ns seconds */
            const char *v = ex_val(PROG, argc, argv, &i);
            size_t L = strlen(v);
            if (L > 1 && v[L - 1] == 's') {
                char b[64];
                if (L >= sizeof b) ex_die(PROG, "--eval-every wants N steps or Ns seconds, as 250 or 30s");
                memcpy(b, v, L - 1); b[L - 1] = 0;
                a->eval_every_s = ex_num(PROG, f, b, 0.001, 1e8);
                a->eval_every = 0;
            } else { a->eval_every = ex_int(PROG, f, v, 0, (long long)1 << 40); a->eval_every_s = 0; }
        }
        else if (!strcmp(f, "--print-params")) a->print_params = 1;
        else if (!strcmp(f, "--fault-nan-at")) a->fault_nan = ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, (long long)1 << 40);
        else if (!strcmp(f, "--log-every")) a->log_every = ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, (long long)1 << 40);
        else if (!strcmp(f, "--reproducible")) a->reproducible = 1;
        else if (!strcmp(f, "--shards")) a->shards = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 1, 1 << 16);
        else if (!strcmp(f, "--dp-timeout")) a->dp_timeout = ex_num(PROG, f, ex_val(PROG, argc, argv, &i), 1, 1e7);
        else if (!strcmp(f, "--save-every")) a->save_every = ex_int(PROG, f, ex_val(PROG, argc, argv, &i), 0, (long long)1 << 40);
        else { char b[300]; snprintf(b, sizeof b, "unknown flag '%s' (try --help)", f); ex_die(PROG, b); }
    }
}

static int flag_has_value(const char *f) {
    return strcmp(f, "--bytes") && strcmp(f, "--untied") && strcmp(f, "--reproducible") && strcmp(f, "--gru-norm") && strcmp(f, "--moe-renorm") && strcmp(f, "--print-params") &&
           strcmp(f, "--help") && strcmp(f, "-h") && strcmp(f, "--version") && strcmp(f, "-V");
}
/* The flags that shape the model or its vocabulary: a resumed run takes them
   from its checkpoint, so naming one with --resume is refused, not ignored. */
static int is_model_flag(const char *f) {
    static const char *const k[] = {"--dim", "--depth", "--layers", "--arch", "--expansion", "--conv", "--ffn", "--ffn-hidden", "--heads",
                                    "--kv-heads", "--rope-theta", "--rwkv-head-size", "--rwkv-ranks", "--experts", "--top-k", "--moe-renorm",
                                    "--moe-balance", "--moe-zloss", "--max-context", "--pos-emb", "--untied", "--gru-norm", "--bytes",
                                    "--tokenizer", "--scan", "--seed"};
    size_t i;
    for (i = 0; i < sizeof k / sizeof k[0]; i++) if (!strcmp(f, k[i])) return 1;
    return 0;
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
    if (dp_rank != 0) { free(meta); return 1; }   /* rank 0 writes the files */
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

/* Everything a training run holds, phase to phase. */
typedef struct trainer {
    int argc;
    char **argv;
    args a;
    uint8_t *text, *ckpt_buf;
    size_t n_text, ckpt_len;
    mr_vocab vocab;
    int32_t *ids;
    int64_t n_train, n_val;
    mr_model_cfg cfg;
    mr_model *m;
    mr_ctx *ctx;
    mr_ctx_params cp;
    mr_adamw adam;
    mr_sgd sgd;
    mr_state *state;
    mr_rng rng;
    mr_lr_sched sched;
    int32_t *xin, *xtg;
    int64_t *pos, step, tokens, total_steps, start_step;
    double t0, best_val, last_val, train_loss_ema, last_log_t, eval_cost;
    long long tokens_at_log;
    FILE *hist;
    int moe_routed;   /* routed experts when a layer is MoE, else 0 */
    int tty, auto_dropout, adam_on;
    mr_bpe *bpe;
    int64_t n_tokens;
    double val_bytes_per_token, t_auto, t_first, t_run, eval_total;
    mr_train_meta meta0;
    char args_now[MR_ARGS_MAX], args_saved[MR_ARGS_MAX];
    run r;
    double last_eval_t;   /* when the last periodic evaluation ended (--eval-every Ns) */
    double t_start;   /* the time budget counts from here: loading the data is part of the run */
    double stateful_cost;   /* the final stateful pass, estimated at the first evaluation (< 0: not yet) */
    /* data parallelism: the batch is S shards of R rows; this process computes ns of them
       (shards dp_rank * ns .. + ns - 1), each with its own carried state */
    int sharded, shards, ns, rows;
    mr_state **sh;          /* the shards' states (NULL: no carried state); tr->state holds the whole batch for checkpoints */
    float *sh_grad;         /* --reproducible: each local shard's gradient */
    int64_t *acc;           /* --reproducible: the fixed-point sum */
    double *sh_loss;        /* every shard's loss, by shard */
    double t_reduce;        /* seconds in the gradient reduction */
    long long n_reduce;
} trainer;

/* Rows [row0, row0 + part->batch) of the whole batch's state: copied into
   part (to_part), or back from it. */
static void state_rows(mr_state *full, mr_state *part, int row0, int to_part) {
    int i;
    for (i = 0; i < full->n_blocks; i++) {
        size_t per = (size_t)(full->blocks[i].n / full->batch);
        float *f = full->blocks[i].data + (size_t)row0 * per, *q = part->blocks[i].data;
        memcpy(to_part ? q : f, to_part ? f : q, sizeof(float) * per * (size_t)part->batch);
    }
    if (to_part) { part->pos = full->pos; part->valid = full->valid; }
    else { full->pos = part->pos; full->valid = part->valid; }
}
/* The whole batch's carried state on rank 0 (for a checkpoint), from every
   process's shards; every rank calls it at the same points. */
static void sync_state(trainer *tr) {
    size_t fpr, local, o = 0;
    float *pack, *all = NULL;
    int i, j, r, per_rank = tr->a.batch / dp_size;
    if (!tr->sh) return;
    fpr = mr_state_floats(tr->state) / (size_t)tr->a.batch;
    local = fpr * (size_t)per_rank;
    pack = (float *)malloc(sizeof(float) * local);
    if (dp_rank == 0) all = (float *)malloc(sizeof(float) * local * (size_t)dp_size);
    if (!pack || (dp_rank == 0 && !all)) { fprintf(dp_err, "%s: rank %d: out of memory for the state\n", PROG, dp_rank); dp_abort(1); }
    for (i = 0; i < tr->state->n_blocks; i++) {   /* block by block, each block's rows shard by shard */
        size_t per = (size_t)(tr->state->blocks[i].n / tr->state->batch);
        for (j = 0; j < tr->ns; j++) { memcpy(pack + o, tr->sh[j]->blocks[i].data, sizeof(float) * per * (size_t)tr->rows); o += per * (size_t)tr->rows; }
    }
    dp_gather(pack, sizeof(float) * local, all);
    if (dp_rank == 0)
        for (r = 0; r < dp_size; r++) {
            const float *q = all + (size_t)r * local;
            for (i = 0; i < tr->state->n_blocks; i++) {
                size_t per = (size_t)(tr->state->blocks[i].n / tr->state->batch), k = per * (size_t)per_rank;
                memcpy(tr->state->blocks[i].data + (size_t)r * k, q, sizeof(float) * k);
                q += k;
            }
        }
    tr->state->pos = tr->sh[0]->pos; tr->state->valid = tr->sh[0]->valid;
    free(pack); free(all);
}

/* Every process applies the same update to the same weights, so they stay
   equal; across machines whose CPUs run different kernels (AVX-512 on one,
   AVX2 on another) the optimizer's rounding may differ. Before every save
   the processes compare a hash of their weights and moments, and a process
   that drifted takes rank 0's (with a warning). */
static void check_replicas(trainer *tr) {
    uint64_t h = 1469598103934665603ull, c[2];
    size_t k, n = tr->m->ps->numel;
    const float *bufs[3];
    int b;
    if (dp_size == 1) return;
    bufs[0] = tr->m->ps->data;
    bufs[1] = tr->adam_on ? tr->adam.m : tr->sgd.buf;
    bufs[2] = tr->adam_on ? tr->adam.v : NULL;
    for (b = 0; b < 3; b++) {
        if (!bufs[b]) continue;
        for (k = 0; k < n; k++) { uint32_t u; memcpy(&u, bufs[b] + k, 4); h = (h ^ u) * 1099511628211ull; }
    }
    c[0] = h; c[1] = ~h;
    dp_max_u64(c, 2);
    if (c[0] == ~c[1]) return;   /* max == min: all equal */
    fprintf(stderr, "\n%s: warning: the processes' weights drifted apart (CPUs with different kernels?); rank 0's are restored everywhere\n", PROG);
    dp_bcast(tr->m->ps->data, sizeof(float) * n);
    if (tr->adam_on) { dp_bcast(tr->adam.m, sizeof(float) * n); dp_bcast(tr->adam.v, sizeof(float) * n); }
    else if (tr->sgd.buf) dp_bcast(tr->sgd.buf, sizeof(float) * n);
}
/* Before every save (all processes, at the same points). */
static void before_save(trainer *tr) { check_replicas(tr); sync_state(tr); }

/* the flags: parsed, and on --resume the saved run's flags under today's; the checkpoint is read and its model loaded */
static int phase_args(trainer *tr) {
    mr_error err;
    memset(&tr->a, 0, sizeof tr->a);
    set_defaults(&tr->a);
    parse_args(&tr->a, tr->argc, tr->argv);
    if (tr->a.resume) {   /* the saved run's flags first, then today's on top */
        static char *av[MR_ARGS_MAX / 2 + 2], *both[MR_ARGS_MAX / 2 + 2 + 1024];
        int ac, k, n = 0, today_stop = 0, today_out = 0;
        const char *resume = tr->a.resume;
        long long stop_at = tr->a.stop_at;
        for (k = 1; k < tr->argc; k += 1 + (flag_has_value(tr->argv[k]) && k + 1 < tr->argc))
            if (is_model_flag(tr->argv[k])) {
                char b[400];
                snprintf(b, sizeof b, "%s cannot change a resumed run: the model and its vocabulary come from '%s' (drop %s, or start a new run without --resume)",
                         tr->argv[k], resume, tr->argv[k]);
                ex_die(PROG, b);
            }
        if (dp_read_file(resume, &tr->ckpt_buf, &tr->ckpt_len, (size_t)-1, &err) != MR_OK) { fprintf(stderr, "%s: --resume: %s\n", PROG, err.msg); return 2; }
        if (mr_ckpt_load_mem(&tr->m, &tr->vocab, &tr->meta0, tr->ckpt_buf, tr->ckpt_len, NULL, &err) != MR_OK) { fprintf(stderr, "%s: cannot resume from '%s': %s\n", PROG, resume, err.msg); return 2; }
        memcpy(tr->args_saved, tr->meta0.args, sizeof tr->args_saved);
        ac = split_args(tr->args_saved, av, (int)(sizeof av / sizeof av[0]));
        for (k = 1; k < tr->argc; k++) { today_stop |= is_stop_flag(tr->argv[k]); today_out |= !strcmp(tr->argv[k], "--out"); }
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
        for (k = 1; k < tr->argc && n < (int)(sizeof both / sizeof both[0]); k++) both[n++] = tr->argv[k];
        memset(&tr->a, 0, sizeof tr->a);
        set_defaults(&tr->a);
        parse_args(&tr->a, n, both);
        tr->a.resume = resume;
        tr->a.stop_at = stop_at;
        if (!join_args(tr->args_now, sizeof tr->args_now, n, both)) ex_die(PROG, "the flags do not fit in the checkpoint (4095 bytes, no newlines): shorten the paths");
    } else if (!join_args(tr->args_now, sizeof tr->args_now, tr->argc, tr->argv)) ex_die(PROG, "the flags do not fit in the checkpoint (4095 bytes, no newlines): shorten the paths");
    if (!tr->a.out[0]) ex_die(PROG, "--out is empty: name a directory (the default is runs/default)");
    if (!tr->a.data) {   /* the corpus that ships with the repository, found from the cwd or the binary */
        static char def[4096];
        const char *slash = strrchr(tr->argv[0], '/');
        FILE *f = fopen("data/tinyshakespeare.txt", "rb");
        tr->a.data = "data/tinyshakespeare.txt";
        if (f) fclose(f);
        else if (slash && (size_t)(slash - tr->argv[0]) + 32 < sizeof def) {
            snprintf(def, sizeof def, "%.*s/../data/tinyshakespeare.txt", (int)(slash - tr->argv[0]), tr->argv[0]);
            tr->a.data = def;
        }
    }
    if (tr->a.backprop == 0) tr->a.backprop = tr->a.chunk;
    if (tr->a.chunk % tr->a.backprop) ex_die(PROG, "--chunk-size must be a multiple of --backprop-tokens");
    if (strcmp(tr->a.batching, "random") && strcmp(tr->a.batching, "stream")) ex_die(PROG, "--batching must be random or stream");
    if (strcmp(tr->a.optimizer, "adamw") && strcmp(tr->a.optimizer, "sgd")) ex_die(PROG, "--optimizer must be adamw or sgd");
    if (strcmp(tr->a.schedule, "cosine") && strcmp(tr->a.schedule, "linear") && strcmp(tr->a.schedule, "constant")) ex_die(PROG, "--schedule must be cosine, linear or constant");
    if (!tr->a.steps && !tr->a.epochs && !tr->a.time_budget) tr->a.time_budget = 600;
    tr->adam_on = !strcmp(tr->a.optimizer, "adamw");

    return 0;
}

/* the text: read, tokenized (characters, bytes or BPE), split into training and validation */
static int phase_data(trainer *tr) {
    mr_error err;
    /* data */
    if (dp_read_file(tr->a.data, &tr->text, &tr->n_text, (size_t)1 << 31, &err) != MR_OK) ex_die_err(PROG, &err);
    if (tr->n_text == 0) { fprintf(stderr, "%s: '%s' is empty\n", PROG, tr->a.data); return 2; }
    if (tr->a.tokenizer || (tr->m && tr->vocab.kind == MR_VOCAB_BPE)) {   /* BPE ids; the tokenizer travels inside the checkpoint */
        size_t n_ids = 0;
        if (tr->m) {
            if (mr_bpe_load_json_mem(&tr->bpe, tr->vocab.bpe_json, tr->vocab.bpe_len, NULL, &err) != MR_OK) { fprintf(stderr, "%s: the checkpoint's tokenizer: %s\n", PROG, err.msg); return 2; }
        } else {
            memset(&tr->vocab, 0, sizeof tr->vocab);
            uint8_t *js = NULL;
            size_t jn = 0;
            mr_status st = dp_read_file(tr->a.tokenizer, &js, &jn, (size_t)INT32_MAX, &err);
            if (st == MR_OK) st = mr_bpe_load_json_mem(&tr->bpe, (const char *)js, jn, NULL, &err);
            mr_buffer_free(js);
            if (st != MR_OK) { fprintf(stderr, "%s: %s: %s\n", PROG, tr->a.tokenizer, err.msg); return 2; }
            if (mr_bpe_save_json_mem(tr->bpe, &tr->vocab.bpe_json, &tr->vocab.bpe_len, &err) != MR_OK) ex_die_err(PROG, &err);
            tr->vocab.kind = MR_VOCAB_BPE;
            tr->vocab.n = mr_bpe_vocab_size(tr->bpe);
        }
        {
            size_t L = strlen(tr->a.data);
            int width = L > 4 && !strcmp(tr->a.data + L - 4, ".u16") ? 2 : L > 4 && !strcmp(tr->a.data + L - 4, ".u32") ? 4 : 0;
            if (width) {   /* ids already encoded by minrnn-bpe encode --out X.u16|X.u32 (little-endian) */
                size_t k;
                if (tr->n_text % (size_t)width) { fprintf(stderr, "%s: '%s' is not a whole number of %d-byte ids\n", PROG, tr->a.data, width); return 2; }
                n_ids = tr->n_text / (size_t)width;
                if (n_ids > SIZE_MAX / sizeof(int32_t)) ex_die(PROG, "the id file is too large");
                tr->ids = (int32_t *)MINRNN_MALLOC(sizeof(int32_t) * (n_ids ? n_ids : 1), NULL);   /* freed by mr_bpe_free_buffer: same default allocator */
                if (!tr->ids) ex_fail(PROG, "out of memory");
                for (k = 0; k < n_ids; k++) {
                    const uint8_t *q = tr->text + k * (size_t)width;
                    uint32_t v = width == 2 ? (uint32_t)(q[0] | q[1] << 8) : (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
                    if (v >= (uint32_t)tr->vocab.n) { fprintf(stderr, "%s: '%s': id %u at position %zu is outside the tokenizer's %d ids\n", PROG, tr->a.data, v, k, tr->vocab.n); return 2; }
                    tr->ids[k] = (int32_t)v;
                }
            } else if (mr_bpe_encode_alloc(tr->bpe, tr->text, tr->n_text, !tr->a.no_special, &tr->ids, &n_ids, &err) != MR_OK) ex_die_err(PROG, &err);
        }
        tr->n_tokens = (int64_t)n_ids;
    } else {
        if (!tr->m) { if (tr->a.bytes) mr_vocab_bytes(&tr->vocab); else mr_vocab_from_text(&tr->vocab, tr->text, tr->n_text); }
        if (tr->n_text > SIZE_MAX / sizeof(int32_t)) ex_die(PROG, "the data file is too large");
        tr->ids = (int32_t *)malloc(sizeof(int32_t) * tr->n_text);
        if (!tr->ids) ex_fail(PROG, "out of memory");
        if (mr_vocab_encode(&tr->vocab, tr->text, tr->n_text, tr->ids, &err) != MR_OK) {
            fprintf(stderr, "%s: '%s': %s%s\n", PROG, tr->a.data, err.msg, tr->m ? " of the checkpoint" : "");
            return 2;
        }
        tr->n_tokens = (int64_t)tr->n_text;
    }
    if (tr->vocab.n < 2) { fprintf(stderr, "%s: '%s' holds fewer than 2 distinct characters\n", PROG, tr->a.data); return 2; }
    tr->n_val = (int64_t)(tr->n_tokens * tr->a.val_fraction);
    tr->n_train = tr->n_tokens - tr->n_val;
    /* bytes per token of the validation split, to report nats per byte (char) */
    if (tr->bpe) {
        int64_t k;
        size_t nb = 0;
        for (k = tr->n_train; k < tr->n_tokens; k++) { const uint8_t *tb; nb += mr_bpe_token_bytes(tr->bpe, tr->ids[k], &tb); }
        tr->val_bytes_per_token = (double)nb / (double)(tr->n_val > 0 ? tr->n_val : 1);
    }
    if (tr->n_train < tr->a.chunk + 1 || tr->n_val < 2) {
        if (tr->bpe) fprintf(stderr, "%s: '%s' encodes to %lld tokens: too few for chunks of %d tokens plus a validation split "
                         "(need at least %lld tokens; lower --chunk-size)\n", PROG, tr->a.data, (long long)tr->n_tokens, tr->a.chunk,
                         (long long)((tr->a.chunk + 1) / (1.0 - tr->a.val_fraction)) + 2);
        else fprintf(stderr, "%s: '%s' has %zu bytes: too short for chunks of %d tokens plus a validation split "
                     "(need at least %lld bytes; lower --chunk-size)\n", PROG, tr->a.data, tr->n_text, tr->a.chunk,
                     (long long)((tr->a.chunk + 1) / (1.0 - tr->a.val_fraction)) + 2);
        return 2;
    }

    if (!strcmp(tr->a.batching, "stream") && tr->n_train / tr->a.batch < tr->a.chunk + 1) {
        fprintf(stderr, "%s: stream batching needs %d tokens per row and the %lld training tokens give each of the %d rows %lld "
                "(lower --batch or --chunk-size)\n", PROG, tr->a.chunk + 1, (long long)tr->n_train, tr->a.batch, (long long)(tr->n_train / tr->a.batch));
        return 2;
    }

    return 0;
}

/* the model: built from the flags (or the resumed one), and the context */
/* --print-params: the counts of cfg (as minrnn-compare reads them), then exit 0 */
static void print_params_exit(const mr_model_cfg *cfg) {
    printf("params %lld active %lld\n", (long long)mr_model_cfg_param_count(cfg), (long long)mr_model_cfg_active_param_count(cfg));
    fflush(stdout);
    if (ex_before_exit) ex_before_exit();
    exit(EX_OK);
}
static int phase_model(trainer *tr) {
    mr_error err;
    /* model */
    tr->total_steps = tr->a.steps ? tr->a.steps : tr->a.epochs ? (int64_t)ceil(tr->a.epochs * (double)tr->n_train / ((double)tr->a.batch * tr->a.chunk)) : 0;
    tr->auto_dropout = tr->a.dropout < 0;
    if (!tr->m) {
        tr->cfg = mr_model_defaults(tr->vocab.n);
        tr->cfg.dim = tr->a.dim; tr->cfg.n_layers = tr->a.depth; tr->cfg.expansion = (float)tr->a.expansion; tr->cfg.conv_kernel = tr->a.conv;
        tr->cfg.ffn_hidden = tr->a.ffn >= 0 ? tr->a.ffn
                           : !strcmp(tr->a.ffn_kind, "moe") ? (4 * tr->a.dim / (1 + tr->a.top_k) > 0 ? 4 * tr->a.dim / (1 + tr->a.top_k) : 1)   /* the dense default's active weights */
                           : strcmp(tr->a.ffn_kind, "rwkv-cmix") ? 4 * tr->a.dim
                           : (int)(3.5 * tr->a.dim) >= 32 ? (int)(3.5 * tr->a.dim) / 32 * 32 : (int)(3.5 * tr->a.dim);   /* RWKV-LM's dim_ffn */
        tr->cfg.tie_embeddings = tr->a.tie; tr->cfg.gru_hidden_norm = tr->a.gru_norm;
        tr->cfg.dropout = 0;
        if (!tr->auto_dropout) tr->cfg.dropout = (float)tr->a.dropout;
        else if (tr->total_steps) {   /* the length of the run is known now */
            double epochs = (double)tr->total_steps * tr->a.batch * tr->a.chunk / (double)tr->n_train;
            tr->cfg.dropout = epochs > 12 ? 0.1f : 0.0f;
        }
        if (!strcmp(tr->a.scan, "auto")) tr->cfg.scan_algo = MR_SCAN_AUTO;
        else if (!strcmp(tr->a.scan, "sequential")) tr->cfg.scan_algo = MR_SCAN_SEQUENTIAL;
        else if (!strcmp(tr->a.scan, "chunked")) tr->cfg.scan_algo = MR_SCAN_CHUNKED;
        else if (!strcmp(tr->a.scan, "log")) tr->cfg.scan_algo = MR_SCAN_LOG;
        else ex_die(PROG, "--scan must be auto, sequential, chunked or log");
        if (mr_model_cfg_set_layers(&tr->cfg, tr->a.arch, &err) != MR_OK) ex_die_err(PROG, &err);
        if (strchr(tr->a.arch, ',') == NULL && strchr(tr->a.arch, '*') == NULL) tr->cfg.n_layers = tr->a.depth;
        else if (tr->a.depth_given && tr->cfg.n_layers != tr->a.depth) {
            char b[300];
            snprintf(b, sizeof b, "--layers '%s' lists %d layers but --depth is %d (a list sets the depth: drop --depth or make them agree)",
                     tr->a.arch, tr->cfg.n_layers, tr->a.depth);
            ex_die(PROG, b);
        }
        if (mr_model_cfg_set_ffn(&tr->cfg, tr->a.ffn_kind, &err) != MR_OK) ex_die_err(PROG, &err);
        if (!strcmp(tr->a.pos_emb, "learned")) tr->cfg.pos_emb = MR_POS_LEARNED;
        else if (strcmp(tr->a.pos_emb, "none")) ex_die(PROG, "--pos-emb must be none or learned");
        tr->cfg.attn.n_heads = tr->a.heads;
        tr->cfg.attn.n_kv_heads = tr->a.kv_heads ? tr->a.kv_heads : tr->a.heads;
        tr->cfg.attn.rope_theta = (float)tr->a.rope_theta;
        tr->cfg.rwkv.head_size = tr->a.rwkv_head;
        tr->cfg.rwkv.mix_rank = tr->a.rwkv_mix_rank; tr->cfg.rwkv.decay_rank = tr->a.rwkv_decay_rank;
        tr->cfg.moe.n_experts = tr->a.experts; tr->cfg.moe.top_k = tr->a.top_k; tr->cfg.moe.renorm = tr->a.moe_renorm;
        tr->cfg.moe.balance = (float)tr->a.moe_balance; tr->cfg.moe.zloss = (float)tr->a.moe_zloss;
        if (!strcmp(tr->a.ffn_kind, "moe") && tr->a.top_k >= tr->a.experts) {
            char b[200];
            snprintf(b, sizeof b, "--top-k %d must be less than --experts %d (expert 0 is shared; %d can be routed)", tr->a.top_k, tr->a.experts, tr->a.experts - 1);
            ex_die(PROG, b);
        }
        /* a learned position table only learns the rows training reaches (--chunk-size): rows past them would
           stay at their initial values and ruin a longer stream, so by default the context ends there */
        tr->cfg.max_context = tr->a.max_context ? tr->a.max_context
                            : tr->cfg.pos_emb == MR_POS_LEARNED ? tr->a.chunk : (tr->a.chunk > 1024 ? tr->a.chunk : 1024);
        if ((mr_model_has_attention(&tr->cfg) || tr->cfg.pos_emb) && tr->a.chunk > tr->cfg.max_context) {
            char b[200];
            snprintf(b, sizeof b, "--chunk-size %d is longer than the model's context (--max-context %d)", tr->a.chunk, tr->cfg.max_context);
            ex_die(PROG, b);
        }
        if (mr_model_has_attention(&tr->cfg)) {   /* say which flag is wrong before the library's message */
            char b[200];
            if (tr->cfg.dim % tr->cfg.attn.n_heads) { snprintf(b, sizeof b, "--heads %d does not divide --dim %d", tr->cfg.attn.n_heads, tr->cfg.dim); ex_die(PROG, b); }
            if (tr->cfg.attn.n_heads % tr->cfg.attn.n_kv_heads) { snprintf(b, sizeof b, "--kv-heads %d does not divide --heads %d", tr->cfg.attn.n_kv_heads, tr->cfg.attn.n_heads); ex_die(PROG, b); }
        }
        if (mr_model_has_mixer(&tr->cfg, MR_MIXER_RWKV6) && tr->cfg.rwkv.head_size > 0 && tr->cfg.dim % tr->cfg.rwkv.head_size) {
            char b[200];
            snprintf(b, sizeof b, "--rwkv-head-size %d does not divide --dim %d", tr->cfg.rwkv.head_size, tr->cfg.dim);
            ex_die(PROG, b);
        }
        if (tr->a.print_params) {   /* the counts, without allocating the model */
            if (mr_model_cfg_check(&tr->cfg, &err) != MR_OK) ex_die_err(PROG, &err);
            print_params_exit(&tr->cfg);
        }
        if (mr_model_new(&tr->m, &tr->cfg, NULL, &err) != MR_OK) ex_die_err(PROG, &err);
        mr_rng_seed(&tr->rng, tr->a.seed);
        mr_model_init_weights(tr->m, &tr->rng);
    } else {
        tr->cfg = tr->m->cfg;
        if (tr->a.print_params) print_params_exit(&tr->cfg);
        if (!tr->auto_dropout) tr->m->cfg.dropout = tr->cfg.dropout = (float)tr->a.dropout;
        mr_rng_seed(&tr->rng, tr->a.seed);   /* replaced by the saved generator below */
    }
    dp_bcast(tr->m->ps->data, sizeof(float) * tr->m->ps->numel);   /* rank 0's weights everywhere */
    dp_timeout = tr->a.dp_timeout;
    tr->sharded = tr->a.reproducible || dp_size > 1 || tr->a.shards;
    {   /* S shards of the batch, a multiple of P: default lcm(4, P) with --reproducible, else P */
        int S = tr->a.shards;
        if (!S && tr->a.reproducible) { S = dp_size; while (S % 4) S += dp_size; }
        if (!S) S = dp_size;
        if (S % dp_size) { char b[200]; snprintf(b, sizeof b, "--shards %d is not a multiple of the %d processes", S, dp_size); ex_die(PROG, b); }
        tr->shards = S;
        if (!tr->a.shards && tr->a.reproducible) {   /* recorded, so a resumed run (with any P dividing it) sums the same shards */
            size_t L = strlen(tr->args_now);
            if (L + 32 < sizeof tr->args_now) snprintf(tr->args_now + L, sizeof tr->args_now - L, "--shards\n%d\n", S);
        }
    }
    if (tr->a.batch % tr->shards) {
        char b[240];
        if (tr->shards != dp_size) snprintf(b, sizeof b, "--batch %d is not a multiple of the %d shards (set --batch or --shards)", tr->a.batch, tr->shards);
        else snprintf(b, sizeof b, "--batch %d (the global batch) is not a multiple of the %d processes", tr->a.batch, dp_size);
        ex_die(PROG, b);
    }
    tr->ns = tr->shards / dp_size;
    tr->rows = tr->a.batch / tr->shards;
    tr->cp.n_threads = tr->a.threads;
    if (!tr->a.threads && dp_local > 1) {   /* the cores shared by the processes of this machine */
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        tr->cp.n_threads = nc / dp_local > 1 ? (int)(nc / dp_local) : 1;
    }
    tr->cp.seed = tr->a.seed ^ 0x5eedull;
    if (mr_ctx_new(&tr->ctx, &tr->cp) != MR_OK) ex_fail(PROG, "cannot create a context (out of memory)");
    if (!tr->a.threads) {   /* record the thread count used, so --resume repeats it (needed for exactness) */
        size_t L = strlen(tr->args_now);
        int th = mr_ctx_threads(tr->ctx);
        if (L + 32 < sizeof tr->args_now) snprintf(tr->args_now + L, sizeof tr->args_now - L, "--threads\n%d\n", th);
    }
    return 0;
}

/* the optimizer, the carried state, the batch buffers; on --resume their saved values; the schedule */
static int phase_optim(trainer *tr) {
    int i;
    mr_error err;
    memset(&tr->adam, 0, sizeof tr->adam);
    memset(&tr->sgd, 0, sizeof tr->sgd);
    if (tr->adam_on) {
        mr_adamw_cfg oc = mr_adamw_defaults();
        oc.weight_decay = (float)tr->a.weight_decay;
        oc.beta2 = (float)tr->a.beta2;
        if (mr_adamw_init(&tr->adam, tr->m->ps, oc, &err) != MR_OK) ex_die_err(PROG, &err);
    } else {
        mr_sgd_cfg sc;
        sc.momentum = 0.9f; sc.weight_decay = (float)tr->a.weight_decay; sc.nesterov = 0;
        if (mr_sgd_init(&tr->sgd, tr->m->ps, sc, &err) != MR_OK) ex_die_err(PROG, &err);
    }
    if (!strcmp(tr->a.batching, "stream") || tr->a.backprop < tr->a.chunk)
        if (mr_state_new(&tr->state, tr->m, tr->a.batch, &err) != MR_OK) ex_die_err(PROG, &err);
    if (tr->sharded) {
        tr->sh_loss = (double *)calloc((size_t)tr->shards, sizeof(double));
        if (!tr->sh_loss) ex_fail(PROG, "out of memory");
        if (tr->state) {
            tr->sh = (mr_state **)calloc((size_t)tr->ns, sizeof *tr->sh);
            if (!tr->sh) ex_fail(PROG, "out of memory");
            for (i = 0; i < tr->ns; i++) if (mr_state_new(&tr->sh[i], tr->m, tr->rows, &err) != MR_OK) ex_die_err(PROG, &err);
        }
        if (tr->a.reproducible) {
            tr->sh_grad = (float *)malloc(sizeof(float) * tr->m->ps->numel * (size_t)tr->ns);
            tr->acc = (int64_t *)malloc(sizeof(int64_t) * tr->m->ps->numel);
            if (!tr->sh_grad || !tr->acc) ex_fail(PROG, "out of memory for the shards' gradients");
        }
    }
    tr->xin = (int32_t *)malloc(sizeof(int32_t) * (size_t)tr->a.batch * tr->a.chunk);
    tr->xtg = (int32_t *)malloc(sizeof(int32_t) * (size_t)tr->a.batch * tr->a.chunk);
    tr->pos = (int64_t *)malloc(sizeof(int64_t) * (size_t)tr->a.batch);
    if (!tr->xin || !tr->xtg || !tr->pos) ex_fail(PROG, "out of memory for the batch");
    for (i = 0; i < tr->a.batch; i++) tr->pos[i] = (tr->n_train / tr->a.batch) * i;
    tr->r.m = tr->m; tr->r.vocab = &tr->vocab; tr->r.adam = tr->adam_on ? &tr->adam : NULL; tr->r.sgd = tr->adam_on ? NULL : &tr->sgd; tr->r.rng = &tr->rng; tr->r.ctx = tr->ctx;
    tr->r.pos = tr->pos; tr->r.batch = tr->a.batch; tr->r.state = tr->state; tr->r.args = tr->args_now;
    if (tr->ckpt_buf) {   /* optimizer, generators, data position, carried state */
        mr_train_state ts;
        mr_rng rngs[2];
        memset(&ts, 0, sizeof ts);
        ts.adamw = tr->r.adam; ts.sgd = tr->r.sgd;
        ts.rngs = rngs; ts.n_rngs = 2;
        ts.data_pos = tr->pos; ts.n_data_pos = tr->a.batch;
        ts.state = tr->state;
        if (mr_ckpt_restore_mem(tr->ckpt_buf, tr->ckpt_len, tr->m, &ts, &err) != MR_OK) {
            fprintf(stderr, "%s: cannot resume from '%s': %s (were --batch, --optimizer or --batching changed?)\n", PROG, tr->a.resume, err.msg);
            return 2;
        }
        tr->rng = rngs[0];
        *mr_ctx_rng(tr->ctx) = rngs[1];
        if (tr->sh) for (i = 0; i < tr->ns; i++) state_rows(tr->state, tr->sh[i], (dp_rank * tr->ns + i) * tr->rows, 1);
        tr->step = tr->start_step = tr->meta0.step;
        tr->tokens = tr->meta0.tokens_seen;
        tr->best_val = tr->meta0.best_val_loss;
        tr->last_val = tr->meta0.val_loss;
        tr->train_loss_ema = tr->meta0.train_loss;
        mr_buffer_free(tr->ckpt_buf);
        tr->ckpt_buf = NULL;
    }

    tr->sched.kind = !strcmp(tr->a.schedule, "cosine") ? MR_SCHED_COSINE : !strcmp(tr->a.schedule, "linear") ? MR_SCHED_LINEAR : MR_SCHED_CONSTANT;
    tr->sched.base_lr = (float)tr->a.lr; tr->sched.warmup_steps = tr->a.warmup; tr->sched.min_factor = (float)tr->a.min_lr_factor;
    tr->sched.total_steps = tr->total_steps ? tr->total_steps : 1000000;
    {
        int l;
        for (l = 0; l < tr->m->cfg.n_layers; l++)
            if (mr_model_ffn_kind(&tr->m->cfg, l) == MR_FFN_MOE) tr->moe_routed = tr->m->cfg.moe.n_experts - 1;
    }

    return 0;
}

/* the output directory and history.csv (a resumed run drops rows after its checkpoint) */
static int phase_output(trainer *tr) {
    char path[4096];
    if (dp_rank != 0) {   /* rank 0 writes the files */
        tr->hist = fopen("/dev/null", "w");
        if (!tr->hist) { fprintf(dp_err, "%s: rank %d: cannot open /dev/null\n", PROG, dp_rank); return 1; }
        return 0;
    }
    /* output */
    if (strlen(tr->a.out) >= 4096) ex_die(PROG, "--out path too long");
    (void)ex_mkdir_p(tr->a.out);   /* a directory that cannot be made is reported by the open below */
    snprintf(path, sizeof path, "%s/history.csv", tr->a.out);
    if (tr->a.resume) ex_history_keep(path, (long long)tr->start_step);
    tr->hist = fopen(path, tr->a.resume ? "a" : "w");
    if (!tr->hist) { fprintf(stderr, "%s: cannot write '%s': %s\n", PROG, path, strerror(errno)); return 1; }
    if (!tr->a.resume) {
        fprintf(tr->hist, "step,tokens,elapsed_s,lr,train_loss,grad_norm,val_loss,val_bpc,val_stateful_loss");
        if (tr->moe_routed) {   /* the MoE layers' router statistics, averaged over the log interval and the layers */
            int e;
            fprintf(tr->hist, ",moe_balance,moe_zloss");
            for (e = 1; e <= tr->moe_routed; e++) fprintf(tr->hist, ",moe_load_%d", e);
        }
        fputc('\n', tr->hist);
    }

    {
        char act[64] = "";
        if (tr->moe_routed) snprintf(act, sizeof act, " (%lld active per token)", (long long)mr_model_cfg_active_param_count(&tr->m->cfg));
        fprintf(stderr, "%s: %s, %zu bytes (%lld train, %lld val), vocab %d; model %s d=%d L=%d, %lld params%s; "
                "batch %d x %d, %d threads%s\n", PROG, tr->a.data, tr->n_text, (long long)tr->n_train, (long long)tr->n_val, tr->vocab.n,
                tr->a.arch, tr->cfg.dim, tr->cfg.n_layers, (long long)mr_params_count(tr->m->ps), act, tr->a.batch, tr->a.chunk, mr_ctx_threads(tr->ctx),
                tr->a.resume ? ", resumed" : "");
    }
    if (tr->moe_routed)
        fprintf(stderr, "%s: MoE: %d experts of hidden %d (1 shared, %d routed), top-%d%s, balance %g, z-loss %g\n", PROG, tr->m->cfg.moe.n_experts,
                tr->m->cfg.ffn_hidden, tr->moe_routed, tr->m->cfg.moe.top_k, tr->m->cfg.moe.renorm ? " renormalised" : "",
                (double)tr->m->cfg.moe.balance, (double)tr->m->cfg.moe.zloss);
    if (dp_size > 1 || tr->a.reproducible)
        fprintf(stderr, "%s: %d processes (%d on this machine), each %d of the %d rows of a step%s\n", PROG, dp_size, dp_local,
                tr->a.batch / dp_size, tr->a.batch, tr->a.reproducible ? "; reproducible: an exact sum over shards" : "");
    if (tr->a.reproducible) fprintf(stderr, "%s: reproducible: %d shards of %d rows, summed exactly\n", PROG, tr->shards, tr->rows);
    if (tr->a.resume) fprintf(stderr, "%s: resuming at step %lld (%lld tokens, %.0fs)\n", PROG, (long long)tr->step, (long long)tr->tokens, tr->meta0.wall_time);
    if (tr->auto_dropout && (tr->total_steps || tr->a.resume)) fprintf(stderr, "%s: dropout %.2g (auto)\n", PROG, (double)tr->m->cfg.dropout);

    return 0;
}

/* The learning rate of the next step: by steps, or by the fraction of the time budget spent. */
static double lr_now(trainer *tr, double elapsed) {
    double lr, frac;
    if (tr->total_steps) lr = mr_lr_at(&tr->sched, tr->step);
    else {
        mr_lr_sched s2 = tr->sched;
        frac = elapsed / tr->a.time_budget;
        s2.total_steps = 1000000;
        s2.warmup_steps = 0;
        lr = tr->step < tr->a.warmup ? tr->a.lr * (double)(tr->step + 1) / (double)tr->a.warmup : mr_lr_at(&s2, (int64_t)(frac * 1000000));
    }
    return lr;
}
/* The next batch into xin/xtg: random windows, or each row's next chunk of
   its own segment (stream batching); the carried state reset where due. */
static void next_batch(trainer *tr) {
    int b;
    int64_t s_len = tr->n_train / tr->a.batch;
    for (b = 0; b < tr->a.batch; b++) {
        int64_t o;
        if (!strcmp(tr->a.batching, "random")) o = (int64_t)mr_rng_below(&tr->rng, (uint64_t)(tr->n_train - tr->a.chunk - 1) + 1);
        else {
            int64_t seg0 = (tr->n_train / tr->a.batch) * b;
            if (tr->pos[b] < seg0 || tr->pos[b] + tr->a.chunk + 1 > seg0 + s_len || tr->pos[b] + tr->a.chunk + 1 > tr->n_train) tr->pos[b] = seg0;
            o = tr->pos[b];
            tr->pos[b] += tr->a.chunk;
        }
        memcpy(tr->xin + (size_t)b * tr->a.chunk, tr->ids + o, sizeof(int32_t) * (size_t)tr->a.chunk);
        memcpy(tr->xtg + (size_t)b * tr->a.chunk, tr->ids + o + 1, sizeof(int32_t) * (size_t)tr->a.chunk);
    }
    if (tr->state) {
        int reset = !strcmp(tr->a.batching, "random");
        if (tr->a.context > 0 && (tr->step * tr->a.chunk) % tr->a.context < tr->a.chunk && tr->step > 0) reset = 1;
        if (tr->state->max_pos && tr->state->pos + tr->a.chunk > tr->state->max_pos) reset = 1;   /* attention: the cache is full */
        if (reset) mr_state_reset(tr->state);
    }
}
/* The end of a history row: the MoE columns (values: the statistics since
   the last row, then zeroed; else empty fields), then the newline. */
static void hist_moe(trainer *tr, int values) {
    int e;
    if (tr->moe_routed) {
        double c = (double)tr->m->moe.calls;
        if (values && c > 0) {
            fprintf(tr->hist, ",%.5f,%.5f", tr->m->moe.balance / c, tr->m->moe.zloss / c);
            for (e = 0; e < tr->moe_routed; e++) fprintf(tr->hist, ",%.4f", tr->m->moe.load[e] / c);
        } else for (e = 0; e < tr->moe_routed + 2; e++) fputc(',', tr->hist);
        if (values) memset(&tr->m->moe, 0, sizeof tr->m->moe);
    }
    fputc('\n', tr->hist);
}
/* DIR/loss.svg from DIR/history.csv: train and validation loss against steps
   and against wall time (rank 0, at each evaluation and at the end; a plot
   that cannot be written is said once and the run goes on). */
static void write_plot(trainer *tr) {
    char hp[4200], sp[4200], title[300];
    pl_hist h;
    double *buf;
    pl_series s[2][2];
    pl_panel pn[2];
    int p;
    const char *unit = tr->bpe ? "loss (nats/token)" : "loss (nats/char)";
    static int warned;
    if (dp_rank != 0) return;
    fflush(tr->hist);
    snprintf(hp, sizeof hp, "%s/history.csv", tr->a.out);
    snprintf(sp, sizeof sp, "%s/loss.svg", tr->a.out);
    if (pl_hist_read(hp, &h) || h.n == 0) { pl_hist_free(&h); return; }
    buf = (double *)malloc(sizeof(double) * 8 * (size_t)h.n);
    if (buf) {
        for (p = 0; p < 2; p++) {   /* against steps, then against wall time */
            const double *x = p ? h.wall : h.step;
            double *q = buf + 4 * p * h.n;
            s[p][0] = pl_hist_series(&h, x, h.train, q, q + h.n, "train loss (one batch)", 0);
            s[p][1] = pl_hist_series(&h, x, h.val, q + 2 * h.n, q + 3 * h.n, "validation loss", 0);
            pn[p].xlabel = p ? "wall time (s)" : "step"; pn[p].ylabel = unit; pn[p].s = s[p]; pn[p].ns = 2; pn[p].y_cap = 1.5;
        }
        snprintf(title, sizeof title, "%s: %s d=%d L=%d, %lld parameters", tr->a.out, tr->a.arch, tr->m->cfg.dim, tr->m->cfg.n_layers, (long long)mr_params_count(tr->m->ps));
        if (pl_write_svg(sp, title, pn, 2) && !warned) { fprintf(stderr, "\n%s: cannot write '%s' (the run goes on)\n", PROG, sp); warned = 1; }
        free(buf);
    }
    pl_hist_free(&h);
}

/* After a step: the progress line and history row, the periodic evaluation
   (and model_best.bin), the periodic save. */
static void after_step(trainer *tr, double lr, double loss_sum, float gnorm) {
    if (tr->step % tr->a.log_every == 0) {
        double now = ex_now(), tps = (double)(tr->tokens - tr->tokens_at_log) / (now - tr->last_log_t), el = now - tr->t0, eta;
        char etab[32];
        eta = tr->total_steps ? (now - tr->last_log_t) / (double)tr->a.log_every * (double)(tr->total_steps - tr->step) : tr->a.time_budget - el;
        ex_fmt_time(etab, sizeof etab, eta);
        char moe[400] = "";
        if (tr->moe_routed && tr->m->moe.calls) {   /* the router statistics since the last line */
            double c = (double)tr->m->moe.calls;
            int e;
            size_t n = (size_t)snprintf(moe, sizeof moe, "  moe bal %.3f z %.2f load", tr->m->moe.balance / c, tr->m->moe.zloss / c);
            for (e = 0; e < tr->moe_routed && n < sizeof moe; e++) n += (size_t)snprintf(moe + n, sizeof moe - n, "%s%.2f", e ? "/" : " ", tr->m->moe.load[e] / c);
        }
        fprintf(stderr, "%sstep %lld  loss %.4f  gnorm %.3f  lr %.2e  %.1fk tok/s%s  ETA %s%s", tr->tty ? "\r" : "",
                (long long)tr->step, tr->train_loss_ema, gnorm, lr, tps / 1000.0, moe, etab, tr->tty ? "   " : "\n");
        /* the loss with 9 significant digits: enough to compare runs bit for bit */
        fprintf(tr->hist, "%lld,%lld,%.3f,%.9g,%.9g,%.9g,,,", (long long)tr->step, (long long)tr->tokens, el, lr, loss_sum, gnorm);
        hist_moe(tr, 1);
        fflush(tr->hist);
        tr->tokens_at_log = (long long)tr->tokens;
        tr->last_log_t = now;
    }
    tr->meta0.step = tr->step; tr->meta0.tokens_seen = tr->tokens; tr->meta0.epoch = tr->tokens / tr->n_train; tr->meta0.train_loss = tr->train_loss_ema;
    tr->meta0.best_val_loss = tr->best_val;
    if ((tr->a.eval_every && tr->step % tr->a.eval_every == 0) || (tr->a.eval_every_s > 0 && ex_now() - tr->last_eval_t >= tr->a.eval_every_s)) {
        double t_e = ex_now();
        tr->last_val = eval_split(tr->ctx, tr->m, tr->ids + tr->n_train, tr->n_val, tr->a.batch, tr->a.chunk);
        tr->eval_cost = ex_now() - t_e;
        if (tr->a.time_budget && tr->stateful_cost < 0 && dp_rank == 0) {   /* time the stateful pass on a prefix, for the final reserve */
            int64_t np = tr->n_val < 8 * (int64_t)tr->a.chunk + 1 ? tr->n_val : 8 * (int64_t)tr->a.chunk + 1;
            double t_s = ex_now();
            eval_loss(tr->ctx, tr->m, tr->ids + tr->n_train, np, tr->a.batch, tr->a.chunk, 1);
            tr->stateful_cost = (ex_now() - t_s) * (double)(tr->n_val - 1) / (double)(np - 1);
        }
        fprintf(stderr, "%sstep %lld  val %.4f nats/char (%.4f bits/char)%s  [eval %.1fs]%s\n", tr->tty ? "\r" : "", (long long)tr->step,
                tr->last_val / tr->val_bytes_per_token, tr->last_val / tr->val_bytes_per_token / log(2.0), tr->bpe ? " per byte" : "", tr->eval_cost, tr->tty ? "          " : "");
        fprintf(tr->hist, "%lld,%lld,%.3f,%.6g,,,%.5f,%.5f,", (long long)tr->step, (long long)tr->tokens, ex_now() - tr->t0, lr, tr->last_val, tr->last_val / tr->val_bytes_per_token / log(2.0));
        hist_moe(tr, 0);
        fflush(tr->hist);
        write_plot(tr);
        if (tr->last_val < tr->best_val) {
            tr->best_val = tr->last_val;
            tr->meta0.val_loss = tr->last_val; tr->meta0.best_val_loss = tr->best_val; tr->meta0.wall_time = ex_now() - tr->t0;
            before_save(tr);
            save_run(&tr->r, tr->a.out, "model_best.bin", &tr->meta0);
        }
        tr->eval_total += ex_now() - t_e;
        tr->last_eval_t = ex_now();
    }
    if (tr->a.save_every && tr->step % tr->a.save_every == 0) {
        tr->meta0.val_loss = tr->last_val; tr->meta0.wall_time = ex_now() - tr->t0;
        before_save(tr);
        save_run(&tr->r, tr->a.out, "model.bin", &tr->meta0);
    }
}
/* Whether the run stops before the next step: its steps, --stop-at-step, the
   time budget (with room left for the final evaluation and save), Ctrl-C. */
static int should_stop(trainer *tr, double elapsed) {
    if (tr->total_steps && tr->step >= tr->total_steps) return 1;
    if (tr->a.stop_at && tr->step >= tr->a.stop_at) return 1;
    if (tr->a.time_budget && elapsed >= tr->a.time_budget) return 1;
    if (g_stop) { fprintf(stderr, "%s%s: interrupted at step %lld: saving\n", tr->tty ? "\r\n" : "", PROG, (long long)tr->step); return 1; }
    if (tr->a.time_budget && tr->step > tr->start_step) {   /* wall time: leave room for the final evaluation and save */
        /* seconds per step, not counting the first (the arena grows then) nor evaluations */
        double per_step = tr->step - tr->start_step >= 2 ? (ex_now() - tr->t_first - tr->eval_total) / (double)(tr->step - tr->start_step - 1) : ex_now() - tr->t_run;
        /* the final evaluation: the windowed pass (as measured, or about a third of a
           training step per batch of windows) plus the stateful pass (as measured on a
           prefix at the first evaluation, else as long again as the windowed one) */
        double windowed = tr->eval_cost >= 0 ? tr->eval_cost : 2.0 / 3.0 * (double)tr->n_val / ((double)tr->a.batch * tr->a.chunk) * per_step;
        double reserve = windowed + (tr->stateful_cost >= 0 ? tr->stateful_cost : windowed);
        if (elapsed + per_step + reserve > tr->a.time_budget) return 1;
    }
    return 0;
}
/* One step of data parallelism: this process's shards of the global batch
   (rows [g R, (g+1) R) of shard g), their gradients reduced over the
   processes (a float allreduce, or with --reproducible an exact fixed-point
   sum over the shards in any order), then the same update everywhere.
   Dropout draws from a generator seeded by (seed, step, shard), so the
   shards do not depend on which process computes them. */
static int dp_step(trainer *tr, double lr, double *loss, float *gnorm) {
    mr_params *ps = tr->m->ps;
    size_t n = ps->numel, k;
    int j, S = tr->shards, R = tr->rows, T = tr->a.chunk;
    double sum = 0, t_r;
    mr_status s;
    memset(tr->sh_loss, 0, sizeof(double) * (size_t)S);
    for (j = 0; j < tr->ns; j++) {
        int g = dp_rank * tr->ns + j;
        mr_rng_seed(mr_ctx_rng(tr->ctx), tr->a.seed ^ 0x5eedull ^ ((uint64_t)tr->step + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)g + 1) * 0xBF58476D1CE4E5B9ull);
        if (tr->sh_grad) mr_params_zero_grad(ps);
        if (mr_train_grad(tr->ctx, tr->m, tr->xin + (size_t)g * R * T, tr->xtg + (size_t)g * R * T, R, T, tr->a.backprop,
                          tr->sh ? tr->sh[j] : NULL, &tr->sh_loss[g]) != MR_OK) {
            fprintf(dp_err, "\n%s: rank %d: %s\n", PROG, dp_rank, mr_ctx_error(tr->ctx));
            dp_abort(1);
        }
        if (tr->sh_grad) memcpy(tr->sh_grad + (size_t)j * n, ps->grad, sizeof(float) * n);
    }
    t_r = ex_now();
    if (!tr->sh_grad) {   /* fast: the float sum of the shards' mean gradients, averaged */
        if (S > 1) {
            float inv = 1.0f / (float)S;
            dp_sum_f32(ps->grad, n);
            for (k = 0; k < n; k++) ps->grad[k] *= inv;
        }
    } else {   /* reproducible: the largest magnitude anywhere sets the scale, then integers */
        double mx[2] = {0, 0};
        uint32_t top = 0;   /* the largest |g| as bits: for floats >= 0 the integer order is the float order, Inf and NaN above all */
        float f;
        int e;
        for (k = 0; k < n * (size_t)tr->ns; k++) {
            uint32_t u;
            memcpy(&u, tr->sh_grad + k, 4);
            u &= 0x7fffffffu;
            top = u > top ? u : top;
        }
        if (top >= 0x7f800000u) mx[1] = 1;
        else { memcpy(&f, &top, 4); mx[0] = f; }
        dp_max_f64(mx, 2);
        e = mx[1] > 0 ? INT32_MIN : mr_grad_fixed_exp(mx[0], S);
        if (e == INT32_MIN) {
            mr_params_zero_grad(ps);
            fprintf(stderr, "\n%s: the gradient diverged at step %lld (lower --lr)\n", PROG, (long long)tr->step + 1);
            return 1;
        }
        memset(tr->acc, 0, sizeof(int64_t) * n);
        for (j = 0; j < tr->ns; j++) mr_grad_fixed_add(tr->acc, tr->sh_grad + (size_t)j * n, n, e);
        dp_sum_i64(tr->acc, n);
        mr_grad_fixed_get(ps->grad, tr->acc, n, e, 1.0 / S);
    }
    dp_sum_f64(tr->sh_loss, (size_t)S);   /* each slot is one shard's (the others add zeros): exact */
    tr->t_reduce += ex_now() - t_r;
    tr->n_reduce++;
    for (j = 0; j < S; j++) sum += tr->sh_loss[j];
    *loss = sum / S;
    if (!(*loss == *loss) || *loss > DBL_MAX || *loss < -DBL_MAX) {
        mr_params_zero_grad(ps);
        fprintf(stderr, "\n%s: the loss diverged at step %lld (lower --lr)\n", PROG, (long long)tr->step + 1);
        return 1;
    }
    s = mr_train_apply(tr->ctx, tr->m, tr->adam_on ? &tr->adam : NULL, tr->adam_on ? NULL : &tr->sgd, (float)lr, (float)tr->a.grad_clip, gnorm);
    if (s != MR_OK) {
        fprintf(stderr, "\n%s: %s at step %lld%s\n", PROG, mr_ctx_error(tr->ctx), (long long)tr->step + 1, s == MR_ERR_RANGE ? " (lower --lr)" : "");
        return 1;
    }
    return 0;
}
/* the training loop: until the step, epoch or time budget is spent, or Ctrl-C */
static int phase_train(trainer *tr) {
    tr->t0 = tr->t_start - (tr->a.resume ? tr->meta0.wall_time : 0);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    tr->last_log_t = tr->t_run = tr->last_eval_t = ex_now();
    tr->tokens_at_log = (long long)tr->tokens;
    for (;;) {
        double elapsed = ex_now() - tr->t0, loss_sum = 0, lr;
        float gnorm;
        int stop = should_stop(tr, elapsed);
        lr = lr_now(tr, elapsed);
        if (dp_size > 1) {   /* one decision for all: stop if any process stops (or was interrupted), rank 0's learning rate */
            double c[3];
            c[0] = stop; c[1] = g_stop; c[2] = dp_rank == 0 ? lr : -INFINITY;
            dp_max_f64(c, 3);
            stop = c[0] > 0; lr = c[2];
            if (c[1] > 0) g_stop = 1;
        }
        if (stop) break;
        /* auto dropout for a time budget: decided from the measured speed after 20 steps */
        /* (absolute steps, so a resumed run decides as the uninterrupted one; once decided, CONF keeps it) */
        if (tr->auto_dropout && !tr->total_steps && tr->start_step < 25 && tr->step == (tr->start_step > 5 ? tr->start_step : 5)) tr->t_auto = ex_now();
        if (tr->auto_dropout && !tr->total_steps && tr->start_step < 25 && tr->step == 25) {
            double per_step = (ex_now() - tr->t_auto) / (double)(25 - (tr->start_step > 5 ? tr->start_step : 5)), epochs = (double)tr->tokens + (tr->a.time_budget - elapsed) / per_step * tr->a.batch * tr->a.chunk;
            epochs /= (double)tr->n_train;
            tr->m->cfg.dropout = epochs > 12 ? 0.1f : 0.0f;
            dp_bcast(&tr->m->cfg.dropout, sizeof tr->m->cfg.dropout);   /* rank 0's measurement decides */
            fprintf(stderr, "%s%s: projected %.1f epochs: dropout %.2g (auto)%s\n", tr->tty ? "\r" : "", PROG, epochs, (double)tr->m->cfg.dropout, tr->tty ? "          " : "");
        }
        next_batch(tr);
        if (tr->a.fault_nan && tr->step + 1 == tr->a.fault_nan) { size_t k; for (k = 0; k < tr->m->ps->numel; k++) tr->m->ps->data[k] = NAN; }
        if (tr->sharded) { if (dp_step(tr, lr, &loss_sum, &gnorm)) return 1; }
        else if (mr_train_step(tr->ctx, tr->m, tr->adam_on ? &tr->adam : NULL, tr->adam_on ? NULL : &tr->sgd, tr->xin, tr->xtg, tr->a.batch, tr->a.chunk, tr->a.backprop, tr->state,
                          (float)lr, (float)tr->a.grad_clip, &loss_sum, &gnorm) != MR_OK) {
            if (mr_ctx_status(tr->ctx) == MR_ERR_RANGE) fprintf(stderr, "\n%s: the loss diverged at step %lld (lower --lr)\n", PROG, (long long)tr->step + 1);
            else fprintf(stderr, "\n%s: %s\n", PROG, mr_ctx_error(tr->ctx));
            return 1;
        }
        tr->step++;
        tr->tokens += (int64_t)tr->a.batch * tr->a.chunk;
        if (tr->step == tr->start_step + 1) tr->t_first = ex_now();
        tr->train_loss_ema = tr->train_loss_ema != tr->train_loss_ema ? loss_sum : 0.95 * tr->train_loss_ema + 0.05 * loss_sum;
        after_step(tr, lr, loss_sum, gnorm);
    }
    return 0;
}

/* the final evaluation (windowed and stateful), the last lines, the final save */
static int phase_finish(trainer *tr) {
    {
        double el, vw = tr->last_val, vs = NAN, t_e = ex_now();
        /* stopped to be resumed (Ctrl-C, --stop-at-step before the end): save at once, with no final
           evaluation, so the resumed run's records match an uninterrupted one */
        int paused = g_stop || (tr->a.stop_at && tr->step >= tr->a.stop_at && !(tr->total_steps && tr->step >= tr->total_steps));
        if (!paused) {
            vw = eval_split(tr->ctx, tr->m, tr->ids + tr->n_train, tr->n_val, tr->a.batch, tr->a.chunk);
            if (dp_rank == 0) vs = eval_loss(tr->ctx, tr->m, tr->ids + tr->n_train, tr->n_val, tr->a.batch, tr->a.chunk, 1);   /* one stream: rank 0 */
            dp_bcast(&vs, sizeof vs);
        }
        el = ex_now() - tr->t0;
        fprintf(stderr, "%sdone: %lld steps, %lld tokens in %.1fs of wall time (final evaluation %.1fs)\n", tr->tty ? "\r\n" : "", (long long)tr->step,
                (long long)tr->tokens, el, ex_now() - t_e);
        if (paused) printf("%s at step %lld; continue with --resume %s/model.bin\n", g_stop ? "interrupted" : "stopped", (long long)tr->step, tr->a.out);
        else if (tr->bpe) printf("final val loss %.4f nats/token = %.4f nats/byte (%.4f bits/byte, %.3f bytes/token) in windows of %d tokens; stateful pass %.4f nats/byte\n",
                        vw, vw / tr->val_bytes_per_token, vw / tr->val_bytes_per_token / log(2.0), tr->val_bytes_per_token, tr->a.chunk, vs / tr->val_bytes_per_token);
        else printf("final val loss %.4f nats/char (%.4f bits/char) in windows of %d; stateful pass %.4f nats/char\n", vw,
                    vw / log(2.0), tr->a.chunk, vs);
        if (!paused) {
            fprintf(tr->hist, "%lld,%lld,%.3f,,%.5f,,%.5f,%.5f,%.5f", (long long)tr->step, (long long)tr->tokens, el, tr->train_loss_ema, vw, vw / tr->val_bytes_per_token / log(2.0), vs);
            hist_moe(tr, 0);
            write_plot(tr);
        }
        fclose(tr->hist);
        tr->meta0.step = tr->step; tr->meta0.tokens_seen = tr->tokens; tr->meta0.epoch = tr->tokens / tr->n_train; tr->meta0.train_loss = tr->train_loss_ema;
        tr->meta0.val_loss = vw; tr->meta0.wall_time = el;
        tr->meta0.best_val_loss = !paused && vw < tr->best_val ? vw : tr->best_val;
        if (tr->n_reduce && dp_size > 1)
            fprintf(stderr, "%s: gradient reduction: %.2f ms per step (%zu %s over %d processes; %.1f%% of the wall time)\n", PROG,
                    1e3 * tr->t_reduce / (double)tr->n_reduce, tr->m->ps->numel, tr->a.reproducible ? "int64" : "floats", dp_size, 100.0 * tr->t_reduce / el);
        before_save(tr);
        if (!save_run(&tr->r, tr->a.out, "model.bin", &tr->meta0)) return 1;
        if (!paused && vw < tr->best_val) save_run(&tr->r, tr->a.out, "model_best.bin", &tr->meta0);
        printf("saved %s/model.bin\n", tr->a.out);
    }
    return 0;
}

/* frees everything */
static void phase_cleanup(trainer *tr) {
    free(tr->xin); free(tr->xtg); free(tr->pos); mr_buffer_free(tr->text);
    if (tr->bpe) { mr_bpe_free_buffer(tr->bpe, tr->ids); if (tr->vocab.bpe_json && !tr->a.resume) mr_bpe_free_buffer(tr->bpe, tr->vocab.bpe_json); mr_bpe_free(tr->bpe); } else free(tr->ids);
    if (tr->a.resume) mr_vocab_free(&tr->vocab);
    if (tr->adam_on) mr_adamw_free(&tr->adam); else mr_sgd_free(&tr->sgd);
    mr_state_free(tr->state);
    if (tr->sh) { int i; for (i = 0; i < tr->ns; i++) mr_state_free(tr->sh[i]); free(tr->sh); }
    free(tr->sh_grad); free(tr->acc); free(tr->sh_loss);
    mr_model_free(tr->m);
    mr_ctx_free(tr->ctx);
    }

/* The run before its flags are read: zero, except these. */
static void trainer_init(trainer *tr, int argc, char **argv) {
    memset(tr, 0, sizeof *tr);
    tr->argc = argc; tr->argv = argv;
    tr->cp = mr_ctx_defaults();
    tr->best_val = INFINITY;
    tr->last_val = NAN;
    tr->train_loss_ema = NAN;
    tr->eval_cost = -1;
    tr->tty = isatty(2);
    tr->val_bytes_per_token = 1.0;
    tr->t_start = ex_now();
    tr->stateful_cost = -1;
}

/* --preset NAME: the preset's flags, then the command's own (which override them) */
static const struct { const char *name, *flags; } k_presets[] = {
    {"shakespeare-15m", PRESET_SHAKESPEARE_15M},
};
static void expand_preset(int *argc, char ***argv) {
    static char *v[256], buf[1024];
    int i, j, n = 0, at = -1;
    size_t k;
    for (i = 1; i < *argc; i++) if (!strcmp((*argv)[i], "--preset")) at = i;
    if (at < 0) return;
    if (at + 1 >= *argc) ex_die(PROG, "--preset needs a value");
    for (i = 1; i < *argc; i++) if (!strcmp((*argv)[i], "--resume")) ex_die(PROG, "--preset with --resume: a resumed run's flags come from its checkpoint");
    for (k = 0; k < sizeof k_presets / sizeof k_presets[0]; k++) if (!strcmp(k_presets[k].name, (*argv)[at + 1])) break;
    if (k == sizeof k_presets / sizeof k_presets[0]) {
        char b[400];
        size_t o = (size_t)snprintf(b, sizeof b, "unknown preset '%.100s' (presets:", (*argv)[at + 1]);
        for (k = 0; k < sizeof k_presets / sizeof k_presets[0] && o < sizeof b; k++) o += (size_t)snprintf(b + o, sizeof b - o, " %s", k_presets[k].name);
        if (o < sizeof b) snprintf(b + o, sizeof b - o, ")");
        ex_die(PROG, b);
    }
    snprintf(buf, sizeof buf, "%s", k_presets[k].flags);
    v[n++] = (*argv)[0];
    for (j = 0; buf[j] && n < 200;) {   /* the preset's words */
        while (buf[j] == ' ') buf[j++] = 0;
        if (!buf[j]) break;
        v[n++] = buf + j;
        while (buf[j] && buf[j] != ' ') j++;
    }
    for (i = 1; i < *argc && n < 255; i++) {
        if (i == at) { i++; continue; }
        v[n++] = (*argv)[i];
    }
    v[n] = NULL;
    *argc = n; *argv = v;
}

int main(int argc, char **argv) {
    static trainer t;   /* large (the run's flags and metadata): not on the stack */
    static int (*const setup[])(trainer *) = {phase_args, phase_data, phase_model, phase_optim, phase_output};
    int rc = 0, k;
    dp_init(&argc, &argv);
    dp_quiet_others();
    ex_before_exit = dp_finalize;
    expand_preset(&argc, &argv);
    trainer_init(&t, argc, argv);
    if (dp_rank == 0) ex_watch_stdout(PROG);
    /* a failure in any process is a failure in all (every rank decides alike, rank 0 alone writes) */
    for (k = 0; k < 5 && !rc; k++) rc = dp_max_int(setup[k](&t));
    if (!rc) rc = phase_train(&t);
    if (!rc) rc = phase_finish(&t);
    if (!rc) phase_cleanup(&t);
    if (!rc && g_stop) rc = EX_INTERRUPTED;   /* saved, then 130 as for any program stopped by Ctrl-C */
    dp_finalize();
    return rc;
}
