#include "verifiers/gsm8k.h"

#include "verifiers/math_answer.h"
#include "verifiers/text.h"

namespace flywheel::verifiers {
namespace {

constexpr std::string_view kUnicodeMinus = "\xE2\x88\x92";

// "0012.500" -> "12.5", "-0" -> "0": one spelling per value.
std::string canonical(bool negative, std::string digits, std::string decimals) {
  while (!decimals.empty() && decimals.back() == '0')
    decimals.pop_back();
  const size_t nonzero = digits.find_first_not_of('0');
  digits = nonzero == std::string::npos ? "0" : digits.substr(nonzero);
  std::string out = digits;
  if (!decimals.empty()) out += "." + decimals;
  if (negative && out != "0") out = "-" + out;
  return out;
}

// Whether the minus at `minus_start` is a sign rather than a subtraction.
bool sign_position(std::string_view text, size_t minus_start) {
  if (minus_start == 0) return true;
  const char before = text[minus_start - 1];
  return !(is_ascii_alpha(before) || is_ascii_digit(before) || before == ')' || before == ']' ||
           before == '}');
}

}  // namespace

std::optional<std::string> last_number(std::string_view text) {
  std::optional<std::string> last;
  for (size_t i = 0; i < text.size();) {
    const bool starts = is_ascii_digit(text[i]) ||
                        (text[i] == '.' && i + 1 < text.size() && is_ascii_digit(text[i + 1]) &&
                         (i == 0 || !is_ascii_digit(text[i - 1])));
    if (!starts) {
      ++i;
      continue;
    }
    bool negative = false;
    if (i >= 1 && text[i - 1] == '-') negative = sign_position(text, i - 1);
    if (i >= kUnicodeMinus.size() && text.substr(i - kUnicodeMinus.size(), 3) == kUnicodeMinus)
      negative = sign_position(text, i - kUnicodeMinus.size());
    std::string digits, decimals;
    size_t j = i;
    while (j < text.size()) {
      if (is_ascii_digit(text[j])) {
        digits += text[j++];
      } else if (text[j] == ',' && !digits.empty() && j + 3 < text.size() &&
                 is_ascii_digit(text[j + 1]) && is_ascii_digit(text[j + 2]) &&
                 is_ascii_digit(text[j + 3]) &&
                 (j + 4 >= text.size() || !is_ascii_digit(text[j + 4]))) {
        ++j;  // a thousands separator: exactly three digits follow
      } else {
        break;
      }
    }
    if (j + 1 < text.size() && text[j] == '.' && is_ascii_digit(text[j + 1])) {
      ++j;
      while (j < text.size() && is_ascii_digit(text[j]))
        decimals += text[j++];
    }
    last = canonical(negative, digits.empty() ? "0" : digits, decimals);
    i = j;
  }
  return last;
}

Verdict check_gsm8k(const VerifyInput& input) {
  Verdict v;
  std::string_view truth_text = input.ground_truth;
  if (const size_t hashes = truth_text.rfind("####"); hashes != std::string_view::npos)
    truth_text = truth_text.substr(hashes + 4);
  const auto truth = last_number(truth_text);
  // The ground truth must be a number and nothing else of substance.
  if (!truth || trim(truth_text).size() > 32) {
    v.details["reason"] = "the ground truth is not a number";
    return v;
  }
  v.details["truth"] = *truth;
  std::string_view response = input.response;
  std::string rule = "last_number";
  std::optional<std::string> boxed;
  if (const size_t hashes = response.rfind("####"); hashes != std::string_view::npos) {
    response = response.substr(hashes + 4);
    const size_t line_end = response.find('\n');
    if (line_end != std::string_view::npos) response = response.substr(0, line_end);
    rule = "####";
  } else if ((boxed = last_boxed(response))) {
    response = *boxed;
    rule = "boxed";
  }
  const auto answer = last_number(response);
  v.details["rule"] = rule;
  if (!answer) {
    v.correct = false;
    v.details["reason"] = "no number found";
    return v;
  }
  v.details["extracted"] = *answer;
  v.correct = *answer == *truth;
  if (!*v.correct) v.details["reason"] = "the number differs from the ground truth";
  return v;
}

}  // namespace flywheel::verifiers
