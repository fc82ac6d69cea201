#include "trainer/model/rotary.h"

#include <cmath>

namespace flywheel {

torch::Tensor rope_inv_freq(const ModelConfig& config) {
  const auto D = config.head_dim;
  auto exponent = torch::arange(0, D, 2, torch::kInt64).to(torch::kFloat32) / static_cast<float>(D);
  auto inv_freq = 1.0 / torch::pow(static_cast<float>(config.rope_theta), exponent);  // [D/2]
  const auto& s = config.rope_scaling;
  if (s.type == "linear") return inv_freq / s.factor;
  if (s.type != "llama3") return inv_freq;

  // Llama 3.1: wavelengths longer than the original context / low_freq_factor are stretched by
  // `factor`; shorter than original / high_freq_factor kept; the band between is interpolated.
  const double old_len = static_cast<double>(s.original_max_position_embeddings);
  const double low_freq_wavelen = old_len / s.low_freq_factor;
  const double high_freq_wavelen = old_len / s.high_freq_factor;
  auto wavelen = 2.0 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
  auto smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  auto smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  auto medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
  return torch::where(medium, smoothed, scaled);
}

std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq,
                                                     const torch::Tensor& position_ids) {
  auto freqs = position_ids.to(torch::kFloat32).unsqueeze(-1) *
               inv_freq.to(position_ids.device()).view({1, 1, -1});  // [B, T, D/2]
  auto emb = torch::cat({freqs, freqs}, -1);                         // [B, T, D]
  return {emb.cos(), emb.sin()};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin) {
  const auto half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  auto c = cos.unsqueeze(1).to(x.scalar_type());  // [B, 1, T, D]
  auto s = sin.unsqueeze(1).to(x.scalar_type());
  return x * c + rotated * s;
}

}  // namespace flywheel
