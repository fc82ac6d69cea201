// Locating the test assets.
//   fixtures:    $FLYWHEEL_FIXTURES, else tests/data (llama-tiny/, losses.json: golden files)
//   models:      $FLYWHEEL_MODELS, else tests/data (stories260K/)
//   shared data: $FLYWHEEL_SHARED, else ../shared beside the source tree (larger real data)
// Tests that need a path call FLYWHEEL_REQUIRE_PATH. Without it a test skips with a message
// naming the path (a user's fresh clone has no ../shared); under CI=true it fails instead,
// so a golden test can never pass CI by not running.
#pragma once

#include <gtest/gtest.h>

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/core/error.h"

namespace flywheel::testing {

inline std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

inline std::string fixtures_dir() {
  return env_or("FLYWHEEL_FIXTURES", FLYWHEEL_SOURCE_DIR "/tests/data");
}

inline std::string models_dir() {
  return env_or("FLYWHEEL_MODELS", FLYWHEEL_SOURCE_DIR "/tests/data");
}

inline std::string shared_dir() {
  return env_or("FLYWHEEL_SHARED", FLYWHEEL_DEFAULT_SHARED_DIR);
}

inline bool under_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// The directories make_temp_dir made, removed when the test process exits (CTest runs each
// test in its own process), unless FLYWHEEL_KEEP_TEMP is set to look at them after a failure.
class TempDirs {
 public:
  static TempDirs& instance() {
    static TempDirs dirs;
    return dirs;
  }
  void add(const std::string& path) {
    const std::lock_guard lock(mutex_);
    paths_.push_back(path);
  }
  ~TempDirs() {
    if (std::getenv("FLYWHEEL_KEEP_TEMP") != nullptr) return;
    for (const auto& path : paths_) {
      std::error_code ignored;  // a test may have removed its directory already
      std::filesystem::remove_all(path, ignored);
    }
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> paths_;
};

// A fresh empty directory under the system temp dir (mkdtemp, so parallel tests never collide),
// gone when the test process exits (TempDirs).
inline std::string make_temp_dir(const std::string& tag) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / ("flywheel-" + tag + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + pattern);
  TempDirs::instance().add(pattern);
  return pattern;
}

// Runs f, expecting a UserError whose message contains every one of `needles`.
inline void expect_user_error(const std::function<void()>& f,
                              const std::vector<std::string>& needles) {
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

#define FLYWHEEL_REQUIRE_PATH(path)                                                              \
  do {                                                                                           \
    if (!std::filesystem::exists(path)) {                                                        \
      if (flywheel::testing::under_ci()) {                                                       \
        FAIL() << (path) << " not found, and under CI=true a test may not skip";                 \
      }                                                                                          \
      GTEST_SKIP() << "skipped: " << (path)                                                      \
                   << " not found (needs ../shared, or $FLYWHEEL_SHARED / $FLYWHEEL_FIXTURES / " \
                      "$FLYWHEEL_MODELS)";                                                       \
    }                                                                                            \
  } while (0)
