#include "trainer/model/init.h"

#include <ATen/CPUGeneratorImpl.h>

namespace flywheel {

void init_weights(torch::nn::Module& module, double std, uint64_t seed) {
  torch::NoGradGuard no_grad;
  // A private generator, so initialisation does not depend on (or disturb) global RNG use.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& item : module.named_parameters()) {
    auto& p = item.value();
    const auto& name = item.key();
    const bool is_norm = name.find("norm") != std::string::npos;
    const bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
    if (is_norm) {
      p.fill_(1.0);
    } else if (is_bias) {
      p.zero_();
    } else {
      auto w = at::normal(0.0, std, p.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
      p.copy_(w);
    }
  }
}

}  // namespace flywheel
