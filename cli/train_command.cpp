// `flywheel train RECIPE.yaml [section.key=value ...]`: run a training recipe.
#include <cstdio>

#include <chrono>
#include <optional>

#include "cli/args.h"
#include "cli/commands.h"
#include "rollout/generation_eval.h"
#include "trainer/core/error.h"
#include "trainer/dist/communicator.h"
#include "trainer/model/device.h"
#include "trainer/rl/rl_loop.h"
#include "trainer/train/model_builder.h"
#include "trainer/train/objective.h"
#include "trainer/train/recipe.h"
#include "trainer/train/train_loop.h"
#include "verifiers/verifier.h"

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
  if (recipe.is_rl()) {
    run_rl(recipe, {.resume = args.flag("resume"), .comm = comm.get()});
    return 0;
  }
  auto objective = make_objective(recipe, args.flag("resume"), *comm);
  TrainOptions options;
  options.resume = args.flag("resume");
  options.comm = comm.get();

  // Held-out accuracy by generation, when the recipe asks for it.
  std::optional<Tokenizer> tokenizer;
  std::vector<GenerationEvalItem> items;
  if (!recipe.eval.generation_file.empty()) {
    LlamaForCausalLM* policy = objective->policy();
    if (policy == nullptr) {
      throw UserError(recipe.source + ": eval.generation_file needs a generating model (trainer: " +
                      recipe.trainer + ")");
    }
    const VerifierInfo& checker = find_verifier(recipe.eval.verifier);
    // Accuracy: a correct answer scores 1, a wrong one 0; rows the checker does not apply to
    // are left out.
    const ScoreFn verifier = [&checker](const std::string& response, const std::string& truth) {
      VerifyInput input;
      input.response = response;
      input.ground_truth = truth;
      const Verdict v = verify(checker, input);
      return v.correct ? std::optional<double>(*v.correct ? 1.0 : 0.0) : std::nullopt;
    };
    tokenizer.emplace(Tokenizer::from_dir(recipe.model.tokenizer));
    items = load_generation_eval(recipe.eval.generation_file, *tokenizer,
                                 recipe.data.options.chat_template, recipe.data.options.add_bos,
                                 recipe.eval.max_samples);
    const GenerationEvalOptions gen{recipe.eval.max_new_tokens, recipe.eval.batch_size};
    options.extra_eval = [&, policy, verifier, gen] {
      std::map<std::string, double> out;
      for (const auto& [k, v] : evaluate_generation(*policy, *tokenizer, items, verifier, gen)) {
        out["generation/" + k] = v;
      }
      return out;
    };
  }
  run_training(recipe, *objective, options);
  return 0;
}

}  // namespace flywheel::cli
