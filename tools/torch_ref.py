#!/usr/bin/env python3
"""PyTorch reference of minrnn's language model; writes the fixtures that
tests/test_torch_ref.c compares against (so the C tests need no Python).

Usage: /usr/bin/python3 tools/torch_ref.py [outdir]   (default tests/fixtures)

The model is written from the specification, independently of minrnn.h:
  x = embedding[tokens]
  per layer: h = rmsnorm(x) * norm1; pre = h @ w_in^T
    MinGRU : pre = [k | p],      z = sigmoid(k), a = 1 - z, b = z * g(p)
    MinLSTM: pre = [kf | ki | p], f, i = sigmoid(kf), sigmoid(ki),
             a = f / (f + i), b = i / (f + i) * g(p)
    g(p) = p + 0.5 (p >= 0), sigmoid(p) (p < 0)
    h_t = a_t h_{t-1} + b_t (h_{-1} = h0, or 0 when absent)
    h = h @ w_out^T when d_inner != d;  x = x + h
    u = rmsnorm(x) * norm2; v = u @ w13^T; x = x + (silu(v[:H]) * v[H:]) @ w2^T
  logits = (rmsnorm(x) * norm_f) @ (embedding or head)^T
  loss = mean cross-entropy over all B*T positions
rmsnorm(x) = x / sqrt(mean(x^2) + eps). Inputs (tokens, weights, h0) are
float32 values; everything is computed in float64.

Fixture format (little-endian), version 1:
  "MRFX" u32 version
  u32 vocab, dim, n_layers, ffn_hidden, tie, B, T, has_h0
  f32 expansion, f32 norm_eps
  u8  mixer[n_layers]                  0 MinGRU, 1 MinLSTM (minrnn's mr_mixer)
  i32 tokens[B*T], i32 targets[B*T]
  if has_h0: per layer: u32 n, f32 h0[n]      ([B, d_inner] row-major)
  u32 n_params; per parameter, in mr_params order:
      u32 name_len, name bytes, u32 ndim, u32 shape[ndim], f32 data[numel]
  f64 loss
  f64 logits[B*T*V]
  per layer: u32 n, f64 h_last[n]      (the final state h[:, T-1, :])
  per parameter (same order): f64 grad[numel]
  "MRFX"                               (end marker)
"""
import os
import struct
import sys

import torch
import torch.nn.functional as F

VERSION = 1
MINGRU, MINLSTM = 0, 1


def g(p):
    return torch.where(p >= 0, p + 0.5, torch.sigmoid(p))


def rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def param_names(cfg):
    """Names and shapes in minrnn's mr_params order (see mr_model_new)."""
    V, d, H = cfg["vocab"], cfg["dim"], cfg["ffn"]
    out = [("embedding", (V, d))]
    for l, kind in enumerate(cfg["mixers"]):
        di = inner_dim(cfg)
        parts = 2 if kind == MINGRU else 3
        out.append((f"layers.{l}.norm1", (d,)))
        out.append((f"layers.{l}.mixer.w_in", (parts * di, d)))
        if di != d:
            out.append((f"layers.{l}.mixer.w_out", (d, di)))
        if H > 0:
            out.append((f"layers.{l}.norm2", (d,)))
            out.append((f"layers.{l}.ffn.w13", (2 * H, d)))
            out.append((f"layers.{l}.ffn.w2", (d, H)))
    out.append(("norm_f", (d,)))
    if not cfg["tie"]:
        out.append(("head", (V, d)))
    return out


def inner_dim(cfg):
    # minrnn: d_inner = round(expansion * d) (floor(x + 0.5))
    import math
    return int(math.floor(cfg["expansion"] * cfg["dim"] + 0.5))


def forward(cfg, P, tokens, targets, h0):
    """Returns loss, logits [B,T,V], final states per layer, min |p| seen."""
    eps = cfg["eps"]
    B, T = tokens.shape
    x = P["embedding"][tokens]                      # [B,T,d]
    lasts, min_abs_p = [], float("inf")
    for l, kind in enumerate(cfg["mixers"]):
        di = inner_dim(cfg)
        h = rmsnorm(x, P[f"layers.{l}.norm1"], eps)
        pre = h @ P[f"layers.{l}.mixer.w_in"].t()
        if kind == MINGRU:
            k, p = pre[..., :di], pre[..., di:]
            z = torch.sigmoid(k)
            a, b = 1 - z, z * g(p)
        else:
            kf, ki, p = pre[..., :di], pre[..., di:2 * di], pre[..., 2 * di:]
            f, i = torch.sigmoid(kf), torch.sigmoid(ki)
            a, b = f / (f + i), i / (f + i) * g(p)
        min_abs_p = min(min_abs_p, p.abs().min().item())
        hp = h0[l] if h0 is not None else torch.zeros(B, di, dtype=x.dtype)
        hs = []
        for t in range(T):
            hp = a[:, t] * hp + b[:, t]
            hs.append(hp)
        h = torch.stack(hs, 1)                       # [B,T,di]
        lasts.append(h[:, T - 1].detach().clone())
        if di != cfg["dim"]:
            h = h @ P[f"layers.{l}.mixer.w_out"].t()
        x = x + h
        if cfg["ffn"] > 0:
            H = cfg["ffn"]
            u = rmsnorm(x, P[f"layers.{l}.norm2"], eps)
            v = u @ P[f"layers.{l}.ffn.w13"].t()
            s = F.silu(v[..., :H]) * v[..., H:]
            x = x + s @ P[f"layers.{l}.ffn.w2"].t()
    xf = rmsnorm(x, P["norm_f"], eps)
    head = P["embedding"] if cfg["tie"] else P["head"]
    logits = xf @ head.t()
    loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1))
    return loss, logits, lasts, min_abs_p


