#include "trainer/rl/rl_batch.h"

#include "trainer/model/device.h"

namespace flywheel {

RlMicroBatch make_rl_micro_batch(const std::vector<const RlSample*>& samples, int64_t pad_id,
                                 const torch::Device& device) {
  TORCH_CHECK(!samples.empty(), "make_rl_micro_batch: no samples");
  std::vector<std::vector<int32_t>> ids;
  std::vector<std::vector<uint8_t>> masks;
  int64_t T = 0;
  for (const RlSample* s : samples) {
    TORCH_CHECK(s->response_length() >= 1 &&
                    static_cast<int64_t>(s->old_logps.size()) == s->response_length(),
                "make_rl_micro_batch: a sample needs one log-prob per response token");
    ids.emplace_back(s->ids.begin(), s->ids.end());
    std::vector<uint8_t> mask(s->ids.size(), 0);
    std::fill(mask.begin() + s->prompt_length, mask.end(), 1);
    masks.push_back(std::move(mask));
    T = std::max<int64_t>(T, static_cast<int64_t>(s->ids.size()));
  }
  std::vector<TokenView> views;
  for (size_t i = 0; i < ids.size(); ++i)
    views.push_back({ids[i], masks[i]});
  const auto B = static_cast<int64_t>(samples.size());
  RlMicroBatch out;
  out.batch = collate(views, pad_id);
  auto mask = torch::zeros({B, T - 1}, torch::kFloat32);
  auto old = torch::zeros({B, T - 1}, torch::kFloat32);
  auto advantages = torch::empty({B}, torch::kFloat32);
  auto m = mask.accessor<float, 2>();
  auto o = old.accessor<float, 2>();
  auto a = advantages.accessor<float, 1>();
  const bool per_token = !samples.front()->token_advantages.empty();
  if (per_token) {
    out.old_values = torch::zeros({B, T - 1}, torch::kFloat32);
    out.token_advantages = torch::zeros({B, T - 1}, torch::kFloat32);
    out.returns = torch::zeros({B, T - 1}, torch::kFloat32);
  }
  for (int64_t b = 0; b < B; ++b) {
    const RlSample& s = *samples[static_cast<size_t>(b)];
    // Response token j sits at position prompt_length + j, scored from position - 1.
    const auto at = [&](const std::vector<double>& v, int64_t j) {
      return static_cast<float>(v[static_cast<size_t>(j)]);
    };
    for (int64_t j = 0; j < s.response_length(); ++j) {
      m[b][s.prompt_length - 1 + j] = 1;
      o[b][s.prompt_length - 1 + j] = at(s.old_logps, j);
    }
    if (per_token) {
      const auto L = s.response_length();
      TORCH_CHECK(static_cast<int64_t>(s.values.size()) == L &&
                      static_cast<int64_t>(s.token_advantages.size()) == L &&
                      static_cast<int64_t>(s.returns.size()) == L,
                  "make_rl_micro_batch: a ppo sample needs a value, advantage and return per "
                  "response token");
      auto v = out.old_values.accessor<float, 2>();
      auto adv = out.token_advantages.accessor<float, 2>();
      auto ret = out.returns.accessor<float, 2>();
      for (int64_t j = 0; j < L; ++j) {
        v[b][s.prompt_length - 1 + j] = at(s.values, j);
        adv[b][s.prompt_length - 1 + j] = at(s.token_advantages, j);
        ret[b][s.prompt_length - 1 + j] = at(s.returns, j);
      }
    }
    a[b] = static_cast<float>(s.advantage);
    out.response_tokens += s.response_length();
  }
  out.batch.input_ids = to_device(out.batch.input_ids, device);
  out.batch.labels = to_device(out.batch.labels, device);
  out.batch.attention_mask = to_device(out.batch.attention_mask, device);
  out.batch.position_ids = to_device(out.batch.position_ids, device);
  out.mask = to_device(mask, device);
  out.old_logps = to_device(old, device);
  out.advantages = to_device(advantages, device);
  if (per_token) {
    out.old_values = to_device(out.old_values, device);
    out.token_advantages = to_device(out.token_advantages, device);
    out.returns = to_device(out.returns, device);
  }
  return out;
}

}  // namespace flywheel
