#include "trainer/rl/ppo_targets.h"

#include <algorithm>
#include <cmath>

#include "losses/kl.h"

namespace flywheel {

std::vector<double> ppo_targets(std::vector<RlSample>& samples,
                                const std::vector<torch::Tensor>& reference,
                                const PpoTargetOptions& options) {
  std::vector<double> kl_sums(samples.size(), 0.0);
  if (samples.empty()) return kl_sums;
  const auto N = static_cast<int64_t>(samples.size());
  int64_t T = 0;
  for (const auto& s : samples)
    T = std::max(T, s.response_length());
  // [N, T] in float64, each response left-aligned.
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto logps = torch::zeros({N, T}, f64);
  auto ref = torch::zeros({N, T}, f64);
  auto values = torch::zeros({N, T}, f64);
  auto mask = torch::zeros({N, T}, torch::kBool);
  auto score = torch::zeros({N, T}, f64);  // the response's reward at its last token
  const bool with_kl = options.kl_coef > 0;
  for (int64_t i = 0; i < N; ++i) {
    const RlSample& s = samples[static_cast<size_t>(i)];
    const int64_t L = s.response_length();
    TORCH_CHECK(static_cast<int64_t>(s.values.size()) == L, "ppo_targets: one value per token");
    logps[i].narrow(0, 0, L).copy_(torch::tensor(s.old_logps, f64));
    values[i].narrow(0, 0, L).copy_(torch::tensor(s.values, f64));
    mask[i].narrow(0, 0, L).fill_(true);
    score[i][L - 1] = s.reward;
    if (with_kl) {
      const auto& r = reference[static_cast<size_t>(i)];
      TORCH_CHECK(r.dim() == 1 && r.size(0) == L, "ppo_targets: reference log-probs of sample ", i,
                  " must be [", L, "], got ", r.sizes());
      ref[i].narrow(0, 0, L).copy_(r);
    }
  }
  torch::Tensor rewards = score;
  if (with_kl) {
    const auto kl = (options.k3 ? losses::kl_k3(logps, ref) : losses::kl_k1(logps, ref))
                        .masked_fill(mask.logical_not(), 0);
    rewards = score - options.kl_coef * kl;
    const auto sums = kl.sum(1);
    for (int64_t i = 0; i < N; ++i)
      kl_sums[static_cast<size_t>(i)] = sums[i].item<double>();
  }
  const auto g = losses::gae(rewards, values, mask, options.gae);
  for (int64_t i = 0; i < N; ++i) {
    RlSample& s = samples[static_cast<size_t>(i)];
    const auto L = s.response_length();
    const auto a = g.advantages[i].narrow(0, 0, L).contiguous();
    const auto r = g.returns[i].narrow(0, 0, L).contiguous();
    s.token_advantages.assign(a.data_ptr<double>(), a.data_ptr<double>() + L);
    s.returns.assign(r.data_ptr<double>(), r.data_ptr<double>() + L);
  }
  return kl_sums;
}

void whiten_advantages(std::vector<RlSample>& samples, Communicator& comm) {
  // Two passes over all ranks' tokens: the mean, then the squared deviations from it.
  double sum = 0, count = 0;
  for (const auto& s : samples) {
    for (const double a : s.token_advantages)
      sum += a;
    count += static_cast<double>(s.token_advantages.size());
  }
  const auto totals = comm.all_reduce_sum(std::vector<double>{sum, count});
  if (totals[1] < 2) return;
  const double mean = totals[0] / totals[1];
  double squares = 0;
  for (const auto& s : samples)
    for (const double a : s.token_advantages)
      squares += (a - mean) * (a - mean);
  const double var = comm.all_reduce_sum(std::vector<double>{squares})[0] / (totals[1] - 1);
  const double scale = 1.0 / std::sqrt(var + 1e-8);
  for (auto& s : samples)
    for (double& a : s.token_advantages)
      a = (a - mean) * scale;
}

}  // namespace flywheel
