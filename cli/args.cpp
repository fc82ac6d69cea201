#include "cli/args.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "trainer/core/error.h"

namespace flywheel::cli {

Args::Args(const std::string& command, const std::vector<FlagSpec>& specs,
           const std::vector<std::string>& argv)
    : command_(command) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "-h" || a == "--help") {
      help_ = true;
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      positionals_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto spec =
        std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& s) { return s.name == name; });
    if (spec == specs.end()) {
      throw UserError("flywheel " + command + ": unknown option --" + name + " (see flywheel " +
                      command + " --help)");
    }
    if (spec->value_name.empty()) {
      if (inline_value) throw UserError("flywheel " + command + ": --" + name + " takes no value");
      values_[name].push_back("true");
    } else if (inline_value) {
      values_[name].push_back(*inline_value);
    } else {
      if (i + 1 >= argv.size()) {
        throw UserError("flywheel " + command + ": --" + name + " expects " + spec->value_name);
      }
      values_[name].push_back(argv[++i]);
    }
  }
}

bool Args::flag(const std::string& name) const {
  return values_.count(name) > 0;
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::require(const std::string& name) const {
  auto v = get(name);
  if (!v) throw UserError("flywheel " + command_ + ": --" + name + " is required");
  return *v;
}

int64_t Args::get_int(const std::string& name, int64_t fallback, int64_t min_value) const {
  auto v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v->c_str(), &end, 10);
  if (v->empty() || *end != '\0' || errno != 0 || x < min_value) {
    throw UserError("flywheel " + command_ + ": --" + name +
                    " expects an integer >= " + std::to_string(min_value) + ", got '" + *v + "'");
  }
  return x;
}

double Args::get_double(const std::string& name, double fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  char* end = nullptr;
  const double x = std::strtod(v->c_str(), &end);
  if (v->empty() || *end != '\0') {
    throw UserError("flywheel " + command_ + ": --" + name + " expects a number, got '" + *v + "'");
  }
  return x;
}

std::string format_help(const std::string& command, const std::string& usage,
                        const std::string& summary, const std::vector<FlagSpec>& specs) {
  std::ostringstream out;
  out << "Usage: flywheel " << command << " " << usage << "\n\n" << summary << "\n\nOptions:\n";
  for (const auto& s : specs) {
    std::string left = "--" + s.name + (s.value_name.empty() ? "" : " " + s.value_name);
    out << "  " << left << std::string(left.size() < 26 ? 26 - left.size() : 1, ' ') << s.help
        << "\n";
  }
  out << "  --help                    show this help\n";
  return out.str();
}

}  // namespace flywheel::cli
