/* Tests of the linear-recurrence scans: every variant against a plain
   double-precision loop, against each other, against central finite
   differences, hidden-state passing, and the log-space scan's stability.
   MR_TEST_QUICK=1 (set by `make sanitize`) drops the largest shapes. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

/* ---- helpers --------------------------------------------------------------- */
static uint64_t ts_rng = 0x9e3779b97f4a7c15ull;
static double ts_u(void) { /* uniform [0, 1) */
    ts_rng ^= ts_rng << 13; ts_rng ^= ts_rng >> 7; ts_rng ^= ts_rng << 17;
    return (double)(ts_rng >> 11) * (1.0 / 9007199254740992.0);
}
static void ts_fill(float *x, int64_t n, double lo, double hi) {
    int64_t i;
    for (i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * ts_u());
}
static float *ts_f(int64_t n) { return (float *)calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }
static double *ts_d(int64_t n) { return (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }
static int ts_quick(void) { const char *q = getenv("MR_TEST_QUICK"); return q && *q && *q != '0'; }

/* max |x - r| / max(1, |r|) */
static double ts_err(const float *x, const double *r, int64_t n) {
    double m = 0;
    int64_t i;
    for (i = 0; i < n; i++) {
        double s = fabs(r[i]) > 1 ? fabs(r[i]) : 1, e = fabs((double)x[i] - r[i]) / s;
        if (!(e <= m)) m = e; /* NaN sticks */
    }
    return m;
}
static double ts_errf(const float *x, const float *y, int64_t n) {
    double m = 0;
    int64_t i;
    for (i = 0; i < n; i++) {
        double s = fabs((double)y[i]) > 1 ? fabs((double)y[i]) : 1, e = fabs((double)x[i] - (double)y[i]) / s;
        if (!(e <= m)) m = e;
    }
    return m;
}
static int ts_finite(const float *x, int64_t n) {
    int64_t i;
    for (i = 0; i < n; i++) if (!(x[i] == x[i]) || x[i] == INFINITY || x[i] == -INFINITY) return 0;
    return 1;
}

/* Plain double loops. */
static void ref_fwd(int B, int T, int C, const double *a, const double *b, const double *h0, double *h) {
    int bb, t, c;
    for (bb = 0; bb < B; bb++)
        for (c = 0; c < C; c++) {
            double s = h0 ? h0[bb * C + c] : 0;
            for (t = 0; t < T; t++) {
                int64_t o = ((int64_t)bb * T + t) * C + c;
                s = a[o] * s + b[o];
                h[o] = s;
            }
        }
}
static void ref_bwd(int B, int T, int C, const double *a, const double *h, const double *h0, const double *dh,
                    const double *dhT, double *da, double *db, double *dh0) {
    int bb, t, c;
    for (bb = 0; bb < B; bb++)
        for (c = 0; c < C; c++) {
            double G = dhT ? dhT[bb * C + c] : 0, an = 1;
            for (t = T - 1; t >= 0; t--) {
                int64_t o = ((int64_t)bb * T + t) * C + c;
                double hp = t ? h[o - C] : (h0 ? h0[bb * C + c] : 0);
                G = dh[o] + an * G;
                db[o] = G;
                da[o] = G * hp;
                an = a[o];
            }
            if (dh0) dh0[bb * C + c] = an * G;
        }
}
static double *ts_dup(const float *x, int64_t n) {
    double *d = ts_d(n);
    int64_t i;
    if (x) for (i = 0; i < n; i++) d[i] = x[i];
    return d;
}

typedef struct ts_shape { int B, T, C; } ts_shape;
static const ts_shape ts_shapes[] = {
    {1, 1, 1}, {1, 3, 17}, {3, 17, 1}, {17, 1, 3}, {3, 129, 17}, {129, 3, 1}, {1, 129, 129}, {129, 17, 129},
    {17, 3, 129}, {3, 1000, 1}, {1, 1000, 3}, {1, 1000, 129}, {17, 1000, 17}, {3, 1000, 129}, {129, 129, 3},
};
#define TS_NSHAPES ((int)(sizeof ts_shapes / sizeof ts_shapes[0]))
static int ts_skip_shape(const ts_shape *s) { return ts_quick() && (int64_t)s->B * s->T * s->C > 100000; }

/* Variants behind one signature. chunk < 0: the sequential kernel. */
static float *ts_ws;
static size_t ts_ws_n;
static void ts_ws_need(int B, int T, int C, int nt) {
    size_t n = mr__scan_workspace_floats(B, T, C, nt);
    size_t i;
    if (n > ts_ws_n) { free(ts_ws); ts_ws = ts_f((int64_t)n); ts_ws_n = n; }
    for (i = 0; i < ts_ws_n; i++) ts_ws[i] = NAN; /* nothing may be read before it is written */
}
static void ts_fwd(int chunk, int B, int T, int C, const float *a, const float *b, const float *h0, float *h, int nt) {
    if (chunk < 0) { mr__scan_fwd_seq(B, T, C, a, b, h0, h, nt); return; }
    ts_ws_need(B, T, C, nt);
    mr__scan_fwd_chunked(B, T, C, a, b, h0, h, chunk, ts_ws, nt);
}
static void ts_bwd(int chunk, int B, int T, int C, const float *a, const float *h, const float *h0, const float *dh,
                   const float *dhT, float *da, float *db, float *dh0, int nt) {
    if (chunk < 0) { mr__scan_bwd_seq(B, T, C, a, h, h0, dh, dhT, da, db, dh0, nt); return; }
    ts_ws_need(B, T, C, nt);
    mr__scan_bwd_chunked(B, T, C, a, h, h0, dh, dhT, da, db, dh0, chunk, ts_ws, nt);
}

/* One shape, one variant: forward and backward against the double loops. */
static void ts_check_variant(const ts_shape *s, int chunk, int use_h0, int use_dhT, int nt) {
    int B = s->B, T = s->T, C = s->C;
    int64_t n = (int64_t)B * T * C, m = (int64_t)B * C;
    float *a = ts_f(n), *b = ts_f(n), *h0 = ts_f(m), *h = ts_f(n), *dh = ts_f(n), *dhT = ts_f(m);
    float *da = ts_f(n), *db = ts_f(n), *dh0 = ts_f(m);
    double *ad, *bd, *h0d, *hd = ts_d(n), *dhd, *dhTd, *dad = ts_d(n), *dbd = ts_d(n), *dh0d = ts_d(m);
    double e;
    ts_fill(a, n, -0.5, 1.0);
    ts_fill(b, n, -1, 1);
    ts_fill(h0, m, -2, 2);
    ts_fill(dh, n, -1, 1);
    ts_fill(dhT, m, -1, 1);
    ad = ts_dup(a, n); bd = ts_dup(b, n); h0d = ts_dup(h0, m); dhd = ts_dup(dh, n); dhTd = ts_dup(dhT, m);
    ref_fwd(B, T, C, ad, bd, use_h0 ? h0d : NULL, hd);
    ts_fwd(chunk, B, T, C, a, b, use_h0 ? h0 : NULL, h, nt);
    e = ts_err(h, hd, n);
    MR_CHECK_MSG(e <= 1e-5, "fwd B=%d T=%d C=%d chunk=%d h0=%d nt=%d: err %g", B, T, C, chunk, use_h0, nt, e);
    ref_bwd(B, T, C, ad, hd, use_h0 ? h0d : NULL, dhd, use_dhT ? dhTd : NULL, dad, dbd, dh0d);
    ts_bwd(chunk, B, T, C, a, h, use_h0 ? h0 : NULL, dh, use_dhT ? dhT : NULL, da, db, dh0, nt);
    e = MR__MAX(ts_err(da, dad, n), MR__MAX(ts_err(db, dbd, n), ts_err(dh0, dh0d, m)));
    MR_CHECK_MSG(e <= 1e-5, "bwd B=%d T=%d C=%d chunk=%d h0=%d dhT=%d nt=%d: err %g", B, T, C, chunk, use_h0, use_dhT,
                 nt, e);
    free(a); free(b); free(h0); free(h); free(dh); free(dhT); free(da); free(db); free(dh0);
    free(ad); free(bd); free(h0d); free(hd); free(dhd); free(dhTd); free(dad); free(dbd); free(dh0d);
}

/* ---- linear: against the double loop ----------------------------------------- */
static void test_seq_vs_double(void) {
    int i, f, nt;
    for (i = 0; i < TS_NSHAPES; i++) {
        if (ts_skip_shape(&ts_shapes[i])) continue;
        for (f = 0; f < 4; f++)
            for (nt = 1; nt <= 2; nt++) ts_check_variant(&ts_shapes[i], -1, f & 1, f >> 1, nt);
    }
}
static void test_chunked_vs_double(void) {
    static const int chunks[] = {0, 1, 7, 16, 100, 1000000};
    int i, j, f, nt;
    for (i = 0; i < TS_NSHAPES; i++) {
        if (ts_skip_shape(&ts_shapes[i])) continue;
        for (j = 0; j < (int)(sizeof chunks / sizeof chunks[0]); j++)
            for (f = 0; f < 4; f++)
                for (nt = 1; nt <= 2; nt++) ts_check_variant(&ts_shapes[i], chunks[j], f & 1, f >> 1, nt);
    }
    for (j = 1; j <= 4; j++) { /* chunks that do and do not divide T */
        ts_shape s = {2, 96, 5};
        ts_check_variant(&s, 96 / (j * 4) + (j & 1), 1, 1, 2);
    }
}

/* Chunked == sequential to ~1e-6, every thread count and chunk. */
static void test_chunked_eq_seq(void) {
    static const ts_shape sh[] = {{1, 4096, 16}, {2, 1000, 33}, {1, 777, 128}, {4, 300, 5}};
    static const int chunks[] = {0, 1, 5, 64, 333};
    int i, j, nt;
    for (i = 0; i < 4; i++) {
        int B = sh[i].B, T = sh[i].T, C = sh[i].C;
        int64_t n = (int64_t)B * T * C, m = (int64_t)B * C;
        float *a = ts_f(n), *b = ts_f(n), *h0 = ts_f(m), *h1 = ts_f(n), *h2 = ts_f(n), *dh = ts_f(n), *dhT = ts_f(m);
        float *da1 = ts_f(n), *db1 = ts_f(n), *da2 = ts_f(n), *db2 = ts_f(n), *g1 = ts_f(m), *g2 = ts_f(m);
        ts_fill(a, n, 0.5, 1.0); ts_fill(b, n, -1, 1); ts_fill(h0, m, -1, 1); ts_fill(dh, n, -1, 1); ts_fill(dhT, m, -1, 1);
        mr__scan_fwd_seq(B, T, C, a, b, h0, h1, 1);
        mr__scan_bwd_seq(B, T, C, a, h1, h0, dh, dhT, da1, db1, g1, 1);
        for (j = 0; j < 5; j++)
            for (nt = 1; nt <= 2; nt++) {
                double e;
                ts_fwd(chunks[j], B, T, C, a, b, h0, h2, nt);
                e = ts_errf(h2, h1, n);
                MR_CHECK_MSG(e <= 2e-6, "fwd shape %d chunk %d nt %d: %g", i, chunks[j], nt, e);
                ts_bwd(chunks[j], B, T, C, a, h1, h0, dh, dhT, da2, db2, g2, nt);
                e = MR__MAX(MR__MAX(ts_errf(da2, da1, n), ts_errf(db2, db1, n)), ts_errf(g2, g1, m));
                MR_CHECK_MSG(e <= 2e-6, "bwd shape %d chunk %d nt %d: %g", i, chunks[j], nt, e);
            }
        free(a); free(b); free(h0); free(h1); free(h2); free(dh); free(dhT);
        free(da1); free(db1); free(da2); free(db2); free(g1); free(g2);
    }
}

/* ---- linear: finite differences of L = sum(h * R) + sum(h_T * RT) ------------- */
static double ts_loss(int B, int T, int C, const double *a, const double *b, const double *h0, const double *R,
                      const double *RT) {
    int64_t n = (int64_t)B * T * C, i;
    double *h = ts_d(n), L = 0;
    int bb, c;
    ref_fwd(B, T, C, a, b, h0, h);
    for (i = 0; i < n; i++) L += h[i] * R[i];
    if (RT)
        for (bb = 0; bb < B; bb++)
            for (c = 0; c < C; c++) L += h[((int64_t)bb * T + T - 1) * C + c] * RT[bb * C + c];
    free(h);
    return L;
}
static double ts_fd(double *x, int64_t i, int B, int T, int C, const double *a, const double *b, const double *h0,
                    const double *R, const double *RT) {
    double old = x[i], eps = 1e-6, lp, lm;
    x[i] = old + eps; lp = ts_loss(B, T, C, a, b, h0, R, RT);
    x[i] = old - eps; lm = ts_loss(B, T, C, a, b, h0, R, RT);
    x[i] = old;
    return (lp - lm) / (2 * eps);
}
static void test_linear_finite_diff(void) {
    static const int chunks[] = {-1, 2, 3, 0};
    int B = 2, T = 7, C = 3, j, f;
    int64_t n = (int64_t)B * T * C, m = (int64_t)B * C, i;
    float *a = ts_f(n), *b = ts_f(n), *h0 = ts_f(m), *h = ts_f(n), *R = ts_f(n), *RT = ts_f(m);
    float *da = ts_f(n), *db = ts_f(n), *dh0 = ts_f(m);
    double *ad, *bd, *h0d, *Rd, *RTd;
    ts_fill(a, n, -0.9, 1.1); ts_fill(b, n, -1, 1); ts_fill(h0, m, -1, 1); ts_fill(R, n, -1, 1); ts_fill(RT, m, -1, 1);
    ad = ts_dup(a, n); bd = ts_dup(b, n); h0d = ts_dup(h0, m); Rd = ts_dup(R, n); RTd = ts_dup(RT, m);
    for (j = 0; j < 4; j++)
        for (f = 0; f < 4; f++) {
            int uh = f & 1, ut = f >> 1;
            const double *H0 = uh ? h0d : NULL, *RTp = ut ? RTd : NULL;
            ts_fwd(chunks[j], B, T, C, a, b, uh ? h0 : NULL, h, 2);
            ts_bwd(chunks[j], B, T, C, a, h, uh ? h0 : NULL, R, ut ? RT : NULL, da, db, dh0, 2);
            for (i = 0; i < n; i++) {
                MR_CHECK_NEAR(da[i], ts_fd(ad, i, B, T, C, ad, bd, H0, Rd, RTp), 1e-5);
                MR_CHECK_NEAR(db[i], ts_fd(bd, i, B, T, C, ad, bd, H0, Rd, RTp), 1e-5);
            }
            if (uh)
                for (i = 0; i < m; i++) MR_CHECK_NEAR(dh0[i], ts_fd(h0d, i, B, T, C, ad, bd, H0, Rd, RTp), 1e-5);
        }
    free(a); free(b); free(h0); free(h); free(R); free(RT); free(da); free(db); free(dh0);
    free(ad); free(bd); free(h0d); free(Rd); free(RTd);
}

/* ---- hidden-state passing: two calls == one long pass -------------------------- */
/* Copies rows [t0, t0+Tn) of x [B,T,C] into y [B,Tn,C]. */
static void ts_slice(const float *x, float *y, int B, int T, int C, int t0, int Tn) {
    int bb;
    for (bb = 0; bb < B; bb++)
        memcpy(y + (int64_t)bb * Tn * C, x + ((int64_t)bb * T + t0) * C, (size_t)Tn * C * sizeof(float));
}
static void test_state_passing(void) {
    static const int chunks[] = {-1, 0, 9};
    int B = 3, T = 300, C = 20, T1 = 113, T2 = 300 - 113, j, nt, bb;
    int64_t n = (int64_t)B * T * C, m = (int64_t)B * C;
    float *a = ts_f(n), *b = ts_f(n), *h0 = ts_f(m), *h = ts_f(n), *dh = ts_f(n), *da = ts_f(n), *db = ts_f(n), *g0 = ts_f(m);
    float *a1 = ts_f(n), *b1 = ts_f(n), *a2 = ts_f(n), *b2 = ts_f(n), *hh1 = ts_f(n), *hh2 = ts_f(n), *mid = ts_f(m);
    float *dh1 = ts_f(n), *dh2 = ts_f(n), *da1 = ts_f(n), *db1 = ts_f(n), *da2 = ts_f(n), *db2 = ts_f(n), *gm = ts_f(m), *gg0 = ts_f(m);
    float *hp = ts_f(n), *dap = ts_f(n), *dbp = ts_f(n);
    ts_fill(a, n, 0.3, 1.0); ts_fill(b, n, -1, 1); ts_fill(h0, m, -1, 1); ts_fill(dh, n, -1, 1);
    ts_slice(a, a1, B, T, C, 0, T1); ts_slice(b, b1, B, T, C, 0, T1);
    ts_slice(a, a2, B, T, C, T1, T2); ts_slice(b, b2, B, T, C, T1, T2);
    ts_slice(dh, dh1, B, T, C, 0, T1); ts_slice(dh, dh2, B, T, C, T1, T2);
    for (j = 0; j < 3; j++)
        for (nt = 1; nt <= 2; nt++) {
            ts_fwd(chunks[j], B, T, C, a, b, h0, h, nt);
            ts_bwd(chunks[j], B, T, C, a, h, h0, dh, NULL, da, db, g0, nt);
            /* forward in two calls; the second starts from the first's final state */
            ts_fwd(chunks[j], B, T1, C, a1, b1, h0, hh1, nt);
            for (bb = 0; bb < B; bb++) memcpy(mid + bb * C, hh1 + ((int64_t)bb * T1 + T1 - 1) * C, C * sizeof(float));
            ts_fwd(chunks[j], B, T2, C, a2, b2, mid, hh2, nt);
            /* backward in reverse order; the first part's dhT is the second's dh0 */
            ts_bwd(chunks[j], B, T2, C, a2, hh2, mid, dh2, NULL, da2, db2, gm, nt);
            ts_bwd(chunks[j], B, T1, C, a1, hh1, h0, dh1, gm, da1, db1, gg0, nt);
            for (bb = 0; bb < B; bb++) {
                memcpy(hp + (int64_t)bb * T * C, hh1 + (int64_t)bb * T1 * C, (size_t)T1 * C * sizeof(float));
                memcpy(hp + ((int64_t)bb * T + T1) * C, hh2 + (int64_t)bb * T2 * C, (size_t)T2 * C * sizeof(float));
                memcpy(dap + (int64_t)bb * T * C, da1 + (int64_t)bb * T1 * C, (size_t)T1 * C * sizeof(float));
                memcpy(dap + ((int64_t)bb * T + T1) * C, da2 + (int64_t)bb * T2 * C, (size_t)T2 * C * sizeof(float));
                memcpy(dbp + (int64_t)bb * T * C, db1 + (int64_t)bb * T1 * C, (size_t)T1 * C * sizeof(float));
                memcpy(dbp + ((int64_t)bb * T + T1) * C, db2 + (int64_t)bb * T2 * C, (size_t)T2 * C * sizeof(float));
            }
            MR_CHECK_MSG(ts_errf(hp, h, n) <= 2e-6, "fwd chunk %d nt %d: %g", chunks[j], nt, ts_errf(hp, h, n));
            MR_CHECK_MSG(ts_errf(dap, da, n) <= 2e-6, "da chunk %d nt %d: %g", chunks[j], nt, ts_errf(dap, da, n));
            MR_CHECK_MSG(ts_errf(dbp, db, n) <= 2e-6, "db chunk %d nt %d: %g", chunks[j], nt, ts_errf(dbp, db, n));
            MR_CHECK_MSG(ts_errf(gg0, g0, m) <= 2e-6, "dh0 chunk %d nt %d: %g", chunks[j], nt, ts_errf(gg0, g0, m));
        }
    free(a); free(b); free(h0); free(h); free(dh); free(da); free(db); free(g0);
    free(a1); free(b1); free(a2); free(b2); free(hh1); free(hh2); free(mid);
    free(dh1); free(dh2); free(da1); free(db1); free(da2); free(db2); free(gm); free(gg0);
    free(hp); free(dap); free(dbp);
}

/* ---- dispatch, step, workspace bound ------------------------------------------ */
static void test_dispatch_step(void) {
    int B = 2, T = 50, C = 40, t, algo, bb;
    int64_t n = (int64_t)B * T * C, m = (int64_t)B * C;
    float *a = ts_f(n), *b = ts_f(n), *h0 = ts_f(m), *h = ts_f(n), *h2 = ts_f(n), *st = ts_f(m), *at = ts_f(m), *bt = ts_f(m);
    float *dh = ts_f(n), *da = ts_f(n), *db = ts_f(n), *da2 = ts_f(n), *db2 = ts_f(n), *ws;
    ts_fill(a, n, 0, 1); ts_fill(b, n, -1, 1); ts_fill(h0, m, -1, 1); ts_fill(dh, n, -1, 1);
    mr__scan_fwd_seq(B, T, C, a, b, h0, h, 1);
    mr__scan_bwd_seq(B, T, C, a, h, h0, dh, NULL, da, db, NULL, 1);
    /* step by step == the sequential scan */
    memcpy(st, h0, m * sizeof(float));
    for (t = 0; t < T; t++) {
        for (bb = 0; bb < B; bb++) {
            memcpy(at + bb * C, a + ((int64_t)bb * T + t) * C, C * sizeof(float));
            memcpy(bt + bb * C, b + ((int64_t)bb * T + t) * C, C * sizeof(float));
        }
        mr__scan_step(B, C, at, bt, st);
        for (bb = 0; bb < B; bb++)
            MR_CHECK(ts_errf(st + bb * C, h + ((int64_t)bb * T + t) * C, C) <= 1e-6);
    }
    ws = ts_f((int64_t)mr__scan_workspace_floats(B, T, C, 2));
    for (algo = MR_SCAN_AUTO; algo <= MR_SCAN_CHUNKED; algo++) {
        mr__scan_fwd(algo, B, T, C, a, b, h0, h2, 7, ws, 2);
        MR_CHECK_MSG(ts_errf(h2, h, n) <= 2e-6, "algo %d", algo);
        mr__scan_bwd(algo, B, T, C, a, h, h0, dh, NULL, da2, db2, NULL, 7, ws, 2);
        MR_CHECK_MSG(ts_errf(da2, da, n) <= 2e-6 && ts_errf(db2, db, n) <= 2e-6, "algo %d", algo);
        /* no workspace: falls back to the sequential kernel */
        mr__scan_fwd(algo, B, T, C, a, b, h0, h2, 7, NULL, 2);
        MR_CHECK_MSG(ts_errf(h2, h, n) <= 2e-6, "algo %d, no workspace", algo);
    }
    /* the rule: sequential with plenty of channels, chunked for a thin long scan */
    MR_CHECK(mr__scan_choose(32, 256, 128, 2) == MR_SCAN_SEQUENTIAL);
    MR_CHECK(mr__scan_choose(1, 65536, 16, 2) == (MR__HAVE_OMP ? MR_SCAN_CHUNKED : MR_SCAN_SEQUENTIAL));
    MR_CHECK(mr__scan_choose(1, 65536, 16, 1) == MR_SCAN_SEQUENTIAL);
    free(a); free(b); free(h0); free(h); free(h2); free(st); free(at); free(bt);
    free(dh); free(da); free(db); free(da2); free(db2); free(ws);
}
/* chunk = 1 over T = 1000 needs more chunks than MR__SCAN_MAX_CHUNKS: the
   exact-size workspace (ASan watches) must still do. */
static void test_workspace_bound(void) {
    int B = 2, T = 1000, C = 5, nt;
    int64_t n = (int64_t)B * T * C, m = (int64_t)B * C;
    float *a = ts_f(n), *b = ts_f(n), *h = ts_f(n), *h2 = ts_f(n), *dh = ts_f(n), *dhT = ts_f(m);
    float *da = ts_f(n), *db = ts_f(n), *da2 = ts_f(n), *db2 = ts_f(n);
    size_t nws = mr__scan_workspace_floats(B, T, C, 2), k;
    float *ws = (float *)malloc(nws * sizeof(float));
    MR_CHECK(mr__scan_workspace_floats(B, T, C, 2) == (size_t)B * MR__SCAN_MAX_CHUNKS * 2 * C);
    ts_fill(a, n, 0, 1); ts_fill(b, n, -1, 1); ts_fill(dh, n, -1, 1); ts_fill(dhT, m, -1, 1);
    for (k = 0; k < nws; k++) ws[k] = NAN; /* nothing may be read before it is written */
    mr__scan_fwd_seq(B, T, C, a, b, NULL, h, 1);
    mr__scan_bwd_seq(B, T, C, a, h, NULL, dh, dhT, da, db, NULL, 1);
    for (nt = 1; nt <= 2; nt++) {
        mr__scan_fwd_chunked(B, T, C, a, b, NULL, h2, 1, ws, nt);
        MR_CHECK_MSG(ts_errf(h2, h, n) <= 2e-6, "nt %d: %g", nt, ts_errf(h2, h, n));
        mr__scan_bwd_chunked(B, T, C, a, h, NULL, dh, dhT, da2, db2, NULL, 1, ws, nt);
        MR_CHECK(ts_errf(da2, da, n) <= 2e-6 && ts_errf(db2, db, n) <= 2e-6);
    }
    free(a); free(b); free(h); free(h2); free(dh); free(dhT); free(da); free(db); free(da2); free(db2); free(ws);
}


/* ---- log space ----------------------------------------------------------------- */
static double ts_lae(double x, double y) {
    double mx = x > y ? x : y, mn = x > y ? y : x;
    if (mx == -INFINITY) return -INFINITY;
    return mx + log1p(exp(mn - mx));
}
static void ref_fwd_log(int B, int T, int C, const double *la, const double *lb, const double *lh0, double *lh) {
    int bb, t, c;
    for (bb = 0; bb < B; bb++)
        for (c = 0; c < C; c++)
            for (t = 0; t < T; t++) {
                int64_t o = ((int64_t)bb * T + t) * C + c;
                const double *hp = t ? lh + o - C : (lh0 ? lh0 + bb * C + c : NULL);
                lh[o] = hp ? ts_lae(la[o] + *hp, lb[o]) : lb[o];
            }
}
static void ref_bwd_log(int B, int T, int C, const double *la, const double *lb, const double *lh, const double *lh0,
                        const double *g, const double *gT, double *dla, double *dlb, double *dlh0) {
    int bb, t, c;
    for (bb = 0; bb < B; bb++)
        for (c = 0; c < C; c++) {
            double G = gT ? gT[bb * C + c] : 0, wn = 1;
            for (t = T - 1; t >= 0; t--) {
                int64_t o = ((int64_t)bb * T + t) * C + c;
                const double *hp = t ? lh + o - C : (lh0 ? lh0 + bb * C + c : NULL);
                double w = hp ? exp(la[o] + *hp - lh[o]) : 0, u = exp(lb[o] - lh[o]);
                G = g[o] + wn * G;
                dla[o] = G * w;
                dlb[o] = G * u;
                wn = w;
            }
            if (dlh0) dlh0[bb * C + c] = lh0 ? wn * G : 0;
        }
}
static void ts_fwd_log(int chunk, int B, int T, int C, const float *la, const float *lb, const float *lh0, float *lh,
                       int nt) {
    if (chunk < 0) { mr__scan_fwd_log(B, T, C, la, lb, lh0, lh, nt); return; }
    ts_ws_need(B, T, C, nt);
    mr__scan_fwd_log_chunked(B, T, C, la, lb, lh0, lh, chunk, ts_ws, nt);
}
static void ts_bwd_log(int chunk, int B, int T, int C, const float *la, const float *lb, const float *lh,
                       const float *lh0, const float *g, const float *gT, float *dla, float *dlb, float *dlh0, int nt) {
    if (chunk < 0) { mr__scan_bwd_log(B, T, C, la, lb, lh, lh0, g, gT, dla, dlb, dlh0, nt); return; }
    ts_ws_need(B, T, C, nt);
    mr__scan_bwd_log_chunked(B, T, C, la, lb, lh, lh0, g, gT, dla, dlb, dlh0, chunk, ts_ws, nt);
}
static const int ts_log_variants[] = {-1, 0, 1, 7, 100};

static void test_log_vs_double(void) {
    int i, j, f, nt;
    for (i = 0; i < TS_NSHAPES; i++) {
        const ts_shape *s = &ts_shapes[i];
        int B = s->B, T = s->T, C = s->C;
        int64_t n = (int64_t)B * T * C, m = (int64_t)B * C;
        float *la, *lb, *lh0, *lh, *g, *gT, *dla, *dlb, *dlh0;
        double *lad, *lbd, *lh0d, *lhd, *gd, *gTd, *dlad, *dlbd, *dlh0d;
        if (ts_skip_shape(s) || n > 200000) continue;
        la = ts_f(n); lb = ts_f(n); lh0 = ts_f(m); lh = ts_f(n); g = ts_f(n); gT = ts_f(m);
        dla = ts_f(n); dlb = ts_f(n); dlh0 = ts_f(m);
        ts_fill(la, n, -3, 0); ts_fill(lb, n, -3, 1); ts_fill(lh0, m, -2, 2); ts_fill(g, n, -1, 1); ts_fill(gT, m, -1, 1);
        lad = ts_dup(la, n); lbd = ts_dup(lb, n); lh0d = ts_dup(lh0, m); gd = ts_dup(g, n); gTd = ts_dup(gT, m);
        lhd = ts_d(n); dlad = ts_d(n); dlbd = ts_d(n); dlh0d = ts_d(m);
        for (f = 0; f < 4; f++) {
            int uh = f & 1, ut = f >> 1;
            ref_fwd_log(B, T, C, lad, lbd, uh ? lh0d : NULL, lhd);
            ref_bwd_log(B, T, C, lad, lbd, lhd, uh ? lh0d : NULL, gd, ut ? gTd : NULL, dlad, dlbd, dlh0d);
            for (j = 0; j < (int)(sizeof ts_log_variants / sizeof ts_log_variants[0]); j++)
                for (nt = 1; nt <= 2; nt++) {
                    double e;
                    ts_fwd_log(ts_log_variants[j], B, T, C, la, lb, uh ? lh0 : NULL, lh, nt);
                    e = ts_err(lh, lhd, n);
                    MR_CHECK_MSG(e <= 1e-5, "fwd B=%d T=%d C=%d chunk=%d h0=%d nt=%d: %g", B, T, C, ts_log_variants[j], uh, nt, e);
                    ts_bwd_log(ts_log_variants[j], B, T, C, la, lb, lh, uh ? lh0 : NULL, g, ut ? gT : NULL, dla, dlb, dlh0, nt);
                    e = MR__MAX(MR__MAX(ts_err(dla, dlad, n), ts_err(dlb, dlbd, n)), ts_err(dlh0, dlh0d, m));
                    MR_CHECK_MSG(e <= 1e-5, "bwd B=%d T=%d C=%d chunk=%d h0=%d gT=%d nt=%d: %g", B, T, C,
                                 ts_log_variants[j], uh, ut, nt, e);
                }
        }
        free(la); free(lb); free(lh0); free(lh); free(g); free(gT); free(dla); free(dlb); free(dlh0);
        free(lad); free(lbd); free(lh0d); free(lhd); free(gd); free(gTd); free(dlad); free(dlbd); free(dlh0d);
    }
}

/* exp(log-space result) == linear result on positive inputs; gradients by
   the chain rule: dla = da * a, dlb = db * b when g = dh * h. */
static void test_log_vs_linear(void) {
    int B = 3, T = 500, C = 33, j, f;
    int64_t n = (int64_t)B * T * C, m = (int64_t)B * C, i;
    float *a = ts_f(n), *b = ts_f(n), *h0 = ts_f(m), *h = ts_f(n), *dh = ts_f(n), *da = ts_f(n), *db = ts_f(n), *dh0 = ts_f(m);
    float *la = ts_f(n), *lb = ts_f(n), *lh0 = ts_f(m), *lh = ts_f(n), *g = ts_f(n), *dla = ts_f(n), *dlb = ts_f(n);
    float *dlh0 = ts_f(m), *x = ts_f(n);
    ts_fill(a, n, 0.01, 1); ts_fill(b, n, 0.01, 2); ts_fill(h0, m, 0.1, 3); ts_fill(dh, n, -1, 1);
    for (i = 0; i < n; i++) { la[i] = logf(a[i]); lb[i] = logf(b[i]); }
    for (i = 0; i < m; i++) lh0[i] = logf(h0[i]);
    for (j = 0; j < 3; j++)
        for (f = 0; f < 2; f++) {
            int chunk = j == 0 ? -1 : j == 1 ? 0 : 13;
            ts_fwd(-1, B, T, C, a, b, f ? h0 : NULL, h, 2);
            ts_fwd_log(chunk, B, T, C, la, lb, f ? lh0 : NULL, lh, 2);
            for (i = 0; i < n; i++) x[i] = expf(lh[i]);
            MR_CHECK_MSG(ts_errf(x, h, n) <= 1e-5, "fwd chunk %d h0 %d: %g", chunk, f, ts_errf(x, h, n));
            for (i = 0; i < n; i++) g[i] = dh[i] * h[i];
            ts_bwd(-1, B, T, C, a, h, f ? h0 : NULL, dh, NULL, da, db, dh0, 2);
            ts_bwd_log(chunk, B, T, C, la, lb, lh, f ? lh0 : NULL, g, NULL, dla, dlb, dlh0, 2);
            for (i = 0; i < n; i++) x[i] = da[i] * a[i];
            MR_CHECK_MSG(ts_errf(dla, x, n) <= 1e-5, "dla chunk %d h0 %d: %g", chunk, f, ts_errf(dla, x, n));
            for (i = 0; i < n; i++) x[i] = db[i] * b[i];
            MR_CHECK_MSG(ts_errf(dlb, x, n) <= 1e-5, "dlb chunk %d h0 %d: %g", chunk, f, ts_errf(dlb, x, n));
            if (f) {
                for (i = 0; i < m; i++) x[i] = dh0[i] * h0[i];
                MR_CHECK_MSG(ts_errf(dlh0, x, m) <= 1e-5, "dlh0 chunk %d: %g", chunk, ts_errf(dlh0, x, m));
            }
        }
    free(a); free(b); free(h0); free(h); free(dh); free(da); free(db); free(dh0);
    free(la); free(lb); free(lh0); free(lh); free(g); free(dla); free(dlb); free(dlh0); free(x);
}

/* Central differences of L = sum(lh * R) + sum(lh_T * RT) in double. */
static double ts_loss_log(int B, int T, int C, const double *la, const double *lb, const double *lh0, const double *R,
                          const double *RT) {
    int64_t n = (int64_t)B * T * C, i;
    double *lh = ts_d(n), L = 0;
    int bb, c;
    ref_fwd_log(B, T, C, la, lb, lh0, lh);
    for (i = 0; i < n; i++) L += lh[i] * R[i];
    if (RT)
        for (bb = 0; bb < B; bb++)
            for (c = 0; c < C; c++) L += lh[((int64_t)bb * T + T - 1) * C + c] * RT[bb * C + c];
    free(lh);
    return L;
}
static double ts_fd_log(double *x, int64_t i, int B, int T, int C, const double *la, const double *lb,
                        const double *lh0, const double *R, const double *RT) {
    double old = x[i], eps = 1e-6, lp, lm;
    x[i] = old + eps; lp = ts_loss_log(B, T, C, la, lb, lh0, R, RT);
    x[i] = old - eps; lm = ts_loss_log(B, T, C, la, lb, lh0, R, RT);
    x[i] = old;
    return (lp - lm) / (2 * eps);
}
static void test_log_finite_diff(void) {
    static const int chunks[] = {-1, 2, 3};
    int B = 2, T = 7, C = 3, j, f;
    int64_t n = (int64_t)B * T * C, m = (int64_t)B * C, i;
    float *la = ts_f(n), *lb = ts_f(n), *lh0 = ts_f(m), *lh = ts_f(n), *R = ts_f(n), *RT = ts_f(m);
    float *dla = ts_f(n), *dlb = ts_f(n), *dlh0 = ts_f(m);
    double *lad, *lbd, *lh0d, *Rd, *RTd;
    ts_fill(la, n, -2, 0.5); ts_fill(lb, n, -2, 1); ts_fill(lh0, m, -1, 1); ts_fill(R, n, -1, 1); ts_fill(RT, m, -1, 1);
    lad = ts_dup(la, n); lbd = ts_dup(lb, n); lh0d = ts_dup(lh0, m); Rd = ts_dup(R, n); RTd = ts_dup(RT, m);
    for (j = 0; j < 3; j++)
        for (f = 0; f < 4; f++) {
            int uh = f & 1, ut = f >> 1;
            const double *H0 = uh ? lh0d : NULL, *RTp = ut ? RTd : NULL;
            ts_fwd_log(chunks[j], B, T, C, la, lb, uh ? lh0 : NULL, lh, 2);
            ts_bwd_log(chunks[j], B, T, C, la, lb, lh, uh ? lh0 : NULL, R, ut ? RT : NULL, dla, dlb, dlh0, 2);
            for (i = 0; i < n; i++) {
                MR_CHECK_NEAR(dla[i], ts_fd_log(lad, i, B, T, C, lad, lbd, H0, Rd, RTp), 1e-5);
                MR_CHECK_NEAR(dlb[i], ts_fd_log(lbd, i, B, T, C, lad, lbd, H0, Rd, RTp), 1e-5);
            }
            for (i = 0; i < m; i++)
                MR_CHECK_NEAR(dlh0[i], uh ? ts_fd_log(lh0d, i, B, T, C, lad, lbd, H0, Rd, RTp) : 0.0, 1e-5);
        }
    free(la); free(lb); free(lh0); free(lh); free(R); free(RT); free(dla); free(dlb); free(dlh0);
    free(lad); free(lbd); free(lh0d); free(Rd); free(RTd);
}

/* T = 100,000 with a close to 1, b that underflows a float (e^-100) and a
   growing channel whose h overflows one (e^+1000): finite, and near the
   double loop. The float state's rounding (ulp of |log h|) is contracted by
   w ~ a per step, and not at all for a growing h, so the kernel carries the
   state in double: log h within an ulp or two of |log h| (1e-4 at 1000) of
   the double loop, gradients within 1e-5. */
static void test_log_stable_long(void) {
    int B = 1, T = ts_quick() ? 20000 : 100000, C = 4, j;
    int64_t n = (int64_t)B * T * C, i;
    float *la = ts_f(n), *lb = ts_f(n), *lh = ts_f(n), *g = ts_f(n), *dla = ts_f(n), *dlb = ts_f(n);
    double *lad, *lbd, *lhd = ts_d(n), *gd, *dlad = ts_d(n), *dlbd = ts_d(n);
    for (i = 0; i < n; i++) {
        int c = (int)(i % C);
        double r = ts_u();
        la[i] = c == 0 ? -1e-3f : c == 1 ? (float)(-1e-4 * (1 + r)) : c == 2 ? 1e-2f : (float)(-0.05 * r);
        lb[i] = c == 0 ? (float)(-100 + r) : c == 1 ? (float)(-80 - 20 * r) : c == 2 ? (float)(-5 + r) : (float)(60 + r);
        g[i] = (float)(ts_u() * 2 - 1) * 1e-3f;
    }
    lad = ts_dup(la, n); lbd = ts_dup(lb, n); gd = ts_dup(g, n);
    ref_fwd_log(B, T, C, lad, lbd, NULL, lhd);
    ref_bwd_log(B, T, C, lad, lbd, lhd, NULL, gd, NULL, dlad, dlbd, NULL);
    for (j = 0; j < 2; j++) {
        double e = 0, eg = 0;
        int chunk = j ? 0 : -1;
        ts_fwd_log(chunk, B, T, C, la, lb, NULL, lh, 2);
        ts_bwd_log(chunk, B, T, C, la, lb, lh, NULL, g, NULL, dla, dlb, NULL, 2);
        MR_CHECK(ts_finite(lh, n) && ts_finite(dla, n) && ts_finite(dlb, n));
        for (i = 0; i < n; i++) {
            double d = fabs(lh[i] - lhd[i]);
            if (!(d <= e)) e = d;
        }
        MR_CHECK_MSG(e <= 1e-4, "chunk %d: max |lh - ref| = %g", chunk, e);
        eg = MR__MAX(ts_err(dla, dlad, n), ts_err(dlb, dlbd, n));
        MR_CHECK_MSG(eg <= 1e-5, "chunk %d: gradient err %g", chunk, eg);
        /* the growing channel really is beyond a float in linear space */
        MR_CHECK(lh[(int64_t)(T - 1) * C + 2] > 88.8f && lh[(int64_t)(T - 1) * C + 0] < -87.4f);
    }
    free(la); free(lb); free(lh); free(g); free(dla); free(dlb);
    free(lad); free(lbd); free(lhd); free(gd); free(dlad); free(dlbd);
}

/* No initial state (and zeros, log b = -inf, in places): never a NaN. */
static void test_log_no_state_no_nan(void) {
    int B = 2, T = 40, C = 5, j, nt;
    int64_t n = (int64_t)B * T * C, m = (int64_t)B * C, i;
    float *la = ts_f(n), *lb = ts_f(n), *lh = ts_f(n), *g = ts_f(n), *gT = ts_f(m), *dla = ts_f(n), *dlb = ts_f(n);
    float *dlh0 = ts_f(m);
    ts_fill(la, n, -3, 0); ts_fill(lb, n, -3, 1); ts_fill(g, n, -1, 1); ts_fill(gT, m, -1, 1);
    for (i = 0; i < n; i += 7) lb[i] = -INFINITY;    /* b = 0 */
    for (i = 0; i < C; i++) lb[i] = -INFINITY;        /* h_0 = 0 in row 0 */
    for (i = 3; i < n; i += 11) la[i] = -INFINITY;   /* a = 0 */
    for (j = 0; j < 3; j++)
        for (nt = 1; nt <= 2; nt++) {
            int chunk = j == 0 ? -1 : j == 1 ? 0 : 3;
            ts_fwd_log(chunk, B, T, C, la, lb, NULL, lh, nt);
            for (i = 0; i < n; i++) MR_CHECK_MSG(lh[i] == lh[i] && lh[i] != INFINITY, "lh[%d] = %g", (int)i, lh[i]);
            ts_bwd_log(chunk, B, T, C, la, lb, lh, NULL, g, gT, dla, dlb, dlh0, nt);
            MR_CHECK(ts_finite(dla, n) && ts_finite(dlb, n) && ts_finite(dlh0, m));
            for (i = 0; i < m; i++) MR_CHECK(dlh0[i] == 0.f);
        }
    free(la); free(lb); free(lh); free(g); free(gT); free(dla); free(dlb); free(dlh0);
}

/* Rows wider than the forward's channel tile (MR__SCAN_LTILE), ragged last
   tile, and C > 64 (the backward's descending channel order), against the
   double loops for every variant. */
static void test_log_wide(void) {
    int B = 2, T = 23, C = 2 * MR__SCAN_LTILE + 37, j, nt;
    int64_t n = (int64_t)B * T * C, m = (int64_t)B * C;
    float *la = ts_f(n), *lb = ts_f(n), *lh0 = ts_f(m), *lh = ts_f(n), *g = ts_f(n), *gT = ts_f(m);
    float *dla = ts_f(n), *dlb = ts_f(n), *dlh0 = ts_f(m);
    double *lad, *lbd, *lh0d, *gd, *gTd, *lhd = ts_d(n), *dlad = ts_d(n), *dlbd = ts_d(n), *dlh0d = ts_d(m);
    ts_fill(la, n, -3, 0); ts_fill(lb, n, -3, 1); ts_fill(lh0, m, -2, 2); ts_fill(g, n, -1, 1); ts_fill(gT, m, -1, 1);
    lad = ts_dup(la, n); lbd = ts_dup(lb, n); lh0d = ts_dup(lh0, m); gd = ts_dup(g, n); gTd = ts_dup(gT, m);
    ref_fwd_log(B, T, C, lad, lbd, lh0d, lhd);
    ref_bwd_log(B, T, C, lad, lbd, lhd, lh0d, gd, gTd, dlad, dlbd, dlh0d);
    for (j = 0; j < (int)(sizeof ts_log_variants / sizeof ts_log_variants[0]); j++)
        for (nt = 1; nt <= 2; nt++) {
            double e;
            ts_fwd_log(ts_log_variants[j], B, T, C, la, lb, lh0, lh, nt);
            e = ts_err(lh, lhd, n);
            MR_CHECK_MSG(e <= 1e-5, "fwd chunk=%d nt=%d: %g", ts_log_variants[j], nt, e);
            ts_bwd_log(ts_log_variants[j], B, T, C, la, lb, lh, lh0, g, gT, dla, dlb, dlh0, nt);
            e = MR__MAX(MR__MAX(ts_err(dla, dlad, n), ts_err(dlb, dlbd, n)), ts_err(dlh0, dlh0d, m));
            MR_CHECK_MSG(e <= 1e-5, "bwd chunk=%d nt=%d: %g", ts_log_variants[j], nt, e);
        }
    free(la); free(lb); free(lh0); free(lh); free(g); free(gT); free(dla); free(dlb); free(dlh0);
    free(lad); free(lbd); free(lh0d); free(gd); free(gTd); free(lhd); free(dlad); free(dlbd); free(dlh0d);
}

/* ---- log-space helpers ------------------------------------------------------------ */
/* ulp of the float nearest |r| (the smallest denormal below FLT_MIN). */
static double ts_ulp(double r) {
    float f = (float)fabs(r);
    if (f < 1.17549435e-38f) return 1.40129846e-45;
    return (double)nextafterf(f, INFINITY) - (double)f;
}
static float ts_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}
/* Each helper over an array, as the kernels call them (the vectorized code
   is what gets checked): 0 mr__logf, 1 mr__log1pf01, 2 mr__log1pexpf,
   3 mr__scan_expf, 4 mr__scan_expn. */
