// A parser for normalized math answers (see math_answer.h) and the equivalence of two of them.
//
// An answer is a structure of expressions:
//   expression   3\sqrt{13}, \frac{11+9a}{20}, x^5-x^4+1, 2\frac{1}{2} (a mixed number), 5!
//   tuple        (3,\frac{\pi}{2}), intervals [2,7), (-\infty,0] — brackets must agree
//   set          \{1\pm\sqrt{5},-2\}, \emptyset — unordered
//   list         1,-2 (several solutions) — unordered; "a \pm b" is the list a+b, a-b
//   matrix       \begin{pmatrix}-1&0\\0&-1\end{pmatrix} (also bmatrix, matrix)
//   equation     5x-7y+11z+4=0 — equal to another when the two sides' differences are
//                proportional (2y=2x+6 is y=x+3)
//   union        (0,9)\cup(9,36) — unordered
//   text         a word of three or more letters (\text{Evelyn}, east): compared ignoring case
// Expressions are evaluated exactly (math_value.h). Variables (single letters with optional
// subscripts, Greek letters, i) are polynomial-identity tested: both sides are evaluated at
// three fixed points with every variable set to a distinct rational, all three must agree.
// Numbers in another base (52_8) are atoms equal only to themselves.
//
// Bounds for untrusted input: answers longer than kMaxParsedBytes are not parsed (compared as
// text), nesting deeper than 64 or more than 4096 nodes is a parse failure, and the values'
// own bounds (math_value.h) keep every evaluation small.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace flywheel::verifiers {

inline constexpr size_t kMaxParsedBytes = 2048;

struct MathComparison {
  bool equal = false;
  // How it was decided: "text" (equal normalized text), "exact", "numeric" (some value left
  // the exact basis and was compared at 1e-9), "structure" (tuples, sets... differ in shape),
  // "unparsed" (one side could not be parsed and the texts differ).
  std::string how;
};

// Compares two normalized answers (normalize_math_answer's output).
MathComparison compare_math_answers(std::string_view a, std::string_view b);

}  // namespace flywheel::verifiers
