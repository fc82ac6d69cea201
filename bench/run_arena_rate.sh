#!/usr/bin/env bash
# `flywheel arena rate` against Chatbot Arena's own code (bench/arena_rate_reference.py: FastChat's
# compute_bt, compute_bootstrap_bt, compute_elo and compute_style_control, and the scikit-learn
# compute_mle_elo) on synthetic battles drawn from known Bradley-Terry ratings. Prints, per case,
# the largest |rating difference| to each reference, the bootstrap bounds side by side, and the
# wall time of both programs. See bench/README.md.
#
#   bash bench/run_arena_rate.sh     # needs build/bin/flywheel and bench/install-peers.sh
#
# Environment (optional): BUILD_DIR (default build); FLYWHEEL (default $BUILD_DIR/bin/flywheel);
# FASTCHAT_GIT and ARENA_HARD_GIT, clones of https://github.com/lm-sys/FastChat and
# https://github.com/lmarena/arena-hard-auto (default: cloned into a temporary directory, which
# needs the network); CASES (default "small large arena-hard").
#   small  20 players, 50,000 battles (25,000 prompts of two swapped games), 15% ties, style
#          features; also run with --style-control
#   large  100 players, 1,000,000 battles, 15% ties
#   arena-hard  Arena-Hard-Auto v0.1 judgments of 8 models against a baseline on 500 questions
#          (2% null verdicts), scored by its show_result.py (0489bf38): ratings with the
#          baseline at 1000 and win rates against it
# Both sides bootstrap battle by battle (--bootstrap-unit battle), 100 rounds; their random
# draws differ, so the bounds agree only up to bootstrap noise.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build}"
FLYWHEEL="${FLYWHEEL:-$BUILD_DIR/bin/flywheel}"
CASES="${CASES:-small large arena-hard}"
PY="$ROOT/.venv/bin/python"
"$PY" -c "import sklearn, scipy, pandas" 2>/dev/null ||
  { echo "error: run bench/install-peers.sh first" >&2; exit 2; }
[ -x "$FLYWHEEL" ] || { echo "error: no $FLYWHEEL; build first" >&2; exit 2; }
WORK="$(mktemp -d /tmp/flywheel-arena-rate-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

# The reference sources, at fixed commits: rating_systems.py of FastChat's main branch, and
# elo_analysis.py at 663442ef, the last with the scikit-learn compute_elo_mle_with_tie.
if [ -z "${FASTCHAT_GIT:-}" ]; then
  FASTCHAT_GIT="$WORK/FastChat"
  git clone -q --filter=blob:none https://github.com/lm-sys/FastChat "$FASTCHAT_GIT"
fi
git -C "$FASTCHAT_GIT" show 0e6d3e4beaab66f4d3f93db72541a4abab8af28d:fastchat/serve/monitor/rating_systems.py \
  >"$WORK/rating_systems.py"
git -C "$FASTCHAT_GIT" show 663442ef3177d4be34ba67f693977896546da525:fastchat/serve/monitor/elo_analysis.py \
  >"$WORK/elo_analysis.py"
if [[ " $CASES " == *" arena-hard "* ]]; then
  if [ -z "${ARENA_HARD_GIT:-}" ]; then
    ARENA_HARD_GIT="$WORK/arena-hard-auto"
    git clone -q --filter=blob:none https://github.com/lmarena/arena-hard-auto "$ARENA_HARD_GIT"
  fi
  mkdir -p "$WORK/arena-hard-src"
  for f in show_result.py utils_math.py; do
    git -C "$ARENA_HARD_GIT" show "0489bf384abd010906014dec7b903f7c438eabba:$f" >"$WORK/arena-hard-src/$f"
  done
fi

