// The quickstart through the real binary, as README command 1 runs it: generated data and
// tokenizer, SFT from scratch, DPO on the SFT model's own verified answers, RLVR with GRPO, and
// the table; and `flywheel make-pairs` on its own. Thresholds sit below measured runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "tests/fixtures.h"
#include "tests/run_binary.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;
using testing::read_metrics;
using testing::run_command;

// The binary run from the source tree, where the quickstart finds recipes/quickstart/.
testing::RunResult run_in_source(const std::string& args) {
  return run_command("cd " FLYWHEEL_SOURCE_DIR " && " FLYWHEEL_BINARY " " + args);
}

// Every stage gains on the one before, in held-out accuracy and in the mean reward of sampled
// answers, and the whole run fits the README's promise (under 10 minutes on 2 cores).
// Measured, held-out accuracy base -> SFT -> DPO -> RLVR (mean reward of sampled answers):
// the default run (seed 1): 0 -> 27.0% -> 80.0% -> 89.0% (0 -> 0.113 -> 0.466 -> 0.783), 100 s
// alone on 2 cores. The thresholds sit below it. Other seeds for every stage: seed 3 0 -> 9.5%
// -> 67.0% -> 91.0%, seed 4 0 -> 89.5% -> 96.0% -> 97.5%; seed 2 stays low (9.5% -> 7.0% ->
// 10.0%): three epochs leave SFT either side of the point where the small model learns to
// carry, and from below it DPO does not always lift it. Those were DPO's 2 epochs on an Intel
// Xeon. On an AMD EPYC (other float rounding) 2 epochs lifted seed 1 far less, 0 -> 22% -> 33.5%
// -> 45% (shared prefixes: 23% -> 38.5% -> 58.5%); with the 4 epochs of the recipe now, seed 1
// gives 0 -> 23% -> 73.5% -> 82.5% (0 -> 0.111 -> 0.512 -> 0.737), 81 s, and seed 3 0 -> 13.5%
// -> 99% -> 98.5% (RLVR then has only reward to gain: 0.873 -> 0.954). With the fused CPU
// training kernels and oneDNN products (EPYC): seed 1 0 -> 25% -> 78.5% -> 88.5% (0 -> 0.133
// -> 0.546 -> 0.795), 70 s; seed 3 0 -> 31% -> 99.5% -> 99%, seed 4 0 -> 87.5% -> 99% -> 99%.
TEST(Quickstart, EveryStageGainsOnTheLast) {
  const auto dir = testing::make_temp_dir("quickstart");
  const auto run = run_in_source("quickstart --out " + dir + "/run");
  ASSERT_EQ(run.status, 0) << run.output;
  std::ifstream in(dir + "/run/summary.json");
  const auto summary = nlohmann::json::parse(in);
  const auto& stages = summary["stages"];
  ASSERT_EQ(stages.size(), 4u) << summary;
  const std::vector<std::string> names = {"base (untrained)", "SFT", "DPO (on-policy pairs)",
                                          "RLVR (GRPO)"};
  // The least gain each stage must show over the one before, in accuracy and in mean reward.
  const std::vector<double> accuracy_gain = {0, 0.15, 0.25, 0.04};
  const std::vector<double> reward_gain = {0, 0.05, 0.2, 0.15};
  for (size_t i = 0; i < stages.size(); ++i) {
    EXPECT_EQ(stages[i]["stage"], names[i]);
    if (i == 0) continue;
    const auto& a = stages[i - 1];
    const auto& b = stages[i];
    EXPECT_GT(b["accuracy"].get<double>() - a["accuracy"].get<double>(), accuracy_gain[i])
        << names[i] << "\n"
        << summary;
    EXPECT_GT(b["mean_reward"].get<double>() - a["mean_reward"].get<double>(), reward_gain[i])
        << names[i] << "\n"
        << summary;
  }
  EXPECT_LT(summary["total_seconds"].get<double>(), 600) << summary;
  // The table, and held-out questions in the fixed-width format the model learned.
  EXPECT_NE(run.output.find("| stage | held-out accuracy | mean reward (8 samples) | wall time |"),
            std::string::npos)
      << run.output;
  const auto demo = run.output.find("answers held-out questions:");
  ASSERT_NE(demo, std::string::npos) << run.output;
  EXPECT_TRUE(std::regex_search(run.output.substr(demo), std::regex(R"(\n  \d\d\+\d\d = \d+)")))
      << run.output;
  fs::remove_all(dir);
}

// make-pairs: a briefly trained model answers 100 questions 8 times each; every pair prefers an
// answer the verifier accepts (the true sum) to one it rejects, in the chat format DPO reads.
TEST(Quickstart, MakePairsPrefersCorrectAnswers) {
  const auto dir = testing::make_temp_dir("make-pairs");
  const auto data = dir + "/data";
  ASSERT_EQ(run_in_source("quickstart-data --out " + data +
                          " --sft-train 2000 --dpo-train 100 --rl-train 10 --eval 10")
                .status,
            0);
  const auto sft = run_in_source(
      "train recipes/quickstart/sft.yaml training.epochs=2 output_dir=" + dir +
      "/sft model.config=" + data + "/config.json model.tokenizer=" + data +
      " data.train_file=" + data +
      "/sft_train.jsonl data.eval_file=null eval.generation_file=null" + " eval.verifier=null");
  ASSERT_EQ(sft.status, 0) << sft.output;
  const auto pairs = dir + "/pairs.jsonl";
  const auto made = run_in_source("make-pairs --model " + dir + "/sft/model --prompts " + data +
                                  "/dpo_prompts.jsonl --out " + pairs + " --max-new-tokens 6");
  ASSERT_EQ(made.status, 0) << made.output;
  const auto rows = read_metrics(pairs);
  EXPECT_GT(rows.size(), 5u) << made.output;
  EXPECT_NE(made.output.find(std::to_string(rows.size()) + " pairs"), std::string::npos)
      << made.output;
  for (const auto& row : rows) {
    const auto& chosen = row["chosen"];
    const auto& rejected = row["rejected"];
    ASSERT_EQ(chosen.size(), 2u) << row;
    EXPECT_EQ(chosen[0], rejected[0]) << row;  // the same question
    EXPECT_EQ(chosen[1]["role"], "assistant");
    const std::string question = chosen[0]["content"];
    const int sum = std::stoi(question.substr(0, 2)) + std::stoi(question.substr(3, 2));
    EXPECT_EQ(std::stoi(chosen[1]["content"].get<std::string>()), sum) << row;
    const std::string wrong = rejected[1]["content"];
    EXPECT_TRUE(wrong.empty() || wrong.find_first_not_of("0123456789") != std::string::npos ||
                std::stoi(wrong) != sum)
        << row;
  }
  auto bad = run_in_source("make-pairs --model " + dir + "/sft/model --prompts " + dir +
                           "/nowhere.jsonl --out " + pairs);
  EXPECT_EQ(bad.status, 2) << bad.output;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
