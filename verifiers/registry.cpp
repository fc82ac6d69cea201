#include <chrono>
#include <exception>

#include "trainer/core/error.h"
#include "verifiers/arithmetic.h"
#include "verifiers/deadline.h"
#include "verifiers/format_reward.h"
#include "verifiers/gsm8k.h"
#include "verifiers/ifeval.h"
#include "verifiers/math_verifier.h"
#include "verifiers/text.h"
#include "verifiers/verifier.h"

namespace flywheel {
namespace {

Verdict check_arithmetic(const VerifyInput& input) {
  Verdict v;
  const auto score = verifiers::arithmetic_score(input.response, input.ground_truth);
  if (score) v.correct = *score > 0.5;
  return v;
}

}  // namespace

const std::vector<VerifierInfo>& all_verifiers() {
  static const std::vector<VerifierInfo> kVerifiers = {
      {"arithmetic", "the first integer of the response equals the ground truth", check_arithmetic},
      {"format", "the response has the row's format (think block, boxed answer, regexes)",
       verifiers::check_format},
      {"gsm8k", "the final number (#### N, \\boxed{N}, or the last number) equals the ground truth",
       verifiers::check_gsm8k},
      {"ifeval", "every IFEval instruction of the row (instruction_id_list, kwargs) is followed",
       verifiers::check_ifeval},
      {"math", "the final LaTeX answer (last \\boxed{}) is equivalent to the ground truth",
       verifiers::check_math},
  };
  return kVerifiers;
}

const VerifierInfo& find_verifier(const std::string& dataset) {
  const std::string key = verifiers::to_lower_ascii(dataset);
  for (const auto& v : all_verifiers())
    if (v.name == key) return v;
  std::string list;
  for (const auto& v : all_verifiers())
    list += (list.empty() ? "" : ", ") + v.name;
  throw UserError("unknown verifier '" + dataset + "' (known: " + list + ")");
}

Verdict verify(const VerifierInfo& verifier, const VerifyInput& input,
               const VerifyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  Verdict v;
  if (input.response.size() > options.max_response_bytes) {
    v.correct = false;
    v.details["reason"] = "response of " + std::to_string(input.response.size()) +
                          " bytes is over the " + std::to_string(options.max_response_bytes) +
                          "-byte bound";
  } else {
    try {
      const verifiers::DeadlineScope deadline(options.time_limit_seconds);
      v = verifier.check(input);
    } catch (const verifiers::DeadlineExceeded&) {
      v = Verdict{};
      v.correct = false;
      v.details["reason"] =
          "time limit of " + std::to_string(options.time_limit_seconds) + " s exceeded";
    } catch (const std::exception& e) {
      v = Verdict{};
      v.correct = false;
      v.details["reason"] = std::string("checker failed: ") + verifiers::valid_utf8(e.what());
    }
  }
  if (v.correct.has_value()) v.score = *v.correct ? options.success_reward : options.failure_reward;
  v.details["seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return v;
}

}  // namespace flywheel
