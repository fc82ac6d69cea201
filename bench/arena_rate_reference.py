"""Chatbot Arena's own rating code on a battle JSONL file, for bench/run_arena_rate.sh.

FastChat's reference implementations are loaded from their source files, not copied:

  --rating-systems PATH  fastchat/serve/monitor/rating_systems.py of FastChat's main branch
                         (the leaderboard's current code): compute_bt (Bradley-Terry by L-BFGS
                         on counts of distinct outcomes), compute_bootstrap_bt, compute_elo
                         (online Elo), compute_style_control.
  --elo-analysis PATH    fastchat/serve/monitor/elo_analysis.py at commit 663442ef, whose
                         compute_elo_mle_with_tie is the scikit-learn fit the Chatbot Arena
                         notebook calls compute_mle_elo (pivot-table counts, a win counted twice
                         and a tie once per side, LogisticRegression without penalty). Only that
                         function is taken from the file (the module imports plotting packages).

Prints one JSON object: {"players": [...], "mle": {name: rating}, "mle_sklearn": {...},
"online": {...}, "bootstrap": {"lower": {...}, "upper": {...}}, "style": {"ratings": {...},
"coef": [...]}, "seconds": {step: s}}. Bootstrap intervals are the 2.5/97.5 percentiles of
compute_bootstrap_bt's rounds (its battle-level multinomial resampling).

With --arena-hard FILE --baseline NAME --arena-hard-src DIR (DIR holding show_result.py and
utils_math.py of lmarena/arena-hard-auto at 0489bf38, its v0.1 scoring) the battles argument
is not read; instead the judgments are scored as show_result.py does it: get_battles_from_row
(verdicts to battles, strong ones 3x), compute_mle_elo with the baseline at 1000, and
get_win_rate_column, printed as {"arena_hard": {"ratings": {...}, "win_rate": {...}}}.

With --ours FILE (`flywheel arena rate --json` output, no anchor) it also reports
"gradient_at_ours": the largest |d loss / d beta| of FastChat's own bt_loss_and_grad at
Flywheel's ratings (beta = (rating - 1000) / 400), divided by the number of battles. The
optimizers above stop at their tolerances; this says how close Flywheel's point is to the
exact maximum of the same likelihood.
"""

import argparse
import ast
from collections import defaultdict
import importlib.util
import json
import math
import sys
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression


def load_rating_systems(path):
    spec = importlib.util.spec_from_file_location("fastchat_rating_systems", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its bootstrap pickles fit_bt for a process pool
    spec.loader.exec_module(module)
    return module


def load_function(path, name, namespace=None):
    """The one top-level function `name` of a source file, run in a namespace of its imports."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), filename=path)
    nodes = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    if not nodes:
        sys.exit(f"arena_rate_reference: {path} has no function {name}")
    namespace = namespace if namespace is not None else {"pd": pd, "np": np, "math": math}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), path, "exec"), namespace)
    return namespace[name]


def arena_hard_scores(args):
    source = {"pd": pd, "np": np, "math": math, "defaultdict": defaultdict,
              "LogisticRegression": LogisticRegression}
    # utils_math.predict_win_rate fills its diagonal with np.NAN, which numpy 2 removed.
    np.NAN = np.nan
    get_battles = load_function(f"{args.arena_hard_src}/show_result.py", "get_battles_from_row",
                                source)
    mle = load_function(f"{args.arena_hard_src}/utils_math.py", "compute_mle_elo", source)
    source["predict_win_rate"] = load_function(f"{args.arena_hard_src}/utils_math.py",
                                               "predict_win_rate", source)
    win_rate_column = load_function(f"{args.arena_hard_src}/utils_math.py", "get_win_rate_column",
                                    source)
    judgments = pd.read_json(args.arena_hard, lines=True)
    rows = judgments.apply(lambda row: get_battles(row, False, 3, args.baseline, None), axis=1)
    battles = pd.DataFrame(rows[rows.map(len) > 0].explode().tolist())
    ratings = mle(battles, baseline_model=args.baseline)
    stats = pd.DataFrame({"model": ratings.index, "score": ratings.values})
    win = win_rate_column(stats, "score", args.baseline)
    return {"ratings": ratings.to_dict(), "win_rate": dict(zip(stats["model"], win.loc[stats["model"]]))}


def read_battles(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return pd.DataFrame(rows)


def timed(seconds, step, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds[step] = time.perf_counter() - start
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("battles")
    parser.add_argument("--rating-systems")
    parser.add_argument("--elo-analysis")
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--style-control", action="store_true")
    parser.add_argument("--ours")
    parser.add_argument("--arena-hard")
    parser.add_argument("--baseline")
    parser.add_argument("--arena-hard-src")
    args = parser.parse_args()
    if args.arena_hard:
        print(json.dumps({"arena_hard": arena_hard_scores(args)}))
        return

    rs = load_rating_systems(args.rating_systems)
    mle_sklearn = load_function(args.elo_analysis, "compute_elo_mle_with_tie")
    seconds = {}
    battles = timed(seconds, "read", read_battles, args.battles)
    out = {"players": sorted(set(battles["model_a"]) | set(battles["model_b"]))}
    out["mle"] = timed(seconds, "mle", rs.compute_bt, battles).to_dict()
    out["mle_sklearn"] = timed(seconds, "mle_sklearn", mle_sklearn, battles).to_dict()
    out["online"] = {k: float(v) for k, v in timed(seconds, "online", rs.compute_elo, battles).items()}
    if args.bootstrap > 0:
        boot = timed(seconds, "bootstrap", rs.compute_bootstrap_bt, battles, num_round=args.bootstrap)
        out["bootstrap"] = {"lower": boot.quantile(0.025).to_dict(),
                            "upper": boot.quantile(0.975).to_dict()}
    if args.style_control:
        ratings, coef = timed(seconds, "style", rs.compute_style_control, battles)
        out["style"] = {"ratings": ratings.to_dict(), "coef": [float(c) for c in coef]}
    if args.ours:
        with open(args.ours, encoding="utf-8") as f:
            ours = {p["name"]: p["rating"] for p in json.load(f)["players"]}
        matchups, outcomes, models, weights = rs.preprocess_for_bt(battles)
        beta = np.array([(ours[m] - 1000) / 400 for m in models])
        _, grad = rs.bt_loss_and_grad(beta, matchups, outcomes, weights, math.log(10))
        out["gradient_at_ours"] = float(np.abs(grad).max() / len(battles))
    out["seconds"] = seconds
    print(json.dumps(out))


if __name__ == "__main__":
    main()
