/* The packed CPU GEMM (mr__gemm_cpu) against a naive double-precision
   reference: all four transposes, odd shapes (1, 3, 17, 129, a few hundred),
   leading dimensions wider than the rows, alpha/beta, K = 0, NaN in C with
   beta = 0, and bit-identical results for 1, 2 and 3 threads.
   Build with -DMR__GEMM_FORCE_PLAIN to test the plain-C micro-kernel. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

static uint64_t tg_state = 0x9e3779b97f4a7c15ull;
static float tg_rand(void) {   /* uniform in [-1, 1) */
    tg_state = tg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(tg_state >> 40) / (double)(1ull << 23) - 1.0);
}
static int tg_randint(int n) {
    tg_state = tg_state * 6364136223846793005ull + 1442695040888963407ull;
    return (int)((tg_state >> 33) % (uint64_t)n);
}

/* A 64-byte aligned workspace of exactly mr__gemm_workspace_bytes(nt) bytes,
   followed by canary bytes that must survive the call. */
typedef struct tg_ws { unsigned char *raw, *p; size_t n; } tg_ws;
static tg_ws tg_ws_new(int nt) {
    tg_ws w;
    w.n = mr__gemm_workspace_bytes(nt);
    w.raw = (unsigned char *)malloc(w.n + 64 + 256);
    w.p = (unsigned char *)(((uintptr_t)w.raw + 63) & ~(uintptr_t)63);
    memset(w.p + w.n, 0xA5, 256);
    return w;
}
static int tg_ws_ok(const tg_ws *w) {
    size_t i;
    for (i = 0; i < 256; i++) if (w->p[w->n + i] != 0xA5) return 0;
    return 1;
}

static float *tg_mat(size_t n) {
    float *p = (float *)malloc((n ? n : 1) * sizeof(float));
    size_t i;
    for (i = 0; i < n; i++) p[i] = tg_rand();
    return p;
}

/* Runs one case and compares with the reference; returns 1 when it matches. */
static int tg_case(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad, int nt) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    int arows = ta ? K : M, brows = tb ? N : K;
    float *A = tg_mat((size_t)arows * lda), *B = tg_mat((size_t)brows * ldb);
    float *C = tg_mat((size_t)M * ldc), *C0 = (float *)malloc((size_t)M * ldc * sizeof(float) + 4);
    tg_ws w = tg_ws_new(nt);
    int i, j, k, ok = 1;
    double tol = 1e-5 * sqrt((double)(K > 1 ? K : 1));
    if (beta == 0.f)   /* C must only be written */
        for (i = 0; i < M; i++) for (j = 0; j < N; j++) C[(size_t)i * ldc + j] = NAN;
    memcpy(C0, C, (size_t)M * ldc * sizeof(float));
    mr__gemm_cpu(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, nt, w.p);
    MR_CHECK_MSG(tg_ws_ok(&w), "workspace overrun ta=%d tb=%d M=%d N=%d K=%d", ta, tb, M, N, K);
    for (i = 0; i < M && ok; i++) {
        for (j = 0; j < ldc && ok; j++) {
            double got = C[(size_t)i * ldc + j], ref, scale;
            if (j >= N) {   /* padding of C is not touched */
                if (memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof(float))) {
                    MR_CHECK_MSG(0, "padding written at (%d,%d) ta=%d tb=%d M=%d N=%d K=%d", i, j, ta, tb, M, N, K);
                    ok = 0;
                }
                continue;
            }
            ref = 0; scale = 0;
            for (k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                ref += a * b; scale += fabs(a * b);
            }
            ref *= alpha; scale *= fabs(alpha);
            if (beta != 0.f) { ref += (double)beta * C0[(size_t)i * ldc + j]; scale += fabs((double)beta * C0[(size_t)i * ldc + j]); }
            if (scale < 1) scale = 1;
            if (!(fabs(got - ref) <= tol * scale)) {
                MR_CHECK_MSG(0, "C(%d,%d) = %.9g, ref %.9g: ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d nt=%d",
                             i, j, got, ref, ta, tb, M, N, K, alpha, beta, pad, nt);
                ok = 0;
            }
        }
    }
    free(A); free(B); free(C); free(C0); free(w.raw);
    return ok;
}

static int tg_quick(void) { return getenv("MR_TEST_QUICK") != NULL; }

