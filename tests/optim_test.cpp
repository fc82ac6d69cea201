// AdamW against LibTorch's own torch::optim::AdamW (an independent implementation), the
// learning-rate schedules against Hugging Face's formulas worked by hand, and clipping.
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/optim/adamw.h"
#include "trainer/optim/lr_schedule.h"

namespace flywheel {
namespace {

TEST(AdamW, MatchesLibTorchAdamW) {
  torch::manual_seed(0);
  auto w0 = torch::randn({4, 3}), b0 = torch::randn({3});
  auto w1 = w0.clone().requires_grad_(), b1 = b0.clone().requires_grad_();
  auto w2 = w0.clone().requires_grad_(), b2 = b0.clone().requires_grad_();
  const double lr = 1e-2, wd = 0.1;
  AdamW ours({{"w", w1}, {"b", b1}}, {0.9, 0.999, 1e-8, wd});
  // LibTorch decays every parameter; ours skips 1-d ones, so the bias group gets wd = 0.
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{w2},
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(lr).weight_decay(wd)));
  groups.emplace_back(
      std::vector<torch::Tensor>{b2},
      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(lr).weight_decay(0)));
  torch::optim::AdamW reference(groups);
  for (int step = 0; step < 5; ++step) {
    auto x = torch::randn({8, 4});
    auto loss1 = (torch::matmul(x, w1) + b1).pow(2).mean();
    auto loss2 = (torch::matmul(x, w2) + b2).pow(2).mean();
    loss1.backward();
    loss2.backward();
    ours.step(lr, {w1.grad(), b1.grad()});
    reference.step();
    w1.mutable_grad() = torch::Tensor();
    b1.mutable_grad() = torch::Tensor();
    reference.zero_grad();
  }
  const double dw = (w1 - w2).abs().max().item<double>();
  const double db = (b1 - b2).abs().max().item<double>();
  std::printf("AdamW vs torch::optim::AdamW after 5 steps: max diff w %.3g b %.3g\n", dw, db);
  // The same ATen kernels in the same order: bit-identical, not merely close.
  EXPECT_EQ(dw, 0.0);
  EXPECT_EQ(db, 0.0);
  EXPECT_EQ(ours.steps(), 5);
}

// A bfloat16 parameter trains through a float32 master: fed the same gradients, the master is
// bit for bit the float32 AdamW's weight and the parameter is the master rounded. At lr 5e-7
// the update is far below half a bfloat16 ulp of these weights (~0.02: 6e-5), so rounding each
// update into the weight itself would leave it unchanged.
TEST(AdamW, LowPrecisionParametersTrainThroughFloat32Masters) {
  torch::manual_seed(0);
  auto low = (torch::randn({64, 64}) * 0.02).to(torch::kBFloat16);
  const auto start = low.clone();
  auto full = low.to(torch::kFloat32);
  AdamW ours({{"w", low}}, {}), reference({{"w", full}}, {});
  for (int step = 0; step < 20; ++step) {
    const auto g = torch::randn({64, 64});
    ours.step(5e-7, {g.to(torch::kBFloat16)});
    reference.step(5e-7, {g.to(torch::kBFloat16).to(torch::kFloat32)});
  }
  std::map<std::string, torch::Tensor> state;
  for (auto& [k, v] : ours.state())
    state[k] = v.clone();
  ASSERT_TRUE(state.count("w.master"));
  EXPECT_TRUE(state["w.master"].equal(full));
  EXPECT_TRUE(low.equal(full.to(torch::kBFloat16)));
  EXPECT_GT(low.ne(start).sum().item<int64_t>(), 0) << "no bfloat16 weight moved";
  // A restored optimizer continues from the saved master, not from the rounded weights.
  auto again = low.clone();
  AdamW restored({{"w", again}}, {});
  restored.load_state(state, "test");
  const auto g = torch::randn({64, 64});
  ours.step(5e-7, {g});
  restored.step(5e-7, {g});
  EXPECT_TRUE(again.equal(low));
  const auto master = [](const AdamW& a) {
    for (const auto& [k, v] : a.state()) {
      if (k == "w.master") return v;
    }
    return torch::Tensor();
  };
  EXPECT_TRUE(master(restored).equal(master(ours)));
}

TEST(AdamW, StateRoundTrip) {
  auto w = torch::ones({2, 2}, torch::requires_grad());
  AdamW a({{"w", w}}, {});
  w.sum().backward();
  a.step(0.1, {w.grad()});
  w.mutable_grad() = torch::Tensor();
  std::map<std::string, torch::Tensor> state;
  for (auto& [k, v] : a.state())
    state[k] = v.clone();
  auto w2 = w.detach().clone().requires_grad_();
  AdamW b({{"w", w2}}, {});
  b.load_state(state, "test");
  EXPECT_EQ(b.steps(), 1);
  (w.sum() * 2).backward();
  (w2.sum() * 2).backward();
  a.step(0.1, {w.grad()});
  b.step(0.1, {w2.grad()});
  EXPECT_TRUE(torch::equal(w, w2));
  state.erase("w.exp_avg");
  EXPECT_THROW(b.load_state(state, "test"), std::exception);
}

// HF: warmup k/W, then linear (N-k)/(N-W) or cosine 0.5(1+cos(pi (k-W)/(N-W))).
TEST(LrSchedule, WarmupLinearCosineConstant) {
  // N = 10, ratio 0.2 -> W = ceil(2.0) = 2.
  LrSchedule linear("linear", 1.0, 10, 0, 0.2);
  EXPECT_EQ(linear.warmup_steps(), 2);
  EXPECT_DOUBLE_EQ(linear.at(0), 0.0);
  EXPECT_DOUBLE_EQ(linear.at(1), 0.5);
  EXPECT_DOUBLE_EQ(linear.at(2), 1.0);
  EXPECT_DOUBLE_EQ(linear.at(6), 0.5);  // (10-6)/(10-2)
  EXPECT_DOUBLE_EQ(linear.at(10), 0.0);
  LrSchedule cosine("cosine", 2.0, 10, 2, 0.0);
  EXPECT_NEAR(cosine.at(6), 2.0 * 0.5 * (1 + std::cos(M_PI * 0.5)), 1e-12);  // = 1.0
  EXPECT_NEAR(cosine.at(4), 2.0 * 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-12);
  LrSchedule constant("constant", 3.0, 10, 0, 0.1);  // W = ceil(1.0) = 1
  EXPECT_DOUBLE_EQ(constant.at(0), 0.0);
  EXPECT_DOUBLE_EQ(constant.at(7), 3.0);
  EXPECT_THROW(LrSchedule("step", 1.0, 10, 0, 0.0), std::exception);
}

TEST(ClipGradNorm, ScalesToMaxNorm) {
  auto a = torch::tensor({3.0f, 0.0f});
  auto b = torch::tensor({4.0f});
  EXPECT_NEAR(clip_grad_norm({a, b, torch::Tensor()}, 1.0), 5.0, 1e-6);  // sqrt(9 + 16)
  EXPECT_NEAR(a[0].item<double>(), 3.0 / 5.0, 1e-5);
  EXPECT_NEAR(b[0].item<double>(), 4.0 / 5.0, 1e-5);
  EXPECT_NEAR(clip_grad_norm({a, b}, 0.0), 1.0, 1e-5);  // measure only
}

}  // namespace
}  // namespace flywheel
