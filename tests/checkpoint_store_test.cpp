// Atomic checkpoints: sealed with a manifest, damaged ones detected, the previous one used.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/fixtures.h"
#include "trainer/checkpoint/checkpoint_store.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

TEST(CheckpointStore, SaveVerifyPruneAndFallBack) {
  const auto root = testing::make_temp_dir("ckpt");
  CheckpointStore store(root, /*keep_last=*/2);
  for (int step : {10, 20, 30}) {
    store.save(step, [&](const std::string& dir) {
      write(fs::path(dir) / "weights.bin", "step " + std::to_string(step));
      write(fs::path(dir) / "model" / "config.json", "{}");
    });
  }
  auto all = store.list();
  ASSERT_EQ(all.size(), 2u);  // step 10 pruned
  EXPECT_EQ(all[0].step, 20);
  EXPECT_FALSE(fs::exists(fs::path(root) / "step-00000030.tmp"));

  std::vector<std::string> problems;
  auto latest = store.latest_valid(&problems);
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->step, 30);
  EXPECT_TRUE(problems.empty());

  // Damage step 30 (same size, different bytes): the checksum catches it, step 20 is used.
  write(fs::path(latest->dir) / "weights.bin", "step 99");
  latest = store.latest_valid(&problems);
  ASSERT_TRUE(latest);
  EXPECT_EQ(latest->step, 20);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("weights.bin fails its checksum"), std::string::npos) << problems[0];

  // A partial checkpoint (no manifest) and a missing file are reported too.
  fs::remove(fs::path(all[0].dir) / "manifest.json");
  EXPECT_NE(verify_manifest(all[0].dir).find("no manifest.json"), std::string::npos);
  problems.clear();
  EXPECT_FALSE(store.latest_valid(&problems));
  EXPECT_EQ(problems.size(), 2u);
  fs::remove_all(root);
}

// keep(): one checkpoint survives pruning whatever its age; a step that is not there keeps
// nothing extra; keep(nullopt) lets the usual pruning take it.
TEST(CheckpointStore, KeepsTheNamedCheckpointBesidesTheLast) {
  const auto root = testing::make_temp_dir("ckpt-keep");
  CheckpointStore store(root, /*keep_last=*/1);
  const auto save = [&](int step) {
    store.save(step, [&](const std::string& dir) { write(fs::path(dir) / "w.bin", "x"); });
  };
  const auto steps = [&] {
    std::vector<int64_t> out;
    for (const auto& c : store.list())
      out.push_back(c.step);
    return out;
  };
  save(10);
  store.keep(10);
  save(20);
  save(30);
  EXPECT_EQ(steps(), (std::vector<int64_t>{10, 30}));
  EXPECT_EQ(fs::path(store.list()[0].dir).filename(), checkpoint_name(10));
  store.keep(20);  // gone already: nothing extra is kept, and 10 goes now
  EXPECT_EQ(steps(), (std::vector<int64_t>{30}));
  save(40);
  store.keep(40);
  save(50);
  EXPECT_EQ(steps(), (std::vector<int64_t>{40, 50}));
  store.keep(std::nullopt);
  EXPECT_EQ(steps(), (std::vector<int64_t>{50}));
  fs::remove_all(root);
}

TEST(CheckpointStore, TruncatedFileFailsSizeCheck) {
  const auto root = testing::make_temp_dir("ckpt");
  CheckpointStore store(root, 3);
  const auto dir = store.save(
      1, [&](const std::string& d) { write(fs::path(d) / "a.bin", std::string(1000, 'x')); });
  EXPECT_EQ(verify_manifest(dir), "");
  fs::resize_file(fs::path(dir) / "a.bin", 10);
  EXPECT_NE(verify_manifest(dir).find("a.bin has the wrong size"), std::string::npos);
  fs::remove_all(root);
}

}  // namespace
}  // namespace flywheel