generate() {  # players battles style out
  "$PY" - "$@" <<'PY'
import json, sys
import numpy as np
players, battles, style, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
rng = np.random.default_rng(players)
truth = np.linspace(1000 + 6 * players, 1000 - 6 * players, players)  # 12 points apart
ties = 0.15
a = rng.integers(0, players, battles)
b = (a + rng.integers(1, players, battles)) % players
p = 1 / (1 + 10 ** ((truth[b] - truth[a]) / 400))
# A tie with probability `ties`, otherwise a win with the probability that keeps the expected
# score (ties as half) at p, so the tie-as-half MLE estimates `truth`.
u = rng.random(battles)
winner = np.where(rng.random(battles) < ties, "tie", np.where(u < (p - ties / 2) / (1 - ties), "model_a", "model_b"))
with open(out, "w") as f:
    for n in range(battles):
        row = {"model_a": f"model-{a[n]:03d}", "model_b": f"model-{b[n]:03d}", "winner": str(winner[n]),
               "question_id": f"q{n // 2}"}
        if style:
            la, lb = (int(x) for x in rng.integers(20, 1200, 2))
            row["conv_metadata"] = {
                "sum_assistant_a_tokens": la, "sum_assistant_b_tokens": lb,
                "header_count_a": {"h1": int(rng.integers(0, 3)), "h2": int(rng.integers(0, 3))},
                "header_count_b": {"h1": int(rng.integers(0, 3)), "h2": int(rng.integers(0, 3))},
                "list_count_a": {"ordered": int(rng.integers(0, 6)), "unordered": int(rng.integers(0, 6))},
                "list_count_b": {"ordered": int(rng.integers(0, 6)), "unordered": int(rng.integers(0, 6))},
                "bold_count_a": {"**": int(rng.integers(0, 5)), "__": 0},
                "bold_count_b": {"**": int(rng.integers(0, 5)), "__": 0}}
        f.write(json.dumps(row) + "\n")
PY
}

generate_judgments() {  # out
  "$PY" - "$@" <<'PY'
import json, sys
import numpy as np
rng = np.random.default_rng(7)
labels = ["A>>B", "A>B", "A=B", "B>A", "B>>A"]
with open(sys.argv[1], "w") as f:
    for m in range(8):
        skill = -1.5 + 3 * m / 7  # the model's log-odds against the baseline
        for q in range(500):
            games = []
            for g in range(2):
                # How much better the model's answer is, as seen by the judge, on a 5-point scale
                # from "baseline much better" to "model much better"; game 2 reads it from the
                # other side (the model is A there).
                x = skill + rng.logistic()
                k = int(np.digitize(x, [-2.5, -0.5, 0.5, 2.5]))  # 0 .. 4, baseline >> .. model >>
                score = None if rng.random() < 0.02 else labels[k] if g == 0 else labels[4 - k]
                games.append({"score": score, "judgment": "..."})
            f.write(json.dumps({"question_id": f"q{q:03d}", "model": f"model-{m}",
                                "judge": "synthetic", "games": games}) + "\n")
PY
}

arena_hard_case() {
  local data="$WORK/arena-hard.jsonl"
  generate_judgments "$data"
  ours_s=$(seconds "$FLYWHEEL" arena rate --arena-hard "$data" --baseline baseline-model \
    --anchor baseline-model=1000 --json "$WORK/arena-hard.ours.json" 3>&1 >/dev/null 2>"$WORK/arena-hard.ours.log")
  ref_s=$(seconds "$PY" bench/arena_rate_reference.py - --arena-hard "$data" --baseline baseline-model \
    --arena-hard-src "$WORK/arena-hard-src" 3>&1 >"$WORK/arena-hard.ref.json" 2>/dev/null)
  "$PY" - "$WORK" "$ours_s" "$ref_s" <<'PY'
import json, sys
work, ours_s, ref_s = sys.argv[1:]
ours = {p["name"]: p for p in json.load(open(f"{work}/arena-hard.ours.json"))["players"]}
ref = json.load(open(f"{work}/arena-hard.ref.json"))["arena_hard"]
names = sorted(ref["ratings"])
print("## arena-hard: 8 models against baseline-model, 500 questions, 2 games each")
print(f"max |rating - compute_mle_elo|        {max(abs(ours[n]['rating'] - ref['ratings'][n]) for n in names):.2e}")
print(f"max |win rate - get_win_rate_column|  {max(abs(ours[n]['win_rate'] - ref['win_rate'][n]) for n in names):.2e}"
      " (Arena-Hard rounds to 0.01)")
print("model      ours   Arena-Hard")
for n in sorted(names, key=lambda n: -ref["win_rate"][n]):
    print(f"{n:<14} {ours[n]['win_rate']:6.2f} {ref['win_rate'][n]:6.2f}")
print(f"time: flywheel {float(ours_s):.2f} s (with 100 bootstrap rounds), reference {float(ref_s):.2f} s (no bootstrap)")
print()
PY
  grep -h "arena rate:\|warning:" "$WORK/arena-hard.ours.log" | sed 's/^/flywheel: /'
  echo
}

seconds() {  # command... : runs it, then prints its wall seconds to fd 3
  local start
  start=$(date +%s%N)
  "$@"
  awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.3f\n", ns / 1e9 }' >&3
}

