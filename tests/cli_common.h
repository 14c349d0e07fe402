/* Helpers of the tests that run the programs (test_cli, test_compare,
   test_mpi): a shell command's exit status, a whole file as a string. */
#ifndef MINRNN_TESTS_CLI_COMMON_H
#define MINRNN_TESTS_CLI_COMMON_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#if defined(__GNUC__) || defined(__clang__)
#define CLI_UNUSED __attribute__((unused))
#else
#define CLI_UNUSED
#endif

/* Runs a shell command; returns its exit status (-1 when it did not exit). */
CLI_UNUSED static int sh(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    int rc;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc)) return -1;
    return WEXITSTATUS(rc);
}
/* The file at path with a NUL after it (free with mr_buffer_free), its length in *n if n; NULL when unreadable. */
CLI_UNUSED static char *slurp(const char *path, size_t *n) {
    uint8_t *b = NULL;
    size_t len = 0;
    if (mr_read_file(path, &b, &len, (size_t)1 << 30, NULL, NULL) != MR_OK) return NULL;
    if (n) *n = len;
    return (char *)b;
}
#endif
