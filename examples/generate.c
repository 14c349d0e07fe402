/* minrnn-generate: sample text from a trained model. The prompt is read in
   one parallel pass; then one token at a time is fed with the carried state,
   so memory stays constant however long it runs. */
#define _POSIX_C_SOURCE 200809L
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "common.h"

static const char *PROG = "minrnn-generate";

static void usage(void) {
    printf("usage: minrnn-generate --model FILE [flags]\n"
           "  --model FILE        a checkpoint written by minrnn-train (model.bin or model_best.bin)\n"
           "  --prompt TEXT       text to start from (default: a newline)\n"
           "  --length N          tokens to generate (default 500)\n"
           "  --temperature T     (default 0.8; 0 = greedy)\n"
           "  --top-k K           keep the K most likely tokens (default 0: off)\n"
           "  --top-p P           nucleus sampling (default 0.95; 1: off)\n"
           "  --seed S            (default 42)\n"
           "  --special-tokens on|off  a BPE model: the tokenizer's added tokens written in the prompt\n"
           "                      (<|endoftext|>, ...) are their ids (on, the default, as Hugging Face does) or text\n"
           "  --streams B         B independent samples of the prompt at once (default 1), stepped together as\n"
           "                      one batch; stream b samples with seed + b (stream 0 is the --streams 1 sample);\n"
           "                      each is printed after a line '### sample b' once all are done\n"
           "  --threads N         (default 1)\n"
           "  --quiet             print only the generated text (no speed report)\n"
           "  --state-in FILE     continue a session saved with --state-out (the prompt, if any, is read\n"
           "                      after the saved text; without one, generation goes on where it stopped;\n"
           "                      sampling starts afresh from --seed: pass another seed for fresh samples)\n"
           "  --state-out FILE    save the session (recurrent state and next-token logits) at the end\n");
}

/* --streams B: the prompt read by every stream (one parallel pass of B rows), then
   B tokens per mr_model_step; stream b samples with its own generator (seed + b) and
   its tokens are printed once all are done */
