#!/usr/bin/env python3
"""Hugging Face transformers' generate() on the rollout benchmark's prompts (the peer of
flywheel_bench_rollout; same flags, same JSON line).

    .venv/bin/python bench/rollout_hf.py --model DIR --prompts FILE --max-new-tokens N
        [--n K] [--temperature T] [--reps R]

All prompts go into one generate() call, left-padded (as transformers batches), with
num_return_sequences = K; exactly N new tokens each (min_new_tokens = max_new_tokens), sampled
from the plain distribution at temperature T (top_k 0, top_p 1) or greedy at T = 0, KV cache
on, float32, the default "sdpa" attention. One untimed call, then R timed; prints the median.
Threads come from OMP_NUM_THREADS, as for Flywheel.
"""

import json
import os
import statistics
import time

import torch
from transformers import LlamaForCausalLM

from rollout_args import parse_args, read_prompts


def main():
    a = parse_args(__doc__)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    prompts = read_prompts(a.prompts)
    longest = max(len(x) for x in prompts)
    ids = torch.zeros(len(prompts), longest, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, x in enumerate(prompts):
        ids[i, longest - len(x):] = torch.tensor(x)
        mask[i, longest - len(x):] = 1
    sample = a.temperature > 0
    kwargs = dict(attention_mask=mask, max_new_tokens=a.max_new_tokens,
                  min_new_tokens=a.max_new_tokens, do_sample=sample, use_cache=True,
                  num_return_sequences=a.n, pad_token_id=0)
    if sample:
        kwargs.update(temperature=a.temperature, top_k=0, top_p=1.0)
    with torch.inference_mode():
        out = model.generate(ids, **kwargs)
        times = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            out = model.generate(ids, **kwargs)
            times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    tokens = out.shape[0] * a.max_new_tokens
    print(json.dumps({"impl": "transformers", "threads": torch.get_num_threads(),
                      "sequences": out.shape[0], "tokens": tokens, "seconds": s,
                      "tokens_per_s": tokens / s, "ids": out[0, longest:].tolist()}))


if __name__ == "__main__":
    main()
