// losses/: golden values from tests/data/losses.json (float64 references; see LOSSES.md
// beside it) checked in float64 and float32, hand-computed masked reductions, gradients against
// finite differences, option validation, and data-parallel invariance of token means.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "losses/grpo.h"
#include "losses/kl.h"
#include "losses/logprobs.h"
#include "losses/masked.h"
#include "losses/ppo.h"
#include "losses/preference.h"
#include "losses/reward.h"
#include "losses/sft.h"
#include "tests/fixtures.h"
#include "trainer/core/error.h"

namespace flywheel::losses {
namespace {

using nlohmann::json;

std::string fixture_path() {
  return testing::fixtures_dir() + "/losses.json";
}

const json& cases() {
  static const json parsed = [] {
    std::ifstream in(fixture_path());
    return json::parse(in)["cases"];
  }();
  return parsed;
}

// A nested JSON array of numbers as a tensor of its shape.
torch::Tensor to_tensor(const json& j, torch::ScalarType dtype = torch::kDouble) {
  std::vector<int64_t> shape;
  for (const json* level = &j; level->is_array(); level = &level->front()) {
    shape.push_back(static_cast<int64_t>(level->size()));
    if (level->empty()) break;
  }
  std::vector<double> values;
  const std::function<void(const json&)> flatten = [&](const json& node) {
    if (node.is_array()) {
      for (const auto& child : node)
        flatten(child);
    } else {
      values.push_back(node.get<double>());
    }
  };
  flatten(j);
  return torch::tensor(values, torch::kDouble).view(shape).to(dtype);
}

// |got - want| <= atol + rtol·|want| everywhere, printing the largest difference.
void expect_close(const torch::Tensor& got, const torch::Tensor& want, double rtol, double atol,
                  const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const auto g = got.detach().to(torch::kDouble);
  const auto w = want.to(torch::kDouble);
  const double max_diff = (g - w).abs().max().item<double>();
  std::printf("  %-40s max |diff| = %.3g\n", what.c_str(), max_diff);
  EXPECT_TRUE(torch::allclose(g, w, rtol, atol))
      << what << ": max |diff| " << max_diff << "\n got " << g << "\n want " << w;
}

// ---- golden values, once per dtype ----

class LossesFixture : public ::testing::TestWithParam<torch::ScalarType> {
 protected:
  void SetUp() override { FLYWHEEL_REQUIRE_PATH(fixture_path()); }

