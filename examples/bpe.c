/* minrnn-bpe: train, use and measure a byte-level BPE tokenizer.

     minrnn-bpe train  --input FILE --vocab-size N [--min-frequency K] [--no-pretokenize]
                       [--special TOKEN]... --out tokenizer.json
     minrnn-bpe encode --tokenizer T [FILE] [--allow-special] [--out X.u16 | X.u32 | X.txt]
     minrnn-bpe decode --tokenizer T [FILE] [--out FILE]
     minrnn-bpe stats  --tokenizer T [FILE] [--allow-special]

   encode without --out (or with a text --out) writes the ids of each input
   line (its newline included) as one line of decimal ids, so decoding all of
   them gives the input back exactly. --out X.u16 / X.u32 encodes the whole
   input at once and writes little-endian ids for training. decode reads text
   ids (any whitespace between them), or .u16/.u32 files by their extension.
   FILE defaults to standard input ("-" too). */
#define _POSIX_C_SOURCE 200809L
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "common.h"

static const char *prog = "minrnn-bpe";

static void usage(FILE *f) {
    fprintf(f,
            "usage:\n"
            "  %s train  --input FILE --vocab-size N [--min-frequency K] [--no-pretokenize]\n"
            "            [--special TOKEN]... --out tokenizer.json\n"
            "  %s encode --tokenizer T [FILE] [--special-tokens on|off] [--out X.u16|X.u32|X.txt]\n"
            "  %s decode --tokenizer T [FILE] [--out FILE]\n"
            "  %s stats  --tokenizer T [FILE] [--special-tokens on|off]\n"
            "FILE defaults to standard input. vocab size counts the 256 bytes and the special tokens.\n"
            "--special-tokens on (the default, as Hugging Face does): the tokenizer's added tokens written in\n"
            "the text (<|endoftext|>, ...) are read as their ids; off: as plain text.\n",
            prog, prog, prog, prog);
}
/* A library error: reading or parsing an input is the command's fault (2), out of memory or a failed write a failure (1). */
static void fail_as(const char *what, const mr_error *e, int code) {
    fprintf(stderr, "%s: %s: %s\n", prog, what, e->msg);
    exit(code);
}
static void fail(const char *what, const mr_error *e) { fail_as(what, e, ex_code(e->status)); }
static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}
static int input_is_malloc;   /* read_input's buffer came from realloc (standard input) */
/* Reads a whole file, or standard input for NULL / "-". */
static uint8_t *read_input(const char *path, size_t *n) {
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    mr_error e;
    if (path && strcmp(path, "-") != 0) {
        if (mr_read_file(path, &buf, n, (size_t)-1, NULL, &e) != MR_OK) fail("input", &e);
        return buf;
    }
    for (;;) {
        size_t got;
        if (len == cap) {
            uint8_t *q;
            cap = cap ? cap * 2 : 1 << 16;
            q = (uint8_t *)realloc(buf, cap);
            if (!q) ex_fail(prog, "out of memory reading standard input");
            buf = q;
        }
        got = fread(buf + len, 1, cap - len, stdin);
        len += got;
        if (got == 0) break;
    }
    if (ferror(stdin)) ex_die(prog, "read error on standard input");
    *n = len;
    {   /* NUL-terminated, as mr_read_file's buffers are */
        uint8_t *q = (uint8_t *)realloc(buf, len + 1);
        if (!q) ex_fail(prog, "out of memory");
        buf = q;
        buf[len] = 0;
    }
    input_is_malloc = 1;
    return buf;
}
/* Frees what read_input returned. */
static void free_input(uint8_t *p) {
    if (input_is_malloc) free(p); else mr_buffer_free(p);
}
static FILE *open_out(const char *path) {
    FILE *f;
    char msg[512];
    if (!path || strcmp(path, "-") == 0) return stdout;
    f = fopen(path, "wb");
    if (!f) { snprintf(msg, sizeof msg, "cannot create '%s': %s", path, strerror(errno)); ex_fail(prog, msg); }
    return f;
}
static void close_out(FILE *f, const char *path) {
    char msg[512];
    if (fflush(f) != 0 || ferror(f) || (f != stdout && fclose(f) != 0)) {
        snprintf(msg, sizeof msg, "cannot write '%s': %s", path ? path : "standard output", strerror(errno));
        ex_fail(prog, msg);
    }
}
static mr_bpe *load_tokenizer(const char *path) {
    mr_bpe *t;
    mr_error e;
    if (!path) ex_die(prog, "--tokenizer is required");
    if (mr_bpe_load_json(&t, path, NULL, &e) != MR_OK) fail(path, &e);
    return t;
}

