// Online RL (trainer/rl): the rollout's log-probs are the trainer's (the first ratio is 1), GRPO
// and online DPO teach the real stories260K model a checkable constraint, a resumed run equals
// an uninterrupted one, RLOO runs, and bad recipes or prompt files are clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "rollout/engine.h"
#include "tests/fixtures.h"
#include "tests/run_binary.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/rl/rl_batch.h"
#include "trainer/train/objective.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;

std::string stories() {
  return testing::models_dir() + "/stories260K";
}

std::string constraint_recipe() {
  return "recipes/stories260K/rlvr_constraint.yaml";
}

// The binary run from the source tree, where the recipe's relative paths point.
testing::RunResult run_flywheel(const std::string& args) {
  return testing::run_command("cd " FLYWHEEL_SOURCE_DIR " && " FLYWHEEL_BINARY " " + args);
}

// The engine's per-token log-probs of its samples (the model's distribution at temperature 1)
// against the trainer's forward of the same sequences in training mode: equal within 1e-5, so
// the PPO/GRPO ratio exp(new - old) is 1 at the first minibatch.
TEST(Rl, EngineLogprobsAreTheTrainersSoTheFirstRatioIsOne) {
  FLYWHEEL_REQUIRE_PATH(stories());
  auto model = load_causal_lm(stories());
  const Tokenizer tokenizer = Tokenizer::from_dir(stories());
  EngineOptions options;
  options.max_seq_len = 96;
  options.max_num_seqs = 16;
  Engine engine(model, options, &tokenizer);
  std::vector<Request> requests;
  for (const char* text : {"Once upon a time", "Tom had a big red ball. He", "Lily"}) {
    Request r;
    r.prompt = tokenizer.encode(text, /*add_bos=*/true);
    r.max_new_tokens = 40;
    r.n = 4;
    r.seed = 5;
    r.stop_ids = {tokenizer.eos_id()};
    requests.push_back(r);
  }
  const auto outputs = engine.generate(requests);
  std::vector<RlSample> samples;
  for (size_t q = 0; q < requests.size(); ++q) {
    for (const auto& c : outputs[q]) {
      RlSample s;
      s.ids = requests[q].prompt;
      s.ids.insert(s.ids.end(), c.token_ids.begin(), c.token_ids.end());
      s.prompt_length = static_cast<int64_t>(requests[q].prompt.size());
      s.old_logps = c.model_logprobs;
      samples.push_back(s);
    }
  }
  std::vector<const RlSample*> all;
  for (const auto& s : samples)
    all.push_back(&s);
  const auto mb = make_rl_micro_batch(all, tokenizer.pad_id(), torch::kCPU);
  model->train();
  const auto logps = label_logps(model, mb.batch, 0).token_logps;  // with autograd, as training
  const auto diff = ((logps.detach().to(torch::kFloat32) - mb.old_logps) * mb.mask).abs();
  EXPECT_LT(diff.max().item<double>(), 1e-5);
  EXPECT_EQ(mb.mask.sum().item<double>(), static_cast<double>(mb.response_tokens));
  const auto ratio = (logps.detach().to(torch::kFloat32) - mb.old_logps).exp();
  EXPECT_LT(((ratio - 1) * mb.mask).abs().max().item<double>(), 1e-5);
}

// GRPO on the real model: the held-out greedy pass rate of "mention a dog" rises from 0.
// Measured (6 iterations of 16 prompts x 8, seeds 1-5): held-out 0 -> 1.0, 1.0, 0.969, 1.0, 1.0;
// sampled pass rate first -> last iteration 0.07 -> 0.99, 0.03 -> 0.98, 0.008 -> 0.38 (seed 3,
// the slowest), 0.03 -> 1.0, 0.02 -> 0.98. The thresholds sit below the slowest seed.
TEST(Rl, GrpoTeachesStories260KAConstraint) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("grpo");
  const auto run = run_flywheel(
      "train " + constraint_recipe() + " rl.iterations=6 seed=3 model.path=" + stories() +
      " output_dir=" + dir + "/run logging.eval_every_steps=0 checkpoint.every_steps=0");
  ASSERT_EQ(run.status, 0) << run.output;
  const auto lines = testing::read_metrics(dir + "/run/metrics.jsonl");
  double before = -1, after = -1, first_train = -1, last_train = -1;
  for (const auto& l : lines) {
    if (l.contains("eval/pass_rate")) (before < 0 ? before : after) = l["eval/pass_rate"];
    if (l.contains("pass_rate")) {
      if (first_train < 0) first_train = l["pass_rate"];
      last_train = l["pass_rate"];
    }
  }
  EXPECT_EQ(before, 0.0) << run.output;
  EXPECT_GE(after, 0.75) << run.output;
  EXPECT_GE(last_train - first_train, 0.25) << run.output;
  EXPECT_TRUE(fs::exists(dir + "/run/model/model.safetensors"));
  fs::remove_all(dir);
}

