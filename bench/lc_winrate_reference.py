#!/usr/bin/env python3
"""AlpacaEval's own length-controlled win rate on a Chatbot-Arena battle file, for comparison with
`flywheel arena winrate --length-controlled` (runs in .venv, which has alpaca_eval installed).

  battles   write synthetic battles: NUM_INSTRUCTIONS prompts with a latent difficulty, players
            with a latent skill and a typical answer length, a judge that prefers longer answers,
            and two "gamed" players (the baseline prompted to be verbose / concise), each
            gamed player's games in instruction order (see `rate`)
  rate      AlpacaEval's numbers for every player: alpaca_eval.metrics.glm_winrate's
            get_length_controlled_winrate itself, per player, on the player's games turned into
            AlpacaEval annotations (output_1 = baseline, output_2 = player, strings of the
            answers' lengths; preference 1 / 2 / 1.5 for a tie). Its two Hugging Face downloads
            are redirected to local files built from the same battles:
              - df_gamed.csv: the gamed players' games (weight λ/G in every fit,
                glm_name length_controlled_v1), or only the difficulty table when there are none
                (length_controlled_noreg);
              - instruction_difficulty: --difficulty FILE as given, or else fitted as Flywheel
                does for a new prompt set: the joint GLM of AlpacaEval's
                notebooks/instruction_difficulty.ipynb (per-player bias and tanh-length weight,
                one-hot instruction, fit_LogisticRegressionCV) on every *other* player's games.
  compare   per player, ours vs theirs: the differences of every number, and the largest

Instruction ids map to AlpacaEval's integer "index" by their sorted order (as Flywheel sorts
them). glm_winrate.py looks difficulty up by the row label of the first df_gamed row of each
index, so each gamed player's games must come in instruction order and the first gamed player
must play every instruction (`battles` writes them so; `rate` checks it).

Usage:
  .venv/bin/python bench/lc_winrate_reference.py battles --out B.jsonl [--seed 0]
  .venv/bin/python bench/lc_winrate_reference.py rate --battles B.jsonl --baseline NAME \
      [--gamed NAME ...] [--difficulty FILE.jsonl] --out REF.json
  .venv/bin/python bench/lc_winrate_reference.py compare OURS.json REF.json
"""

import argparse
import json
import math
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def _shim_pkg_resources():
    """alpaca_eval.utils imports pkg_resources (for two version helpers the GLM never calls),
    which setuptools >= 81 no longer ships: stand in with packaging / importlib.metadata."""
    try:
        import pkg_resources  # noqa: F401
    except ModuleNotFoundError:
        import importlib.metadata
        import types

        from packaging.version import parse

        shim = types.ModuleType("pkg_resources")
        shim.parse_version = parse
        shim.get_distribution = lambda name: types.SimpleNamespace(
            version=importlib.metadata.version(name))
        sys.modules["pkg_resources"] = shim


_shim_pkg_resources()
from alpaca_eval.metrics import glm_winrate  # noqa: E402

# scikit-learn 1.9 warns that glm_winrate.py's penalty="l1" spelling will change in 1.10.
warnings.filterwarnings("ignore", category=FutureWarning)

_fit = glm_winrate.fit_LogisticRegressionCV
_last_fit = {}
TIGHT = {}  # --liblinear-tol: liblinear run to a tighter tolerance than its default 1e-4


def _recording_fit(*args, **kwargs):
    """glm_winrate's own fit, keeping the fitted model so its C and coefficients are reported."""
    model = _fit(*args, **kwargs)
    _last_fit["model"] = model
    return model


glm_winrate.fit_LogisticRegressionCV = _recording_fit

BASELINE = "baseline"


