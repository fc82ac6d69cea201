#!/usr/bin/env python3
"""Reference IFEval labels from Google's checker as packaged in lm-eval (lm_eval/tasks/ifeval/).

Runs inside .venv-ifeval/ (bench/install-ifeval-ref.sh). For each row of a responses JSONL
({"prompt", "response", ...}, e.g. from bench/ifeval_responses.py) it looks up the prompt's
instructions in input_data.jsonl (by exact prompt text, as Google's evaluation_lib does) and
evaluates every instruction in strict and loose mode with lm-eval's own
`test_instruction_following_strict` / `test_instruction_following_loose` (lm_eval/tasks/ifeval/
utils.py), so the labels are exactly what the harness's ifeval task computes. Each output row:

  {"prompt", "response", "dataset": "ifeval", "instruction_id_list", "kwargs",
   "strict": [bool, ...], "loose": [bool, ...], "key", "variant"}

"key"/"variant" are copied from the responses row when present. The same rows are the input of
`flywheel verify --in reference.jsonl --out ours.jsonl`; bench/ifeval_agreement.py compares.

Determinism (the reference is otherwise randomised in two places):
  * langdetect (response_language, english_capital, english_lowercase) seeds Python's RNG from OS
    entropy on every call unless `DetectorFactory.seed` is set: we set DetectorFactory.seed = 0, so
    each text's detection is reproducible (but can still differ from an unseeded run on
    borderline texts).
  * keywords:letter_frequency with a letter outside a-z (keys 1122 "#", 1129 "!") makes lm-eval
    substitute `random.choice(string.ascii_letters)`. We call random.seed(0) before each row's
    strict and before its loose evaluation, so the pick is reproducible, and identical between the
    two modes, but arbitrary: bench/ifeval_agreement.py reports those instructions separately.

No network is used: NLTK's punkt_tab data must already be in <venv>/nltk_data (or on NLTK_DATA);
nltk.download is disabled so that a missing resource fails loudly instead of downloading.

Usage:
  .venv-ifeval/bin/python bench/ifeval_reference.py \
      --input /work/shared/data/ifeval/input_data.jsonl \
      --responses /tmp/ifeval/responses.jsonl --out /tmp/ifeval/reference.jsonl
  .venv-ifeval/bin/python bench/ifeval_reference.py --self-test
"""

from __future__ import annotations

import argparse
import collections
import importlib
import importlib.util
import json
import os
import random
import sys
import types

DEFAULT_INPUT = "/work/shared/data/ifeval/input_data.jsonl"


def _offline_nltk():
    """Make NLTK find punkt_tab in the venv and forbid downloads."""
    import nltk

    venv_data = os.path.join(sys.prefix, "nltk_data")
    if venv_data not in nltk.data.path:
        nltk.data.path.insert(0, venv_data)

    def _no_download(*args, **kwargs):
        raise RuntimeError(
            "ifeval_reference: NLTK tried to download %r; run bench/install-ifeval-ref.sh "
            "(punkt_tab must be in %s)" % (args[:1], venv_data)
        )

    nltk.download = _no_download
    # lm-eval's instructions_util calls nltk.data.find("tokenizers/punkt_tab") at import time and
    # would otherwise try to download it; check first for a clear message.
    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
    except LookupError:
        sys.exit(
            "ifeval_reference: NLTK punkt_tab (english) not found on %s; run "
            "bench/install-ifeval-ref.sh" % nltk.data.path
        )