static void test_small_shapes(void) {
    static const int sz[] = {1, 3, 17, 129};
    int ta, tb, a, b, c;
    for (ta = 0; ta < 2; ta++) for (tb = 0; tb < 2; tb++)
        for (a = 0; a < 4; a++) for (b = 0; b < 4; b++) for (c = 0; c < 4; c++)
            tg_case(ta, tb, sz[a], sz[b], sz[c], 1.f, 0.f, (a + b + c) % 3 == 0 ? 5 : 0, 2);
}

static void test_random_shapes(void) {
    int t, n = tg_quick() ? 8 : 40;
    for (t = 0; t < n; t++) {
        int M = 1 + tg_randint(300), N = 1 + tg_randint(300), K = 1 + tg_randint(600);
        tg_case(t & 1, (t >> 1) & 1, M, N, K, 1.f, 0.f, tg_randint(3) ? 0 : 1 + tg_randint(40), 1 + tg_randint(3));
    }
}

static void test_large(void) {   /* several K slices, several N panels */
    int ta, tb;
    for (ta = 0; ta < 2; ta++) for (tb = 0; tb < 2; tb++) {
        tg_case(ta, tb, 257, 263, 700, 1.f, 0.f, 3, 2);
        if (!tg_quick()) tg_case(ta, tb, 37, 1100, 300, 0.5f, 1.f, 0, 2);
        if (!tg_quick()) tg_case(ta, tb, 1500, 45, 70, 1.f, 0.f, 1, 2);   /* row chunks */
    }
}

static void test_alpha_beta(void) {
    static const float ab[][2] = {{1.f, 0.f}, {1.f, 1.f}, {0.5f, 1.f}, {-1.5f, 0.25f}, {2.f, -1.f}, {0.f, 2.f}, {0.f, 0.f}};
    int i, ta, tb;
    for (i = 0; i < (int)(sizeof ab / sizeof ab[0]); i++)
        for (ta = 0; ta < 2; ta++) for (tb = 0; tb < 2; tb++) {
            tg_case(ta, tb, 17, 129, 300, ab[i][0], ab[i][1], 2, 2);
            tg_case(ta, tb, 129, 3, 17, ab[i][0], ab[i][1], 0, 1);
        }
}

static void test_k0(void) {
    float C[3 * 5], A[1] = {NAN}, B[1] = {NAN};
    unsigned char ws[64 * 3];
    void *w = (void *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    int i;
    for (i = 0; i < 15; i++) C[i] = (float)i;
    mr__gemm_cpu(0, 0, 3, 4, 0, 1.f, A, 1, B, 4, 2.f, C, 5, 1, w);   /* C = 2C, column 4 is padding */
    for (i = 0; i < 15; i++) MR_CHECK(C[i] == (i % 5 == 4 ? (float)i : 2.f * i));
    for (i = 0; i < 15; i++) C[i] = NAN;
    mr__gemm_cpu(1, 1, 3, 5, 0, 1.f, A, 1, B, 1, 0.f, C, 5, 2, w);   /* beta 0: zeros, NaN cleared */
    for (i = 0; i < 15; i++) MR_CHECK(C[i] == 0.f);
    MR_CHECK(tg_case(0, 1, 17, 3, 0, 1.f, 0.5f, 1, 2));
    MR_CHECK(tg_case(1, 0, 3, 17, 0, 1.f, 0.f, 0, 2));
}

/* The same call with 1, 2 and 3 threads gives the same bits. */
static void test_threads_bitwise(void) {
    static const int shapes[][3] = {{300, 129, 600}, {5, 300, 200}, {129, 77, 300}, {1, 1100, 64}, {600, 300, 1000},
                                    {40, 40, 3000}, {1500, 40, 300}, {4000, 33, 50}};   /* the last two: row chunks */
    int s, ta, tb, nt, i, j;
    tg_ws w = tg_ws_new(3);
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++)
        for (ta = 0; ta < 2; ta++) for (tb = 0; tb < 2; tb++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            int lda = ta ? M : K, ldb = tb ? K : N;
            float *A = tg_mat((size_t)M * K), *B = tg_mat((size_t)K * N), *C1 = tg_mat((size_t)M * N);
            float *Cn = (float *)malloc((size_t)M * N * sizeof(float)), *Cin = (float *)malloc((size_t)M * N * sizeof(float));
            memcpy(Cin, C1, (size_t)M * N * sizeof(float));
            mr__gemm_cpu(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.5f, C1, N, 1, w.p);
            for (nt = 2; nt <= 3; nt++) {
                memcpy(Cn, Cin, (size_t)M * N * sizeof(float));
                mr__gemm_cpu(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.5f, Cn, N, nt, w.p);
                for (i = 0; i < M; i++) for (j = 0; j < N; j++)
                    if (memcmp(&C1[(size_t)i * N + j], &Cn[(size_t)i * N + j], sizeof(float))) {
                        MR_CHECK_MSG(0, "nt=%d differs at (%d,%d): %.9g vs %.9g, ta=%d tb=%d M=%d N=%d K=%d",
                                     nt, i, j, C1[(size_t)i * N + j], Cn[(size_t)i * N + j], ta, tb, M, N, K);
                        i = M; break;
                    }
            }
            free(A); free(B); free(C1); free(Cn); free(Cin);
        }
    MR_CHECK(tg_ws_ok(&w));
    free(w.raw);
}

