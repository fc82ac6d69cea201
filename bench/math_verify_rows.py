#!/usr/bin/env python3
r"""Comparison rows for the MATH answer checker vs Hugging Face Math-Verify (stdlib only).

Reads MATH-500 (one JSON object a line with "solution", "answer", "unique_id") and writes JSONL rows
in the shape `flywheel verify` reads ({"response", "ground_truth", "dataset": "math"}) plus
"label" (is the response's answer right?), "kind" and a unique "key":

  solution            the reference solution as the response; label true (500 rows)
  wrong_bump          \boxed{answer with its last number increased by one}; label false
  wrong_neg           \boxed{-(answer)} (answer "0" skipped); label false
  equivalent_<how>    \boxed{answer rewritten to an equivalent form}; label true. <how> is one of
                      the rewrites in EQUIVALENT_REWRITES below (a/b, decimals, \sqrt forms,
                      list order, "x = ", dropped ^\circ/units, \dfrac, spacing, thousands
                      separators, ...); the frequent ones are thinned (THIN_EVERY)

Every rewrite is deterministic (no randomness), so the file is the same on every run. Rewrites
that would leave the answer unchanged are skipped; one rewrite of each kind per answer at most.

Usage: python3 bench/math_verify_rows.py [--data PATH] --out ROWS.jsonl
"""

import argparse
import json
import re
import sys
from decimal import Decimal
from fractions import Fraction

DEFAULT_DATA = "/work/shared/data/math500/test.jsonl"

# Rewrites that apply to a large share of MATH-500 (plain numbers, \frac) are kept for one answer
# in N of those they apply to (in file order), so that they do not swamp the other kinds.
THIN_EVERY = {"x_equals": 6, "dfrac": 3}


def boxed(s):
    return "\\boxed{" + s + "}"


# --------------------------------------------------------------------------------------------
# Wrong answers
# --------------------------------------------------------------------------------------------

# A number: 12, 1.25, .35 (a trailing digit run; signs are not part of it).
NUMBER = re.compile(r"\d+\.\d+|\.\d+|\d+")


# A trailing unit, which may carry an exponent: 864 \mbox{ inches}^2, 5.4 \text{ cents}.
UNIT_SUFFIX = re.compile(r"\s*\\(?:text|mbox)\{[^{}]*\}(\^\d)?$")


def bump_last_number(ans):
    r"""The answer with its last number increased by one (decimals keep their digits:
    1.25 -> 2.25, .35625 -> 1.35625), or None when it has no number. The exponent of a trailing
    unit does not count (864 \mbox{ inches}^2 -> 865 \mbox{ inches}^2): both checkers drop units."""
    unit = UNIT_SUFFIX.search(ans)
    if unit:
        head = bump_last_number(ans[: unit.start()])
        return None if head is None else head + unit.group()
    matches = list(NUMBER.finditer(ans))
    if not matches:
        return None
    m = matches[-1]
    bumped = str(Decimal(m.group()) + 1)
    if "." not in m.group():  # keep leading zeros: the "080" of 10,\!080 becomes "081"
        bumped = bumped.zfill(len(m.group()))
    return ans[: m.start()] + bumped + ans[m.end():]


# --------------------------------------------------------------------------------------------
# Equivalent rewrites. Each takes the ground-truth answer string and returns the rewritten
# answer, or None when it does not apply.
# --------------------------------------------------------------------------------------------

# A whole answer that is a fraction of two non-negative integers, in any of the spellings MATH
# uses: \frac{3}{2}, \dfrac{17}{50}, \frac43, \frac 59, \frac9{19}, \frac{270}7 (optional sign).
FRAC = re.compile(r"^(-?)\s*\\[dt]?frac\s*(?:\{\s*(\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))$")
# A whole answer that is a plain integer or decimal (optional sign).
PLAIN_NUMBER = re.compile(r"^-?(\d+|\d+\.\d+|\.\d+)$")
# A whole answer that is an integer with thousands separators: 58,500  10,\!080  \$32,\!348.
THOUSANDS = re.compile(r"^(\\\$)?\d{1,3}(,(\\!)?\s*\d{3})+$")


