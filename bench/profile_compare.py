#!/usr/bin/python3
"""Sets two autograd-profiler Chrome traces of one training step side by side, per operator.

    /usr/bin/python3 bench/profile_compare.py PYTORCH_TRACE.json FLYWHEEL_TRACE.json [--top N]

The traces come from `--profile` of bench/train_step_bench.py and flywheel_bench_train_step.
Prints, for the operators with the most self time (time not spent in nested operators),
their call counts and self milliseconds on each side, largest difference first.
"""

import argparse
import json
from collections import defaultdict


def load(path):
    with open(path) as f:
        text = f.read().strip()
    # LibTorch's legacy RecordProfile writes a trailing comma-free array; be lenient anyway.
    events = json.loads(text)
    if isinstance(events, dict):
        events = events.get("traceEvents", [])
    return [e for e in events if e.get("ph") == "X" and "dur" in e]


def per_op(events):
    """{name: [calls, self_us, total_us]}, self time by nesting within each thread."""
    out = defaultdict(lambda: [0, 0.0, 0.0])
    by_tid = defaultdict(list)
    for e in events:
        by_tid[(e.get("pid"), e.get("tid"))].append(e)
    for evs in by_tid.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e["dur"])))
        stack = []  # [end, name, child_us]
        def close(item):
            end, name, dur, child = item
            out[name][1] += dur - child
        for e in evs:
            ts, dur = float(e["ts"]), float(e["dur"])
            while stack and stack[-1][0] <= ts:
                close(stack.pop())
            if stack:
                stack[-1][3] += dur
            out[e["name"]][0] += 1
            out[e["name"]][2] += dur
            stack.append([ts + dur, e["name"], dur, 0.0])
        while stack:
            close(stack.pop())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pytorch")
    ap.add_argument("flywheel")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    py, fw = per_op(load(a.pytorch)), per_op(load(a.flywheel))
    names = set(py) | set(fw)
    zero = [0, 0.0, 0.0]
    rows = sorted(names, key=lambda n: -max(py.get(n, zero)[1], fw.get(n, zero)[1]))[: a.top]
    rows.sort(key=lambda n: -(fw.get(n, zero)[1] - py.get(n, zero)[1]))
    print(f"{'operator':<44} {'py calls':>8} {'fw calls':>8} {'py self ms':>10} "
          f"{'fw self ms':>10} {'fw - py':>8}")
    for n in rows:
        p, f = py.get(n, zero), fw.get(n, zero)
        print(f"{n[:44]:<44} {p[0]:>8} {f[0]:>8} {p[1] / 1e3:>10.1f} {f[1] / 1e3:>10.1f} "
              f"{(f[1] - p[1]) / 1e3:>8.1f}")
    tp = sum(v[1] for v in py.values()) / 1e3
    tf = sum(v[1] for v in fw.values()) / 1e3
    cp = sum(v[0] for v in py.values())
    cf = sum(v[0] for v in fw.values())
    print(f"{'all operators':<44} {cp:>8} {cf:>8} {tp:>10.1f} {tf:>10.1f} {tf - tp:>8.1f}")


if __name__ == "__main__":
    main()
