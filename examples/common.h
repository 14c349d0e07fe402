/* Helpers shared by the example programs (flag parsing, timing). */
#ifndef MINRNN_EXAMPLES_COMMON_H
#define MINRNN_EXAMPLES_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>

static double ex_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
/* Called before a usage error exits (a parallel run finalizes MPI there). */
static void (*ex_before_exit)(void) = NULL;
static void ex_die(const char *prog, const char *msg) {
    fprintf(stderr, "%s: %s\n", prog, msg);
    if (ex_before_exit) ex_before_exit();
    exit(2);
}
/* Strict number parsing: the whole string must be a number. */
static long long ex_int(const char *prog, const char *flag, const char *s, long long lo, long long hi) {
    char *end;
    long long v;
    char buf[256];
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end) { snprintf(buf, sizeof buf, "%s expects an integer, got '%s'", flag, s); ex_die(prog, buf); }
    if (v < lo || v > hi) { snprintf(buf, sizeof buf, "%s must be in [%lld, %lld], got %lld", flag, lo, hi, v); ex_die(prog, buf); }
    return v;
}
static double ex_num(const char *prog, const char *flag, const char *s, double lo, double hi) {
    char *end;
    double v;
    char buf[256];
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || v != v) { snprintf(buf, sizeof buf, "%s expects a number, got '%s'", flag, s); ex_die(prog, buf); }
    if (v < lo || v > hi) { snprintf(buf, sizeof buf, "%s must be in [%g, %g], got %g", flag, lo, hi, v); ex_die(prog, buf); }
    return v;
}
static const char *ex_val(const char *prog, int argc, char **argv, int *i) {
    char buf[256];
    if (*i + 1 >= argc) { snprintf(buf, sizeof buf, "%s needs a value", argv[*i]); ex_die(prog, buf); }
    return argv[++*i];
}
#endif