def parse_frac(ans):
    """(sign, numerator, denominator) of a whole-answer integer fraction, else None."""
    m = FRAC.match(ans.strip())
    if not m:
        return None
    num = int(m.group(2) or m.group(3))
    den = int(m.group(4) or m.group(5))
    return m.group(1), num, den


def terminating_decimal(q):
    """Exact decimal string of a Fraction whose denominator has only factors 2 and 5, else None."""
    den = q.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return None
    # Enough digits: the denominator divides 10^k for k = max(exponent of 2, exponent of 5).
    k = 0
    while (10**k) % q.denominator:
        k += 1
    d = Decimal(q.numerator) / Decimal(q.denominator)
    return format(d.quantize(Decimal(1).scaleb(-k)), "f") if k else str(q.numerator)


def rw_slash(ans):
    r"""\frac{a}{b} -> a/b."""
    f = parse_frac(ans)
    if not f or f[2] == 0:
        return None
    sign, num, den = f
    return f"{sign}{num}/{den}"


def rw_decimal(ans):
    r"""A fraction (or a mixed number such as 1\frac{4}{5}) with a terminating decimal -> that
    decimal."""
    f = parse_frac(ans)
    if f:
        sign, num, den = f
        q = Fraction(num, den) * (-1 if sign else 1)
    else:
        m = re.match(r"^(\d+)\s*\\[dt]?frac\{(\d+)\}\{(\d+)\}$", ans.strip())  # mixed number
        if not m:
            return None
        q = int(m.group(1)) + Fraction(int(m.group(2)), int(m.group(3)))
    return terminating_decimal(q)


def rw_fraction(ans):
    r"""A decimal -> \frac{p}{q} in lowest terms (1.25 -> \frac{5}{4}); a mixed number -> an
    improper fraction."""
    s = ans.strip()
    if PLAIN_NUMBER.match(s) and "." in s:
        q = Fraction(Decimal(s))
    else:
        m = re.match(r"^(\d+)\s*\\[dt]?frac\{(\d+)\}\{(\d+)\}$", s)
        if not m:
            return None
        q = int(m.group(1)) + Fraction(int(m.group(2)), int(m.group(3)))
    sign = "-" if q < 0 else ""
    q = abs(q)
    if q.denominator == 1:
        return f"{sign}{q.numerator}"
    return f"{sign}\\frac{{{q.numerator}}}{{{q.denominator}}}"


def rw_dfrac(ans):
    r"""\frac <-> \dfrac (every occurrence, whichever the answer uses)."""
    if "\\dfrac" in ans:
        return ans.replace("\\dfrac", "\\frac")
    if "\\frac" in ans:
        return ans.replace("\\frac", "\\dfrac")
    return None


def square_part(n):
    """(a, b) with n = a^2 * b and b square-free."""
    a, b, p = 1, n, 2
    while p * p <= b:
        while b % (p * p) == 0:
            a *= p
            b //= p * p
        p += 1
    return a, b


# c\sqrt{r} or c \sqrt r with an integer coefficient that is a whole token (not an exponent or a
# subscript, not the tail of a longer number or a name).
COEF_SQRT = re.compile(r"(?<![\w^_.])(\d+)\s*\\sqrt\s*(?:\{(\d+)\}|(\d))")
BARE_SQRT = re.compile(r"(?<![\w^_.}])\\sqrt\s*(?:\{(\d+)\}|(\d))")


