// `flywheel quickstart [--out DIR]`: the whole post-training loop on a task a verifier checks,
// in one process, from nothing: two-digit addition data and tokenizer (quickstart-data), SFT of
// a small Llama from scratch, DPO on pairs of the SFT model's own right and wrong answers
// (make-pairs), then RLVR with GRPO rewarded by the verifier. Each stage runs its recipe from
// recipes/quickstart/ with the paths pointed into DIR (positional STAGE.section.key=value
// arguments override more, e.g. grpo.rl.iterations=20). At the end: a table of every stage's
// held-out accuracy (greedy, the same 200 questions throughout), the mean reward of 8 sampled
// answers per held-out question, and wall time (also written to DIR/summary.json), and the
// final model's answers to a few held-out questions.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/run_recipe.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/dist/communicator.h"
#include "trainer/rl/judged_samples.h"
#include "trainer/train/model_builder.h"
#include "trainer/train/recipe.h"

namespace flywheel::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A held-out metric the table needs from a stage's evaluation.
double metric(const std::map<std::string, double>& eval, const std::string& key,
              const std::string& stage) {
  const auto it = eval.find(key);
  if (it == eval.end()) {
    throw UserError("flywheel quickstart: the " + stage + " stage logged no held-out " + key +
                    " (did an override remove its evaluation?)");
  }
  return it->second;
}

struct StageRow {
  std::string stage;
  double accuracy = 0;
  double mean_reward = 0;
  double seconds = 0;
};

// The recipe of `stage` with its paths pointed into `out`, then the user's STAGE.* overrides.
Recipe stage_recipe(const std::string& recipes, const std::string& stage, const fs::path& out,
                    const std::vector<std::string>& paths,
                    const std::vector<std::string>& user_overrides) {
  std::vector<std::string> overrides = {"output_dir=" + (out / stage).string()};
  overrides.insert(overrides.end(), paths.begin(), paths.end());
  const std::string prefix = stage + ".";
  for (const auto& o : user_overrides)
    if (o.rfind(prefix, 0) == 0) overrides.push_back(o.substr(prefix.size()));
  return load_recipe(recipes + "/" + stage + ".yaml", overrides);
}

}  // namespace

