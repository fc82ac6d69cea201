#!/usr/bin/env python3
"""The SFT / DPO training step of bench/train_step_bench.cpp, written in plain PyTorch-Python.

    .venv/bin/python bench/train_step_bench.py --config PATH [--mode sft|dpo] [--batch B]
        [--seq T] [--steps N] [--warmup W] [--seed S] [--lr LR] [--profile TRACE.json]

Run it with the project's .venv/bin/python: its torch wheel is the LibTorch Flywheel links, so
both sides run the same kernels (MKL, oneDNN, the same fused attention). Prints one JSON line in
the same format as the C++ benchmark, with "impl": "pytorch".

The model is a from-scratch Llama (RMSNorm in float32, rotate-half RoPE, grouped-query
attention through F.scaled_dot_product_attention with an explicit boolean mask, as Flywheel
and Hugging Face's "sdpa" attention call it, SwiGLU, tied or untied head)
in idiomatic eager PyTorch; the step is forward, loss, backward, loss.item(),
torch.nn.utils.clip_grad_norm_(1.0), torch.optim.AdamW (weight decay 0), zero_grad(set_to_none).

Parameters are registered in the same order as Flywheel's modules and initialised with the
same generator calls as Flywheel's init_weights (normal(0, 0.02) for matrices, ones for norm
weights, from one CPU generator seeded with --seed); the batch and reference log-probs are
drawn the same way. So both programs train identical weights on identical data, and their
first-step losses agree to float32 rounding.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE_INDEX = -100


# ---- the model ----


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x, cos, sin):  # x [B, H, T, D], cos/sin [B, T, D]
    cos = cos.unsqueeze(1).to(x.dtype)
    sin = sin.unsqueeze(1).to(x.dtype)
    return x * cos + rotate_half(x) * sin


def repeat_kv(x, n_rep):  # [B, K, T, D] -> [B, K * n_rep, T, D]
    if n_rep == 1:
        return x
    b, k, t, d = x.shape
    return x[:, :, None].expand(b, k, n_rep, t, d).reshape(b, k * n_rep, t, d)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.h, self.k, self.d = c["heads"], c["kv_heads"], c["head_dim"]
        bias = c["qkv_bias"]
        self.q_proj = nn.Linear(c["hidden"], self.h * self.d, bias=bias)
        self.k_proj = nn.Linear(c["hidden"], self.k * self.d, bias=bias)
        self.v_proj = nn.Linear(c["hidden"], self.k * self.d, bias=bias)
        self.o_proj = nn.Linear(self.h * self.d, c["hidden"], bias=c["o_bias"])

    def forward(self, x, cos, sin, mask):  # mask [B, 1, T, T] bool, True = attend
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.h, self.d).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.k, self.d).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.k, self.d).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        k = repeat_kv(k, self.h // self.k)
        v = repeat_kv(v, self.h // self.k)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.h * self.d))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        bias = c["mlp_bias"]
        self.gate_proj = nn.Linear(c["hidden"], c["ffn"], bias=bias)
        self.up_proj = nn.Linear(c["hidden"], c["ffn"], bias=bias)
        self.down_proj = nn.Linear(c["ffn"], c["hidden"], bias=bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c["hidden"], c["eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden"], c["eps"])

    def forward(self, x, cos, sin, mask):
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab"], c["hidden"])
        self.layers = nn.ModuleList(DecoderLayer(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["hidden"], c["eps"])
        d = c["head_dim"]
        inv_freq = 1.0 / c["rope_theta"] ** (torch.arange(0, d, 2).float() / d)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, input_ids, position_ids, attention_mask):
        b, t = input_ids.shape
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        mask = causal[None, None] & attention_mask.bool()[:, None, None, :]
        mask = mask | torch.eye(t, dtype=torch.bool)[None, None]  # a query always sees itself
        freqs = position_ids.float()[..., None] * self.inv_freq[None, None]  # [B, T, D/2]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        h = self.embed_tokens(input_ids)
        for layer in self.layers:
            h = layer(h, cos, sin, mask)
        return self.norm(h)


class LlamaForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.model = LlamaModel(c)
        self.tied = c["tied"]
        if not self.tied:
            self.lm_head = nn.Linear(c["hidden"], c["vocab"], bias=False)

    def forward(self, input_ids, position_ids, attention_mask):
        h = self.model(input_ids, position_ids, attention_mask)
        if self.tied:
            return torch.matmul(h, self.model.embed_tokens.weight.t())
        return self.lm_head(h)


def load_config(path):
    with open(path) as f:
        j = json.load(f)
    heads = j["num_attention_heads"]
    return {
        "vocab": j["vocab_size"],
        "hidden": j["hidden_size"],
        "ffn": j["intermediate_size"],
        "layers": j["num_hidden_layers"],
        "heads": heads,
        "kv_heads": j.get("num_key_value_heads", heads),
        "head_dim": j.get("head_dim", j["hidden_size"] // heads),
        "eps": j.get("rms_norm_eps", 1e-6),
        "rope_theta": j.get("rope_theta", 10000.0),
        "tied": j.get("tie_word_embeddings", False),
        "qkv_bias": j.get("attention_bias", False),
        "o_bias": j.get("attention_bias", False),
        "mlp_bias": j.get("mlp_bias", False),
    }


@torch.no_grad()
def init_weights(model, std, seed):
    """Flywheel's init_weights: one generator, parameters in registration order."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if "norm" in name:
            p.fill_(1.0)
        elif name.endswith("bias"):
            p.zero_()
        else:
            p.copy_(torch.normal(0.0, std, p.shape, generator=gen))


