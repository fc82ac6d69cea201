"""The synthetic records the training benchmarks run on, in the stories260K vocabulary: 16
records of a short prompt and a ~980-token completion, so nearly every token is scored and every
row has about the same length. With --pairs, preference pairs of two such completions (the
rejected one is the same words from another starting point), for DPO.

    python3 bench/story_data.py OUT.jsonl [--pairs]
"""

import json
import sys

WORDS = ("once upon a time there was a little girl named lily she liked to play in the park "
         "with her red ball and her dog max one day the sun was shining and the birds sang").split()


def story(start):
    return " " + " ".join(WORDS[(start + k) % len(WORDS)] for k in range(600))


pairs = "--pairs" in sys.argv[2:]
with open(sys.argv[1], "w") as f:
    for i in range(16):
        if pairs:
            record = {"prompt": "Tell me a story.", "chosen": story(i), "rejected": story(i + 7)}
        else:
            record = {"prompt": "Tell me a story.", "completion": story(i)}
        f.write(json.dumps(record) + "\n")