def write_battles(out, seed, num_instructions):
    """Players' answer lengths are log-normal around a typical length; the judge prefers the
    player with probability logistic(skill - difficulty + 1.2 tanh((len_p - len_b) / 300)),
    ties with probability 0.05."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 1, num_instructions)
    baseline_len = rng.lognormal(math.log(400), 0.4, num_instructions).round()
    players = {  # name: (skill, typical length)
        "baseline_verbose": (0.3, 800),
        "baseline_concise": (-0.5, 200),
        "alpha": (0.8, 400),
        "beta": (0.2, 900),
        "gamma": (-0.4, 300),
        "delta": (0.5, 600),
    }
    rows = []
    for name, (skill, typical) in players.items():
        lengths = rng.lognormal(math.log(typical), 0.4, num_instructions).round()
        u = rng.random(num_instructions)
        tie = rng.random(num_instructions) < 0.05
        z = skill - difficulty + 1.2 * np.tanh((lengths - baseline_len) / 300)
        p = 1 / (1 + np.exp(-z))
        for x in range(num_instructions):
            player_first = bool(rng.random() < 0.5)
            winner = "tie" if tie[x] else ("player" if u[x] < p[x] else "baseline")
            a, b = (name, BASELINE) if player_first else (BASELINE, name)
            la, lb = lengths[x], baseline_len[x]
            if not player_first:
                la, lb = lb, la
            if winner == "tie":
                w = "tie"
            else:
                w = "model_a" if (winner == "player") == player_first else "model_b"
            # All eight style keys, so that `flywheel arena rate` reads the file too.
            style = {"len_a": int(la), "len_b": int(lb), "header_a": 0, "header_b": 0,
                     "list_a": 0, "list_b": 0, "bold_a": 0, "bold_b": 0}
            rows.append({"question_id": f"q{x:04d}", "model_a": a, "model_b": b, "winner": w,
                         "style": style})
    with open(out, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    # The planted difficulty as a table (in the GLM's sign: a harder prompt, a lower logit).
    with open(Path(out).with_suffix(".difficulty.jsonl"), "w") as f:
        for x in range(num_instructions):
            f.write(json.dumps({"question_id": f"q{x:04d}",
                                "instruction_difficulty": -float(difficulty[x])}) + "\n")
    print(f"wrote {len(rows)} battles, {len(players)} players x {num_instructions} instructions "
          f"-> {out}")


def read_games(path, baseline):
    """One row per game against the baseline, in file order: player, instruction id,
    preference in [0, 1] for the player, the two lengths."""
    games = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            a, b = r["model_a"], r["model_b"]
            if (a == baseline) == (b == baseline):
                continue
            pref_a = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}[r["winner"]]
            if "style" in r:
                la, lb = r["style"]["len_a"], r["style"]["len_b"]
            else:
                la = r["conv_metadata"]["sum_assistant_a_tokens"]
                lb = r["conv_metadata"]["sum_assistant_b_tokens"]
            qid = r.get("question_id")
            if qid is None:  # a prompt of its own, keyed as Flywheel keys it
                qid = f"{path}:{number}: "
            qid = qid if isinstance(qid, str) else json.dumps(qid)
            if a == baseline:
                games.append((b, qid, 1 - pref_a, lb, la))
            else:
                games.append((a, qid, pref_a, la, lb))
    df = pd.DataFrame(games, columns=["player", "instruction", "preference", "len_player",
                                      "len_baseline"])
    index_of = {q: i for i, q in enumerate(sorted(df["instruction"].unique()))}
    df["index"] = df["instruction"].map(index_of)
    return df, index_of


def std_delta_len(df):
    """(baseline length - player length) / its sample std over the player's games, as
    glm_winrate.py standardizes it (and the notebooks per gamed model)."""
    delta = (df["len_baseline"] - df["len_player"]).astype(float)
    sd = delta.groupby(df["player"]).transform("std")
    return (delta / sd).where(sd > 0, 0.0)


def joint_difficulty(df):
    """The joint GLM of AlpacaEval's instruction_difficulty notebook over `df`'s games (ψ = 1):
    one bias and one tanh-length weight per player, one weight per instruction (the first level
    dropped, i.e. 0), fitted with glm_winrate.fit_LogisticRegressionCV."""
    data = pd.DataFrame({
        "player": df["player"].values,
        "index": df["index"].values,
        "std_delta_len": std_delta_len(df).values,
        "preference": df["preference"].values,
    })
    formula = "C(player):np.tanh(std_delta_len) + C(player) + C(index) - 1"
    xy, _ = glm_winrate.make_dmatrix_for_model(data, data.iloc[:1], formula=formula)
    model = glm_winrate.fit_LogisticRegressionCV(xy, "preference", is_ytrue_proba=True,
                                                 n_splits=5, **TIGHT)
    coef = dict(zip(xy.drop(columns=["preference"]).columns, model.coef_[0]))
    levels = sorted(data["index"].unique())
    gamma = {levels[0]: 0.0}
    for k in levels[1:]:
        gamma[k] = coef[f"C(index)[T.{k}]"]
    return gamma


def rate(args):
    df, index_of = read_games(args.battles, args.baseline)
    num_instructions = len(index_of)
    players = sorted(df["player"].unique())
    gamed = args.gamed or []
    anchors = df[df["player"].isin(gamed)].copy()
    if gamed:
        first = anchors[anchors["player"] == gamed[0]]
        if list(first["index"]) != list(range(num_instructions)):
            sys.exit("rate: the first gamed player must play every instruction, in order")
        for g in gamed:
            idx = list(anchors[anchors["player"] == g]["index"])
            if idx != sorted(idx):
                sys.exit(f"rate: gamed player {g}'s games are not in instruction order")
        # df_gamed concatenates the gamed players in the order they were named.
        anchors = pd.concat([anchors[anchors["player"] == g] for g in gamed])

    fixed = None
    if args.difficulty:
        fixed = {}
        with open(args.difficulty) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    q = r["question_id"]
                    q = q if isinstance(q, str) else json.dumps(q)
                    if q in index_of:
                        fixed[index_of[q]] = r["instruction_difficulty"]

    tmp = Path(tempfile.mkdtemp(prefix="lc_ref_"))
    results = {}
    for m in players:
        if fixed is not None:
            gamma = fixed
        else:
            others = df[df["player"] != m]
            gamma = joint_difficulty(others) if len(others) else {}
            mean = float(np.mean(list(gamma.values()))) if gamma else 0.0
            gamma = {i: gamma.get(i, mean) for i in range(num_instructions)}

        # df_gamed.csv as glm_winrate.py reads it: index, preference in [0, 1], std_delta_len,
        # instruction_difficulty, not_gamed_baseline (False), model.
        if gamed:
            table = pd.DataFrame({
                "index": anchors["index"].values,
                "preference": anchors["preference"].values,
                "std_delta_len": std_delta_len(anchors).values,
                "instruction_difficulty": [gamma[i] for i in anchors["index"]],
                "not_gamed_baseline": False,
                "model": anchors["player"].values,
            })
        else:  # only the difficulty lookup is read
            table = pd.DataFrame({
                "index": range(num_instructions),
                "preference": 0.5,
                "std_delta_len": 0.0,
                "instruction_difficulty": [gamma[i] for i in range(num_instructions)],
                "not_gamed_baseline": False,
                "model": "none",
            })
        gamed_csv = tmp / "df_gamed.csv"
        table.to_csv(gamed_csv, index=False)
        glm_winrate.hf_hub_download = lambda *a, **k: str(gamed_csv)

        own = df[df["player"] == m]
        pref = own["preference"].map({1.0: 2.0, 0.0: 1.0, 0.5: 1.5})
        annotations = pd.DataFrame({
            "index": own["index"].values,
            "output_1": ["x" * int(n) for n in own["len_baseline"]],
            "output_2": ["x" * int(n) for n in own["len_player"]],
            "generator_1": args.baseline,
            "generator_2": m,
            "preference": pref.values,
            "annotator": "flywheel",
        })
        if gamed:
            # glm_winrate.py divides λ by 2 (AlpacaEval's two gamed baselines); λ' = 2λ/G makes
            # the weight λ/G for G gamed players, as Flywheel weighs them.
            lam = args.gamed_lambda * 2 / len(gamed)
            glm_name = "length_controlled_v1"
            info = dict(glm_winrate.GLM_INFO[glm_name])
            info["regularize_to_baseline_lambda"] = lam
        else:
            glm_name = "length_controlled_noreg"
            info = dict(glm_winrate.GLM_INFO[glm_name])
        info["kwargs"] = {**info["kwargs"], **TIGHT}
        metrics = glm_winrate.get_length_controlled_winrate(
            annotations.set_index(pd.RangeIndex(len(annotations))), glm_name=glm_name,
            save_weights_dir=None, is_add_glm_preference_inplace=False,
            is_warn_extreme_changes=False, glm_info=info)
        results[m] = {
            "win_rate": float(metrics["win_rate"]),
            "standard_error": float(metrics["standard_error"]),
            "lc_win_rate": float(metrics["length_controlled_winrate"]),
            "lc_standard_error": float(metrics["lc_standard_error"]),
            "n_total": int(metrics["n_total"]),
            "C": float(_last_fit["model"].C_[0]),
            "coef": dict(zip(_last_fit["model"].feature_names_in_,
                             map(float, _last_fit["model"].coef_[0]))),
        }
        print(f"{m:20s} win {results[m]['win_rate']:7.3f}  LC {results[m]['lc_win_rate']:7.3f}",
              flush=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)


def compare(ours_path, ref_path):
    ours = {p["player"]: p for p in json.load(open(ours_path))["players"]}
    ref = json.load(open(ref_path))
    keys = ["win_rate", "standard_error", "lc_win_rate", "lc_standard_error"]
    print(f"{'player':20s} " + " ".join(f"{k + ' ours/ref':>28s}" for k in keys))
    worst = {k: 0.0 for k in keys}
    for m in sorted(ref):
        cells = []
        for k in keys:
            a, b = ours[m][k], ref[m][k]
            worst[k] = max(worst[k], abs(a - b))
            cells.append(f"{a:11.6f}/{b:11.6f} ({a - b:+.1e})")
        print(f"{m:20s} " + " ".join(f"{c:>28s}" for c in cells))
    print("max |ours - AlpacaEval|: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("battles")
    b.add_argument("--out", required=True)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--instructions", type=int, default=805)
    r = sub.add_parser("rate")
    r.add_argument("--battles", required=True)
    r.add_argument("--baseline", required=True)
    r.add_argument("--gamed", action="append")
    r.add_argument("--gamed-lambda", type=float, default=0.2)
    r.add_argument("--difficulty")
    r.add_argument("--liblinear-tol", type=float,
                   help="liblinear's tolerance (scikit-learn's default 1e-4), to see how much of a "
                        "difference its early stop explains")
    r.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("ours")
    c.add_argument("ref")
    args = ap.parse_args()
    if args.cmd == "battles":
        write_battles(args.out, args.seed, args.instructions)
    elif args.cmd == "rate":
        if args.liblinear_tol:
            TIGHT.update(tol=args.liblinear_tol, max_iter=1000000)
        rate(args)
    else:
        compare(args.ours, args.ref)


if __name__ == "__main__":
    main()
