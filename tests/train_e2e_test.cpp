// End-to-end training through the real binary on the real stories260K model: resumed runs
// match uninterrupted ones step for step, damaged checkpoints are skipped, the quickstart
// pipeline learns (SFT loss falls, DPO preference accuracy on held-out pairs rises), and a
// recipe's data is decontaminated against its eval sets before training.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "tests/fixtures.h"
#include "tests/run_binary.h"
#include "tests/story_data.h"
#include "trainer/checkpoint/safetensors.h"

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
  // Line for line the straight run's log, timings and memory aside.
  auto lines = read_metrics(run + "/metrics.jsonl");
  ASSERT_EQ(lines.size(), full_lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    auto a = lines[i], b = full_lines[i];
    for (const char* key : {"tokens_per_sec", "peak_memory_gb"}) {
      a.erase(key);
      b.erase(key);
    }
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

// data.decontaminate: the training rows that contain an instance of the recipe's eval set are
// dropped before training (3-grams here: the stories' prompts are shorter than 8 words). The
// eval set plants story 0's prompt, which the training file holds 5 times (lines 1, 9, 17, 25,
// 33), and one text found nowhere.
TEST(TrainE2E, DecontaminatesTheTrainingDataAgainstTheRecipesEvalSets) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("decontaminate");
  testing::write_story_data(dir);
  {
    std::ofstream eval(dir + "/eval.jsonl");
    eval << nlohmann::json{{"prompt", "Once upon a time, there was a"},
                           {"completion", " little girl named Lily."}}
                .dump()
         << "\n"
         << nlohmann::json{{"prompt", "A purple elephant sang loudly at the moon tonight"},
                           {"completion", " and then it slept."}}
                .dump()
         << "\n";
  }
  const auto recipe = write_recipe(dir, "sft", dir + "/sft.jsonl");
  const std::string steps = " training.max_steps=2 checkpoint.every_steps=0";
  auto r = run_flywheel("train " + recipe + " data.eval_file=" + dir +
                        "/eval.jsonl data.decontaminate=true data.decontaminate_ngram=3" + steps);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("5 of 40 rows dropped"), std::string::npos) << r.output;
  const std::string run = dir + "/sft_run";
  nlohmann::json report;
  std::ifstream(run + "/decontamination.json") >> report;
  EXPECT_EQ(report["training_rows"], 40);
  EXPECT_EQ(report["flagged_rows"], 5);
  EXPECT_EQ(report["eval_sets"][0]["instances"], 2);
  EXPECT_EQ(report["eval_sets"][0]["overlapping"], 1);
  EXPECT_EQ(report["eval_sets"][0]["training_lines"], nlohmann::json({1, 9, 17, 25, 33}));
  std::ifstream clean(run + "/decontaminated/sft.jsonl");
  int lines = 0;
  for (std::string line; std::getline(clean, line); ++lines)
    EXPECT_EQ(line.find("Once upon a time"), std::string::npos) << line;
  EXPECT_EQ(lines, 35);
  // Asked for without an eval set: a user error naming the key.
  r = run_flywheel("train " + recipe + " data.decontaminate=true" + steps);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("data.decontaminate: the recipe has no eval set"), std::string::npos)
      << r.output;
  fs::remove_all(dir);
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

// A resumed DPO run reuses its cached reference log-probs only while what they were computed
// from is unchanged (before the cache was keyed, only its size was checked: a changed
// max_length that truncates 30 of the 40 prompts but keeps every pair reused stale values).
TEST(TrainE2E, DpoReferenceCacheIsRecomputedWhenItsInputsChange) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("refcache");
  testing::write_story_data(dir);
  const auto recipe = write_recipe(dir, "dpo", dir + "/pairs.jsonl");
  ASSERT_EQ(run_flywheel("train " + recipe + " training.max_steps=10").status, 0);
  const std::string cache = dir + "/dpo_run/reference_logps.safetensors";
  const auto before = SafetensorsFile(cache).tensor("train.chosen").clone();

  auto same = run_flywheel("train " + recipe + " training.max_steps=12 --resume");
  ASSERT_EQ(same.status, 0) << same.output;
  EXPECT_NE(same.output.find("reference log-probs: loaded"), std::string::npos) << same.output;

  auto shorter =
      run_flywheel("train " + recipe + " training.max_steps=14 data.max_length=22 --resume");
  ASSERT_EQ(shorter.status, 0) << shorter.output;
  EXPECT_NE(shorter.output.find("was computed for other train pairs; recomputing"),
            std::string::npos)
      << shorter.output;
  const auto after = SafetensorsFile(cache).tensor("train.chosen");
  ASSERT_EQ(after.sizes(), before.sizes());
  EXPECT_FALSE(after.equal(before)) << "truncated prompts change the reference log-probs";
  fs::remove_all(dir);
}

// Activation checkpointing and chunked label log-probs change memory, not training: the same
// losses step for step, SFT and DPO.
TEST(TrainE2E, MemorySaversTrainExactlyLikeThePlainRun) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("savers");
  testing::write_story_data(dir);
  for (const auto& [trainer, data] :
       {std::pair<std::string, std::string>{"sft", "sft.jsonl"}, {"dpo", "pairs.jsonl"}}) {
    const auto recipe = write_recipe(dir, trainer, dir + "/" + data);
    const auto common = " training.max_steps=6 checkpoint.every_steps=0 output_dir=" + dir + "/";
    ASSERT_EQ(run_flywheel("train " + recipe + common + trainer + "-plain").status, 0);
    auto saved = run_flywheel("train " + recipe + common + trainer +
                              "-saved training.activation_checkpointing=true"
                              " training.logits_chunk_tokens=7");
    ASSERT_EQ(saved.status, 0) << saved.output;
    const auto plain = losses_of(dir + "/" + trainer + "-plain/metrics.jsonl");
    const auto savers = losses_of(dir + "/" + trainer + "-saved/metrics.jsonl");
    ASSERT_EQ(plain.size(), 6u);
    ASSERT_EQ(savers.size(), 6u);
    for (size_t i = 0; i < plain.size(); ++i)
      EXPECT_NEAR(savers[i], plain[i], 1e-5 * std::abs(plain[i])) << trainer << " step " << i + 1;
  }
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
