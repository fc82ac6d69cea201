// Rendezvous variables: torchrun's, Slurm's, none; malformed values are user errors.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tests/fixtures.h"
#include "trainer/dist/world.h"

namespace flywheel {
namespace {

WorldInfo world(const std::map<std::string, std::string>& env) {
  return world_from_env([&](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(World, NoLauncherIsASingleProcess) {
  const auto w = world({});
  EXPECT_EQ(w.world_size, 1);
  EXPECT_EQ(w.rank, 0);
  EXPECT_FALSE(w.distributed());
  EXPECT_EQ(w.launcher, "none");
}

TEST(World, TorchrunVariables) {
  const auto w = world({{"RANK", "3"},
                        {"LOCAL_RANK", "1"},
                        {"WORLD_SIZE", "4"},
                        {"LOCAL_WORLD_SIZE", "2"},
                        {"MASTER_ADDR", "node7"},
                        {"MASTER_PORT", "29400"}});
  EXPECT_EQ(w.launcher, "torchrun");
  EXPECT_EQ(w.rank, 3);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.world_size, 4);
  EXPECT_EQ(w.local_world_size, 2);
  EXPECT_EQ(w.master_addr, "node7");
  EXPECT_EQ(w.master_port, 29400);
  EXPECT_FALSE(w.agent_store);
}

TEST(World, TorchrunAgentStoreUsesTheAttemptPrefix) {
  const auto w = world({{"RANK", "0"},
                        {"WORLD_SIZE", "2"},
                        {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                        {"TORCHELASTIC_RESTART_COUNT", "2"}});
  EXPECT_TRUE(w.agent_store);
  EXPECT_EQ(w.store_prefix, "/worker/attempt_2");
}

TEST(World, SlurmVariables) {
  const auto w = world({{"SLURM_PROCID", "5"},
                        {"SLURM_LOCALID", "1"},
                        {"SLURM_NTASKS", "8"},
                        {"SLURM_TASKS_PER_NODE", "4(x2)"},
                        {"SLURM_NODELIST", "gpu[07-08]"},
                        {"SLURM_JOB_ID", "123456"}});
  EXPECT_EQ(w.launcher, "slurm");
  EXPECT_EQ(w.rank, 5);
  EXPECT_EQ(w.local_rank, 1);
  EXPECT_EQ(w.world_size, 8);
  EXPECT_EQ(w.local_world_size, 4);
  EXPECT_EQ(w.master_addr, "gpu07");
  EXPECT_EQ(w.master_port, 20000 + 123456 % 20000);
}

TEST(World, SlurmMasterVariablesWin) {
  const auto w = world({{"SLURM_PROCID", "0"},
                        {"SLURM_NTASKS", "2"},
                        {"SLURM_NODELIST", "a1"},
                        {"MASTER_ADDR", "10.0.0.1"},
                        {"MASTER_PORT", "31000"}});
  EXPECT_EQ(w.master_addr, "10.0.0.1");
  EXPECT_EQ(w.master_port, 31000);
}

TEST(World, FirstSlurmHost) {
  EXPECT_EQ(first_slurm_host("node1"), "node1");
  EXPECT_EQ(first_slurm_host("node1,node2"), "node1");
  EXPECT_EQ(first_slurm_host("gpu[07-09,12],cpu1"), "gpu07");
  EXPECT_EQ(first_slurm_host("gpu[3,5]"), "gpu3");
  EXPECT_EQ(first_slurm_host("a1,gpu[1-2]"), "a1");
  EXPECT_EQ(slurm_tasks_on_first_node("4(x2),3"), 4);
  EXPECT_EQ(slurm_tasks_on_first_node("2"), 2);
}

TEST(World, MalformedValuesAreUserErrors) {
  testing::expect_user_error([] { world({{"RANK", "x"}, {"WORLD_SIZE", "2"}}); }, {"RANK='x'"});
  testing::expect_user_error(
      [] {
        world({{"RANK", "2"}, {"WORLD_SIZE", "2"}});
      },
      {"not below the world size"});
  testing::expect_user_error(
      [] {
        world({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}});
      },
      {"MASTER_PORT"});
  testing::expect_user_error([] { first_slurm_host("gpu[1-3"); }, {"unbalanced"});
  testing::expect_user_error([] { slurm_tasks_on_first_node("(x2)"); }, {"SLURM_TASKS_PER_NODE"});
}

}  // namespace
}  // namespace flywheel