def make_case(cfg, seed, with_h0):
    """Draws float32 inputs (retrying seeds until no g() input is within 1e-3
    of its kink at 0, so float32 vs float64 never take different branches)."""
    for attempt in range(100):
        gen = torch.Generator().manual_seed(seed + 1000 * attempt)
        B, T, V, d = cfg["B"], cfg["T"], cfg["vocab"], cfg["dim"]
        names = param_names(cfg)
        P32 = {}
        for name, shape in names:
            if len(shape) == 1:   # norm weights around 1
                w = 1.0 + 0.2 * torch.randn(shape, generator=gen)
            elif name in ("embedding", "head"):
                w = torch.randn(shape, generator=gen)
            else:                 # large enough to drive the gates both ways
                w = torch.randn(shape, generator=gen) * (1.5 / shape[1] ** 0.5)
            P32[name] = w.float()
        tokens = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
        targets = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
        h0_32 = None
        if with_h0:
            h0_32 = []
            for kind in cfg["mixers"]:
                di = inner_dim(cfg)
                if kind == MINGRU:   # positive (MinGRU's states are; the log scan needs it)
                    h0_32.append((0.1 + torch.rand(B, di, generator=gen)).float())
                else:
                    h0_32.append(torch.randn(B, di, generator=gen).float())
        P = {k: v.double().requires_grad_(True) for k, v in P32.items()}
        h0 = [h.double() for h in h0_32] if h0_32 is not None else None
        loss, logits, lasts, min_abs_p = forward(cfg, P, tokens, targets, h0)
        if min_abs_p < 1e-3:
            continue
        loss.backward()
        grads = [P[n].grad.detach() for n, _ in names]
        return dict(names=names, P32=P32, tokens=tokens, targets=targets, h0=h0_32,
                    loss=loss.item(), logits=logits.detach(), lasts=lasts, grads=grads)
    raise RuntimeError("no seed kept g() inputs away from 0")


def write_fixture(path, cfg, case):
    out = bytearray()
    out += b"MRFX" + struct.pack("<I", VERSION)
    has_h0 = case["h0"] is not None
    out += struct.pack("<8I", cfg["vocab"], cfg["dim"], len(cfg["mixers"]), cfg["ffn"], int(cfg["tie"]),
                       cfg["B"], cfg["T"], int(has_h0))
    out += struct.pack("<2f", cfg["expansion"], cfg["eps"])
    out += bytes(cfg["mixers"])
    out += struct.pack(f"<{cfg['B'] * cfg['T']}i", *case["tokens"].reshape(-1).tolist())
    out += struct.pack(f"<{cfg['B'] * cfg['T']}i", *case["targets"].reshape(-1).tolist())
    if has_h0:
        for h in case["h0"]:
            flat = h.reshape(-1).tolist()
            out += struct.pack("<I", len(flat)) + struct.pack(f"<{len(flat)}f", *flat)
    out += struct.pack("<I", len(case["names"]))
    for name, shape in case["names"]:
        nb = name.encode()
        flat = case["P32"][name].reshape(-1).tolist()
        out += struct.pack("<I", len(nb)) + nb + struct.pack("<I", len(shape)) + struct.pack(f"<{len(shape)}I", *shape)
        out += struct.pack(f"<{len(flat)}f", *flat)
    out += struct.pack("<d", case["loss"])
    flat = case["logits"].reshape(-1).tolist()
    out += struct.pack(f"<{len(flat)}d", *flat)
    for h in case["lasts"]:
        flat = h.reshape(-1).tolist()
        out += struct.pack("<I", len(flat)) + struct.pack(f"<{len(flat)}d", *flat)
    for gr in case["grads"]:
        flat = gr.reshape(-1).tolist()
        out += struct.pack(f"<{len(flat)}d", *flat)
    out += b"MRFX"
    with open(path, "wb") as f:
        f.write(bytes(out))
    return len(out)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "fixtures")
    os.makedirs(outdir, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    # Two layers (MinGRU then MinLSTM), expansion 1.5 so w_out exists, SwiGLU FFN.
    base = dict(vocab=11, dim=8, ffn=16, expansion=1.5, eps=1e-5, B=2, T=9, mixers=[MINGRU, MINLSTM])
    cases = [
        ("torch_ref_tied.mrfx", dict(base, tie=True), 1234, False),
        ("torch_ref_untied_h0.mrfx", dict(base, tie=False), 5678, True),
        # expansion 1: no w_out; also a MinLSTM-first order
        ("torch_ref_e1_h0.mrfx", dict(base, tie=True, expansion=1.0, mixers=[MINLSTM, MINGRU]), 91011, True),
    ]
    for fname, cfg, seed, with_h0 in cases:
        case = make_case(cfg, seed, with_h0)
        n = write_fixture(os.path.join(outdir, fname), cfg, case)
        print(f"{fname}: {n} bytes, loss {case['loss']:.10f}, h0={with_h0}, tie={cfg['tie']}")


if __name__ == "__main__":
    main()