def rw_sqrt(ans):
    r"""c\sqrt{r} -> \sqrt{c^2 r} (3\sqrt{13} -> \sqrt{117}); else \sqrt{a^2 b} ->
    a\sqrt{b}."""
    if COEF_SQRT.search(ans):
        return COEF_SQRT.sub(
            lambda m: "\\sqrt{%d}" % (int(m.group(1)) ** 2 * int(m.group(2) or m.group(3))), ans)

    def split(m):
        a, b = square_part(int(m.group(1) or m.group(2)))
        return m.group(0) if a == 1 else ("%d" % a if b == 1 else "%d\\sqrt{%d}" % (a, b))

    out = BARE_SQRT.sub(split, ans)
    return out if out != ans else None


def split_top_level(s, seps):
    r"""Split s at the characters in seps that are outside (), [], {} (LaTeX \{ \} count too).
    Returns (pieces, separators)."""
    pieces, found, depth, cur = [], [], 0, ""
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            cur += s[i : i + 2]
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if depth == 0 and c in seps and cur.strip():
            pieces.append(cur)
            found.append(c)
            cur = ""
        else:
            cur += c
        i += 1
    pieces.append(cur)
    return pieces, found


def rw_reorder(ans):
    r"""A bare list or a \{set\} in reverse order: "3, 5, 7" -> "7, 5, 3" (not tuples or intervals,
    whose order matters)."""
    s = ans.strip()
    inner, wrap = s, ("", "")
    if s.startswith("\\{") and s.endswith("\\}"):
        inner, wrap = s[2:-2], ("\\{", "\\}")
    elif s[:1] in "([" or "\\in" in s or "\\cup" in s or THOUSANDS.match(s):
        return None
    items, _ = split_top_level(inner, ",")
    if len(items) < 2:
        return None
    return wrap[0] + ", ".join(x.strip() for x in reversed(items)) + wrap[1]


def rw_commute(ans):
    """Terms of a sum in reverse order (6 - 5i -> -5i + 6, 2k+2 -> 2 + 2k), or the factors of a
    product of two parenthesized factors swapped; for "y = ..." only the right-hand side."""
    s = ans.strip()
    m = re.match(r"^\(([^()]*)\)\(([^()]*)\)$", s)
    if m:
        return f"({m.group(2)})({m.group(1)})"
    lhs = ""
    if re.match(r"^[a-z]\s*=", s):
        lhs, s = s.split("=", 1)
        lhs += "= "
        s = s.strip()
    if any(t in s for t in ("\\pm", "=", ",", "\\cup", "\\in", "matrix", "\\text")):
        return None
    sign = "+"
    if s.startswith("-"):  # a leading minus belongs to the first term
        sign, s = "-", s[1:].lstrip()
    pieces, seps = split_top_level(s, "+-")
    terms = []
    for i, p in enumerate(pieces):
        terms.append((sign, p.strip()))
        if i < len(seps):
            sign = seps[i]
    # A "-" right after "^" or "_" or "{" would be an exponent sign, not a term: skip those answers.
    if len(terms) < 2 or re.search(r"[\^_{(]\s*-", s):
        return None
    out = ""
    for i, (sign, t) in enumerate(reversed(terms)):
        if i == 0:
            out = ("-" if sign == "-" else "") + t
        else:
            out += f" {sign} {t}"
    return lhs + out


def rw_x_equals(ans):
    """"x = N" for a plain number N."""
    s = ans.strip()
    return "x = " + s if PLAIN_NUMBER.match(s) else None


def rw_no_degree(ans):
    r"""90^\circ -> 90."""
    out = re.sub(r"\s*\^\s*\{?\\circ\}?", "", ans)
    return out if out != ans else None


def rw_no_unit(ans):
    r"""Drop unit text and the dollar sign: 5.4 \text{ cents} -> 5.4, \$36 -> 36,
    864 \mbox{ inches}^2 -> 864, \frac{270}7\text{ degrees} -> \frac{270}7."""
    out = re.sub(r"\s*\\(?:text|mbox)\{\s*[a-z ]+\}(\^\d)?$", "", ans)
    out = out.replace("\\$", "")
    return out.strip() if out != ans else None


