#include "trainer/dist/runtime.h"

#include <torch/torch.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>
#include <thread>

#include "trainer/core/error.h"
#include "trainer/dist/world.h"

namespace flywheel {
namespace {

void keep_freed_host_memory() {
#ifdef __GLIBC__
  // Serve every block from the heap, where freed blocks are reused, and never trim the heap.
  // M_MMAP_THRESHOLD alone cannot do it: glibc caps it at 32 MiB, and a batch's logits are
  // often larger (128 x 32 tokens x 8192 vocabulary in float32 is 134 MB).
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
#endif
}

int configure_threads() {
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  const int local_ranks = world_from_env().local_world_size;
  const int threads = env_int([](const char* name) { return std::getenv(name); }, "OMP_NUM_THREADS",
                              std::max(1, cores / local_ranks), 1);
  torch::set_num_threads(threads);
  return threads;
}

}  // namespace

int configure_runtime() {
  keep_freed_host_memory();
  return configure_threads();
}

}  // namespace flywheel
