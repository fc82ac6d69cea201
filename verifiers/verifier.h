// Verifiers: pure functions that judge a model's response.
//   (prompt, response, ground truth, the row's other fields) -> Verdict
// A verdict says correct / incorrect / not applicable (the ground truth is not in the checker's
// format), the reward that earns (success_reward when correct, the share of satisfied
// constraints for partial-credit checkers when asked), and details for logging: what was
// extracted, how it was compared, why it failed.
//
// The registry maps dataset names, as RLVR rows in open-instruct's format carry them
// ({"messages", "ground_truth", "dataset"}), to checkers; names are matched ignoring case.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace flywheel {

struct VerifyInput {
  std::string prompt;
  std::string response;
  std::string ground_truth;
  nlohmann::json fields;  // the row's other fields (IFEval: instruction_id_list, kwargs)
};

struct Verdict {
  std::optional<bool> correct;  // nullopt: the checker does not apply
  double score = 0;
  nlohmann::json details = nlohmann::json::object();
};

struct VerifyOptions {
  double success_reward = 1.0;  // the score of a correct response (Tulu 3 used 10)
  double failure_reward = 0.0;
  // Responses longer than this are judged incorrect without being read (a memory bound).
  size_t max_response_bytes = 1 << 20;
  // A verification still running after this many seconds stops and is judged incorrect
  // (verifiers/deadline.h; <= 0: no limit).
  double time_limit_seconds = 5.0;
};

// A checker decides correctness; the score is derived from it by verify().
using Checker = std::function<Verdict(const VerifyInput&)>;

struct VerifierInfo {
  std::string name;         // the registry name ("gsm8k", "math", ...)
  std::string description;  // one line, for --help and errors
  Checker check;
};

// UserError naming the known verifiers when `dataset` is not one.
const VerifierInfo& find_verifier(const std::string& dataset);
const std::vector<VerifierInfo>& all_verifiers();

// Runs the checker with the options' bounds and fills in the score. Never throws for any
// response; a checker's internal failure becomes an incorrect verdict whose details say why.
Verdict verify(const VerifierInfo& verifier, const VerifyInput& input,
               const VerifyOptions& options = {});

}  // namespace flywheel