def load_lm_eval_ifeval():
    """Import lm_eval.tasks.ifeval.utils without running lm_eval's package __init__ files.

    lm_eval/tasks/__init__.py imports the task manager, which needs datasets, evaluate, ... (not
    installed: see bench/requirements-ifeval.txt). The ifeval modules only need each other, so
    lm_eval and lm_eval.tasks are registered as bare packages pointing at their directories; the
    checker code that runs is lm-eval's own files, unmodified.
    """
    _offline_nltk()
    import langdetect

    langdetect.DetectorFactory.seed = 0  # deterministic language detection (see module doc)

    spec = importlib.util.find_spec("lm_eval")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        sys.exit("ifeval_reference: lm_eval not installed; run bench/install-ifeval-ref.sh")
    root = list(spec.submodule_search_locations)[0]
    for name, path in (("lm_eval", root), ("lm_eval.tasks", os.path.join(root, "tasks"))):
        if name not in sys.modules:
            mod = types.ModuleType(name)
            mod.__path__ = [path]
            sys.modules[name] = mod
    return importlib.import_module("lm_eval.tasks.ifeval.utils")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def evaluate(utils, example: dict, response: str):
    """Strict and loose follow lists for one response, exactly as lm-eval's ifeval task."""
    inp = utils.InputExample(
        key=example["key"],
        instruction_id_list=example["instruction_id_list"],
        prompt=example["prompt"],
        kwargs=example["kwargs"],
    )
    random.seed(0)  # only consumed by letter_frequency with a non a-z letter (see module doc)
    strict = utils.test_instruction_following_strict(inp, response).follow_instruction_list
    random.seed(0)
    loose = utils.test_instruction_following_loose(inp, response).follow_instruction_list
    return [bool(x) for x in strict], [bool(x) for x in loose]


def self_test():
    utils = load_lm_eval_ifeval()
    from lm_eval.tasks.ifeval import instructions_util
    import langdetect
    import nltk

    n = instructions_util.count_sentences("Dr. Smith arrived at 3.5 p.m. today. He left! Why?")
    assert n == 3, n
    assert langdetect.detect("Das ist ein kurzer deutscher Satz über das Wetter.") == "de"
    ex = {
        "key": 0,
        "prompt": "p",
        "instruction_id_list": ["punctuation:no_comma", "detectable_format:title"],
        "kwargs": [{}, {}],
    }
    assert evaluate(utils, ex, "Sure:\n<<A *title*>>\nno commas here") == ([True, True], [True, True])
    assert evaluate(utils, ex, "a, b") == ([False, False], [False, False])
    print("ifeval_reference: self-test ok (nltk %s, punkt_tab at %s)"
          % (nltk.__version__, nltk.data.find("tokenizers/punkt_tab/english/")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", default=DEFAULT_INPUT, help="IFEval input_data.jsonl")
    ap.add_argument("--responses", help="JSONL rows with prompt and response")
    ap.add_argument("--out", help="output JSONL (reference labels; input rows for flywheel verify)")
    ap.add_argument("--self-test", action="store_true", help="check the installation and exit")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    if not args.responses or not args.out:
        ap.error("--responses and --out are required")

    utils = load_lm_eval_ifeval()
    by_prompt = {ex["prompt"]: ex for ex in read_jsonl(args.input)}
    rows = read_jsonl(args.responses)

    # Per-instruction tallies for the summary printed at the end.
    tally = collections.defaultdict(lambda: [0, 0, 0])  # id -> [count, strict True, loose True]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        for i, row in enumerate(rows):
            ex = by_prompt.get(row["prompt"])
            if ex is None:
                sys.exit("ifeval_reference: responses line %d: prompt not in %s" % (i + 1, args.input))
            strict, loose = evaluate(utils, ex, row["response"])
            rec = {
                "prompt": ex["prompt"],
                "response": row["response"],
                "dataset": "ifeval",
                "instruction_id_list": ex["instruction_id_list"],
                "kwargs": ex["kwargs"],
                "strict": strict,
                "loose": loose,
                "key": ex["key"],
            }
            if "variant" in row:
                rec["variant"] = row["variant"]
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            for iid, s, l in zip(ex["instruction_id_list"], strict, loose):
                t = tally[iid]
                t[0] += 1
                t[1] += s
                t[2] += l

    n_inst = sum(t[0] for t in tally.values())
    print("ifeval_reference: %d rows, %d instructions -> %s" % (len(rows), n_inst, args.out))
    print("%-46s %6s %8s %8s" % ("instruction_id", "count", "strict%", "loose%"))
    for iid in sorted(tally):
        c, s, l = tally[iid]
        print("%-46s %6d %8.1f %8.1f" % (iid, c, 100.0 * s / c, 100.0 * l / c))
    s_all = sum(t[1] for t in tally.values())
    l_all = sum(t[2] for t in tally.values())
    print("%-46s %6d %8.1f %8.1f" % ("ALL", n_inst, 100.0 * s_all / n_inst, 100.0 * l_all / n_inst))


if __name__ == "__main__":
    main()
