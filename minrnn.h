/* minrnn.h - v0.1.0 - small recurrent language models in one C header.
   No warranty; MIT or public domain, your choice (license at the end of the file).

   Train and run MinGRU / MinLSTM / GRU language models on a CPU: float32
   tensors, a tape-based reverse-mode autodiff, a packed GEMM, AdamW/SGD,
   a parallel scan, a byte-level BPE tokenizer and a checkpoint format.

   USAGE
     Do this in *one* C or C++ file:
        #define MINRNN_IMPLEMENTATION
        #include "minrnn.h"
     Every other file includes "minrnn.h" without the define.
     The implementation uses stb_ds.h (Debian: libstb-dev, /usr/include/stb);
     put its directory on the include path (-I/usr/include/stb). If your
     program already compiles STB_DS_IMPLEMENTATION elsewhere, also define
     MINRNN_NO_STB_DS_IMPLEMENTATION.

   TABLE OF CONTENTS (declarations and implementation follow this order)
     1. errors and allocation       mr_status, mr_status_str, mr_allocator
     2. context and arena           mr_ctx_init/free/reset, threads, no-grad
     3. random numbers              mr_rng (xoshiro256**), seeded, reproducible
     4. tensors                     mr_tensor, views along the last axis, reshape
     5. parameters                  mr_params: one contiguous buffer for values,
                                    one for gradients
     6. tape and ops                define-by-run autodiff, mr_backward
     7. gradient check              mr_gradcheck (central differences in double)
     8. GEMM                        packed, cache-blocked, OpenMP, all transposes
     9. optimizers                  AdamW, SGD+momentum, clipping, LR schedules
    10. backend                     function table (gemm, scan) filled by
                                    minrnn_cuda.cu; NULL entries use the CPU

   COMPILE-TIME OPTIONS (set them before the implementation include; the ones
   marked "everywhere" must be the same in every file that includes minrnn.h)
     MINRNN_STATIC          all functions static to the implementation file (everywhere)
     MINRNN_MALLOC(sz,ud) / MINRNN_REALLOC(p,oldsz,newsz,ud) / MINRNN_FREE(p,ud)
                            allocation; define all three or none. oldsz may be 0
                            when it is unknown (stb_ds containers). ud is the
                            user pointer of the mr_allocator, or NULL.
     MINRNN_ASSERT(x)       internal invariants only (default: assert.h)
     MINRNN_NO_OPENMP       ignore OpenMP even when compiled with -fopenmp
     MINRNN_NO_STDIO        remove the FILE* helpers (memory and callback I/O remain)
     MINRNN_NO_STB_DS_IMPLEMENTATION  do not compile stb_ds's implementation here

   QUICK START
     mr_ctx *ctx; mr_ctx_params cp = mr_ctx_default_params();
     if (mr_ctx_init(&ctx, &cp) != MR_OK) return 1;
     mr_params *ps = mr_params_new(ctx);
     mr_tensor *w = mr_params_add(ps, "w", 2, (int64_t[]){16, 8}, 0);
     mr_params_alloc(ps); mr_params_init_normal(ps, 0.02f, &rng);
     mr_adamw opt; mr_adamw_init(&opt, ps, mr_adamw_default());
     for (step...) {
       mr_tensor *x = mr_tensor_new(ctx, 2, (int64_t[]){4, 8});   (arena)
       mr_tensor *y = mr_matmul(ctx, x, w, 0, 1, NULL);            x @ w^T
       mr_tensor *loss = mr_mean(ctx, mr_mul(ctx, y, y));
       if (mr_ctx_status(ctx) != MR_OK) { puts(mr_ctx_error(ctx)); break; }
       mr_backward(ctx, loss);  mr_adamw_step(&opt, lr);
       mr_params_zero_grad(ps); mr_ctx_reset(ctx);                 frees the step
     }
     mr_adamw_free(&opt); mr_params_free(ps); mr_ctx_free(ctx);

   THREADS AND OWNERSHIP
     There is no global mutable state: errors, the arena, the tape, the
     thread count and the backend belong to an mr_ctx. Two threads may each
     use their own context (and their own models) at the same time; one
     context must not be used by two threads at once. Inside a call the
     library may use OpenMP threads (mr_ctx_set_threads). Tensors returned by
     ops live in the context's arena until mr_ctx_reset; parameters live in
     their mr_params until mr_params_free. The library never frees or closes
     what the caller owns, never prints, never exits: functions that can fail
     return an mr_status (0 = MR_OK, negative = error) and leave a message in
     the context (mr_ctx_error) or in an mr_error the caller passes.
*/
#ifndef MINRNN_H
#define MINRNN_H

#include <stddef.h>
#include <stdint.h>

