#include "verifiers/math_verifier.h"

#include "verifiers/math_answer.h"
#include "verifiers/math_expr.h"
#include "verifiers/text.h"

namespace flywheel::verifiers {

Verdict check_math(const VerifyInput& input) {
  Verdict v;
  std::string truth = input.ground_truth;
  if (auto boxed = last_boxed(truth)) truth = *boxed;
  truth = normalize_math_answer(truth);
  if (truth.empty()) {
    v.details["reason"] = "the ground truth has no answer";
    return v;
  }
  v.details["truth"] = clip_for_log(truth);
  const auto extracted = extract_math_answer(input.response);
  if (!extracted) {
    v.correct = false;
    v.details["reason"] = "no final answer found (no closed \\boxed{}, no 'final answer is')";
    return v;
  }
  const std::string answer = normalize_math_answer(extracted->text);
  v.details["extracted"] = clip_for_log(extracted->text);
  v.details["rule"] = extracted->rule;
  v.details["normalized"] = clip_for_log(answer);
  const MathComparison cmp = compare_math_answers(answer, truth);
  v.correct = cmp.equal;
  v.details["compared"] = cmp.how;
  if (!cmp.equal) v.details["reason"] = "the answer differs from the ground truth";
  return v;
}

}  // namespace flywheel::verifiers
