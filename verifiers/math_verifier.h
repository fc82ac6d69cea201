// The MATH checker (Hendrycks MATH, MATH-500): the response's final answer (math_answer.h)
// against the ground truth (a bare answer, or a solution whose last \boxed{} is the answer),
// both normalized, compared by math_expr.h.
#pragma once

#include "verifiers/verifier.h"

namespace flywheel::verifiers {

Verdict check_math(const VerifyInput& input);

}  // namespace flywheel::verifiers
