// `flywheel train RECIPE.yaml [section.key=value ...]`: run a training recipe.
#include <cstdio>

#include <chrono>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/run_recipe.h"
#include "trainer/core/error.h"
#include "trainer/dist/communicator.h"
#include "trainer/model/device.h"
#include "trainer/train/decontamination.h"
#include "trainer/train/recipe.h"

namespace flywheel::cli {

int run_train(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"resume", "", "continue from the latest valid checkpoint in output_dir"},
      {"print-config", "", "print the resolved recipe and exit"},
  };
  Args args("train", specs, argv);
  if (args.help()) {
    std::fputs(
        format_help("train", "RECIPE.yaml [section.key=value ...] [options]",
                    "Runs an SFT, DPO, reward-model, PPO, GRPO, RLOO or online-DPO recipe. Any "
                    "recipe key can be "
                    "overridden on the command line, e.g. training.learning_rate=1e-5.",
                    specs)
            .c_str(),
        stdout);
    return 0;
  }
  const auto& pos = args.positionals();
  if (pos.empty()) throw UserError("flywheel train: expected a recipe file");
  Recipe recipe = load_recipe(pos[0], std::vector<std::string>(pos.begin() + 1, pos.end()));
  if (args.flag("print-config")) {
    std::fputs(recipe_to_yaml(recipe).c_str(), stdout);
    return 0;
  }
  // Under a launcher: join the job, and on GPUs bind this rank's device from LOCAL_RANK.
  const WorldInfo world = world_from_env();
  if (world.distributed() && recipe.model.device == "cuda") {
    recipe.model.device = "cuda:" + std::to_string(world.local_rank);
  }
  const auto device = parse_device(recipe.model.device, "model.device");
  bind_device(device);
  CommunicatorOptions comm_options;
  comm_options.timeout = std::chrono::seconds(recipe.distributed.timeout_s);
  comm_options.rendezvous_timeout = std::chrono::seconds(recipe.distributed.rendezvous_timeout_s);
  auto comm = connect(world, device, comm_options);

  // LibTorch seeds its global generators from the OS: seeded from the recipe, anything that
  // draws from them is reproducible, and a checkpoint's RNG state is the run's own.
  torch::manual_seed(recipe.seed);
  decontaminate_recipe_data(recipe, *comm);
  run_recipe(recipe, args.flag("resume"), *comm);
  return 0;
}

}  // namespace flywheel::cli
