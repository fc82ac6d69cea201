// Runs the real `flywheel` binary for end-to-end tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace flywheel::testing {

struct RunResult {
  int status;          // exit status, -1 if killed
  std::string output;  // stdout + stderr
};

// Runs a shell command line, collecting stdout and stderr.
inline RunResult run_command(const std::string& command) {
  const std::string cmd = command + " 2>&1";
  std::FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {-1, ""};
  std::string out;
  std::array<char, 4096> buf;
  while (size_t n = std::fread(buf.data(), 1, buf.size(), pipe))
    out.append(buf.data(), n);
  const int raw = ::pclose(pipe);
  return {WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, out};
}

inline RunResult run_flywheel(const std::string& args) {
  return run_command(std::string(FLYWHEEL_BINARY) + " " + args);
}

// Every line of a metrics.jsonl.
inline std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

// The "loss" of every training step in a metrics.jsonl, in order.
inline std::vector<double> losses_of(const std::string& metrics) {
  std::vector<double> out;
  for (const auto& line : read_metrics(metrics)) {
    if (line.contains("loss")) out.push_back(line["loss"].get<double>());
  }
  return out;
}

}  // namespace flywheel::testing
