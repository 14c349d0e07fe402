#!/usr/bin/env python3
"""PyTorch reference of minrnn's language model; writes the fixtures that
tests/test_torch_ref.c compares against (so the C tests need no Python).

Usage: /usr/bin/python3 tools/torch_ref.py [outdir]   (default tests/fixtures)

The model is written from the specification, independently of minrnn.h, with
tensor operations (the recurrences are the only loops over time):
  x = embedding[tokens] (+ pos_embedding[pos0 + t] with a learned position table)
  per layer, pre-norm:  x = x + mixer(rmsnorm(x) * norm1)
                        x = x + mixer_b(rmsnorm(x) * mix2.norm1)   (only with a second mixer,
                              whose tensors are named layers.l.mix2.<as the first's>)
                        x = x + ffn(rmsnorm(x) * norm2)    (no norm2 when the FFN kind is none)
  mixers (h is the normalized input, pre = h @ w_in^T):
    MinGRU : pre = [k | p],      z = sigmoid(k), a = 1 - z, b = z * g(p)
    MinLSTM: pre = [kf | ki | p], f, i = sigmoid(kf), sigmoid(ki),
             a = f / (f + i), b = i / (f + i) * g(p)
    g(p) = p + 0.5 (p >= 0), sigmoid(p) (p < 0)
    h_t = a_t h_{t-1} + b_t (h_{-1} = h0, or 0 when absent)
    y = h @ w_out^T when d_inner != d (d_inner = floor(expansion * d + 0.5)), else h
    GRU    : [xr | xz | xn] = h @ w_x^T + b_x; with s = h_{t-1} (or, with
             gru_hidden_norm, s = h_{t-1} / sqrt(mean(h_{t-1}^2) + eps)):
             [ur | uz | un] = s @ w_h^T, r = sigmoid(xr + ur), z = sigmoid(xz + uz),
             n = tanh(xn + r * (un + b_hn)), h_t = (1 - z) n + z h_{t-1}; y = h
    attention: H query heads, KV key/value heads, head dim hd = d / H;
             qkv = h @ w_qkv^T = [q: H heads | k: KV heads | v: KV heads], each head hd wide;
             RoPE (rope_theta > 0) on q and k at positions pos0 + t: for pair i < hd // 2,
             angle = pos * rope_theta^(-2i / hd), (x[2i], x[2i+1]) ->
             (x0 cos - x1 sin, x0 sin + x1 cos); an odd last element is left as it is;
             keys/values = [the cached rows 0..pos0-1 (rotated keys, values) | this call's];
             query head j reads key/value head j // (H / KV);
             o = softmax(q k^T / sqrt(hd) + causal mask) v, written out explicitly
             (torch 1.13 has no F.scaled_dot_product_attention): the query at
             pos0 + t sees the keys at positions <= pos0 + t; y = o @ w_o^T
    rwkv6  : RWKV-6 (x060) time mixing, head size N, H = d / N heads, ranks R1, R2:
             xx = [shift_prev, h_0 .. h_{T-2}] - h   (shift_prev from the state, else 0)
             xxx = h + xx * maa_x, z = tanh(xxx @ maa_w1^T) [.., 5 R1]
             m_c = z[.., c R1:(c+1) R1] @ maa_w2[c d:(c+1) d]^T, x_c = h + xx * (maa[c] + m_c)
             for c = w, k, v, r, g; r, k, v = x_r @ w_r^T, x_k @ w_k^T, x_v @ w_v^T,
             g = silu(x_g @ w_g^T), w = decay + tanh(x_w @ decay_w1^T) @ decay_w2^T,
             per head with state S [N, N] (from the state, else 0), as a sequential loop:
               y_t = r_t (diag(bonus) k_t^T v_t + S), S = diag(exp(-exp(w_t))) S + k_t^T v_t
             y = groupnorm over each head (biased variance, eps 64e-5) * ln_x.weight + ln_x.bias
             out = (y * g) @ w_o^T
  FFNs (u = rmsnorm(x) * norm2):
    swiglu: v = u @ w13^T, y = (silu(v[:H]) * v[H:]) @ w2^T
    relu2 : y = relu(u @ w1^T)^2 @ w2^T
    gelu  : y = gelu_tanh(u @ w1^T) @ w2^T, gelu_tanh(v) = 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3)))
    rwkv-cmix: xx = [shift_prev, u_0 .. u_{T-2}] - u, x_k = u + xx * maa[0], x_r = u + xx * maa[1],
             y = sigmoid(x_r @ w_r^T) * (relu(x_k @ w_k^T)^2 @ w_v^T)
    moe    : E experts (SwiGLU of hidden H each, expert e = w13[e], w2[e]), R = E - 1 routed:
             logits = u @ router^T [.., R], p = softmax(logits); the k largest logits choose
             experts 1 + idx_j with gates p[idx_j] (renorm: softmax over the k chosen logits);
             y = expert_0(u) + sum_j gate_j expert_{1+idx_j}(u), computed densely (every
             expert on every row, weighted 1, gate_j or 0);
             router losses (training): f_e = share of the N k slots routed to e (a constant),
             balance = R sum_e f_e mean(p_e), z = mean(logsumexp(logits)^2),
             aux = moe_balance * balance + moe_zloss * z per MoE layer
  logits = (rmsnorm(x) * norm_f) @ (embedding or head)^T
  loss = mean cross-entropy over all B*T positions + the MoE layers' aux
rmsnorm(x) = x / sqrt(mean(x^2) + eps). Inputs (tokens, weights, initial
states) are float32 values; everything is computed in float64. The gradient
does not reach the initial state (h0, cached keys and values): constants.

Fixture format (little-endian), version 4 (earlier versions are no longer
written or read):
  "MRFX" u32 version
  u32 vocab, dim, n_layers, ffn_hidden, tie, B, T, has_state
  f32 expansion, f32 norm_eps
  u8  mixer[n_layers]      minrnn's mr_mixer: 0 MinGRU, 1 MinLSTM, 2 GRU, 3 attention, 4 rwkv6
  u8  ffn[n_layers]        minrnn's mr_ffn: 0 none, 1 swiglu, 2 relu2, 3 gelu, 4 rwkv-cmix
  u32 n_heads, n_kv_heads; f32 rope_theta (0: no RoPE)
  u32 pos_emb (0 none, 1 learned), max_context, pos0, gru_hidden_norm
  u32 rwkv_head_size, rwkv_mix_rank, rwkv_decay_rank
  u8  mixer_b[n_layers]    a second mixer: mr_mixer + 1, 0 none
  u32 moe_experts, moe_top_k, moe_renorm; f32 moe_balance, moe_zloss
  i32 tokens[B*T], i32 targets[B*T]
  if has_state (the stream's state before the call, at position pos0; pos0 > 0
  needs it): per layer: u32 n, f32 data[n], the layer's state blocks one after
  another in minrnn's order (the mixer's, the second mixer's, then the FFN's), row-major:
      MinGRU/MinLSTM/GRU: h0 [B, d_inner] (GRU: [B, d])
      attention: the KV cache rows 0..pos0-1, keys [B, KV, pos0, hd]
                 (rotated, as the cache holds them) then values, the same shape
      rwkv6: the last input [B, d], then the wkv state [B, H, N, N]
      rwkv-cmix FFN (after the mixer's): the last input [B, d]
  u32 n_params; per parameter, in mr_params order:
      u32 name_len, name bytes, u32 ndim, u32 shape[ndim], f32 data[numel]
  f64 loss
  f64 logits[B*T*V]
  per layer: u32 n, f64 data[n]       the state after the call, laid out as above
                                       (KV caches: rows 0..pos0+T-1)
  per parameter (same order): f64 grad[numel]
  "MRFX"                               (end marker)
"""
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

