#!/usr/bin/env python3
"""Reads a .safetensors file (e.g. one written by minrnn's
mr_safetensors_save) with numpy only, prints its tensors, and writes them
back out, optionally converted to another float dtype, so that minrnn's
importer (mr_safetensors_load) can be checked against an independent writer.

Usage:
  /usr/bin/python3 tools/safetensors_roundtrip.py IN.safetensors [OUT.safetensors]
        [--dtype same|f32|f64|f16|bf16] [--quiet] [--no-torch]

  IN      file to read (every tensor is read into a numpy array)
  OUT     file to write (omitted: only read and print)
  --dtype float dtype of the written tensors (default: same as IN).
          f32/f64 are exact for F32/F64/F16/BF16 input; f16 and bf16 round
          to nearest even (f16 overflows to inf, with a warning).
  --quiet print nothing but errors
  --no-torch  do not try to import torch (importing it takes seconds)

After writing, OUT is read back and compared with IN (exactly, or within the
rounding of --dtype). With torch importable (and no --no-torch), each tensor
is also shown as a torch tensor (torch.from_numpy), as a model would load it.
Exit status: 0 on success, 1 on a malformed file or a failed comparison,
2 on bad usage.

Format (https://github.com/huggingface/safetensors), written here the way
minrnn and the reference implementation write it:
  u64 little-endian N; N bytes of JSON (an object; a trailing run of spaces
  pads it so the data starts 8-byte aligned); the data: raw little-endian
  tensors, row-major. The JSON maps each name to
  {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} (offsets
  relative to the data; the tensors tile it with no gap or overlap), plus an
  optional "__metadata__": {str: str}, which is copied unchanged. Tensors are
  written in the order of IN's header, with the JSON written compactly, so
  with --dtype same the output of a minrnn file is byte-identical to it.

Only numpy is needed (Debian's python3-numpy); the `safetensors` package is
not used.
"""
import json
import struct
import sys

import numpy as np

# dtype string -> numpy dtype of its little-endian storage (BF16 as raw u16)
STORAGE = {
    "BOOL": np.dtype("?"), "U8": np.dtype("u1"), "I8": np.dtype("i1"),
    "I16": np.dtype("<i2"), "U16": np.dtype("<u2"), "I32": np.dtype("<i4"),
    "U32": np.dtype("<u4"), "I64": np.dtype("<i8"), "U64": np.dtype("<u8"),
    "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"), "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
}
FLOATS = ("F16", "BF16", "F32", "F64")
OUT_DTYPES = {"f32": "F32", "f64": "F64", "f16": "F16", "bf16": "BF16"}


class FormatError(Exception):
    pass


def bf16_to_f32(u16):
    """Raw bf16 bits (uint16 array) -> float32, exactly."""
    return (u16.astype("<u4") << 16).view("<f4")


def f32_to_bf16(x):
    """float32 array -> raw bf16 bits, round to nearest even, NaN kept NaN."""
    u = np.ascontiguousarray(x, dtype="<f4").view("<u4").astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
    nan = np.isnan(x)
    r[nan] = ((u[nan] >> 16) | 0x40).astype("<u2")   # quiet NaN, sign kept
    return r


