#include "trainer/optim/adamw.h"

#include <cmath>

#include "trainer/core/error.h"

namespace flywheel {

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions options)
    : options_(options) {
  for (auto& [name, p] : params) {
    auto zeros = torch::zeros_like(p, p.options().dtype(torch::kFloat32));
    slots_.push_back({name, p, zeros, zeros.clone(), p.dim() > 1});
  }
}

void adamw_update(torch::Tensor param, const torch::Tensor& grad, torch::Tensor exp_avg,
                  torch::Tensor exp_avg_sq, double lr, bool decay, int64_t step,
                  const AdamWOptions& options) {
  torch::NoGradGuard no_grad;
  const double bias1 = 1.0 - std::pow(options.beta1, static_cast<double>(step));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(options.beta2, static_cast<double>(step)));
  auto g = grad.to(torch::kFloat32);
  if (decay && options.weight_decay != 0.0) param.mul_(1.0 - lr * options.weight_decay);
  exp_avg.mul_(options.beta1).add_(g, 1.0 - options.beta1);
  exp_avg_sq.mul_(options.beta2).addcmul_(g, g, 1.0 - options.beta2);
  // In place after the one allocation, and the same arithmetic as torch.optim.AdamW:
  // param += (-lr / bias1) * exp_avg / (sqrt(exp_avg_sq) / bias2_sqrt + eps).
  auto denom = exp_avg_sq.sqrt().div_(bias2_sqrt).add_(options.eps);
  if (param.scalar_type() == torch::kFloat32) {
    param.addcdiv_(exp_avg, denom, -lr / bias1);
  } else {
    // Low-precision weights: form the update in float32, round once when adding it.
    param.add_(exp_avg.div(denom).mul_(-lr / bias1).to(param.scalar_type()));
  }
}

void AdamW::step(double lr) {
  ++steps_;
  for (auto& s : slots_) {
    const auto& grad = s.param.grad();
    if (!grad.defined()) continue;
    adamw_update(s.param, grad, s.exp_avg, s.exp_avg_sq, lr, s.decay, steps_, options_);
  }
}

void AdamW::zero_grad() {
  for (auto& s : slots_) {
    if (s.param.grad().defined()) s.param.mutable_grad() = torch::Tensor();
  }
}

std::vector<std::pair<std::string, torch::Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  out.emplace_back("step", torch::tensor(steps_, torch::kInt64));
  for (const auto& s : slots_) {
    out.emplace_back(s.name + ".exp_avg", s.exp_avg);
    out.emplace_back(s.name + ".exp_avg_sq", s.exp_avg_sq);
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& state,
                       const std::string& where) {
  torch::NoGradGuard no_grad;
  auto find = [&](const std::string& key, c10::IntArrayRef shape) {
    auto it = state.find(key);
    if (it == state.end()) throw UserError(where + ": missing optimizer tensor '" + key + "'");
    if (it->second.sizes() != shape) {
      throw UserError(where + ": optimizer tensor '" + key + "' has the wrong shape");
    }
    return it->second;
  };
  steps_ = find("step", {}).item<int64_t>();
  for (auto& s : slots_) {
    s.exp_avg.copy_(find(s.name + ".exp_avg", s.param.sizes()));
    s.exp_avg_sq.copy_(find(s.name + ".exp_avg_sq", s.param.sizes()));
  }
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params) {
    if (p.grad().defined()) norms.push_back(p.grad().to(torch::kFloat32).norm());
  }
  if (norms.empty()) return 0.0;
  const double total = torch::stack(norms).norm().item<double>();
  if (max_norm > 0 && total > max_norm) {
    // Same coefficient as torch.nn.utils.clip_grad_norm_.
    const double scale = max_norm / (total + 1e-6);
    for (const auto& p : params) {
      if (p.grad().defined()) p.grad().mul_(scale);
    }
  }
  return total;
}

}  // namespace flywheel
