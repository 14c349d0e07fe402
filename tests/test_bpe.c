/* Tests of the byte-level BPE tokenizer: pre-tokenization rules, the fast
   trainer against a slow reference (recount every pair at every step),
   encoding against a slow reference (rescan for the lowest rank), round
   trips (10,000 random buffers), special tokens, tokenizer.json save/load,
   malformed files (every truncation, mutations), allocation failures. */
#define MINRNN_IMPLEMENTATION
#include "minrnn.h"
#include "mr_test.h"

/* ---- helpers ---- */
static uint64_t rng_state = 0x12345678abcdefull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
static uint8_t *read_data(const char *name, size_t *n) {
    static const char *dirs[] = {"tests/data/", "../tests/data/", "data/"};
    char path[512];
    int i;
    for (i = 0; i < 3; i++) {
        uint8_t *buf;
        mr_error e;
        snprintf(path, sizeof path, "%s%s", dirs[i], name);
        if (mr_read_file(path, &buf, n, 1 << 24, NULL, &e) == MR_OK) return buf;
    }
    fprintf(stderr, "  cannot find tests/data/%s (run from the repository root)\n", name);
    return NULL;
}
static mr_bpe *train(const void *text, size_t n, int vocab, int minf, int pretok, const char *const *sp, int nsp) {
    mr_bpe_train_opts o = mr_bpe_train_defaults();
    mr_bpe *t = NULL;
    mr_error e;
    mr_status s;
    o.vocab_size = vocab; o.min_frequency = minf; o.pretokenize = pretok;
    o.special_tokens = sp; o.n_special = nsp;
    s = mr_bpe_train(&t, (const uint8_t *)text, n, &o, NULL, &e);
    MR_CHECK_MSG(s == MR_OK, "train: %s", e.msg);
    return t;
}
static int roundtrip(mr_bpe *t, const uint8_t *text, size_t n, int allow_special) {
    int32_t *ids = NULL;
    size_t ni = 0, nd = 0;
    uint8_t *dec = (uint8_t *)malloc(n + 1);
    mr_error e;
    int ok = mr_bpe_encode_alloc(t, text, n, allow_special, &ids, &ni, &e) == MR_OK &&
             mr_bpe_decode(t, ids, ni, dec, n, &nd, &e) == MR_OK && nd == n && (n == 0 || memcmp(dec, text, n) == 0);
    mr_bpe_free_buffer(t, ids);
    free(dec);
    return ok;
}

/* ---- slow references ---- */
typedef struct { int32_t *s; size_t n; } ref_word;
typedef struct {
    int n_tokens, n_merges;
    uint8_t *tok[4096];
    size_t tlen[4096];
    int32_t ml[4096], mr[4096], mres[4096];
} ref_model;

static void ref_free(ref_model *m) { int i; for (i = 0; i < m->n_tokens; i++) free(m->tok[i]); }

/* Textbook BPE: recount every pair at every step. Chunks come from
   mr_bpe_chunk_len and are not deduplicated (each counts once). */
static void ref_train(ref_model *m, const uint8_t *text, size_t n, int vocab, int minf, int pretok,
                      const char *const *sp, int nsp) {
    ref_word *w = NULL;
    size_t nw = 0, i, j, start = 0, V2;
    int64_t *cnt;
    int target = vocab - nsp, k;
    memset(m, 0, sizeof *m);
    for (k = 0; k < 256; k++) { m->tok[k] = (uint8_t *)malloc(1); m->tok[k][0] = (uint8_t)k; m->tlen[k] = 1; }
    m->n_tokens = 256;
    w = (ref_word *)malloc((n + 1) * sizeof *w);
    /* cut special tokens out (leftmost, longest), then chunk each piece */
    for (i = 0; i <= n; i++) {
        size_t best = 0, a;
        for (k = 0; k < nsp && i < n; k++) {
            size_t L = strlen(sp[k]);
            if (L <= n - i && L > best && memcmp(text + i, sp[k], L) == 0) best = L;
        }
        if (i < n && !best) continue;
        a = start;
        while (a < i) {
            size_t L = pretok ? mr_bpe_chunk_len(text + a, i - a) : i - a;
            w[nw].s = (int32_t *)malloc(L * sizeof(int32_t));
            for (j = 0; j < L; j++) w[nw].s[j] = text[a + j];
            w[nw].n = L;
            nw++;
            a += L;
        }
        if (i == n) break;
        i += best - 1;
        start = i + 1;
    }
    V2 = (size_t)vocab * (size_t)vocab;
    cnt = (int64_t *)malloc(V2 * sizeof(int64_t));
    while (m->n_tokens < target) {
        int64_t best = 0;
        int32_t A = -1, B = -1, C = -1;
        memset(cnt, 0, V2 * sizeof(int64_t));
        for (i = 0; i < nw; i++)
            for (j = 0; j + 1 < w[i].n; j++) cnt[(size_t)w[i].s[j] * vocab + w[i].s[j + 1]]++;
        for (i = 0; i < V2; i++)
            if (cnt[i] > best) { best = cnt[i]; A = (int32_t)(i / vocab); B = (int32_t)(i % vocab); }
        if (best < minf || best == 0) break;
        {
            size_t la = m->tlen[A], lb = m->tlen[B];
            uint8_t *cat = (uint8_t *)malloc(la + lb);
            memcpy(cat, m->tok[A], la);
            memcpy(cat + la, m->tok[B], lb);
            for (k = 0; k < m->n_tokens; k++)
                if (m->tlen[k] == la + lb && memcmp(m->tok[k], cat, la + lb) == 0) { C = k; break; }
            if (C < 0) { C = m->n_tokens++; m->tok[C] = cat; m->tlen[C] = la + lb; }
            else free(cat);
        }
        for (k = 0; k < m->n_merges; k++) if (m->ml[k] == A && m->mr[k] == B) break;
        if (k == m->n_merges) { m->ml[k] = A; m->mr[k] = B; m->mres[k] = C; m->n_merges++; }
        for (i = 0; i < nw; i++) {   /* left to right */
            size_t o = 0;
            for (j = 0; j < w[i].n; j++) {
                if (j + 1 < w[i].n && w[i].s[j] == A && w[i].s[j + 1] == B) { w[i].s[o++] = C; j++; }
                else w[i].s[o++] = w[i].s[j];
            }
            w[i].n = o;
        }
    }
    for (i = 0; i < nw; i++) free(w[i].s);
    free(w);
    free(cnt);
}
/* Compares the fast trainer with the reference; returns 1 if they agree. */
static int fast_vs_ref(const uint8_t *text, size_t n, int vocab, int minf, int pretok, const char *const *sp, int nsp) {
    ref_model *m = (ref_model *)malloc(sizeof *m);
    mr_bpe *t = train(text, n, vocab, minf, pretok, sp, nsp);
    int ok = t != NULL, k;
    if (!t) { free(m); return 0; }
    ref_train(m, text, n, vocab, minf, pretok, sp, nsp);
    if (mr_bpe_n_merges(t) != m->n_merges || mr_bpe_vocab_size(t) != m->n_tokens + nsp) {
        fprintf(stderr, "  merges %d vs ref %d, vocab %d vs ref %d\n", mr_bpe_n_merges(t), m->n_merges, mr_bpe_vocab_size(t),
                m->n_tokens + nsp);
        ok = 0;
    }
    for (k = 0; ok && k < m->n_merges; k++) {
        int32_t l = -1, r = -1, res = -1;
        mr_bpe_get_merge(t, k, &l, &r, &res);
        if (l != m->ml[k] || r != m->mr[k] || res != m->mres[k]) {
            fprintf(stderr, "  merge %d: fast (%d,%d)->%d, ref (%d,%d)->%d\n", k, l, r, res, m->ml[k], m->mr[k], m->mres[k]);
            ok = 0;
        }
    }
    for (k = 0; ok && k < m->n_tokens; k++) {
        const uint8_t *b;
        size_t L = mr_bpe_token_bytes(t, k, &b);
        if (L != m->tlen[k] || memcmp(b, m->tok[k], L) != 0) { fprintf(stderr, "  token %d differs\n", k); ok = 0; }
    }
    ref_free(m);
    free(m);
    mr_bpe_free(t);
    return ok;
}
/* Reference encoder of one chunk: rescan for the lowest-ranked pair
   (leftmost), merge it, until none applies. rank: V x V table. */
