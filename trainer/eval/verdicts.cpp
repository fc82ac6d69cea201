#include "trainer/eval/verdicts.h"

#include <array>
#include <set>
#include <utility>
#include <vector>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

bool is_label_char(char c) {
  return c == 'A' || c == 'B' || c == '<' || c == '>' || c == '=';
}

// Every non-overlapping match of `open` [AB<>=]+ `close`, left to right, as Python's
// re.findall returns them for \[\[([AB<>=]+)\]\] (open "[[") or \[([AB<>=]+)\] (open "[").
// The label class holds no bracket, so the first failing character decides: no backtracking.
std::vector<std::string_view> bracketed_labels(std::string_view s, std::string_view open,
                                               std::string_view close) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i + open.size() < s.size()) {
    if (s.substr(i, open.size()) != open) {
      ++i;
      continue;
    }
    size_t j = i + open.size();
    while (j < s.size() && is_label_char(s[j]))
      ++j;
    if (j > i + open.size() && s.substr(j, close.size()) == close) {
      out.push_back(s.substr(i + open.size(), j - i - open.size()));
      i = j + close.size();
    } else {
      ++i;
    }
  }
  return out;
}

// Arena-Hard's labels, with v2's mirrored spellings mapped to the canonical one.
std::optional<JudgeVerdict> arena_hard_label(std::string_view label) {
  struct Entry {
    const char* spelling;
    const char* canonical;
    Outcome outcome;
    bool strong;
  };
  static constexpr std::array<Entry, 10> kLabels = {{
      {"A>>B", "A>>B", Outcome::kA, true},
      {"A>B", "A>B", Outcome::kA, false},
      {"A=B", "A=B", Outcome::kTie, false},
      {"B>A", "B>A", Outcome::kB, false},
      {"B>>A", "B>>A", Outcome::kB, true},
      {"B<<A", "A>>B", Outcome::kA, true},
      {"B<A", "A>B", Outcome::kA, false},
      {"B=A", "A=B", Outcome::kTie, false},
      {"A<B", "B>A", Outcome::kB, false},
      {"A<<B", "B>>A", Outcome::kB, true},
  }};
  for (const auto& e : kLabels) {
    if (label == e.spelling) return JudgeVerdict{e.outcome, e.strong, e.canonical};
  }
  return std::nullopt;
}

ParsedVerdict parse_arena_hard(std::string_view output) {
  std::vector<std::string_view> matches = bracketed_labels(output, "[[", "]]");
  if (matches.empty()) matches = bracketed_labels(output, "[", "]");
  ParsedVerdict parsed;
  const std::set<std::string_view> distinct(matches.begin(), matches.end());
  if (distinct.empty()) return parsed;  // kNoVerdict
  if (distinct.size() > 1) {
    parsed.problem = VerdictProblem::kAmbiguous;
    for (const auto& m : distinct)
      parsed.found += (parsed.found.empty() ? "" : " ") + std::string(m);
    return parsed;
  }
  parsed.verdict = arena_hard_label(*distinct.begin());
  parsed.problem = parsed.verdict ? VerdictProblem::kNone : VerdictProblem::kUnknownLabel;
  if (!parsed.verdict) parsed.found = std::string(*distinct.begin());
  return parsed;
}

ParsedVerdict parse_mt_bench(std::string_view output) {
  static constexpr std::array<std::pair<const char*, Outcome>, 3> kTokens = {
      {{"[[A]]", Outcome::kA}, {"[[B]]", Outcome::kB}, {"[[C]]", Outcome::kTie}}};
  ParsedVerdict parsed;
  for (const auto& [token, outcome] : kTokens) {
    if (output.find(token) == std::string_view::npos) continue;
    if (parsed.verdict) {
      parsed.verdict.reset();
      parsed.problem = VerdictProblem::kAmbiguous;
      parsed.found += std::string(" ") + token;
      return parsed;
    }
    parsed.verdict = JudgeVerdict{outcome, false, std::string(1, token[2])};
    parsed.problem = VerdictProblem::kNone;
    parsed.found = token;
  }
  if (parsed.verdict) parsed.found.clear();
  return parsed;
}

}  // namespace

const char* winner_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kA:
      return "model_a";
    case Outcome::kB:
      return "model_b";
    case Outcome::kTie:
      return "tie";
    case Outcome::kTieBothBad:
      return "tie (bothbad)";
  }
  return "tie";
}

VerdictFormat parse_verdict_format(const std::string& name, const std::string& where) {
  if (name == "mt-bench") return VerdictFormat::kMtBench;
  if (name == "arena-hard") return VerdictFormat::kArenaHard;
  throw UserError(where + ": expected mt-bench or arena-hard, got '" + name + "'");
}

const char* verdict_format_name(VerdictFormat format) {
  return format == VerdictFormat::kMtBench ? "mt-bench" : "arena-hard";
}

const char* verdict_problem_name(VerdictProblem problem) {
  switch (problem) {
    case VerdictProblem::kNone:
      return "none";
    case VerdictProblem::kNoVerdict:
      return "no_verdict";
    case VerdictProblem::kAmbiguous:
      return "ambiguous";
    case VerdictProblem::kUnknownLabel:
      return "unknown_label";
  }
  return "none";
}

ParsedVerdict parse_verdict(std::string_view output, VerdictFormat format) {
  return format == VerdictFormat::kMtBench ? parse_mt_bench(output) : parse_arena_hard(output);
}

const std::string& default_judge_template() {
  static const std::string kTemplate =
      "You are judging two AI assistants' answers to the same user question. Decide which "
      "answer serves the user better: is it correct, helpful, relevant, and as detailed as the "
      "question needs? Neither the order of the answers, nor their length, nor the assistants' "
      "names may sway you. Compare the answers in a few sentences, then end with your verdict "
      "in exactly this form: [[A]] if assistant A's answer is better, [[B]] if assistant B's "
      "answer is better, [[C]] for a tie.\n\n"
      "[Question]\n{question}\n\n"
      "[Assistant A's answer]\n{answer_a}\n[End of assistant A's answer]\n\n"
      "[Assistant B's answer]\n{answer_b}\n[End of assistant B's answer]";
  return kTemplate;
}

std::optional<VerdictFormat> template_verdict_format(const std::string& tmpl) {
  if (tmpl.find("[[A>>B]]") != std::string::npos || tmpl.find("[[A>B]]") != std::string::npos)
    return VerdictFormat::kArenaHard;
  if (tmpl.find("[[A]]") != std::string::npos) return VerdictFormat::kMtBench;
  return std::nullopt;
}

void check_judge_template(const std::string& tmpl, const std::string& where) {
  for (const char* key : {"{question}", "{answer_a}", "{answer_b}"}) {
    if (tmpl.find(key) == std::string::npos)
      throw UserError(where + ": the judge template has no " + key +
                      " (it needs {question}, {answer_a} and {answer_b})");
  }
}

std::string fill_judge_template(const std::string& tmpl, std::string_view question,
                                std::string_view answer_a, std::string_view answer_b) {
  const std::array<std::pair<std::string_view, std::string_view>, 3> fills = {
      {{"{question}", question}, {"{answer_a}", answer_a}, {"{answer_b}", answer_b}}};
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    bool replaced = false;
    if (tmpl[i] == '{') {
      for (const auto& [key, value] : fills) {
        if (std::string_view(tmpl).substr(i, key.size()) == key) {
          out += value;
          i += key.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out += tmpl[i++];
  }
  return out;
}

}  // namespace flywheel
