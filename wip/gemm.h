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
