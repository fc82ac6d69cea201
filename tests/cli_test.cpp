// Drives the real `flywheel` binary: help, exit codes, inspect and generate.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/fixtures.h"
#include "tests/run_binary.h"

namespace flywheel {
namespace {

using testing::run_flywheel;

TEST(Cli, HelpAndUserErrors) {
  auto help = run_flywheel("--help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output.find("generate"), std::string::npos);
  EXPECT_EQ(run_flywheel("generate --help").status, 0);
  EXPECT_EQ(run_flywheel("inspect --help").status, 0);

  struct Case {
    const char* args;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"", "Usage: flywheel"},
      {"frobnicate", "unknown command 'frobnicate'"},
      {"generate --prompt hi", "--model is required"},
      {"generate --model /nonexistent --prompt hi", "/nonexistent/config.json"},
      {"generate --model x --prompt a --prompt-ids 1", "exactly one of --prompt and --prompt-ids"},
      {"generate --model x --prompt a --max-new-tokens zero",
       "--max-new-tokens expects an integer"},
      {"generate --model x --prompt a --temperature 0", "temperature must be > 0"},
      {"generate --model x --bogus", "unknown option --bogus"},
      {"inspect", "expected exactly one model directory"},
  };
  for (const auto& c : cases) {
    auto r = run_flywheel(c.args);
    EXPECT_EQ(r.status, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\n" << r.output;
  }
}

TEST(Cli, InspectTinyLlama) {
  const auto dir = testing::fixtures_dir() + "/llama-tiny";
  FLYWHEEL_REQUIRE_PATH(dir);
  auto r = run_flywheel("inspect " + dir);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("LlamaForCausalLM"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("model.layers.1.mlp.down_proj.weight"), std::string::npos);
  // 300*64 embed + 300*64 head + 64 norm + 2 layers * (64*64*2 + 64*32*2 + 3*64*176 + 2*64)
  EXPECT_NE(r.output.find("parameters     130880"), std::string::npos) << r.output;
}

TEST(Cli, GenerateWithPromptIds) {
  const auto dir = testing::fixtures_dir() + "/llama-tiny";
  FLYWHEEL_REQUIRE_PATH(dir);
  auto r = run_flywheel("generate --model " + dir +
                        " --prompt-ids 1,5,9,200,33 --max-new-tokens 12 --greedy");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("116,17,9,130,112,76,256,234,215,29,278,34"), std::string::npos)
      << r.output;
}

TEST(Cli, GenerateStoriesText) {
  const auto dir = testing::models_dir() + "/stories260K";
  FLYWHEEL_REQUIRE_PATH(dir);
  std::ifstream in(dir + "/expected_greedy.json");
  const auto expected = nlohmann::json::parse(in);
  auto r = run_flywheel("generate --model " + dir +
                        " --prompt 'Once upon a time' --greedy --max-new-tokens 196");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, expected["greedy_text"].get<std::string>() + "\n");
}

}  // namespace
}  // namespace flywheel
