#!/usr/bin/env python3
"""Training throughput of minrnn's default model in PyTorch on the CPU, to
compare with bench/bench_train.c side by side (run them one after the other,
never at the same time).

Model (as minrnn's mr_model_defaults(65)): V=65, d=128, 4 layers of
  x += MinGRU(rmsnorm(x) * norm1)           w_in [2d, d], no w_out (expansion 1)
  x += W2 (silu(a) * b), [a|b] = W13 (rmsnorm(x) * norm2)    SwiGLU 512
logits = (rmsnorm(x) * norm_f) @ embedding^T (tied); mean cross-entropy.
One step = forward + loss + backward + clip_grad_norm(1.0) + AdamW + zero_grad,
batch 32 x context 256, float32, torch.set_num_threads(2) by default.

MinGRU variants:
  seq    h_t = (1-z_t) h_{t-1} + z_t g(p_t), a Python loop over T (what one writes first)
  log    the parallel log-space (Heinsen) scan with torch.logcumsumexp, as in
         the minGRU PyTorch research code (lucidrains/minGRU-pytorch)
  minlstm / gru (optional): MinLSTM with the sequential loop; torch.nn.GRU layers
  gpt: minrnn's --layers attn*4 (4 heads, RoPE interleaved, causal scaled_dot_product_attention, or
       the same written out on torch < 2.0)
  rwkv6-seq / rwkv6-chunk: minrnn's --layers rwkv6 --ffn rwkv-cmix (head size 64, LoRA ranks 32 and 64,
       channel-mix hidden 448), the wkv as a Python loop over T, or in chunks of 16 steps (pairs
       within a chunk through exp(W_{t-1} - W_s) <= 0, the state carried between chunks)

Usage: /usr/bin/python3 bench/bench_train_torch.py [--threads 2] [--variants seq,log]
       [--batch 32] [--ctx 256] [--quick]
Prints "SKIP: torch not installed" and exits 0 when torch is missing.
"""
import argparse
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print("SKIP: torch not installed")
    sys.exit(0)


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w


def g(x):
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x):
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def heinsen_scan_log(log_coeffs, log_values):
    """h_t = a_t h_{t-1} + b_t with log a = log_coeffs, log b = log_values (h_{-1} = 0)."""
    a_star = log_coeffs.cumsum(dim=1)
    log_h0_plus_b_star = (log_values - a_star).logcumsumexp(dim=1)
    return (a_star + log_h0_plus_b_star).exp()


class MinGRU(nn.Module):
    def __init__(self, d, mode):
        super().__init__()
        self.w_in = nn.Linear(d, 2 * d, bias=False)
        self.mode = mode

    def forward(self, x):
        k, p = self.w_in(x).chunk(2, dim=-1)
        if self.mode == "log":
            log_z = -F.softplus(-k)          # log z
            log_coeffs = -F.softplus(k)      # log (1 - z)
            return heinsen_scan_log(log_coeffs, log_z + log_g(p))
        z = torch.sigmoid(k)
        a, b = 1 - z, z * g(p)
        h = torch.zeros_like(a[:, 0])
        out = []
        for t in range(a.shape[1]):
            h = a[:, t] * h + b[:, t]
            out.append(h)
        return torch.stack(out, dim=1)