def rw_spacing(ans):
    r"""Spaces removed when the answer has any (except the one that ends a command name, as in
    \cot x); else spaces put around + - = and after commas. Numbers with thousands separators
    are left to rw_thousands (a space after their comma would make them look like lists)."""
    if THOUSANDS.match(ans.strip()):
        return None
    if " " in ans:
        def squeeze(m):
            # Keep one space between a command name and a letter ("\cot x" is not "\cotx").
            after_command = re.search(r"\\[a-zA-Z]+$", ans[: m.start()])
            return " " if after_command and ans[m.end() : m.end() + 1].isalpha() else ""

        out = re.sub(r" +", squeeze, ans)
        return out if out != ans else None
    out = re.sub(r"(?<=[\w}])([+=]|(?<!\^)-)(?=[\w\\{(])", r" \1 ", ans)
    out = re.sub(r",(?=\S)", ", ", out)
    return out if out != ans else None


def rw_thousands(ans):
    r"""Thousands separators: 10,\!080 -> 10080 and 58,500 -> 58500; 28800 -> 28{,}800."""
    s = ans.strip()
    if THOUSANDS.match(s):
        return re.sub(r",(\\!)?\s*", "", s)
    if re.match(r"^\d{5,}$", s):  # 4-digit numbers are usually written without a separator
        return f"{int(s):,}".replace(",", "{,}")
    return None


def rw_braces(ans):
    r"""Braces made explicit or dropped: \frac43 -> \frac{4}{3}, 52_8 -> 52_{8},
    4210_{5} -> 4210_5, 11\sqrt2 -> 11\sqrt{2}."""
    out = re.sub(r"\\([dt]?frac)\s*(\d)\s*(\d)", r"\\\1{\2}{\3}", ans)
    out = re.sub(r"\\([dt]?frac)\s*(\d)\s*\{", r"\\\1{\2}{", out)
    out = re.sub(r"\\([dt]?frac)(\{\d+\})\s*(\d)(?!\d)", r"\\\1\2{\3}", out)
    out = re.sub(r"\\sqrt\s*(\d)", r"\\sqrt{\1}", out)
    out = re.sub(r"_(\d)(?![\d}])", r"_{\1}", out)
    if out == ans:
        out = re.sub(r"_\{(\d)\}", r"_\1", ans)
    return out if out != ans else None


def rw_left_right(ans):
    r"""\left( ... \right] -> ( ... ]."""
    out = re.sub(r"\\(left|right)\s*", "", ans)
    return out if out != ans else None


def rw_text_unwrap(ans):
    r"""\text{Evelyn} -> Evelyn (a whole answer that is a single \text{})."""
    m = re.match(r"^\\text\{([^{}]*)\}$", ans.strip())
    return m.group(1) if m else None


def rw_drop_var(ans):
    r"""x=5 -> 5 and x \in [-2,7] -> [-2,7] (the answer names the variable the question asks
    for)."""
    m = re.match(r"^[a-z]\s*(=|\\in)\s*(.+)$", ans.strip())
    if not m or re.search(r"[a-z]", re.sub(r"\\[a-z]+", "", m.group(2))):
        return None  # "y = 2x + 3" is an equation (a line), not a value of y
    return m.group(2)


def rw_matrix_frac(ans):
    r"""Entries a/b of a matrix written as \frac{a}{b}."""
    if "matrix" not in ans:
        return None
    out = re.sub(r"(-?)(\d+)/(\d+)", r"\1\\frac{\2}{\3}", ans)
    return out if out != ans else None


def rw_pm_expand(ans):
    r"""a \pm b -> a + b, a - b (the two values listed)."""
    s = ans.strip()
    if s.count("\\pm") != 1 or "," in s or s.startswith("\\{"):
        return None
    a, b = (x.strip() for x in s.split("\\pm"))
    return f"{a} + {b}, {a} - {b}" if a and b else None


