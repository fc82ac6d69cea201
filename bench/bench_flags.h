// What the C++ benchmarks share: `--flag value` command lines and main()'s error handling
// (user errors exit with 2, as every Flywheel command does).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "trainer/core/error.h"

namespace flywheel::bench {

// `--flag value` pairs by flag name (without the dashes). -h / --help prints `usage` and
// exits 0; a flag not in `known`, or without a value, is a UserError carrying the usage.
inline std::map<std::string, std::string> parse_flags(int argc, char** argv,
                                                      const std::vector<std::string>& known,
                                                      const std::string& usage) {
  std::map<std::string, std::string> out;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::cout << usage;
      std::exit(0);
    }
    const auto name = flag.rfind("--", 0) == 0 ? flag.substr(2) : "";
    bool ok = false;
    for (const auto& k : known)
      ok = ok || k == name;
    if (!ok) throw UserError("unknown flag " + flag + "\n" + usage);
    if (i + 1 >= argc) throw UserError(flag + ": missing value\n" + usage);
    out[name] = argv[++i];
  }
  return out;
}

// The integer value of `--flag`, at least `min`.
inline int64_t parse_int(const std::string& flag, const std::string& value, int64_t min) {
  size_t used = 0;
  int64_t x = 0;
  try {
    x = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty() || x < min) {
    throw UserError("--" + flag + " '" + value +
                    "': expected an integer >= " + std::to_string(min));
  }
  return x;
}

// The number value of `--flag`.
inline double parse_double(const std::string& flag, const std::string& value) {
  size_t used = 0;
  double x = 0;
  try {
    x = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || value.empty()) {
    throw UserError("--" + flag + " '" + value + "': expected a number");
  }
  return x;
}

// Runs a benchmark's body: its status, or 2 for a UserError and 1 for anything else, with the
// message on stderr.
inline int run_main(const std::function<int()>& body) {
  try {
    return body();
  } catch (const UserError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return kUserErrorExit;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace flywheel::bench
