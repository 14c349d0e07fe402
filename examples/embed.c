/* minrnn-embed: inference the way embedded and game code runs it. The model
   is compiled into the program (MODEL_H, a header written by `minrnn-convert
   embed MODEL.bin OUT.h`: the checkpoint as a C array and the memory its
   inference needs); every byte the library uses comes from two static
   buffers (a bump allocator for the model, its state and the context, and the
   context's arena); the library part is built with MINRNN_NO_STDIO and
   MINRNN_NO_TRAINING (the inference-only build), without OpenMP, and with MINRNN_MALLOC/REALLOC/FREE that fail, so nothing can reach
   malloc. It generates text with a fixed seed and then reports the
   allocations made after start (loading, state and context): a nonzero count
   is a failure (exit 1).

     make build/minrnn-embed        (the shipped model: tests/fixtures/embed_small_q8.bin)
     build/minrnn-embed [N tokens (400)] [seed (1)] [prompt]

   To embed your own model: minrnn-convert quantize MODEL.bin Q.bin (optional),
   minrnn-convert embed Q.bin my_model.h, and build this file with
   -DMODEL_H='"my_model.h"'. */
#define MINRNN_NO_STDIO
#define MINRNN_NO_OPENMP
#define MINRNN_NO_TRAINING
#define MINRNN_MALLOC(sz, ud) ((void)(sz), (void)(ud), (void *)0)
#define MINRNN_REALLOC(p, oldsz, newsz, ud) ((void)(p), (void)(oldsz), (void)(newsz), (void)(ud), (void *)0)
#define MINRNN_FREE(p, ud) ((void)(p), (void)(ud))
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#ifndef MODEL_H
#define MODEL_H "embed_model.h"
#endif
#include MODEL_H

#include <stdio.h>    /* the program's own output; the library above has none */
#include <stdlib.h>

/* the bump allocator: 64-byte aligned pieces of one static buffer, never freed */
static unsigned char heap[MINRNN_MODEL_HEAP_BYTES] __attribute__((aligned(64)));
static unsigned char arena[MINRNN_MODEL_ARENA_BYTES] __attribute__((aligned(64)));
static size_t heap_used;
static int n_allocs;
static void *bump_alloc(size_t n, void *ud) {
    size_t at = (heap_used + 63) & ~(size_t)63;
    (void)ud;
    if (at > sizeof heap || n > sizeof heap - at) return NULL;
    heap_used = at + n;
    n_allocs++;
    return heap + at;
}
static void bump_free(void *p, void *ud) { (void)p; (void)ud; }

int main(int argc, char **argv) {
    mr_allocator al;
    mr_model *m = NULL;
    mr_vocab v;
    mr_state *st = NULL;
    mr_ctx *ctx = NULL;
    mr_ctx_params cp = mr_ctx_defaults();
    mr_error err;
    mr_rng rng;
    static float logits[4096], scratch[2 * 4096];
    static int32_t prompt_ids[256];
    long n = argc > 1 ? atol(argv[1]) : 400, i;
    unsigned long seed = argc > 2 ? strtoul(argv[2], NULL, 10) : 1;
    const char *prompt = argc > 3 ? argv[3] : "ROMEO:";
    size_t plen = strlen(prompt), k;
    int start_allocs;
    int32_t tok;
    memset(&al, 0, sizeof al);
    al.alloc = bump_alloc; al.free = bump_free;
    if (n < 0 || plen == 0 || plen > sizeof prompt_ids / sizeof prompt_ids[0]) { fprintf(stderr, "usage: minrnn-embed [N] [seed] [prompt of 1-256 characters]\n"); return 2; }
    /* start: the model from the array, its state, a context on the static arena */
    if (mr_ckpt_load_mem(&m, &v, NULL, minrnn_model, minrnn_model_len, &al, &err) != MR_OK) { fprintf(stderr, "minrnn-embed: %s\n", err.msg); return 1; }
    if (v.kind != MR_VOCAB_CHARS || m->cfg.vocab_size > 4096) { fprintf(stderr, "minrnn-embed: this example speaks character vocabularies\n"); return 1; }
    if (mr_state_new(&st, m, 1, &err) != MR_OK) { fprintf(stderr, "minrnn-embed: %s\n", err.msg); return 1; }
    cp.allocator = &al;
    cp.arena_buffer = arena;
    cp.arena_bytes = sizeof arena;
    cp.n_threads = 1;
    if (mr_ctx_new(&ctx, &cp) != MR_OK) { fprintf(stderr, "minrnn-embed: cannot create the context\n"); return 1; }
    start_allocs = n_allocs;
    /* run: the prompt, then n sampled tokens */
    if (mr_vocab_encode(&v, (const uint8_t *)prompt, plen, prompt_ids, &err) != MR_OK) { fprintf(stderr, "minrnn-embed: %s\n", err.msg); return 2; }
    mr_rng_seed(&rng, seed);
    fputs(prompt, stdout);
    for (k = 0; k < plen; k++) {
        if (mr_model_step(ctx, m, &prompt_ids[k], st, logits) != MR_OK) { fprintf(stderr, "minrnn-embed: %s\n", mr_ctx_error(ctx)); return 1; }
        mr_ctx_reset(ctx);
    }
    for (i = 0; i < n; i++) {
        if (st->max_pos && st->pos >= st->max_pos) break;   /* an attention model's context is full */
        tok = (int32_t)mr_sample(logits, m->cfg.vocab_size, 0.8f, 0, 0.95f, &rng, scratch);
        putchar(v.chars[tok]);
        if (mr_model_step(ctx, m, &tok, st, logits) != MR_OK) { fprintf(stderr, "minrnn-embed: %s\n", mr_ctx_error(ctx)); return 1; }
        mr_ctx_reset(ctx);
    }
    putchar('\n');
    fprintf(stderr, "[minrnn-embed: %d int8 tensors; heap %zu of %zu bytes in %d allocations, arena peak %zu of %zu bytes; allocations after start: %d]\n",
            mr_model_n_quantized(m), heap_used, sizeof heap, start_allocs, mr_ctx_arena_peak(ctx), sizeof arena, n_allocs - start_allocs);
    mr_ctx_free(ctx);
    mr_state_free(st);
    mr_model_free(m);
    return n_allocs != start_allocs;
}
