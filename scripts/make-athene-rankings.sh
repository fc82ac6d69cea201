#!/usr/bin/env bash
# Writes recipes/athene/data/rankings_7wise_{train,eval}.jsonl.gz: seven-wise comparisons as
# Athene's annotators made them, on stories260K. Seven stories sampled by the real model for each
# prompt of recipes/stories260K/data/constraint_{train,eval}.jsonl (4 and 2 seeds, temperature
# 1.0, 48 tokens), ranked by a stand-in annotator who prefers happy stories: each cheerful word
# (happy, smile, love, fun, nice, kind, laugh, friend, ...) counts +1, each sad one (sad, cry,
# angry, scared, hurt, ...) -1, highest first; stories it cannot tell apart keep their sampled
# order. Also writes the prompts of recipes/athene/ppo_rm.yaml (the constraint prompts without
# their verifier).
#   bash scripts/make-athene-rankings.sh   (after scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
generate() {  # split seed
  ./build/bin/flywheel generate --model tests/data/stories260K \
    --prompts "recipes/stories260K/data/constraint_$1.jsonl" --out "$tmp/$1-$2.jsonl" \
    --n 7 --temperature 1.0 --max-new-tokens 48 --seed "$2"
}
for seed in 1 2 3 4; do generate train "$seed"; done
for seed in 5 6; do generate eval "$seed"; done
python3 - "$tmp" <<'PY'
import gzip, json, re, sys
GOOD = r"happy|happily|smiled?|smiles|smiling|love[ds]?|loving|fun|nice|kind|laugh(ed|s)?|" \
       r"friends?|thank(s|ed)?|good|great|glad|joy|excited|proud"
BAD = r"sad|sadly|cr(y|ied|ies|ying)|angry|mad|scared|afraid|hurt|bad|upset|mean|lonely"
def score(text):
    words = re.findall(r"[a-z]+", text.lower())
    return sum(1 for w in words if re.fullmatch(GOOD, w)) - \
        sum(1 for w in words if re.fullmatch(BAD, w))
for split, seeds in (("train", (1, 2, 3, 4)), ("eval", (5, 6))):
    rows = []
    for seed in seeds:
        with open(f"{sys.argv[1]}/{split}-{seed}.jsonl") as f:
            for line in f:
                d = json.loads(line)
                responses = [o["text"] for o in d["outputs"]]
                scores = [score(r) for r in responses]
                ranking = sorted(range(len(responses)), key=lambda i: (-scores[i], i))
                rows.append({"prompt": d["prompt"], "responses": responses, "ranking": ranking})
    path = f"recipes/athene/data/rankings_7wise_{split}.jsonl.gz"
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        for r in rows:
            f.write((json.dumps(r) + "\n").encode())
    print(f"{path}: {len(rows)} seven-wise rankings")
for split in ("train", "eval"):
    src = f"recipes/stories260K/data/constraint_{split}.jsonl"
    with open(src) as f, open(f"recipes/athene/data/prompts_{split}.jsonl", "w") as out:
        for line in f:
            out.write(json.dumps({"prompt": json.loads(line)["prompt"]}) + "\n")
PY