VERSION = 4
MINGRU, MINLSTM, GRU, ATTN, RWKV6 = 0, 1, 2, 3, 4   # mr_mixer
FFN_NONE, SWIGLU, RELU2, GELU, CMIX, MOE = 0, 1, 2, 3, 4, 5  # mr_ffn
GN_EPS = 64e-5                                     # RWKV-6's group norm eps
POS_NONE, POS_LEARNED = 0, 1                       # mr_pos_emb


def g(p):
    return torch.where(p >= 0, p + 0.5, torch.sigmoid(p))


def rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def gelu_tanh(v):
    return 0.5 * v * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v ** 3)))


def kind_inner_dim(cfg, kind):
    # minrnn: d_inner = round(expansion * d) (floor(x + 0.5)) for MinGRU/MinLSTM; d otherwise
    if kind in (GRU, ATTN, RWKV6):
        return cfg["dim"]
    return int(math.floor(cfg["expansion"] * cfg["dim"] + 0.5))


def inner_dim(cfg, l):
    return kind_inner_dim(cfg, cfg["mixers"][l])


def mixers_b(cfg):
    return cfg.get("mixers_b", [None] * len(cfg["mixers"]))


def head_dim(cfg):
    return cfg["dim"] // cfg["heads"]


def ffn_kind(cfg, l):
    return cfg["ffns"][l] if cfg["ffn"] > 0 else FFN_NONE