class MinLSTM(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.w_in = nn.Linear(d, 3 * d, bias=False)

    def forward(self, x):
        kf, ki, p = self.w_in(x).chunk(3, dim=-1)
        f, i = torch.sigmoid(kf), torch.sigmoid(ki)
        s = f + i
        a, b = f / s, i / s * g(p)
        h = torch.zeros_like(a[:, 0])
        out = []
        for t in range(a.shape[1]):
            h = a[:, t] * h + b[:, t]
            out.append(h)
        return torch.stack(out, dim=1)


class GRU(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.gru = nn.GRU(d, d, batch_first=True)

    def forward(self, x):
        return self.gru(x)[0]


def rope(x, theta=10000.0):
    """x [B, H, T, hd]: interleaved pairs (x[2i], x[2i+1]) rotated by t * theta^(-2i/hd), as minrnn."""
    T, hd = x.shape[2], x.shape[3]
    f = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * f[None, :]
    c, s = torch.cos(ang).float(), torch.sin(ang).float()
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)


class Attention(nn.Module):
    """minrnn's attn mixer: w_qkv [(H + 2H) hd, d], RoPE, causal SDPA, w_o [d, H hd]."""
    def __init__(self, d, heads=4):
        super().__init__()
        self.h = heads
        self.w_qkv = nn.Linear(d, 3 * d, bias=False)
        self.w_o = nn.Linear(d, d, bias=False)

    def forward(self, x):
        B, T, d = x.shape
        q, k, v = self.w_qkv(x).view(B, T, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        q, k = rope(q), rope(k)
        if hasattr(F, "scaled_dot_product_attention"):
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:   # torch < 2.0 (Debian 12's 1.13): the same, written out
            att = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
            mask = torch.ones(T, T, dtype=torch.bool).triu(1)
            o = att.masked_fill(mask, float("-inf")).softmax(-1) @ v
        return self.w_o(o.transpose(1, 2).reshape(B, T, d))


def wkv_seq(r, k, v, w, u):
    """RWKV-6 wkv, a Python loop over T. r, k, v, w [B, T, H, N] (w: the decay exp(-exp(.))), u [H, N]."""
    B, T, H, N = r.shape
    S = r.new_zeros(B, H, N, N)
    ys = []
    for t in range(T):
        kv = k[:, t, :, :, None] * v[:, t, :, None, :]
        ys.append((r[:, t, :, :, None] * (u[None, :, :, None] * kv + S)).sum(2))
        S = w[:, t, :, :, None] * S + kv
    return torch.stack(ys, 1)


def wkv_chunk(r, k, v, lw, u, L=16):
    """The same in chunks of L steps: within a chunk, pairs s < t through the decay
    exp(W_{t-1} - W_s) (W the cumulative log decay, so the exponent is <= 0: causal pairs only),
    the chunk's start state carried between chunks. lw = log of the decay (<= 0)."""
    B, T, H, N = r.shape
    S = r.new_zeros(B, H, N, N)
    mask = torch.tril(torch.ones(L, L, dtype=torch.bool), -1)            # s < t
    ys = []
    for c0 in range(0, T, L):
        rc, kc, vc, lc = (a[:, c0:c0 + L].transpose(1, 2) for a in (r, k, v, lw))   # [B, H, l, N]
        l = rc.shape[2]
        W = lc.cumsum(2)                                                  # inclusive
        We = W - lc                                                       # exclusive: W_{t-1}
        ex = (We[:, :, :, None, :] - W[:, :, None, :, :])                 # [B, H, t, s, N]
        m = mask[:l, :l, None]
        ex = torch.where(m, ex, torch.full_like(ex, -float("inf")))
        A = (rc[:, :, :, None, :] * kc[:, :, None, :, :] * torch.exp(ex)).sum(-1)   # [B, H, t, s]
        y = A @ vc + ((rc * u[None, :, None, :] * kc).sum(-1, keepdim=True)) * vc
        y = y + (rc * torch.exp(We)) @ S
        S = torch.exp(W[:, :, -1:, :]).transpose(2, 3) * S + (kc * torch.exp(W[:, :, -1:, :] - W)).transpose(2, 3) @ vc
        ys.append(y.transpose(1, 2))
    return torch.cat(ys, 1)


class RWKV6Tmix(nn.Module):
    """minrnn's rwkv6 mixer (RWKV-LM's RWKV_Tmix_x060): token shift with the LoRA mixes, decay LoRA, wkv,
    group norm per head, gate, output."""
    def __init__(self, d, mode, head=64, r1=32, r2=64):
        super().__init__()
        self.d, self.H, self.N, self.r1, self.mode = d, d // head, head, r1, mode
        self.maa_x = nn.Parameter(torch.rand(d))
        self.maa = nn.Parameter(torch.rand(5, d))
        self.maa_w1 = nn.Parameter(torch.randn(d, 5 * r1) * 0.01)
        self.maa_w2 = nn.Parameter(torch.randn(5, r1, d) * 0.01)
        self.decay = nn.Parameter(torch.randn(d) - 2.0)
        self.decay_w1 = nn.Parameter(torch.randn(d, r2) * 0.01)
        self.decay_w2 = nn.Parameter(torch.randn(r2, d) * 0.01)
        self.bonus = nn.Parameter(torch.randn(self.H, head) * 0.1)
        self.r, self.k, self.v, self.g, self.o = (nn.Linear(d, d, bias=False) for _ in range(5))
        self.ln_x = nn.GroupNorm(self.H, d, eps=64e-5)

    def forward(self, x):
        B, T, C = x.shape
        xx = F.pad(x, (0, 0, 1, -1)) - x
        z = torch.tanh((x + xx * self.maa_x) @ self.maa_w1).view(B * T, 5, -1).transpose(0, 1)
        m = torch.bmm(z, self.maa_w2).view(5, B, T, C)
        xw, xk, xv, xr, xg = (x + xx * (self.maa[i] + m[i]) for i in range(5))
        r, k, v = self.r(xr), self.k(xk), self.v(xv)
        g = F.silu(self.g(xg))
        w = self.decay + torch.tanh(xw @ self.decay_w1) @ self.decay_w2
        shp = (B, T, self.H, self.N)
        if self.mode == "seq":
            y = wkv_seq(r.view(shp), k.view(shp), v.view(shp), torch.exp(-torch.exp(w)).view(shp), self.bonus)
        else:
            y = wkv_chunk(r.view(shp), k.view(shp), v.view(shp), -torch.exp(w).view(shp), self.bonus)
        y = self.ln_x(y.reshape(B * T, C)).view(B, T, C)
        return self.o(y * g)


class RWKV6Cmix(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.maa = nn.Parameter(torch.rand(2, d))
        self.k, self.v, self.r = nn.Linear(d, hidden, bias=False), nn.Linear(hidden, d, bias=False), nn.Linear(d, d, bias=False)

    def forward(self, x):
        xx = F.pad(x, (0, 0, 1, -1)) - x
        xk, xr = x + xx * self.maa[0], x + xx * self.maa[1]
        return torch.sigmoid(self.r(xr)) * self.v(torch.relu(self.k(xk)) ** 2)


class Block(nn.Module):
    def __init__(self, d, hidden, variant):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(d), RMSNorm(d)
        self.cmix = None
        if variant.startswith("rwkv6"):
            self.mixer = RWKV6Tmix(d, variant.split("-")[1])
            self.cmix = RWKV6Cmix(d, 448)
            return
        if variant in ("seq", "log"):
            self.mixer = MinGRU(d, variant)
        elif variant == "minlstm":
            self.mixer = MinLSTM(d)
        elif variant == "gpt":
            self.mixer = Attention(d)
        else:
            self.mixer = GRU(d)
        self.w13 = nn.Linear(d, 2 * hidden, bias=False)
        self.w2 = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        x = x + self.mixer(self.norm1(x))
        if self.cmix is not None:
            return x + self.cmix(self.norm2(x))
        a, b = self.w13(self.norm2(x)).chunk(2, dim=-1)
        return x + self.w2(F.silu(a) * b)


class LM(nn.Module):
    def __init__(self, vocab=65, d=128, layers=4, hidden=512, variant="seq"):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        nn.init.normal_(self.emb.weight, std=0.1)
        self.blocks = nn.ModuleList([Block(d, hidden, variant) for _ in range(layers)])
        self.norm_f = RMSNorm(d)

    def forward(self, idx, targets):
        x = self.emb(idx)
        for blk in self.blocks:
            x = blk(x)
        logits = self.norm_f(x) @ self.emb.weight.t()   # tied head
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def bench(variant, args):
    torch.manual_seed(0)
    model = LM(variant=variant)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    B, T = args.batch, args.ctx
    data = torch.randint(0, 65, (B, T + 1))
    x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()

    def step():
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    t0 = time.perf_counter()
    first = step()
    step()
    t_step = (time.perf_counter() - t0) / 2
    steps = max(1, int((0.5 if args.quick else 2.0) / t_step))
    windows = 2 if args.quick else 3
    times = []
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(steps):
            last = step()
        times.append((time.perf_counter() - t0) / steps)
    tps = B * T / statistics.median(times)
    nparams = sum(p.numel() for p in model.parameters())
    name = {"seq": "mingru-seq", "log": "mingru-log", "minlstm": "minlstm-seq", "gru": "nn.GRU", "gpt": "gpt-sdpa",
            "rwkv6-seq": "rwkv6-seq", "rwkv6-chunk": "rwkv6-chunk"}[variant]
    print(f"torch {name:12s} threads {torch.get_num_threads()}  B {B} T {T}  params {nparams}  "
          f"train {tps:8.0f} tokens/s  ({1e3 * B * T / tps:.1f} ms/step, {windows} x {steps} steps, "
          f"loss {first:.3f} -> {last:.3f})", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default="seq,log", help="comma list of seq, log, minlstm, gru, gpt, rwkv6-seq, rwkv6-chunk")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"bench_train_torch: torch {torch.__version__}, default model (d=128, 4 layers, SwiGLU 512, tied, V=65), "
          f"forward+backward+clip+AdamW, float32")
    for v in args.variants.split(","):
        bench(v.strip(), args)


if __name__ == "__main__":
    main()
