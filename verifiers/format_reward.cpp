#include "verifiers/format_reward.h"

#include <re2/re2.h>

#include <algorithm>
#include <optional>

#include "trainer/core/error.h"
#include "verifiers/math_answer.h"
#include "verifiers/text.h"

namespace flywheel::verifiers {
namespace {

// RE2's memory bound per pattern (its DFA cache falls back to the slower NFA when exhausted,
// so the bound never turns into a failure to match).
constexpr int64_t kRegexMemory = 8 << 20;

size_t count_of(std::string_view text, std::string_view what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string_view::npos;
       at = text.find(what, at + what.size()))
    ++n;
  return n;
}

bool blank(std::string_view text) {
  return trim(text).empty();
}

}  // namespace

struct FormatRules::Rule {
  enum class Type { kThink, kBoxed, kRegex } type;
  std::string open, close;  // kThink; kBoxed reads the answer after `close` when set
  std::unique_ptr<RE2> regex;
  bool full = false;
};

FormatRules::FormatRules(const nlohmann::json& rules) {
  if (!rules.is_array() || rules.empty())
    throw UserError("format: expected a non-empty list of rules");
  std::string think_close;
  for (size_t i = 0; i < rules.size(); ++i) {
    const std::string where = "format[" + std::to_string(i) + "]";
    const auto& r = rules[i];
    if (!r.is_object() || !r.contains("type") || !r["type"].is_string())
      throw UserError(where + ": expected an object with a \"type\" (think, boxed, regex)");
    const std::string type = r["type"];
    auto rule = std::make_unique<Rule>();
    const auto text = [&](const char* key, const char* fallback) {
      if (!r.contains(key)) return std::string(fallback);
      if (!r[key].is_string() || r[key].get<std::string>().empty())
        throw UserError(where + "." + key + ": expected a non-empty string");
      return r[key].get<std::string>();
    };
    if (type == "think") {
      rule->type = Rule::Type::kThink;
      rule->open = text("open", "<think>");
      rule->close = text("close", "</think>");
      think_close = rule->close;
    } else if (type == "boxed") {
      rule->type = Rule::Type::kBoxed;
      rule->close = think_close;  // a think rule listed earlier decides where the answer starts
    } else if (type == "regex") {
      rule->type = Rule::Type::kRegex;
      if (r.contains("full")) {
        if (!r["full"].is_boolean()) throw UserError(where + ".full: expected true or false");
        rule->full = r["full"].get<bool>();
      }
      RE2::Options options;
      options.set_log_errors(false);
      options.set_max_mem(kRegexMemory);
      options.set_dot_nl(true);
      rule->regex = std::make_unique<RE2>(text("pattern", ""), options);
      if (!rule->regex->ok()) throw UserError(where + ".pattern: " + rule->regex->error());
    } else {
      throw UserError(where + ".type: expected think, boxed or regex, got \"" + type + "\"");
    }
    rules_.push_back(std::move(rule));
  }
}

FormatRules::~FormatRules() = default;
FormatRules::FormatRules(FormatRules&&) noexcept = default;

size_t FormatRules::size() const {
  return rules_.size();
}

std::vector<bool> FormatRules::check(std::string_view response) const {
  std::vector<bool> out;
  for (const auto& rule : rules_) {
    switch (rule->type) {
      case Rule::Type::kThink: {
        const std::string_view t = trim(response);
        bool ok = t.starts_with(rule->open) && count_of(t, rule->open) == 1 &&
                  count_of(t, rule->close) == 1;
        if (ok) {
          const size_t close = t.find(rule->close);
          ok = close > rule->open.size() &&
               !blank(t.substr(rule->open.size(), close - rule->open.size())) &&
               !blank(t.substr(close + rule->close.size()));
        }
        out.push_back(ok);
        break;
      }
      case Rule::Type::kBoxed: {
        std::string_view answer = response;
        if (!rule->close.empty()) {
          const size_t close = response.rfind(rule->close);
          if (close != std::string_view::npos) answer = response.substr(close + rule->close.size());
        }
        out.push_back(last_boxed(answer).has_value());
        break;
      }
      case Rule::Type::kRegex: {
        const re2::StringPiece text(response.data(), response.size());
        out.push_back(rule->full ? RE2::FullMatch(text, *rule->regex)
                                 : RE2::PartialMatch(text, *rule->regex));
        break;
      }
    }
  }
  return out;
}

nlohmann::json FormatRules::default_rules() {
  return nlohmann::json::array({{{"type", "think"}}, {{"type", "boxed"}}});
}

Verdict check_format(const VerifyInput& input) {
  Verdict v;
  const bool own = input.fields.is_object() && input.fields.contains("format");
  std::optional<FormatRules> parsed;
  try {
    parsed.emplace(own ? input.fields["format"] : FormatRules::default_rules());
  } catch (const UserError& e) {
    v.details["reason"] = e.what();  // the row's rules are wrong, not the response
    return v;
  }
  const FormatRules& rules = *parsed;
  const auto held = rules.check(input.response);
  const auto n = std::count(held.begin(), held.end(), true);
  v.correct = n == static_cast<int64_t>(held.size());
  v.details["rules"] = held;
  v.details["fraction"] = static_cast<double>(n) / static_cast<double>(held.size());
  return v;
}

}  // namespace flywheel::verifiers