static int *ref_rank_table(const mr_bpe *t) {
    int V = mr_bpe_vocab_size(t), r;
    int *tab = (int *)malloc((size_t)V * V * sizeof(int));
    memset(tab, 0xff, (size_t)V * V * sizeof(int));
    for (r = mr_bpe_n_merges(t); r-- > 0;) {
        int32_t l = 0, rr = 0;
        mr_bpe_get_merge(t, r, &l, &rr, NULL);
        tab[(size_t)l * V + rr] = r;
    }
    return tab;
}
static size_t ref_encode_chunk(const mr_bpe *t, const int *rank, const uint8_t *s, size_t L, int32_t *out) {
    size_t n = L, i, at = 0;
    int V = mr_bpe_vocab_size(t);
    for (i = 0; i < L; i++) out[i] = mr_bpe_byte_id(t, s[i]);
    for (;;) {
        int best = -1;
        int32_t res = 0;
        for (i = 0; i + 1 < n; i++) {
            int r = rank[(size_t)out[i] * V + out[i + 1]];
            if (r >= 0 && (best < 0 || r < best)) { best = r; at = i; }
        }
        if (best < 0) break;
        mr_bpe_get_merge(t, best, NULL, NULL, &res);
        out[at] = res;
        memmove(out + at + 1, out + at + 2, (n - at - 2) * sizeof(int32_t));
        n--;
    }
    return n;
}
/* GPT-2's byte-to-unicode table, written again here to check the library's. */
static void gpt2_byte_map(unsigned u[256]) {
    int b, k = 0;
    for (b = 0; b < 256; b++)
        u[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) ? (unsigned)b : 256u + (unsigned)k++;
}

/* ---- tests ---- */
static void expect_chunks(const char *text, const char *const *want, int nwant) {
    size_t n = strlen(text), i = 0;
    int k = 0;
    while (i < n) {
        size_t L = mr_bpe_chunk_len((const uint8_t *)text + i, n - i);
        MR_CHECK_MSG(L > 0, "zero-length chunk");
        if (L == 0) return;
        MR_CHECK_MSG(k < nwant && strlen(want[k]) == L && memcmp(want[k], text + i, L) == 0, "chunk %d of \"%s\" is \"%.*s\"", k,
                     text, (int)L, text + i);
        i += L;
        k++;
    }
    MR_CHECK_MSG(k == nwant, "%d chunks, want %d", k, nwant);
}
static void test_pretokenize(void) {
    { static const char *const w[] = {"Hello", ",", " world", "!"}; expect_chunks("Hello, world!", w, 4); }
    { static const char *const w[] = {"I", "'m", " don", "'t", " they", "'re", " we", "'ve", " it", "'s", " you", "'ll", " he", "'d"};
      expect_chunks("I'm don't they're we've it's you'll he'd", w, 14); }
    { static const char *const w[] = {"a", " ", " b"}; expect_chunks("a  b", w, 3); }
    { static const char *const w[] = {"a", " ", "\n", "b"}; expect_chunks("a \nb", w, 4); }
    { static const char *const w[] = {"x", "\n", "\n", "y", "  \n "}; expect_chunks("x\n\ny  \n ", w, 5); }
    { static const char *const w[] = {" 123", "abc", " ?!", " '", "S"}; expect_chunks(" 123abc ?! 'S", w, 5); }
    /* bytes >= 0x80 count as letters (ASCII rules): the em dash joins the letters */
    /* Unicode classes: an em dash is punctuation, so " \u2014" is its own chunk */
    { static const char *const w[] = {"\xc3\xa7" "a", " \xe2\x80\x94", "x", "!"}; expect_chunks("\xc3\xa7" "a \xe2\x80\x94x!", w, 4); }
    /* x\u00b2: a superscript digit is a number; a no-break space is whitespace; a combining accent is not a letter (Mn) */
    { static const char *const w[] = {"x", "\xc2\xb2"}; expect_chunks("x\xc2\xb2", w, 2); }
    { static const char *const w[] = {"a", " ", "\xc2\xa0", "b"}; expect_chunks("a \xc2\xa0" "b", w, 4); }
    { static const char *const w[] = {"e", "\xcc\x81"}; expect_chunks("e\xcc\x81", w, 2); }
    /* CJK letters, a full-width comma, an emoji after a letter, an invalid byte */
    { static const char *const w[] = {"\xe4\xbd\xa0\xe5\xa5\xbd", "\xef\xbc\x8c", "a", "\xf0\x9f\x98\x80", " \xff", "z"};
      expect_chunks("\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c" "a\xf0\x9f\x98\x80 \xff" "z", w, 6); }
    { static const char *const w[] = {"''", "s"}; expect_chunks("''s", w, 2); }
    { static const char *const w[] = {"\t", " x", "\x01\x02", "7"}; expect_chunks("\t x\x01\x02" "7", w, 4); }
    MR_CHECK(mr_bpe_chunk_len(NULL, 0) == 0);
}

static void test_train_textbook(void) {
    /* "aaabdaaabac": (a,a) x4 -> Z; then (a,b) and (Z,a) tie at 2: (97,98) is smaller; then (Z,Y) */
    const char *s = "aaabdaaabac";
    mr_bpe *t = train(s, strlen(s), 1000, 2, 0, NULL, 0);
    int32_t l, r, res;
    if (!t) return;
    MR_CHECK(mr_bpe_n_merges(t) == 3);
    MR_CHECK(mr_bpe_get_merge(t, 0, &l, &r, &res) == MR_OK && l == 'a' && r == 'a' && res == 256);
    MR_CHECK(mr_bpe_get_merge(t, 1, &l, &r, &res) == MR_OK && l == 'a' && r == 'b' && res == 257);
    MR_CHECK(mr_bpe_get_merge(t, 2, &l, &r, &res) == MR_OK && l == 256 && r == 257 && res == 258);
    MR_CHECK(mr_bpe_get_merge(t, 3, &l, &r, &res) == MR_ERR_RANGE);
    MR_CHECK(mr_bpe_vocab_size(t) == 259);
    {
        int32_t ids[16];
        size_t n;
        MR_CHECK(mr_bpe_encode(t, (const uint8_t *)s, strlen(s), 0, ids, 16, &n, NULL) == MR_OK);
        MR_CHECK(n == 5 && ids[0] == 258 && ids[1] == 'd' && ids[2] == 258 && ids[3] == 'a' && ids[4] == 'c');
    }
    mr_bpe_free(t);
    /* overlapping counts: "aaa" holds (a,a) twice; min frequency 2 merges it */
    t = train("aaa", 3, 300, 2, 0, NULL, 0);
    if (t) { MR_CHECK(mr_bpe_n_merges(t) == 1); mr_bpe_free(t); }
    t = train("aaa", 3, 300, 3, 0, NULL, 0);
    if (t) { MR_CHECK(mr_bpe_n_merges(t) == 0); mr_bpe_free(t); }
    /* vocab size 256: no merges; empty text */
    t = train("abab", 4, 256, 1, 1, NULL, 0);
    if (t) { MR_CHECK(mr_bpe_n_merges(t) == 0 && mr_bpe_vocab_size(t) == 256); mr_bpe_free(t); }
    t = train("", 0, 1000, 1, 1, NULL, 0);
    if (t) { MR_CHECK(mr_bpe_n_merges(t) == 0 && roundtrip(t, (const uint8_t *)"xyz", 3, 0)); mr_bpe_free(t); }
}