def read_safetensors(path):
    """Returns (metadata or None, [(name, dtype, shape, raw array)]) in header
    order. raw arrays hold the stored values (BF16: uint16 bits)."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise FormatError("shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > len(buf) - 8:
        raise FormatError("header length %d exceeds the file (%d bytes)" % (n, len(buf)))
    try:
        text = buf[8:8 + n].decode("utf-8")
        header = json.loads(text, object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError("bad JSON header: %s" % e)
    if not isinstance(header, dict):
        raise FormatError("the header is not an object")
    data = memoryview(buf)[8 + n:]
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise FormatError("__metadata__ is not an object of strings")
    tensors, spans = [], []
    for name, ent in header.items():
        if not isinstance(ent, dict) or set(ent) != {"dtype", "shape", "data_offsets"}:
            raise FormatError("%r: want exactly dtype, shape and data_offsets" % name)
        dt, shape, offs = ent["dtype"], ent["shape"], ent["data_offsets"]
        if dt not in STORAGE:
            raise FormatError("%r: unknown dtype %r" % (name, dt))
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise FormatError("%r: bad shape %r" % (name, shape))
        if not (isinstance(offs, list) and len(offs) == 2 and all(type(o) is int for o in offs)
                and 0 <= offs[0] <= offs[1] <= len(data)):
            raise FormatError("%r: bad data_offsets %r" % (name, offs))
        st = STORAGE[dt]
        count = int(np.prod(shape, dtype=np.int64))
        if offs[1] - offs[0] != count * st.itemsize:
            raise FormatError("%r: %d bytes for shape %r of %s" % (name, offs[1] - offs[0], shape, dt))
        arr = np.frombuffer(data[offs[0]:offs[1]], dtype=st).reshape(shape).copy()
        tensors.append((name, dt, tuple(shape), arr))
        spans.append((offs[0], offs[1], name))
    spans.sort()
    pos = 0
    for b, e, name in spans:   # the tensors tile the data exactly
        if b != pos:
            raise FormatError("%r: data_offsets leave a gap or overlap at byte %d" % (name, pos))
        pos = e
    if pos != len(data):
        raise FormatError("%d bytes of data after the last tensor" % (len(data) - pos))
    return meta, tensors


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key %r" % k)
        d[k] = v
    return d


def as_float(dt, raw):
    """Stored values -> a float array (float64 for F64, float32 otherwise)."""
    if dt == "BF16":
        return bf16_to_f32(raw)
    if dt == "F64":
        return raw.astype(np.float64)
    return raw.astype(np.float32)


def convert(dt, raw, out_dt):
    """Stored values of dtype dt -> stored values of out_dt."""
    if out_dt == dt:
        return raw
    x = as_float(dt, raw)
    if out_dt == "F64":
        return x.astype("<f8")
    if out_dt == "F32":
        return x.astype("<f4")
    if out_dt == "F16":
        with np.errstate(over="ignore"):
            y = x.astype("<f2")
        if np.any(np.isinf(y) & np.isfinite(x)):
            sys.stderr.write("warning: values beyond the float16 range became inf\n")
        return y
    return f32_to_bf16(x.astype("<f4"))   # BF16 (from F64: rounded twice)


def write_safetensors(path, meta, tensors):
    header, chunks, off = {}, [], 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, dt, shape, raw in tensors:
        b = np.ascontiguousarray(raw, dtype=STORAGE[dt]).tobytes()
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-(len(text) + 8)) % 8)   # data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in chunks:
            f.write(b)


def same_values(dt_a, a, dt_b, b):
    """Whether b holds a's values as exactly as dtype dt_b allows."""
    if a.shape != b.shape:
        return False
    if dt_a not in FLOATS:
        return dt_a == dt_b and np.array_equal(a, b)
    x, y = as_float(dt_a, a).astype(np.float64), as_float(dt_b, b).astype(np.float64)
    if not np.array_equal(np.isnan(x), np.isnan(y)):
        return False
    ok = ~np.isnan(x)
    x, y = x[ok], y[ok]
    if dt_b == dt_a or dt_b == "F64" or (dt_b == "F32" and dt_a != "F64"):
        return np.array_equal(x, y)   # a wider (or the same) format: exact
    # rounding to a narrower format: within half an ulp, or overflow to inf
    rel, tiny, top = {"F32": (2.0 ** -24, 2.0 ** -150, 3.4028235677973366e38),
                      "F16": (2.0 ** -11, 2.0 ** -25, 65520.0),
                      "BF16": (2.0 ** -8, 2.0 ** -134, 3.3961775292e38)}[dt_b]
    with np.errstate(invalid="ignore"):
        close = (x == y) | (np.abs(x - y) <= np.maximum(np.abs(x) * rel, tiny))
    return bool(np.all(close | (np.isinf(y) & (np.abs(x) >= top))))


def main(argv):
    args, out_dtype, quiet, use_torch = [], "same", False, True
    it = iter(argv)
    for a in it:
        if a == "--dtype":
            out_dtype = next(it, None)
            if out_dtype not in ("same",) + tuple(OUT_DTYPES):
                sys.stderr.write("--dtype wants same, f32, f64, f16 or bf16\n")
                return 2
        elif a == "--quiet":
            quiet = True
        elif a == "--no-torch":
            use_torch = False
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        elif a.startswith("-"):
            sys.stderr.write("unknown option %s (see --help)\n" % a)
            return 2
        else:
            args.append(a)
    if not 1 <= len(args) <= 2:
        sys.stderr.write("usage: safetensors_roundtrip.py IN [OUT] [--dtype same|f32|f64|f16|bf16] [--quiet] [--no-torch]\n")
        return 2
    try:
        meta, tensors = read_safetensors(args[0])
    except (OSError, FormatError) as e:
        sys.stderr.write("%s: %s\n" % (args[0], e))
        return 1
    if not quiet:
        total = sum(int(np.prod(s, dtype=np.int64)) for _, _, s, _ in tensors)
        print("%s: %d tensors, %d values, metadata %s" % (args[0], len(tensors), total, json.dumps(meta)))
        for name, dt, shape, raw in tensors:
            x = as_float(dt, raw).astype(np.float64) if dt in FLOATS else raw.astype(np.float64)
            bad = int(np.sum(~np.isfinite(x)))
            x = x[np.isfinite(x)]
            print("  %-28s %-4s %-14s mean %+.6g  max|x| %.6g%s" % (
                name, dt, list(shape), float(np.mean(x)) if x.size else 0.0,
                float(np.max(np.abs(x))) if x.size else 0.0, "  (%d inf/nan)" % bad if bad else ""))
    if use_torch:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None and not quiet:
            print("as torch tensors:")
            for name, dt, shape, raw in tensors:
                if dt == "BF16":
                    t = torch.from_numpy(raw.view(np.int16)).view(torch.bfloat16)
                else:
                    t = torch.from_numpy(raw)
                print("  %-28s %s %s" % (name, t.dtype, tuple(t.shape)))
    if len(args) == 2:
        out = []
        for name, dt, shape, raw in tensors:
            odt = dt if out_dtype == "same" or dt not in FLOATS else OUT_DTYPES[out_dtype]
            out.append((name, odt, shape, convert(dt, raw, odt)))
        try:
            write_safetensors(args[1], meta, out)
            meta2, back = read_safetensors(args[1])
        except (OSError, FormatError) as e:
            sys.stderr.write("%s: %s\n" % (args[1], e))
            return 1
        bad = [n for (n, dt, _, a), (n2, dt2, _, b) in zip(tensors, back)
               if n != n2 or not same_values(dt, a, dt2, b)]
        if meta2 != meta or len(back) != len(tensors) or bad:
            sys.stderr.write("%s: read back differs from %s: %s\n" % (args[1], args[0], ", ".join(bad) or "metadata"))
            return 1
        if not quiet:
            print("wrote %s (%s), read back and compared" % (args[1], out_dtype))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
