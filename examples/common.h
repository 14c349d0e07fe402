/* Helpers shared by the example programs (flag parsing, timing). */
#ifndef MINRNN_EXAMPLES_COMMON_H
#define MINRNN_EXAMPLES_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Not every program uses every helper. */
#if defined(__GNUC__) || defined(__clang__)
#define EX_UNUSED __attribute__((unused))
#else
#define EX_UNUSED
#endif

EX_UNUSED static double ex_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
/* A duration as 3m07s or 1h05m; NaN or beyond 10^7 s (an ETA not known yet) as ?, a negative one as 0m00s. */
EX_UNUSED static void ex_fmt_time(char *buf, size_t n, double s) {
    long t;
    if (s != s || s > 1e7) { snprintf(buf, n, "?"); return; }
    t = s < 0 ? 0 : (long)s;
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t % 3600 / 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}
/* mkdir -p: 0 when path is a directory afterwards, else -1 (errno says why) */
EX_UNUSED static int ex_mkdir_p(const char *path) {
    char d[4096];
    size_t k, n = strlen(path);
    struct stat st;
    if (n >= sizeof d) { errno = ENAMETOOLONG; return -1; }
    memcpy(d, path, n + 1);
    for (k = 1; k <= n; k++)
        if (d[k] == '/' || d[k] == 0) {
            char c = d[k];
            d[k] = 0;
            if (mkdir(d, 0777) != 0 && errno != EEXIST) return -1;
            d[k] = c;
        }
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}
/* A resumed run's history.csv: the rows after the checkpoint's step (written
   before a crash or an interrupt) are dropped; the header and the rows up to
   step stay. A file that cannot be read is left alone. */
EX_UNUSED static void ex_history_keep(const char *path, long long step) {
    uint8_t *h = NULL;
    size_t hn = 0;
    FILE *f;
    char *line;
    if (mr_read_file(path, &h, &hn, (size_t)1 << 30, NULL, NULL) != MR_OK) return;
    f = fopen(path, "w");
    for (line = (char *)h; f && *line;) {
        char *e = strchr(line, '\n');
        size_t L = e ? (size_t)(e - line) + 1 : strlen(line);
        if (line[0] < '0' || line[0] > '9' || strtoll(line, NULL, 10) <= step) fwrite(line, 1, L, f);
        line += L;
    }
    if (f) fclose(f);
    mr_buffer_free(h);
}
/* Exit statuses of every program (the README's table):
     0    success
     1    a failure while running: out of memory, an output that cannot be
          written (a full disk, /dev/full), the training diverged, a process
          of a parallel run died
     2    the command is wrong: an unknown or bad flag, an input file that
          is missing, unreadable or invalid
     130  interrupted (Ctrl-C, SIGTERM); minrnn-train saved first */
#define EX_OK 0
#define EX_FAIL 1
#define EX_USAGE 2
#define EX_INTERRUPTED 130
/* Called before a usage error exits (a parallel run finalizes MPI there). */
static void (*ex_before_exit)(void) = NULL;
EX_UNUSED static void ex_exit(const char *prog, const char *msg, int code) {
    fprintf(stderr, "%s: %s\n", prog, msg);
    if (ex_before_exit) ex_before_exit();
    exit(code);
}
EX_UNUSED static void ex_die(const char *prog, const char *msg) { ex_exit(prog, msg, EX_USAGE); }   /* the command is wrong */
EX_UNUSED static void ex_fail(const char *prog, const char *msg) { ex_exit(prog, msg, EX_FAIL); }   /* a failure while running */
#ifdef MINRNN_H
/* A library error: out of memory or a failed write is a failure while running, the rest a wrong input. */
EX_UNUSED static int ex_code(mr_status s) { return s == MR_ERR_NOMEM ? EX_FAIL : EX_USAGE; }
EX_UNUSED static void ex_die_err(const char *prog, const mr_error *e) { ex_exit(prog, e->msg, ex_code(e->status)); }
#endif
EX_UNUSED static int ex_is_version(const char *f) { return !strcmp(f, "--version") || !strcmp(f, "-V"); }
EX_UNUSED static void ex_version(const char *prog) {
#ifdef MINRNN_H
    printf("%s (minrnn %d.%d.%d)\n", prog, MINRNN_VERSION_MAJOR, MINRNN_VERSION_MINOR, MINRNN_VERSION_PATCH);
#else
    printf("%s\n", prog);
#endif
}
/* At exit, standard output is flushed and checked: output that could not be
   written (a full disk, /dev/full, a closed pipe) is an error, exit 1. */
static const char *ex_stdout_prog = "minrnn";
EX_UNUSED static void ex_stdout_check(void) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int e = errno;
        fprintf(stderr, "%s: cannot write the output: %s\n", ex_stdout_prog, e ? strerror(e) : "write error");
        _exit(EX_FAIL);
    }
}
EX_UNUSED static void ex_watch_stdout(const char *prog) { ex_stdout_prog = prog; atexit(ex_stdout_check); }
/* --special-tokens on|off: whether a BPE tokenizer's added tokens (<|endoftext|>, ...) written in the
   text are read as their ids (on, the default, as Hugging Face does) or as plain text (off). */
EX_UNUSED static int ex_on_off(const char *prog, const char *flag, const char *v) {
    char b[200];
    if (!strcmp(v, "on")) return 1;
    if (!strcmp(v, "off")) return 0;
    snprintf(b, sizeof b, "%s must be on or off, not '%s'", flag, v);
    ex_die(prog, b);
    return 0;
}
/* Strict number parsing: the whole string must be a number. */
EX_UNUSED static long long ex_int(const char *prog, const char *flag, const char *s, long long lo, long long hi) {
    char *end;
    long long v;
    char buf[256];
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end) { snprintf(buf, sizeof buf, "%s expects an integer, got '%s'", flag, s); ex_die(prog, buf); }
    if (v < lo || v > hi) { snprintf(buf, sizeof buf, "%s must be in [%lld, %lld], got %lld", flag, lo, hi, v); ex_die(prog, buf); }
    return v;
}
EX_UNUSED static double ex_num(const char *prog, const char *flag, const char *s, double lo, double hi) {
    char *end;
    double v;
    char buf[256];
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || v != v) { snprintf(buf, sizeof buf, "%s expects a number, got '%s'", flag, s); ex_die(prog, buf); }
    if (v < lo || v > hi) { snprintf(buf, sizeof buf, "%s must be in [%g, %g], got %g", flag, lo, hi, v); ex_die(prog, buf); }
    return v;
}
EX_UNUSED static const char *ex_val(const char *prog, int argc, char **argv, int *i) {
    char buf[256];
    if (*i + 1 >= argc) { snprintf(buf, sizeof buf, "%s needs a value", argv[*i]); ex_die(prog, buf); }
    return argv[++*i];
}
#endif