static void test_train_bad_args(void) {
    mr_bpe_train_opts o = mr_bpe_train_defaults();
    mr_bpe *t = (mr_bpe *)&o;
    mr_error e;
    const char *sp2[2] = {"<a>", "<a>"};
    const char *sp1[1] = {""};
    const char *spbad[1] = {"\xff\xfe"};
    o.vocab_size = 255;
    MR_CHECK(mr_bpe_train(&t, (const uint8_t *)"ab", 2, &o, NULL, &e) == MR_ERR_ARG && t == NULL && e.msg[0]);
    o.vocab_size = 300; o.min_frequency = 0;
    MR_CHECK(mr_bpe_train(&t, (const uint8_t *)"ab", 2, &o, NULL, &e) == MR_ERR_ARG);
    o.min_frequency = 2; o.special_tokens = sp2; o.n_special = 2;
    MR_CHECK(mr_bpe_train(&t, (const uint8_t *)"ab", 2, &o, NULL, &e) == MR_ERR_ARG);
    o.special_tokens = sp1; o.n_special = 1;
    MR_CHECK(mr_bpe_train(&t, (const uint8_t *)"ab", 2, &o, NULL, &e) == MR_ERR_ARG);
    o.special_tokens = spbad;
    MR_CHECK(mr_bpe_train(&t, (const uint8_t *)"ab", 2, &o, NULL, &e) == MR_ERR_ARG);
    o.n_special = 0; o.vocab_size = 256 + (1 << 24);
    MR_CHECK(mr_bpe_train(&t, (const uint8_t *)"ab", 2, &o, NULL, &e) == MR_ERR_ARG);
    MR_CHECK(mr_bpe_train(NULL, (const uint8_t *)"ab", 2, &o, NULL, &e) == MR_ERR_ARG);
    /* a special token spelled like a byte token ("!" is byte 0x21's key) */
    {
        const char *bang[1] = {"!"};
        o.vocab_size = 300; o.special_tokens = bang; o.n_special = 1;
        MR_CHECK(mr_bpe_train(&t, (const uint8_t *)"a!b", 3, &o, NULL, &e) == MR_ERR_ARG && t == NULL);
    }
}

static void test_train_matches_reference_random(void) {
    static const char *alphabets[] = {"ab", "abc", "ab ", "a b\n", "aab", "abcd  '\n"};
    int it, fails = 0, runs = 0;
    for (it = 0; it < 120; it++) {
        const char *al = alphabets[it % 6];
        size_t na = strlen(al), n = 1 + rnd() % 1500, i;
        uint8_t *s = (uint8_t *)malloc(n);
        int pretok = (it / 6) % 2, minf = 1 + (int)(rnd() % 3), vocab = 256 + 1 + (int)(rnd() % 120);
        for (i = 0; i < n; i++) s[i] = (uint8_t)al[rnd() % na];
        if (!fast_vs_ref(s, n, vocab, minf, pretok, NULL, 0)) {
            fails++;
            fprintf(stderr, "  mismatch: it %d alphabet \"%s\" n %zu vocab %d minf %d pretok %d\n", it, al, n, vocab, minf, pretok);
        }
        runs++;
        free(s);
    }
    MR_CHECK_MSG(fails == 0, "%d of %d random runs differ", fails, runs);
    /* random bytes (every value, NUL included) and specials */
    for (it = 0; it < 20; it++) {
        static const char *const sp[2] = {"<s>", "<|eos|>"};
        size_t n = 1 + rnd() % 800, i;
        uint8_t *s = (uint8_t *)malloc(n + 20);
        for (i = 0; i < n; i++) s[i] = (uint8_t)(it % 2 ? rnd() % 4 + '<' : rnd());
        if (n > 10) { memcpy(s + n / 2, "<|eos|>", 7); memcpy(s + n / 3, "<s>", 3); }
        MR_CHECK_MSG(fast_vs_ref(s, n, 256 + 2 + (int)(rnd() % 60), 1 + it % 2, it % 3 != 0, sp, 2), "bytes run %d", it);
        free(s);
    }
}

static void test_train_matches_reference_text(void) {
    size_t n, nu;
    uint8_t *s = read_data("shakespeare_12k.txt", &n), *u = read_data("utf8_sample.txt", &nu);
    MR_CHECK(s != NULL && u != NULL);
    if (s) {
        MR_CHECK_MSG(fast_vs_ref(s, n, 700, 2, 1, NULL, 0), "shakespeare, pretokenized");
        MR_CHECK_MSG(fast_vs_ref(s, 6000, 600, 2, 0, NULL, 0), "shakespeare, one sequence");
        MR_CHECK_MSG(fast_vs_ref(s, n, 500, 1, 1, NULL, 0), "shakespeare, min frequency 1");
    }
    if (u) {
        MR_CHECK_MSG(fast_vs_ref(u, nu, 450, 1, 1, NULL, 0), "utf8, pretokenized");
        MR_CHECK_MSG(fast_vs_ref(u, nu, 450, 1, 0, NULL, 0), "utf8, one sequence");
    }
    mr_buffer_free(s);
    mr_buffer_free(u);
}

static void test_encode_matches_reference(void) {
    size_t n, i;
    uint8_t *s = read_data("shakespeare_12k.txt", &n);
    int pass;
    if (!s) { MR_CHECK(s != NULL); return; }
    for (pass = 0; pass < 2; pass++) {
        mr_bpe *t = train(s, n, 600, 2, pass == 0, NULL, 0);
        int32_t *ids, *ref;
        size_t ni, nr = 0, bad = 0;
        int *rank;
        if (!t) continue;
        rank = ref_rank_table(t);
        ids = (int32_t *)malloc((n + 1) * sizeof(int32_t));
        ref = (int32_t *)malloc((n + 1) * sizeof(int32_t));
        /* reference: chunk, then slow merging; on 2 KB when not pretokenized (quadratic) */
        {
            size_t m = pass == 0 ? n : 2000;
            MR_CHECK(mr_bpe_encode(t, s, m, 0, ids, n, &ni, NULL) == MR_OK);
            for (i = 0; i < m;) {
                size_t L = pass == 0 ? mr_bpe_chunk_len(s + i, m - i) : m;
                nr += ref_encode_chunk(t, rank, s + i, L, ref + nr);
                i += L;
            }
        }
        MR_CHECK_MSG(ni == nr, "pass %d: %zu ids vs reference %zu", pass, ni, nr);
        for (i = 0; i < ni && i < nr; i++) bad += ids[i] != ref[i];
        MR_CHECK_MSG(bad == 0, "pass %d: %zu ids differ", pass, bad);
        free(ids); free(ref); free(rank);
        mr_bpe_free(t);
    }
    mr_buffer_free(s);
}