static int cmd_train(int argc, char **argv) {
    const char *input = NULL, *out = NULL;
    const char **specials = (const char **)calloc((size_t)argc + 1, sizeof(char *));
    mr_bpe_train_opts o = mr_bpe_train_defaults();
    int i, have_vocab = 0;
    uint8_t *text;
    size_t n;
    mr_bpe *t;
    mr_error e;
    double t0, t1;
    char msg[512];
    if (!specials) ex_fail(prog, "out of memory");
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--input")) input = ex_val(prog, argc, argv, &i);
        else if (!strcmp(a, "--out")) out = ex_val(prog, argc, argv, &i);
        else if (!strcmp(a, "--vocab-size")) { o.vocab_size = (int)ex_int(prog, a, ex_val(prog, argc, argv, &i), 256, 1 << 24); have_vocab = 1; }
        else if (!strcmp(a, "--min-frequency")) o.min_frequency = (int)ex_int(prog, a, ex_val(prog, argc, argv, &i), 1, 2000000000);
        else if (!strcmp(a, "--no-pretokenize")) o.pretokenize = 0;
        else if (!strcmp(a, "--special")) specials[o.n_special++] = ex_val(prog, argc, argv, &i);
        else { snprintf(msg, sizeof msg, "unknown option '%s' for train (see --help)", a); ex_die(prog, msg); }
    }
    if (!input) ex_die(prog, "train: --input FILE is required");
    if (!out) ex_die(prog, "train: --out tokenizer.json is required");
    if (!have_vocab) ex_die(prog, "train: --vocab-size N is required");
    o.special_tokens = specials;
    text = read_input(input, &n);
    if (n == 0) { snprintf(msg, sizeof msg, "train: '%s' is empty", input); ex_die(prog, msg); }
    t0 = ex_now();
    if (mr_bpe_train(&t, text, n, &o, NULL, &e) != MR_OK) fail("train", &e);
    t1 = ex_now();
    if (mr_bpe_save_json(t, out, &e) != MR_OK) fail_as("save", &e, EX_FAIL);
    fprintf(stderr, "trained on %zu bytes in %.3f s: %d tokens (%d merges, %d special)%s -> %s\n", n, t1 - t0,
            mr_bpe_vocab_size(t), mr_bpe_n_merges(t), mr_bpe_n_special(t),
            mr_bpe_vocab_size(t) < o.vocab_size ? " (stopped early: no pair reaches the minimum frequency)" : "", out);
    mr_bpe_free(t);
    free_input(text);
    free(specials);
    return 0;
}

/* Parses the options shared by encode/decode/stats. */
typedef struct { const char *tok, *file, *out; int allow_special; } io_opts;
static void parse_io(const char *cmd, int argc, char **argv, io_opts *o, int allow_out, int allow_special) {
    int i;
    char msg[512];
    memset(o, 0, sizeof *o);
    o->allow_special = 1;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--tokenizer")) o->tok = ex_val(prog, argc, argv, &i);
        else if (allow_out && !strcmp(a, "--out")) o->out = ex_val(prog, argc, argv, &i);
        else if (allow_special && !strcmp(a, "--allow-special")) o->allow_special = 1;   /* the default; kept for old scripts */
        else if (allow_special && !strcmp(a, "--special-tokens")) o->allow_special = ex_on_off(prog, a, ex_val(prog, argc, argv, &i));
        else if (a[0] == '-' && a[1] != 0) { snprintf(msg, sizeof msg, "unknown option '%s' for %s (see --help)", a, cmd); ex_die(prog, msg); }
        else if (o->file) { snprintf(msg, sizeof msg, "%s takes one input file, got '%s' and '%s'", cmd, o->file, a); ex_die(prog, msg); }
        else o->file = a;
    }
    if (!o->tok) { snprintf(msg, sizeof msg, "%s: --tokenizer T is required", cmd); ex_die(prog, msg); }
}

