/* ------------------------------------------------------------------------ */
/* tokenizer: byte-level BPE                                                */
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
#define MR__BPE_CACHE_MAX_LEN 64           /* longer chunks are not cached */
#define MR__BPE_CACHE_DEFAULT 65536
#define MR__BPE_EMPTY64 (~(uint64_t)0)
#define MR__BPE_JSON_MAX_DEPTH 64

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

/* Grows an array to hold at least need elements (doubling); returns the new
   pointer, or NULL (old block kept) on overflow / no memory. */
MR__PRIV void *mr__bpe_grow(const mr_allocator *a, void *p, size_t *cap, size_t need, size_t elem) {
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
#define MR__BPE_GROW(a, T, ptr, cap, need, fail) do { \
        T *mr__g = (T *)mr__bpe_grow((a), (ptr), &(cap), (need), sizeof(T)); \
        if (!mr__g) { fail; } (ptr) = mr__g; } while (0)

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
MR__PRIV size_t mr__bpe_utf8_len(const uint8_t *s, size_t n) {
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
MR__PRIV int mr__bpe_utf8_valid(const uint8_t *s, size_t n) {
    while (n) {
        size_t k = mr__bpe_utf8_len(s, n);
        if (!k) return 0;
        s += k; n -= k;
    }
    return 1;
}
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
/* 1 letter (ASCII letters and every byte >= 0x80), 2 digit, 3 whitespace, 4 other */
static const uint8_t mr__bpe_cls[256] = {
    4,4,4,4,4,4,4,4,4,3,3,3,3,3,4,4, 4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
    3,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4, 2,2,2,2,2,2,2,2,2,2,4,4,4,4,4,4,
    4,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,4,4,4,4,4,
    4,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,4,4,4,4,4,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1
};

MRDEF size_t mr_bpe_chunk_len(const uint8_t *s, size_t n) {
    size_t i;
    int c;
    if (!s || n == 0) return 0;
    if (s[0] == '\'' && n >= 2) {
        uint8_t d = s[1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd') return 2;
        if (n >= 3 && ((d == 'r' && s[2] == 'e') || (d == 'v' && s[2] == 'e') || (d == 'l' && s[2] == 'l'))) return 3;
    }
    i = (s[0] == ' ' && n >= 2 && mr__bpe_cls[s[1]] != 3) ? 1 : 0;
    c = mr__bpe_cls[s[i]];
    if (c != 3) {
        i++;
        while (i < n && mr__bpe_cls[s[i]] == c) i++;
        return i;
    }
    /* whitespace: the run, minus its last character when a non-space follows */
    i = 1;
    while (i < n && mr__bpe_cls[s[i]] == 3) i++;
    if (i == n) return n;
    return i >= 2 ? i - 1 : 1;
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
    mr__free(a, t->sp_pool); mr__free(a, t->sp_off); mr__free(a, t->sp_len); mr__free(a, t->sp_id);
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
        MR__BPE_GROW(a, uint32_t, t->tok_off, cap, (size_t)t->n_tokens + 1, return -1);
        cap = t->tok_cap;
        MR__BPE_GROW(a, uint32_t, t->tok_len, cap, (size_t)t->n_tokens + 1, return -1);
        cap = t->tok_cap;
        MR__BPE_GROW(a, uint8_t, t->is_special, cap, (size_t)t->n_tokens + 1, return -1);
        t->tok_cap = cap;
    }
    MR__BPE_GROW(a, uint8_t, t->pool, t->pool_cap, need, return -1);
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
        MR__BPE_GROW(a, int32_t, t->m_left, cap, (size_t)t->n_merges + 1, return 0);
        cap = t->m_cap;
        MR__BPE_GROW(a, int32_t, t->m_right, cap, (size_t)t->n_merges + 1, return 0);
        cap = t->m_cap;
        MR__BPE_GROW(a, int32_t, t->m_res, cap, (size_t)t->n_merges + 1, return 0);
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
    if (!t->sp_pool || !t->sp_off || !t->sp_len || !t->sp_id) return 0;
    memset(t->sp_first, 0, sizeof t->sp_first);
    for (i = 0; i < n; i++) {
        memcpy(t->sp_pool + o, s[i], len[i]);
        t->sp_off[i] = (uint32_t)o;
        t->sp_len[i] = (uint32_t)len[i];
        t->sp_id[i] = -1;
        t->sp_first[s[i][0]] = 1;
        o += len[i];
    }
    t->n_special = n;
    return 1;
}
/* Longest special token starting at s (index into the specials), or -1. */
MR__PRIV int mr__bpe_match_special(const mr_bpe *t, const uint8_t *s, size_t n) {
    int k, best = -1;
    size_t bl = 0;
    if (!t->sp_first[s[0]]) return -1;
    for (k = 0; k < t->n_special; k++) {
        size_t l = t->sp_len[k];
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
    MR__BPE_GROW(a, int32_t, w->sym, c, n, return 0);
    c = w->cap;
    MR__BPE_GROW(a, int32_t, w->nxt, c, n, return 0);
    c = w->cap;
    MR__BPE_GROW(a, int32_t, w->prv, c, n, return 0);
    w->cap = c;
    c = w->hcap;
    MR__BPE_GROW(a, uint64_t, w->heap, c, 2 * n, return 0);
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
    MR__BPE_GROW(a, uint8_t, t->c_keys, t->c_keys_cap, t->c_keys_n + L, return);
    MR__BPE_GROW(a, int32_t, t->c_ids, t->c_ids_cap, t->c_ids_n + n, return);
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
MR__PRIV mr_status mr__bpe_encode_out(mr_bpe *t, const uint8_t *text, size_t n, int allow_special, mr__bpe_out *o,
                                      mr_error *err) {
    mr__bpe_work w;
    mr_status st = MR_OK;
    memset(&w, 0, sizeof w);
    if (!t || (!text && n)) return mr__seterr(err, MR_ERR_ARG, "bpe: NULL tokenizer or text");
    if (allow_special && t->n_special) {
        size_t i = 0, start = 0;
        while (i < n && st == MR_OK) {
            int k = mr__bpe_match_special(t, text + i, n - i);
            if (k < 0) { i++; continue; }
            st = mr__bpe_encode_segment(t, text + start, i - start, &w, o, err);
            if (o->n < o->cap) o->ids[o->n] = t->sp_id[k];
            o->n++;
            i += t->sp_len[k];
            start = i;
        }
        if (st == MR_OK) st = mr__bpe_encode_segment(t, text + start, n - start, &w, o, err);
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
    MR__BPE_GROW(tr->a, mr__bpe_hent, tr->heap, tr->heap_cap, tr->nheap + 1, return 0);
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
        MR__BPE_GROW(tr->a, mr__bpe_pair, tr->pairs, tr->pairs_cap, tr->npairs + 1, return 0);
        idx = (int32_t)tr->npairs;
        if (!mr__bpe_u64_put(tr->a, &tr->pmap, key, idx)) return 0;
        tr->npairs++;
        p = &tr->pairs[idx];
        p->count = 0; p->l = l; p->r = r; p->head = -1; p->rank = -1; p->dirty = 0; p->pad_ = 0;
    }
    p = &tr->pairs[idx];
    p->count += delta;
    if (!p->dirty) {
        MR__BPE_GROW(tr->a, int32_t, tr->dirty, tr->dirty_cap, tr->ndirty + 1, return 0);
        tr->dirty[tr->ndirty++] = idx;
        p->dirty = 1;
    }
    if (pos >= 0) {
        if (tr->nocc >= INT32_MAX) return 0;
        MR__BPE_GROW(tr->a, mr__bpe_occ, tr->occ, tr->occ_cap, tr->nocc + 1, return 0);
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
        MR__BPE_GROW(a, uint32_t, c->off, cap, c->n + 1, return 0);
        cap = c->cap;
        MR__BPE_GROW(a, uint32_t, c->len, cap, c->n + 1, return 0);
        cap = c->cap;
        MR__BPE_GROW(a, int64_t, c->cnt, cap, c->n + 1, return 0);
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
                int k = mr__bpe_match_special(t, text + i, n - i);
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
    MR__BPE_GROW(a, mr__bpe_hent, tr->heap, tr->heap_cap, tr->npairs + 1, MR__BPE_OOM);
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
        MR__BPE_GROW(a, uint8_t, tr->cat, tr->cat_cap, la + lb, MR__BPE_OOM);
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
            MR__BPE_GROW(a, int32_t, tr->tmp, tr->tmp_cap, nt + 1, MR__BPE_OOM);
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
        if (!mr__bpe_utf8_valid((const uint8_t *)s, L))
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

/* ---- tokenizer.json: writing ---- */
typedef struct mr__bpe_sb { char *p; size_t n, cap; const mr_allocator *a; int oom; } mr__bpe_sb;

MR__PRIV void mr__bpe_sb_put(mr__bpe_sb *b, const char *s, size_t n) {
    size_t need;
    if (b->oom) return;
    if (!mr__add_ok(b->n, n, &need)) { b->oom = 1; return; }
    if (need > b->cap) {
        char *q = (char *)mr__bpe_grow(b->a, b->p, &b->cap, need, 1);
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
        mr__bpe_sb_str(&b, ",\n      \"single_word\": false,\n      \"lstrip\": false,\n      \"rstrip\": false,\n"
                           "      \"normalized\": false,\n      \"special\": true\n    }");
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

/* ---- tokenizer.json: reading (untrusted input) ---- */
/* A small DOM: nodes in one array (children linked by index), decoded
   strings in one pool. Recursion is limited to MR__BPE_JSON_MAX_DEPTH. */
enum { MR__J_NULL, MR__J_FALSE, MR__J_TRUE, MR__J_NUM, MR__J_STR, MR__J_ARR, MR__J_OBJ };
typedef struct mr__bpe_jn {
    uint8_t type, is_int, nonzero;
    int32_t next, child, nchild;
    uint32_t koff, klen;   /* key, for object members */
    uint32_t soff, slen;   /* string value */
    int64_t ival;
    uint32_t pos;          /* offset in the source */
} mr__bpe_jn;
typedef struct mr__bpe_jp {
    const uint8_t *s;
    size_t n, i;
    mr__bpe_jn *nodes;
    size_t nn, ncap;
    uint8_t *str;
    size_t ns, scap;
    const mr_allocator *a;
    mr_error *err;
    mr_status st;
} mr__bpe_jp;

MR__PRIV int32_t mr__bpe_jfail(mr__bpe_jp *p, mr_status s, const char *what) {
    if (p->st == MR_OK) {
        p->st = s;
        if (s == MR_ERR_NOMEM) mr__seterr(p->err, s, "tokenizer.json: out of memory");
        else mr__seterr(p->err, s, "tokenizer.json: %s at byte %zu", what, p->i);
    }
    return -1;
}
MR__PRIV void mr__bpe_jws(mr__bpe_jp *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')) p->i++;
}
MR__PRIV int32_t mr__bpe_jnew(mr__bpe_jp *p, int type) {
    mr__bpe_jn *nd;
    if (p->nn >= INT32_MAX) return mr__bpe_jfail(p, MR_ERR_FORMAT, "too many values");
    MR__BPE_GROW(p->a, mr__bpe_jn, p->nodes, p->ncap, p->nn + 1, return mr__bpe_jfail(p, MR_ERR_NOMEM, ""));
    nd = &p->nodes[p->nn];
    memset(nd, 0, sizeof *nd);
    nd->type = (uint8_t)type;
    nd->next = nd->child = -1;
    nd->pos = (uint32_t)p->i;
    return (int32_t)p->nn++;
}
MR__PRIV int mr__bpe_jputs(mr__bpe_jp *p, const uint8_t *b, size_t n) {
    MR__BPE_GROW(p->a, uint8_t, p->str, p->scap, p->ns + n, mr__bpe_jfail(p, MR_ERR_NOMEM, ""); return 0);
    memcpy(p->str + p->ns, b, n);
    p->ns += n;
    return 1;
}
MR__PRIV int mr__bpe_jhex4(mr__bpe_jp *p, uint32_t *v) {
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
MR__PRIV int mr__bpe_jstring(mr__bpe_jp *p, uint32_t *off, uint32_t *len) {
    size_t start = p->ns;
    p->i++;
    for (;;) {
        uint8_t c;
        if (p->i >= p->n) { mr__bpe_jfail(p, MR_ERR_FORMAT, "unterminated string"); return 0; }
        c = p->s[p->i];
        if (c == '"') { p->i++; break; }
        if (c < 0x20) { mr__bpe_jfail(p, MR_ERR_FORMAT, "control character in a string"); return 0; }
        if (c == '\\') {
            uint8_t e, u8[4];
            uint32_t cp;
            size_t k = 0;
            if (++p->i >= p->n) { mr__bpe_jfail(p, MR_ERR_FORMAT, "unterminated string"); return 0; }
            e = p->s[p->i++];
            switch (e) {
            case '"': case '\\': case '/': u8[k++] = e; break;
            case 'b': u8[k++] = 8; break;
            case 'f': u8[k++] = 12; break;
            case 'n': u8[k++] = 10; break;
            case 'r': u8[k++] = 13; break;
            case 't': u8[k++] = 9; break;
            case 'u':
                if (!mr__bpe_jhex4(p, &cp)) { mr__bpe_jfail(p, MR_ERR_FORMAT, "bad \\u escape"); return 0; }
                if (cp >= 0xDC00 && cp <= 0xDFFF) { mr__bpe_jfail(p, MR_ERR_FORMAT, "lone low surrogate in \\u escape"); return 0; }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
                        mr__bpe_jfail(p, MR_ERR_FORMAT, "high surrogate without a low surrogate");
                        return 0;
                    }
                    p->i += 2;
                    if (!mr__bpe_jhex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                        mr__bpe_jfail(p, MR_ERR_FORMAT, "high surrogate without a low surrogate");
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
            default: p->i--; mr__bpe_jfail(p, MR_ERR_FORMAT, "bad escape in a string"); return 0;
            }
            if (!mr__bpe_jputs(p, u8, k)) return 0;
        } else {
            size_t k = mr__bpe_utf8_len(p->s + p->i, p->n - p->i);
            if (!k) { mr__bpe_jfail(p, MR_ERR_FORMAT, "invalid UTF-8 in a string"); return 0; }
            if (!mr__bpe_jputs(p, p->s + p->i, k)) return 0;
            p->i += k;
        }
    }
    *off = (uint32_t)start;
    *len = (uint32_t)(p->ns - start);
    return 1;
}
MR__PRIV int32_t mr__bpe_jvalue(mr__bpe_jp *p, int depth) {
    int32_t v, last = -1;
    uint8_t c;
    mr__bpe_jws(p);
    if (p->i >= p->n) return mr__bpe_jfail(p, MR_ERR_FORMAT, "unexpected end of file");
    if (depth > MR__BPE_JSON_MAX_DEPTH) return mr__bpe_jfail(p, MR_ERR_FORMAT, "values nested too deeply");
    c = p->s[p->i];
    if (c == '{' || c == '[') {
        int obj = c == '{';
        v = mr__bpe_jnew(p, obj ? MR__J_OBJ : MR__J_ARR);
        if (v < 0) return -1;
        p->i++;
        mr__bpe_jws(p);
        if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) { p->i++; return v; }
        for (;;) {
            uint32_t ko = 0, kl = 0;
            int32_t e;
            if (obj) {
                mr__bpe_jws(p);
                if (p->i >= p->n || p->s[p->i] != '"') return mr__bpe_jfail(p, MR_ERR_FORMAT, p->i >= p->n ? "unexpected end of file" : "expected a key");
                if (!mr__bpe_jstring(p, &ko, &kl)) return -1;
                mr__bpe_jws(p);
                if (p->i >= p->n || p->s[p->i] != ':') return mr__bpe_jfail(p, MR_ERR_FORMAT, p->i >= p->n ? "unexpected end of file" : "expected ':'");
                p->i++;
            }
            e = mr__bpe_jvalue(p, depth + 1);
            if (e < 0) return -1;
            p->nodes[e].koff = ko;
            p->nodes[e].klen = kl;
            if (last < 0) p->nodes[v].child = e; else p->nodes[last].next = e;
            last = e;
            p->nodes[v].nchild++;
            mr__bpe_jws(p);
            if (p->i >= p->n) return mr__bpe_jfail(p, MR_ERR_FORMAT, "unexpected end of file");
            c = p->s[p->i++];
            if (c == ',') continue;
            if (c == (obj ? '}' : ']')) return v;
            p->i--;
            return mr__bpe_jfail(p, MR_ERR_FORMAT, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    if (c == '"') {
        uint32_t so, sl;
        v = mr__bpe_jnew(p, MR__J_STR);
        if (v < 0 || !mr__bpe_jstring(p, &so, &sl)) return -1;
        p->nodes[v].soff = so;
        p->nodes[v].slen = sl;
        return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        int neg = c == '-', digits = 0, is_int = 1, nonzero = 0;
        uint64_t val = 0;
        v = mr__bpe_jnew(p, MR__J_NUM);
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
        if (!digits) return mr__bpe_jfail(p, MR_ERR_FORMAT, "bad number");
        if (p->i < p->n && p->s[p->i] == '.') {
            p->i++;
            digits = 0;
            while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') { if (p->s[p->i] != '0') nonzero = 1; p->i++; digits++; }
            if (!digits) return mr__bpe_jfail(p, MR_ERR_FORMAT, "bad number");
            is_int = 0;
        }
        if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
            p->i++;
            if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) p->i++;
            digits = 0;
            while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') { p->i++; digits++; }
            if (!digits) return mr__bpe_jfail(p, MR_ERR_FORMAT, "bad number");
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
                v = mr__bpe_jnew(p, k == 0 ? MR__J_NULL : k == 1 ? MR__J_FALSE : MR__J_TRUE);
                p->i += L;
                return v;
            }
        }
    }
    return mr__bpe_jfail(p, MR_ERR_FORMAT, "unexpected character");
}

/* Member of an object: -1 absent, -2 duplicated (error set). */
MR__PRIV int32_t mr__bpe_jget(mr__bpe_jp *p, int32_t obj, const char *key, const char *where) {
    size_t L = strlen(key);
    int32_t c, found = -1;
    for (c = p->nodes[obj].child; c >= 0; c = p->nodes[c].next)
        if (p->nodes[c].klen == L && memcmp(p->str + p->nodes[c].koff, key, L) == 0) {
            if (found >= 0) {
                mr__seterr(p->err, MR_ERR_FORMAT, "tokenizer.json: key \"%s\" appears twice in %s", key, where);
                return -2;
            }
            found = c;
        }
    return found;
}
MR__PRIV int mr__bpe_jstr_is(const mr__bpe_jp *p, int32_t v, const char *s) {
    size_t L = strlen(s);
    return v >= 0 && p->nodes[v].type == MR__J_STR && p->nodes[v].slen == L && memcmp(p->str + p->nodes[v].soff, s, L) == 0;
}
/* Printable excerpt of a token for messages. */
MR__PRIV const char *mr__bpe_snip(char out[48], const uint8_t *s, size_t n) {
    size_t i, k = 0;
    for (i = 0; i < n && k < 40; i++) out[k++] = (char)(s[i] < 0x20 || s[i] == 0x7F ? '?' : s[i]);
    if (i < n) { out[k++] = '.'; out[k++] = '.'; out[k++] = '.'; }
    out[k] = 0;
    return out;
}

MR__PRIV mr_status mr__bpe_from_json(mr__bpe_jp *p, int32_t root, mr_bpe *t, mr_error *err) {
    const mr_allocator *a = mr__bpe_al(t);
    mr__bpe_jn *nd;
    int32_t model, vocab, merges, added, pre, x, v;
    mr__bpe_smap keys, adds;
    uint32_t *koff = NULL, *klen = NULL, *aoff = NULL, *alen = NULL;
    int32_t *kid = NULL, *aid = NULL, *id_src = NULL, *akey = NULL;
    uint8_t *tmp = NULL;
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
#define MR__BPE_GET(dst, obj, key, where) do { (dst) = mr__bpe_jget(p, (obj), (key), (where)); \
        if ((dst) == -2) { st = MR_ERR_FORMAT; goto done; } } while (0)
    nd = p->nodes;
    if (nd[root].type != MR__J_OBJ) MR__BPE_BAD("tokenizer.json: the top level is not an object");
    MR__BPE_GET(x, root, "normalizer", "the top level");
    if (x >= 0 && nd[x].type != MR__J_NULL) MR__BPE_BAD("tokenizer.json: normalizers are not supported (\"normalizer\" must be null)");
    MR__BPE_GET(pre, root, "pre_tokenizer", "the top level");
    if (pre < 0 || nd[pre].type != MR__J_OBJ) MR__BPE_BAD("tokenizer.json: \"pre_tokenizer\" must be a ByteLevel object");
    MR__BPE_GET(x, pre, "type", "pre_tokenizer");
    if (!mr__bpe_jstr_is(p, x, "ByteLevel")) MR__BPE_BAD("tokenizer.json: only the ByteLevel pre-tokenizer is supported");
    MR__BPE_GET(x, pre, "add_prefix_space", "pre_tokenizer");
    if (x >= 0 && nd[x].type != MR__J_FALSE) MR__BPE_BAD("tokenizer.json: \"add_prefix_space\" must be false");
    MR__BPE_GET(x, pre, "use_regex", "pre_tokenizer");
    if (x >= 0 && nd[x].type != MR__J_FALSE && nd[x].type != MR__J_TRUE) MR__BPE_BAD("tokenizer.json: \"use_regex\" must be a boolean");
    t->pretokenize = x < 0 || nd[x].type == MR__J_TRUE;
    MR__BPE_GET(model, root, "model", "the top level");
    if (model < 0 || nd[model].type != MR__J_OBJ) MR__BPE_BAD("tokenizer.json: \"model\" is missing or not an object");
    MR__BPE_GET(x, model, "type", "model");
    if (x >= 0 && !mr__bpe_jstr_is(p, x, "BPE")) MR__BPE_BAD("tokenizer.json: the model type is not \"BPE\"");
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
    if (!aoff || !alen || !aid || !akey || !mr__bpe_smap_init(a, &adds, (size_t)na)) MR__BPE_NOMEM;
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
            MR__BPE_GROW(a, uint8_t, tmp, tmp_cap, (size_t)klen[s] + 1, MR__BPE_NOMEM);
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
    for (i = 0; i < 256; i++)
        if (t->byte_id[i] < 0) MR__BPE_BAD("tokenizer.json: the vocab lacks the token of byte 0x%x", (unsigned)i);
    /* special tokens */
    {
        const uint8_t **sp = (const uint8_t **)mr__alloc(a, (size_t)(na + 1) * sizeof(*sp));
        size_t *sl = (size_t *)mr__alloc(a, (size_t)(na + 1) * sizeof(*sl));
        int ok = sp && sl;
        for (i = 0; ok && i < na; i++) { sp[i] = p->str + aoff[i]; sl[i] = alen[i]; }
        ok = ok && mr__bpe_set_specials(t, sp, sl, (int)na);
        mr__free(a, (void *)sp); mr__free(a, sl);
        if (!ok) MR__BPE_NOMEM;
        for (i = 0; i < na; i++) t->sp_id[i] = aid[i];
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
        MR__BPE_GROW(a, uint8_t, tmp, tmp_cap, pl[0] + pl[1] + 1, MR__BPE_NOMEM);
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
    mr__free(a, akey); mr__free(a, id_src); mr__free(a, tmp);
    return st;
}

MRDEF mr_status mr_bpe_load_json_mem(mr_bpe **out, const char *json, size_t len, const mr_allocator *alloc,
                                     mr_error *err) {
    mr__bpe_jp p;
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
    root = mr__bpe_jvalue(&p, 0);
    if (root >= 0) {
        mr__bpe_jws(&p);
        if (p.i != p.n) root = mr__bpe_jfail(&p, MR_ERR_FORMAT, "trailing characters after the value");
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
    char *buf, *tmp;
    size_t len, pl;
    FILE *f;
    int ok;
    mr_status st;
    if (!path) return mr__seterr(err, MR_ERR_ARG, "bpe: NULL path");
    st = mr_bpe_save_json_mem(t, &buf, &len, err);
    if (st != MR_OK) return st;
    pl = strlen(path);
    tmp = (char *)mr__alloc(mr__bpe_al(t), pl + 5);
    if (!tmp) { mr_bpe_free_buffer(t, buf); return mr__seterr(err, MR_ERR_NOMEM, "bpe: out of memory"); }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    f = fopen(tmp, "wb");
    if (!f) {
        mr_bpe_free_buffer(t, buf); mr__free(mr__bpe_al(t), tmp);
        return mr__seterr(err, MR_ERR_IO, "bpe: cannot create '%s'", path);
    }
    ok = fwrite(buf, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) remove(tmp);
    mr_bpe_free_buffer(t, buf);
    mr__free(mr__bpe_al(t), tmp);
    return ok ? MR_OK : mr__seterr(err, MR_ERR_IO, "bpe: write error on '%s'", path);
}
MRDEF mr_status mr_bpe_load_json(mr_bpe **out, const char *path, const mr_allocator *alloc, mr_error *err) {
    uint8_t *buf;
    size_t len;
    mr_status st;
    if (out) *out = NULL;
    if (!path) return mr__seterr(err, MR_ERR_ARG, "bpe: NULL path");
    st = mr_read_file(path, &buf, &len, (size_t)INT32_MAX, err);
    if (st != MR_OK) return st;
    st = mr_bpe_load_json_mem(out, (const char *)buf, len, alloc, err);
    mr_buffer_free(buf);
    return st;
}
#endif
