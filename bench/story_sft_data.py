"""The synthetic SFT records bench/run_memory.sh and bench/run_vs_trl.sh train on: 16 records of
a short prompt and a ~980-token completion in the stories260K vocabulary, so nearly every
token is scored and every row has about the same length.

    python3 bench/story_sft_data.py OUT.jsonl
"""

import json
import sys

WORDS = ("once upon a time there was a little girl named lily she liked to play in the park "
         "with her red ball and her dog max one day the sun was shining and the birds sang").split()

with open(sys.argv[1], "w") as f:
    for i in range(16):
        text = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(600))
        f.write(json.dumps({"prompt": "Tell me a story.", "completion": " " + text}) + "\n")
