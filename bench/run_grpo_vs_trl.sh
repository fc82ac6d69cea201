#!/usr/bin/env bash
# One GRPO iteration, Flywheel vs TRL's GRPOTrainer, side by side in one run: the stories260K
# model (and llama-10m, below), the prompts of recipes/stories260K/rlvr_constraint.yaml (reward 1 when the story
# mentions "dog"), 16 prompts x 8 responses of at most 48 new tokens at temperature 1, beta
# 0.01, one epoch of 2 minibatches (2 optimizer steps of 64 responses), AdamW at a constant
# 2e-3 with clipping at 1.0, the same threads. See bench/README.md.
#
#   bench/run_grpo_vs_trl.sh       # needs bench/install-peers.sh (transformers, trl)
#
# Environment (all optional): BUILD_DIR (default build), ITERATIONS (default 5: timed, after
# one warm-up iteration on each side), THREADS (default: all cores), MODELS (default
# "stories260K llama-10m"), SHARED (the shared folder holding data/hh-rlhf and data/gsm8k,
# default ../shared).
#
# llama-10m is bench/configs/llama-10m.json with random weights (transformers, seed 0) and a
# SentencePiece BPE tokenizer of its 8192 pieces trained here by Debian's spm_train on the
# shared HH-RLHF and GSM8K texts (byte fallback, unk 0, bos 1, eos 2, as Llama's): a model the
# size the issue names, whose iteration costs what a real one of its shape would (it learns
# little in a few iterations; the time is what is measured).
#
# Flywheel: `flywheel train` on the recipe with overrides (no held-out evaluation, no periodic
# checkpoints), ITERATIONS + 1 iterations; its metrics.jsonl gives each iteration's rollout_s,
# reward_s, reference_s, train_s (the iteration = their sum) and gen_tokens_per_sec, and the
# first iteration is dropped. TRL: bench/grpo_trl_bench.py (ITERATIONS + 1 generations, 2
# optimizer steps each, the first iteration dropped; its "reference" column is TRL's scoring
# pass after generation: the old policy's log-probs (TRL recomputes them, Flywheel takes them
# from the engine) and the reference's). Both sides stop a response at EOS; the table gives each
# side's mean response length and EOS rate (stories260K seldom ends a story in 48 tokens).
# Figures are medians over the timed iterations (so the parts need not add up to the total).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build}"
ITERATIONS="${ITERATIONS:-5}"
THREADS="${THREADS:-$(nproc)}"
PY="$ROOT/.venv/bin/python"
"$PY" -c "import trl" 2>/dev/null || { echo "error: run bench/install-peers.sh first" >&2; exit 2; }
command -v spm_encode >/dev/null || { echo "error: spm_encode (SentencePiece tools) missing" >&2; exit 2; }
command -v spm_train >/dev/null || { echo "error: spm_train (SentencePiece tools) missing" >&2; exit 2; }
[[ -f "$BUILD_DIR/build.ninja" ]] || { echo "error: configure $BUILD_DIR first" >&2; exit 2; }
cmake --build "$BUILD_DIR" --target flywheel >&2
BIN="$BUILD_DIR/bin"
WORK="$(mktemp -d /tmp/flywheel-grpo-vs-trl-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS="$THREADS"

RECIPE=recipes/stories260K/rlvr_constraint.yaml
PROMPTS=recipes/stories260K/data/constraint_train.jsonl
MODELS="${MODELS:-stories260K llama-10m}"

# The llama-10m directory: random weights and a tokenizer trained on the shared texts.
make_llama_10m() {  # dir
  local dir="$1" shared="${SHARED:-$ROOT/../shared}/data"
  "$PY" - "$dir/corpus.txt" "$shared" "$PROMPTS" <<'PY'
import glob, gzip, json, sys
corpus, shared, prompts = sys.argv[1], sys.argv[2], sys.argv[3]
hh = sorted(glob.glob(f"{shared}/hh-rlhf/*.jsonl.gz"))
gsm8k = sorted(glob.glob(f"{shared}/gsm8k/*.jsonl"))
if not hh or not gsm8k:
    sys.exit(f"error: no {shared}/hh-rlhf/*.jsonl.gz or {shared}/gsm8k/*.jsonl (set SHARED)")
with open(corpus, "w", encoding="utf-8") as out:
    for path in hh:
        for line in gzip.open(path, "rt", encoding="utf-8"):
            row = json.loads(line)
            for key in ("chosen", "rejected"):
                out.write(row[key].replace("\n", " ") + "\n")
    for path in gsm8k:
        for line in open(path, encoding="utf-8"):
            row = json.loads(line)
            out.write((row["question"] + " " + row["answer"]).replace("\n", " ") + "\n")
    for line in open(prompts, encoding="utf-8"):
        out.write(json.loads(line)["prompt"] + "\n")
PY
  spm_train --input="$dir/corpus.txt" --model_prefix="$dir/tok" --vocab_size=8192 \
    --model_type=bpe --byte_fallback=true --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
    --character_coverage=1.0 --input_sentence_size=200000 --shuffle_input_sentence=true \
    --random_seed=1 --num_threads="$THREADS" >"$dir/spm.log" 2>&1 ||
    { cat "$dir/spm.log" >&2; exit 1; }
  "$PY" - "$ROOT/bench/configs/llama-10m.json" "$dir/model" <<'PY'
import json, sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
LlamaForCausalLM(LlamaConfig(**json.load(open(sys.argv[1])))).save_pretrained(sys.argv[2])
PY
  cp "$dir/tok.model" "$dir/model/tokenizer.model"
}

