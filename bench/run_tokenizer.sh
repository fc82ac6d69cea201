#!/usr/bin/env bash
# Tokenizer encoding throughput, single thread, on ~10 MB of mixed text: Flywheel's tokenizer.json
# byte-level BPE (Llama 3's and Qwen3's files) against Hugging Face's `tokenizers` (Rust, through
# its Python package, encode_batch on one thread) on the same files, and Flywheel's SentencePiece
# backend (Mistral v0.3's tokenizer.model) on the same text. The ids must agree with Hugging
# Face's (a checksum over every id). See bench/README.md.
#
#   bash bench/run_tokenizer.sh      # needs bench/install-peers.sh (tokenizers)
#
# Environment (optional): BUILD_DIR (default build), REPS (default 3), SHARED (default ../shared).
# The text: the paragraphs of the shared data (HH-RLHF dialogues, GSM8K and MATH problems and
# solutions, IFEval prompts) and of the golden tokenizer cases (emoji, CJK, combining marks,
# code), repeated to 10 MB, one paragraph per line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build}"
REPS="${REPS:-3}"
SHARED="${SHARED:-$ROOT/../shared}"
PY="$ROOT/.venv/bin/python"
"$PY" -c "import tokenizers" 2>/dev/null || { echo "error: run bench/install-peers.sh first" >&2; exit 2; }
cmake --build "$BUILD_DIR" --target flywheel_bench_tokenizer >&2
WORK="$(mktemp -d /tmp/flywheel-tokenizer-bench-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
"$PY" - "$SHARED" "$WORK/text.txt" <<'PY'
import gzip, json, sys
shared, out = sys.argv[1], sys.argv[2]
docs = []
for name in ("helpful-base_test", "harmless-base_test"):
    with gzip.open(f"{shared}/data/hh-rlhf/{name}.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            docs.append(json.loads(line)["chosen"])
for path, keys in ((f"{shared}/data/gsm8k/train.jsonl", ("question", "answer")),
                   (f"{shared}/data/math500/test.jsonl", ("problem", "solution")),
                   (f"{shared}/data/ifeval/input_data.jsonl", ("prompt",))):
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            docs.extend(str(row[k]) for k in keys if k in row)
with open(f"{shared}/fixtures/tokenizers/encode_cases.jsonl", encoding="utf-8") as f:
    docs.extend(json.loads(line)["text"] for line in f)
paragraphs = [p for d in docs for p in d.split("\n") if p.strip()]
size, lines = 0, []
while size < 10_000_000:
    for p in paragraphs:
        lines.append(p)
        size += len(p.encode())
        if size >= 10_000_000:
            break
with open(out, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
print(f"{len(lines)} paragraphs, {size / 1e6:.1f} MB", file=sys.stderr)
PY
BENCH="$BUILD_DIR/bin/flywheel_bench_tokenizer"
run() {  # label command...
  printf '%s\t' "$1"
  shift
  "$@"
}
{
  for tok in llama3 qwen3; do
    run "flywheel $tok" "$BENCH" --tokenizer "$SHARED/tokenizers/$tok/tokenizer.json" \
      --text "$WORK/text.txt" --reps "$REPS"
    run "hf-tokenizers $tok" "$PY" bench/tokenizer_hf.py \
      --tokenizer "$SHARED/tokenizers/$tok/tokenizer.json" --text "$WORK/text.txt" --reps "$REPS"
  done
  run "flywheel sentencepiece mistral-v0.3" "$BENCH" \
    --tokenizer "$SHARED/tokenizers/mistral-v0.3/tokenizer.model" --text "$WORK/text.txt" \
    --reps "$REPS"
} | "$PY" -c '
import json, sys
rows = [(l.split("\t")[0], json.loads(l.split("\t")[1])) for l in sys.stdin if l.strip()]
print("| tokenizer | MB/s (1 thread) | tokens | seconds | ids as HF |")
print("|---|---|---|---|---|")
hf = {label.split()[-1]: r for label, r in rows if label.startswith("hf-")}
for label, r in rows:
    ref = hf.get(label.split()[-1])
    same = "-" if ref is None or label.startswith("hf-") else ("yes" if ref["checksum"] == r["checksum"] else "NO")
    print("| {} | {:.2f} | {:,} | {:.2f} | {} |".format(
        label, r["mb_per_s"], r["tokens"], r["seconds"], same))
'
