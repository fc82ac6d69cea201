#!/usr/bin/env python3
r"""Flywheel's MATH checker vs Hugging Face Math-Verify on the rows of bench/math_verify_rows.py
(stdlib only).

Joins, by "key": the labelled rows, `flywheel verify`'s output on them ("correct"; null counts as
not accepted) and bench/math_verify_reference.py's output ("mathverify"). Prints one line per
kind (and per group of kinds): rows, label accuracy of ours, label accuracy of Math-Verify,
agreement of ours with Math-Verify, and how often Math-Verify's verdict changes when the gold is
given as \boxed{} instead of $...$. Writes every row where ours and Math-Verify disagree, grouped
by (kind, ours, Math-Verify), to the report with the answer pair and both sides' extractions.
Throughput: flywheel's own "N rows in S s (R rows/s)" summary lines (from the --ours-log files)
and Math-Verify's timing file.

Usage:
  python3 bench/math_verify_compare.py --ours OURS.jsonl --mv MV.jsonl --report REPORT.md
      [--ours-other OURS_NTHREADS.jsonl] [--ours-log NAME=LOG ...]
      [--mv-timing MV.jsonl.timing.json]
"""

import argparse
import json
import re
import sys
from collections import OrderedDict

GROUPS = ("wrong (all)", "equivalent (all)", "all")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def by_key(rows, what):
    out = {}
    for r in rows:
        if r["key"] in out:
            sys.exit(f"math_verify_compare: duplicate key {r['key']} in {what}")
        out[r["key"]] = r
    return out


def group_of(kind):
    if kind.startswith("equivalent_"):
        return "equivalent (all)"
    if kind.startswith("wrong_"):
        return "wrong (all)"
    return None


def tf(b):
    return "T" if b else "F"


def pct(num, den):
    return f"{100.0 * num / den:6.1f}%" if den else "     -"


def short(s, n=160):
    s = str(s).replace("\n", "\\n")
    return s if len(s) <= n else s[: n - 3] + "..."


def flywheel_rate(log_path):
    """(rows, seconds, rows/s, process CPU seconds or None) from flywheel verify's
    'N rows in S s (R rows/s)' line and run_math_verify.sh's
    'process: W s wall, U s user, S s sys' line."""
    with open(log_path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"(\d+) rows in ([\d.]+) s \((\d+) rows/s\)", text)
    if not m:
        return None
    p = re.search(r"process: ([\d.]+) s wall, ([\d.]+) s user, ([\d.]+) s sys", text)
    cpu = float(p.group(2)) + float(p.group(3)) if p else None
    return int(m.group(1)), float(m.group(2)), int(m.group(3)), cpu


def tabulate(keys, mv, ours):
    """Per-kind counters, and the disagreements grouped by (kind, ours, Math-Verify)."""
    kinds = sorted({mv[k]["kind"] for k in keys},
                   key=lambda k: (0 if k == "solution" else 1 if k.startswith("wrong") else 2, k))
    stats = OrderedDict((name, dict(rows=0, ours_ok=0, mv_ok=0, agree=0, mv_box_diff=0, ours_na=0))
                        for name in kinds + list(GROUPS))
    disagreements = OrderedDict()
    for k in keys:
        row, o_row = mv[k], ours[k]
        label = bool(row["label"])
        o = o_row.get("correct") is True  # null (not applicable) counts as not accepted
        m, mb = bool(row["mathverify"]), bool(row["mathverify_boxed_gold"])
        for name in (row["kind"], group_of(row["kind"]), "all"):
            if name:
                s = stats[name]
                s["rows"] += 1
                s["ours_ok"] += o == label
                s["mv_ok"] += m == label
                s["agree"] += o == m
                s["mv_box_diff"] += m != mb
                s["ours_na"] += o_row.get("correct") is None
        if o != m:
            disagreements.setdefault((row["kind"], o, m), []).append((row, o_row))
    return stats, disagreements


def format_table(stats):
    header = (f"{'kind':26s} {'rows':>5s} {'ours acc':>9s} {'MV acc':>8s} {'agree':>8s}"
              f" {'MV $ vs boxed gold differ':>26s}")
    lines = [header, "-" * len(header)]
    for name, s in stats.items():
        if name in ("wrong (all)", "all"):
            lines.append("-" * len(header))
        na = f"  (ours n/a: {s['ours_na']})" if s["ours_na"] else ""
        lines.append(f"{name:26s} {s['rows']:5d} {pct(s['ours_ok'], s['rows']):>9s} "
                     f"{pct(s['mv_ok'], s['rows']):>8s} {pct(s['agree'], s['rows']):>8s} "
                     f"{s['mv_box_diff']:26d}{na}")
    return "\n".join(lines)


def throughput_lines(ours_logs, mv_timing):
    out = []
    for spec in ours_logs:
        name, _, path = spec.partition("=")
        r = flywheel_rate(path)
        if not r:
            continue
        line = f"flywheel verify {name:24s} {r[0]:7d} rows in {r[1]:8.3f} s  {r[2]:9d} rows/s"
        if r[3]:
            line += f"  (whole process incl. startup and JSON I/O: {r[3]:.3f} CPU-s)"
        out.append(line)
    if mv_timing:
        with open(mv_timing, encoding="utf-8") as f:
            for mode, t in json.load(f).items():
                gold = "$gold$" if mode == "dollar" else "\\boxed{gold}"
                out.append(f"Math-Verify, 1 process, {gold:15s} {t['rows']:7d} rows in "
                           f"{t['seconds']:8.3f} s  {t['rows_per_s']:9.1f} rows/s  "
                           f"(CPU {t['cpu_seconds']:.3f} s: {t['rows_per_cpu_s']:.1f} rows/CPU-s)")
    return out


