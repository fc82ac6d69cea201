// Locating the shared golden fixtures and models.
//   fixtures: $FLYWHEEL_FIXTURES, else ../shared/fixtures (relative to the source tree)
//   models:   ../shared/models (relative to the source tree, or to $FLYWHEEL_SHARED)
// Tests that need them call FLYWHEEL_REQUIRE_PATH, which skips with a clear message when the
// path is absent (a user's fresh clone has no ../shared).
#pragma once

#include <gtest/gtest.h>

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/error.h"

namespace flywheel::testing {

inline std::string shared_dir() {
  if (const char* s = std::getenv("FLYWHEEL_SHARED")) return s;
  return FLYWHEEL_DEFAULT_SHARED_DIR;
}

inline std::string fixtures_dir() {
  if (const char* f = std::getenv("FLYWHEEL_FIXTURES")) return f;
  return shared_dir() + "/fixtures";
}

inline std::string models_dir() {
  return shared_dir() + "/models";
}

// A fresh empty directory under the system temp dir (mkdtemp, so parallel tests never collide).
inline std::string make_temp_dir(const std::string& tag) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / ("flywheel-" + tag + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + pattern);
  return pattern;
}

inline  // Runs f, expecting a UserError whose message contains every one of `needles`.
    void
    expect_user_error(const std::function<void()>& f, const std::vector<std::string>& needles) {
  try {
    f();
  } catch (const UserError& e) {
    const std::string message = e.what();
    for (const auto& needle : needles) {
      EXPECT_NE(message.find(needle), std::string::npos)
          << "message \"" << message << "\" should mention \"" << needle << "\"";
    }
    return;
  }
  ADD_FAILURE() << "expected a UserError";
}

}  // namespace flywheel::testing

#define FLYWHEEL_REQUIRE_PATH(path)                                                          \
  do {                                                                                       \
    if (!std::filesystem::exists(path)) {                                                    \
      GTEST_SKIP() << "skipped: " << (path)                                                  \
                   << " not found (needs ../shared or $FLYWHEEL_FIXTURES/$FLYWHEEL_SHARED)"; \
    }                                                                                        \
  } while (0)