static void test_roundtrip_fuzz(void) {
    size_t n, i;
    uint8_t *s = read_data("shakespeare_12k.txt", &n), *buf = (uint8_t *)malloc(600);
    mr_bpe *tk[3];
    int it, fails = 0, k;
    static const char *const sp[2] = {"<|bos|>", "<|eos|>"};
    if (!s) { MR_CHECK(s != NULL); free(buf); return; }
    tk[0] = train(s, n, 800, 2, 1, sp, 2);
    tk[1] = train(s, n, 800, 2, 0, NULL, 0);
    for (i = 0; i < 4000; i++) buf[i % 600] = (uint8_t)rnd();
    {   /* a tokenizer trained on binary noise with repeats */
        uint8_t *bin = (uint8_t *)malloc(20000);
        for (i = 0; i < 20000; i++) bin[i] = (uint8_t)(i % 7 == 0 ? 0 : rnd() % 16 * 17);
        tk[2] = train(bin, 20000, 700, 2, 1, NULL, 0);
        free(bin);
    }
    if (!tk[0] || !tk[1] || !tk[2]) { for (k = 0; k < 3; k++) mr_bpe_free(tk[k]); mr_buffer_free(s); free(buf); return; }
    mr_bpe_set_cache(tk[0], 64);   /* small: exercises the wrap-around */
    for (it = 0; it < 10000; it++) {
        size_t len = rnd() % 512;
        int kind = it % 5;
        for (i = 0; i < len; i++) {
            switch (kind) {
            case 0: buf[i] = (uint8_t)rnd(); break;                                      /* any bytes, NUL included */
            case 1: buf[i] = (uint8_t)(0x80 + rnd() % 0x80); break;                      /* invalid UTF-8 */
            case 2: buf[i] = s[(it * 131 + i) % n]; break;                               /* real text */
            case 3: buf[i] = (uint8_t)" \n\t'aeZ09.\xc3\xa9\0"[rnd() % 14]; break;       /* pretokenizer edge cases */
            default: buf[i] = (uint8_t)"<|eos>b \0"[rnd() % 9]; break;                    /* near-special text */
            }
        }
        for (k = 0; k < 3; k++) {
            if (!roundtrip(tk[k], buf, len, 0)) fails++;
            if (k == 0 && !roundtrip(tk[k], buf, len, 1)) fails++;
        }
    }
    MR_CHECK_MSG(fails == 0, "%d round trips failed", fails);
    /* cached and uncached encodings agree */
    {
        int32_t *a = (int32_t *)malloc(n * sizeof(int32_t)), *b = (int32_t *)malloc(n * sizeof(int32_t));
        size_t na = 0, nb = 1;
        mr_bpe_set_cache(tk[0], 0);
        MR_CHECK(mr_bpe_encode(tk[0], s, n, 0, a, n, &na, NULL) == MR_OK);
        mr_bpe_set_cache(tk[0], 1000);
        MR_CHECK(mr_bpe_encode(tk[0], s, n, 0, b, n, &nb, NULL) == MR_OK);
        MR_CHECK(mr_bpe_encode(tk[0], s, n, 0, b, n, &nb, NULL) == MR_OK);
        MR_CHECK(na == nb && memcmp(a, b, na * sizeof(int32_t)) == 0);
        free(a); free(b);
    }
    for (k = 0; k < 3; k++) mr_bpe_free(tk[k]);
    mr_buffer_free(s);
    free(buf);
}

static void test_encode_decode_buffers(void) {
    const char *s = "the cat sat on the mat, the cat sat on the hat";
    size_t n = strlen(s), got, need;
    mr_bpe *t = train(s, n, 300, 2, 1, NULL, 0);
    int32_t ids[64], bad[2] = {5, 9999};
    uint8_t out[64];
    mr_error e;
    const uint8_t *b;
    if (!t) return;
    MR_CHECK(mr_bpe_encode(t, (const uint8_t *)s, n, 0, ids, 64, &need, &e) == MR_OK && need < n);
    MR_CHECK(mr_bpe_encode(t, (const uint8_t *)s, n, 0, ids, 3, &got, &e) == MR_ERR_RANGE && got == need);
    MR_CHECK(mr_bpe_encode(t, (const uint8_t *)s, n, 0, NULL, 0, &got, &e) == MR_ERR_RANGE && got == need);
    MR_CHECK(mr_bpe_encode(t, (const uint8_t *)s, n, 0, ids, 64, &got, &e) == MR_OK && got == need);
    MR_CHECK(mr_bpe_decode(t, ids, need, out, 10, &got, &e) == MR_ERR_RANGE && got == n && memcmp(out, s, 10) == 0);
    MR_CHECK(mr_bpe_decode(t, ids, need, out, 64, &got, &e) == MR_OK && got == n && memcmp(out, s, n) == 0);
    MR_CHECK(mr_bpe_decode(t, bad, 2, out, 64, &got, &e) == MR_ERR_RANGE && strstr(e.msg, "9999") != NULL);
    bad[1] = -1;
    MR_CHECK(mr_bpe_decode(t, bad, 2, out, 64, &got, &e) == MR_ERR_RANGE);
    MR_CHECK(mr_bpe_token_bytes(t, 'x', &b) == 1 && b[0] == 'x');
    MR_CHECK(mr_bpe_token_bytes(t, 300, &b) == 0 && b == NULL);
    MR_CHECK(mr_bpe_token_bytes(t, -3, &b) == 0 && b == NULL);
    MR_CHECK(mr_bpe_encode(t, NULL, 0, 0, ids, 64, &got, &e) == MR_OK && got == 0);
    mr_bpe_free(t);
}

static void test_special_tokens(void) {
    static const char *const sp[3] = {"<|bos|>", "<|eos|>", "<|pad|>"};
    const char *s = "<|bos|>hello world<|eos|><|bos|>hello there<|eos|><|bos|>hello world<|eos|>";
    size_t n = strlen(s), ni, i;
    mr_bpe *t = train(s, n, 300, 2, 1, sp, 3);
    int32_t ids[128], eos, bos;
    int seen_eos = 0, seen_bos = 0;
    if (!t) return;
    bos = mr_bpe_special_id(t, "<|bos|>");
    eos = mr_bpe_special_id(t, "<|eos|>");
    MR_CHECK(mr_bpe_n_special(t) == 3 && bos == 256 + mr_bpe_n_merges(t) && eos == bos + 1);
    MR_CHECK(mr_bpe_special_id(t, "<|pad|>") == bos + 2 && mr_bpe_vocab_size(t) == bos + 3);
    MR_CHECK(mr_bpe_special_id(t, "<|nope|>") == -1 && mr_bpe_is_special(t, eos) && !mr_bpe_is_special(t, 'a'));
    /* no merge crosses or builds a special token */
    for (i = 0; i < (size_t)mr_bpe_n_merges(t); i++) {
        int32_t res = 0;
        const uint8_t *b;
        size_t L;
        mr_bpe_get_merge(t, (int)i, NULL, NULL, &res);
        L = mr_bpe_token_bytes(t, res, &b);
        MR_CHECK(memchr(b, '|', L) == NULL);
    }
    MR_CHECK(mr_bpe_encode(t, (const uint8_t *)s, n, 1, ids, 128, &ni, NULL) == MR_OK);
    for (i = 0; i < ni; i++) { seen_eos += ids[i] == eos; seen_bos += ids[i] == bos; }
    MR_CHECK(seen_eos == 3 && seen_bos == 3 && ids[0] == bos && ids[ni - 1] == eos);
    MR_CHECK(mr_bpe_encode(t, (const uint8_t *)s, n, 0, ids, 128, &ni, NULL) == MR_OK);
    for (i = 0, seen_eos = 0; i < ni; i++) seen_eos += mr_bpe_is_special(t, ids[i]);
    MR_CHECK(seen_eos == 0);
    MR_CHECK(roundtrip(t, (const uint8_t *)s, n, 1) && roundtrip(t, (const uint8_t *)s, n, 0));
    mr_bpe_free(t);
}

static int same_tokenizer(const mr_bpe *a, const mr_bpe *b) {
    int i;
    if (mr_bpe_vocab_size(a) != mr_bpe_vocab_size(b) || mr_bpe_n_merges(a) != mr_bpe_n_merges(b) ||
        mr_bpe_n_special(a) != mr_bpe_n_special(b) || mr_bpe_pretokenizes(a) != mr_bpe_pretokenizes(b))
        return 0;
    for (i = 0; i < mr_bpe_vocab_size(a); i++) {
        const uint8_t *x, *y;
        size_t lx = mr_bpe_token_bytes(a, i, &x), ly = mr_bpe_token_bytes(b, i, &y);
        if (lx != ly || memcmp(x, y, lx) || mr_bpe_is_special(a, i) != mr_bpe_is_special(b, i)) return 0;
    }
    for (i = 0; i < mr_bpe_n_merges(a); i++) {
        int32_t l1 = 0, r1 = 0, s1 = 0, l2 = -1, r2 = -1, s2 = -1;
        mr_bpe_get_merge(a, i, &l1, &r1, &s1);
        mr_bpe_get_merge(b, i, &l2, &r2, &s2);
        if (l1 != l2 || r1 != r2 || s1 != s2) return 0;
    }
    return 1;
}

