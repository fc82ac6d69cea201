// Verifiers: pure functions that score a model's response against a ground truth.
//   score(response, ground_truth) -> 1.0 correct, 0.0 wrong, nullopt when the verifier does
//   not apply (e.g. the ground truth is not in its format).
// A registry maps names used in recipes to verifiers.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace flywheel {

using Verifier =
    std::function<std::optional<double>(const std::string& response, const std::string& truth)>;

// UserError naming the known verifiers when `name` is unknown.
Verifier find_verifier(const std::string& name);
const std::vector<std::string>& verifier_names();

}  // namespace flywheel