static void ts_apply(int which, const float *x, float *y, int n) {
    int i;
    switch (which) {
    case 0: for (i = 0; i < n; i++) y[i] = mr__logf(x[i]); break;
    case 1: for (i = 0; i < n; i++) y[i] = mr__log1pf01(x[i]); break;
    case 2: for (i = 0; i < n; i++) y[i] = mr__log1pexpf(x[i]); break;
    case 3: for (i = 0; i < n; i++) y[i] = mr__scan_expf(x[i]); break;
    default: for (i = 0; i < n; i++) y[i] = mr__scan_expn(x[i]); break;
    }
}
static double ts_ref1(int which, double x) {
    switch (which) {
    case 0: return log(x);
    case 1: return log1p(x);
    case 2: return log1p(exp(x));
    default: return exp(x);
    }
}
/* Max error in ulps of the float bit patterns lo, lo + step, ... <= hi. */
static double ts_sweep(int which, uint32_t lo, uint32_t hi, uint32_t step) {
    enum { N = 4096 };
    static float x[N], y[N];
    double m = 0;
    uint64_t b = lo;
    while (b <= hi) {
        int n = 0, i;
        for (; n < N && b <= hi; b += step) x[n++] = ts_bits((uint32_t)b);
        ts_apply(which, x, y, n);
        for (i = 0; i < n; i++) {
            double r = ts_ref1(which, (double)x[i]), e = fabs((double)y[i] - r) / ts_ulp(r);
            if (!(e <= m)) m = e; /* NaN sticks */
        }
    }
    return m;
}
/* Special values through the same array loops: results equal (NaN = NaN). */
static void ts_special(int which, const float *x, const float *want, int n) {
    float y[16];
    int i;
    ts_apply(which, x, y, n);
    for (i = 0; i < n; i++)
        MR_CHECK_MSG(y[i] == want[i] || (y[i] != y[i] && want[i] != want[i]), "helper %d (%g) = %g, want %g", which,
                     (double)x[i], (double)y[i], (double)want[i]);
}