def param_names(cfg):
    """Names and shapes in minrnn's mr_params order (see mr_model_new)."""
    V, d, H = cfg["vocab"], cfg["dim"], cfg["ffn"]
    out = [("embedding", (V, d))]
    if cfg["pos_emb"] == POS_LEARNED:
        out.append(("pos_embedding", (cfg["max_context"], d)))
    def mixer_params(kind, pre):
        out = []
        if kind in (MINGRU, MINLSTM):
            di = kind_inner_dim(cfg, kind)
            out.append((pre + "mixer.w_in", ((2 if kind == MINGRU else 3) * di, d)))
            if di != d:
                out.append((pre + "mixer.w_out", (d, di)))
        elif kind == GRU:
            out += [(pre + "gru.w_x", (3 * d, d)), (pre + "gru.b_x", (3 * d,)),
                    (pre + "gru.w_h", (3 * d, d)), (pre + "gru.b_hn", (d,))]
        elif kind == ATTN:
            nh, kv, hd = cfg["heads"], cfg["kv_heads"], head_dim(cfg)
            out += [(pre + "attn.w_qkv", ((nh + 2 * kv) * hd, d)), (pre + "attn.w_o", (d, nh * hd))]
        else:
            R1, R2, p = cfg["mix_rank"], cfg["decay_rank"], pre + "tmix."
            out += [(p + "maa_x", (d,)), (p + "maa", (5, d)), (p + "maa_w1", (5 * R1, d)), (p + "maa_w2", (5 * d, R1)),
                    (p + "decay", (d,)), (p + "decay_w1", (R2, d)), (p + "decay_w2", (d, R2)), (p + "bonus", (d,))]
            out += [(p + w, (d, d)) for w in ("w_r", "w_k", "w_v", "w_g", "w_o")]
            out += [(p + "ln_x.weight", (d,)), (p + "ln_x.bias", (d,))]
        return out

    for l, kind in enumerate(cfg["mixers"]):
        out.append((f"layers.{l}.norm1", (d,)))
        out += mixer_params(kind, f"layers.{l}.")
        kb = mixers_b(cfg)[l]
        if kb is not None:
            out.append((f"layers.{l}.mix2.norm1", (d,)))
            out += mixer_params(kb, f"layers.{l}.mix2.")
        fk = ffn_kind(cfg, l)
        if fk == MOE:
            E = cfg["experts"]
            out += [(f"layers.{l}.norm2", (d,)), (f"layers.{l}.moe.router", (E - 1, d)),
                    (f"layers.{l}.moe.w13", (E, 2 * H, d)), (f"layers.{l}.moe.w2", (E, d, H))]
        elif fk == CMIX:
            p = f"layers.{l}.cmix."
            out += [(f"layers.{l}.norm2", (d,)), (p + "maa", (2, d)), (p + "w_k", (H, d)), (p + "w_v", (d, H)), (p + "w_r", (d, d))]
        elif fk != FFN_NONE:
            out.append((f"layers.{l}.norm2", (d,)))
            out.append((f"layers.{l}.ffn.w13", (2 * H, d)) if fk == SWIGLU else (f"layers.{l}.ffn.w1", (H, d)))
            out.append((f"layers.{l}.ffn.w2", (d, H)))
    out.append(("norm_f", (d,)))
    if not cfg["tie"]:
        out.append(("head", (V, d)))
    return out


def rope(x, pos, theta):
    """x [B, T, n, hd]; rotates the interleaved pairs (x[2i], x[2i+1]) by pos[t] * theta^(-2i/hd)."""
    hd = x.shape[-1]
    half = hd // 2
    if theta <= 0 or half == 0:
        return x
    i = torch.arange(half, dtype=torch.float64)
    freq = theta ** (-2.0 * i / hd)                              # [half]
    ang = pos.to(torch.float64)[:, None] * freq[None, :]         # [T, half]
    c, s = torch.cos(ang)[None, :, None, :], torch.sin(ang)[None, :, None, :]
    pairs = x[..., :2 * half].reshape(*x.shape[:-1], half, 2)
    x0, x1 = pairs[..., 0], pairs[..., 1]
    rot = torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), -1).reshape(*x.shape[:-1], 2 * half)
    return torch.cat((rot, x[..., 2 * half:]), -1)


