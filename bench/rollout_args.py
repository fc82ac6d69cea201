"""The flags every Python engine of the rollout benchmark takes (the same as
flywheel_bench_rollout's), and its prompt files (bench/rollout_prompts.py)."""

import argparse
import json


def parse_args(doc):
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--model", required=True)
    p.add_argument("--prompts", required=True)
    p.add_argument("--max-new-tokens", type=int, required=True)
    p.add_argument("--n", type=int, default=1)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--reps", type=int, default=3)
    return p.parse_args()


def read_prompts(path):
    """The prompts' token ids, one list per line."""
    with open(path) as f:
        return [json.loads(line)["prompt_ids"] for line in f]
