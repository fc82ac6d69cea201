// The fused float32 CPU training kernels (trainer/model/fused_cpu_autograd.h,
// causal_attention_cpu.h) against the composed LibTorch formulas in float64: values and
// gradients of RMSNorm, the rotary embedding, SwiGLU and causal attention, then every
// parameter's gradient of a whole model; and the kernels' exponentials against libm's.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <limits>

#include "tests/fixtures.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/simd.h"
#include "trainer/model/causal_attention_cpu.h"
#include "trainer/model/fused_cpu_autograd.h"
#include "trainer/model/rotary.h"
#include "trainer/tensor/matmul.h"

namespace flywheel {
namespace {

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kDouble) - want).norm().item<double>() / want.norm().item<double>();
}

// f applied to float32 copies of `inputs` (the fused kernels) and to float64 copies (composed,
// as a float64 tensor never takes the fused path): the outputs, and the gradients of a random
// weighting of the output, agree to float32 rounding.
template <typename Fused, typename Composed>
void expect_same(const std::vector<torch::Tensor>& inputs, Fused fused, Composed composed) {
  ASSERT_TRUE(fused_cpu_autograd_applies(inputs[0].to(torch::kFloat32)) || !simd::available());
  std::vector<torch::Tensor> f, d;
  for (const auto& x : inputs) {
    f.push_back(x.to(torch::kFloat32).clone().requires_grad_(true));
    d.push_back(x.to(torch::kDouble).clone().requires_grad_(true));
  }
  const auto yf = fused(f), yd = composed(d);
  const auto weights = torch::randn(yd.sizes(), torch::kDouble);
  (yf * weights.to(torch::kFloat32)).sum().backward();
  (yd * weights).sum().backward();
  EXPECT_LE(relative_error(yf, yd), 1e-6);
  for (size_t i = 0; i < inputs.size(); ++i)
    EXPECT_LE(relative_error(f[i].grad(), d[i].grad()), 1e-5) << "input " << i;
}

// The largest relative errors of the kernels' exponentials against libm's in double, over
// every multiple of 2^-12 across their range and past it, and how they take NaN and -inf.
struct ExponentialErrors {
  double exp2 = 0, exp = 0;
  bool inf_past_128 = true, nan_stays = false, minus_inf_is_normal = false;
};

FLYWHEEL_SIMD_BEGIN

ExponentialErrors exponential_errors() {
  using simd::v16;
  ExponentialErrors r;
  for (float x0 = -130.0f; x0 < 130.0f; x0 += 16.0f / 4096.0f) {
    const v16 x = x0 + simd::lane_numbers() / 4096.0f;
    const v16 two = simd::exp2_16(x), e = simd::exp16(x);
    for (int i = 0; i < simd::kLanes; ++i) {
      const double want2 = std::exp2(std::max<double>(x[i], -125.0));  // clamped below
      if (want2 < 1e38) r.exp2 = std::max(r.exp2, std::abs(two[i] - want2) / want2);
      if (x[i] >= 128) r.inf_past_128 = r.inf_past_128 && std::isinf(two[i]);
      if (x[i] >= -87.3f && x[i] <= 88.0f) {
        const double want = std::exp(static_cast<double>(x[i]));
        r.exp = std::max(r.exp, std::abs(e[i] - want) / want);
      }
    }
  }
  r.nan_stays = std::isnan(simd::exp2_16(simd::splat(std::numeric_limits<float>::quiet_NaN()))[0]);
  const float low = simd::exp2_16(simd::splat(-std::numeric_limits<float>::infinity()))[0];
  r.minus_inf_is_normal = std::isnormal(low) && low > 0;
  return r;
}

FLYWHEEL_SIMD_END

// exp2_16 (the decode attention's softmax) and exp16 within a float32 ulp (2^-23 relative) of the
// exact values; NaN stays NaN and -inf (a masked score) gives a tiny normal weight.
TEST(SimdMath, ExponentialsWithinAnUlp) {
  if (!simd::available()) GTEST_SKIP() << "this CPU has no AVX-512";
  const auto r = exponential_errors();
  std::printf("exp2_16: max relative error %.3g; exp16 %.3g (float32 ulp 1.19e-07)\n", r.exp2,
              r.exp);
  EXPECT_LT(r.exp2, 0x1p-23);
  EXPECT_LT(r.exp, 0x1p-23);
  EXPECT_TRUE(r.inf_past_128);
  EXPECT_TRUE(r.nan_stays);
  EXPECT_TRUE(r.minus_inf_is_normal);
}

// C = 40: two whole vectors and a tail.
TEST(FusedCpuAutograd, RmsNormMatchesTheComposedFormula) {
  torch::manual_seed(0);
  const double eps = 1e-5;
  expect_same(
      {torch::randn({3, 7, 40}) * 3, torch::randn({40})},
      [&](const auto& t) { return rms_norm_autograd_cpu(t[0], t[1], eps); },
      [&](const auto& t) {
        return t[1] * (t[0] * torch::rsqrt(t[0].pow(2).mean(-1, true) + eps));
      });
}

