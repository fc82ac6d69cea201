#!/usr/bin/env python3
"""Greedy decoding with Hugging Face transformers, the peer of `flywheel generate`.

    .venv/bin/python bench/decode_hf.py --model DIR --prompt-ids 1,2,3 --new-tokens N [--reps R]

Loads DIR with LlamaForCausalLM (float32, eager PyTorch, the default "sdpa" attention), runs
one untimed generate() and then R timed ones of exactly N new tokens (greedy, eos ignored,
KV cache on), and prints one JSON line: the median seconds per generate() call, per-token
milliseconds, and the generated ids so the caller can check they equal Flywheel's. Threads
come from OMP_NUM_THREADS, as for Flywheel.
"""

import argparse
import json
import os
import statistics
import time

import torch
from transformers import LlamaForCausalLM


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--prompt-ids", required=True)
    p.add_argument("--new-tokens", type=int, required=True)
    p.add_argument("--reps", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    model = LlamaForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32).eval()
    ids = torch.tensor([[int(t) for t in a.prompt_ids.split(",")]])
    kwargs = dict(max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, do_sample=False,
                  use_cache=True, pad_token_id=0)
    with torch.inference_mode():
        out = model.generate(ids, **kwargs)
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            out = model.generate(ids, **kwargs)
            times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    print(json.dumps({"impl": "transformers", "seconds": s,
                      "ms_per_token": 1000.0 * s / a.new_tokens,
                      "threads": torch.get_num_threads(),
                      "ids": out[0, ids.shape[1]:].tolist()}))


if __name__ == "__main__":
    main()
