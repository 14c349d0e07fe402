/* ======================================================================== */
/* tokenizer: byte-level BPE                                                */
/* ======================================================================== */
/* A byte-level BPE tokenizer compatible with Hugging Face's tokenizer.json
   (model "BPE", pre-tokenizer and decoder "ByteLevel").

   Vocabulary: the 256 byte values (a trained tokenizer gives byte b the id
   b), then one token per merge (a merge whose bytes equal an existing token
   reuses that token's id, as Hugging Face's trainer does), then the special
   tokens. Every byte string encodes, and decode(encode(x)) == x.

   Pre-tokenization (GPT-2 rules, ASCII classes; every byte >= 0x80 counts
   as a letter, so a UTF-8 sequence stays in one chunk):
     's 't 're 've 'm 'll 'd | ' '?letters | ' '?digits | ' '?others |
     whitespace run not followed by a non-space | whitespace run.
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
   pass 1 to get the same ids. With ASCII text (and the same special-token
   handling) the ids equal those of Hugging Face's tokenizers on the same
   tokenizer.json; non-ASCII text may be chunked differently, since it is
   classified by bytes here and by Unicode classes there.

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
