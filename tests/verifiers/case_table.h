// Reads a verifier case table: JSONL rows {"response", "ground_truth", "correct", "why"}, each a
// hand-written expected verdict.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/fixtures.h"
#include "verifiers/verifier.h"

namespace flywheel::testing {

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

inline VerifyInput make_input(const std::string& response, const std::string& truth) {
  VerifyInput input;
  input.response = response;
  input.ground_truth = truth;
  return input;
}

inline std::string verifier_cases(const std::string& name) {
  return fixtures_dir() + "/verifiers/" + name;
}

}  // namespace flywheel::testing