def rw_rationalize(ans):
    r"""\frac{c\sqrt{n}}{d} -> \frac{c n}{d\sqrt{n}}, the denominator un-rationalized:
    \frac{\sqrt{3}}{3} -> \frac{3}{3\sqrt{3}}."""
    m = re.match(r"^(-?)\\frac\{(\d*)\\sqrt\{(\d+)\}\}\{(\d+)\}$", ans.strip())
    if not m:
        return None
    sign, c, n, d = m.group(1), int(m.group(2) or 1), int(m.group(3)), int(m.group(4))
    return f"{sign}\\frac{{{c * n}}}{{{d}\\sqrt{{{n}}}}}"


def rw_frac_sign(ans):
    r"""-\frac{a}{b} -> \frac{-a}{b}."""
    m = re.match(r"^-\s*\\([dt]?frac)\{([^{}]+)\}\{([^{}]+)\}$", ans.strip())
    return f"\\{m.group(1)}{{-{m.group(2)}}}{{{m.group(3)}}}" if m else None


EQUIVALENT_REWRITES = [
    ("slash", rw_slash),
    ("decimal", rw_decimal),
    ("fraction", rw_fraction),
    ("dfrac", rw_dfrac),
    ("sqrt", rw_sqrt),
    ("reorder", rw_reorder),
    ("commute", rw_commute),
    ("x_equals", rw_x_equals),
    ("no_degree", rw_no_degree),
    ("no_unit", rw_no_unit),
    ("spacing", rw_spacing),
    ("thousands", rw_thousands),
    ("braces", rw_braces),
    ("left_right", rw_left_right),
    ("text_unwrap", rw_text_unwrap),
    ("drop_var", rw_drop_var),
    ("matrix_frac", rw_matrix_frac),
    ("pm_expand", rw_pm_expand),
    ("rationalize", rw_rationalize),
    ("frac_sign", rw_frac_sign),
]


def make_rows(problems):
    rows = []

    def add(p, kind, response, label):
        rows.append({
            "key": f"{p['unique_id']}#{kind}",
            "kind": kind,
            "label": label,
            "response": response,
            "ground_truth": p["answer"],
            "dataset": "math",
        })

    applied = {}  # rewrite -> how many answers it has applied to so far (for THIN_EVERY)
    for p in problems:
        ans = p["answer"]
        add(p, "solution", p["solution"], True)
        bumped = bump_last_number(ans)
        if bumped is not None:
            add(p, "wrong_bump", boxed(bumped), False)
        if ans.strip() != "0":
            add(p, "wrong_neg", boxed("-(" + ans + ")"), False)
        for how, fn in EQUIVALENT_REWRITES:
            out = fn(ans)
            if out is None or not out.strip() or out == ans:
                continue
            applied[how] = applied.get(how, 0) + 1
            if (applied[how] - 1) % THIN_EVERY.get(how, 1) == 0:
                add(p, "equivalent_" + how, boxed(out), True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA, help="MATH-500 test.jsonl")
    ap.add_argument("--out", required=True, help="rows JSONL to write")
    args = ap.parse_args()

    with open(args.data, encoding="utf-8") as f:
        problems = [json.loads(line) for line in f if line.strip()]
    rows = make_rows(problems)
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)), "duplicate keys"
    with open(args.out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")

    counts = {}
    for r in rows:
        group = "equivalent (all)" if r["kind"].startswith("equivalent_") else r["kind"]
        counts[group] = counts.get(group, 0) + 1
        if group != r["kind"]:
            counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    print(f"math_verify_rows: {len(rows)} rows from {len(problems)} problems -> {args.out}",
          file=sys.stderr)
    for k in sorted(counts):
        print(f"  {k:28s} {counts[k]:5d}", file=sys.stderr)


if __name__ == "__main__":
    main()