TEST(FusedCpuAutograd, RotaryEmbeddingMatchesTheComposedFormula) {
  torch::manual_seed(0);
  ModelConfig config;
  config.head_dim = 12;
  const auto positions = torch::randint(0, 200, {2, 5}, torch::kInt64);
  const auto [cos, sin] = rope_cos_sin(rope_inv_freq(config), positions);  // [2, 5, 12]
  expect_same(
      {torch::randn({2, 5, 3, 12})},
      [&](const auto& t) { return rope_autograd_cpu(t[0], cos, sin); },
      [&](const auto& t) {
        return apply_rope(t[0].transpose(1, 2), cos.to(torch::kDouble), sin.to(torch::kDouble))
            .transpose(1, 2);
      });
}

// Gates far out on both sides too, where the sigmoid saturates.
TEST(FusedCpuAutograd, SiluMulMatchesTheComposedFormula) {
  torch::manual_seed(0);
  auto gate = torch::randn({1013}) * 4;
  gate.narrow(0, 0, 4).copy_(torch::tensor({-120.0, -30.0, 30.0, 120.0}));
  expect_same(
      {gate, torch::randn({1013})}, [](const auto& t) { return silu_mul_autograd_cpu(t[0], t[1]); },
      [](const auto& t) { return torch::silu(t[0]) * t[1]; });
}

// Three rows of 37 positions (two whole vectors of keys and a tail), 6 query heads on 2 KV
// heads, head_dim 8 (one 8-float vector) and 24 (three).
TEST(FusedCpuAutograd, CausalAttentionMatchesTheComposedFormula) {
  torch::manual_seed(0);
  for (int64_t D : {8, 24}) {
    const int64_t R = 3, H = 6, K = 2, T = 37;
    expect_same(
        {torch::randn({R, H, T, D}), torch::randn({R, K, T, D}), torch::randn({R, K, T, D})},
        [](const auto& t) { return causal_attention_cpu(t[0], t[1], t[2]); },
        [&](const auto& t) {
          const auto k = t[1].repeat_interleave(H / K, 1), v = t[2].repeat_interleave(H / K, 1);
          const auto causal = torch::ones({T, T}, torch::kBool).tril();
          const auto s = torch::matmul(t[0], k.transpose(-1, -2)) / std::sqrt(double(D));
          return torch::matmul(s.masked_fill(causal.logical_not(), -INFINITY).softmax(-1), v);
        });
  }
  // Strided inputs (a transposed view, as the decoder passes) give the same result.
  const auto q = torch::randn({2, 5, 4, 16}), k = torch::randn({2, 5, 2, 16});
  const auto v = torch::randn({2, 5, 2, 16});
  EXPECT_TRUE(causal_attention_cpu(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
                  .equal(causal_attention_cpu(q.transpose(1, 2).contiguous(),
                                              k.transpose(1, 2).contiguous(),
                                              v.transpose(1, 2).contiguous())));
}

// Widths of 128 and more go through oneDNN where LibTorch exports it, narrower ones through
// ATen; a 3-d input, a bias, and a transposed operand for matmul_cpu.
TEST(FusedCpuAutograd, LinearMatchesTheComposedFormula) {
  torch::manual_seed(0);
  std::printf("oneDNN matmul: %s\n", onednn_matmul_available() ? "available" : "not available");
  for (const auto& [in, out] : std::vector<std::pair<int64_t, int64_t>>{{160, 200}, {64, 40}}) {
    expect_same(
        {torch::randn({3, 70, in}), torch::randn({out, in}) * 0.1, torch::randn({out})},
        [](const auto& t) { return linear_cpu(t[0], t[1], t[2]); },
        [](const auto& t) { return torch::linear(t[0], t[1], t[2]); });
  }
  const auto a = torch::randn({300, 130}), b = torch::randn({140, 300});
  EXPECT_LE(relative_error(matmul_cpu(a.t(), b.t()), torch::mm(a.t(), b.t()).to(torch::kDouble)),
            1e-6);
}

// llama-tiny, a padded batch (masked attention) and an unpadded one (causal attention): every
// parameter's gradient in float32 (fused kernels) equals the float64 model's (composed path).
TEST(FusedCpuAutograd, ModelGradientsMatchTheComposedPathInFloat64) {
  const auto dir = testing::fixtures_dir() + "/llama-tiny";
  FLYWHEEL_REQUIRE_PATH(dir);
  const auto padded = torch::tensor({{1, 5, 9, 200, 33, 7}, {1, 40, 41, 0, 0, 0}}, torch::kInt64);
  const auto mask = torch::tensor({{1, 1, 1, 1, 1, 1}, {1, 1, 1, 0, 0, 0}}, torch::kInt64);
  const auto whole = torch::tensor({{1, 5, 9, 200, 33, 7}, {1, 40, 41, 8, 2, 90}}, torch::kInt64);
  for (const bool masked : {true, false}) {
    const auto grads = [&](torch::Dtype dtype) {
      auto model = load_causal_lm(dir);
      model->to(dtype);
      const auto logits = masked ? model->forward({padded, {}, mask}) : model->forward({whole});
      logits.log_softmax(-1).select(-1, 3).sum().backward();
      std::vector<std::pair<std::string, torch::Tensor>> out;
      for (const auto& [name, p] : named_parameters(*model))
        out.emplace_back(name, p.grad());
      return out;
    };
    const auto fused = grads(torch::kFloat32), composed = grads(torch::kDouble);
    ASSERT_EQ(fused.size(), composed.size());
    for (size_t k = 0; k < fused.size(); ++k) {
      EXPECT_LE(relative_error(fused[k].second, composed[k].second), 1e-5)
          << fused[k].first << (masked ? " (masked)" : " (causal)");
    }
  }
}

}  // namespace
}  // namespace flywheel
