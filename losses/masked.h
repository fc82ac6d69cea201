// Reductions over the entries a mask selects. Every loss in losses/ reduces through these, so
// padding and prompt tokens never leak into a loss or a metric.
//
// Shapes: any; `mask` has the shape of `x` and is bool or 0/1 of any dtype. Entries outside
// the mask may hold anything (even inf or NaN): they are selected away, never multiplied by 0.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace flywheel::losses {

// Σ x over the mask: a scalar, or along `dim` (which is removed).
torch::Tensor masked_sum(const torch::Tensor& x, const torch::Tensor& mask);
torch::Tensor masked_sum(const torch::Tensor& x, const torch::Tensor& mask, int64_t dim);

// Σ x / max(count, 1) over the mask, so an empty selection gives 0 rather than NaN.
torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask);
torch::Tensor masked_mean(const torch::Tensor& x, const torch::Tensor& mask, int64_t dim);

// (x - mean) · rsqrt(var + 1e-8) with the mean and the unbiased variance taken over the mask
// (TRL's masked_whiten); with shift_mean = false the mean is added back, rescaling only.
// Entries outside the mask are 0. Needs at least two selected entries.
torch::Tensor masked_whiten(const torch::Tensor& x, const torch::Tensor& mask,
                            bool shift_mean = true);

}  // namespace flywheel::losses