int run_quickstart(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"out", "DIR", "where the data, runs and summary go (default runs/quickstart)"},
      {"recipes", "DIR", "the stage recipes sft/dpo/grpo.yaml (default recipes/quickstart)"},
      {"sft-train", "N", "SFT training problems (default 6000)"},
      {"dpo-train", "N", "DPO prompts (default 2000)"},
      {"rl-train", "N", "RLVR training prompts (default 1500)"},
      {"eval", "N", "held-out questions (default 200)"},
  };
  Args args("quickstart", specs, argv);
  if (args.help()) {
    std::fputs(format_help("quickstart", "[--out DIR] [STAGE.section.key=value ...]",
                           "SFT -> DPO -> RLVR on two-digit addition, from nothing, with a table "
                           "of held-out accuracy, mean reward and wall time per stage.",
                           specs)
                   .c_str(),
               stdout);
    return 0;
  }
  const fs::path out = args.get("out").value_or("runs/quickstart");
  const std::string recipes = args.get("recipes").value_or("recipes/quickstart");
  const auto& user = args.positionals();
  for (const auto& o : user) {
    const auto dot = o.find('.');
    const auto stage = o.substr(0, dot);
    if ((stage != "sft" && stage != "dpo" && stage != "grpo") || dot == std::string::npos ||
        o.find('=', dot) == std::string::npos) {
      throw UserError("flywheel quickstart: '" + o +
                      "': expected STAGE.section.key=value with STAGE sft, dpo or grpo");
    }
  }
  // A previous quickstart's directory is started over; any other non-empty one is refused.
  if (fs::exists(out) && !fs::is_empty(out)) {
    if (!fs::exists(out / "data" / "config.json")) {
      throw UserError("flywheel quickstart: " + out.string() +
                      " is not empty and holds no earlier quickstart; choose another --out");
    }
    for (const char* part : {"data", "sft", "dpo", "grpo", "summary.json"})
      fs::remove_all(out / part);
  }
  const auto total_start = Clock::now();
  const fs::path data = out / "data";
  std::vector<std::string> data_args = {"--out", data.string()};
  for (const char* flag : {"sft-train", "dpo-train", "rl-train", "eval"})
    if (auto v = args.get(flag)) data_args.insert(data_args.end(), {"--" + std::string(flag), *v});
  if (const int rc = run_quickstart_data(data_args); rc != 0) return rc;
  const auto file = [&](const std::string& name) { return (data / name).string(); };

  auto comm = single_process_communicator();
  const Recipe sft = stage_recipe(
      recipes, "sft", out,
      {"model.config=" + file("config.json"), "model.tokenizer=" + data.string(),
       "data.train_file=" + file("sft_train.jsonl"), "data.eval_file=" + file("sft_eval.jsonl"),
       "eval.generation_file=" + file("sft_eval.jsonl")},
      user);
  const Tokenizer tokenizer = Tokenizer::from_dir(data.string());
  DataStats stats;
  const auto held_out =
      load_rl_prompts(file("rl_eval.jsonl"), tokenizer, sft.data.options, "", &stats);
  // The mean reward of 8 sampled answers (temperature 1) to each held-out question: what RLVR
  // maximizes, measured the same way after every stage.
  SampleOptions sampling;
  sampling.max_new_tokens = sft.eval.max_new_tokens;
  sampling.seed = 12345;
  const auto sampled_reward = [&](LlamaForCausalLM model) {
    model->eval();
    return mean_score(sample_and_judge(model, tokenizer, held_out, sampling));
  };
  const auto load = [&](const std::string& stage) {
    return load_causal_lm((out / stage / "model").string());
  };
  std::vector<StageRow> rows;

  // Stage 1: SFT from scratch.
  torch::manual_seed(sft.seed);
  const double base_reward = sampled_reward(build_causal_lm(sft));
  auto start = Clock::now();
  torch::manual_seed(sft.seed);
  const auto sft_result = run_recipe(sft, false, *comm);
  rows.push_back({"base (untrained)", metric(sft_result.eval_before, "generation/accuracy", "sft"),
                  base_reward, 0});
  const double sft_seconds = since(start);
  rows.push_back({"SFT", metric(sft_result.eval_after, "generation/accuracy", "sft"),
                  sampled_reward(load("sft")), sft_seconds});

  // Stage 2: DPO on the SFT model's own answers to the DPO prompts, judged by the verifier.
  start = Clock::now();
  {
    auto model = load("sft");
    model->eval();
    DataStats dpo_stats;
    const auto prompts =
        load_rl_prompts(file("dpo_prompts.jsonl"), tokenizer, sft.data.options, "", &dpo_stats);
    SampleOptions options = sampling;
    options.seed = sft.seed;
    const auto samples = sample_and_judge(model, tokenizer, prompts, options);
    const auto pairs = preference_pairs(prompts, samples, /*ground_truth_fallback=*/true);
    if (pairs.empty()) {
      throw UserError("flywheel quickstart: the SFT model answered every DPO prompt right in all " +
                      std::to_string(options.n) + " samples: no pairs for DPO");
    }
    std::string text;
    for (const auto& p : pairs)
      text += p.dump() + "\n";
    write_file_atomic(file("dpo_pairs.jsonl"), text);
    std::printf("make-pairs: %zu prompts x %lld sampled answers, %.1f%% correct: %zu pairs\n",
                prompts.size(), static_cast<long long>(options.n), 100 * mean_score(samples),
                pairs.size());
  }
  const Recipe dpo = stage_recipe(
      recipes, "dpo", out,
      {"model.path=" + (out / "sft" / "model").string(),
       "data.train_file=" + file("dpo_pairs.jsonl"), "data.eval_file=" + file("dpo_eval.jsonl"),
       "eval.generation_file=" + file("sft_eval.jsonl")},
      user);
  torch::manual_seed(dpo.seed);
  const auto dpo_result = run_recipe(dpo, false, *comm);
  const double dpo_seconds = since(start);
  rows.push_back({"DPO (on-policy pairs)",
                  metric(dpo_result.eval_after, "generation/accuracy", "dpo"),
                  sampled_reward(load("dpo")), dpo_seconds});

  // Stage 3: RLVR (GRPO, the verifier's reward).
  const Recipe grpo = stage_recipe(
      recipes, "grpo", out,
      {"model.path=" + (out / "dpo" / "model").string(),
       "data.train_file=" + file("rl_train.jsonl"), "data.eval_file=" + file("rl_eval.jsonl")},
      user);
  start = Clock::now();
  torch::manual_seed(grpo.seed);
  const auto grpo_result = run_recipe(grpo, false, *comm);
  const double grpo_seconds = since(start);
  auto final_model = load("grpo");
  rows.push_back({"RLVR (GRPO)", metric(grpo_result.eval_after, "pass_rate", "grpo"),
                  sampled_reward(final_model), grpo_seconds});
  const double total = since(total_start);

  nlohmann::json summary = {{"stages", nlohmann::json::array()}, {"total_seconds", total}};
  std::printf("\n| stage | held-out accuracy | mean reward (8 samples) | wall time |\n");
  std::printf("| --- | --- | --- | --- |\n");
  for (const auto& r : rows) {
    const std::string seconds = r.seconds > 0 ? c10::str(std::lround(r.seconds), " s") : "-";
    std::printf("| %s | %.1f%% | %.3f | %s |\n", r.stage.c_str(), 100 * r.accuracy, r.mean_reward,
                seconds.c_str());
    summary["stages"].push_back({{"stage", r.stage},
                                 {"accuracy", r.accuracy},
                                 {"mean_reward", r.mean_reward},
                                 {"seconds", r.seconds}});
  }
  std::printf("total %.0f s (data, three stages and their evaluations)\n", total);
  write_file_atomic((out / "summary.json").string(), summary.dump(2) + "\n");

  // A few held-out questions, as the model was trained to read them.
  std::vector<RlPrompt> demo(held_out.begin(),
                             held_out.begin() + std::min<size_t>(3, held_out.size()));
  SampleOptions greedy = sampling;
  greedy.n = 1;
  greedy.temperature = 0;
  const auto answers = sample_and_judge(final_model, tokenizer, demo, greedy);
  std::printf("\nthe trained model (%s) answers held-out questions:\n",
              (out / "grpo" / "model").c_str());
  for (size_t i = 0; i < demo.size(); ++i) {
    const auto& a = answers[i][0];
    const bool right = a.verdict.correct && *a.verdict.correct;
    std::printf("  %s = %s  (%s)\n", demo[i].text.c_str(), a.text.c_str(),
                right ? "correct" : ("wrong, " + demo[i].ground_truth).c_str());
  }
  return 0;
}

}  // namespace flywheel::cli
