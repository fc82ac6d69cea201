// `flywheel <command> [args]`: dispatches to one subcommand and maps errors to exit statuses
// (2 = user error, 1 = internal error).
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "trainer/core/error.h"
#include "trainer/dist/runtime.h"
#include "trainer/model/device.h"

namespace {

struct Command {
  const char* name;
  const char* summary;
  std::function<int(const std::vector<std::string>&)> run;
};

const std::vector<Command>& commands() {
  static const std::vector<Command> kCommands = {
      {"generate", "generate text from a Hugging Face model directory",
       flywheel::cli::run_generate},
      {"inspect", "print a model directory's architecture, size and tensors",
       flywheel::cli::run_inspect},
      {"plan", "print the memory per rank a training recipe needs", flywheel::cli::run_plan},
      {"train", "run a training recipe (SFT, DPO, reward model, PPO, GRPO, ...)",
       flywheel::cli::run_train},
      {"eval", "evaluate responses on a benchmark (ifeval)", flywheel::cli::run_eval},
      {"eval-rm", "pairwise accuracy, margins and length bias of a reward model",
       flywheel::cli::run_eval_rm},
      {"verify", "score responses with the verifiers (math, GSM8K, ...)",
       flywheel::cli::run_verify},
      {"quickstart-data", "generate the quickstart's data, tokenizer and model config",
       flywheel::cli::run_quickstart_data},
      {"quickstart", "SFT -> DPO -> RLVR on a verifiable task, from nothing, with a table",
       flywheel::cli::run_quickstart},
      {"make-pairs", "on-policy DPO pairs: sampled answers judged by the verifiers",
       flywheel::cli::run_make_pairs},
      {"template", "render a conversation with a chat template, trained tokens marked",
       flywheel::cli::run_template},
      {"tokenize", "encode {\"text\"} lines to ids and tokens (or decode ids)",
       flywheel::cli::run_tokenize},
      {"arena", "ratings, win rates and judge calibration from battles (rate, winrate, ...)",
       flywheel::cli::run_arena},
      {"decontaminate", "find (and drop) training rows that overlap evaluation sets",
       flywheel::cli::run_decontaminate},
  };
  return kCommands;
}

void print_usage(std::FILE* out) {
  std::fprintf(out, "Usage: flywheel <command> [options]\n\nCommands:\n");
  for (const auto& c : commands())
    std::fprintf(out, "  %-16s %s\n", c.name, c.summary);
  std::fprintf(out,
               "\nRun 'flywheel <command> --help' for a command's options, 'flywheel "
               "--version' for the LibTorch and CUDA this build uses.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return flywheel::kUserErrorExit;
  }
  const std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("flywheel: %s\n", flywheel::describe_build().c_str());
    return 0;
  }
  try {
    for (const auto& c : commands()) {
      if (name != c.name) continue;
      flywheel::configure_runtime();
      flywheel::track_cpu_memory();  // peak_memory_gb counts tensors, as on a GPU
      return c.run(std::vector<std::string>(argv + 2, argv + argc));
    }
    throw flywheel::UserError("unknown command '" + name + "' (run 'flywheel --help')");
  } catch (const flywheel::UserError& e) {
    std::cerr << "flywheel: error: " << e.what() << "\n";
    return flywheel::kUserErrorExit;
  } catch (const std::exception& e) {
    std::cerr << "flywheel: internal error: " << e.what() << "\n";
    return 1;
  }
}