static void test_json_roundtrip(void) {
    size_t n;
    uint8_t *s = read_data("shakespeare_12k.txt", &n);
    static const char *const sp[3] = {"<|bos|>", "<|eos|>", "<\"q\\u\x01>"};
    int pass;
    if (!s) { MR_CHECK(s != NULL); return; }
    for (pass = 0; pass < 2; pass++) {
        mr_bpe *t = train(s, n, 700, 2, pass == 0, sp, 3), *u = NULL;
        char *js = NULL, *js2 = NULL;
        size_t jl = 0, jl2 = 0;
        mr_error e;
        if (!t) continue;
        MR_CHECK(mr_bpe_save_json_mem(t, &js, &jl, &e) == MR_OK);
        MR_CHECK_MSG(mr_bpe_load_json_mem(&u, js, jl, NULL, &e) == MR_OK, "%s", e.msg);
        if (u) {
            MR_CHECK(same_tokenizer(t, u));
            MR_CHECK(mr_bpe_special_id(u, "<\"q\\u\x01>") == mr_bpe_special_id(t, "<\"q\\u\x01>"));
            MR_CHECK(mr_bpe_save_json_mem(u, &js2, &jl2, &e) == MR_OK && jl2 == jl && memcmp(js, js2, jl) == 0);
            MR_CHECK(roundtrip(u, s, n, 1));
            {
                int32_t *a = (int32_t *)malloc(n * 4), *b = (int32_t *)malloc(n * 4);
                size_t na = 0, nb = 1;
                MR_CHECK(mr_bpe_encode(t, s, n, 1, a, n, &na, NULL) == MR_OK && mr_bpe_encode(u, s, n, 1, b, n, &nb, NULL) == MR_OK);
                MR_CHECK(na == nb && memcmp(a, b, na * 4) == 0);
                free(a); free(b);
            }
        }
        if (pass == 0) {   /* expected layout */
            MR_CHECK(strstr(js, "\"type\": \"BPE\"") && strstr(js, "\"type\": \"ByteLevel\"") && strstr(js, "\"use_regex\": true"));
            MR_CHECK(strstr(js, "\"\\u0120\"") == NULL && strstr(js, "\"\xc4\xa0\": 32") != NULL);   /* space is "Ġ" */
            MR_CHECK(strstr(js, "\"\xc4\x8a\": 10") != NULL);                                     /* newline is "Ċ" */
            MR_CHECK(strstr(js, "\"content\": \"<|eos|>\"") != NULL && strstr(js, "\"<\\\"q\\\\u\\u0001>\"") != NULL);
        } else {
            MR_CHECK(strstr(js, "\"use_regex\": false") != NULL);
        }
#ifndef MINRNN_NO_STDIO
        {
            mr_bpe *w = NULL;
            MR_CHECK(mr_bpe_save_json(t, "build/test_bpe_tokenizer.json", &e) == MR_OK ||
                     mr_bpe_save_json(t, "test_bpe_tokenizer.json", &e) == MR_OK);
            MR_CHECK((mr_bpe_load_json(&w, "build/test_bpe_tokenizer.json", NULL, &e) == MR_OK ||
                      mr_bpe_load_json(&w, "test_bpe_tokenizer.json", NULL, &e) == MR_OK) && w && same_tokenizer(t, w));
            mr_bpe_free(w);
            MR_CHECK(mr_bpe_load_json(&w, "/nonexistent/tokenizer.json", NULL, &e) == MR_ERR_IO && w == NULL && e.msg[0]);
        }
#endif
        mr_bpe_free_buffer(t, js);
        mr_bpe_free_buffer(u, js2);
        mr_bpe_free(u);
        mr_bpe_free(t);
    }
    mr_buffer_free(s);
}

/* A hand-written file in the layout Hugging Face writes, with ids that are
   not the byte values, \u escapes, merges as pairs, an added token inside
   the vocab, and an extra key or two. */
static char *hf_style_file(size_t *len) {
    static char buf[1 << 16];
    unsigned u[256];
    size_t n = 0;
    int b;
    gpt2_byte_map(u);
    n += (size_t)snprintf(buf + n, sizeof buf - n,
                          "\xef\xbb\xbf{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[{\"id\":0,"
                          "\"content\":\"<|endoftext|>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,"
                          "\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
                          "\"trim_offsets\":true,\"use_regex\":true},\"post_processor\":{\"type\":\"ByteLevel\"},\"decoder\":"
                          "{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"dropout\":0.0,\"unk_token\":null,"
                          "\"continuing_subword_prefix\":\"\",\"end_of_word_suffix\":null,\"fuse_unk\":false,\"byte_fallback\":false,"
                          "\"ignore_merges\":false,\"vocab\":{\"<|endoftext|>\":0");
    for (b = 255; b >= 0; b--) {   /* ids 256..1 for bytes 0..255, every key as a \u escape */
        n += (size_t)snprintf(buf + n, sizeof buf - n, ",\"\\u%04X\":%d", u[b], 256 - b);
    }
    n += (size_t)snprintf(buf + n, sizeof buf - n,
                          ",\"\\u0120t\":257,\"he\":258,\"\\u0120the\":259,\"\xc4\xa0\xc3\xa9\":260},"
                          "\"merges\":[[\"\\u0120\",\"t\"],\"h e\",[\"\xc4\xa0t\",\"he\"]]}}\n");
    *len = n;
    return buf;
}
static void test_json_hf_layout(void) {
    size_t len, ni;
    char *js = hf_style_file(&len);
    mr_bpe *t = NULL;
    mr_error e;
    int32_t ids[32];
    const char *txt = "the theme<|endoftext|> the";
    if (mr_bpe_load_json_mem(&t, js, len, NULL, &e) != MR_OK) { MR_CHECK_MSG(0, "%s", e.msg); return; }
    MR_CHECK(mr_bpe_vocab_size(t) == 261 && mr_bpe_n_merges(t) == 3 && mr_bpe_byte_id(t, 'a') == 256 - 'a');
    MR_CHECK(mr_bpe_special_id(t, "<|endoftext|>") == 0 && mr_bpe_is_special(t, 0));
    MR_CHECK(mr_bpe_encode(t, (const uint8_t *)txt, strlen(txt), 1, ids, 32, &ni, &e) == MR_OK);
    /* "the" | " theme" -> " the" + "m" + "e" | <|endoftext|> | " the" */
    MR_CHECK_MSG(ni == 7 && ids[0] == mr_bpe_byte_id(t, 't') && ids[1] == 258 && ids[2] == 259 && ids[3] == mr_bpe_byte_id(t, 'm') &&
                 ids[4] == mr_bpe_byte_id(t, 'e') && ids[5] == 0 && ids[6] == 259, "got %zu ids", ni);
    MR_CHECK(roundtrip(t, (const uint8_t *)txt, strlen(txt), 1));
    mr_bpe_free(t);
}

/* Two merges that make the same token ("ab c" and "a bc" -> "abc"), as
   Hugging Face's trainer allows: loads, encodes by rank, saves back equal. */
