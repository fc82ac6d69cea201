#!/usr/bin/env python3
"""Writes a Hugging Face Llama checkpoint in llama2.c's formats, for the decode benchmark's
llama2.c row (bench/run_rollout.sh). Written from the format's description: a header of seven
int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative
vocab_size means the head is not tied), then float32 tensors layer-major by kind (all
attention norms, all wq, ... all w3, the final norm, two unused RoPE tables, the head when
untied); and the tokenizer as max_token_length, then per piece a float score, an int32 length
and its bytes.

    .venv/bin/python bench/llama2c_export.py MODEL_DIR OUT_DIR

Hugging Face stores q/k projections with each head's rotary pairs split into halves
(rotate-half); llama2.c rotates adjacent pairs, so those rows are interleaved back. Pieces and
scores come from Debian's `spm_export_vocab`, so nothing beyond the project's own
dependencies is needed.
"""

import json
import os
import struct
import subprocess
import sys

import torch
from safetensors.torch import load_file


def interleave_rotary(w, heads):
    """[heads * d, in] rows from halves (x0..x_{d/2-1}, y0..) to pairs (x0, y0, x1, y1, ...)."""
    out, cols = w.shape
    d = out // heads
    return w.view(heads, 2, d // 2, cols).transpose(1, 2).reshape(out, cols)


def write_model(model_dir, path):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w = load_file(os.path.join(model_dir, "model.safetensors"))
    dim, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", heads)
    vocab, seq = cfg["vocab_size"], cfg["max_position_embeddings"]
    tied = "lm_head.weight" not in w or cfg.get("tie_word_embeddings", False)
    header = (dim, cfg["intermediate_size"], layers, heads, kv_heads,
              vocab if tied else -vocab, seq)

    def layer(name):
        return [w[f"model.layers.{i}.{name}"] for i in range(layers)]

    tensors = [w["model.embed_tokens.weight"]]
    tensors += layer("input_layernorm.weight")
    tensors += [interleave_rotary(t, heads) for t in layer("self_attn.q_proj.weight")]
    tensors += [interleave_rotary(t, kv_heads) for t in layer("self_attn.k_proj.weight")]
    tensors += layer("self_attn.v_proj.weight") + layer("self_attn.o_proj.weight")
    tensors += layer("post_attention_layernorm.weight")
    tensors += layer("mlp.gate_proj.weight") + layer("mlp.down_proj.weight")
    tensors += layer("mlp.up_proj.weight")
    tensors += [w["model.norm.weight"]]
    tensors += [torch.zeros(seq, dim // heads // 2)] * 2  # run.c computes RoPE itself
    if not tied:
        tensors.append(w["lm_head.weight"])
    with open(path, "wb") as f:
        f.write(struct.pack("7i", *header))
        for t in tensors:
            f.write(t.to(torch.float32).contiguous().numpy().tobytes())


def write_tokenizer(model_dir, path):
    vocab = subprocess.run(
        ["spm_export_vocab", f"--model={os.path.join(model_dir, 'tokenizer.model')}",
         "--output_format=vocab"], check=True, capture_output=True, text=True).stdout
    pieces = []
    for i, line in enumerate(vocab.splitlines()):
        piece, score = line.split("\t")
        # llama2.c prints BOS/EOS as marked lines and pieces with spaces for U+2581.
        text = {1: "\n<s>\n", 2: "\n</s>\n"}.get(i, piece.replace("\u2581", " "))
        pieces.append((float(score), text.encode("utf-8")))
    with open(path, "wb") as f:
        f.write(struct.pack("I", max(len(b) for _, b in pieces)))
        for score, b in pieces:
            f.write(struct.pack("fI", score, len(b)))
            f.write(b)


def main():
    model_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    write_model(model_dir, os.path.join(out_dir, "model.bin"))
    write_tokenizer(model_dir, os.path.join(out_dir, "tokenizer.bin"))


if __name__ == "__main__":
    main()
