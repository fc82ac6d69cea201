#include "trainer/dist/world.h"

#include <cstdlib>
#include <string>

#include "trainer/core/error.h"

namespace flywheel {
namespace {

std::string str_var(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  return v == nullptr ? "" : v;
}

}  // namespace

int env_int(const EnvLookup& env, const char* name, int fallback, int min) {
  const char* v = env(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < min || x > 1 << 24) {
    throw UserError(std::string("environment variable ") + name + "='" + v +
                    "': expected an integer >= " + std::to_string(min));
  }
  return static_cast<int>(x);
}

std::string first_slurm_host(const std::string& nodelist) {
  // The first entry ends at a comma outside brackets; a bracket range expands to its first
  // member ("gpu[07-09,12]" -> "gpu07", keeping the zero padding).
  const auto bracket = nodelist.find('[');
  const auto comma = nodelist.find(',');
  if (bracket == std::string::npos || (comma != std::string::npos && comma < bracket)) {
    return nodelist.substr(0, comma);
  }
  const auto close = nodelist.find(']', bracket);
  if (close == std::string::npos) {
    throw UserError("SLURM_NODELIST='" + nodelist + "': unbalanced '['");
  }
  const std::string inside = nodelist.substr(bracket + 1, close - bracket - 1);
  const auto end = inside.find_first_of(",-");
  return nodelist.substr(0, bracket) + inside.substr(0, end);
}

int slurm_tasks_on_first_node(const std::string& tasks_per_node) {
  char* end = nullptr;
  const long n = std::strtol(tasks_per_node.c_str(), &end, 10);
  if (end == tasks_per_node.c_str() || n < 1) {
    throw UserError("SLURM_TASKS_PER_NODE='" + tasks_per_node +
                    "': expected a task count such as 4 or 4(x2)");
  }
  return static_cast<int>(n);
}

WorldInfo world_from_env(const EnvLookup& env) {
  WorldInfo w;
  const bool torchrun = env("WORLD_SIZE") != nullptr || env("RANK") != nullptr;
  const bool slurm = !torchrun && env("SLURM_PROCID") != nullptr && env("SLURM_NTASKS") != nullptr;
  if (torchrun) {
    w.launcher = "torchrun";
    w.world_size = env_int(env, "WORLD_SIZE", 1, 1);
    w.rank = env_int(env, "RANK", 0, 0);
    w.local_rank = env_int(env, "LOCAL_RANK", w.rank, 0);
    w.local_world_size = env_int(env, "LOCAL_WORLD_SIZE", w.world_size, 1);
    w.agent_store = str_var(env, "TORCHELASTIC_USE_AGENT_STORE") == "True";
    if (w.agent_store) {
      w.store_prefix =
          "/worker/attempt_" + std::to_string(env_int(env, "TORCHELASTIC_RESTART_COUNT", 0, 0));
    }
  } else if (slurm) {
    w.launcher = "slurm";
    w.world_size = env_int(env, "SLURM_NTASKS", 1, 1);
    w.rank = env_int(env, "SLURM_PROCID", 0, 0);
    w.local_rank = env_int(env, "SLURM_LOCALID", 0, 0);
    if (env("SLURM_NTASKS_PER_NODE") != nullptr) {
      w.local_world_size = env_int(env, "SLURM_NTASKS_PER_NODE", 1, 1);
    } else if (env("SLURM_TASKS_PER_NODE") != nullptr) {
      w.local_world_size = slurm_tasks_on_first_node(str_var(env, "SLURM_TASKS_PER_NODE"));
    } else {
      w.local_world_size = w.world_size;
    }
    const std::string nodes = str_var(env, "SLURM_NODELIST").empty()
                                  ? str_var(env, "SLURM_JOB_NODELIST")
                                  : str_var(env, "SLURM_NODELIST");
    if (!nodes.empty()) w.master_addr = first_slurm_host(nodes);
    // One port per job, so jobs sharing a node do not collide.
    const int job = env_int(env, "SLURM_JOB_ID", 0, 0);
    w.master_port = 20000 + job % 20000;
  } else {
    return w;
  }
  if (env("MASTER_ADDR") != nullptr && *env("MASTER_ADDR") != '\0') {
    w.master_addr = str_var(env, "MASTER_ADDR");
  }
  w.master_port = env_int(env, "MASTER_PORT", w.master_port, 1);
  if (w.master_port > 65535) {
    throw UserError("environment variable MASTER_PORT=" + std::to_string(w.master_port) +
                    ": expected a port number below 65536");
  }
  if (w.rank >= w.world_size) {
    throw UserError("rank " + std::to_string(w.rank) + " is not below the world size " +
                    std::to_string(w.world_size) + " (" + w.launcher + " environment)");
  }
  if (w.local_rank >= w.local_world_size) {
    throw UserError("local rank " + std::to_string(w.local_rank) +
                    " is not below the local world size " + std::to_string(w.local_world_size) +
                    " (" + w.launcher + " environment)");
  }
  return w;
}

WorldInfo world_from_env() {
  return world_from_env([](const char* name) { return std::getenv(name); });
}

}  // namespace flywheel