for name in $CASES; do
  case "$name" in
    arena-hard) arena_hard_case; continue ;;
    small) players=20 battles=50000 style=1 ;;
    large) players=100 battles=1000000 style=0 ;;
    *) echo "error: unknown case $name" >&2; exit 2 ;;
  esac
  data="$WORK/$name.jsonl"
  generate "$players" "$battles" "$style" "$data"
  flags=(--bootstrap 100 --bootstrap-unit battle --seed 0)
  ours_s=$(seconds "$FLYWHEEL" arena rate --battles "$data" "${flags[@]}" --json "$WORK/$name.ours.json" \
    3>&1 >/dev/null 2>"$WORK/$name.ours.log")
  style_s=""
  ref_flags=()
  if [ "$style" = 1 ]; then
    style_s=$(seconds "$FLYWHEEL" arena rate --battles "$data" "${flags[@]}" --style-control \
      --json "$WORK/$name.style.json" 3>&1 >/dev/null 2>>"$WORK/$name.ours.log")
    ref_flags=(--style-control)
  fi
  ref_s=$(seconds "$PY" bench/arena_rate_reference.py "$data" --rating-systems "$WORK/rating_systems.py" \
    --elo-analysis "$WORK/elo_analysis.py" --bootstrap 100 --ours "$WORK/$name.ours.json" "${ref_flags[@]}" \
    3>&1 >"$WORK/$name.ref.json" 2>/dev/null)
  "$PY" - "$name" "$players" "$battles" "$WORK" "$ours_s" "$ref_s" "$style_s" <<'PY'
import json, sys
case, players, battles, work, ours_s, ref_s, style_s = sys.argv[1:]
ours = {p["name"]: p for p in json.load(open(f"{work}/{case}.ours.json"))["players"]}
ref = json.load(open(f"{work}/{case}.ref.json"))
names = ref["players"]
def maxdiff(a, b):
    return max(abs(a[n] - b[n]) for n in names)
rating = {n: ours[n]["rating"] for n in names}
print(f"## {case}: {players} players, {int(battles):,} battles")
print(f"max |rating - compute_bt|             {maxdiff(rating, ref['mle']):.2e}")
print(f"max |rating - compute_mle_elo|        {maxdiff(rating, ref['mle_sklearn']):.2e}")
print(f"FastChat's BT gradient at our ratings, per battle: {ref['gradient_at_ours']:.1e} (0 at the exact MLE)")
print(f"max |online Elo - compute_elo|        {maxdiff({n: ours[n]['online_elo'] for n in names}, ref['online']):.2e}")
lo = [abs(ours[n]["lower"] - ref["bootstrap"]["lower"][n]) for n in names]
hi = [abs(ours[n]["upper"] - ref["bootstrap"]["upper"][n]) for n in names]
width_ours = sum(ours[n]["upper"] - ours[n]["lower"] for n in names) / len(names)
width_ref = sum(ref["bootstrap"]["upper"][n] - ref["bootstrap"]["lower"][n] for n in names) / len(names)
print(f"bootstrap bounds: mean |diff| lower {sum(lo) / len(lo):.2f}, upper {sum(hi) / len(hi):.2f}; "
      f"mean 95% width ours {width_ours:.2f}, reference {width_ref:.2f}")
if "style" in ref:
    st = json.load(open(f"{work}/{case}.style.json"))
    srat = {p["name"]: p["rating"] for p in st["players"]}
    coef = [st["style"][k]["coef"] for k in ("length", "headers", "lists", "bold")]
    print(f"style control: max |rating - compute_style_control| {maxdiff(srat, ref['style']['ratings']):.2e}, "
          f"max |coef diff| {max(abs(x - y) for x, y in zip(coef, ref['style']['coef'])):.2e}")
s = ref["seconds"]
ref_fit = s["mle"] + s["online"] + s.get("bootstrap", 0)
print(f"time: flywheel {float(ours_s):.2f} s (read + fit + online Elo + 100 rounds, one process)"
      + (f", with style control {float(style_s):.2f} s" if style_s else ""))
print(f"time: reference {float(ref_s):.2f} s in all; read {s['read']:.2f}, compute_bt {s['mle']:.2f}, "
      f"compute_mle_elo {s['mle_sklearn']:.2f}, compute_elo {s['online']:.2f}, "
      f"compute_bootstrap_bt {s.get('bootstrap', 0):.2f}" + (f", compute_style_control {s['style']:.2f}" if "style" in s else ""))
print()
PY
  grep -h "arena rate:" "$WORK/$name.ours.log" | sed 's/^/flywheel: /'
  echo
done