static void test_json_shared_merge_result(void) {
    static char buf[1 << 14];
    unsigned u[256];
    size_t n = 0, ni;
    int b;
    mr_bpe *t = NULL, *t2 = NULL;
    mr_error e;
    int32_t ids[8];
    char *js = NULL;
    size_t jl = 0;
    gpt2_byte_map(u);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":false},\"model\":{\"vocab\":{");
    for (b = 0; b < 256; b++) n += (size_t)snprintf(buf + n, sizeof buf - n, "\"\\u%04x\":%d,", u[b], b);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\"bc\":256,\"ab\":257,\"abc\":258},\"merges\":[\"b c\",\"a b\",\"ab c\",\"a bc\"]}}");
    if (mr_bpe_load_json_mem(&t, buf, n, NULL, &e) != MR_OK) { MR_CHECK_MSG(0, "%s", e.msg); return; }
    MR_CHECK(mr_bpe_n_merges(t) == 4 && mr_bpe_vocab_size(t) == 259 && !mr_bpe_pretokenizes(t));
    MR_CHECK(mr_bpe_encode(t, (const uint8_t *)"abc", 3, 0, ids, 8, &ni, &e) == MR_OK && ni == 1 && ids[0] == 258);
    MR_CHECK(mr_bpe_encode(t, (const uint8_t *)"abab", 4, 0, ids, 8, &ni, &e) == MR_OK && ni == 2 && ids[0] == 257 && ids[1] == 257);
    MR_CHECK(mr_bpe_save_json_mem(t, &js, &jl, &e) == MR_OK && mr_bpe_load_json_mem(&t2, js, jl, NULL, &e) == MR_OK);
    MR_CHECK(t2 && same_tokenizer(t, t2));
    mr_bpe_free_buffer(t, js);
    mr_bpe_free(t2);
    mr_bpe_free(t);
}

static void expect_bad(const char *js, const char *want_in_msg) {
    mr_bpe *t = (mr_bpe *)&t;
    mr_error e;
    mr_status s;
    e.msg[0] = 0;
    s = mr_bpe_load_json_mem(&t, js, strlen(js), NULL, &e);
    MR_CHECK_MSG(s == MR_ERR_FORMAT && t == NULL && e.status == MR_ERR_FORMAT && e.msg[0], "accepted or wrong status: %s", js);
    if (s != MR_OK && want_in_msg) MR_CHECK_MSG(strstr(e.msg, want_in_msg) != NULL, "message '%s' lacks '%s'", e.msg, want_in_msg);
    if (s == MR_OK) mr_bpe_free(t);
}
/* Builds a small valid file with one substitution applied (old -> new). */
static void expect_bad_edit(const char *old, const char *new_, const char *want) {
    size_t len, lo = strlen(old), ln = strlen(new_);
    char *js = hf_style_file(&len), *p = strstr(js, old), *q;
    if (!p) { MR_CHECK_MSG(0, "edit '%s' not found", old); return; }
    q = (char *)malloc(len - lo + ln + 1);
    memcpy(q, js, (size_t)(p - js));
    memcpy(q + (p - js), new_, ln);
    memcpy(q + (p - js) + ln, p + lo, len - (size_t)(p - js) - lo + 1);
    expect_bad(q, want);
    free(q);
}
static void test_json_malformed(void) {
    char deep[400];
    int i;
    expect_bad("", "end of file");
    expect_bad("   ", "end of file");
    expect_bad("[]", "not an object");
    expect_bad("{\"model\": 3}", "pre_tokenizer");
    expect_bad("{} x", "trailing");
    expect_bad("{\"a\":1,}", "expected a key");
    expect_bad("{\"a\" 1}", "':'");
    expect_bad("{\"a\":tru}", "unexpected character");
    expect_bad("{\"a\":01}", "expected ','");
    expect_bad("{\"a\":-}", "bad number");
    expect_bad("{\"a\":1.}", "bad number");
    expect_bad("{\"a\":1e}", "bad number");
    expect_bad("{\"a\":\"\\x\"}", "bad escape");
    expect_bad("{\"a\":\"\\u12\"}", "\\u escape");
    expect_bad("{\"a\":\"\\udc00\"}", "surrogate");
    expect_bad("{\"a\":\"\\ud800x\"}", "surrogate");
    expect_bad("{\"a\":\"\\ud800\\u0041\"}", "surrogate");
    expect_bad("{\"a\":\"\xff\"}", "UTF-8");
    expect_bad("{\"a\":\"\xc0\xaf\"}", "UTF-8");
    expect_bad("{\"a\":\"\xed\xa0\x80\"}", "UTF-8");
    expect_bad("{\"a\":\"x\ny\"}", "control character");
    expect_bad("{\"a\":\"abc", "unterminated");
    for (i = 0; i < 300; i++) deep[i] = '[';
    deep[300] = 0;
    expect_bad(deep, "nested too deeply");
    /* semantic errors, as edits of a valid file */
    expect_bad_edit("\"type\":\"BPE\"", "\"type\":\"WordPiece\"", "BPE");
    expect_bad_edit("\"type\":\"ByteLevel\",\"add_prefix_space\":false", "\"type\":\"Whitespace\",\"add_prefix_space\":false", "ByteLevel");
    expect_bad_edit("\"add_prefix_space\":false", "\"add_prefix_space\":true", "add_prefix_space");
    expect_bad_edit("\"normalizer\":null", "\"normalizer\":{\"type\":\"NFC\"}", "normalizer");
    expect_bad_edit("\"dropout\":0.0", "\"dropout\":0.1", "dropout");
    /* post-processors that add tokens, bad added-token options, a missing byte token */
    expect_bad_edit("\"post_processor\":{\"type\":\"ByteLevel\"}", "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[]}",
                    "post-processor \"TemplateProcessing\" is not supported");
    expect_bad_edit("\"post_processor\":{\"type\":\"ByteLevel\"}",
                    "\"post_processor\":{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\"},{\"type\":\"BertProcessing\"}]}",
                    "\"BertProcessing\" is not supported");
    expect_bad_edit("\"post_processor\":{\"type\":\"ByteLevel\"}", "\"post_processor\":{\"type\":\"Sequence\"}", "no \"processors\"");
    expect_bad_edit("\"post_processor\":{\"type\":\"ByteLevel\"}", "\"post_processor\":7", "must be null or an object");
    expect_bad_edit("\"normalized\":true", "\"normalized\":1", "\"normalized\" must be true or false");
    expect_bad_edit("\"lstrip\":false", "\"lstrip\":null", "\"lstrip\" must be true or false");
    expect_bad_edit(",\"\\u0100\":256", ",\"\\u0101\\u0101\":256", "lacks the tokens of 1 of the 256 bytes (the first: byte 0x0)");
    expect_bad_edit("\"byte_fallback\":false", "\"byte_fallback\":true", "byte_fallback");
    expect_bad_edit("\"he\":258", "\"he\":\"258\"", "integer id");
    expect_bad_edit("\"he\":258", "\"he\":2580", "outside");
    expect_bad_edit("\"he\":258", "\"he\":-1", "outside");
    expect_bad_edit("\"he\":258", "\"he\":257", "two tokens");
    expect_bad_edit("\"he\":258", "\"\\u0120t\":258", "duplicate token");
    expect_bad_edit("\"he\":258", "\"h\\u4e00\":258", "byte-level");
    expect_bad_edit("\"he\":258", "\"\":258", "empty token");
    expect_bad_edit("\"h e\"", "\"h x\"", "not in the vocab");
    expect_bad_edit("\"h e\"", "\"h  e\"", "one space");
    expect_bad_edit("\"h e\"", "\"he\"", "one space");
    expect_bad_edit("\"h e\"", "\"e h\"", "merged token");
    expect_bad_edit("\"h e\"", "[\"h\",\"e\",\"x\"]", "neither");
    expect_bad_edit("\"h e\"", "7", "neither");
    expect_bad_edit("\"h e\"", "\"\\u0120 t\"", "repeats");
    expect_bad_edit("[\"\\u0120\",\"t\"]", "[\"<|endoftext|>\",\"t\"]", "added token");
    expect_bad_edit("\"merges\":[", "\"merges\":{\"a\":[", "");
    expect_bad_edit("\"vocab\":{", "\"vocab\":[{", "");
    expect_bad_edit("\"added_tokens\":[{\"id\":0,", "\"added_tokens\":[{\"id\":5,", "vocab gives it");
    expect_bad_edit("\"added_tokens\":[{\"id\":0,", "\"added_tokens\":[{\"id\":900,", "outside");
    expect_bad_edit("\"added_tokens\":[{\"id\":0,", "\"added_tokens\":[{", "integer \"id\"");
    expect_bad_edit("\"content\":\"<|endoftext|>\"", "\"content\":\"\"", "content");
    expect_bad_edit("\"added_tokens\":[{", "\"added_tokens\":[3,{", "not an object");
    expect_bad_edit("\"added_tokens\":[", "\"added_tokens\":{}, \"x\":[", "");
    expect_bad_edit(",\"\\u0120t\":257", ",\"\\u0120t\":257,\"\\u0120t\":261", "duplicate token");
    expect_bad_edit("\"model\":{", "\"model\":{\"vocab\":{},", "twice");
    expect_bad_edit("\"\\u0041\":", "\"\\u0041x\":", "lacks the tokens of 1 of the 256 bytes");
    expect_bad_edit("\"model\":{\"type\":\"BPE\"", "\"model\":{\"type\":\"BPE\",\"merges\":7", "");
}

