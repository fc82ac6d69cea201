#!/usr/bin/env python3
"""Agreement between two sets of IFEval labels, per instruction id.

Compares reference rows (bench/ifeval_reference.py output) with our tool's rows
(`flywheel verify --in reference.jsonl --out ours.jsonl`), matched by line order. Each row must
carry "strict"/"loose" lists of bools (for ours, "details"."strict"/"loose" wins when present,
since flywheel verify echoes its input row's fields, the reference's labels included, and puts its
own under "details"); instruction ids and kwargs are taken from the reference row.
Prints a per-instruction-id table (count, strict agreement %, loose agreement %, and how many
disagreements are reference-True/ours-False vs reference-False/ours-True) and writes a report
with the same table and up to --examples disagreeing examples per id (response excerpt, kwargs,
both labels).

keywords:letter_frequency with a letter outside a-z ("#", "!") is listed under its own id,
"keywords:letter_frequency[non-a-z]": lm-eval replaces such a letter by a random one, so the
reference label there is arbitrary (bench/ifeval_reference.py seeds it, but it is not the
letter in the data).

Standard library only. Usage:
  python3 bench/ifeval_agreement.py --ref /tmp/ifeval/reference.jsonl --ours /tmp/ifeval/ours.jsonl \
      [--report /tmp/ifeval/agreement.txt] [--examples 5]
Exit status: 0 (a comparison tool; disagreement is data, not an error), 2 on malformed input.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

RANDOM_LETTER_ID = "keywords:letter_frequency[non-a-z]"


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def table_id(iid: str, kwargs: dict) -> str:
    """Instruction id used in the table (splits off the reference's random-letter cases)."""
    if iid == "keywords:letter_frequency":
        letter = (kwargs or {}).get("letter") or ""
        if len(letter) != 1 or not ("a" <= letter.lower() <= "z"):
            return RANDOM_LETTER_ID
    return iid


def labels(row, mode, n, prefer_details=False):
    """The row's list for mode, or None when missing / malformed / of the wrong length.

    With prefer_details, "details"."strict"/"loose" is used when present: `flywheel verify` copies
    the input row's fields (here the reference's own "strict"/"loose") to its output and puts the
    labels it computed under "details", so the top-level lists of its rows may be the reference's.
    """
    v = row.get(mode)
    details = row.get("details")
    if prefer_details and isinstance(details, dict) and mode in details:
        v = details[mode]
    if not isinstance(v, list) or len(v) != n or not all(isinstance(x, bool) for x in v):
        return None
    return v


def excerpt(text: str, limit: int) -> str:
    """JSON-quoted excerpt (newlines visible); long texts keep their start and end."""
    if len(text) > limit:
        half = limit // 2
        text = text[:half] + " [...] " + text[-half:]
    return json.dumps(text, ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", required=True, help="reference JSONL (ifeval_reference.py output)")
    ap.add_argument("--ours", required=True, help="our tool's output JSONL (same row order)")
    ap.add_argument("--report", default="/tmp/ifeval/agreement_report.txt", help="report file")
    ap.add_argument("--examples", type=int, default=5, help="disagreeing examples per id")
    ap.add_argument("--excerpt", type=int, default=400, help="characters of response per example")
    args = ap.parse_args()

    ref_rows, our_rows = read_jsonl(args.ref), read_jsonl(args.ours)
    if len(ref_rows) != len(our_rows):
        print("ifeval_agreement: %d reference rows but %d of ours; comparing the first %d"
              % (len(ref_rows), len(our_rows), min(len(ref_rows), len(our_rows))), file=sys.stderr)

    # id -> counters; examples per id
    stats = collections.defaultdict(lambda: collections.Counter())
    examples = collections.defaultdict(list)
    prompt_level = collections.Counter()
    missing_rows = 0
    from_details = 0  # rows of ours whose labels came from "details"
    prompt_mismatch = 0

    for line_no, (ref, ours) in enumerate(zip(ref_rows, our_rows), start=1):
        ids = ref["instruction_id_list"]
        kwargs = ref.get("kwargs") or [{}] * len(ids)
        n = len(ids)
        if "prompt" in ours and ours["prompt"] != ref["prompt"]:
            prompt_mismatch += 1
        r_s, r_l = labels(ref, "strict", n), labels(ref, "loose", n)
        if r_s is None or r_l is None:
            print("ifeval_agreement: %s line %d: reference labels malformed" % (args.ref, line_no),
                  file=sys.stderr)
            sys.exit(2)
        o_s, o_l = labels(ours, "strict", n, True), labels(ours, "loose", n, True)
        if isinstance(ours.get("details"), dict) and "strict" in ours["details"]:
            from_details += 1
        if o_s is None or o_l is None:
            missing_rows += 1
        for mode, r, o in (("strict", r_s, o_s), ("loose", r_l, o_l)):
            prompt_level[mode + "_n"] += 1
            prompt_level[mode + "_agree"] += o is not None and all(r) == all(o)
        for k, iid in enumerate(ids):
            tid = table_id(iid, kwargs[k])
            st = stats[tid]
            st["n"] += 1
            st["ref_strict_true"] += r_s[k]
            st["ref_loose_true"] += r_l[k]
            bad_modes = []
            for mode, r, o in (("strict", r_s, o_s), ("loose", r_l, o_l)):
                if o is None:
                    st[mode + "_missing"] += 1
                    bad_modes.append(mode)
                elif r[k] == o[k]:
                    st[mode + "_agree"] += 1
                else:
                    st[mode + ("_refT_oursF" if r[k] else "_refF_oursT")] += 1
                    bad_modes.append(mode)
            if bad_modes and len(examples[tid]) < args.examples:
                examples[tid].append((line_no, ref, ours, k, bad_modes))

    # ---- table ----
    head = "%-48s %6s %8s %8s %9s %9s %8s %8s" % (
        "instruction_id", "count", "strict%", "loose%", "s:refT/F", "l:refT/F", "refS%", "refL%")
    lines = [head, "-" * len(head)]
    tot = collections.Counter()
    for tid in sorted(stats):
        st = stats[tid]
        n = st["n"]
        tot.update(st)
        lines.append("%-48s %6d %8.1f %8.1f %4d/%-4d %4d/%-4d %8.1f %8.1f" % (
            tid, n, 100.0 * st["strict_agree"] / n, 100.0 * st["loose_agree"] / n,
            st["strict_refT_oursF"], st["strict_refF_oursT"],
            st["loose_refT_oursF"], st["loose_refF_oursT"],
            100.0 * st["ref_strict_true"] / n, 100.0 * st["ref_loose_true"] / n))
    n = tot["n"] or 1
    lines.append("-" * len(head))
    lines.append("%-48s %6d %8.1f %8.1f %4d/%-4d %4d/%-4d %8.1f %8.1f" % (
        "ALL (instruction level)", tot["n"], 100.0 * tot["strict_agree"] / n,
        100.0 * tot["loose_agree"] / n, tot["strict_refT_oursF"], tot["strict_refF_oursT"],
        tot["loose_refT_oursF"], tot["loose_refF_oursT"],
        100.0 * tot["ref_strict_true"] / n, 100.0 * tot["ref_loose_true"] / n))
    pn = prompt_level["strict_n"] or 1
    lines.append("%-48s %6d %8.1f %8.1f" % (
        "ALL (prompt level: all-followed agrees)", prompt_level["strict_n"],
        100.0 * prompt_level["strict_agree"] / pn, 100.0 * prompt_level["loose_agree"] / pn))
    notes = ["labels of ours read from \"details\" in %d of %d rows, top-level elsewhere"
             % (from_details, prompt_level["strict_n"])]
    if missing_rows:
        notes.append("%d rows of ours lack valid strict/loose lists (counted as disagreement)" % missing_rows)
    if prompt_mismatch:
        notes.append("%d rows whose prompt differs from the reference row (order mismatch?)" % prompt_mismatch)
    if RANDOM_LETTER_ID in stats:
        notes.append("%s: the reference substitutes a random letter; not a real disagreement" % RANDOM_LETTER_ID)
    legend = ("strict%/loose%: agreement; s:refT/F, l:refT/F: disagreements where the reference says "
              "True (ours False) / False (ours True); refS%/refL%: reference pass rates")
    table = "\n".join(lines + [legend] + ["note: " + x for x in notes])
    print(table)

    # ---- report ----
    with open(args.report, "w", encoding="utf-8") as f:
        f.write("IFEval agreement: reference %s vs ours %s\n\n" % (args.ref, args.ours))
        f.write(table + "\n\n")
        for tid in sorted(examples):
            f.write("=" * 100 + "\n%s: %d disagreeing instruction(s), first %d shown\n"
                    % (tid, sum(stats[tid][m + s] for m in ("strict", "loose")
                                for s in ("_refT_oursF", "_refF_oursT", "_missing")),
                       len(examples[tid])))
            for line_no, ref, ours, k, modes in examples[tid]:
                o_s = labels(ours, "strict", len(ref["instruction_id_list"]), True)
                o_l = labels(ours, "loose", len(ref["instruction_id_list"]), True)
                f.write("-" * 100 + "\n")
                f.write("line %d  key %s  variant %s\n" % (line_no, ref.get("key"), ref.get("variant", "")))
                f.write("instruction #%d kwargs %s  (disagree: %s)\n" % (
                    k, json.dumps((ref.get("kwargs") or [{}] * (k + 1))[k], ensure_ascii=False), ", ".join(modes)))
                f.write("  strict: ref %s  ours %s\n" % (ref["strict"][k], o_s[k] if o_s else "missing"))
                f.write("  loose:  ref %s  ours %s\n" % (ref["loose"][k], o_l[k] if o_l else "missing"))
                f.write("  response: %s\n" % excerpt(ref["response"], args.excerpt))
            f.write("\n")
    print("ifeval_agreement: report -> %s" % args.report)


if __name__ == "__main__":
    main()
