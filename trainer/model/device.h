// Devices: naming them, binding a process to its GPU, moving batches there, and random
// generators that live on them. With communicator.cpp and the rollout engine's CUDA graphs
// (rollout/decode_step.cpp) this is the only code that calls CUDA APIs directly; it is compiled in
// every build with CUDA (FLYWHEEL_WITH_CUDA), and a build or a machine without CUDA turns a request
// for a GPU into a user error.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace flywheel {

// "cpu" | "cuda" | "cuda:N". UserError (naming `where`) when the name is malformed, when
// CUDA is asked for but not available, or when GPU N does not exist.
torch::Device parse_device(const std::string& name, const std::string& where);

// Makes `device` this thread's current CUDA device (so kernels, NCCL communicators and the
// caching allocator of a rank all use its own GPU); nothing for the CPU.
void bind_device(const torch::Device& device);

// A host tensor on `device`. To a GPU the copy goes through pinned memory and does not block
// the host, so the next batch is transferred while the current stream still computes.
torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device);

// A random generator on `device`, seeded: sampling on a GPU draws there instead of copying
// logits back to the host. The CPU generator is LibTorch's mt19937 one, so CPU results do not
// depend on the build.
torch::Generator make_generator(const torch::Device& device, uint64_t seed);

// Counts the bytes of live CPU tensors from now on (LibTorch's CPU allocator, wrapped), so
// that peak_memory_bytes can report them on the CPU as the CUDA caching allocator does on a
// GPU. Call once at start-up, before tensors are made; idempotent.
void track_cpu_memory();

// The most tensor memory this process has held on `device` so far, in bytes: on a GPU the
// caching allocator's peak of allocated bytes; on the CPU the peak of live tensor bytes since
// track_cpu_memory() (memory-mapped checkpoint tensors are the page cache's, not counted), or
// without it the peak resident set size (getrusage), libraries and mapped pages included.
int64_t peak_memory_bytes(const torch::Device& device);

// Memory that tensors on `device` could still take, in bytes: on a GPU what the driver has
// free plus what LibTorch's caching allocator holds unused; on the CPU the kernel's
// MemAvailable.
int64_t free_device_memory(const torch::Device& device);

// What this build supports, for `flywheel inspect --build` and the build test:
// "LibTorch 2.14.1, CUDA 13.0 (compiled), 0 GPUs visible".
std::string describe_build();

}  // namespace flywheel
