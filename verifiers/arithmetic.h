// Exact-answer check for integer arithmetic (the quickstart task).
#pragma once

#include <optional>
#include <string>

namespace flywheel::verifiers {

// The first integer in `response` (optional sign, digits) equals the integer `truth`.
//   arithmetic_score("357", "357") == 1.0;  arithmetic_score(" 356 and", "357") == 0.0
//   arithmetic_score("no number", "357") == 0.0;  arithmetic_score("1", "x") == nullopt
std::optional<double> arithmetic_score(const std::string& response, const std::string& truth);

}  // namespace flywheel::verifiers
