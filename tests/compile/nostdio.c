/* Compile check: MINRNN_NO_STDIO and a custom allocator, no OpenMP. */
#include <stdlib.h>
static void *my_alloc(size_t n, void *ud) { (void)ud; return malloc(n); }
static void *my_realloc(void *p, size_t o, size_t n, void *ud) { (void)ud; (void)o; return realloc(p, n); }
static void my_free(void *p, void *ud) { (void)ud; free(p); }
#define MINRNN_MALLOC(sz, ud) my_alloc(sz, ud)
#define MINRNN_REALLOC(p, o, n, ud) my_realloc(p, o, n, ud)
#define MINRNN_FREE(p, ud) my_free(p, ud)
#define MINRNN_NO_STDIO
#define MINRNN_NO_OPENMP
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
int main(void) { mr_ctx *c; if (mr_ctx_new(&c, NULL) != MR_OK) return 1; mr_ctx_free(c); return 0; }
