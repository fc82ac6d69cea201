// A small command-line parser for `flywheel` subcommands: `--name value`, `--name=value` and
// boolean `--flag`s (a flag given twice keeps both values), plus positionals. Unknown flags,
// missing values and bad numbers are UserErrors (exit status 2) that name the flag.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace flywheel::cli {

struct FlagSpec {
  std::string name;        // without the leading dashes
  std::string value_name;  // empty for a boolean flag
  std::string help;
};

class Args {
 public:
  // Parses argv (after the subcommand). Throws UserError on anything not in `specs`.
  Args(const std::string& command, const std::vector<FlagSpec>& specs,
       const std::vector<std::string>& argv);

  bool help() const { return help_; }
  bool flag(const std::string& name) const;
  std::optional<std::string> get(const std::string& name) const;    // the last one given
  std::vector<std::string> get_all(const std::string& name) const;  // every one, in order
  std::string require(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t fallback, int64_t min_value) const;
  double get_double(const std::string& name, double fallback) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

 private:
  std::string command_;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positionals_;
  bool help_ = false;
};

// "Usage: flywheel <command> <usage>" followed by the flag table.
std::string format_help(const std::string& command, const std::string& usage,
                        const std::string& summary, const std::vector<FlagSpec>& specs);

}  // namespace flywheel::cli
