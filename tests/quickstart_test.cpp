// The quickstart pipeline at CI size, through the real binary: generated data, a trained
// tokenizer, SFT from scratch, then DPO. Thresholds come from measured runs, with margin
// (measured: see the numbers printed by this test and the closing note of the trainer issue).
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/fixtures.h"
#include "tests/run_binary.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;
using testing::read_metrics;
using testing::run_flywheel;

// The eval lines of a run: the first (before training) and the last (after).
std::pair<nlohmann::json, nlohmann::json> eval_before_after(const std::string& metrics) {
  std::vector<nlohmann::json> evals;
  for (const auto& line : read_metrics(metrics)) {
    for (const auto& [k, v] : line.items()) {
      if (k.rfind("eval/", 0) == 0) {
        evals.push_back(line);
        break;
      }
    }
  }
  if (evals.size() < 2) return {};
  return {evals.front(), evals.back()};
}

TEST(Quickstart, SftLearnsThenDpoRaisesPreferenceAccuracy) {
  const auto dir = testing::make_temp_dir("quickstart");
  const auto data = dir + "/data";
  auto made = run_flywheel("quickstart-data --out " + data +
                           " --sft-train 3000 --dpo-train 1000 --eval 100");
  ASSERT_EQ(made.status, 0) << made.output;
  const std::string recipes = std::string(FLYWHEEL_SOURCE_DIR) + "/recipes/quickstart";
  const std::string paths = " model.tokenizer=" + data + " data.train_file=" + data;

  auto sft =
      run_flywheel("train " + recipes + "/sft.yaml output_dir=" + dir + "/sft" +
                   " model.config=" + data + "/config.json" + paths + "/sft_train.jsonl" +
                   " data.eval_file=" + data + "/sft_eval.jsonl eval.generation_file=" + data +
                   "/sft_eval.jsonl training.epochs=6 logging.progress=lines");
  ASSERT_EQ(sft.status, 0) << sft.output;
  const auto [sft_before, sft_after] = eval_before_after(dir + "/sft/metrics.jsonl");
  ASSERT_FALSE(sft_before.is_null()) << sft.output;
  std::printf("SFT eval loss %.3f -> %.3f, exact match %.3f -> %.3f\n",
              sft_before["eval/loss"].get<double>(), sft_after["eval/loss"].get<double>(),
              sft_before["eval/generation/accuracy"].get<double>(),
              sft_after["eval/generation/accuracy"].get<double>());
  EXPECT_LT(sft_after["eval/loss"].get<double>(), 0.5 * sft_before["eval/loss"].get<double>());
  EXPECT_GT(sft_after["eval/generation/accuracy"].get<double>(),
            sft_before["eval/generation/accuracy"].get<double>());

  auto dpo = run_flywheel(
      "train " + recipes + "/dpo.yaml output_dir=" + dir + "/dpo" + " model.path=" + dir +
      "/sft/model" + paths + "/dpo_train.jsonl" + " data.eval_file=" + data +
      "/dpo_eval.jsonl eval.generation_file=" + data + "/sft_eval.jsonl logging.progress=lines");
  ASSERT_EQ(dpo.status, 0) << dpo.output;
  const auto [dpo_before, dpo_after] = eval_before_after(dir + "/dpo/metrics.jsonl");
  ASSERT_FALSE(dpo_before.is_null()) << dpo.output;
  // DPO's preference accuracy is the implicit reward's (β·log π/π_ref of chosen above
  // rejected), 0 before training since policy = reference. Measured: loss 0.693 -> 0.635,
  // accuracy 0 -> 0.64. The policy's raw log-prob preference is printed for information: it
  // can fall while the relative rewards improve, a known trait of DPO.
  const double loss_before = dpo_before["eval/loss"].get<double>();
  const double loss_after = dpo_after["eval/loss"].get<double>();
  const double accuracy = dpo_after["eval/rewards/accuracies"].get<double>();
  std::printf(
      "DPO held-out loss %.4f -> %.4f, preference accuracy %.3f -> %.3f, raw log-prob "
      "preference %.3f -> %.3f, exact match %.3f -> %.3f\n",
      loss_before, loss_after, dpo_before["eval/rewards/accuracies"].get<double>(), accuracy,
      dpo_before["eval/logps/accuracy"].get<double>(),
      dpo_after["eval/logps/accuracy"].get<double>(),
      dpo_before["eval/generation/accuracy"].get<double>(),
      dpo_after["eval/generation/accuracy"].get<double>());
  EXPECT_LT(loss_after, loss_before - 0.02);
  EXPECT_GT(accuracy, 0.55);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