/* The vectorizable exp/log helpers of the log-space scan and the MinGRU log
   path against double libm, over every step-th float of their domain, plus
   special values. Bounds: an exhaustive run over all floats (gcc -O3
   -march=native with FMA, gcc -O1 without, clang -O3) gave at most 0.86 ulp
   for mr__logf (denormals included), 0.81 for mr__log1pf01, 1.65 for
   mr__log1pexpf (the ~1 ulp of mr__expf_neg on exp(d) passes through, scaled
   by e/((1+e) log1p(e)) <= 1), 1.02 for mr__scan_expf (0.75 on denormal
   results) and for mr__scan_expn; the checks allow 1, 1, 2, 1.5 and 1.5 ulp. mr__scan_lae_d (double
   logaddexp with a float correction log1p(exp(d)) <= log 2): absolute error
   <= 2 ulp of log 2 (1.2e-7) + the rounding of d = mn - mx to float, which
   moves the result by <= |d| sigmoid(d) 2^-24 < 1.7e-8; checked at 1.5e-7. */
static void test_log_helpers(void) {
    uint32_t step = ts_quick() ? 1009 : 101;
    double e;
    int i;
    /* mr__logf: all positive floats (denormals, FLT_MAX) */
    e = ts_sweep(0, 1u, 0x7f7fffffu, step);
    MR_CHECK_MSG(e <= 1.0, "mr__logf: %.3g ulp", e);
    e = ts_sweep(0, 0x3f000000u, 0x40000000u, step / 8); /* [0.5, 2]: log near 0 */
    MR_CHECK_MSG(e <= 1.0, "mr__logf near 1: %.3g ulp", e);
    {
        float x[] = {0.f, -0.f, -1.f, -INFINITY, INFINITY, NAN, 1.f, 1.40129846e-45f, 1.17549435e-38f, 3.40282347e+38f};
        float want[] = {-INFINITY, -INFINITY, NAN, NAN, INFINITY, NAN, 0.f, 0, 0, 0};
        float y[10];
        ts_special(0, x, want, 6);
        ts_apply(0, x, y, 10);
        MR_CHECK(y[6] == 0.f);
        MR_CHECK_NEAR(y[7], log(1.40129846e-45), 1e-7);
        MR_CHECK_NEAR(y[8], log(1.17549435e-38), 1e-7);
        MR_CHECK_NEAR(y[9], log(3.40282347e+38), 1e-7);
    }
    /* mr__log1pf01: [0, 1] */
    e = ts_sweep(1, 0u, 0x3f800000u, step / 4);
    MR_CHECK_MSG(e <= 1.0, "mr__log1pf01: %.3g ulp", e);
    /* mr__log1pexpf: (-87, 0]; 0 below -87 (exp < 1.7e-38), NaN passes */
    e = ts_sweep(2, 0x80000000u, 0xc2adffffu, step / 4);
    MR_CHECK_MSG(e <= 2.0, "mr__log1pexpf: %.3g ulp", e);
    {
        float x[] = {-INFINITY, NAN, -88.f, -1e30f, 0.f, -0.f};
        float want[] = {0.f, NAN, 0.f, 0.f, (float)log(2.0), (float)log(2.0)};
        ts_special(2, x, want, 6);
    }
    /* mr__scan_expf: normal and denormal results, overflow, underflow */
    e = ts_sweep(3, 0u, 0x42b17217u, step);            /* [0, 88.72] */
    MR_CHECK_MSG(e <= 1.5, "mr__scan_expf x >= 0: %.3g ulp", e);
    e = ts_sweep(3, 0x80000000u, 0xc2cff1b4u, step);   /* [-103.97, -0] */
    MR_CHECK_MSG(e <= 1.5, "mr__scan_expf x < 0: %.3g ulp", e);
    {
        float x[] = {-INFINITY, INFINITY, NAN, 89.f, 1e30f, -105.f, -1e30f, 0.f};
        float want[] = {0.f, INFINITY, NAN, INFINITY, INFINITY, 0.f, 0.f, 1.f};
        ts_special(3, x, want, 8);
    }
    /* mr__scan_expn: exp(min(d, 0)) (mr__expf_neg inside), NaN -> 1, <= -87 -> 0 */
    e = ts_sweep(4, 0x80000000u, 0xc2adffffu, step / 4);
    MR_CHECK_MSG(e <= 1.5, "mr__scan_expn: %.3g ulp", e);
    {
        float x[] = {NAN, -INFINITY, 1.f, INFINITY, 0.f, -87.f, -100.f};
        float want[] = {1.f, 0.f, 1.f, 1.f, 1.f, 0.f, 0.f};
        ts_special(4, x, want, 7);
    }
    /* mr__scan_lae_d against double logaddexp */
    {
        enum { N = 20000 };
        static double xs[N], ys[N], rs[N];
        double m = 0;
        static const double scale[] = {0, 1e-7, 1e-3, 0.3, 1, 3, 10, 30, 100};
        for (i = 0; i < N; i++) {
            xs[i] = 400 * ts_u() - 200;
            ys[i] = (float)(xs[i] + scale[i % 9] * (2 * ts_u() - 1));
            xs[i] = (float)xs[i];
            if (i & 1) xs[i] += 1e-9 * ts_u(); /* a double state, as carried by the kernels */
        }
        for (i = 0; i < N; i++) rs[i] = mr__scan_lae_d(xs[i], ys[i]);
        for (i = 0; i < N; i++) {
            double d = fabs(rs[i] - ts_lae(xs[i], ys[i]));
            if (!(d <= m)) m = d;
        }
        MR_CHECK_MSG(m <= 1.5e-7, "mr__scan_lae_d: max abs err %.3g", m);
    }
    {
        double x[] = {-INFINITY, -INFINITY, 3, 2.5, INFINITY, INFINITY, INFINITY, NAN, 1, -INFINITY};
        double y[] = {-INFINITY, 3, -INFINITY, 2.5, 1, INFINITY, -INFINITY, 1, NAN, NAN};
        double r[10];
        for (i = 0; i < 10; i++) r[i] = mr__scan_lae_d(x[i], y[i]);
        MR_CHECK(r[0] == -INFINITY && r[1] == 3 && r[2] == 3);
        MR_CHECK_NEAR(r[3], 2.5 + log(2.0), 1.5e-7);
        MR_CHECK(r[4] == INFINITY && r[5] == INFINITY && r[6] == INFINITY);
        MR_CHECK(r[7] != r[7] && r[8] != r[8] && r[9] != r[9]);
    }
    /* the MinGRU log-space gates against double formulas */
    {
        double m = 0;
        for (i = 0; i < 4000; i++) {
            float fk = (float)(60 * ts_u() - 30), fx = (float)(60 * ts_u() - 30);
            double k = fk, x = fx, la, lz, lg, ea, eb, s;
            la = k > 0 ? -k - log1p(exp(-k)) : -log1p(exp(k));      /* log(1 - sigmoid(k)) */
            lz = k < 0 ? k - log1p(exp(k)) : -log1p(exp(-k));       /* log sigmoid(k) */
            lg = x >= 0 ? log(x + 0.5) : x - log1p(exp(x));         /* log g(x) */
            s = fabs(lz) + fabs(lg);
            ea = fabs(mr__mingru_la(fk) - la) / (fabs(la) > 1 ? fabs(la) : 1);
            eb = fabs(mr__mingru_lb(fk, fx) - (lz + lg)) / (s > 1 ? s : 1);
            if (!(ea <= m)) m = ea;
            if (!(eb <= m)) m = eb;
        }
        MR_CHECK_MSG(m <= 3e-7, "mr__mingru_la/lb: %.3g", m);
        MR_CHECK(mr__mingru_la(INFINITY) == -INFINITY && mr__mingru_la(-INFINITY) == 0.f);
        MR_CHECK(mr__mingru_lb(-INFINITY, 1.f) == -INFINITY && mr__mingru_lb(1.f, -INFINITY) == -INFINITY);
        MR_CHECK(mr__mingru_lb(0.f, INFINITY) == INFINITY);
        MR_CHECK(mr__mingru_la(NAN) != mr__mingru_la(NAN) && mr__mingru_lb(NAN, 1.f) != mr__mingru_lb(NAN, 1.f));
        MR_CHECK(mr__mingru_lb(1.f, NAN) != mr__mingru_lb(1.f, NAN));
    }
}

MR_TEST_MAIN({"seq_vs_double", test_seq_vs_double}, {"chunked_vs_double", test_chunked_vs_double},
             {"chunked_eq_seq", test_chunked_eq_seq}, {"linear_finite_diff", test_linear_finite_diff},
             {"state_passing", test_state_passing}, {"dispatch_step", test_dispatch_step},
             {"workspace_bound", test_workspace_bound},
             {"log_vs_double", test_log_vs_double}, {"log_vs_linear", test_log_vs_linear},
             {"log_finite_diff", test_log_finite_diff}, {"log_stable_long", test_log_stable_long},
             {"log_no_state_no_nan", test_log_no_state_no_nan}, {"log_wide", test_log_wide},
             {"log_helpers", test_log_helpers})