#define MINRNN_VERSION_MAJOR 0
#define MINRNN_VERSION_MINOR 1
#define MINRNN_VERSION_PATCH 0

#ifdef MINRNN_STATIC
#define MRDEF static
#else
#define MRDEF extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== */
/* 1. errors and allocation                                                 */
/* ======================================================================== */
typedef enum mr_status {
    MR_OK = 0,
    MR_ERR_NOMEM = -1,    /* an allocation failed */
    MR_ERR_ARENA = -2,    /* the fixed-size arena is full */
    MR_ERR_ARG = -3,      /* an invalid argument (size <= 0, NULL, bad flag) */
    MR_ERR_SHAPE = -4,    /* tensor shapes disagree */
    MR_ERR_IO = -5,       /* a read or write failed */
    MR_ERR_FORMAT = -6,   /* malformed bytes (file, tokenizer, checkpoint) */
    MR_ERR_VERSION = -7,  /* a file from a newer format version */
    MR_ERR_CHECKSUM = -8, /* a CRC mismatch */
    MR_ERR_BACKEND = -9,  /* a backend (CUDA) call failed */
    MR_ERR_RANGE = -10,   /* an index or token id out of range */
    MR_ERR_STATE = -11    /* the call is not valid in the current state */
} mr_status;

MRDEF const char *mr_status_str(mr_status s);

/* An error record for calls that have no context: pass one (or NULL). */
typedef struct mr_error {
    mr_status status;
    char msg[256];
} mr_error;

/* Run-time allocator; any NULL member falls back to MINRNN_MALLOC & co. */
typedef struct mr_allocator {
    void *(*alloc)(size_t size, void *ud);
    void *(*realloc)(void *p, size_t old_size, size_t new_size, void *ud);
    void (*free)(void *p, void *ud);
    void *ud;
} mr_allocator;

#ifdef __cplusplus
}
#endif
#endif /* MINRNN_H */

/* ======================================================================== */
/*                            IMPLEMENTATION                                */
/* ======================================================================== */
#ifdef MINRNN_IMPLEMENTATION
#ifndef MINRNN_IMPLEMENTATION_DONE
#define MINRNN_IMPLEMENTATION_DONE

#if defined(MINRNN_MALLOC) && defined(MINRNN_REALLOC) && defined(MINRNN_FREE)
#elif !defined(MINRNN_MALLOC) && !defined(MINRNN_REALLOC) && !defined(MINRNN_FREE)
#include <stdlib.h>
#define MINRNN_MALLOC(sz, ud) ((void)(ud), malloc(sz))
#define MINRNN_REALLOC(p, oldsz, newsz, ud) ((void)(ud), (void)(oldsz), realloc((p), (newsz)))
#define MINRNN_FREE(p, ud) ((void)(ud), free(p))
#else
#error "minrnn: define all of MINRNN_MALLOC, MINRNN_REALLOC and MINRNN_FREE, or none"
#endif

#ifndef MINRNN_ASSERT
#include <assert.h>
#define MINRNN_ASSERT(x) assert(x)
#endif

#include <string.h>
#include <math.h>
#include <stdarg.h>
#include <float.h>

#if defined(_OPENMP) && !defined(MINRNN_NO_OPENMP)
#include <omp.h>
#define MR__HAVE_OMP 1
#define MR__PRAGMA(x) _Pragma(#x)
#define MR__OMP(x) MR__PRAGMA(omp x)
#else
#define MR__HAVE_OMP 0
#define MR__OMP(x)
#endif

/* stb_ds containers allocate through our macros (old size unknown: 0). */
#ifndef STBDS_REALLOC
#define STBDS_REALLOC(c, p, s) MINRNN_REALLOC((p), 0, (s), NULL)
#define STBDS_FREE(c, p) MINRNN_FREE((p), NULL)
#endif
#define STBDS_NO_SHORT_NAMES
#if !defined(MINRNN_NO_STB_DS_IMPLEMENTATION) && !defined(STB_DS_IMPLEMENTATION)
#define STB_DS_IMPLEMENTATION
#endif
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#endif
#include "stb_ds.h"
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic pop
#endif

#ifdef __cplusplus
#define MR__CAST(T, x) ((T)(x))
#else
#define MR__CAST(T, x) (x)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MR__PRIV static __attribute__((unused))
#else
#define MR__PRIV static
#endif
#define MR__MIN(a, b) ((a) < (b) ? (a) : (b))
#define MR__MAX(a, b) ((a) > (b) ? (a) : (b))