static int cmd_encode(int argc, char **argv) {
    io_opts o;
    mr_bpe *t;
    uint8_t *text;
    size_t n, ni, i;
    int32_t *ids;
    mr_error e;
    FILE *f;
    int width;
    parse_io("encode", argc, argv, &o, 1, 1);
    t = load_tokenizer(o.tok);
    text = read_input(o.file, &n);
    width = o.out && ends_with(o.out, ".u16") ? 2 : o.out && ends_with(o.out, ".u32") ? 4 : 0;
    if (width == 2 && mr_bpe_vocab_size(t) > 65536) ex_die(prog, "encode: the vocabulary has over 65536 ids; use a .u32 file");
    f = open_out(o.out);
    if (width) {   /* the whole input at once, little-endian */
        if (mr_bpe_encode_alloc(t, text, n, o.allow_special, &ids, &ni, &e) != MR_OK) fail("encode", &e);
        for (i = 0; i < ni; i++) {
            uint8_t b[4];
            uint32_t v = (uint32_t)ids[i];
            b[0] = (uint8_t)v; b[1] = (uint8_t)(v >> 8); b[2] = (uint8_t)(v >> 16); b[3] = (uint8_t)(v >> 24);
            fwrite(b, 1, (size_t)width, f);
        }
        mr_bpe_free_buffer(t, ids);
        fprintf(stderr, "%zu bytes -> %zu ids (%.3f bytes/token) -> %s\n", n, ni, ni ? (double)n / (double)ni : 0.0, o.out);
    } else {       /* one line of ids per input line */
        size_t start = 0;
        ids = (int32_t *)malloc((n + 1) * sizeof(int32_t));
        if (!ids) ex_fail(prog, "out of memory");
        while (start < n) {
            size_t end = start;
            while (end < n && text[end] != '\n') end++;
            if (end < n) end++;
            if (mr_bpe_encode(t, text + start, end - start, o.allow_special, ids, n, &ni, &e) != MR_OK) fail("encode", &e);
            for (i = 0; i < ni; i++) fprintf(f, i ? " %d" : "%d", (int)ids[i]);
            fputc('\n', f);
            start = end;
        }
        free(ids);
    }
    close_out(f, o.out);
    mr_bpe_free(t);
    free_input(text);
    return 0;
}

