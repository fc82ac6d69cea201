// User-facing errors. Anything the user can fix (a bad path, a malformed file, an invalid
// config value or flag) is reported by throwing UserError; `flywheel` prints the message and
// exits with status 2. Internal invariant violations stay TORCH_CHECK / c10::Error.
#pragma once

#include <stdexcept>
#include <string>

namespace flywheel {

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& what) : std::runtime_error(what) {}
};

// Exit status for user errors (bad input, bad flags), as in the developers' brief.
inline constexpr int kUserErrorExit = 2;

}  // namespace flywheel
