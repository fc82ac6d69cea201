// Where this process sits in a training job, read from the environment a launcher sets:
//
//   torchrun / flywheel-launch   RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
//                                MASTER_PORT (and, under torchrun, TORCHELASTIC_USE_AGENT_STORE
//                                + TORCHELASTIC_RESTART_COUNT: the agent hosts the store)
//   srun                         SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS, SLURM_NODELIST
//                                (its first host is the master), SLURM_NTASKS_PER_NODE /
//                                SLURM_TASKS_PER_NODE; MASTER_ADDR / MASTER_PORT still win
//   neither                      a single process: rank 0 of 1
//
// Pure parsing (no sockets), so every rule is unit-tested; trainer/dist/communicator.h connects.
#pragma once

#include <functional>
#include <string>

namespace flywheel {

struct WorldInfo {
  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // torchrun's agent already runs the TCPStore; every rank is a client, under this prefix.
  bool agent_store = false;
  std::string store_prefix;
  std::string launcher = "none";  // none | torchrun | slurm (how the values were found)

  bool distributed() const { return world_size > 1; }
};

using EnvLookup = std::function<const char*(const char*)>;

// UserError naming the variable when a value is malformed or inconsistent (rank >= world).
WorldInfo world_from_env(const EnvLookup& env);
WorldInfo world_from_env();  // the process environment

// The integer value of environment variable `name`, `fallback` when unset or empty; UserError
// naming the variable when it is not an integer >= min.
int env_int(const EnvLookup& env, const char* name, int fallback, int min);

// The first host of a Slurm node list: "gpu[07-09,12],cpu1" -> "gpu07".
std::string first_slurm_host(const std::string& nodelist);

// Tasks on the first node of SLURM_TASKS_PER_NODE ("4(x2),3" -> 4).
int slurm_tasks_on_first_node(const std::string& tasks_per_node);

}  // namespace flywheel
