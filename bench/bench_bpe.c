/* bench_bpe: byte-level BPE training time, encoding speed and compression.

     build/bench/bench_bpe [CORPUS] [--reps N]

   CORPUS defaults to data/tinyshakespeare.txt (then /work/shared/data/...);
   without one the benchmark prints SKIP. For vocabularies 1,024 / 4,096 /
   16,384 (pre-tokenized, min frequency 2) it reports the training time, the
   encoding speed with an empty cache ("cold"), a filled cache ("warm") and no
   cache, the decoding speed and bytes per token; then the training time
   without pre-tokenization. Single-threaded. Times are the best of --reps
   runs (default 3). Targets (issue 4, vocab 4,096): train < 2 s, encode
   >= 20 MB/s. */
#define _POSIX_C_SOURCE 200809L
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    static const char *defaults[] = {"data/tinyshakespeare.txt", "/work/shared/data/tinyshakespeare.txt"};
    static const int vocabs[] = {1024, 4096, 16384};
    const char *path = NULL;
    uint8_t *text = NULL, *back;
    size_t n = 0, i;
    int32_t *ids;
    int reps = 3, v, r, status = 0;
    mr_error e;
    for (i = 1; i < (size_t)argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < (size_t)argc) reps = atoi(argv[++i]);
        else if (argv[i][0] == '-') { fprintf(stderr, "bench_bpe: unknown option '%s'\n", argv[i]); return 2; }
        else path = argv[i];
    }
    if (reps < 1) reps = 1;
    if (path) {
        if (mr_read_file(path, &text, &n, (size_t)1 << 32, NULL, &e) != MR_OK) { fprintf(stderr, "bench_bpe: %s\n", e.msg); return 1; }
    } else {
        for (i = 0; i < 2 && !text; i++)
            if (mr_read_file(defaults[i], &text, &n, (size_t)1 << 32, NULL, &e) == MR_OK) path = defaults[i];
        if (!text) { printf("SKIP bench_bpe: no corpus (pass a path)\n"); return 0; }
    }
    ids = (int32_t *)malloc((n + 1) * sizeof(int32_t));
    back = (uint8_t *)malloc(n + 1);
    if (!ids || !back) { fprintf(stderr, "bench_bpe: out of memory\n"); return 1; }
    printf("corpus %s: %zu bytes; best of %d runs, one thread\n", path, n, reps);
    printf("%7s %8s %7s %9s %9s %9s %9s %8s\n", "vocab", "merges", "train_s", "cold_MB/s", "warm_MB/s", "nocache", "dec_MB/s", "B/token");
    for (v = 0; v < 3; v++) {
        mr_bpe_train_opts o = mr_bpe_train_defaults();
        mr_bpe *t = NULL;
        double best_train = 1e30, cold = 1e30, warm = 1e30, nocache = 1e30, dec = 1e30;
        size_t ni = 0, nb = 0;
        o.vocab_size = vocabs[v];
        for (r = 0; r < reps; r++) {
            double t0 = now();
            mr_bpe_free(t);
            if (mr_bpe_train(&t, text, n, &o, NULL, &e) != MR_OK) { fprintf(stderr, "bench_bpe: %s\n", e.msg); return 1; }
            t0 = now() - t0;
            if (t0 < best_train) best_train = t0;
        }
        for (r = 0; r < reps; r++) {
            double t0;
            mr_bpe_set_cache(t, 65536);   /* empty cache */
            t0 = now();
            mr_bpe_encode(t, text, n, 0, ids, n, &ni, NULL);
            t0 = now() - t0;
            if (t0 < cold) cold = t0;
            t0 = now();
            mr_bpe_encode(t, text, n, 0, ids, n, &ni, NULL);
            t0 = now() - t0;
            if (t0 < warm) warm = t0;
            mr_bpe_set_cache(t, 0);
            t0 = now();
            mr_bpe_encode(t, text, n, 0, ids, n, &ni, NULL);
            t0 = now() - t0;
            if (t0 < nocache) nocache = t0;
            t0 = now();
            mr_bpe_decode(t, ids, ni, back, n, &nb, NULL);
            t0 = now() - t0;
            if (t0 < dec) dec = t0;
        }
        if (nb != n || memcmp(back, text, n) != 0) { fprintf(stderr, "bench_bpe: round trip FAILED\n"); status = 1; }
        printf("%7d %8d %7.3f %9.1f %9.1f %9.1f %9.1f %8.3f\n", mr_bpe_vocab_size(t), mr_bpe_n_merges(t), best_train,
               n / 1e6 / cold, n / 1e6 / warm, n / 1e6 / nocache, n / 1e6 / dec, (double)n / (double)ni);
        if (mr_bpe_vocab_size(t) < vocabs[v])
            printf("        (asked for %d: training stopped when no pair occurred twice)\n", vocabs[v]);
        if (vocabs[v] == 4096) {
            printf("        target (vocab 4096): train < 2 s: %s; encode >= 20 MB/s (cold cache): %s\n",
                   best_train < 2.0 ? "ok" : "MISSED", n / 1e6 / cold >= 20.0 ? "ok" : "MISSED");
        }
        mr_bpe_free(t);
    }
    {   /* the textbook algorithm: the whole text as one sequence */
        mr_bpe_train_opts o = mr_bpe_train_defaults();
        mr_bpe *t = NULL;
        double t0 = now();
        o.vocab_size = 4096;
        o.pretokenize = 0;
        if (mr_bpe_train(&t, text, n, &o, NULL, &e) != MR_OK) { fprintf(stderr, "bench_bpe: %s\n", e.msg); return 1; }
        t0 = now() - t0;
        mr_bpe_encode(t, text, n, 0, ids, n, &i, NULL);
        printf("no pre-tokenization, vocab 4096: train %.3f s, %.3f bytes/token\n", t0, (double)n / (double)i);
        mr_bpe_free(t);
    }
    free(ids);
    free(back);
    mr_buffer_free(text);
    return status;
}