def attention(cfg, h, w_qkv, w_o, cache):
    """h [B,T,d]; cache (keys, values) [B, KV, pos0, hd] or None. Returns y and the
    full cache (keys, values) [B, KV, pos0+T, hd] after the call."""
    B, T, _ = h.shape
    nh, kv, hd, pos0 = cfg["heads"], cfg["kv_heads"], head_dim(cfg), cfg["pos0"]
    qkv = h @ w_qkv.t()
    q = qkv[..., :nh * hd].reshape(B, T, nh, hd)
    k = qkv[..., nh * hd:(nh + kv) * hd].reshape(B, T, kv, hd)
    v = qkv[..., (nh + kv) * hd:].reshape(B, T, kv, hd)
    pos = torch.arange(pos0, pos0 + T)
    q, k = rope(q, pos, cfg["rope_theta"]), rope(k, pos, cfg["rope_theta"])
    K, Vv = k.transpose(1, 2), v.transpose(1, 2)                  # [B, KV, T, hd]
    if pos0 > 0:
        K, Vv = torch.cat((cache[0], K), 2), torch.cat((cache[1], Vv), 2)
    G = nh // kv
    Kq, Vq = K.repeat_interleave(G, dim=1), Vv.repeat_interleave(G, dim=1)   # head j -> kv head j // G
    s = (q.transpose(1, 2) @ Kq.transpose(2, 3)) / math.sqrt(hd)             # [B, H, T, pos0+T]
    keypos = torch.arange(pos0 + T)[None, :]
    qpos = pos[:, None]
    s = s.masked_fill(keypos > qpos, float("-inf"))
    a = torch.softmax(s, -1)
    o = (a @ Vq).transpose(1, 2).reshape(B, T, nh * hd)
    return o @ w_o.t(), (K.detach().clone(), Vv.detach().clone())


def shifted(h, prev):
    """[prev, h_0 .. h_{T-2}] - h; prev [B, d] or None (zeros)."""
    B, _, d = h.shape
    p = prev if prev is not None else torch.zeros(B, d)
    return torch.cat((p[:, None], h[:, :-1]), 1) - h


def rwkv_tmix(cfg, pre, P, h, st):
    """RWKV-6 time mixing of h [B, T, d]; st [shift, wkv] or None. Returns y and [shift, wkv] after."""
    B, T, d = h.shape
    N, R1, p = cfg["rwkv_head"], cfg["mix_rank"], pre + "tmix."
    H = d // N
    xx = shifted(h, st[0] if st is not None else None)
    z = torch.tanh((h + xx * P[p + "maa_x"]) @ P[p + "maa_w1"].t())
    w2, maa = P[p + "maa_w2"], P[p + "maa"]
    xw, xk, xv, xr, xg = [h + xx * (maa[c] + z[..., c * R1:(c + 1) * R1] @ w2[c * d:(c + 1) * d].t()) for c in range(5)]
    r = (xr @ P[p + "w_r"].t()).reshape(B, T, H, N)
    k = (xk @ P[p + "w_k"].t()).reshape(B, T, H, N)
    v = (xv @ P[p + "w_v"].t()).reshape(B, T, H, N)
    g = F.silu(xg @ P[p + "w_g"].t())
    w = P[p + "decay"] + torch.tanh(xw @ P[p + "decay_w1"].t()) @ P[p + "decay_w2"].t()
    dec = torch.exp(-torch.exp(w)).reshape(B, T, H, N)
    u = P[p + "bonus"].reshape(1, H, N, 1)
    S = st[1] if st is not None else torch.zeros(B, H, N, N)
    ys = []
    for t in range(T):
        kv = k[:, t, :, :, None] * v[:, t, :, None, :]                 # [B, H, N keys, N values]
        ys.append((r[:, t, :, :, None] * (u * kv + S)).sum(2))          # [B, H, N values]
        S = dec[:, t, :, :, None] * S + kv
    y = torch.stack(ys, 1)                                               # [B, T, H, N]
    mean = y.mean(-1, keepdim=True)
    var = ((y - mean) ** 2).mean(-1, keepdim=True)
    y = ((y - mean) / torch.sqrt(var + GN_EPS)).reshape(B, T, d) * P[p + "ln_x.weight"] + P[p + "ln_x.bias"]
    return (y * g) @ P[p + "w_o"].t(), [h[:, T - 1].detach().clone(), S.detach().clone()]


def rwkv_cmix(cfg, l, P, u, prev):
    """RWKV-6 channel mixing of u [B, T, d]; prev [B, d] or None. Returns y, the pre-relu input, the last input."""
    p = f"layers.{l}.cmix."
    xx = shifted(u, prev)
    maa = P[p + "maa"]
    xk, xr = u + xx * maa[0], u + xx * maa[1]
    kp = xk @ P[p + "w_k"].t()
    y = torch.sigmoid(xr @ P[p + "w_r"].t()) * (torch.relu(kp) ** 2 @ P[p + "w_v"].t())
    return y, kp, u[:, u.shape[1] - 1].detach().clone()


