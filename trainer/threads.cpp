#include "trainer/threads.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include "trainer/error.h"

namespace flywheel {
namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x <= 0) {
    throw UserError(std::string("environment variable ") + name + "='" + v +
                    "': expected a positive integer");
  }
  return static_cast<int>(x);
}

}  // namespace

int configure_threads() {
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  const int local_ranks = env_int("LOCAL_WORLD_SIZE", 1);
  const int threads = env_int("OMP_NUM_THREADS", std::max(1, cores / local_ranks));
  torch::set_num_threads(threads);
  return threads;
}

}  // namespace flywheel
