#!/usr/bin/env python3
r"""Hugging Face Math-Verify verdicts for the MATH comparison rows (runs in .venv-mathverify/).

For each row of bench/math_verify_rows.py's output this calls, with Math-Verify's default
configuration exactly as its README shows,

    verify(parse(gold), parse(response))

where gold is the row's ground_truth wrapped in a LaTeX environment (the README asks for the gold
in one, e.g. "$...$" or "\boxed{...}"). Two passes are made, single process, single thread:

  1. gold = parse("$" + ground_truth + "$")      -> "mathverify"             (the primary verdict)
  2. gold = parse("\boxed{" + ground_truth + "}") -> "mathverify_boxed_gold" (a sensitivity check)

Each pass is timed as a whole (parse of gold + parse of response + verify, per row, as an RL
reward function would call them), after an untimed warm-up on the first WARMUP_ROWS rows and with
Math-Verify's small parse caches cleared; rows/s is printed for wall time and for this process's
CPU time (the latter is the robust number on a shared machine). Math-Verify's own timeouts
(SIGALRM, 5 s for each parse and each comparison) stay on; they and the errors it swallows (it
logs them and returns []/False) are caught from its logger and recorded per row in "mv_events"
(also printed as a summary).
Per row the output also has the extracted objects ("mv_gold", "mv_pred": str() of parse's list),
"mv_gold_empty" (the gold parsed to nothing) and "mv_seconds".

Usage:
  .venv-mathverify/bin/python bench/math_verify_reference.py --rows ROWS.jsonl --out MV.jsonl
  .venv-mathverify/bin/python bench/math_verify_reference.py --self-test
"""

import argparse
import json
import logging
import sys
import time

from math_verify import parse, verify
from math_verify import parser as mv_parser
from math_verify.errors import TimeoutException
from math_verify.utils import timeout

WARMUP_ROWS = 300

GOLD_WRAPS = {
    "dollar": lambda s: "$" + s + "$",
    "boxed": lambda s: "\\boxed{" + s + "}",
}


class EventLog(logging.Handler):
    """Collects what Math-Verify logs when it swallows a timeout or an exception:
    'Timeout during parsing/comparison' (WARNING) and 'Error parsing' / 'Error during comparison'
    (DEBUG, with the exception attached)."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.events = []

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Timeout during parsing"):
            self.events.append("parse-timeout")
        elif msg.startswith("Timeout during comparison"):
            self.events.append("compare-timeout")
        elif msg.startswith("Error parsing") or msg.startswith("Error during comparison"):
            where = "parse" if msg.startswith("Error parsing") else "compare"
            exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else "?"
            self.events.append(f"{where}-error:{exc}")


def install_event_log():
    log = EventLog()
    mv_logger = logging.getLogger("math_verify")
    mv_logger.addHandler(log)
    mv_logger.setLevel(logging.DEBUG)  # only so that the DEBUG error records reach our handler
    mv_logger.propagate = False  # and are not printed
    return log


def clear_parse_caches():
    """Math-Verify memoizes a few recent parses (lru_cache, 20 entries); start each pass cold."""
    for name in ("parse_latex_cached", "parse_expr_cached", "extract_latex"):
        fn = getattr(mv_parser, name, None)
        if fn is not None and hasattr(fn, "cache_clear"):
            fn.cache_clear()


@timeout(timeout_seconds=5)
def _describe(objs):
    return [str(o) for o in objs]


def describe(objs):
    """str() of parsed objects, guarded: Math-Verify warns that printing a sympy object can hang."""
    try:
        return _describe(objs)
    except (Exception, TimeoutException) as e:
        return [f"<str failed: {type(e).__name__}>"]


def run_pass(rows, wrap, log):
    """Verdicts for all rows with gold = parse(wrap(ground_truth));
    returns (results, wall seconds, CPU seconds of this process)."""
    clear_parse_caches()
    results = []
    cpu_start = time.process_time()
    start = time.perf_counter()
    for row in rows:
        n_events = len(log.events)
        t0 = time.perf_counter()
        gold = parse(wrap(row["ground_truth"]))
        pred = parse(row["response"])
        ok = verify(gold, pred)
        dt = time.perf_counter() - t0
        results.append((bool(ok), gold, pred, dt, log.events[n_events:]))
    return results, time.perf_counter() - start, time.process_time() - cpu_start


def self_test():
    log = install_event_log()
    cases = [("\\frac{1}{2}", "so \\boxed{0.5}", True), ("3", "\\boxed{x = 3}", True),
             ("3", "\\boxed{4}", False), ("\\{1,2\\}", "\\boxed{2, 1}", True)]
    for gt, resp, want in cases:
        got = verify(parse(GOLD_WRAPS["dollar"](gt)), parse(resp))
        assert got == want, (gt, resp, got)
    assert not log.events, log.events
    print("math_verify_reference: self-test ok", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", help="rows JSONL (bench/math_verify_rows.py)")
    ap.add_argument("--out", help="rows with Math-Verify's verdicts (JSONL)")
    ap.add_argument("--self-test", action="store_true", help="a few known verdicts, then exit")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    if not args.rows or not args.out:
        ap.error("--rows and --out are required")

    with open(args.rows, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    log = install_event_log()
    # Warm-up, untimed: the first few hundred calls pay one-time costs (regex compilation, sympy's
    # lazy imports and caches; about 1 s here), which a long-running reward function pays once.
    run_pass(rows[:WARMUP_ROWS], GOLD_WRAPS["dollar"], log)
    del log.events[:]

    passes = {}
    for mode in ("dollar", "boxed"):
        results, seconds, cpu_seconds = run_pass(rows, GOLD_WRAPS[mode], log)
        passes[mode] = (results, seconds, cpu_seconds)
        events = [e for r in results for e in r[4]]
        kinds = {}
        for e in events:
            kinds[e] = kinds.get(e, 0) + 1
        gold_empty = sum(1 for r in results if not r[1])
        slowest = max(range(len(rows)), key=lambda i: results[i][3])
        print(f"math_verify_reference: gold={mode:6s} {len(rows)} rows in {seconds:.2f} s "
              f"({len(rows) / seconds:.1f} rows/s, 1 process; CPU {cpu_seconds:.2f} s); "
              f"accepted {sum(r[0] for r in results)}; gold parsed to nothing: {gold_empty}; "
              f"swallowed timeouts/errors: {len(events)} {kinds or ''}; "
              f"slowest row {results[slowest][3]:.3f} s ({rows[slowest]['key']})", file=sys.stderr)

    dollar = passes["dollar"][0]
    boxed = passes["boxed"][0]
    with open(args.out, "w", encoding="utf-8") as f:
        for row, d, b in zip(rows, dollar, boxed):
            out = dict(row)
            out["mathverify"] = d[0]
            out["mathverify_boxed_gold"] = b[0]
            out["mv_gold"] = describe(d[1])
            out["mv_pred"] = describe(d[2])
            out["mv_gold_empty"] = not d[1]
            out["mv_seconds"] = round(d[3], 6)
            out["mv_events"] = d[4] + [e + " (boxed gold)" for e in b[4]]
            f.write(json.dumps(out, ensure_ascii=False) + "\n")
    # One machine-readable line for the comparison script.
    summary = {mode: {"rows": len(rows), "seconds": s, "cpu_seconds": c,
                      "rows_per_s": len(rows) / s, "rows_per_cpu_s": len(rows) / c}
               for mode, (_, s, c) in passes.items()}
    with open(args.out + ".timing.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    print(f"math_verify_reference: -> {args.out} (+ .timing.json)", file=sys.stderr)


if __name__ == "__main__":
    main()
