// End-to-end training through the real binary on the real stories260K model: resumed runs
// match uninterrupted ones step for step, damaged checkpoints are skipped, and the
// quickstart pipeline learns (SFT loss falls, DPO preference accuracy on held-out pairs rises).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/fixtures.h"
#include "tests/run_binary.h"
#include "tests/story_data.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;
using testing::losses_of;
using testing::read_metrics;
using testing::run_flywheel;

std::string stories() {
  return testing::models_dir() + "/stories260K";
}

std::string write_recipe(const std::string& dir, const std::string& trainer,
                         const std::string& data) {
  const std::string path = dir + "/" + trainer + ".yaml";
  std::ofstream(path) << "trainer: " << trainer << "\n"
                      << "seed: 3\n"
                         "output_dir: "
                      << dir << "/" << trainer << "_run\n"
                      << "model:\n  path: " << stories() << "\n"
                      << "data:\n  train_file: " << data << "\n  max_length: 64\n"
                      << "training:\n  max_steps: 20\n  epochs: 10\n  micro_batch_size: 2\n"
                         "  gradient_accumulation_steps: 2\n  learning_rate: 1.0e-3\n"
                         "  lr_scheduler: cosine\n  warmup_steps: 3\n"
                      << "loss:\n  type: dpo_norm\n  beta: 0.5\n"
                      << "logging:\n  progress: lines\n"
                      << "checkpoint:\n  every_steps: 10\n  keep_last: 5\n";
  return path;
}

// Runs 20 steps straight, then recreates the run directory of a crash during step 14: the
// last checkpoint is step 10's, metrics.jsonl already has steps 11-13 and a half-written
// line. Resuming must give steps 11-20 identical to the straight run, each logged once.
void check_resume_matches(const std::string& trainer, const std::string& data_file) {
  const auto dir = testing::make_temp_dir("resume-" + trainer);
  testing::write_story_data(dir);
  const auto recipe = write_recipe(dir, trainer, dir + "/" + data_file);
  auto straight = run_flywheel("train " + recipe);
  ASSERT_EQ(straight.status, 0) << straight.output;
  const std::string run = dir + "/" + trainer + "_run";
  const auto full = losses_of(run + "/metrics.jsonl");
  ASSERT_EQ(full.size(), 20u) << straight.output;
  const auto full_lines = read_metrics(run + "/metrics.jsonl");

  fs::remove_all(run + "/checkpoints/step-00000020");
  fs::remove_all(run + "/model");
  std::vector<nlohmann::json> crashed;
  for (const auto& line : full_lines) {
    if (line["step"].get<int>() <= 13) crashed.push_back(line);
  }
  {
    std::ofstream out(run + "/metrics.jsonl");
    for (const auto& l : crashed)
      out << l.dump() << "\n";
    out << R"({"step": 14, "loss": 0.12)";  // the write the crash interrupted
  }
  auto resumed = run_flywheel("train " + recipe + " --resume");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
  const auto again = losses_of(run + "/metrics.jsonl");
  ASSERT_EQ(again.size(), 20u);
  for (size_t i = 0; i < 20; ++i)
    EXPECT_EQ(again[i], full[i]) << trainer << " step " << i + 1;
  // Line for line the straight run's log, timings aside.
  auto lines = read_metrics(run + "/metrics.jsonl");
  ASSERT_EQ(lines.size(), full_lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    auto a = lines[i], b = full_lines[i];
    a.erase("tokens_per_sec");
    b.erase("tokens_per_sec");
    EXPECT_EQ(a, b) << trainer << " line " << i + 1;
  }
  EXPECT_LT(full.back(), full.front()) << trainer << ": the loss should fall";
  fs::remove_all(dir);
}

TEST(TrainE2E, SftResumeMatchesUninterruptedRun) {
  FLYWHEEL_REQUIRE_PATH(stories());
  check_resume_matches("sft", "sft.jsonl");
}

TEST(TrainE2E, DpoResumeMatchesUninterruptedRun) {
  FLYWHEEL_REQUIRE_PATH(stories());
  check_resume_matches("dpo", "pairs.jsonl");
}

// Packed SFT with several rows per micro-batch: packed rows differ in length, and the batch
// pads them (this failed with "packed rows differ in length" before concat_packed).
TEST(TrainE2E, PackedSftWithSeveralRowsPerMicroBatchTrains) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("packed");
  testing::write_story_data(dir);
  const auto recipe = write_recipe(dir, "sft", dir + "/sft.jsonl");
  auto r = run_flywheel("train " + recipe +
                        " data.packing=true training.micro_batch_size=3 checkpoint.every_steps=0");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto losses = losses_of(dir + "/sft_run/metrics.jsonl");
  ASSERT_FALSE(losses.empty()) << r.output;
  EXPECT_LT(losses.back(), losses.front()) << "the loss should fall";
  fs::remove_all(dir);
}

TEST(TrainE2E, DamagedLatestCheckpointFallsBack) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("damaged");
  testing::write_story_data(dir);
  const auto recipe = write_recipe(dir, "sft", dir + "/sft.jsonl");
  ASSERT_EQ(run_flywheel("train " + recipe + " training.max_steps=20").status, 0);
  const std::string ckpt = dir + "/sft_run/checkpoints";
  // Corrupt step 20's optimizer state; resuming a longer run must start again from step 10.
  {
    std::fstream f(ckpt + "/step-00000020/optimizer.safetensors", std::ios::in | std::ios::out);
    f.seekp(200);
    f.put('\x7f');
  }
  auto r = run_flywheel("train " + recipe + " training.max_steps=25 --resume");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("skipping damaged checkpoint"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("optimizer.safetensors fails its checksum"), std::string::npos);
  EXPECT_NE(r.output.find("resumed from " + ckpt + "/step-00000010"), std::string::npos)
      << r.output;
  fs::remove_all(dir);
}

TEST(TrainE2E, RewardModelTrainsAndSavesSequenceClassifier) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("rm");
  testing::write_story_data(dir);
  const auto recipe = write_recipe(dir, "reward_model", dir + "/pairs.jsonl");
  auto r = run_flywheel("train " + recipe + " checkpoint.every_steps=0");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto config =
      nlohmann::json::parse(std::ifstream(dir + "/reward_model_run/model/config.json"));
  EXPECT_EQ(config["architectures"][0], "LlamaForSequenceClassification");
  auto inspect = run_flywheel("inspect " + dir + "/reward_model_run/model");
  EXPECT_NE(inspect.output.find("score.weight"), std::string::npos) << inspect.output;
  EXPECT_EQ(inspect.output.find("lm_head.weight"), std::string::npos);
  const auto metrics = read_metrics(dir + "/reward_model_run/metrics.jsonl");
  ASSERT_FALSE(metrics.empty());
  EXPECT_TRUE(metrics.back().contains("accuracy"));
  fs::remove_all(dir);
}

TEST(TrainE2E, BadRecipeIsAUserError) {
  const auto dir = testing::make_temp_dir("bad");
  std::ofstream(dir + "/r.yaml") << "trainer: sft\noutput_dir: x\nmodel:\n  path: /nope\n";
  auto r = run_flywheel("train " + dir + "/r.yaml");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("r.yaml:4: key 'model.path': expected an existing path"),
            std::string::npos)
      << r.output;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
