#include "trainer/model/device.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#if FLYWHEEL_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>
#endif

#include "trainer/core/error.h"

namespace flywheel {

torch::Device parse_device(const std::string& name, const std::string& where) {
  if (name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) != 0) {
    throw UserError(where + ": device must be cpu or cuda[:N], got '" + name + "'");
  }
  std::optional<torch::Device> device;
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw UserError(where + ": invalid device '" + name + "' (expected cuda or cuda:N)");
  }
  if (!FLYWHEEL_WITH_CUDA) {
    throw UserError(where + ": device '" + name + "' but this build of Flywheel has no CUDA");
  }
  if (!torch::cuda::is_available()) {
    throw UserError(where + ": device '" + name + "' but CUDA is not available (no GPU visible)");
  }
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  if (device->has_index() && device->index() >= count) {
    throw UserError(where + ": device '" + name + "' but only " + std::to_string(count) +
                    " GPU(s) are visible");
  }
  return *device;
}

void bind_device(const torch::Device& device) {
#if FLYWHEEL_WITH_CUDA
  if (device.is_cuda()) c10::cuda::set_device(device.has_index() ? device.index() : 0);
#endif
}

torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device) {
  if (!t.defined() || t.device() == device) return t;
  if (device.is_cuda() && t.device().is_cpu()) {
    return t.pin_memory().to(device, /*non_blocking=*/true);
  }
  return t.to(device);
}

torch::Generator make_generator(const torch::Device& device, uint64_t seed) {
#if FLYWHEEL_WITH_CUDA
  if (device.is_cuda()) {
    auto generator = at::cuda::detail::createCUDAGenerator(device.has_index() ? device.index() : 0);
    generator.set_current_seed(seed);
    return generator;
  }
#endif
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

std::string describe_build() {
  std::string out = std::string("LibTorch ") + TORCH_VERSION;
#if FLYWHEEL_WITH_CUDA
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  out += ", CUDA " + std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10) +
         " (compiled), " + std::to_string(torch::cuda::device_count()) + " GPU(s) visible";
#else
  out += ", no CUDA";
#endif
  return out;
}

}  // namespace flywheel
