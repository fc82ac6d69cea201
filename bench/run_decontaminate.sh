#!/usr/bin/env bash
# `flywheel decontaminate` on a million synthetic training rows with planted contamination:
#   1. data      ROWS training rows ({"messages": [user, assistant]}, 100-300 words of Zipf-
#                distributed synthetic words, ~1.5 KB a row) and three eval sets of 400
#                instances ({"prompt"}, 20-150 words). 60 instances per set are planted into
#                random training rows' user turns as one contiguous run of 100%, 70%, 30% or 0%
#                of their tokens (15 each; "0%" plants 7 tokens, shorter than an 8-gram), so
#                with threshold 0.5 exactly the 100% and 70% plants must be found: 30 per set.
#                The truth goes to planted.json.
#   2. run       flywheel decontaminate --json --out, timed (wall and CPU, peak memory).
#   3. check     found vs planted: every expected instance found, nothing else, and --out
#                dropped exactly the flagged rows.
# Usage: bash bench/run_decontaminate.sh     (env: OUT, FLYWHEEL, ROWS, THREADS, PYTHON)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-/tmp/decontaminate}"
FLYWHEEL="${FLYWHEEL:-$ROOT/build/bin/flywheel}"
ROWS="${ROWS:-1000000}"
THREADS="${THREADS:-$(nproc)}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
mkdir -p "$OUT"
[[ -x "$FLYWHEEL" ]] || { echo "run_decontaminate: $FLYWHEEL not built" >&2; exit 1; }

if [[ ! -s "$OUT/train.jsonl" || "$(cat "$OUT/rows" 2>/dev/null)" != "$ROWS" ]]; then
  echo "== generating $ROWS training rows and 3 eval sets in $OUT"
  "$PYTHON" - "$OUT" "$ROWS" <<'PY'
import json, sys
import numpy as np

out, rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1234)
# 50k synthetic words, Zipf-like frequencies (exponent 1.1), as in natural text.
letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
vocab = ["".join(rng.choice(letters, rng.integers(2, 10))) for _ in range(50000)]
prob = 1.0 / np.arange(1, len(vocab) + 1) ** 1.1
prob /= prob.sum()

def words(n):
    return [vocab[i] for i in rng.choice(len(vocab), n, p=prob)]

def sentence_text(ws):
    # Punctuation every ~12 words and capitals, which the analyzer drops / lowercases.
    out = []
    for k, w in enumerate(ws):
        out.append(w.capitalize() if k % 12 == 0 else w)
        if k % 12 == 11:
            out[-1] += "."
    return " ".join(out)

evals = []
for s in range(3):
    insts = [words(int(rng.integers(20, 151))) for _ in range(400)]
    evals.append(insts)
    with open(f"{out}/eval{s}.jsonl", "w") as f:
        for ws in insts:
            f.write(json.dumps({"prompt": sentence_text(ws)}) + "\n")

# Plants: per set, instances 0-59: 15 each at 100%, 70%, 30%, and 7 tokens ("0%").
plants = {}  # training row -> (set, eval line, tokens)
truth = []
hosts = rng.choice(rows, 3 * 60, replace=False)
h = 0
for s, insts in enumerate(evals):
    for k in range(60):
        kind = ["100", "70", "30", "0"][k // 15]
        ws = insts[k]
        take = {"100": len(ws), "70": int(np.ceil(0.7 * len(ws))),
                "30": int(0.3 * len(ws)), "0": 7}[kind]
        begin = int(rng.integers(0, len(ws) - take + 1))
        row = int(hosts[h]); h += 1
        plants[row] = ws[begin:begin + take]
        truth.append({"set": s, "eval_line": k + 1, "train_line": row + 1, "kind": kind,
                      "expected": kind in ("100", "70")})

with open(f"{out}/train.jsonl", "w") as f:
    batch = 20000
    for start in range(0, rows, batch):
        n = min(batch, rows - start)
        lengths = rng.integers(100, 301, n)
        ids = rng.choice(len(vocab), int(lengths.sum()), p=prob)
        pos = 0
        lines = []
        for k in range(n):
            ws = [vocab[i] for i in ids[pos:pos + lengths[k]]]
            pos += lengths[k]
            split = len(ws) // 3
            user, answer = ws[:split], ws[split:]
            row = start + k
            if row in plants:
                cut = int(rng.integers(0, len(user) + 1))
                user = user[:cut] + plants[row] + user[cut:]
            lines.append(json.dumps({"messages": [
                {"role": "user", "content": sentence_text(user)},
                {"role": "assistant", "content": sentence_text(answer)}]}))
        f.write("\n".join(lines) + "\n")
with open(f"{out}/planted.json", "w") as f:
    json.dump(truth, f)
with open(f"{out}/rows", "w") as f:
    f.write(str(rows))
PY
fi
ls -l "$OUT/train.jsonl" | awk '{printf "== training file: %.2f GB\n", $5 / 1e9}'

echo "== flywheel decontaminate, $THREADS threads"
/usr/bin/time -v "$FLYWHEEL" decontaminate --train "$OUT/train.jsonl" \
  --eval "$OUT/eval0.jsonl" --eval "$OUT/eval1.jsonl" --eval "$OUT/eval2.jsonl" \
  --threads "$THREADS" --out "$OUT/clean.jsonl" --json > "$OUT/report.json" 2> "$OUT/time.txt"
grep -E "Elapsed|User time|System time|Maximum resident" "$OUT/time.txt"

"$PYTHON" - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
report = json.load(open(f"{out}/report.json"))
truth = json.load(open(f"{out}/planted.json"))
print(f"{report['training_rows']} rows in {report['seconds']:.2f} s "
      f"({report['training_rows'] / report['seconds']:.0f} rows/s)")
ok = True
for s, es in enumerate(report["eval_sets"]):
    found = {(p["eval_line"], p["train_line"]) for p in es["pairs"]}
    expected = {(t["eval_line"], t["train_line"]) for t in truth if t["set"] == s and t["expected"]}
    missed, extra = expected - found, found - expected
    print(f"{es['path']}: {es['overlapping']}/{es['instances']} overlapping "
          f"({100 * es['fraction']:.2f}%), expected {len(expected)}; "
          f"missed {sorted(missed)}, unexpected {sorted(extra)}")
    ok = ok and not missed and not extra
flagged = {p["train_line"] for es in report["eval_sets"] for p in es["pairs"]}
kept = report["out"]["lines_written"]
print(f"--out kept {kept} lines, dropped {report['training_rows'] - kept} "
      f"(flagged {len(flagged)})")
ok = ok and kept == report["training_rows"] - len(flagged)
print("planted overlaps: " + ("all found, none extra" if ok else "MISMATCH"))
sys.exit(0 if ok else 1)
PY
