// The parts the training loop is built from, used the way a loop with several models (RL's
// policy and value model) would use them: step planning, schedules, metrics, and checkpoints
// holding two models with their two optimizers.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "tests/fixtures.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/optim/optimizer.h"
#include "trainer/train/checkpointer.h"
#include "trainer/train/schedule.h"
#include "trainer/train/step_metrics.h"
#include "trainer/train/step_plan.h"

namespace flywheel {
namespace {

using Batches = std::vector<std::vector<int64_t>>;

// Every example of the step goes to exactly one rank, longest first to the least loaded.
TEST(StepPlan, RanksShareAStepLongestFirstToTheLeastLoaded) {
  const std::vector<int64_t> lengths = {5, 50, 7, 40, 30, 9, 20, 60, 10, 1};
  const std::vector<int64_t> batch = {7, 3, 9, 1, 4, 8, 2};  // lengths 60 40 1 50 30 10 7
  // Longest first (60 50 40 30 10 7 1), each to the rank with fewer tokens so far (a tie goes
  // to rank 0), at most ceil(7 / 2) = 4 each: rank 0 gets 60 30 10, rank 1 gets 50 40 7 1.
  EXPECT_EQ(rank_micro_batches(batch, lengths, 2, 2, 0), (Batches{{7, 4}, {8}}));
  EXPECT_EQ(rank_micro_batches(batch, lengths, 2, 2, 1), (Batches{{1, 3}, {2, 9}}));
  // One rank takes the step whole, longest first.
  EXPECT_EQ(rank_micro_batches(batch, lengths, 4, 1, 0), (Batches{{7, 1, 3, 4}, {8, 2, 9}}));
  // Fewer examples than ranks: some ranks have none.
  EXPECT_EQ(rank_micro_batches({3}, lengths, 2, 2, 1), Batches{});
}

// Length-grouped batches come sorted longest first, so a contiguous slice per rank gave rank 0
// the longest examples of every step (in this plan 1.5x the mean of the ranks' tokens, the
// slowest rank 1.6x the fastest); the balanced split keeps every rank within 2% of the mean.
TEST(StepPlan, LengthGroupedStepsGiveEveryRankAboutTheSameTokens) {
  std::mt19937_64 rng(7);
  std::vector<int64_t> lengths(4096);
  for (auto& l : lengths)
    l = 16 + static_cast<int64_t>(rng() % 2033);  // 16..2048 tokens
  StepPlanOptions o{.micro_batch_size = 2,
                    .accumulation = 4,
                    .world_size = 4,
                    .epochs = 1,
                    .seed = 3,
                    .group_by_length = true};
  StepPlan plan(lengths, o);
  double worst_balanced = 0, worst_contiguous = 0;
  for (int64_t step = 0; step + 1 < plan.total_steps(); ++step) {
    const auto& batch = plan.batch(step);
    std::vector<double> balanced, contiguous;
    for (int r = 0; r < 4; ++r) {
      double tokens = 0;
      for (const auto& micro : rank_micro_batches(batch, lengths, 2, 4, r)) {
        EXPECT_LE(micro.size(), 2u);
        for (auto i : micro)
          tokens += static_cast<double>(lengths[i]);
      }
      balanced.push_back(tokens);
      tokens = 0;
      for (size_t i = static_cast<size_t>(r) * 8; i < static_cast<size_t>(r + 1) * 8; ++i)
        tokens += static_cast<double>(lengths[batch[i]]);
      contiguous.push_back(tokens);
    }
    const auto worst = [](const std::vector<double>& t) {
      return *std::max_element(t.begin(), t.end()) / (std::accumulate(t.begin(), t.end(), 0.0) / 4);
    };
    worst_balanced = std::max(worst_balanced, worst(balanced));
    worst_contiguous = std::max(worst_contiguous, worst(contiguous));
    EXPECT_DOUBLE_EQ(std::accumulate(balanced.begin(), balanced.end(), 0.0),
                     std::accumulate(contiguous.begin(), contiguous.end(), 0.0));
  }
  std::printf("most tokens on one rank / mean: balanced %.3f, contiguous %.3f\n", worst_balanced,
              worst_contiguous);
  EXPECT_LT(worst_balanced, 1.02);
  EXPECT_GT(worst_contiguous, 1.3);
}

TEST(StepPlan, EpochsCoverEveryExampleOnceAndMaxStepsCaps) {
  const std::vector<int64_t> lengths(10, 5);
  StepPlanOptions o;
  o.micro_batch_size = 2;
  o.accumulation = 2;
  o.epochs = 3;
  StepPlan plan(lengths, o);
  EXPECT_EQ(plan.global_batch(), 4);
  EXPECT_EQ(plan.steps_per_epoch(), 3);  // 4 + 4 + 2
  EXPECT_EQ(plan.total_steps(), 9);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> seen;
    for (int64_t s = epoch * 3; s < epoch * 3 + 3; ++s) {
      EXPECT_EQ(plan.epoch_of(s), epoch);
      const auto& b = plan.batch(s);
      seen.insert(seen.end(), b.begin(), b.end());
    }
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> all(10);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(seen, all) << "epoch " << epoch;
  }
  o.max_steps = 4;
  EXPECT_EQ(StepPlan(lengths, o).total_steps(), 4);
}

TEST(Schedule, PeriodicSkipsTheLastStepAndZeroMeansNever) {
  const Periodic every3(3, 9);
  EXPECT_FALSE(every3.due(2));
  EXPECT_TRUE(every3.due(3));
  EXPECT_TRUE(every3.due(6));
  EXPECT_FALSE(every3.due(9));  // the run's final evaluation / checkpoint covers it
  EXPECT_FALSE(Periodic(0, 9).due(3));
}

TEST(Schedule, EvaluationMergesSourcesLaterWins) {
  const Evaluation eval{{[] {
                           return Metrics{{"loss", 1.0}, {"acc", 0.5}};
                         },
                         std::function<Metrics()>(),
                         [] {
                           return Metrics{{"acc", 0.75}};
                         }},
                        Periodic(1, 2)};
  EXPECT_EQ(eval.run(), (Metrics{{"loss", 1.0}, {"acc", 0.75}}));
}

TEST(StepMetrics, SumsMicroBatchesAndDividesByTheNormalizer) {
  auto comm = single_process_communicator();
  StepMetrics m({"a", "b"});
  m.add(0.25, 10, {{"a", 3.0}});
  m.add(0.5, 6, {{"a", 1.0}, {"b", 2.0}});
  m.all_reduce(*comm);
  EXPECT_DOUBLE_EQ(m.loss(), 0.75);
  EXPECT_DOUBLE_EQ(m.token_count(), 16);
  EXPECT_EQ(m.means(4.0), (Metrics{{"a", 1.0}, {"b", 0.5}}));
  EXPECT_THROW(m.add(0, 0, {{"c", 1.0}}), c10::Error);
}

// Two models and two optimizers (an RL policy and value model): a checkpoint restores all of
// them, so training continues bit-identically.
class TwoModels {
 public:
  explicit TwoModels(Communicator& comm)
      : policy_(load_causal_lm(dir())),
        value_(load_causal_lm(dir())),
        policy_opt_(trainable_parameters(*policy_), {}, comm),
        value_opt_(trainable_parameters(*value_), {}, comm) {}