def write_report(path, table, tput, summary, disagreements):
    n_dis = sum(len(v) for v in disagreements.values())
    with open(path, "w", encoding="utf-8") as f:
        f.write("# Flywheel MATH checker vs Math-Verify: disagreements\n\n"
                "Math-Verify = verify(parse('$' + ground_truth + '$'), parse(response)), "
                "default configs.\nlabel = the expected verdict by construction of the row. "
                "T = accepted, F = rejected.\n\n")
        f.write("```\n" + table + "\n```\n\n")
        if tput:
            f.write("```\n" + "\n".join(tput) + "\n```\n\n")
        f.write(f"{n_dis} disagreements:\n\n```\n" + "\n".join(summary) + "\n```\n")
        for (kind, o, m), items in disagreements.items():
            f.write(f"\n## kind={kind}  ours={tf(o)}  MV={tf(m)}  ({len(items)} rows)\n")
            for row, o_row in items:
                d = o_row.get("details", {})
                resp = row["response"]
                if kind == "solution":
                    resp = "(reference solution) ..." + resp[-120:]
                ours_line = (f"  - ours: {tf(o)}  extracted `{short(d.get('extracted'))}` "
                             f"normalized `{short(d.get('normalized'))}` "
                             f"truth `{short(d.get('truth'))}` "
                             f"compared={d.get('compared')} rule={d.get('rule')}")
                if d.get("reason"):
                    ours_line += f" reason: {d['reason']}"
                mv_line = (f"  - Math-Verify: {tf(m)}  "
                           f"gold {short(json.dumps(row['mv_gold'], ensure_ascii=False))} "
                           f"pred {short(json.dumps(row['mv_pred'], ensure_ascii=False))}")
                if row["mathverify_boxed_gold"] != row["mathverify"]:
                    mv_line += f"  (boxed-gold verdict: {tf(row['mathverify_boxed_gold'])})"
                if row.get("mv_events"):
                    mv_line += f"  events: {row['mv_events']}"
                f.write(f"\n- `{row['key']}` label={tf(row['label'])}\n"
                        f"  - ground truth: `{row['ground_truth']}`\n"
                        f"  - response:     `{short(resp, 240)}`\n"
                        f"{ours_line}\n{mv_line}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ours", required=True, help="flywheel verify output on the rows")
    ap.add_argument("--mv", required=True, help="math_verify_reference.py output on the same rows")
    ap.add_argument("--report", required=True, help="where the disagreement list goes (markdown)")
    ap.add_argument("--ours-other",
                    help="a second flywheel output (e.g. all threads): must agree with --ours")
    ap.add_argument("--ours-log", action="append", default=[], metavar="NAME=LOG",
                    help="flywheel verify stderr, for its rows/s (repeatable)")
    ap.add_argument("--mv-timing", help="math_verify_reference.py's .timing.json")
    args = ap.parse_args()

    mv_rows = read_jsonl(args.mv)
    mv = by_key(mv_rows, args.mv)
    ours = by_key(read_jsonl(args.ours), args.ours)
    if set(mv) != set(ours):
        sys.exit(f"math_verify_compare: the outputs have different rows ({len(set(mv) - set(ours))}"
                 f" only in Math-Verify's, {len(set(ours) - set(mv))} only in ours)")
    keys = [r["key"] for r in mv_rows]  # the rows file's order

    # The other flywheel run (e.g. all threads) must give the same verdicts, row for row.
    if args.ours_other:
        other = by_key(read_jsonl(args.ours_other), args.ours_other)
        differ = [k for k in keys if other[k].get("correct") != ours[k].get("correct")]
        print(f"flywheel verdicts, {args.ours} vs {args.ours_other}: "
              f"{len(keys) - len(differ)}/{len(keys)} identical", file=sys.stderr)
        for k in differ[:10]:
            print(f"  differs: {k}", file=sys.stderr)

    stats, disagreements = tabulate(keys, mv, ours)
    table = format_table(stats)
    print(table)

    tput = throughput_lines(args.ours_log, args.mv_timing)
    if tput:
        print("\nthroughput (wall time; flywheel: scoring only, as it reports it; "
              "Math-Verify: parse(gold) + parse(response) + verify)")
        print("\n".join(tput))

    summary = [f"{len(v):4d}  kind={kind:24s} ours={tf(o)} MV={tf(m)}"
               for (kind, o, m), v in disagreements.items()]
    n_dis = sum(len(v) for v in disagreements.values())
    print(f"\n{n_dis} disagreements (ours vs Math-Verify) by (kind, ours, MV):")
    print("\n".join(summary))
    write_report(args.report, table, tput, summary, disagreements)
    print(f"report -> {args.report}", file=sys.stderr)


if __name__ == "__main__":
    main()