for NAME in $MODELS; do
case "$NAME" in
  stories260K) MODEL=tests/data/stories260K ;;
  llama-10m) mkdir -p "$WORK/llama-10m"; make_llama_10m "$WORK/llama-10m"; MODEL="$WORK/llama-10m/model" ;;
  *) echo "error: MODELS takes stories260K and llama-10m, not $NAME" >&2; exit 2 ;;
esac
echo "== $NAME" >&2
rm -rf "$WORK/flywheel" "$WORK/trl"

echo "flywheel: $((ITERATIONS + 1)) iterations ($THREADS threads)" >&2
"$BIN/flywheel" train "$RECIPE" output_dir="$WORK/flywheel" rl.iterations=$((ITERATIONS + 1)) \
  model.path="$MODEL" data.train_file="$PROMPTS" data.eval_file= logging.eval_every_steps=0 \
  checkpoint.every_steps=0 rl.prompts_per_iteration=16 rl.group_size=8 rl.max_new_tokens=48 \
  rl.temperature=1.0 rl.top_p=1.0 rl.top_k=0 rl.beta=0.01 rl.epochs=1 rl.minibatches=2 \
  rl.clip=0.2 rl.advantage=standard rl.loss_aggregation=token_mean rl.no_eos_penalty=0 \
  training.micro_batch_size=64 training.learning_rate=2.0e-3 training.lr_scheduler=constant \
  training.max_grad_norm=1.0 >"$WORK/flywheel.log" 2>&1 ||
  { cat "$WORK/flywheel.log" >&2; exit 1; }

echo "trl: $((ITERATIONS + 1)) iterations ($THREADS threads)" >&2
"$PY" "$ROOT/bench/grpo_trl_bench.py" --model "$MODEL" --prompts "$PROMPTS" \
  --iterations "$ITERATIONS" --threads "$THREADS" --out "$WORK/trl" >"$WORK/trl.log" 2>&1 ||
  { cat "$WORK/trl.log" >&2; exit 1; }
tail -n 1 "$WORK/trl.log" >"$WORK/trl.json"

python3 - "$WORK/flywheel/metrics.jsonl" "$WORK/trl.json" "$THREADS" "$NAME" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"rollout_s"' in l]
t = json.loads(open(sys.argv[2]).read())
timed = rows[1:]
med = lambda k: statistics.median(r[k] for r in timed)
fw = {
    "iteration_s": statistics.median(
        r["rollout_s"] + r["reward_s"] + r["reference_s"] + r["train_s"] for r in timed),
    "rollout_s": med("rollout_s"), "reward_s": med("reward_s"),
    "logps_s": med("reference_s"), "train_s": med("train_s"),
    "gen_tokens_per_sec": med("gen_tokens_per_sec"),
    "response_length": statistics.mean(r["response_length"] for r in timed),
    "eos_rate": statistics.mean(r["eos_rate"] for r in timed),
    "reward": statistics.mean(r["reward"] for r in timed),
}
cols = [("iteration_s", "s / iteration", "{:.3f}"), ("rollout_s", "rollout s", "{:.3f}"),
        ("reward_s", "reward s", "{:.4f}"), ("logps_s", "reference s", "{:.3f}"),
        ("train_s", "train s", "{:.3f}"), ("gen_tokens_per_sec", "gen tok/s", "{:.0f}")]
print(f"{sys.argv[4]}: {len(timed)} timed iterations after 1 warm-up, {sys.argv[3]} threads; "
      f"TRL {t['trl']}, transformers {t['transformers']}, torch {t['torch']}")
print()
print("| | " + " | ".join(c[1] for c in cols) + " | response length | EOS rate | reward |")
print("|---" * (len(cols) + 4) + "|")
for name, d in [("Flywheel", fw), ("TRL", t)]:
    print(f"| {name} | " + " | ".join(f.format(d[k]) for k, _, f in cols) +
          f" | {d['response_length']:.1f} | {d['eos_rate']:.3f} | {d['reward']:.3f} |")
print("| TRL / Flywheel | " + " | ".join(f"{t[k] / fw[k]:.2f}" if fw[k] > 0 else "-"
                                      for k, _, _ in cols) + " | | | |")
print()
print("Flywheel s/iteration: " + ", ".join(
    f"{r['rollout_s'] + r['reward_s'] + r['reference_s'] + r['train_s']:.3f}" for r in rows) +
    " (first = warm-up)")
print("TRL s/iteration:      " + ", ".join(f"{x:.3f}" for x in t["all_iteration_s"]) +
      " (first = warm-up)")
PY
echo
done
