#include <map>

#include "trainer/core/error.h"
#include "verifiers/arithmetic.h"
#include "verifiers/verifier.h"

namespace flywheel {
namespace {

const std::map<std::string, Verifier>& registry() {
  static const std::map<std::string, Verifier> kVerifiers = {
      {"arithmetic", verifiers::arithmetic_score},
  };
  return kVerifiers;
}

}  // namespace

const std::vector<std::string>& verifier_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& [name, fn] : registry())
      names.push_back(name);
    return names;
  }();
  return kNames;
}

Verifier find_verifier(const std::string& name) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string list;
    for (const auto& n : verifier_names())
      list += (list.empty() ? "" : ", ") + n;
    throw UserError("unknown verifier '" + name + "' (known: " + list + ")");
  }
  return it->second;
}

}  // namespace flywheel
