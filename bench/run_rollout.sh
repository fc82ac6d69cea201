#!/usr/bin/env bash
# Generation throughput of the rollout engine next to the engines a user would pick instead,
# on the same models, prompts and threads, in one run. See bench/README.md ("Rollout").
#
#   bench/run_rollout.sh
#
# Scenarios (prompts from bench/rollout_prompts.py, the same files for every engine):
#   single   1 prompt ("Once upon a time") x 256 new tokens, greedy: every engine must
#            produce the same ids (checked; llama2.c stops at its BOS token)
#   batch64  64 prompts of 16 tokens x 128 new tokens, sampled at temperature 1
#   mixed    256 prompts of 4-200 tokens, n = 4 samples each x 128 new tokens, temperature 1
# Every sequence generates exactly its new tokens (end-of-sequence ignored). Each engine runs
# in its own process: one untimed pass, then REPS timed ones, median reported; tokens/s =
# generated tokens / seconds of the generate call (model loading excluded everywhere).
#
# Engines:
#   flywheel      build/bin/flywheel_bench_rollout (the rollout engine, in process)
#   transformers  bench/rollout_hf.py: generate(), all prompts in one left-padded batch
#   plain-python  bench/rollout_plain.py: a hand-written KV-cache loop on the same torch wheel
#   vllm          bench/rollout_vllm.py in .venv-vllm (bench/install-vllm.sh), when present
#   llama2.c      `run` from a llama2.c checkout (LLAMA2C_DIR), single scenario on stories260K:
#                 built here with its own Makefile (runfast: one thread; runomp: OpenMP),
#                 the model written in its format by bench/llama2c_export.py
#
# Environment (all optional):
#   MODELS           model directories (default: tests/data/stories260K and a random-weight
#                    bench/configs/llama-10m.json checkpoint written by transformers)
#   SCENARIOS        default "single batch64 mixed"
#   REPS             timed runs per engine and scenario (default 3)
#   OMP_NUM_THREADS  threads for every engine (default: nproc); vLLM is bound to as many cores
#   LLAMA2C_DIR      a llama2.c checkout (outside this repository) for the llama2.c rows
#   VLLM_VENV        vLLM's environment (default .venv-vllm)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REPS="${REPS:-3}"
SCENARIOS="${SCENARIOS:-single batch64 mixed}"
PYTHON="$ROOT/.venv/bin/python"
VLLM_VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
BENCH="$ROOT/build/bin/flywheel_bench_rollout"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
[[ -x "$BENCH" ]] || { echo "error: build flywheel_bench_rollout first (scripts/build.sh)" >&2; exit 2; }
"$PYTHON" -c 'import transformers' 2>/dev/null ||
  { echo "error: transformers missing; run bench/install-peers.sh" >&2; exit 2; }
WORK="$(mktemp -d /tmp/flywheel-rollout-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

if [[ -z "${MODELS:-}" ]]; then
  "$PYTHON" - "$ROOT/bench/configs/llama-10m.json" "$WORK/llama-10m" <<'PY'
import json, sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
LlamaForCausalLM(LlamaConfig(**json.load(open(sys.argv[1])))).save_pretrained(sys.argv[2])
PY
  MODELS="$ROOT/tests/data/stories260K $WORK/llama-10m"
fi

# scenario -> "new_tokens n temperature"
declare -A SETTINGS=([single]="256 1 0" [batch64]="128 1 1" [mixed]="128 4 1")

# Runs one engine; appends its JSON line (or {"error": ...}) to $WORK/results.jsonl.
record() {  # model scenario impl command...
  local model="$1" scenario="$2" impl="$3"
  shift 3
  local out line
  # The result is the last JSON line of stdout (vLLM's processes log there too).
  if out="$("$@" 2>"$WORK/stderr")" && line="$(grep '^{' <<<"$out" | tail -n 1)"; then
    :
  else
    local why
    why="$(cat "$WORK/stderr" - <<<"$out" | grep -m1 -o 'Unsupported[^,]*\|error: .*' ||
      tail -n 1 "$WORK/stderr")"
    line="$("$PYTHON" -c 'import json,sys; print(json.dumps({"error": sys.argv[1]}))' "$why")"
  fi
  "$PYTHON" -c 'import json,sys; d=json.loads(sys.argv[4]); d.update(model=sys.argv[1], scenario=sys.argv[2], impl=sys.argv[3]); print(json.dumps(d))' \
    "$model" "$scenario" "$impl" "$line" >>"$WORK/results.jsonl"
  echo "  $impl: $(cut -c1-120 <<<"$line")" >&2
}