/* mr_gemm's small path with tb (one-token steps of up to 16 streams; mr__gemv):
   against the double reference, with padding, alpha and beta, NaN in C when
   beta = 0; and every row of C bit for bit the M = 1 result of its row of A */
static void test_gemv(void) {
    static const int Ms[] = {1, 2, 5, 16}, Ns[] = {1, 15, 16, 17, 37, 100}, Ks[] = {1, 13, 16, 128, 130, 512};
    int mi, ni, ki, i, j, k, bad = 0, pad;
    for (mi = 0; mi < 4; mi++) for (ni = 0; ni < 6; ni++) for (ki = 0; ki < 6; ki++) {
        int M = Ms[mi], N = Ns[ni], K = Ks[ki], lda, ldb, ldc;
        float alpha = (ni + ki) % 2 ? 1.f : 0.5f, beta = ki % 3 == 1 ? 0.25f : 0.f, *A, *B, *C, *C0, *c1;
        double tol = 1e-5 * sqrt((double)K);
        pad = (mi + ni + ki) % 3 == 0 ? 3 : 0;
        lda = K + pad; ldb = K + pad; ldc = N + pad;
        A = tg_mat((size_t)M * lda); B = tg_mat((size_t)N * ldb); C = tg_mat((size_t)M * ldc);
        C0 = (float *)malloc(sizeof(float) * (size_t)M * ldc); c1 = (float *)malloc(sizeof(float) * (size_t)N);
        if (beta == 0.f) for (i = 0; i < M * ldc; i++) C[i] = NAN;
        memcpy(C0, C, sizeof(float) * (size_t)M * ldc);
        mr__gemm_small(1, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        for (i = 0; i < M; i++) {
            memcpy(c1, C0 + (size_t)i * ldc, sizeof(float) * (size_t)N);
            mr__gemm_small(1, 1, N, K, alpha, A + (size_t)i * lda, lda, B, ldb, beta, c1, N);
            if (memcmp(c1, C + (size_t)i * ldc, sizeof(float) * (size_t)N)) bad++;
            for (j = 0; j < N; j++) {
                double ref = 0, scale = 0;
                for (k = 0; k < K; k++) { ref += (double)A[(size_t)i * lda + k] * B[(size_t)j * ldb + k]; scale += fabs((double)A[(size_t)i * lda + k] * B[(size_t)j * ldb + k]); }
                ref *= alpha; scale *= alpha;
                if (beta != 0.f) { ref += (double)beta * C0[(size_t)i * ldc + j]; scale += fabs((double)beta * C0[(size_t)i * ldc + j]); }
                if (!(fabs(C[(size_t)i * ldc + j] - ref) <= tol * (scale > 1 ? scale : 1))) bad++;
            }
            for (j = N; j < ldc; j++) if (memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof(float))) bad++;
        }
        MR_CHECK_MSG(bad == 0, "M=%d N=%d K=%d alpha=%g beta=%g pad=%d: %d wrong", M, N, K, alpha, beta, pad, bad);
        bad = 0;
        free(A); free(B); free(C); free(C0); free(c1);
    }
}

MR_TEST_MAIN({"gemm_small_shapes", test_small_shapes}, {"gemv", test_gemv},
             {"gemm_random_shapes", test_random_shapes},
             {"gemm_large", test_large},
             {"gemm_alpha_beta", test_alpha_beta},
             {"gemm_k0", test_k0},
             {"gemm_threads_bitwise", test_threads_bitwise})
