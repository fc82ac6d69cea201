// Training-step throughput of Flywheel's SFT and DPO steps on a model built from a config.json.
//
//   flywheel_bench_train_step --config PATH [--mode sft|dpo] [--batch B] [--seq T]
//                             [--steps N] [--warmup W] [--seed S] [--lr LR]
//                             [--profile TRACE.json]
//
// Builds the model with init_weights(std 0.02, seed), draws random token ids (seeded), and
// times N full optimizer steps after W warm-up steps, exactly as trainer/train/train_loop.cpp and
// the SFT / DPO objectives do them: forward, loss, backward (into the optimizer's float32
// gradient buffers), loss.item(), clip_grad_norm(1.0), AdamW step. Prints one JSON line on stdout.
// bench/train_step_bench.py is the same step in PyTorch-Python and prints the same line;
// bench/run_train_step.sh runs both.
// --profile runs one more step (after the timed ones) under the autograd profiler and writes
// a Chrome trace; bench/profile_compare.py sets two such traces side by side.
//
// Batches are what collate() builds for unpadded rows: attention_mask all ones, position_ids
// 0..T-1, labels = ids with the first half of every row set to -100 (the "prompt").
//   sft: B rows; loss = sft_loss(kSum) / trained tokens (the token_mean normaliser).
//   dpo: B pairs = 2B rows (chosen then rejected) in one forward; sequence_logps; dpo loss
//        (beta 0.1) against fixed reference log-probs (the trainer caches them); loss =
//        Σ per-example loss / B.
// The random draws (ids, then reference log-probs, from one generator seeded with --seed) and
// the weight initialisation are the same as the Python script's, so both start from
// identical weights and data and report the same first-step loss.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_flags.h"
#include "losses/logprobs.h"
#include "losses/preference.h"
#include "losses/sft.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/dist/runtime.h"
#include "trainer/model/init.h"
#include "trainer/model/llama.h"
#include "trainer/model/model_config.h"
#include "trainer/optim/optimizer.h"