llama2c() {  # model_dir: prints {"tokens_per_s": median, ...} for runfast and runomp
  local model="$1" dir="$WORK/llama2c"
  rm -rf "$dir" && cp -r "$LLAMA2C_DIR" "$dir"
  (cd "$dir" && make -s runfast >/dev/null 2>&1 && cp run run_fast && make -s runomp >/dev/null 2>&1 && cp run run_omp)
  "$PYTHON" bench/llama2c_export.py "$model" "$dir/out"
  # run.c's own "achieved tok/s" divides by milliseconds of a ~20 ms run (so it moves in steps
  # of 2x); instead each run is timed whole, -n 256 against -n 16 (the same start-up, model
  # load and prompt), and the difference is the time of 240 decoding steps. Medians of 20.
  for variant in fast omp; do
    "$PYTHON" - "$dir/run_$variant" "$dir/out" "$variant" >"$WORK/llama2c.$variant" <<'PY'
import json, statistics, subprocess, sys, time
run, out, variant = sys.argv[1:]
def seconds(steps):
    args = [run, f"{out}/model.bin", "-z", f"{out}/tokenizer.bin", "-t", "0", "-n", str(steps),
            "-i", "Once upon a time"]
    subprocess.run(args, capture_output=True, check=True)  # untimed
    times = []
    for _ in range(20):
        start = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)
rate = 240 / (seconds(256) - seconds(16))
print(json.dumps({"tokens_per_s": rate, "threads": 1 if variant == "fast" else None}))
PY
  done
}

for model in $MODELS; do
  name="$(basename "$model")"
  vocab="$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$model/config.json")"
  "$PYTHON" bench/rollout_prompts.py --vocab "$vocab" --out "$WORK/prompts-$name"
  for scenario in $SCENARIOS; do
    read -r new n temperature <<<"${SETTINGS[$scenario]}"
    prompts="$WORK/prompts-$name/$scenario.jsonl"
    args=(--model "$model" --prompts "$prompts" --max-new-tokens "$new" --n "$n"
      --temperature "$temperature" --reps "$REPS")
    echo "$name $scenario" >&2
    record "$name" "$scenario" flywheel "$BENCH" "${args[@]}"
    record "$name" "$scenario" transformers "$PYTHON" bench/rollout_hf.py "${args[@]}"
    record "$name" "$scenario" plain-python "$PYTHON" bench/rollout_plain.py "${args[@]}"
    if [[ -x "$VLLM_VENV/bin/python" ]]; then
      (cd "$WORK" && VLLM_CPU_OMP_THREADS_BIND="0-$((OMP_NUM_THREADS - 1))" \
        VLLM_CPU_KVCACHE_SPACE=4 VLLM_LOGGING_LEVEL=WARNING record "$name" "$scenario" vllm \
        "$VLLM_VENV/bin/python" "$ROOT/bench/rollout_vllm.py" "${args[@]}")
    fi
    if [[ $scenario == single && $name == stories260K && -n "${LLAMA2C_DIR:-}" ]]; then
      llama2c "$model"
      for variant in fast omp; do
        record "$name" "$scenario" "llama2.c-$variant" cat "$WORK/llama2c.$variant"
      done
    fi
  done
done

"$PYTHON" - "$WORK/results.jsonl" "$OMP_NUM_THREADS" "$REPS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
impls = ["flywheel", "transformers", "plain-python", "vllm", "llama2.c-fast", "llama2.c-omp"]
print("| model | scenario | " + " | ".join(impls) + " | flywheel / best other |")
print("|---|---|" + "---|" * (len(impls) + 1))
keys = []
for r in rows:
    if (r["model"], r["scenario"]) not in keys:
        keys.append((r["model"], r["scenario"]))
for model, scenario in keys:
    got = {r["impl"]: r for r in rows if r["model"] == model and r["scenario"] == scenario}
    cells, others = [], []
    ref = got.get("flywheel", {}).get("ids")
    for impl in impls:
        r = got.get(impl)
        if r is None:
            cells.append("-")
        elif "error" in r:
            cells.append("fails: " + r["error"][:60])
        else:
            note = ""
            if scenario == "single" and "ids" in r and ref is not None and impl != "flywheel":
                note = " (same ids)" if r["ids"] == ref else " (DIFFERENT ids)"
            cells.append(f"{r['tokens_per_s']:.0f}{note}")
            if impl != "flywheel":
                others.append(r["tokens_per_s"])
    fly = got.get("flywheel", {}).get("tokens_per_s")
    ratio = f"{fly / max(others):.2f}x" if fly and others else "-"
    print(f"| {model} | {scenario} | " + " | ".join(cells) + f" | {ratio} |")
print(f"\ntokens/s, median of {sys.argv[3]} runs; threads {sys.argv[2]}")
PY