# ---- losses (the same math as losses/logprobs.cpp, sft.cpp, preference.cpp) ----


def sequence_logps(logits, labels):
    """Summed next-token log-probs of labels[:, 1:] under logits[:, :-1], and their counts."""
    labels = labels[:, 1:]
    logits = logits[:, :-1]
    trained = labels != IGNORE_INDEX
    targets = labels.masked_fill(~trained, 0)
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    token_logps = (picked - torch.logsumexp(logits, dim=-1)).masked_fill(~trained, 0)
    return token_logps.sum(1), trained.sum(1)


def dpo_loss(pi_c, pi_r, ref_c, ref_r, beta):
    z = (pi_c - pi_r) - (ref_c - ref_r)
    return -F.logsigmoid(beta * z)


# ---- the benchmark ----


def model_name(path):
    if os.path.basename(path) == "config.json":
        return os.path.basename(os.path.dirname(os.path.abspath(path)))
    return os.path.splitext(os.path.basename(path))[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--mode", choices=["sft", "dpo"], default="sft")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--profile", help="after timing, profile one step into this Chrome trace")
    a = ap.parse_args()

    env = os.environ.get("OMP_NUM_THREADS", "")
    threads = int(env) if env else (os.cpu_count() or 1)
    torch.set_num_threads(threads)

    c = load_config(a.config)
    model = LlamaForCausalLM(c)
    init_weights(model, 0.02, a.seed)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    num_params = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    dpo = a.mode == "dpo"
    B, T = a.batch, a.seq
    rows = 2 * B if dpo else B
    gen = torch.Generator().manual_seed(a.seed)
    input_ids = torch.randint(0, c["vocab"], (rows, T), generator=gen, dtype=torch.int64)
    position_ids = torch.arange(T, dtype=torch.int64)[None].expand(rows, T).contiguous()
    attention_mask = torch.ones(rows, T, dtype=torch.int64)
    labels = input_ids.clone()
    labels[:, : T // 2] = IGNORE_INDEX
    loss_tokens = rows * (T - T // 2)
    if dpo:
        base = -(T - T // 2) * math.log(c["vocab"])
        noise = torch.randn(2, B, generator=gen, dtype=torch.float32)
        ref_c, ref_r = base + noise[0], base + noise[1]

    def step():
        logits = model(input_ids, position_ids, attention_mask)
        if not dpo:
            lp_sum, _ = sequence_logps(logits, labels)
            loss = -lp_sum.sum() / loss_tokens
        else:
            lp_sum, _ = sequence_logps(logits, labels)
            loss = dpo_loss(lp_sum[:B], lp_sum[B:], ref_c, ref_r, 0.1).sum() / B
        loss.backward()
        value = loss.item()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return value

    first_loss = last_loss = 0.0
    for i in range(a.warmup):
        v = step()
        if i == 0:
            first_loss = v
    ms = []
    start = time.perf_counter()
    for i in range(a.steps):
        t0 = time.perf_counter()
        last_loss = step()
        if a.warmup == 0 and i == 0:
            first_loss = last_loss
        ms.append(1000.0 * (time.perf_counter() - t0))
    total = time.perf_counter() - start

    if a.profile:
        with torch.autograd.profiler.profile() as prof:
            step()
        prof.export_chrome_trace(a.profile)

    tokens_per_step = rows * T
    print(json.dumps({
        "impl": "pytorch",
        "mode": a.mode,
        "model": model_name(a.config),
        "params": num_params,
        "batch": B,
        "seq": T,
        "tokens_per_step": tokens_per_step,
        "step_ms": 1000.0 * total / a.steps,
        "step_ms_median": statistics.median(ms),
        "step_ms_min": min(ms),
        "tokens_per_sec": tokens_per_step * a.steps / total,
        "threads": threads,
        "steps": a.steps,
        "warmup": a.warmup,
        "first_loss": first_loss,
        "last_loss": last_loss,
    }, sort_keys=True), flush=True)


if __name__ == "__main__":
    sys.exit(main())
