// Finding and normalizing the final answer of a math response (MATH-style LaTeX answers).
//
// Extraction, first that applies (one answer per response: taking any of several candidates
// would reward a model for writing several):
//   1. the last \boxed{...} or \fbox{...}, braces matched (escaped \{ \} do not count);
//      "\boxed 5" (no braces) reads to the next '$' or the end of the line;
//   2. Minerva's "Final Answer: The final answer is X. I hope it is correct." — X;
//   3. the last "final answer is X" / "the answer is X" — X up to the end of its line, a '$'
//      closing it, or a sentence-ending ". ";
//   4. the whole response when it is short (<= 64 bytes, one line): a bare answer.
// A \boxed{} left open (a truncated response) is no answer: rule 1 does not fall through to the
// others, so a cut-off box never scores by accident.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace flywheel::verifiers {

struct ExtractedAnswer {
  std::string text;
  std::string rule;  // "boxed", "minerva", "answer_is", "whole"
};

// The contents of the last \boxed / \fbox in `text`, if it is closed.
std::optional<std::string> last_boxed(std::string_view text);

std::optional<ExtractedAnswer> extract_math_answer(std::string_view response);

// The answer in canonical text form; the steps, in order (from the Hendrycks MATH
// `strip_string` and Minerva `normalize_final_answer`, minus the substitutions that can merge
// different answers, e.g. Minerva's deletion of every "a "):
//   - whitespace runs, \! \, \; \: "\ " and {,} removed (one space kept where it ends a command
//     before a letter: "\cot x");
//   - \dfrac \tfrac \cfrac -> \frac; \left \right \big... removed; \displaystyle removed;
//   - degrees (^\circ ^{\circ} \circ °), \$ $, \% % removed;
//   - a trailing unit: \text{..}/\mbox{..}/\mathrm{..} of letters after the value (with ^2 or ^3),
//     or a bare unit word from a fixed list after a number, removed;
//   - \text \textbf \textit \mathrm \mathbf \mbox \boxed wrappers unwrapped;
//   - "x = ..." or "x \in ..." with a left side of at most two characters -> the right side;
//   - shorthand \frac12 \frac1{2} \sqrt3 -> \frac{1}{2} \frac{1}{2} \sqrt{3};
//   - trailing '.' removed; thousands separators removed from a lone number ("10,080").
std::string normalize_math_answer(std::string_view answer);

}  // namespace flywheel::verifiers