// 4 iterations straight, then the same run interrupted after its iteration-2 checkpoint and
// resumed: the same samples and updates, so every logged metric but the timings is equal.
TEST(Rl, GrpoResumeMatchesUninterruptedRun) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("grpo-resume");
  const std::string args = "train " + constraint_recipe() +
                           " rl.iterations=4 rl.prompts_per_iteration=4 model.path=" + stories() +
                           " logging.eval_every_steps=0 checkpoint.every_steps=2 output_dir=";
  ASSERT_EQ(run_flywheel(args + dir + "/straight").status, 0);
  // The interrupted run: its first two iterations, as a run of 4 stopped there would leave them.
  const auto first = run_flywheel(args + dir + "/resumed rl.iterations=2");
  ASSERT_EQ(first.status, 0) << first.output;
  const auto resumed = run_flywheel(args + dir + "/resumed --resume");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
  const auto a = testing::read_metrics(dir + "/straight/metrics.jsonl");
  const auto b = testing::read_metrics(dir + "/resumed/metrics.jsonl");
  const auto training = [](const std::vector<nlohmann::json>& lines) {
    std::vector<nlohmann::json> out;
    for (auto l : lines) {
      if (!l.contains("pass_rate")) continue;
      for (const char* key :
           {"rollout_s", "reward_s", "reference_s", "train_s", "gen_tokens_per_sec", "elapsed_s"})
        l.erase(key);
      out.push_back(l);
    }
    return out;
  };
  const auto ta = training(a), tb = training(b);
  ASSERT_EQ(ta.size(), 4u);
  ASSERT_EQ(tb.size(), 4u);
  for (size_t i = 0; i < 4; ++i)
    EXPECT_EQ(ta[i], tb[i]) << "iteration " << i + 1;
  fs::remove_all(dir);
}

TEST(Rl, RlooRuns) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("rloo");
  const auto run = run_flywheel("train " + constraint_recipe() +
                                " trainer=rloo rl.iterations=2 rl.beta=0 model.path=" + stories() +
                                " output_dir=" + dir + "/run logging.eval_every_steps=0");
  ASSERT_EQ(run.status, 0) << run.output;
  std::ifstream config(dir + "/run/config.yaml");
  const std::string text((std::istreambuf_iterator<char>(config)), {});
  EXPECT_NE(text.find("advantage: rloo"), std::string::npos) << text;
  EXPECT_EQ(testing::read_metrics(dir + "/run/metrics.jsonl").size(), 4u);  // 2 evals, 2 steps
  fs::remove_all(dir);
}

// Online DPO: best and worst of each group as a pair, the reference either the initial policy
// or the iteration's sampling policy; the held-out pass rate rises as with GRPO.
// Measured (10 iterations, DPO beta 0.1, seeds 1, 3, 5, both references): held-out 0 -> 1.0 in
// all six runs; the threshold sits well below.
TEST(Rl, OnlineDpoTeachesTheConstraint) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("online-dpo");
  for (const char* reference : {"initial", "iteration"}) {
    const std::string out = dir + "/" + reference;
    const auto run =
        run_flywheel("train " + constraint_recipe() +
                     " trainer=online_dpo loss.type=dpo loss.beta=0.1 rl.reference=" + reference +
                     " rl.iterations=10 seed=3 model.path=" + stories() + " output_dir=" + out +
                     " logging.eval_every_steps=0 checkpoint.every_steps=0");
    ASSERT_EQ(run.status, 0) << run.output;
    double before = -1, after = -1, pairs = 0;
    for (const auto& l : testing::read_metrics(out + "/metrics.jsonl")) {
      if (l.contains("eval/pass_rate")) (before < 0 ? before : after) = l["eval/pass_rate"];
      if (l.contains("pairs")) pairs += l["pairs"].get<double>();
    }
    EXPECT_GT(pairs, 0) << reference;
    EXPECT_GE(after - before, 0.75) << reference << "\n" << run.output;
  }
  fs::remove_all(dir);
}

