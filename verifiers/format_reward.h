// Format rewards: configurable checks of a response's shape, for RLVR recipes that reward
// reasoning laid out as asked. A format is a list of rules, all of which must hold (the share of
// rules held is in the details); a rule is one of
//   {"type": "think", "open": "<think>", "close": "</think>"}
//       the response opens (after whitespace) with exactly one non-blank block between the two
//       tags and has a non-blank answer after it; neither tag appears anywhere else
//   {"type": "boxed"}
//       the answer (after the think block, if there is one) has a closed \boxed{...}
//   {"type": "regex", "pattern": "...", "full": false}
//       RE2 syntax, searched anywhere (or matching the whole response with "full": true). RE2
//       runs in time linear in the response and in bounded memory, whatever the pattern, so a
//       pattern cannot be made to blow up by what a model writes.
// The "format" verifier reads the rules from the row's "format" field; without one it checks
// the reasoning-model layout, think then boxed answer.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "verifiers/verifier.h"

namespace flywheel::verifiers {

class FormatRules {
 public:
  // UserError naming the rule and what is wrong ("format[1].pattern: ...") for bad rules.
  explicit FormatRules(const nlohmann::json& rules);
  ~FormatRules();
  FormatRules(FormatRules&&) noexcept;

  // One result per rule, in order.
  std::vector<bool> check(std::string_view response) const;
  size_t size() const;

  static nlohmann::json default_rules();  // think, then boxed

 private:
  struct Rule;
  std::vector<std::unique_ptr<Rule>> rules_;
};

Verdict check_format(const VerifyInput& input);

}  // namespace flywheel::verifiers
