#include "trainer/optim/adamw.h"

#include <cmath>

#include "trainer/core/error.h"

namespace flywheel {

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions options)
    : options_(options) {
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : params) {
    auto zeros = torch::zeros_like(p, p.options().dtype(torch::kFloat32));
    const auto master =
        needs_master(p.scalar_type()) ? p.detach().to(torch::kFloat32) : torch::Tensor();
    slots_.push_back({name, p, master, zeros, zeros.clone(), p.dim() > 1});
  }
}

void adamw_update(torch::Tensor param, const torch::Tensor& grad, torch::Tensor exp_avg,
                  torch::Tensor exp_avg_sq, double lr, bool decay, int64_t step,
                  const AdamWOptions& options) {
  TORCH_CHECK(param.scalar_type() == torch::kFloat32, "adamw_update: float32 weights expected");
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
  param.addcdiv_(exp_avg, denom, -lr / bias1);
}

void AdamW::step(double lr, const std::vector<torch::Tensor>& grads) {
  TORCH_CHECK(grads.size() == slots_.size(), "AdamW::step: ", grads.size(), " gradients for ",
              slots_.size(), " parameters");
  ++steps_;
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < slots_.size(); ++k) {
    auto& s = slots_[k];
    if (!grads[k].defined()) continue;
    adamw_update(s.weights(), grads[k], s.exp_avg, s.exp_avg_sq, lr, s.decay, steps_, options_);
    if (s.master.defined()) s.param.copy_(s.master);
  }
}

void AdamW::reset_masters() {
  torch::NoGradGuard no_grad;
  for (auto& s : slots_) {
    if (s.master.defined()) s.master.copy_(s.param);
  }
}

std::vector<std::pair<std::string, torch::Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  out.emplace_back("step", torch::tensor(steps_, torch::kInt64));
  for (const auto& s : slots_) {
    out.emplace_back(s.name + ".exp_avg", s.exp_avg);
    out.emplace_back(s.name + ".exp_avg_sq", s.exp_avg_sq);
    if (s.master.defined()) out.emplace_back(s.name + ".master", s.master);
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
    if (!s.master.defined()) continue;
    // An fp32 run's state has no masters: its weights (already loaded) are the masters.
    if (state.count(s.name + ".master")) {
      s.master.copy_(find(s.name + ".master", s.param.sizes()));
    } else {
      s.master.copy_(s.param);
    }
  }
}

double clip_grad_norm(const std::vector<torch::Tensor>& grads, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& g : grads) {
    if (g.defined()) norms.push_back(g.to(torch::kFloat32).norm());
  }
  if (norms.empty()) return 0.0;
  const double total = torch::stack(norms).norm().item<double>();
  if (max_norm > 0 && total > max_norm) {
    // Same coefficient as torch.nn.utils.clip_grad_norm_.
    const double scale = max_norm / (total + 1e-6);
    for (const auto& g : grads) {
      if (g.defined()) g.mul_(scale);
    }
  }
  return total;
}

}  // namespace flywheel