  static std::string dir() { return testing::fixtures_dir() + "/llama-tiny"; }

  void register_with(Checkpointer& c) {
    c.add_model("policy", *policy_, [this](const std::string& d, const BeforeWrite& before) {
      save_pretrained(d, *policy_, policy_->config(), kMaxShardBytes, before);
    });
    c.add_model("value", *value_, [this](const std::string& d, const BeforeWrite& before) {
      save_pretrained(d, *value_, value_->config(), kMaxShardBytes, before);
    });
    c.add_optimizer("policy_optimizer", policy_opt_);
    c.add_optimizer("value_optimizer", value_opt_);
  }

  // One deterministic update of each model (the value model on a different objective).
  void step() {
    const auto ids = torch::tensor({{1, 5, 9, 200, 33}}, torch::kInt64);
    policy_->train();
    value_->train();
    policy_opt_.accumulate(1, 1, [&](size_t) { policy_->forward({ids}).pow(2).mean().backward(); });
    value_opt_.accumulate(1, 1, [&](size_t) { (value_->forward({ids}).mean() * -1).backward(); });
    policy_opt_.step(1.0, 1e-2);
    value_opt_.step(1.0, 1e-2);
  }

  std::vector<torch::Tensor> weights() const {
    std::vector<torch::Tensor> out;
    for (const auto* m : {&policy_, &value_}) {
      for (const auto& [name, p] : named_parameters(**m))
        out.push_back(p.detach().clone());
    }
    return out;
  }

 private:
  LlamaForCausalLM policy_, value_;
  Optimizer policy_opt_, value_opt_;
};

TEST(Checkpointer, RestoresSeveralModelsAndOptimizers) {
  FLYWHEEL_REQUIRE_PATH(TwoModels::dir());
  auto comm = single_process_communicator();
  const auto root = testing::make_temp_dir("checkpointer");

  TwoModels first(*comm);
  Checkpointer saver(root, 2, *comm);
  first.register_with(saver);
  EXPECT_FALSE(saver.newest().has_value());
  first.step();
  saver.save(1, {{"rollouts", 8}});
  EXPECT_EQ(saver.last_saved(), 1);
  ASSERT_TRUE(saver.newest().has_value());
  for (const char* part :
       {"policy/config.json", "value/model.safetensors", "policy_optimizer/optimizer.safetensors",
        "value_optimizer/optimizer.safetensors", "rng.safetensors"}) {
    EXPECT_TRUE(std::filesystem::exists(*saver.newest() + "/" + part)) << part;
  }
  first.step();
  const auto want = first.weights();

  TwoModels second(*comm);
  Checkpointer loader(root, 2, *comm);
  second.register_with(loader);
  std::vector<std::string> notes;
  EXPECT_EQ(loader.restore_latest(&notes), 1);
  second.step();  // needs both optimizers' moments and step counts back
  const auto got = second.weights();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_TRUE(torch::equal(got[i], want[i])) << "tensor " << i;
  std::filesystem::remove_all(root);
}

TEST(Checkpointer, PublishModelReplacesTheDirectoryWhole) {
  const auto root = testing::make_temp_dir("publish");
  const auto dir = root + "/model";
  publish_model(
      dir, [](const std::string& d, const BeforeWrite&) { std::ofstream(d + "/a") << "1"; }, {});
  publish_model(
      dir, [](const std::string& d, const BeforeWrite&) { std::ofstream(d + "/b") << "2"; }, {});
  EXPECT_FALSE(std::filesystem::exists(dir + "/a"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/b"));
  EXPECT_FALSE(std::filesystem::exists(dir + ".tmp"));
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace flywheel
