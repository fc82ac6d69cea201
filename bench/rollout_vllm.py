#!/usr/bin/env python3
"""vLLM's offline LLM.generate() on the rollout benchmark's prompts (the peer of
flywheel_bench_rollout; same flags, same JSON line). Runs in vLLM's own environment
(bench/install-vllm.sh): its CPU build pins a torch of its own.

    .venv-vllm/bin/python bench/rollout_vllm.py --model DIR --prompts FILE --max-new-tokens N
        [--n K] [--temperature T] [--reps R]

Prompts go in as token ids (no tokenizer), all in one generate() call; exactly N new tokens
each (min_tokens = max_tokens, ignore_eos), K samples per prompt, plain sampling at
temperature T (top_k and top_p off) or greedy at T = 0, float32. vLLM's CPU threads and KV
space come from VLLM_CPU_OMP_THREADS_BIND and VLLM_CPU_KVCACHE_SPACE, which
bench/run_rollout.sh sets to the cores the others use. One untimed call, then R timed.
"""

import json
import statistics
import time

from vllm import LLM, SamplingParams

from rollout_args import parse_args, read_prompts


def main():
    a = parse_args(__doc__)
    prompts = [{"prompt_token_ids": ids} for ids in read_prompts(a.prompts)]
    longest = max(len(x["prompt_token_ids"]) for x in prompts)
    llm = LLM(model=a.model, dtype="float32", skip_tokenizer_init=True, seed=0,
              max_model_len=longest + a.max_new_tokens)
    params = SamplingParams(n=a.n, temperature=a.temperature, top_k=0, top_p=1.0,
                            max_tokens=a.max_new_tokens, min_tokens=a.max_new_tokens,
                            ignore_eos=True, detokenize=False)
    llm.generate(prompts, params, use_tqdm=False)
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        out = llm.generate(prompts, params, use_tqdm=False)
        times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    tokens = sum(len(c.token_ids) for r in out for c in r.outputs)
    print(json.dumps({"impl": "vllm", "sequences": sum(len(r.outputs) for r in out),
                      "tokens": tokens, "seconds": s, "tokens_per_s": tokens / s,
                      "ids": list(out[0].outputs[0].token_ids)}))


if __name__ == "__main__":
    main()