/* ------------------------------------------------------------------------ */
/* 1. errors and allocation                                                 */
/* ------------------------------------------------------------------------ */
MRDEF const char *mr_status_str(mr_status s) {
    switch (s) {
    case MR_OK: return "ok";
    case MR_ERR_NOMEM: return "out of memory";
    case MR_ERR_ARENA: return "arena full";
    case MR_ERR_ARG: return "invalid argument";
    case MR_ERR_SHAPE: return "shape mismatch";
    case MR_ERR_IO: return "i/o error";
    case MR_ERR_FORMAT: return "malformed data";
    case MR_ERR_VERSION: return "unsupported version";
    case MR_ERR_CHECKSUM: return "checksum mismatch";
    case MR_ERR_BACKEND: return "backend error";
    case MR_ERR_RANGE: return "out of range";
    case MR_ERR_STATE: return "invalid state";
    }
    return "unknown status";
}

MR__PRIV void *mr__alloc(const mr_allocator *a, size_t n) {
    if (n == 0) n = 1;
    if (a && a->alloc) return a->alloc(n, a->ud);
    return MINRNN_MALLOC(n, a ? a->ud : NULL);
}
MR__PRIV void *mr__realloc(const mr_allocator *a, void *p, size_t oldn, size_t n) {
    if (n == 0) n = 1;
    if (a && a->realloc) return a->realloc(p, oldn, n, a->ud);
    if (a && a->alloc) { /* alloc+free given without realloc: emulate */
        void *q = a->alloc(n, a->ud);
        if (q && p) { memcpy(q, p, MR__MIN(oldn, n)); if (a->free) a->free(p, a->ud); }
        return q;
    }
    return MINRNN_REALLOC(p, oldn, n, a ? a->ud : NULL);
}
MR__PRIV void mr__free(const mr_allocator *a, void *p) {
    if (!p) return;
    if (a && a->free) { a->free(p, a->ud); return; }
    MINRNN_FREE(p, a ? a->ud : NULL);
}
MR__PRIV void *mr__calloc(const mr_allocator *a, size_t n) {
    void *p = mr__alloc(a, n);
    if (p) memset(p, 0, n);
    return p;
}
/* Overflow-checked size arithmetic: returns 0 on overflow. */
MR__PRIV int mr__mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}
MR__PRIV int mr__add_ok(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}

/* A tiny formatter (no stdio needed): %s %c %d %i %u %x %ld %lu %lld %llu
   %zu %zd %g %f %e %%; width/precision are accepted, precision applies to
   floats (default 6 significant digits for %g). */
