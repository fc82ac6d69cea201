#!/usr/bin/env bash
# One GRPO iteration, Flywheel vs TRL's GRPOTrainer, side by side in one run: the stories260K
# model, the prompts of recipes/stories260K/rlvr_constraint.yaml (reward 1 when the story
# mentions "dog"), 16 prompts x 8 responses of at most 48 new tokens at temperature 1, beta
# 0.01, one epoch of 2 minibatches (2 optimizer steps of 64 responses), AdamW at a constant
# 2e-3 with clipping at 1.0, the same threads. See bench/README.md.
#
#   bench/run_grpo_vs_trl.sh       # needs bench/install-peers.sh (transformers, trl)
#
# Environment (all optional): BUILD_DIR (default build), ITERATIONS (default 5: timed, after
# one warm-up iteration on each side), THREADS (default: all cores).
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
[[ -f "$BUILD_DIR/build.ninja" ]] || { echo "error: configure $BUILD_DIR first" >&2; exit 2; }
cmake --build "$BUILD_DIR" --target flywheel >&2
BIN="$BUILD_DIR/bin"
WORK="$(mktemp -d /tmp/flywheel-grpo-vs-trl-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS="$THREADS"

RECIPE=recipes/stories260K/rlvr_constraint.yaml
PROMPTS=recipes/stories260K/data/constraint_train.jsonl
MODEL=tests/data/stories260K

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

python3 - "$WORK/flywheel/metrics.jsonl" "$WORK/trl.json" "$THREADS" <<'PY'
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
print(f"{len(timed)} timed iterations after 1 warm-up, {sys.argv[3]} threads; TRL {t['trl']}, "
      f"transformers {t['transformers']}, torch {t['torch']}")
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
