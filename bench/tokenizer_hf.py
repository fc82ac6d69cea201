"""Hugging Face `tokenizers` (Rust) encoding throughput, single thread, on the same text file as
flywheel_bench_tokenizer: one paragraph per line, encoded without special tokens by encode_batch
on one thread (RAYON_NUM_THREADS=1); one untimed pass, then --reps timed ones (the checksum is
taken outside the timing). Prints one JSON line like the C++ benchmark (same checksum)."""
import argparse
import json
import os
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--tokenizer", required=True)
p.add_argument("--text", required=True)
p.add_argument("--reps", type=int, default=3)
a = p.parse_args()
tok = Tokenizer.from_file(a.tokenizer)
with open(a.text, encoding="utf-8", newline="") as f:  # "\r" stays in its line, as in C++
    lines = f.read().split("\n")
if lines and lines[-1] == "":
    lines.pop()
size = sum(len(line.encode()) for line in lines)
times = []
for r in range(a.reps + 1):
    start = time.perf_counter()
    encodings = tok.encode_batch(lines, add_special_tokens=False)
    if r:
        times.append(time.perf_counter() - start)
tokens, checksum = 0, 0
for e in encodings:
    for i in e.ids:
        checksum = (checksum * 1000003 + i) % (1 << 64)
        tokens += 1
times.sort()
median = times[len(times) // 2]
print(json.dumps({"seconds": median, "bytes": size, "tokens": tokens,
                  "mb_per_s": size / 1e6 / median, "checksum": str(checksum)}))