static void test_json_truncation_and_mutation(void) {
    const char *text = "low lower lowest newer newest wider widest low low lower";
    static const char *const sp[1] = {"<|eos|>"};
    mr_bpe *t = train(text, strlen(text), 280, 2, 1, sp, 1), *u;
    char *js = NULL, *cp;
    size_t jl = 0, cut, end;
    int it, ok_loads = 0;
    mr_error e;
    if (!t) return;
    MR_CHECK(mr_bpe_save_json_mem(t, &js, &jl, &e) == MR_OK);
    end = jl;
    while (end && (js[end - 1] == '\n' || js[end - 1] == ' ')) end--;
    cp = (char *)malloc(jl + 1);
    for (cut = 0; cut < jl; cut++) {   /* every truncation (in its own exact-size buffer, for ASan) */
        char *b = (char *)malloc(cut + 1);
        mr_status s;
        memcpy(b, js, cut);
        u = NULL;
        s = mr_bpe_load_json_mem(&u, b, cut, NULL, &e);
        if (cut < end) MR_CHECK_MSG(s == MR_ERR_FORMAT && u == NULL && e.msg[0], "truncation at %zu accepted", cut);
        else MR_CHECK(s == MR_OK && same_tokenizer(t, u));
        mr_bpe_free(u);
        free(b);
    }
    for (it = 0; it < 3000; it++) {   /* random mutations: never crash; what loads must round-trip */
        int k, nm = 1 + (int)(rnd() % 3);
        memcpy(cp, js, jl);
        for (k = 0; k < nm; k++) {
            size_t at = rnd() % jl;
            switch (rnd() % 4) {
            case 0: cp[at] = (char)rnd(); break;
            case 1: cp[at] = "{}[]\",:0123456789 -\\u"[rnd() % 22]; break;
            case 2: cp[at] = ' '; break;
            default: memmove(cp + at, cp + at + 1, jl - at - 1); cp[jl - 1] = ' '; break;
            }
        }
        u = NULL;
        if (mr_bpe_load_json_mem(&u, cp, jl, NULL, &e) == MR_OK) {
            const uint8_t probe[] = "lowest \xff\x00 newer<|eos|> widest";
            ok_loads++;
            MR_CHECK(roundtrip(u, probe, sizeof probe - 1, 1));
            MR_CHECK(roundtrip(u, probe, sizeof probe - 1, 0));
        } else {
            MR_CHECK(e.msg[0] != 0);
        }
        mr_bpe_free(u);
    }
    printf("  (%d of 3000 mutated files still loaded)\n", ok_loads);
    free(cp);
    mr_bpe_free_buffer(t, js);
    mr_bpe_free(t);
}

/* ---- allocation failures ---- */
typedef struct { long budget, live; } fail_alloc;
static void *fa_alloc(size_t n, void *ud) {
    fail_alloc *f = (fail_alloc *)ud;
    void *p;
    if (f->budget-- <= 0) return NULL;
    p = malloc(n);
    if (p) f->live++;
    return p;
}
static void *fa_realloc(void *p, size_t o, size_t n, void *ud) {
    fail_alloc *f = (fail_alloc *)ud;
    void *q;
    (void)o;
    if (f->budget-- <= 0) return NULL;
    q = realloc(p, n);
    if (q && !p) f->live++;
    return q;
}
static void fa_free(void *p, void *ud) { if (p) ((fail_alloc *)ud)->live--; free(p); }

static void test_alloc_failures(void) {
    const char *text = "the quick brown fox jumps over the lazy dog; the dog sleeps. <|eos|> the end";
    static const char *const sp[1] = {"<|eos|>"};
    mr_bpe_train_opts o = mr_bpe_train_defaults();
    fail_alloc f;
    mr_allocator al;
    mr_bpe *t, *ref;
    char *js;
    size_t jl;
    long budget;
    int successes = 0;
    mr_error e;
    al.alloc = fa_alloc; al.realloc = fa_realloc; al.free = fa_free; al.ud = &f;
    o.vocab_size = 300; o.min_frequency = 1; o.special_tokens = sp; o.n_special = 1;
    ref = train(text, strlen(text), 300, 1, 1, sp, 1);
    if (!ref) return;
    MR_CHECK(mr_bpe_save_json_mem(ref, &js, &jl, &e) == MR_OK);
    for (budget = 0; budget < 400; budget++) {
        mr_status s;
        f.budget = budget; f.live = 0;
        t = NULL;
        s = mr_bpe_train(&t, (const uint8_t *)text, strlen(text), &o, &al, &e);
        MR_CHECK(s == MR_OK || (s == MR_ERR_NOMEM && t == NULL));
        if (s == MR_OK) {
            int32_t ids[128];
            size_t ni;
            MR_CHECK(same_tokenizer(t, ref));
            s = mr_bpe_encode(t, (const uint8_t *)text, strlen(text), 1, ids, 128, &ni, &e);
            MR_CHECK(s == MR_OK || s == MR_ERR_NOMEM);
            successes++;
        }
        mr_bpe_free(t);
        MR_CHECK_MSG(f.live == 0, "train budget %ld: %ld blocks leaked", budget, f.live);
        f.budget = budget; f.live = 0;
        t = NULL;
        s = mr_bpe_load_json_mem(&t, js, jl, &al, &e);
        MR_CHECK(s == MR_OK || (s == MR_ERR_NOMEM && t == NULL));
        if (s == MR_OK) MR_CHECK(same_tokenizer(t, ref));
        mr_bpe_free(t);
        MR_CHECK_MSG(f.live == 0, "load budget %ld: %ld blocks leaked", budget, f.live);
    }
    MR_CHECK(successes > 0);
    mr_bpe_free_buffer(ref, js);
    mr_bpe_free(ref);
}

/* ---- Hugging Face's ids (tests/fixtures/hf, written by tools/hf_fixtures.js with the
   npm package tokenizers): every input of inputs.hex encodes to the same ids. The
   directory is MR_BPE_HF_DIR when set (the 100,000-string fuzz comparison). ---- */