static int cmd_decode(int argc, char **argv) {
    io_opts o;
    mr_bpe *t;
    uint8_t *in, *bytes;
    size_t n, ni = 0, nb, i;
    int32_t *ids;
    mr_error e;
    FILE *f;
    int width;
    char msg[512];
    parse_io("decode", argc, argv, &o, 1, 0);
    t = load_tokenizer(o.tok);
    in = read_input(o.file, &n);
    width = o.file && ends_with(o.file, ".u16") ? 2 : o.file && ends_with(o.file, ".u32") ? 4 : 0;
    ids = (int32_t *)malloc((n + 1) * sizeof(int32_t));
    if (!ids) ex_fail(prog, "out of memory");
    if (width) {
        if (n % (size_t)width) { snprintf(msg, sizeof msg, "decode: '%s' has %zu bytes, not a multiple of %d", o.file, n, width); ex_die(prog, msg); }
        for (i = 0; i < n; i += (size_t)width)
            ids[ni++] = width == 2 ? (int32_t)(in[i] | in[i + 1] << 8)
                                   : (int32_t)((uint32_t)in[i] | (uint32_t)in[i + 1] << 8 | (uint32_t)in[i + 2] << 16 | (uint32_t)in[i + 3] << 24);
    } else {
        size_t line = 1;
        i = 0;
        while (i < n) {
            long long v = 0;
            size_t s;
            if (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' || in[i] == '\n') { line += in[i] == '\n'; i++; continue; }
            s = i;
            while (i < n && in[i] >= '0' && in[i] <= '9' && v <= 2147483647LL) v = v * 10 + (in[i++] - '0');
            if (i == s || v > 2147483647LL || (i < n && !(in[i] == ' ' || in[i] == '\t' || in[i] == '\r' || in[i] == '\n'))) {
                snprintf(msg, sizeof msg, "decode: line %zu: '%.20s' is not a token id", line, (const char *)in + s);
                for (s = 0; msg[s]; s++) if ((unsigned char)msg[s] < 0x20) msg[s] = '?';
                ex_die(prog, msg);
            }
            ids[ni++] = (int32_t)v;
        }
    }
    for (i = 0, nb = 0; i < ni; i++) {   /* validate the ids and size the output */
        size_t L = mr_bpe_token_bytes(t, ids[i], NULL);
        if (!L) {
            snprintf(msg, sizeof msg, "decode: id %d (number %zu) is outside the vocabulary [0, %d)", (int)ids[i], i + 1, mr_bpe_vocab_size(t));
            ex_die(prog, msg);
        }
        nb += L;
    }
    bytes = (uint8_t *)malloc(nb + 1);
    if (!bytes) ex_fail(prog, "out of memory");
    if (mr_bpe_decode(t, ids, ni, bytes, nb, &nb, &e) != MR_OK) fail("decode", &e);
    f = open_out(o.out);
    fwrite(bytes, 1, nb, f);
    close_out(f, o.out);
    free(bytes);
    free(ids);
    mr_bpe_free(t);
    free_input(in);
    return 0;
}

static int cmd_stats(int argc, char **argv) {
    io_opts o;
    mr_bpe *t;
    uint8_t *text;
    size_t n, ni;
    int32_t *ids;
    mr_error e;
    double t0, t1;
    parse_io("stats", argc, argv, &o, 0, 1);
    t = load_tokenizer(o.tok);
    text = read_input(o.file, &n);
    t0 = ex_now();
    if (mr_bpe_encode_alloc(t, text, n, o.allow_special, &ids, &ni, &e) != MR_OK) fail("encode", &e);
    t1 = ex_now();
    printf("vocab size      %d (%d merges, %d special, %s)\n", mr_bpe_vocab_size(t), mr_bpe_n_merges(t), mr_bpe_n_special(t),
           mr_bpe_pretokenizes(t) ? "pre-tokenized" : "no pre-tokenization");
    printf("bytes           %zu\n", n);
    printf("tokens          %zu\n", ni);
    printf("bytes/token     %.4f\n", ni ? (double)n / (double)ni : 0.0);
    printf("encode time     %.4f s (%.1f MB/s)\n", t1 - t0, t1 > t0 ? (double)n / 1e6 / (t1 - t0) : 0.0);
    mr_bpe_free_buffer(t, ids);
    mr_bpe_free(t);
    free_input(text);
    return 0;
}

int main(int argc, char **argv) {
    ex_watch_stdout(prog);
    if (argc < 2) { usage(stderr); return 2; }
    if (ex_is_version(argv[1])) { ex_version(prog); return 0; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(argv[1], "encode")) return cmd_encode(argc - 2, argv + 2);
    if (!strcmp(argv[1], "decode")) return cmd_decode(argc - 2, argv + 2);
    if (!strcmp(argv[1], "stats")) return cmd_stats(argc - 2, argv + 2);
    fprintf(stderr, "%s: unknown command '%s'\n", prog, argv[1]);
    usage(stderr);
    return 2;
}