  torch::ScalarType dtype() const { return GetParam(); }
  torch::Tensor in(const json& j) const { return to_tensor(j, dtype()); }
  // float64 to 1e-6 relative; float32 to 1e-5 relative plus 1e-5 absolute (values near 0).
  double rtol() const { return dtype() == torch::kDouble ? 1e-6 : 1e-5; }
  double atol() const { return dtype() == torch::kDouble ? 1e-12 : 1e-5; }
  void check(const torch::Tensor& got, const json& want, const std::string& what) const {
    EXPECT_EQ(got.scalar_type(), dtype()) << what;
    expect_close(got, to_tensor(want), rtol(), atol(), what);
  }
};

TEST_P(LossesFixture, SequenceLogps) {
  const auto& c = cases()["sequence_logps"];
  const auto labels = to_tensor(c["inputs"]["labels"], torch::kLong);  // [3, 9]
  const auto got = sequence_logps(in(c["inputs"]["logits"]), labels);
  const auto& want = c["expected"];
  check(got.token_logps, want["token_logps"], "token_logps");
  check(got.sum, want["sum"], "sum");
  check(got.mean, want["mean"], "mean");
  EXPECT_TRUE(got.count.equal(to_tensor(want["count"], torch::kLong)));
}

TEST_P(LossesFixture, PreferenceVariants) {
  const auto& c = cases()["preference"];
  const auto& x = c["inputs"];
  PreferenceInputs inputs;
  inputs.policy_chosen_logps = in(x["policy_chosen_logps"]);
  inputs.policy_rejected_logps = in(x["policy_rejected_logps"]);
  inputs.reference_chosen_logps = in(x["reference_chosen_logps"]);
  inputs.reference_rejected_logps = in(x["reference_rejected_logps"]);
  inputs.chosen_lengths = in(x["chosen_lengths"]);
  inputs.rejected_lengths = in(x["rejected_lengths"]);
  ASSERT_EQ(c["variants"].size(), 7u);
  for (const auto& v : c["variants"]) {
    const auto& p = v["params"];
    PreferenceOptions options;
    options.type = parse_preference_loss_type(v["loss_type"].get<std::string>());
    options.beta = p["beta"].get<double>();
    options.label_smoothing = p.value("label_smoothing", 0.0);
    options.gamma_beta_ratio = p.value("gamma_beta_ratio", 0.0);
    auto variant_inputs = inputs;
    if (options.type == PreferenceLossType::kSimpo) {
      // SimPO has no reference model: it must not need one.
      variant_inputs.reference_chosen_logps = torch::Tensor();
      variant_inputs.reference_rejected_logps = torch::Tensor();
    }
    const auto got = preference_loss(variant_inputs, options);
    const auto& want = v["expected"];
    const std::string name = v["loss_type"].get<std::string>() + " " + p.dump() + " ";
    check(got.loss, want["loss"], name + "loss");
    check(got.per_example_loss, want["per_example_loss"], name + "per_example_loss");
    check(got.chosen_rewards, want["chosen_rewards"], name + "chosen_rewards");
    check(got.rejected_rewards, want["rejected_rewards"], name + "rejected_rewards");
    check(got.accuracy, want["accuracy"], name + "accuracy");
    check(got.margin, want["margin"], name + "margin");
  }
}

TEST_P(LossesFixture, RewardModel) {
  const auto& c = cases()["reward_model"];
  const auto& x = c["inputs"];
  const auto chosen = in(x["chosen_scores"]);
  const auto rejected = in(x["rejected_scores"]);
  const auto plain = bradley_terry_loss(chosen, rejected);
  check(plain.loss, c["expected"]["bradley_terry"], "bradley_terry");
  check(plain.accuracy, c["expected"]["accuracy"], "accuracy");
  expect_close(plain.margin,
               (to_tensor(x["chosen_scores"]) - to_tensor(x["rejected_scores"])).mean(), rtol(),
               atol(), "margin");

  BradleyTerryOptions centered;
  centered.center_coefficient = 0.01;
  const auto with_margin = bradley_terry_loss(chosen, rejected, in(x["margins"]), centered);
  check(with_margin.loss, c["expected"]["bradley_terry_margin_center001"],
        "bradley_terry_margin_center001");

  const auto pl =
      plackett_luce_loss(in(x["kwise_scores"]), to_tensor(x["kwise_ranking"], torch::kLong));
  check(pl.per_example_loss, c["expected"]["plackett_luce_per_example"],
        "plackett_luce_per_example");
  check(pl.loss, c["expected"]["plackett_luce"], "plackett_luce");
}

TEST_P(LossesFixture, KlEstimators) {
  const auto& c = cases()["kl"];
  const auto logps = in(c["inputs"]["logprobs"]);
  const auto ref = in(c["inputs"]["ref_logprobs"]);
  check(kl_k1(logps, ref), c["expected"]["k1"], "k1");
  check(kl_k2(logps, ref), c["expected"]["k2"], "k2");
  check(kl_k3(logps, ref), c["expected"]["k3"], "k3");
}

// A token the reference gives probability ~0 (or the policy does): k3 stays finite, at the
// clamp's value, and its gradient too.
TEST(Kl, K3IsClampedAgainstOverflow) {
  const auto logps = torch::tensor({-0.1f, -300.0f}, torch::requires_grad());
  const auto ref = torch::tensor({-300.0f, -0.1f});
  const auto k3 = kl_k3(logps, ref);
  k3.sum().backward();
  EXPECT_TRUE(torch::isfinite(k3).all().item<bool>()) << k3;
  EXPECT_TRUE(torch::isfinite(logps.grad()).all().item<bool>()) << logps.grad();
  const double m = kK3MaxLogRatio;
  EXPECT_NEAR(k3[0].item<double>(), std::expm1(-m) + m, 1e-4);
  EXPECT_NEAR(k3[1].item<double>() / (std::expm1(m) - m), 1.0, 1e-6);
}

TEST_P(LossesFixture, Ppo) {
  const auto& c = cases()["ppo"];
  const auto& x = c["inputs"];
  const auto& want = c["expected"];
  PpoOptions options;
  options.gamma = c["params"]["gamma"].get<double>();
  options.lam = c["params"]["lam"].get<double>();
  options.cliprange = c["params"]["cliprange"].get<double>();
  options.cliprange_value = c["params"]["cliprange_value"].get<double>();
  const auto mask = in(x["mask"]);
  const auto values = in(x["values"]);
  const auto g = gae(in(x["rewards"]), values, mask, options);
  check(g.advantages, want["advantages"], "advantages");
  check(g.returns, want["returns"], "returns");
  const auto whitened = masked_whiten(g.advantages, mask);
  check(whitened, want["whitened_advantages"], "whitened_advantages");
  const auto pg =
      ppo_policy_loss(in(x["new_logprobs"]), in(x["old_logprobs"]), whitened, mask, options);
  check(pg.loss, want["pg_loss"], "pg_loss");
  check(pg.clipfrac, want["pg_clipfrac"], "pg_clipfrac");
  const auto vf = ppo_value_loss(in(x["new_values"]), values, g.returns, mask, options);
  check(vf.loss, want["vf_loss"], "vf_loss");
}

TEST_P(LossesFixture, Grpo) {
  const auto& c = cases()["grpo"];
  const auto& x = c["inputs"];
  const auto& want = c["expected"];
  GrpoOptions options;
  options.group_size = c["params"]["group_size"].get<int64_t>();
  options.clip = c["params"]["clip"].get<double>();
  options.beta = c["params"]["beta"].get<double>();
  options.eps = c["params"]["eps"].get<double>();
  const auto rewards = in(x["rewards"]);
  const auto standard = grpo_advantages(rewards, options);
  check(standard, want["advantages_standard"], "advantages_standard");
  options.advantage = GrpoAdvantage::kCentered;
  check(grpo_advantages(rewards, options), want["advantages_centered"], "advantages_centered");

  const auto mask = in(x["mask"]);
  const auto logps = in(x["new_logprobs"]);
  const auto old = in(x["old_logprobs"]);
  const auto ref = in(x["ref_logprobs"]);
  options.aggregation = LossAggregation::kTokenMean;
  check(grpo_loss(logps, old, ref, standard, mask, options).loss, want["loss_token_mean"],
        "loss_token_mean");
  options.aggregation = LossAggregation::kSequenceMean;
  check(grpo_loss(logps, old, ref, standard, mask, options).loss, want["loss_sequence_mean"],
        "loss_sequence_mean");
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LossesFixture, ::testing::Values(torch::kDouble, torch::kFloat),
                         [](const ::testing::TestParamInfo<torch::ScalarType>& info) {
                           return std::string(c10::toString(info.param));
                         });

// ---- masked reductions, by hand ----

TEST(Masked, SumMeanAndEmptySelections) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const auto x = torch::tensor({{1.0, 2.0, nan}, {4.0, inf, 6.0}});
  const auto mask = torch::tensor({{1, 1, 0}, {0, 0, 1}});
  // NaN and inf sit outside the mask and must not leak in.
  EXPECT_DOUBLE_EQ(masked_sum(x, mask).item<double>(), 9.0);              // 1 + 2 + 6
  EXPECT_DOUBLE_EQ(masked_mean(x, mask).item<double>(), 3.0);             // 9 / 3
  EXPECT_TRUE(masked_mean(x, mask, 1).equal(torch::tensor({1.5, 6.0})));  // (1+2)/2, 6/1
  EXPECT_TRUE(masked_sum(x, mask, 0).equal(torch::tensor({1.0, 2.0, 6.0})));
  // Nothing selected: 0 / max(0, 1) = 0, not NaN.
  EXPECT_DOUBLE_EQ(masked_mean(x, torch::zeros_like(mask)).item<double>(), 0.0);
}

TEST(Masked, Whiten) {
  const auto x = torch::tensor({1.0, 2.0, 3.0, 100.0}, torch::kDouble);
  const auto mask = torch::tensor({true, true, true, false});
  // Over {1, 2, 3}: mean 2, unbiased var ((1 + 0 + 1) / 2) = 1, so x - 2 (to ~5e-9).
  const auto white = masked_whiten(x, mask);
  expect_close(white, torch::tensor({-1.0, 0.0, 1.0, 0.0}, torch::kDouble), 0, 1e-8, "whiten");
  // shift_mean = false: rescaled about the mean, which is kept.
  const auto scaled = masked_whiten(x, mask, /*shift_mean=*/false);
  expect_close(scaled, torch::tensor({1.0, 2.0, 3.0, 0.0}, torch::kDouble), 0, 1e-8, "scaled");
  EXPECT_THROW(masked_whiten(x, torch::tensor({true, false, false, false})), c10::Error);
}

// ---- log-probs beyond the fixture ----

// bfloat16 logits take the row-by-row float32 path and must agree with upcasting first.
TEST(Logprobs, LowPrecisionUpcastsToFloat32) {
  torch::manual_seed(0);
  const auto logits = torch::randn({3, 5, 11}).to(torch::kBFloat16);
  const auto labels = torch::randint(0, 11, {3, 5});
  const auto got = gather_logps(logits, labels);
  EXPECT_EQ(got.scalar_type(), torch::kFloat);
  expect_close(got, gather_logps(logits.to(torch::kFloat), labels), 0, 1e-6, "bf16 vs f32");
  const auto reference =
      torch::log_softmax(logits.to(torch::kFloat), -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1);
  expect_close(got, reference, 0, 1e-5, "vs log_softmax");
}

// K = 2 Plackett–Luce is Bradley–Terry.
TEST(Reward, PlackettLuceWithTwoResponsesIsBradleyTerry) {
  const auto chosen = torch::tensor({0.3, -1.2, 2.0}, torch::kDouble);
  const auto rejected = torch::tensor({0.1, 0.5, -2.0}, torch::kDouble);
  const auto scores = torch::stack({rejected, chosen}, 1);                     // [3, 2]
  const auto ranking = torch::tensor({{1, 0}, {1, 0}, {1, 0}}, torch::kLong);  // chosen first
  expect_close(plackett_luce_loss(scores, ranking).loss, bradley_terry_loss(chosen, rejected).loss,
               1e-12, 0, "PL(K=2) vs BT");
  EXPECT_THROW(plackett_luce_loss(scores, torch::tensor({{1, 1}, {1, 0}, {1, 0}})), c10::Error);
}

// ---- gradients ----

// Central differences of a scalar function f at x, one entry at a time (float64 only).
torch::Tensor numeric_grad(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                           const torch::Tensor& x, double h = 1e-6) {
  torch::NoGradGuard no_grad;
  auto grad = torch::zeros_like(x);
  auto flat = x.clone();
  auto view = flat.view(-1);
  for (int64_t i = 0; i < view.numel(); ++i) {
    const double saved = view[i].item<double>();
    view[i] = saved + h;
    const double up = f(flat).item<double>();
    view[i] = saved - h;
    const double down = f(flat).item<double>();
    view[i] = saved;
    grad.view(-1)[i] = (up - down) / (2 * h);
  }
  return grad;
}

torch::Tensor autograd_grad(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                            const torch::Tensor& x) {
  const auto leaf = x.clone().requires_grad_(true);
  f(leaf).backward();
  EXPECT_TRUE(torch::isfinite(leaf.grad()).all().item<bool>());
  return leaf.grad();
}

TEST(Gradients, SequenceLogpsMatchesFiniteDifferences) {
  torch::manual_seed(1);
  const auto logits = torch::randn({2, 4, 5}, torch::kDouble);
  const auto labels = torch::tensor({{-100, 3, 0, 4}, {-100, -100, 2, -100}});
  const auto f = [&](const torch::Tensor& l) {
    const auto out = sequence_logps(l, labels);
    return out.sum.sum() + out.mean.sum();
  };
  const auto grad = autograd_grad(f, logits);
  expect_close(grad, numeric_grad(f, logits), 1e-5, 1e-8, "d sequence_logps / d logits");
  // The last position predicts nothing, and row 1's only trained label is scored at t = 1.
  EXPECT_TRUE(grad.select(1, 3).eq(0).all().item<bool>());
  EXPECT_TRUE(grad[1][0].eq(0).all().item<bool>());
}

TEST(Gradients, PreferenceLossesMatchFiniteDifferences) {
  PreferenceInputs inputs;
  inputs.policy_rejected_logps = torch::tensor({-12.0, -30.0, -7.5}, torch::kDouble);
  inputs.reference_chosen_logps = torch::tensor({-10.5, -22.0, -9.0}, torch::kDouble);
  inputs.reference_rejected_logps = torch::tensor({-11.0, -29.0, -8.0}, torch::kDouble);
  inputs.chosen_lengths = torch::tensor({5.0, 9.0, 4.0}, torch::kDouble);
  inputs.rejected_lengths = torch::tensor({6.0, 12.0, 3.0}, torch::kDouble);
  const auto chosen = torch::tensor({-10.0, -20.0, -9.5}, torch::kDouble);
  for (const char* type : {"dpo", "dpo_norm", "ipo", "simpo"}) {
    PreferenceOptions options;
    options.type = parse_preference_loss_type(type);
    options.label_smoothing = options.type == PreferenceLossType::kIpo ? 0.0 : 0.1;
    const auto f = [&](const torch::Tensor& policy_chosen) {
      auto x = inputs;
      x.policy_chosen_logps = policy_chosen;
      return preference_loss(x, options).loss;
    };
    expect_close(autograd_grad(f, chosen), numeric_grad(f, chosen), 1e-5, 1e-9,
                 std::string("d ") + type + " / d policy_chosen_logps");
  }
}

// End to end: logits -> sequence log-probs -> DPO loss -> finite gradients on the logits.
TEST(Gradients, DpoBackpropagatesToLogits) {
  torch::manual_seed(2);
  const auto logits = torch::randn({4, 6, 7}, torch::kFloat).requires_grad_(true);
  const auto labels = torch::randint(0, 7, {4, 6});
  const auto logps = sequence_logps(logits, labels).sum;  // rows 0, 1 chosen; 2, 3 rejected
  PreferenceInputs inputs;
  inputs.policy_chosen_logps = logps.slice(0, 0, 2);
  inputs.policy_rejected_logps = logps.slice(0, 2, 4);
  inputs.reference_chosen_logps = torch::full({2}, -10.0);
  inputs.reference_rejected_logps = torch::full({2}, -11.0);
  preference_loss(inputs, {}).loss.backward();
  EXPECT_TRUE(torch::isfinite(logits.grad()).all().item<bool>());
  EXPECT_GT(logits.grad().abs().sum().item<double>(), 0);
}

// ---- options ----

// The UserError message `f` throws, or "" when it throws none.
std::string user_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

// RPO: every variant's loss plus α times the chosen response's NLL per token, with its gradient
// reaching the chosen log-probs; α = 0 leaves the loss as it was.
TEST(Preference, RpoAddsTheChosenNllPerToken) {
  const auto f64 = torch::dtype(torch::kFloat64);
  PreferenceInputs in;
  in.policy_chosen_logps = torch::tensor({-4.0, -9.0, -2.5}, f64.requires_grad(true));
  in.policy_rejected_logps = torch::tensor({-5.0, -7.0, -6.0}, f64);
  in.reference_chosen_logps = torch::tensor({-4.5, -8.0, -3.0}, f64);
  in.reference_rejected_logps = torch::tensor({-5.5, -7.5, -5.0}, f64);
  in.chosen_lengths = torch::tensor({2.0, 3.0, 5.0}, f64);
  in.rejected_lengths = torch::tensor({4.0, 3.0, 2.0}, f64);
  for (const auto type : {PreferenceLossType::kDpo, PreferenceLossType::kDpoNorm,
                          PreferenceLossType::kIpo, PreferenceLossType::kSimpo}) {
    PreferenceOptions plain;
    plain.type = type;
    PreferenceOptions rpo = plain;
    rpo.rpo_alpha = 0.5;
    const auto without = preference_loss(in, plain);
    const auto with = preference_loss(in, rpo);
    const std::vector<double> nll = {4.0 / 2, 9.0 / 3, 2.5 / 5};
    for (int64_t i = 0; i < 3; ++i) {
      EXPECT_NEAR(with.per_example_loss[i].item<double>(),
                  without.per_example_loss[i].item<double>() + 0.5 * nll[static_cast<size_t>(i)],
                  1e-12);
    }
    auto grad_without =
        torch::autograd::grad({without.loss}, {in.policy_chosen_logps}, {}, true)[0];
    auto grad_with = torch::autograd::grad({with.loss}, {in.policy_chosen_logps}, {}, true)[0];
    // d/dπ_c of α·(-π_c/len_c)/B = -α / (len_c · B)
    const auto extra = -0.5 / (in.chosen_lengths * 3);
    EXPECT_TRUE(torch::allclose(grad_with, grad_without + extra, 1e-12, 1e-12));
  }
}

TEST(Options, PreferenceRejectsOutOfRangeValues) {
  const auto message = [](const std::function<void(PreferenceOptions&)>& edit) {
    PreferenceOptions options;
    edit(options);
    return user_error([&] { options.validate(); });
  };
  EXPECT_EQ(message([](auto&) {}), "");
  EXPECT_NE(message([](auto& o) { o.beta = 0; }).find("beta"), std::string::npos);
  EXPECT_NE(
      message([](auto& o) { o.beta = std::numeric_limits<double>::quiet_NaN(); }).find("beta"),
      std::string::npos);
  EXPECT_NE(message([](auto& o) { o.label_smoothing = 0.5; }).find("label_smoothing"),
            std::string::npos);
  EXPECT_NE(message([](auto& o) { o.label_smoothing = -0.1; }).find("label_smoothing"),
            std::string::npos);
  EXPECT_NE(message([](auto& o) {
              o.type = PreferenceLossType::kIpo;
              o.label_smoothing = 0.1;
            }).find("label_smoothing"),
            std::string::npos);
  EXPECT_NE(message([](auto& o) { o.gamma_beta_ratio = -1; }).find("gamma_beta_ratio"),
            std::string::npos);
  EXPECT_NE(message([](auto& o) { o.rpo_alpha = -1; }).find("rpo_alpha"), std::string::npos);
  EXPECT_EQ(user_error([] { parse_preference_loss_type("orpo"); }),
            "unknown preference loss type 'orpo' (expected one of dpo, dpo_norm, ipo, simpo)");
  for (const char* name : {"dpo", "dpo_norm", "ipo", "simpo"}) {
    EXPECT_EQ(preference_loss_type_name(parse_preference_loss_type(name)), name);
  }
}

TEST(Options, PreferenceNeedsReferenceExceptForSimpo) {
  PreferenceInputs inputs;
  inputs.policy_chosen_logps = torch::tensor({-1.0});
  inputs.policy_rejected_logps = torch::tensor({-2.0});
  inputs.chosen_lengths = torch::tensor({1.0});
  inputs.rejected_lengths = torch::tensor({1.0});
  EXPECT_THROW(preference_loss(inputs, {}), c10::Error);
  PreferenceOptions simpo;
  simpo.type = PreferenceLossType::kSimpo;
  EXPECT_NO_THROW(preference_loss(inputs, simpo));
  inputs.chosen_lengths = torch::Tensor();
  EXPECT_THROW(preference_loss(inputs, simpo), c10::Error);
}

TEST(Options, OtherLossesRejectOutOfRangeValues) {
  const auto names = [](const std::string& message, const std::string& key) {
    return message.find(key) != std::string::npos;
  };
  EXPECT_TRUE(names(user_error([] { GrpoOptions{1}.validate(); }), "group_size"));
  EXPECT_TRUE(names(user_error([] {
                      GrpoOptions o;
                      o.clip = 0;
                      o.validate();
                    }),
                    "clip"));
  EXPECT_TRUE(names(user_error([] {
                      GrpoOptions o;
                      o.beta = -0.1;
                      o.validate();
                    }),
                    "beta"));
  EXPECT_TRUE(names(user_error([] {
                      PpoOptions o;
                      o.lam = 1.5;
                      o.validate();
                    }),
                    "lam"));
  EXPECT_TRUE(names(user_error([] {
                      PpoOptions o;
                      o.cliprange_value = 0;
                      o.validate();
                    }),
                    "cliprange_value"));
  EXPECT_TRUE(names(user_error([] { BradleyTerryOptions{-1}.validate(); }), "center_coefficient"));
  EXPECT_TRUE(names(user_error([] { parse_sft_reduction("mean"); }), "token_mean"));
  EXPECT_TRUE(names(user_error([] { parse_grpo_advantage("z"); }), "centered"));
  EXPECT_TRUE(names(user_error([] { parse_loss_aggregation("sum"); }), "sequence_mean"));
  // GRPO's rewards must fill whole groups.
  EXPECT_THROW(grpo_advantages(torch::zeros({7}), GrpoOptions{4}), c10::Error);
}

// ---- data-parallel invariance ----
// A token mean computed on two shards and combined by token counts must equal the token mean
// of the whole batch, so the loss does not depend on how the batch was split across ranks.

TEST(DataParallel, SftTokenMeanIsShardInvariant) {
  torch::manual_seed(3);
  const auto logits = torch::randn({4, 7, 9}, torch::kDouble);
  auto labels = torch::randint(0, 9, {4, 7});
  labels.slice(1, 0, 5)[0] = kIgnoreIndex;  // uneven token counts: 2, 6, 4, 1 trained
  labels.slice(1, 0, 3)[2] = kIgnoreIndex;
  labels.slice(1, 0, 6)[3] = kIgnoreIndex;
  const auto whole = sft_loss(logits, labels);
  const auto a = sft_loss(logits.slice(0, 0, 2), labels.slice(0, 0, 2));
  const auto b = sft_loss(logits.slice(0, 2, 4), labels.slice(0, 2, 4));
  EXPECT_EQ(whole.token_count.item<int64_t>(), 13);
  const auto combined = (a.loss * a.token_count + b.loss * b.token_count) /
                        (a.token_count + b.token_count).to(torch::kDouble);
  expect_close(combined, whole.loss, 1e-12, 0, "sft token mean, 2 shards");
  // The sum reduction is what the shards add up.
  const auto sum_a = sft_loss(logits.slice(0, 0, 2), labels.slice(0, 0, 2), SftReduction::kSum);
  const auto sum_b = sft_loss(logits.slice(0, 2, 4), labels.slice(0, 2, 4), SftReduction::kSum);
  expect_close((sum_a.loss + sum_b.loss) / 13, whole.loss, 1e-12, 0, "sft sums, 2 shards");
}

// RLOO's leave-one-out baseline, by hand: each reward minus the mean of its group's others.
TEST(Rloo, LeaveOneOutBaseline) {
  GrpoOptions options;
  options.group_size = 4;
  options.advantage = parse_grpo_advantage("rloo");
  const auto rewards = torch::tensor({1.0, 0.0, 0.0, 3.0, 2.0, 2.0, 2.0, 2.0}, torch::kDouble);
  const auto a = grpo_advantages(rewards, options);
  const double want[] = {1.0 - 1.0, 0.0 - 4.0 / 3, 0.0 - 4.0 / 3, 3.0 - 1.0 / 3, 0, 0, 0, 0};
  for (int64_t i = 0; i < 8; ++i)
    EXPECT_NEAR(a[i].item<double>(), want[i], 1e-12) << i;
}

TEST(DataParallel, GrpoTokenMeanIsShardInvariant) {
  torch::manual_seed(4);
  const auto logps = -torch::rand({8, 6}, torch::kDouble) * 3;
  const auto old = logps + 0.3 * torch::randn({8, 6}, torch::kDouble);
  const auto ref = logps + 0.3 * torch::randn({8, 6}, torch::kDouble);
  const auto mask = (torch::rand({8, 6}) < 0.7).to(torch::kDouble);
  mask.select(1, 0).fill_(1);  // every response has a token
  GrpoOptions options;
  options.group_size = 4;
  const auto advantages = grpo_advantages(torch::randn({8}, torch::kDouble), options);
  const auto shard = [&](int64_t from, int64_t to) {
    return grpo_loss(logps.slice(0, from, to), old.slice(0, from, to), ref.slice(0, from, to),
                     advantages.slice(0, from, to), mask.slice(0, from, to), options);
  };
  const auto whole = shard(0, 8);
  const auto a = shard(0, 3);  // shards need not follow group boundaries
  const auto b = shard(3, 8);
  const auto combined = (a.loss * a.token_count + b.loss * b.token_count) /
                        (a.token_count + b.token_count).to(torch::kDouble);
  expect_close(combined, whole.loss, 1e-12, 0, "grpo token mean, 2 shards");
}

// beta = 0 needs no reference model and adds no KL.
TEST(Grpo, ZeroBetaNeedsNoReference) {
  const auto logps = torch::tensor({{-1.0, -2.0}, {-0.5, -0.1}}, torch::kDouble);
  GrpoOptions options;
  options.group_size = 2;
  options.beta = 0;
  const auto out = grpo_loss(logps, logps, {}, torch::tensor({1.0, -1.0}, torch::kDouble),
                             torch::ones_like(logps), options);
  // ratio = 1 everywhere, so each token's loss is -A: (-1 - 1 + 1 + 1) / 4 = 0.
  EXPECT_DOUBLE_EQ(out.loss.item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(out.kl.item<double>(), 0.0);
  EXPECT_EQ(out.token_count.item<int64_t>(), 4);
}

}  // namespace
}  // namespace flywheel::losses