def forward(cfg, P, tokens, targets, state):
    """Returns loss, logits [B,T,V], the state after the call (per layer), and the
    smallest |input| of a kinked function (g, relu) seen."""
    eps, d = cfg["eps"], cfg["dim"]
    B, T = tokens.shape
    pos0 = cfg["pos0"]
    x = P["embedding"][tokens]                      # [B,T,d]
    if cfg["pos_emb"] == POS_LEARNED:
        x = x + P["pos_embedding"][pos0:pos0 + T][None]
    lasts, aux, min_kink = [], 0.0, [float("inf")]

    def nblocks(kind):
        return 2 if kind in (ATTN, RWKV6) else 1

    def run_mixer(kind, pf, h, st):
        """One mixer (tensors named pf + ...); st: its state blocks or None. Returns y and its blocks after."""
        if st is not None and nblocks(kind) == 1:
            st = st[0]
        if kind in (MINGRU, MINLSTM):
            di = kind_inner_dim(cfg, kind)
            pre = h @ P[pf + "mixer.w_in"].t()
            if kind == MINGRU:
                k, p = pre[..., :di], pre[..., di:]
                z = torch.sigmoid(k)
                a, b = 1 - z, z * g(p)
            else:
                kf, ki, p = pre[..., :di], pre[..., di:2 * di], pre[..., 2 * di:]
                f, i = torch.sigmoid(kf), torch.sigmoid(ki)
                a, b = f / (f + i), i / (f + i) * g(p)
            min_kink[0] = min(min_kink[0], p.abs().min().item())
            hp = st if st is not None else torch.zeros(B, di)
            hs = []
            for t in range(T):
                hp = a[:, t] * hp + b[:, t]
                hs.append(hp)
            y = torch.stack(hs, 1)                   # [B,T,di]
            last = [y[:, T - 1].detach().clone()]
            if di != d:
                y = y @ P[pf + "mixer.w_out"].t()
            return y, last
        if kind == GRU:
            xp = h @ P[pf + "gru.w_x"].t() + P[pf + "gru.b_x"]
            xr, xz, xn = xp[..., :d], xp[..., d:2 * d], xp[..., 2 * d:]
            w_h, b_hn = P[pf + "gru.w_h"], P[pf + "gru.b_hn"]
            hp = st if st is not None else torch.zeros(B, d)
            hs = []
            for t in range(T):
                s = hp / torch.sqrt((hp * hp).mean(-1, keepdim=True) + eps) if cfg["gru_hidden_norm"] else hp
                u = s @ w_h.t()
                r = torch.sigmoid(xr[:, t] + u[:, :d])
                z = torch.sigmoid(xz[:, t] + u[:, d:2 * d])
                n = torch.tanh(xn[:, t] + r * (u[:, 2 * d:] + b_hn))
                hp = (1 - z) * n + z * hp
                hs.append(hp)
            y = torch.stack(hs, 1)
            return y, [y[:, T - 1].detach().clone()]
        if kind == ATTN:
            y, cache = attention(cfg, h, P[pf + "attn.w_qkv"], P[pf + "attn.w_o"], st)
            return y, list(cache)
        return rwkv_tmix(cfg, pf, P, h, st)

    def swiglu(u, w13, w2, H):
        v = u @ w13.t()
        return (F.silu(v[..., :H]) * v[..., H:]) @ w2.t()

    for l, kind in enumerate(cfg["mixers"]):
        fk = ffn_kind(cfg, l)
        kb = mixers_b(cfg)[l]
        n1, n2 = nblocks(kind), nblocks(kb) if kb is not None else 0
        st1 = state[l][:n1] if state is not None else None
        st2 = state[l][n1:n1 + n2] if state is not None and kb is not None else None
        h = rmsnorm(x, P[f"layers.{l}.norm1"], eps)
        y, last = run_mixer(kind, f"layers.{l}.", h, st1)
        lasts.append(last)
        x = x + y
        if kb is not None:
            h = rmsnorm(x, P[f"layers.{l}.mix2.norm1"], eps)
            y, last = run_mixer(kb, f"layers.{l}.mix2.", h, st2)
            lasts[-1] += last
            x = x + y
        if fk == MOE:
            H, E, k = cfg["ffn"], cfg["experts"], cfg["top_k"]
            R = E - 1
            u = rmsnorm(x, P[f"layers.{l}.norm2"], eps)
            lg = u @ P[f"layers.{l}.moe.router"].t()                      # [B, T, R]
            prob = torch.softmax(lg, -1)
            srt = torch.sort(lg.detach(), -1, descending=True).values
            if k < R:   # the k-th and (k+1)-th logits must stay apart in float32
                min_kink[0] = min(min_kink[0], (srt[..., k - 1] - srt[..., k]).min().item())
            idx = torch.topk(lg.detach(), k, -1).indices                    # [B, T, k]
            gates = torch.softmax(torch.gather(lg, -1, idx), -1) if cfg["renorm"] else torch.gather(prob, -1, idx)
            w = torch.zeros(B, T, E).scatter(-1, idx + 1, gates)          # the routed experts' weights
            w = w + F.one_hot(torch.zeros(B, T, dtype=torch.int64), E).double()   # expert 0: weight 1
            W13, W2 = P[f"layers.{l}.moe.w13"], P[f"layers.{l}.moe.w2"]
            y = sum(w[..., e:e + 1] * swiglu(u, W13[e], W2[e], H) for e in range(E))
            x = x + y
            f = torch.bincount(idx.reshape(-1), minlength=R).double() / idx.numel()
            bal = R * (f * prob.reshape(-1, R).mean(0)).sum()
            zl = (torch.logsumexp(lg, -1) ** 2).mean()
            aux = aux + cfg["balance"] * bal + cfg["zloss"] * zl
        elif fk == CMIX:
            u = rmsnorm(x, P[f"layers.{l}.norm2"], eps)
            y, kp, last = rwkv_cmix(cfg, l, P, u, state[l][-1] if state is not None else None)
            min_kink[0] = min(min_kink[0], kp.abs().min().item())
            lasts[-1].append(last)
            x = x + y
        elif fk != FFN_NONE:
            H = cfg["ffn"]
            u = rmsnorm(x, P[f"layers.{l}.norm2"], eps)
            if fk == SWIGLU:
                v = u @ P[f"layers.{l}.ffn.w13"].t()
                s = F.silu(v[..., :H]) * v[..., H:]
            else:
                v = u @ P[f"layers.{l}.ffn.w1"].t()
                if fk == RELU2:
                    min_kink[0] = min(min_kink[0], v.abs().min().item())
                    s = torch.relu(v) ** 2
                else:
                    s = gelu_tanh(v)
            x = x + s @ P[f"layers.{l}.ffn.w2"].t()
    xf = rmsnorm(x, P["norm_f"], eps)
    head = P["embedding"] if cfg["tie"] else P["head"]
    logits = xf @ head.t()
    loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(-1)) + aux
    return loss, logits, lasts, min_kink[0]


