// bfloat16 training through the real binary on stories260K, at Tulu 3 DPO's settings
// (length-normalised DPO, beta 5, lr 5e-7): the weights must move as an fp32 run's do.
#include <gtest/gtest.h>

#include <torch/torch.h>

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
using testing::run_flywheel;

std::string stories() {
  return testing::models_dir() + "/stories260K";
}

std::string write_dpo_recipe(const std::string& dir) {
  const std::string path = dir + "/dpo.yaml";
  std::ofstream(path) << "trainer: dpo\nseed: 3\n"
                      << "model:\n  path: " << stories() << "\n"
                      << "data:\n  train_file: " << dir << "/pairs.jsonl\n  max_length: 64\n"
                      << "training:\n  max_steps: 20\n  epochs: 10\n  micro_batch_size: 2\n"
                         "  gradient_accumulation_steps: 2\n  learning_rate: 5.0e-7\n"
                         "  lr_scheduler: constant\n  warmup_steps: 0\n  weight_decay: 0\n"
                      << "loss:\n  type: dpo_norm\n  beta: 5\n"
                      << "logging:\n  progress: lines\n"
                      << "checkpoint:\n  every_steps: 0\n";
  return path;
}

std::map<std::string, torch::Tensor> read_all(const std::string& file) {
  SafetensorsFile f(file);
  std::map<std::string, torch::Tensor> out;
  for (const auto& e : f.entries())
    out[e.name] = f.tensor(e.name).to(torch::kFloat32);
  return out;
}

// 20 steps at lr 5e-7 in float32 and in bfloat16. Before float32 master weights every update
// was rounded straight into the bfloat16 weights: 389 of the 260,032 weights changed (0.15%,
// all of them within ~1e-4 of zero, where half an ulp is below the update) and nothing kept the
// rest of the updates. With masters, 0.77% of the bfloat16 weights have crossed a rounding
// boundary, and the masters' movement is the float32 run's within 6.7% (the difference is the
// bfloat16 forward and backward). At this learning rate the forward's weights have barely
// moved in 20 steps, so the loss curves agree to bfloat16's forward noise, which depends on
// the CPU's bfloat16 kernels: at most 0.023 apart on an AVX-512 machine, 0.043 on an AVX2-only
// one (the same on the code before ZeRO-3 as after; the weights' figures above are the same on
// both).
TEST(MixedPrecision, Bf16DpoAtTinyLearningRateMovesTheWeightsAsFp32Does) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("bf16-dpo");
  testing::write_story_data(dir);
  const auto recipe = write_dpo_recipe(dir);
  auto fp32 = run_flywheel("train " + recipe + " output_dir=" + dir + "/fp32");
  ASSERT_EQ(fp32.status, 0) << fp32.output;
  auto bf16 = run_flywheel("train " + recipe + " output_dir=" + dir + "/bf16 model.dtype=bfloat16");
  ASSERT_EQ(bf16.status, 0) << bf16.output;

  const auto init = read_all(stories() + "/model.safetensors");
  const auto trained32 = read_all(dir + "/fp32/model/model.safetensors");
  const auto trained16 = read_all(dir + "/bf16/model/model.safetensors");
  const auto optimizer16 = read_all(dir + "/bf16/checkpoints/step-00000020/optimizer.safetensors");
  const auto rounded = [](const torch::Tensor& t) {
    return t.to(torch::kBFloat16).to(torch::kFloat32);
  };
  int64_t changed = 0, total = 0;
  for (const auto& [name, w0] : init) {
    changed += trained16.at(name).ne(rounded(w0)).sum().item<int64_t>();
    total += w0.numel();
  }
  const double changed_fraction = static_cast<double>(changed) / static_cast<double>(total);
  EXPECT_GT(changed_fraction, 0.005) << changed << " of " << total << " weights changed";

  double moved32 = 0, error = 0;
  for (const auto& [name, w0] : init) {
    ASSERT_TRUE(optimizer16.count(name + ".master")) << "no fp32 master for " << name;
    const auto master = optimizer16.at(name + ".master");
    // The exported bfloat16 weights are the masters rounded.
    EXPECT_TRUE(trained16.at(name).equal(rounded(master)));
    const auto delta32 = trained32.at(name) - w0, delta16 = master - rounded(w0);
    moved32 += delta32.pow(2).sum().item<double>();
    error += (delta16 - delta32).pow(2).sum().item<double>();
  }
  // The masters' movement is the fp32 run's, up to bfloat16 forward/backward noise.
  std::printf("bfloat16 weights changed: %.4f; masters' updates vs fp32's: relative error %.4f\n",
              changed_fraction, std::sqrt(error / moved32));
  EXPECT_LT(std::sqrt(error / moved32), 0.12) << "relative error of the weight updates";

  const auto loss32 = losses_of(dir + "/fp32/metrics.jsonl");
  const auto loss16 = losses_of(dir + "/bf16/metrics.jsonl");
  ASSERT_EQ(loss32.size(), 20u);
  ASSERT_EQ(loss16.size(), 20u);
  for (size_t i = 0; i < loss32.size(); ++i)
    EXPECT_NEAR(loss16[i], loss32[i], 0.06) << "step " << i + 1;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
