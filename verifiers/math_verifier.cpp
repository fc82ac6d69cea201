#include "verifiers/math_verifier.h"

#include "verifiers/math_answer.h"
#include "verifiers/math_expr.h"
#include "verifiers/text.h"

namespace flywheel::verifiers {
namespace {

// Longer final answers are wrong without being read: no MATH answer comes near, and it bounds
// the normalization's nesting (it recurses into \text{} and \frac{} groups).
constexpr size_t kMaxAnswerBytes = 8192;

}  // namespace

Verdict check_math(const VerifyInput& input) {
  Verdict v;
  std::string truth = input.ground_truth;
  if (auto boxed = last_boxed(truth)) truth = *boxed;
  if (truth.size() > kMaxAnswerBytes) {
    v.details["reason"] = "the ground truth is over " + std::to_string(kMaxAnswerBytes) + " bytes";
    return v;
  }
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
  if (extracted->text.size() > kMaxAnswerBytes) {
    v.correct = false;
    v.details["reason"] = "the final answer is over " + std::to_string(kMaxAnswerBytes) + " bytes";
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
