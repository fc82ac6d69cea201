// `flywheel plan RECIPE.yaml [section.key=value ...] [--world-size N] [--device-memory-gb G]`:
// the per-rank memory a recipe needs, from its model's config.json alone.
#include <cstdio>
#include <filesystem>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/core/error.h"
#include "trainer/model/model_config.h"
#include "trainer/train/memory_plan.h"
#include "trainer/train/recipe.h"

namespace flywheel::cli {

int run_plan(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"world-size", "N", "data-parallel ranks (default 1)"},
      {"device-memory-gb", "G", "say whether the peak fits in G GiB per rank"},
  };
  Args args("plan", specs, argv);
  if (args.help()) {
    std::fputs(format_help("plan", "RECIPE.yaml [section.key=value ...] [options]",
                           "Prints the memory per rank a recipe's training step needs: weights, "
                           "fp32 masters, AdamW moments, gradients, activations, logits, the "
                           "optimizer step's temporaries and the peak. Reads only the model's "
                           "config.json; the data and model files need not be on this machine.",
                           specs)
                   .c_str(),
               stdout);
    return 0;
  }
  const auto& pos = args.positionals();
  if (pos.empty()) throw UserError("flywheel plan: expected a recipe file");
  const Recipe recipe = load_recipe(pos[0], std::vector<std::string>(pos.begin() + 1, pos.end()),
                                    /*check_paths=*/false);
  const std::string config_path =
      recipe.model.path.empty()
          ? recipe.model.config
          : (std::filesystem::path(recipe.model.path) / "config.json").string();
  if (!std::filesystem::exists(config_path)) {
    throw UserError(recipe.source + ": the model's config.json is needed to plan (" + config_path +
                    " does not exist; override model.path or model.config)");
  }
  auto config = load_model_config(config_path);
  config.dtype = parse_dtype(recipe.model.dtype, "model.dtype");
  const int world = static_cast<int>(args.get_int("world-size", 1, 1));
  const auto options = plan_options(recipe, world);
  const auto plan = plan_memory(config, options);
  std::printf(
      "%s: %s, %.1fM parameters in %s; %lld row(s) x %lld tokens per micro-batch, "
      "%d rank(s), ZeRO stage %lld%s%s\n",
      recipe.source.c_str(), config.architecture.c_str(),
      static_cast<double>(plan.parameters) / 1e6, dtype_name(config.dtype).c_str(),
      static_cast<long long>(options.micro_batch_rows),
      static_cast<long long>(options.tokens_per_row), world,
      static_cast<long long>(world > 1 ? options.zero_stage : 0),
      options.activation_checkpointing ? ", activation checkpointing" : "",
      options.logits_chunk_tokens > 0 ? ", chunked log-probs" : "");
  std::fputs(plan.table(args.get_double("device-memory-gb", 0)).c_str(), stdout);
  return 0;
}

}  // namespace flywheel::cli