// GRPO against a neural reward model (stories260K with a fresh score head, saved as Hugging
// Face writes a LlamaForSequenceClassification) on rows that name no verifier: the rewards are
// the model's scores, and training raises them.
// Measured (mean reward, first -> sixth iteration, seeds 1-5): 12.34 -> 13.80, 10.56 -> 13.34,
// 10.91 -> 12.52, 10.76 -> 11.83, 11.20 -> 14.04; the threshold sits below the smallest rise.
TEST(Rl, GrpoAgainstARewardModelRaisesItsScore) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("grpo-rm");
  auto rm = load_reward_model(stories(), torch::kFloat32, torch::kCPU, 0.5, 11);
  save_pretrained(dir + "/rm", *rm, rm->config());
  fs::copy_file(stories() + "/tokenizer.model", dir + "/rm/tokenizer.model");
  {
    std::ofstream out(dir + "/prompts.jsonl");
    for (const char* p : {"Once upon a time", "One day, Tom", "Lily had a big", "The sun was",
                          "Sam and Mia went", "There was a little", "Ben liked to", "It was a"})
      out << nlohmann::json({{"prompt", p}}).dump() << "\n";
  }
  const auto run = run_flywheel(
      "train " + constraint_recipe() + " rl.iterations=6 seed=3" + " model.path=" + stories() +
      " rl.reward_model=" + dir + "/rm" + " data.train_file=" + dir +
      "/prompts.jsonl data.eval_file=" + " rl.prompts_per_iteration=8 output_dir=" + dir + "/run" +
      " logging.eval_every_steps=0 checkpoint.every_steps=0");
  ASSERT_EQ(run.status, 0) << run.output;
  std::vector<double> rewards;
  for (const auto& l : testing::read_metrics(dir + "/run/metrics.jsonl"))
    if (l.contains("reward")) rewards.push_back(l["reward"]);
  ASSERT_EQ(rewards.size(), 6u);
  EXPECT_GT(rewards.back() - rewards.front(), 0.5) << run.output;
  fs::remove_all(dir);
}

TEST(Rl, BadRecipesAndPromptsAreClearErrors) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("rl-errors");
  const std::string base =
      "train " + constraint_recipe() + " model.path=" + stories() + " output_dir=" + dir + "/run ";
  auto zero3 = run_flywheel(base + "distributed.zero_stage=3");
  EXPECT_EQ(zero3.status, 2) << zero3.output;
  EXPECT_NE(zero3.output.find("zero_stage"), std::string::npos) << zero3.output;
  auto advantage = run_flywheel(base + "trainer=rloo rl.advantage=standard");
  EXPECT_EQ(advantage.status, 2) << advantage.output;
  auto reference = run_flywheel(base + "rl.reference=initial");  // online_dpo only
  EXPECT_EQ(reference.status, 2) << reference.output;
  {
    std::ofstream out(dir + "/bad.jsonl");
    out << R"({"prompt": "Once upon a time", "dataset": "ifeval"})"
        << "\n"
        << R"({"prompt": "Tom", "dataset": "nosuch"})"
        << "\n";
  }
  auto verifier = run_flywheel(base + "data.train_file=" + dir + "/bad.jsonl");
  EXPECT_EQ(verifier.status, 2) << verifier.output;
  EXPECT_NE(verifier.output.find("bad.jsonl:2"), std::string::npos) << verifier.output;
  EXPECT_NE(verifier.output.find("nosuch"), std::string::npos) << verifier.output;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
