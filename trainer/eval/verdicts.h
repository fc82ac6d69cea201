// An LLM judge's pairwise verdict: the prompt it is given and how its output is read.
//
// Two verdict formats, as the projects that defined them read them:
//
//   MT-Bench (FastChat's llm_judge, "pair-v2"): the output holds "[[A]]" (A is better), "[[B]]"
//     or "[[C]]" (a tie) anywhere. FastChat takes the first of A, B, C it finds; an output with
//     two different tokens is here unparseable instead (a small judge that restates the
//     instructions names all three, and picking A for it would be a guess).
//   Arena-Hard-Auto (v0.1's config): every match of \[\[([AB<>=]+)\]\], or when there is none
//     of \[([AB<>=]+)\]; the distinct matches must agree (one label, possibly repeated), else
//     the output is ambiguous. Labels: A>>B, A>B, A=B, B>A, B>>A, and v2's mirrored A<<B, A<B,
//     B=A, B<A, B<<A. ">>" is a strong verdict (Arena-Hard counts it three times).
//
// Model output is untrusted: every input parses to a verdict or a reason it has none, in time
// linear in its length (a hand scan, no backtracking regex).
//
// Example: parse_verdict("... so my final verdict is [[B>A]].", kArenaHard) is
// {outcome kB, strong false, label "B>A"}; parse_verdict("[[A]] or [[B]]", kMtBench) is
// kAmbiguous.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace flywheel {

// Who won one game; kTieBothBad is a verifier's "neither answer is right".
enum class Outcome { kA, kB, kTie, kTieBothBad };

// Chatbot Arena's "winner" value: model_a, model_b, tie, tie (bothbad).
const char* winner_name(Outcome outcome);

enum class VerdictFormat { kMtBench, kArenaHard };

// "mt-bench" or "arena-hard"; UserError naming `where` otherwise.
VerdictFormat parse_verdict_format(const std::string& name, const std::string& where);
const char* verdict_format_name(VerdictFormat format);

struct JudgeVerdict {
  Outcome outcome = Outcome::kTie;  // by position: kA = the answer shown first
  bool strong = false;              // Arena-Hard's ">>"
  std::string label;                // canonical: "A", "B", "C", or "A>>B" ... "B>>A"
};

// Why an output has no verdict.
enum class VerdictProblem { kNone, kNoVerdict, kAmbiguous, kUnknownLabel };
const char* verdict_problem_name(VerdictProblem problem);  // "none", "no_verdict", ...

struct ParsedVerdict {
  std::optional<JudgeVerdict> verdict;
  VerdictProblem problem = VerdictProblem::kNoVerdict;
  std::string found;  // with kUnknownLabel / kAmbiguous: what was found, e.g. "A>>>B"
};

ParsedVerdict parse_verdict(std::string_view output, VerdictFormat format);

// ---- the judge's prompt ----

// The built-in pairwise prompt (MT-Bench's verdict format), with the placeholders below.
const std::string& default_judge_template();

// The format a template asks for: Arena-Hard when it shows "[[A>>B]]" or "[[A>B]]", MT-Bench
// when it shows "[[A]]"; nullopt when it shows neither.
std::optional<VerdictFormat> template_verdict_format(const std::string& tmpl);

// UserError naming `where` unless the template holds {question}, {answer_a} and {answer_b}.
void check_judge_template(const std::string& tmpl, const std::string& where);

// The template with {question}, {answer_a} and {answer_b} replaced in one pass (an answer that
// itself contains "{answer_b}" is not expanded again); other braces are left as they are.
std::string fill_judge_template(const std::string& tmpl, std::string_view question,
                                std::string_view answer_a, std::string_view answer_b);

}  // namespace flywheel