def draw_state(cfg, gen):
    """The state before the call, float32: h0 per recurrent layer, cached rows per attention layer."""
    B, pos0, d = cfg["B"], cfg["pos0"], cfg["dim"]
    out = []

    def mixer_blocks(kind):
        if kind == MINGRU:   # positive (MinGRU's states are; the log scan needs it)
            return [(0.1 + torch.rand(B, kind_inner_dim(cfg, kind), generator=gen)).float()]
        if kind == MINLSTM:
            return [torch.randn(B, kind_inner_dim(cfg, kind), generator=gen).float()]
        if kind == GRU:      # a GRU state lies in (-1, 1)
            return [torch.tanh(1.5 * torch.randn(B, d, generator=gen)).float()]
        if kind == ATTN:
            shape = (B, cfg["kv_heads"], pos0, head_dim(cfg))
            return [torch.randn(shape, generator=gen).float() * 1.5, torch.randn(shape, generator=gen).float()]
        N = cfg["rwkv_head"]  # the last normalized input (rms 1), the wkv state
        return [torch.randn(B, d, generator=gen).float(), 0.5 * torch.randn(B, d // N, N, N, generator=gen).float()]

    for l, kind in enumerate(cfg["mixers"]):
        blocks = mixer_blocks(kind)
        if mixers_b(cfg)[l] is not None:
            blocks += mixer_blocks(mixers_b(cfg)[l])
        if ffn_kind(cfg, l) == CMIX:
            blocks.append(torch.randn(B, d, generator=gen).float())
        out.append(blocks)
    return out


def make_case(cfg, seed, with_state):
    """Draws float32 inputs, retrying seeds until no input of a kinked function
    (g() of the min layers, relu of relu2) is within 1e-3 of its kink at 0, so
    float32 and float64 never take different branches."""
    assert cfg["pos0"] == 0 or with_state
    for attempt in range(100):
        gen = torch.Generator().manual_seed(seed + 1000 * attempt)
        B, T, V = cfg["B"], cfg["T"], cfg["vocab"]
        names = param_names(cfg)
        P32 = {}
        for name, shape in names:
            short = name.split(".", 2)[-1]
            if short in ("tmix.maa_x", "tmix.maa", "cmix.maa"):             # interpolation weights in (0, 1)
                w = torch.rand(shape, generator=gen)
            elif short == "tmix.decay":                                      # decays exp(-exp(w)) from ~0.1 to ~0.97
                w = -1.5 + 1.2 * torch.randn(shape, generator=gen)
            elif short in ("tmix.bonus", "tmix.ln_x.bias"):
                w = 0.5 * torch.randn(shape, generator=gen)
            elif short in ("tmix.maa_w2", "tmix.decay_w2"):                  # LoRA B: moderate offsets
                w = 0.5 * torch.randn(shape, generator=gen) / shape[1] ** 0.5
            elif len(shape) == 1:
                if name.endswith("b_x") or name.endswith("b_hn"):   # biases around 0
                    w = 0.3 * torch.randn(shape, generator=gen)
                else:                                               # norm weights around 1
                    w = 1.0 + 0.2 * torch.randn(shape, generator=gen)
            elif name in ("embedding", "head"):
                w = torch.randn(shape, generator=gen)
            elif name == "pos_embedding":
                w = 0.5 * torch.randn(shape, generator=gen)
            else:                 # large enough to drive the gates both ways
                w = torch.randn(shape, generator=gen) * (1.5 / shape[-1] ** 0.5)
            P32[name] = w.float()
        tokens = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
        targets = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
        st32 = draw_state(cfg, gen) if with_state else None
        P = {k: v.double().requires_grad_(True) for k, v in P32.items()}
        st = None
        if st32 is not None:
            st = [[e.double() for e in s] for s in st32]
        loss, logits, lasts, min_kink = forward(cfg, P, tokens, targets, st)
        if min_kink < 1e-3:
            continue
        loss.backward()
        grads = [P[n].grad.detach() for n, _ in names]
        return dict(names=names, P32=P32, tokens=tokens, targets=targets, state=st32,
                    loss=loss.item(), logits=logits.detach(), lasts=lasts, grads=grads)
    raise RuntimeError("no seed kept the kinked inputs away from 0")


def flat_state(s):
    """A layer's state blocks as one flat list, block after block."""
    return [v for e in s for v in e.reshape(-1).tolist()]


def write_fixture(path, cfg, case):
    out = bytearray()
    nl = len(cfg["mixers"])
    out += b"MRFX" + struct.pack("<I", VERSION)
    has_state = case["state"] is not None
    out += struct.pack("<8I", cfg["vocab"], cfg["dim"], nl, cfg["ffn"], int(cfg["tie"]),
                       cfg["B"], cfg["T"], int(has_state))
    out += struct.pack("<2f", cfg["expansion"], cfg["eps"])
    out += bytes(cfg["mixers"]) + bytes(cfg["ffns"])
    out += struct.pack("<2If", cfg["heads"], cfg["kv_heads"], cfg["rope_theta"])
    out += struct.pack("<4I", cfg["pos_emb"], cfg["max_context"], cfg["pos0"], int(cfg["gru_hidden_norm"]))
    out += struct.pack("<3I", cfg["rwkv_head"], cfg["mix_rank"], cfg["decay_rank"])
    out += bytes(0 if k is None else k + 1 for k in mixers_b(cfg))
    out += struct.pack("<3I2f", cfg["experts"], cfg["top_k"], int(cfg["renorm"]), cfg["balance"], cfg["zloss"])
    out += struct.pack(f"<{cfg['B'] * cfg['T']}i", *case["tokens"].reshape(-1).tolist())
    out += struct.pack(f"<{cfg['B'] * cfg['T']}i", *case["targets"].reshape(-1).tolist())
    if has_state:
        for s in case["state"]:
            flat = flat_state(s)
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
    for s in case["lasts"]:
        flat = flat_state(s)
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
    # Defaults of the fields the recurrent-only cases do not use.
    common = dict(heads=4, kv_heads=4, rope_theta=10000.0, pos_emb=POS_NONE, max_context=1024, pos0=0,
                  gru_hidden_norm=False, rwkv_head=64, mix_rank=32, decay_rank=64,
                  experts=4, top_k=1, renorm=False, balance=1e-2, zloss=1e-3)
    # Two layers (MinGRU then MinLSTM), expansion 1.5 so w_out exists, SwiGLU FFN.
    base = dict(common, vocab=11, dim=8, ffn=16, expansion=1.5, eps=1e-5, B=2, T=9, mixers=[MINGRU, MINLSTM],
                ffns=[SWIGLU] * 2)
    cases = [
        ("torch_ref_tied.mrfx", dict(base, tie=True), 1234, False),
        ("torch_ref_untied_h0.mrfx", dict(base, tie=False), 5678, True),
        # expansion 1: no w_out; also a MinLSTM-first order
        ("torch_ref_e1_h0.mrfx", dict(base, tie=True, expansion=1.0, mixers=[MINLSTM, MINGRU]), 91011, True),
        # GPT-2-like: attn*2, learned positions, no RoPE, GELU MLP, untied head; 2 heads of 4;
        # T = 19 >= 8 (the attention kernel's transposed-key path)
        ("torch_ref_gpt_gelu.mrfx", dict(base, tie=False, expansion=1.0, mixers=[ATTN] * 2, ffns=[GELU] * 2,
                                         heads=2, kv_heads=2, rope_theta=0.0, pos_emb=POS_LEARNED,
                                         max_context=24, T=19), 1213, False),
        # GQA 4 query heads on 2 KV heads, head dim 3 (odd: RoPE leaves the last element), RoPE and
        # learned positions, squared-ReLU MLP, tied; T = 5 < 8 (the row-dot path)
        ("torch_ref_gpt_relu2_gqa.mrfx", dict(base, tie=True, expansion=1.0, dim=12, ffn=24, mixers=[ATTN] * 2,
                                              ffns=[RELU2] * 2, heads=4, kv_heads=2, rope_theta=10000.0,
                                              pos_emb=POS_LEARNED, max_context=8, T=5), 1415, False),
        # MinGRU x attention hybrid: mingru, attn, gru, minlstm; SwiGLU; RoPE only; h0 for the
        # recurrent layers; expansion 1.5 (w_out); 2 heads on 1 KV head of 4; T = 9
        ("torch_ref_hybrid_h0.mrfx", dict(base, tie=False, mixers=[MINGRU, ATTN, GRU, MINLSTM], ffns=[SWIGLU] * 4,
                                          heads=2, kv_heads=1, rope_theta=10000.0, max_context=16, T=9),
                                     1617, True),
        # a stream going on at position 5 with a filled KV cache and h0: mingru, mingru, attn, gru
        # (hidden RMSNorm), per-layer FFNs swiglu/none/relu2/gelu, 2 heads on 1 KV head of 5 (odd),
        # RoPE base 100 (so that pair 1 turns visibly), learned positions, T = 6 < 8
        ("torch_ref_hybrid_pos0.mrfx", dict(base, tie=True, expansion=1.0, dim=10, mixers=[MINGRU, MINGRU, ATTN, GRU],
                                            ffns=[SWIGLU, FFN_NONE, RELU2, GELU], heads=2, kv_heads=1,
                                            rope_theta=100.0, pos_emb=POS_LEARNED, max_context=12, pos0=5, T=6,
                                            gru_hidden_norm=True), 1819, True),
        # RWKV-6: rwkv6*2 with the channel-mix FFN, 3 wkv heads of 4, LoRA ranks 3 and 5, untied;
        # T = 19 crosses the wkv backward's 16-step chunk
        ("torch_ref_rwkv6_cmix.mrfx", dict(base, tie=False, expansion=1.0, dim=12, ffn=24, mixers=[RWKV6] * 2,
                                           ffns=[CMIX] * 2, rwkv_head=4, mix_rank=3, decay_rank=5, T=19), 2021, False),
        # the GRU + RWKV family from a carried state: gru, rwkv6, mingru with FFNs rwkv-cmix, swiglu,
        # rwkv-cmix (every shift and wkv state and h0 given), 2 heads of 4, T = 9
        ("torch_ref_rwkv_mixed_h0.mrfx", dict(base, tie=True, expansion=1.0, mixers=[GRU, RWKV6, MINGRU],
                                              ffns=[CMIX, SWIGLU, CMIX], rwkv_head=4, mix_rank=2, decay_rank=3,
                                              gru_hidden_norm=True), 2223, True),
        # MoE: mingru, minlstm with the MoE FFN, 5 experts (4 routed), top-2 by router probabilities;
        # loss coefficients large enough to show in every router gradient; T = 9, untied
        ("torch_ref_moe_top2.mrfx", dict(base, tie=False, ffn=6, ffns=[MOE] * 2, experts=5, top_k=2,
                                         balance=0.3, zloss=0.05), 2425, False),
        # the Rust project's GRU + RWKV + MoE: two blocks of gru (hidden norm) then rwkv6, MoE FFN of
        # 4 experts top-1, from a carried state (h, shift and wkv states); a third block of mingru +
        # attention with a renormalised top-2 MoE is in test_blocks (step == parallel)
        ("torch_ref_grwkv_moe_h0.mrfx", dict(base, tie=True, expansion=1.0, ffn=6, mixers=[GRU, GRU], mixers_b=[RWKV6, RWKV6],
                                             ffns=[MOE] * 2, rwkv_head=4, mix_rank=2, decay_rank=3, experts=4, top_k=1,
                                             balance=0.3, zloss=0.05, gru_hidden_norm=True), 2627, True),
        # two mixers with attention second, and a renormalised top-2 MoE beside a SwiGLU layer
        ("torch_ref_two_mixers_moe.mrfx", dict(base, tie=True, expansion=1.5, ffn=6, mixers=[MINGRU, RWKV6],
                                               mixers_b=[ATTN, None], ffns=[MOE, SWIGLU], heads=2, kv_heads=1,
                                               rwkv_head=4, mix_rank=2, decay_rank=3, experts=5, top_k=2, renorm=True,
                                               balance=0.2, zloss=0.1, max_context=16), 2829, False),
    ]
    for fname, cfg, seed, with_state in cases:
        case = make_case(cfg, seed, with_state)
        n = write_fixture(os.path.join(outdir, fname), cfg, case)
        print(f"{fname}: {n} bytes, loss {case['loss']:.10f}, state={with_state}, tie={cfg['tie']}")


if __name__ == "__main__":
    main()
