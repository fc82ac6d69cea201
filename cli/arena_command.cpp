// `flywheel arena <what> ...`: the evaluation arena's commands, one file each.
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "trainer/core/error.h"

namespace flywheel::cli {
namespace {

struct Subcommand {
  const char* name;
  const char* summary;
  std::function<int(const std::vector<std::string>&)> run;
};

const std::vector<Subcommand>& subcommands() {
  static const std::vector<Subcommand> kSubcommands = {
      {"answer", "every player answers every prompt (cached per player)", run_arena_answer},
      {"judge", "battles against a baseline by a reward model, verifier or LLM judge",
       run_arena_judge},
      {"rate", "Bradley-Terry ratings with bootstrap intervals, online Elo, style control",
       run_arena_rate},
      {"winrate", "raw and AlpacaEval length-controlled win rates against a baseline",
       run_arena_winrate},
      {"calibrate", "a judge's confidence threshold with a guaranteed human agreement",
       run_arena_calibrate},
      {"mine", "DPO pairs from the battles a policy lost", run_arena_mine},
      {"flywheel", "answer, judge, mine and train DPO for K rounds; rate every round's policy",
       run_arena_flywheel},
  };
  return kSubcommands;
}

std::string usage() {
  std::string out = "Usage: flywheel arena <command> [options]\n\nCommands:\n";
  for (const auto& s : subcommands()) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-10s %s\n", s.name, s.summary);
    out += line;
  }
  return out + "\nRun 'flywheel arena <command> --help' for its options.\n";
}

}  // namespace

int run_arena(const std::vector<std::string>& argv) {
  if (argv.empty()) throw UserError("arena: a command is required\n" + usage());
  if (argv[0] == "-h" || argv[0] == "--help") {
    std::fputs(usage().c_str(), stdout);
    return 0;
  }
  for (const auto& s : subcommands()) {
    if (argv[0] == s.name) return s.run(std::vector<std::string>(argv.begin() + 1, argv.end()));
  }
  throw UserError("arena: unknown command '" + argv[0] + "'\n" + usage());
}

}  // namespace flywheel::cli