static int hex_val(int c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }
static size_t hf_compare(const char *dir, const char *name, const char *inputs, size_t *n_cases) {
    char path[1024], sn[300];
    uint8_t *js = NULL, *ids = NULL;
    size_t jn = 0, idn = 0, bad = 0, cap = 1 << 16, n_ids = 0;
    int32_t *got = (int32_t *)malloc(sizeof(int32_t) * cap);
    uint8_t *buf = (uint8_t *)malloc(cap);
    const char *p = inputs, *q;
    mr_bpe *t = NULL;
    mr_error e;
    *n_cases = 0;
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    MR_CHECK_MSG(mr_read_file(path, &js, &jn, (size_t)1 << 28, NULL, &e) == MR_OK, "%s", path);
    snprintf(path, sizeof path, "%s/%s.ids", dir, name);
    MR_CHECK_MSG(mr_read_file(path, &ids, &idn, (size_t)1 << 30, NULL, &e) == MR_OK, "%s", path);
    if (js && ids && got && buf && mr_bpe_load_json_mem(&t, (const char *)js, jn, NULL, &e) != MR_OK) MR_CHECK_MSG(0, "%s: %s", name, e.msg);
    for (q = (const char *)ids; t && *p && *q; (*n_cases)++) {
        size_t n = 0, k = 0, i;
        int same = 1;
        while (*p && *p != '\n' && n < cap) { buf[n++] = (uint8_t)(hex_val(p[0]) << 4 | hex_val(p[1])); p += 2; }
        if (*p == '\n') p++;
        if (mr_bpe_encode(t, buf, n, 1, got, cap, &n_ids, &e) != MR_OK) same = 0;
        while (*q && *q != '\n') {   /* compare with the line of ids */
            char *end;
            long v = strtol(q, &end, 10);
            if (end == q) break;
            if (k >= n_ids || got[k] != v) same = 0;
            k++;
            q = end;
            while (*q == ' ') q++;
        }
        if (*q == '\n') q++;
        if (k != n_ids) same = 0;
        if (!same && bad++ < 5) {
            size_t m = 0;
            for (i = 0; i < n && m + 5 < sizeof sn; i++) m += (size_t)snprintf(sn + m, sizeof sn - m, buf[i] >= 0x20 && buf[i] < 0x7f ? "%c" : "\\x%02x", buf[i]);
            MR_CHECK_MSG(0, "%s: input %zu \"%s\": %zu ids here, %zu there", name, *n_cases, sn, n_ids, k);
        }
    }
    mr_bpe_free(t);
    mr_buffer_free(js); mr_buffer_free(ids);
    free(got); free(buf);
    return bad;
}
static void test_hf_fixtures(void) {
    static const char *const names[] = {"v300", "v1000", "v4096", "v1000_nopre", "v1000_special", "v1000_hforder", "v1000_options", "gpt2_8k", "gpt2"};
    const char *dir = getenv("MR_BPE_HF_DIR") ? getenv("MR_BPE_HF_DIR") : "tests/fixtures/hf";
    char path[1024];
    uint8_t *inputs = NULL;
    size_t n_in = 0, i, total = 0, cases = 0;
    mr_error e;
    snprintf(path, sizeof path, "%s/inputs.hex", dir);
    if (mr_read_file(path, &inputs, &n_in, (size_t)1 << 30, NULL, &e) != MR_OK) MR_SKIP("no tests/fixtures/hf/inputs.hex");
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        FILE *f;
        size_t bad;
        snprintf(path, sizeof path, "%s/%s.ids", dir, names[i]);
        if (!(f = fopen(path, "rb"))) continue;
        fclose(f);
        bad = hf_compare(dir, names[i], (const char *)inputs, &cases);
        MR_CHECK_MSG(bad == 0 && cases > 0, "%s: %zu of %zu inputs differ from Hugging Face's ids", names[i], bad, cases);
        if (getenv("MR_TEST_VERBOSE")) printf("  %s: %zu inputs, %zu differ\n", names[i], cases, bad);
        total++;
    }
    MR_CHECK(total >= 8 || getenv("MR_BPE_HF_DIR"));
    mr_buffer_free(inputs);
}

/* streaming decode: the pieces never end inside a character (valid input gives valid pieces), and together equal mr_bpe_decode */
static void test_stream_decode(void) {
    uint8_t *js = NULL, text[600], whole[4096], joined[4096], piece[4096 + 8];
    size_t jn = 0, n_ids, nw, nj, np, i, r;
    int32_t ids[700];
    mr_bpe *t = NULL;
    mr_bpe_stream s;
    mr_error e;
    static const char *const words[] = {"caf\xc3\xa9", "\xe4\xbd\xa0\xe5\xa5\xbd", "\xf0\x9f\x98\x80", "x\xc2\xb2", " ", "the", "\xe2\x80\x94", "\xd0\xbc\xd0\xb8\xd1\x80"};
    if (mr_read_file("tests/fixtures/hf/v300.json", &js, &jn, (size_t)1 << 24, NULL, &e) != MR_OK) MR_SKIP("no tests/fixtures/hf/v300.json");
    MR_CHECK(mr_bpe_load_json_mem(&t, (const char *)js, jn, NULL, &e) == MR_OK);
    mr_buffer_free(js);
    if (!t) return;
    for (r = 0; r < 400; r++) {
        size_t n = 0;
        int valid = r % 4 != 3;
        while (n < 500) {   /* valid UTF-8 text, or (every fourth) with stray bytes */
            const char *w = words[rnd() % 8];
            memcpy(text + n, w, strlen(w)); n += strlen(w);
            if (!valid && rnd() % 3 == 0) text[n++] = (uint8_t)(0x80 + rnd() % 0x80);
        }
        MR_CHECK(mr_bpe_encode(t, text, n, 0, ids, 700, &n_ids, &e) == MR_OK);
        MR_CHECK(mr_bpe_decode(t, ids, n_ids, whole, sizeof whole, &nw, &e) == MR_OK && nw == n);
        mr_bpe_stream_init(&s);
        nj = 0;
        for (i = 0; i < n_ids; i++) {
            const uint8_t *tb;
            size_t tl = mr_bpe_token_bytes(t, ids[i], &tb);
            if (i == 0) {   /* too small a buffer: refused, the stream unchanged */
                mr_bpe_stream s2 = s;
                MR_CHECK(mr_bpe_stream_push(t, &s2, ids[i], piece, tl ? tl - 1 : 0, &np, &e) == MR_ERR_RANGE && np >= tl);
                MR_CHECK(memcmp(&s2, &s, sizeof s) == 0);
            }
            MR_CHECK(mr_bpe_stream_push(t, &s, ids[i], piece, tl + 3, &np, &e) == MR_OK);
            if (valid) MR_CHECK_MSG(mr__utf8_valid(piece, np), "round %zu, token %zu: a piece ends inside a character", r, i);
            memcpy(joined + nj, piece, np); nj += np;
        }
        nj += mr_bpe_stream_flush(&s, joined + nj);
        MR_CHECK_MSG(nj == nw && memcmp(joined, whole, nw) == 0, "round %zu: streamed %zu bytes, decoded %zu", r, nj, nw);
    }
    MR_CHECK(mr_bpe_stream_push(t, &s, -1, piece, 8, &np, &e) == MR_ERR_RANGE);
    mr_bpe_free(t);
}

MR_TEST_MAIN({"bpe_hf_fixtures", test_hf_fixtures}, {"bpe_stream_decode", test_stream_decode}, {"bpe_pretokenize", test_pretokenize}, {"bpe_train_textbook", test_train_textbook},
             {"bpe_train_bad_args", test_train_bad_args},
             {"bpe_train_vs_reference_random", test_train_matches_reference_random},
             {"bpe_train_vs_reference_text", test_train_matches_reference_text},
             {"bpe_encode_vs_reference", test_encode_matches_reference}, {"bpe_roundtrip_fuzz", test_roundtrip_fuzz},
             {"bpe_encode_decode_buffers", test_encode_decode_buffers}, {"bpe_special_tokens", test_special_tokens},
             {"bpe_json_roundtrip", test_json_roundtrip}, {"bpe_json_hf_layout", test_json_hf_layout},
             {"bpe_json_shared_merge_result", test_json_shared_merge_result},
             {"bpe_json_malformed", test_json_malformed},
             {"bpe_json_truncation_and_mutation", test_json_truncation_and_mutation},
             {"bpe_alloc_failures", test_alloc_failures})
