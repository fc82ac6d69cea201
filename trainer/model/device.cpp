#include "trainer/model/device.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/CPUAllocator.h>
#include <sys/resource.h>
#include <torch/version.h>

#if FLYWHEEL_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

#include <algorithm>
#include <fstream>
#include <limits>
#include <mutex>
#include <unordered_map>

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

namespace {

// Wraps the CPU allocator to keep the live and peak byte counts of CPU tensors. Blocks keep
// data pointer == context (as the default allocator's do), so raw_allocate and
// is_simple_data_ptr still work; a block's size is found again on free through a map.
class TrackingCPUAllocator final : public c10::Allocator {
 public:
  explicit TrackingCPUAllocator(c10::Allocator* base)
      : base_(base), base_free_(base->raw_deleter()) {}

  // Whether `base` hands out blocks this wrapper can take over.
  static bool can_wrap(c10::Allocator* base) {
    if (base->raw_deleter() == nullptr) return false;
    auto probe = base->allocate(64);
    return probe.get() == probe.get_context();
  }

  c10::DataPtr allocate(size_t n) override {
    auto inner = base_->allocate(n);
    void* data = inner.release_context();
    if (data != nullptr) {
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_[data] = n;
      live_ += static_cast<int64_t>(n);
      peak_ = std::max(peak_, live_);
    }
    return {data, data, &release, c10::Device(c10::kCPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  int64_t peak() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return peak_;
  }

  static TrackingCPUAllocator* instance;

 private:
  static void release(void* data) {
    if (data == nullptr) return;
    {
      std::lock_guard<std::mutex> lock(instance->mutex_);
      const auto it = instance->sizes_.find(data);
      instance->live_ -= static_cast<int64_t>(it->second);
      instance->sizes_.erase(it);
    }
    instance->base_free_(data);
  }

  c10::Allocator* base_;
  c10::DeleterFnPtr base_free_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, size_t> sizes_;
  int64_t live_ = 0, peak_ = 0;
};

TrackingCPUAllocator* TrackingCPUAllocator::instance = nullptr;

}  // namespace

void track_cpu_memory() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto* base = c10::GetCPUAllocator();
    if (!TrackingCPUAllocator::can_wrap(base)) return;  // peak_memory_bytes falls back to RSS
    // Never destroyed: tensors may be freed during static destruction.
    TrackingCPUAllocator::instance = new TrackingCPUAllocator(base);
    c10::SetCPUAllocator(TrackingCPUAllocator::instance, /*priority=*/100);
  });
}

int64_t peak_memory_bytes(const torch::Device& device) {
#if FLYWHEEL_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(
        device.has_index() ? device.index() : c10::cuda::current_device());
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)]
        .peak;
  }
#endif
  (void)device;
  if (TrackingCPUAllocator::instance != nullptr) return TrackingCPUAllocator::instance->peak();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

int64_t free_device_memory(const torch::Device& device) {
#if FLYWHEEL_WITH_CUDA
  if (device.is_cuda()) {
    const c10::cuda::CUDAGuard guard(device);
    size_t free = 0, total = 0;
    C10_CUDA_CHECK(cudaMemGetInfo(&free, &total));
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(
        device.has_index() ? device.index() : c10::cuda::current_device());
    const auto all = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    return static_cast<int64_t>(free) + stats.reserved_bytes[all].current -
           stats.allocated_bytes[all].current;
  }
#endif
  (void)device;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  while (meminfo >> key >> kib) {
    if (key == "MemAvailable:") return kib * 1024;
    meminfo.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  throw std::runtime_error("free_device_memory: no MemAvailable in /proc/meminfo");
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
