// The GSM8K checker: the response's final number against the ground truth's, compared as
// exact decimals ("18.0" equals "18", "1,000" equals "1000").
//   ground truth: the text after the last "####" (GSM8K's answer field), or a bare number
//   response, first that applies: the number after the last "####"; the last number inside the
//   last \boxed{}; the last number in the text.
// A number: digits with optional thousands separators (groups of three) and decimals; a '-' or
// '−' right before it is its sign unless a letter, digit or closing bracket precedes that
// (so "3-5" ends with 5, "= -5" with -5); a trailing period is a full stop, not a decimal point.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "verifiers/verifier.h"

namespace flywheel::verifiers {

// The last number in `text` in canonical form ("-1234.5"; "18.00" -> "18").
std::optional<std::string> last_number(std::string_view text);

Verdict check_gsm8k(const VerifyInput& input);

}  // namespace flywheel::verifiers
