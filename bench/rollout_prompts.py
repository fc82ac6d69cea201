#!/usr/bin/env python3
"""Writes the rollout benchmark's prompt sets, the same for every engine compared.

    python3 bench/rollout_prompts.py --vocab V --out DIR [--seed S]

DIR/single.jsonl   one prompt: "Once upon a time" in stories260K's vocabulary (with BOS)
DIR/batch64.jsonl  64 prompts of 16 tokens
DIR/mixed.jsonl    256 prompts of 4 to 200 tokens (uniform)

Each line is {"prompt_ids": [...]}: BOS (1), then ids drawn uniformly from [3, V) with a
seeded generator, so the files depend on nothing but V and the seed.
"""

import argparse
import json
import os
import random


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)

    def write(name, lengths):
        with open(os.path.join(a.out, name), "w") as f:
            for n in lengths:
                ids = [1] + [rng.randrange(3, a.vocab) for _ in range(n - 1)]
                f.write(json.dumps({"prompt_ids": ids}) + "\n")

    with open(os.path.join(a.out, "single.jsonl"), "w") as f:
        f.write(json.dumps({"prompt_ids": [1, 403, 407, 261, 378]}) + "\n")
    write("batch64.jsonl", [16] * 64)
    write("mixed.jsonl", [rng.randint(4, 200) for _ in range(256)])


if __name__ == "__main__":
    main()
