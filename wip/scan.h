/* ------------------------------------------------------------------------ */
/* scan: h_t = a_t * h_{t-1} + b_t over [B, T, C]                           */
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

#define MR__SCAN_AUTO (-1)   /* = public MR_SCAN_* - 1 for AUTO, SEQUENTIAL, CHUNKED */
#define MR__SCAN_SEQ 0
#define MR__SCAN_CHUNKED 1
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
/* exp(x - y) for x <= y (a weight in [0, 1]); NaN (inf - inf) and rounding
   above 0 give 1. */
MR__PRIV float mr__scan_expd(float x, float y) { return expf(fminf(x - y, 0.f)); }
/* w = exp(la + lhp - lh), lhp - lh first: exact for close values, where
   la + lhp would round to the ulp of |log h|. */
MR__PRIV float mr__scan_w(float la, float lhp, float lh) { return expf(fminf(la + (lhp - lh), 0.f)); }
/* w_t given u_t: w + u = 1 exactly, and u = b / h carries the rounding of
   log h only as a relative error, so 1 - u is the accurate w when u < 1/2
   (w ~ 1: a ~ 1 or a growing h, where the direct form's error would compound
   over every step of the backward). */
MR__PRIV float mr__scan_wu(float u, float la, float lhp, float lh) { return u < 0.5f ? 1.f - u : mr__scan_w(la, lhp, lh); }

/* The log-space state is carried in double between rows (tiles of
   MR__SCAN_LTILE channels), only the stored lh is rounded: in float the
   rounding of |log h| would accumulate without bound when w ~ 1 (a growing h
   or a ~ 1), e.g. 0.7 in log h after 1e5 steps at log h ~ 1000. The softplus
   correction (<= log 2) needs only float. */
#define MR__SCAN_LTILE 64
/* logaddexp without NaN: equal arguments (both -inf included) give x + log 2. */
MR__PRIV double mr__scan_lae_d(double x, double y) {
    double mx = x > y ? x : y, mn = x > y ? y : x;
    return mx + (double)log1pf(expf(mx == mn ? 0.f : (float)(mn - mx)));
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
/* Backward rows n-1..0 of a chunk [t0, t1) (pointers at row t0):
   G_t = g_t + w_{t+1} G_{t+1}, dla_t = G_t w_t, dlb_t = G_t u_t, using
   dla_{t+1} = w_{t+1} G_{t+1}. la1, lb1, lh1 = rows t1 of la, lb, lh (NULL when t1 = T:
   G_{T-1} = g_{T-1} + gin); gin = G_{t1} (NULL: zero); lhm1 = lh_{t0-1}
   (NULL: no state, w = 0). */
MR__PRIV void mr__scan_bwd_log_range(int n, int w, int64_t ld, const float *la, const float *lb, const float *lh,
                                     const float *lhm1, const float *la1, const float *lb1, const float *lh1, const float *g,
                                     const float *gin, float *dla, float *dlb) {
    int i, c;
    for (i = n - 1; i >= 0; i--) {
        const float *ai = la + i * ld, *bi = lb + i * ld, *hi = lh + i * ld;
        const float *gi = g + i * ld, *hp = i ? lh + (i - 1) * ld : lhm1;
        float *da = dla + i * ld, *db = dlb + i * ld;
        const float *nx = i + 1 < n ? dla + (i + 1) * ld : NULL;
        for (c = 0; c < w; c++) {
            float G = gi[c], u = mr__scan_expd(bi[c], hi[c]);
            if (nx) G += nx[c];
            else if (gin) G += la1 ? gin[c] * mr__scan_wu(mr__scan_expd(lb1[c], lh1[c]), la1[c], hi[c], lh1[c]) : gin[c];
            da[c] = hp ? G * mr__scan_wu(u, ai[c], hp[c], hi[c]) : 0.f;
            db[c] = G * u;
        }
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
/* MR__SCAN_AUTO: the sequential kernel when the (row, 16-channel block) items
   keep every thread busy, else the chunked one. */
MR__PRIV int mr__scan_choose(int B, int T, int C, int nthreads) {
    int nt = mr__scan_nt(nthreads);
    if (nt <= 1 || T < 64 || (int64_t)B * ((C + MR__SCAN_CBLK - 1) / MR__SCAN_CBLK) >= 4 * (int64_t)nt)
        return MR__SCAN_SEQ;
    return MR__SCAN_CHUNKED;
}
/* algo: MR__SCAN_SEQ, MR__SCAN_CHUNKED or MR__SCAN_AUTO; chunk <= 0 is
   automatic; workspace: mr__scan_workspace_floats() floats (NULL: sequential). */
MR__PRIV void mr__scan_fwd(int algo, int B, int T, int C, const float *a, const float *b, const float *h0, float *h,
                           int chunk, float *workspace, int nthreads) {
    if (algo == MR__SCAN_AUTO) algo = mr__scan_choose(B, T, C, nthreads);
    if (algo == MR__SCAN_CHUNKED) mr__scan_fwd_chunked(B, T, C, a, b, h0, h, chunk, workspace, nthreads);
    else mr__scan_fwd_seq(B, T, C, a, b, h0, h, nthreads);
}
MR__PRIV void mr__scan_bwd(int algo, int B, int T, int C, const float *a, const float *h, const float *h0,
                           const float *dh, const float *dhT, float *da, float *db, float *dh0, int chunk,
                           float *workspace, int nthreads) {
    if (algo == MR__SCAN_AUTO) algo = mr__scan_choose(B, T, C, nthreads);
    if (algo == MR__SCAN_CHUNKED) mr__scan_bwd_chunked(B, T, C, a, h, h0, dh, dhT, da, db, dh0, chunk, workspace, nthreads);
    else mr__scan_bwd_seq(B, T, C, a, h, h0, dh, dhT, da, db, dh0, nthreads);
}
/* One generation step over B*C floats: h = a * h + b (h in: h_{t-1}, out: h_t). */
MR__PRIV void mr__scan_step(int B, int C, const float *a, const float *b, float *h) {
    int64_t i, n = (int64_t)B * C;
    for (i = 0; i < n; i++) h[i] = a[i] * h[i] + b[i];
}