MR__PRIV void mr__fmt_put(char *buf, size_t cap, size_t *n, char c) {
    if (*n + 1 < cap) buf[*n] = c;
    (*n)++;
}
MR__PRIV void mr__fmt_str(char *buf, size_t cap, size_t *n, const char *s) {
    if (!s) s = "(null)";
    while (*s) mr__fmt_put(buf, cap, n, *s++);
}
MR__PRIV void mr__fmt_u64(char *buf, size_t cap, size_t *n, unsigned long long v, int base) {
    char tmp[32];
    int i = 0;
    do { int d = (int)(v % (unsigned)base); tmp[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10); v /= (unsigned)base; } while (v);
    while (i) mr__fmt_put(buf, cap, n, tmp[--i]);
}
MR__PRIV void mr__fmt_dbl(char *buf, size_t cap, size_t *n, double v, int prec) {
    int e = 0, i;
    double m;
    if (v != v) { mr__fmt_str(buf, cap, n, "nan"); return; }
    if (v < 0) { mr__fmt_put(buf, cap, n, '-'); v = -v; }
    if (v > DBL_MAX) { mr__fmt_str(buf, cap, n, "inf"); return; }
    if (prec <= 0) prec = 6;
    if (prec > 17) prec = 17;
    if (v == 0) { mr__fmt_put(buf, cap, n, '0'); return; }
    m = v;
    while (m >= 10.0) { m /= 10.0; e++; }
    while (m < 1.0) { m *= 10.0; e--; }
    { /* round to prec significant digits */
        double r = 0.5;
        for (i = 1; i < prec; i++) r /= 10.0;
        m += r;
        if (m >= 10.0) { m /= 10.0; e++; }
    }
    if (e >= -5 && e < prec) { /* fixed notation */
        unsigned long long ip;
        double f;
        int digits_after = prec - 1 - e, last_nz = 0, cnt = 0;
        char frac[24];
        double p10 = 1.0;
        for (i = 0; i < e; i++) p10 *= 10.0;
        if (e >= 0) {
            /* integer part: first e+1 digits of m */
            ip = 0;
            f = m;
            for (i = 0; i <= e; i++) { int d = (int)f; if (d > 9) d = 9; ip = ip * 10 + (unsigned long long)d; f = (f - d) * 10.0; }
            mr__fmt_u64(buf, cap, n, ip, 10);
        } else {
            mr__fmt_put(buf, cap, n, '0');
            f = m;
            for (i = 0; i < -e - 1 && cnt < 23; i++) frac[cnt++] = '0';
            digits_after = prec + (-e - 1);
        }
        for (i = cnt; i < digits_after && i < 23; i++) { int d = (int)f; if (d > 9) d = 9; frac[cnt++] = (char)('0' + d); f = (f - d) * 10.0; }
        for (i = 0; i < cnt; i++) if (frac[i] != '0') last_nz = i + 1;
        if (last_nz) { mr__fmt_put(buf, cap, n, '.'); for (i = 0; i < last_nz; i++) mr__fmt_put(buf, cap, n, frac[i]); }
        (void)p10;
    } else { /* exponent notation */
        int last_nz = 1;
        char dig[20];
        double f = m;
        for (i = 0; i < prec; i++) { int d = (int)f; if (d > 9) d = 9; dig[i] = (char)('0' + d); f = (f - d) * 10.0; if (d) last_nz = i + 1; }
        mr__fmt_put(buf, cap, n, dig[0]);
        if (last_nz > 1) { mr__fmt_put(buf, cap, n, '.'); for (i = 1; i < last_nz; i++) mr__fmt_put(buf, cap, n, dig[i]); }
        mr__fmt_put(buf, cap, n, 'e');
        if (e < 0) { mr__fmt_put(buf, cap, n, '-'); e = -e; } else mr__fmt_put(buf, cap, n, '+');
        if (e < 10) mr__fmt_put(buf, cap, n, '0');
        mr__fmt_u64(buf, cap, n, (unsigned long long)e, 10);
    }
}
MR__PRIV size_t mr__vfmt(char *buf, size_t cap, const char *fmt, va_list ap) {
    size_t n = 0;
    while (*fmt) {
        int lng = 0, prec = -1, z = 0;
        if (*fmt != '%') { mr__fmt_put(buf, cap, &n, *fmt++); continue; }
        fmt++;
        while (*fmt == '-' || *fmt == '+' || *fmt == ' ' || *fmt == '0' || *fmt == '#') fmt++;
        while (*fmt >= '0' && *fmt <= '9') fmt++;
        if (*fmt == '.') { fmt++; prec = 0; while (*fmt >= '0' && *fmt <= '9') prec = prec * 10 + (*fmt++ - '0'); }
        while (*fmt == 'l') { lng++; fmt++; }
        if (*fmt == 'z') { z = 1; fmt++; }
        switch (*fmt) {
        case 's': mr__fmt_str(buf, cap, &n, va_arg(ap, const char *)); break;
        case 'c': mr__fmt_put(buf, cap, &n, (char)va_arg(ap, int)); break;
        case 'd': case 'i': {
            long long v = z ? (long long)va_arg(ap, ptrdiff_t) : lng >= 2 ? va_arg(ap, long long) : lng == 1 ? va_arg(ap, long) : va_arg(ap, int);
            if (v < 0) { mr__fmt_put(buf, cap, &n, '-'); mr__fmt_u64(buf, cap, &n, (unsigned long long)(-(v + 1)) + 1u, 10); }
            else mr__fmt_u64(buf, cap, &n, (unsigned long long)v, 10);
        } break;
        case 'u': case 'x': {
            unsigned long long v = z ? (unsigned long long)va_arg(ap, size_t) : lng >= 2 ? va_arg(ap, unsigned long long) : lng == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            mr__fmt_u64(buf, cap, &n, v, *fmt == 'x' ? 16 : 10);
        } break;
        case 'g': case 'f': case 'e': mr__fmt_dbl(buf, cap, &n, va_arg(ap, double), prec < 0 ? 6 : prec == 0 ? 1 : prec); break;
        case '%': mr__fmt_put(buf, cap, &n, '%'); break;
        case 0: fmt--; break;
        default: mr__fmt_put(buf, cap, &n, *fmt); break;
        }
        fmt++;
    }
    if (cap) buf[n < cap ? n : cap - 1] = 0;
    return n;
}
/* Sets e (if not NULL) and returns s. */
MR__PRIV mr_status mr__seterr(mr_error *e, mr_status s, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        e->status = s;
        mr__vfmt(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* ======================================================================== */
/* Revision history                                                         */
/*   0.1.0  first release: core, autodiff, GEMM, optimizers                 */
/* ======================================================================== */
#endif /* MINRNN_IMPLEMENTATION_DONE */
#endif /* MINRNN_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 the minrnn authors
Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:
The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.
In jurisdictions that recognize copyright laws, the author or authors of this
software dedicate any and all copyright interest in the software to the public
domain. We make this dedication in recognition of the continuing enrichment of
the program by public domain authors. Neither the name of the author or authors
of this software nor the names of its contributors may be used to promote or
use of this software, for any purpose.
------------------------------------------------------------------------------
*/
