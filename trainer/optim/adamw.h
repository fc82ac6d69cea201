// AdamW with decoupled weight decay, PyTorch's torch.optim.AdamW arithmetic:
//   p <- p * (1 - lr * wd)
//   m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
//   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Moments are float32. Parameters of a lower precision (bfloat16, float16) get a float32 master
// copy that the update applies to, and are then set to the master rounded: an update far below
// half a bfloat16 ulp (lr 5e-7 on a weight of 0.02) still accumulates in the master instead of
// rounding away every step. State is kept per parameter name so it can be saved as
// safetensors and resharded. One-dimensional parameters (norm weights, biases) get no weight
// decay, the usual LLM convention.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace flywheel {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

// One AdamW update of the float32 `param` (a view is fine) with float32 moments, at 1-based
// step `step`. Shared by AdamW and the sharded optimizer (trainer/optim/zero.h) so both do
// exactly the same arithmetic.
void adamw_update(torch::Tensor param, const torch::Tensor& grad, torch::Tensor exp_avg,
                  torch::Tensor exp_avg_sq, double lr, bool decay, int64_t step,
                  const AdamWOptions& options);

// Whether parameters of this dtype are trained through a float32 master copy.
inline bool needs_master(torch::ScalarType dtype) {
  return dtype == torch::kBFloat16 || dtype == torch::kHalf;
}

class AdamW {
 public:
  AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions options);

  // One update at learning rate `lr`, grads[k] (any float dtype, shaped like parameter k) for
  // the k-th parameter; an undefined gradient leaves that parameter as it is.
  void step(double lr, const std::vector<torch::Tensor>& grads);
  int64_t steps() const { return steps_; }
  // The masters again from the parameters (after they were broadcast).
  void reset_masters();

  // {name.exp_avg, name.exp_avg_sq} for every parameter, name.master for those trained
  // through one, plus "step" (a 0-d int64 tensor).
  std::vector<std::pair<std::string, torch::Tensor>> state() const;
  // Restores state() output; UserError naming the tensor on a missing or mis-shaped entry.
  // Masters come from the state, or from the (loaded) parameters when it has none.
  void load_state(const std::map<std::string, torch::Tensor>& state, const std::string& where);

 private:
  struct Slot {
    std::string name;
    torch::Tensor param;
    torch::Tensor master;      // float32 copy of a low-precision param; undefined otherwise
    torch::Tensor exp_avg;     // same shape as param, float32
    torch::Tensor exp_avg_sq;  // same shape as param, float32
    bool decay;
    torch::Tensor& weights() { return master.defined() ? master : param; }
  };
  std::vector<Slot> slots_;
  AdamWOptions options_;
  int64_t steps_ = 0;
};

// Global L2 norm of `grads` (undefined ones skipped), scaled down in place to max_norm when
// above it (max_norm <= 0: measure only). Returns the norm before clipping.
double clip_grad_norm(const std::vector<torch::Tensor>& grads, double max_norm);

}  // namespace flywheel
