#include "trainer/core/metrics_log.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

std::string format_duration(double seconds) {
  const auto s = static_cast<long long>(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", s / 60, s % 60);
  }
  return buf;
}

nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

// The log a run at `first_step` writes to. A fresh run starts it afresh. A resumed run keeps
// the lines up to its checkpoint's step and drops the rest: the steps after it (logged
// before a crash, and about to be trained again) and a half-written last line, so that every
// step appears once, as in an uninterrupted run. The kept lines are swapped in atomically.
std::ofstream open_log(const std::string& path, bool append, int64_t first_step) {
  if (append) {
    std::ifstream in(path);
    std::string kept, line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
          j["step"].get<int64_t>() <= first_step) {
        kept += line + "\n";
      }
    }
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << kept;
      if (!out.flush()) throw UserError("cannot write " + tmp);
    }
    std::filesystem::rename(tmp, path);
  }
  return std::ofstream(path, append ? std::ios::app : std::ios::trunc);
}

}  // namespace

std::string format_metrics(const Metrics& metrics) {
  static const std::vector<std::string> kFirst = {"loss", "lr", "grad_norm", "tokens_per_sec"};
  std::string out;
  auto add = [&](const std::string& key, double v) {
    char buf[64];
    if (key == "lr") {
      std::snprintf(buf, sizeof buf, "%.2e", v);
    } else if (key == "tokens_per_sec") {
      std::snprintf(buf, sizeof buf, "%.0f", v);
    } else {
      std::snprintf(buf, sizeof buf, "%.4g", v);
    }
    out += (out.empty() ? "" : "  ") + key + " " + buf;
  };
  for (const auto& k : kFirst) {
    if (auto it = metrics.find(k); it != metrics.end()) add(k, it->second);
  }
  for (const auto& [k, v] : metrics) {
    if (std::find(kFirst.begin(), kFirst.end(), k) == kFirst.end() && k != "epoch") add(k, v);
  }
  return out;
}

MetricsLog::MetricsLog(const std::string& path, const std::string& mode, int64_t total_steps,
                       int64_t print_every, int64_t first_step, bool append)
    : out_(open_log(path, append, first_step)),
      bar_(mode == "bar" || (mode == "auto" && ::isatty(STDERR_FILENO))),
      total_steps_(total_steps),
      print_every_(print_every),
      first_step_(first_step),
      start_(std::chrono::steady_clock::now()) {
  if (!out_) throw UserError("cannot write " + path);
}

MetricsLog::~MetricsLog() {
  if (bar_visible_) std::fputc('\n', stderr);
}

void MetricsLog::clear_bar() {
  if (bar_visible_) std::fputs("\r\033[K", stderr);
  bar_visible_ = false;
}

void MetricsLog::train_step(int64_t step, const Metrics& metrics) {
  nlohmann::json line = {{"step", step}};
  for (const auto& [k, v] : metrics)
    line[k] = finite_or_null(v);
  out_ << line.dump() << "\n";
  out_.flush();

  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double done = static_cast<double>(step - first_step_);
  const double eta = done > 0 ? elapsed / done * static_cast<double>(total_steps_ - step) : 0;
  char head[96];
  std::snprintf(head, sizeof head, "step %lld/%lld", static_cast<long long>(step),
                static_cast<long long>(total_steps_));
  const std::string text = std::string(head) + "  " + format_metrics(metrics) + "  elapsed " +
                           format_duration(elapsed) + "  eta " + format_duration(eta);
  if (bar_) {
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    std::fflush(stderr);
    bar_visible_ = true;
  } else if (step % print_every_ == 0 || step == total_steps_) {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
}

void MetricsLog::eval(int64_t step, const Metrics& metrics) {
  nlohmann::json line = {{"step", step}};
  Metrics shown;
  for (const auto& [k, v] : metrics) {
    line["eval/" + k] = finite_or_null(v);
    shown["eval/" + k] = v;
  }
  out_ << line.dump() << "\n";
  out_.flush();
  message("eval at step " + std::to_string(step) + ": " + format_metrics(shown));
}

void MetricsLog::message(const std::string& text) {
  clear_bar();
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
}

}  // namespace flywheel