namespace {

using flywheel::UserError;

struct Flags {
  std::string config;
  std::string mode = "sft";
  int64_t batch = 8;
  int64_t seq = 256;
  int64_t steps = 10;
  int64_t warmup = 3;
  uint64_t seed = 0;
  double lr = 1e-4;
  std::string profile;  // when set: one extra step under the autograd profiler, a Chrome trace
};

constexpr const char* kUsage =
    "usage: flywheel_bench_train_step --config PATH [--mode sft|dpo] [--batch B] [--seq T]\n"
    "                                 [--steps N] [--warmup W] [--seed S] [--lr LR]\n"
    "                                 [--profile TRACE.json]\n";

Flags parse_flags(int argc, char** argv) {
  using flywheel::bench::parse_int;
  const auto given = flywheel::bench::parse_flags(
      argc, argv, {"config", "mode", "batch", "seq", "steps", "warmup", "seed", "profile", "lr"},
      kUsage);
  Flags f;
  for (const auto& [flag, value] : given) {
    if (flag == "config") {
      f.config = value;
    } else if (flag == "mode") {
      if (value != "sft" && value != "dpo") throw UserError("--mode must be sft or dpo");
      f.mode = value;
    } else if (flag == "batch") {
      f.batch = parse_int(flag, value, 1);
    } else if (flag == "seq") {
      f.seq = parse_int(flag, value, 4);
    } else if (flag == "steps") {
      f.steps = parse_int(flag, value, 1);
    } else if (flag == "warmup") {
      f.warmup = parse_int(flag, value, 0);
    } else if (flag == "seed") {
      f.seed = static_cast<uint64_t>(parse_int(flag, value, 0));
    } else if (flag == "profile") {
      f.profile = value;
    } else {
      f.lr = flywheel::bench::parse_double(flag, value);
    }
  }
  if (f.config.empty()) throw UserError(std::string("--config is required\n") + kUsage);
  return f;
}

// "stories260K" for .../stories260K/config.json, "llama-10m" for .../llama-10m.json.
std::string model_name(const std::string& path) {
  const std::filesystem::path p(path);
  if (p.filename() == "config.json" && p.has_parent_path()) {
    return std::filesystem::absolute(p).parent_path().filename().string();
  }
  return p.stem().string();
}

// One training batch: what collate() returns for `rows` unpadded sequences of length T.
struct Batch {
  torch::Tensor input_ids, position_ids, attention_mask, labels;  // [rows, T]
  int64_t token_count = 0;                                        // non-pad tokens
  int64_t loss_token_count = 0;                                   // trained after the shift
};

Batch make_batch(int64_t rows, int64_t T, int64_t vocab, at::Generator& gen) {
  Batch b;
  b.input_ids = torch::randint(vocab, {rows, T}, gen, torch::kInt64);
  b.position_ids = torch::arange(T, torch::kInt64).unsqueeze(0).expand({rows, T}).contiguous();
  b.attention_mask = torch::ones({rows, T}, torch::kInt64);
  b.labels = b.input_ids.clone();
  b.labels.narrow(1, 0, T / 2).fill_(flywheel::kIgnoreIndex);
  b.token_count = rows * T;
  b.loss_token_count = rows * (T - T / 2);
  return b;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int run(const Flags& f) {
  const int threads = flywheel::configure_runtime();
  const auto config = flywheel::load_model_config(f.config);
  flywheel::LlamaForCausalLM model(config);
  flywheel::init_weights(*model, /*std=*/0.02, f.seed);
  model->train();

  std::vector<std::pair<std::string, torch::Tensor>> named;
  int64_t num_params = 0;
  for (auto& [name, p] : flywheel::named_parameters(*model)) {
    if (!p.requires_grad()) continue;
    named.emplace_back(name, p);
    num_params += p.numel();
  }
  // The trainer's optimizer: float32 gradient accumulation, masters for low-precision weights.
  auto comm = flywheel::single_process_communicator();
  flywheel::Optimizer optimizer(named, {.adamw = {0.9, 0.999, 1e-8, /*weight_decay=*/0.0}}, *comm);

  const bool dpo = f.mode == "dpo";
  const int64_t B = f.batch, T = f.seq;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(f.seed);
  const Batch batch = make_batch(dpo ? 2 * B : B, T, config.vocab_size, gen);
  // Fixed reference log-probs near what the initial policy gives (≈ -ln V per scored token),
  // so z and the sigmoid are in their usual range.
  torch::Tensor ref_chosen, ref_rejected;
  if (dpo) {
    const double base = -static_cast<double>(T - T / 2) * std::log(double(config.vocab_size));
    auto noise = torch::randn({2, B}, gen, torch::kFloat32);
    ref_chosen = base + noise[0];
    ref_rejected = base + noise[1];
  }
  flywheel::losses::PreferenceOptions pref;
  pref.type = flywheel::losses::PreferenceLossType::kDpo;
  pref.beta = 0.1;

  // One optimizer step; returns the loss.
  auto step = [&]() -> double {
    auto logits =
        model->forward({batch.input_ids, batch.position_ids, batch.attention_mask});  // [R, T, V]
    torch::Tensor loss;
    if (!dpo) {
      loss = flywheel::losses::sft_loss(logits, batch.labels, flywheel::losses::SftReduction::kSum)
                 .loss /
             static_cast<double>(batch.loss_token_count);
    } else {
      const auto lp = flywheel::losses::sequence_logps(logits, batch.labels);
      flywheel::losses::PreferenceInputs in;
      in.policy_chosen_logps = lp.sum.narrow(0, 0, B);
      in.policy_rejected_logps = lp.sum.narrow(0, B, B);
      in.chosen_lengths = lp.count.narrow(0, 0, B).to(torch::kFloat32);
      in.rejected_lengths = lp.count.narrow(0, B, B).to(torch::kFloat32);
      in.reference_chosen_logps = ref_chosen;
      in.reference_rejected_logps = ref_rejected;
      loss = flywheel::losses::preference_loss(in, pref).per_example_loss.sum() /
             static_cast<double>(B);
    }
    optimizer.accumulate(1, 1, [&](size_t) { loss.backward(); });
    const double value = loss.item<double>();
    optimizer.step(1.0, f.lr);
    return value;
  };

  double first_loss = 0, last_loss = 0;
  for (int64_t i = 0; i < f.warmup; ++i) {
    const double l = step();
    if (i == 0) first_loss = l;
  }
  std::vector<double> ms;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < f.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    last_loss = step();
    if (f.warmup == 0 && i == 0) first_loss = last_loss;
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (!f.profile.empty()) {
    torch::autograd::profiler::RecordProfile guard(f.profile);
    step();
  }

  const int64_t tokens_per_step = batch.token_count;
  nlohmann::json out = {
      {"impl", "flywheel"},
      {"mode", f.mode},
      {"model", model_name(f.config)},
      {"params", num_params},
      {"batch", B},
      {"seq", T},
      {"tokens_per_step", tokens_per_step},
      {"step_ms", 1000.0 * total_s / static_cast<double>(f.steps)},
      {"step_ms_median", median(ms)},
      {"step_ms_min", *std::min_element(ms.begin(), ms.end())},
      {"tokens_per_sec", static_cast<double>(tokens_per_step * f.steps) / total_s},
      {"threads", threads},
      {"steps", f.steps},
      {"warmup", f.warmup},
      {"first_loss", first_loss},
      {"last_loss", last_loss},
  };
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return flywheel::bench::run_main([&] { return run(parse_flags(argc, argv)); });
}