/* logits [B, V] and scratch [2 V]: main's buffers */
static int gen_streams(mr_model *m, const mr_vocab *vocab, const mr_bpe *bpe, mr_ctx *ctx, mr_state *st, const int32_t *pids,
                       size_t n_prompt, const char *prompt, size_t plen, long long length, float temperature, int top_k, float top_p,
                       unsigned long long seed, int quiet, float *logits, float *scratch) {
    int B = st->batch, V = m->cfg.vocab_size, b;
    long long i;
    int32_t *rows = (int32_t *)malloc(sizeof(int32_t) * (size_t)B * (n_prompt < 1024 ? n_prompt : 1024));
    int32_t *toks = (int32_t *)malloc(sizeof(int32_t) * (size_t)B * (size_t)length), *cur = (int32_t *)malloc(sizeof(int32_t) * (size_t)B);
    mr_rng *rng = (mr_rng *)malloc(sizeof(mr_rng) * (size_t)B);
    size_t off = 0;
    double t0 = ex_now(), t1;
    if (!rows || !toks || !cur || !rng) ex_fail(PROG, "out of memory for the streams");
    for (b = 0; b < B; b++) mr_rng_seed(&rng[b], seed + (unsigned long long)b);
    while (off < n_prompt) {   /* the prompt, the same in every row, in pieces of 1024 */
        int n = (int)(n_prompt - off < 1024 ? n_prompt - off : 1024), t;
        mr_tensor *lg;
        for (b = 0; b < B; b++) for (t = 0; t < n; t++) rows[(size_t)b * n + t] = pids[off + t];
        if (!(lg = mr_model_forward(ctx, m, rows, B, n, st, 0))) { fprintf(stderr, "%s: %s\n", PROG, mr_ctx_error(ctx)); return EX_FAIL; }
        for (b = 0; b < B; b++) memcpy(logits + (size_t)b * V, lg->data + ((size_t)b * n + n - 1) * V, sizeof(float) * (size_t)V);
        mr_ctx_reset(ctx);
        off += (size_t)n;
    }
    t1 = ex_now();
    for (i = 0; i < length; i++) {
        for (b = 0; b < B; b++) cur[b] = toks[(size_t)b * length + i] = mr_sample(logits + (size_t)b * V, V, temperature, top_k, top_p, &rng[b], scratch);
        if (i + 1 < length) {
            if (mr_model_step(ctx, m, cur, st, logits) != MR_OK) { fprintf(stderr, "%s: %s\n", PROG, mr_ctx_error(ctx)); return EX_FAIL; }
            mr_ctx_reset(ctx);
        }
    }
    if (!quiet) {
        double t2 = ex_now();
        fprintf(stderr, "[%s: %d streams: prompt %zu tokens in %.3fs; %lld tokens each in %.3fs = %.0f tokens/s in all]\n", PROG, B, n_prompt,
                t1 - t0, length, t2 - t1, (double)length * B / (t2 - t1));
    }
    for (b = 0; b < B; b++) {
        printf("### sample %d\n", b);
        fwrite(prompt, 1, plen, stdout);
        for (i = 0; i < length; i++) {
            int32_t tk = toks[(size_t)b * length + i];
            if (bpe) {
                const uint8_t *tb;
                size_t nb = mr_bpe_token_bytes(bpe, tk, &tb);
                fwrite(tb, 1, nb, stdout);
            } else fputc(vocab->chars[tk], stdout);
        }
        fputc('\n', stdout);
    }
    free(rows); free(toks); free(cur); free(rng);
    return fflush(stdout) ? EX_FAIL : EX_OK;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *state_in = NULL, *state_out = NULL;
    long long length = 500, i;
    double temperature = 0.8, top_p = 0.95;
    int top_k = 0, threads = 1, quiet = 0, V, streams = 1;
    unsigned long long seed = 42;
    mr_model *m;
    mr_vocab vocab;
    mr_error err;
    mr_ctx *ctx;
    mr_ctx_params cp = mr_ctx_defaults();
    mr_state *st;
    mr_rng rng;
    float *logits, *scratch;
    int32_t *pids, tok;
    size_t plen, n_prompt = 0;
    double t0, t1;
    mr_bpe *bpe = NULL;
    int a, special = 1;
    ex_watch_stdout(PROG);
    for (a = 1; a < argc; a++) {
        const char *f = argv[a];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) { usage(); return 0; }
        else if (ex_is_version(f)) { ex_version(PROG); return 0; }
        else if (!strcmp(f, "--model")) model_path = ex_val(PROG, argc, argv, &a);
        else if (!strcmp(f, "--prompt")) prompt = ex_val(PROG, argc, argv, &a);
        else if (!strcmp(f, "--length")) length = ex_int(PROG, f, ex_val(PROG, argc, argv, &a), 1, (long long)1 << 50);
        else if (!strcmp(f, "--temperature")) temperature = ex_num(PROG, f, ex_val(PROG, argc, argv, &a), 0, 100);
        else if (!strcmp(f, "--top-k")) top_k = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &a), 0, 1 << 24);
        else if (!strcmp(f, "--top-p")) top_p = ex_num(PROG, f, ex_val(PROG, argc, argv, &a), 0.0001, 1);
        else if (!strcmp(f, "--special-tokens")) special = ex_on_off(PROG, f, ex_val(PROG, argc, argv, &a));
        else if (!strcmp(f, "--seed")) seed = (unsigned long long)ex_int(PROG, f, ex_val(PROG, argc, argv, &a), 0, (long long)1 << 62);
        else if (!strcmp(f, "--streams")) streams = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &a), 1, 4096);
        else if (!strcmp(f, "--threads")) threads = (int)ex_int(PROG, f, ex_val(PROG, argc, argv, &a), 1, 1024);
        else if (!strcmp(f, "--quiet")) quiet = 1;
        else if (!strcmp(f, "--state-in")) state_in = ex_val(PROG, argc, argv, &a);
        else if (!strcmp(f, "--state-out")) state_out = ex_val(PROG, argc, argv, &a);
        else { char b[300]; snprintf(b, sizeof b, "unknown flag '%s' (try --help)", f); ex_die(PROG, b); }
    }
    if (!model_path) ex_die(PROG, "--model FILE is required (try --help)");
    if (streams > 1 && (state_in || state_out)) ex_die(PROG, "--state-in and --state-out hold one stream: not with --streams");
    if (streams > 1 && length > ((long long)1 << 28) / streams) ex_die(PROG, "--streams B x --length N over 2^28 tokens: generate fewer");

    if (mr_ckpt_load(&m, &vocab, NULL, model_path, NULL, &err) != MR_OK) {
        fprintf(stderr, "%s: cannot load '%s': %s\n", PROG, model_path, err.msg);
        return 2;
    }
    V = m->cfg.vocab_size;
    if (!prompt) prompt = state_in ? "" : "\n";   /* a saved session goes on without a prompt */
    plen = strlen(prompt);
    if (plen == 0 && !state_in) { prompt = "\n"; plen = 1; }
    pids = (int32_t *)malloc(sizeof(int32_t) * (plen ? plen : 1));
    if (vocab.kind == MR_VOCAB_BPE && mr_bpe_load_json_mem(&bpe, vocab.bpe_json, vocab.bpe_len, NULL, &err) != MR_OK) {
        fprintf(stderr, "%s: the checkpoint's tokenizer does not load: %s\n", PROG, err.msg);
        return 2;
    }
    logits = (float *)malloc(sizeof(float) * (size_t)V * (size_t)streams);
    scratch = (float *)malloc(sizeof(float) * 2 * (size_t)V);
    if (!pids || !logits || !scratch) ex_fail(PROG, "out of memory");
    if (bpe) {
        size_t n_ids = 0;
        if (mr_bpe_encode(bpe, (const uint8_t *)prompt, plen, special, pids, plen, &n_ids, &err) != MR_OK) ex_die_err(PROG, &err);
        n_prompt = n_ids;
    } else if (mr_vocab_encode(&vocab, (const uint8_t *)prompt, plen, pids, &err) != MR_OK) {
        fprintf(stderr, "%s: the prompt has a character the model never saw: %s\n", PROG, err.msg);
        return 2;
    }
    cp.n_threads = threads;
    cp.arena_bytes = (size_t)4 << 20;
    if (mr_ctx_new(&ctx, &cp) != MR_OK) ex_fail(PROG, "cannot create a context (out of memory)");
    mr_ctx_set_no_grad(ctx, 1);
    if (mr_state_new(&st, m, streams, &err) != MR_OK) ex_die_err(PROG, &err);
    if (state_in) {
        int has_logits = 0;
        if (mr_state_load(m, st, logits, &has_logits, state_in, &err) != MR_OK) {
            fprintf(stderr, "%s: cannot continue the session '%s': %s\n", PROG, state_in, err.msg);
            return 2;
        }
        if (!has_logits && plen == 0) ex_die(PROG, "the saved session holds no logits: give a --prompt to go on from");
    }
    if (!bpe) n_prompt = plen;
    if (st->max_pos && (long long)st->pos + (long long)n_prompt + length > (long long)st->max_pos + 1) {
        /* the last sampled token is never fed unless the session is saved */
        long long need = (long long)st->pos + (long long)n_prompt + length - (state_out ? 0 : 1);
        if (need > st->max_pos) {
            fprintf(stderr, "%s: %lld tokens (session %lld + prompt %zu + --length %lld) exceed the model's context of %lld "
                    "(its --max-context); generate fewer\n", PROG, need, (long long)st->pos, n_prompt, length, (long long)st->max_pos);
            return 2;
        }
    }
    mr_rng_seed(&rng, seed);
    if (!bpe) n_prompt = plen;
    if (streams > 1) {
        int rc = gen_streams(m, &vocab, bpe, ctx, st, pids, n_prompt, prompt, plen, length, (float)temperature, top_k, (float)top_p, seed,
                             quiet, logits, scratch);
        mr_state_free(st); mr_ctx_free(ctx); mr_model_free(m); mr_bpe_free(bpe); mr_vocab_free(&vocab);
        free(pids); free(logits); free(scratch);
        return rc;
    }
    fwrite(prompt, 1, plen, stdout);
    fflush(stdout);
    t0 = ex_now();
    {   /* the prompt in one parallel pass (in pieces of 1024 to bound memory) */
        size_t off = 0;
        while (off < n_prompt) {
            int n = (int)(n_prompt - off < 1024 ? n_prompt - off : 1024);
            mr_tensor *lg = mr_model_forward(ctx, m, pids + off, 1, n, st, 0);
            if (!lg) { fprintf(stderr, "%s: %s\n", PROG, mr_ctx_error(ctx)); return 1; }
            memcpy(logits, lg->data + (size_t)(n - 1) * V, sizeof(float) * (size_t)V);
            mr_ctx_reset(ctx);
            off += (size_t)n;
        }
    }
    t1 = ex_now();
    for (i = 0; i < length; i++) {
        uint8_t ch;
        tok = mr_sample(logits, V, (float)temperature, top_k, (float)top_p, &rng, scratch);
        if (bpe) {   /* stream the token's bytes */
            const uint8_t *tb;
            size_t nb = mr_bpe_token_bytes(bpe, tok, &tb);
            fwrite(tb, 1, nb, stdout);
            ch = nb ? tb[nb - 1] : 0;
        } else {
            ch = vocab.chars[tok];
            fputc(ch, stdout);
        }
        (void)ch;
        if (fflush(stdout) != 0) ex_stdout_check();   /* stream each token as it comes; an output that fails ends the run (exit 1) */
        if (i + 1 < length || state_out) {   /* feed the token (the last one only to save the session) */
            if (mr_model_step(ctx, m, &tok, st, logits) != MR_OK) { fprintf(stderr, "\n%s: %s\n", PROG, mr_ctx_error(ctx)); return 1; }
            mr_ctx_reset(ctx);
        }
    }
    fputc('\n', stdout);
    fflush(stdout);
    if (state_out && mr_state_save(m, st, logits, state_out, &err) != MR_OK) {
        fprintf(stderr, "%s: cannot save the session: %s\n", PROG, err.msg);
        return 1;
    }
    if (!quiet) {
        double t2 = ex_now();
        fprintf(stderr, "[%s: prompt %zu tokens in %.3fs; %lld tokens in %.3fs = %.0f tokens/s, state %zu floats, arena peak %zu bytes]\n",
                PROG, n_prompt, t1 - t0, length, t2 - t1, (double)length / (t2 - t1), mr_state_floats(st), mr_ctx_arena_peak(ctx));
    }
    mr_state_free(st);
    mr_ctx_free(ctx);
    mr_model_free(m);
    mr_bpe_free(bpe);
    mr_vocab_free(&vocab);
    free(pids); free(logits); free(scratch);
    return 0;
}
