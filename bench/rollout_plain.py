#!/usr/bin/env python3
"""A plain PyTorch-Python KV-cache generation loop on the rollout benchmark's prompts: what a
researcher writes without an engine. Same flags and JSON line as flywheel_bench_rollout.

    .venv/bin/python bench/rollout_plain.py --model DIR --prompts FILE --max-new-tokens N
        [--n K] [--temperature T] [--reps R]

Run with the project's .venv/bin/python: the same torch wheel Flywheel links, so the same
kernels. The model is a from-scratch Llama reading the Hugging Face checkpoint (RMSNorm in
float32, rotate-half RoPE, grouped-query attention through F.scaled_dot_product_attention with
enable_gqa, SwiGLU, tied or untied head). Every prompt is repeated K times, left-padded into
one batch, prefilled once, then decoded one token per step for all rows in lockstep into a
preallocated cache [rows, K, P + N, D], sampling with torch.multinomial at temperature T
(argmax at 0). One untimed run, then R timed; prints the median.
"""

import json
import os
import statistics
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from rollout_args import parse_args, read_prompts


class Llama:
    def __init__(self, model_dir):
        c = json.load(open(os.path.join(model_dir, "config.json")))
        self.w = load_file(os.path.join(model_dir, "model.safetensors"))
        self.layers = c["num_hidden_layers"]
        self.h = c["num_attention_heads"]
        self.k = c.get("num_key_value_heads", self.h)
        self.d = c.get("head_dim") or c["hidden_size"] // self.h
        self.eps = c["rms_norm_eps"]
        theta = c.get("rope_theta", 10000.0)
        self.inv_freq = 1.0 / theta ** (torch.arange(0, self.d, 2).float() / self.d)
        self.head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])

    def norm(self, x, weight):
        h = x.float()
        return weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)

    def rope(self, x, cos, sin):  # x [B, H, T, D]; cos/sin [B, 1, T, D]
        half = x.shape[-1] // 2
        return x * cos + torch.cat((-x[..., half:], x[..., :half]), -1) * sin

    def forward(self, ids, pos, cache_k, cache_v, start, mask):
        """ids/pos [B, T]; writes the cache at [start, start + T); mask [B, 1, T, start + T]."""
        b, t = ids.shape
        freqs = pos.float().unsqueeze(-1) * self.inv_freq
        emb = torch.cat((freqs, freqs), -1).unsqueeze(1)
        cos, sin = emb.cos(), emb.sin()
        x = F.embedding(ids, self.w["model.embed_tokens.weight"])
        for i in range(self.layers):
            p = f"model.layers.{i}."
            h = self.norm(x, self.w[p + "input_layernorm.weight"])
            q = F.linear(h, self.w[p + "self_attn.q_proj.weight"]).view(b, t, self.h, self.d)
            k = F.linear(h, self.w[p + "self_attn.k_proj.weight"]).view(b, t, self.k, self.d)
            v = F.linear(h, self.w[p + "self_attn.v_proj.weight"]).view(b, t, self.k, self.d)
            q = self.rope(q.transpose(1, 2), cos, sin)
            cache_k[i][:, :, start:start + t] = self.rope(k.transpose(1, 2), cos, sin)
            cache_v[i][:, :, start:start + t] = v.transpose(1, 2)
            o = F.scaled_dot_product_attention(q, cache_k[i][:, :, :start + t],
                                               cache_v[i][:, :, :start + t], attn_mask=mask,
                                               enable_gqa=self.h != self.k)
            x = x + F.linear(o.transpose(1, 2).reshape(b, t, -1),
                             self.w[p + "self_attn.o_proj.weight"])
            h = self.norm(x, self.w[p + "post_attention_layernorm.weight"])
            g = F.silu(F.linear(h, self.w[p + "mlp.gate_proj.weight"]))
            u = F.linear(h, self.w[p + "mlp.up_proj.weight"])
            x = x + F.linear(g * u, self.w[p + "mlp.down_proj.weight"])
        return F.linear(self.norm(x[:, -1], self.w["model.norm.weight"]), self.head)  # [B, V]


def generate(model, prompts, n, new_tokens, temperature, generator):
    rows = [p for p in prompts for _ in range(n)]
    b, longest = len(rows), max(len(p) for p in rows)
    total = longest + new_tokens
    ids = torch.zeros(b, longest, dtype=torch.long)
    valid = torch.zeros(b, total, dtype=torch.bool)  # which cache positions hold real tokens
    for i, p in enumerate(rows):
        ids[i, longest - len(p):] = torch.tensor(p)
        valid[i, longest - len(p):] = True
    valid[:, longest:] = True  # generated tokens
    pos = (valid[:, :longest].long().cumsum(1) - 1).clamp_min(0)
    shape = (b, model.k, total, model.d)
    cache_k = [torch.zeros(shape) for _ in range(model.layers)]
    cache_v = [torch.zeros(shape) for _ in range(model.layers)]
    causal = torch.ones(longest, longest, dtype=torch.bool).tril()
    mask = (causal & valid[:, None, :longest]) | torch.eye(longest, dtype=torch.bool)
    logits = model.forward(ids, pos, cache_k, cache_v, 0, mask.unsqueeze(1))
    out = []
    last = pos[:, -1]
    for step in range(new_tokens):
        if temperature > 0:
            token = torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator)
        else:
            token = logits.argmax(-1, keepdim=True)
        out.append(token)
        if step + 1 == new_tokens:
            break
        at = longest + step
        last = last + 1
        logits = model.forward(token, last.view(b, 1), cache_k, cache_v, at,
                               valid[:, None, None, :at + 1])
    return torch.cat(out, 1)  # [rows, N]


def main():
    a = parse_args(__doc__)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    model = Llama(a.model)
    prompts = read_prompts(a.prompts)
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        out = generate(model, prompts, a.n, a.max_new_tokens, a.temperature, generator)
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            out = generate(model, prompts, a.n, a.max_new_tokens, a.temperature, generator)
            times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    print(json.dumps({"impl": "plain-python", "threads": torch.get_num_threads(),
                      "sequences": out.shape[0], "tokens": out.numel(), "seconds": s,
                      "tokens_per_s": out.numel() / s, "ids": out[0].tolist()}))


if __name__ == "__main__":
    main()
