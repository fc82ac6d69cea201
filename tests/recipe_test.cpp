// Recipe parsing: typed values, overrides, and a table of mistakes with the file:line:key
// message each produces.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/fixtures.h"
#include "trainer/core/error.h"
#include "trainer/train/recipe.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;

class RecipeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("recipe");
    std::ofstream(dir_ + "/train.jsonl") << "{}\n";
    std::ofstream(dir_ + "/config.json") << "{}\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A valid recipe, with `extra` appended (YAML lines).
  std::string write(const std::string& extra) {
    const std::string path = dir_ + "/recipe.yaml";
    std::ofstream(path) << "trainer: sft\n"
                           "output_dir: "
                        << dir_
                        << "/run\n"
                           "model:\n"
                           "  config: "
                        << dir_
                        << "/config.json\n"
                           "  tokenizer: "
                        << dir_
                        << "\n"
                           "data:\n"
                           "  train_file: "
                        << dir_ << "/train.jsonl\n"
                        << extra;
    return path;
  }

  std::string error_of(const std::string& extra, const std::vector<std::string>& overrides = {}) {
    try {
      load_recipe(write(extra), overrides);
    } catch (const UserError& e) {
      return e.what();
    }
    return "";
  }

  std::string dir_;
};

TEST_F(RecipeTest, ParsesTypedValuesAndOverrides) {
  const auto path = write(
      "training:\n"
      "  learning_rate: 5.0e-7\n"
      "  gradient_accumulation_steps: 16\n"
      "loss:\n"
      "  type: dpo_norm\n"
      "  beta: 5\n");
  auto r = load_recipe(path, {"training.micro_batch_size=3", "loss.beta=2.5", "seed=7"});
  EXPECT_EQ(r.trainer, "sft");
  EXPECT_DOUBLE_EQ(r.training.learning_rate, 5e-7);
  EXPECT_EQ(r.training.gradient_accumulation_steps, 16);
  EXPECT_EQ(r.training.micro_batch_size, 3);
  EXPECT_DOUBLE_EQ(r.loss.beta, 2.5);
  EXPECT_EQ(r.seed, 7u);
  EXPECT_EQ(r.loss.type, "dpo_norm");
  EXPECT_TRUE(fs::path(r.data.train_file).is_absolute());
  // The printed config parses back to the same values.
  std::ofstream(dir_ + "/printed.yaml") << recipe_to_yaml(r);
  auto again = load_recipe(dir_ + "/printed.yaml");
  EXPECT_EQ(recipe_to_yaml(again), recipe_to_yaml(r));
}

TEST_F(RecipeTest, ArenaSectionParsesAndPrintsBack) {
  const auto path = write(
      "eval:\n"
      "  arena:\n"
      "    prompts: " +
      dir_ +
      "/train.jsonl\n"
      "    baselines: [base=" +
      dir_ +
      "]\n"
      "    judges: verifier:gsm8k\n"
      "    anchor: base=1200\n"
      "    every_steps: 5\n"
      "    previous_checkpoints: 2\n"
      "checkpoint:\n"
      "  keep_best: arena\n");
  const auto r = load_recipe(path, {"eval.arena.bootstrap=20"});
  // A cascade's settings print back too.
  const auto cascade =
      load_recipe(path, {"eval.arena.judges=[llm:" + dir_ + ", llm:" + dir_ + "]",
                         "eval.arena.trust=[0.9, 0.6]", "eval.arena.annotators=3",
                         "eval.arena.style_control=true", "eval.arena.bootstrap_unit=battle"});
  EXPECT_EQ(cascade.eval.arena.trust, (std::vector<double>{0.9, 0.6}));
  std::ofstream(dir_ + "/cascade.yaml") << recipe_to_yaml(cascade);
  EXPECT_EQ(recipe_to_yaml(load_recipe(dir_ + "/cascade.yaml")), recipe_to_yaml(cascade));
  const auto& a = r.eval.arena;
  ASSERT_TRUE(a.enabled());
  ASSERT_EQ(a.baselines.size(), 1u);
  EXPECT_EQ(a.baselines[0], "base=" + fs::absolute(dir_).lexically_normal().string());
  EXPECT_EQ(a.judges, std::vector<std::string>{"verifier:gsm8k"});  // a scalar: a list of one
  EXPECT_EQ(a.anchor, "base=1200");
  EXPECT_EQ(a.every_steps, 5);
  EXPECT_EQ(a.previous_checkpoints, 2);
  EXPECT_EQ(a.bootstrap, 20);
  EXPECT_EQ(r.checkpoint.keep_best, "arena");
  std::ofstream(dir_ + "/printed.yaml") << recipe_to_yaml(r);
  EXPECT_EQ(recipe_to_yaml(load_recipe(dir_ + "/printed.yaml")), recipe_to_yaml(r));
}

TEST_F(RecipeTest, MistakesNameFileLineAndKey) {
  struct Case {
    std::string extra;
    std::vector<std::string> overrides;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"training:\n  learning_rate: fast\n",
       {},
       "recipe.yaml:9: key 'training.learning_rate': expected a number, got 'fast'"},
      {"training:\n  lerning_rate: 1e-5\n",
       {},
       "recipe.yaml:9: unknown key 'training.lerning_rate'"},
      {"training:\n  micro_batch_size: 0\n",
       {},
       "key 'training.micro_batch_size': expected an integer >= 1"},
      {"training:\n  lr_scheduler: step\n",
       {},
       "expected one of constant, cosine, linear, got 'step'"},
      {"loss:\n  type: kto\n", {}, "key 'loss.type': expected one of dpo, dpo_norm, ipo, simpo"},
      {"data2: {}\n", {}, "recipe.yaml:8: unknown key 'data2'"},
      {"training: 3\n", {}, "key 'training': expected a mapping"},
      {"distributed:\n  zero_stage: 4\n",
       {},
       "key 'distributed.zero_stage': expected 0, 1, 2 or 3"},
      {"",
       {"training.epochs=two"},
       "command-line override 'training.epochs': key 'training.epochs': expected an integer"},
      {"", {"training.epochs"}, "override 'training.epochs': expected section.key=value"},
      {"",
       {"data.train_file=/no/such/file"},
       "expected an existing path ('/no/such/file' does not exist)"},
      {"", {"data.packing=true", "trainer=dpo"}, "packing only with trainer: sft"},
      {"eval:\n  generation_file: " + dir_ + "/train.jsonl\n",
       {},
       "eval.generation_file and eval.verifier together"},
      {"training:\n  learning_rate: [1, 2]\n", {}, "got a non-scalar value"},
      {"  bogus: 1\n", {}, "recipe.yaml:8: unknown key 'data.bogus'"},
      {"training:\n  learning_rate: 2.0\n", {}, "expected a number in [0, 1], got '2.0'"},
      {"",
       {"model.dtype=float16"},
       "key 'model.dtype': expected float32 or bfloat16 (float16 training needs loss scaling"},
      {"",
       {"distributed.reduce_dtype=float16"},
       "key 'distributed.reduce_dtype': expected one of bfloat16, float32, got 'float16'"},
      {"checkpoint:\n  keep_best: arena\n",
       {},
       "key 'checkpoint': expected eval.arena (its prompts, judges, baselines) with keep_best"},
      {"checkpoint:\n  keep_best: loss\n", {}, "key 'checkpoint.keep_best': expected one of arena"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n",
       {},
       "key 'eval.arena.judges' is missing: expected a judge"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n    judges: [gpt4]\n",
       {},
       "recipe.yaml:11: key 'eval.arena.judges': expected rm:DIR, verifier:NAME or llm:DIR"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n    judges: [rm:/no/rm]\n",
       {},
       "key 'eval.arena.judges': expected an existing path ('/no/rm' does not exist)"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n    judges: [llm:" + dir_ +
           ", llm:" + dir_ + "]\n    trust: [0.8]\n",
       {},
       "key 'eval.arena.trust': expected one threshold per judge of the cascade (2 judges)"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n    judges: verifier:gsm8k\n" +
           "    baselines: [base]\n",
       {},
       "key 'eval.arena.baselines': expected NAME=DIR entries"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n    judges: verifier:gsm8k\n" +
           "    anchor: base\n",
       {},
       "key 'eval.arena.anchor': expected NAME=RATING"},
      {"eval:\n  arena:\n    judges: verifier:gsm8k\n",
       {},
       "key 'eval.arena.prompts' is missing: expected the arena's prompts"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n    judges: [llm:" + dir_ +
           ", verifier:gsm8k]\n    trust: [0.8, 0.7]\n",
       {},
       "key 'eval.arena.judges': expected llm:DIR judges only in a cascade"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n    judges: verifier:gsm8k\n" +
           "    baselines: [a=" + dir_ + ", a=" + dir_ + "]\n",
       {},
       "key 'eval.arena.baselines': expected distinct names ('a' twice)"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n    judges: verifier:gsm8k\n" +
           "    baselines: [a=" + dir_ + "]\n    baseline: b\n",
       {},
       "key 'eval.arena.baseline': expected one of eval.arena.baselines"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n    judges: verifier:gsm8k\n" +
           "    baselines: [base=" + dir_ + "]\n    anchor: step-4=1000\n",
       {},
       "key 'eval.arena.anchor': expected a baseline or step-0 (the starting model) as NAME"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n    judges: verifier:gsm8k\n" +
           "    baselines: [step-3=" + dir_ + "]\n",
       {},
       "key 'eval.arena.baselines': expected names other than step-N"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n    judges: verifier:gsm8k\n" +
           "    previous_checkpoints: 0\n",
       {},
       "(with 0 a checkpoint would play nobody)"},
      {"eval:\n  arena:\n    prompts: " + dir_ + "/train.jsonl\n    judges: verifier:gsm8k\n",
       {"trainer=reward_model"},
       "key 'eval': expected no arena with trainer: reward_model"},
  };
  for (const auto& c : cases) {
    const auto err = error_of(c.extra, c.overrides);
    EXPECT_NE(err.find(c.message), std::string::npos) << "case: " << c.extra << "\ngot: " << err;
  }
  fs::remove(dir_ + "/recipe.yaml");
  EXPECT_NE(
      [&] {
        try {
          load_recipe(dir_ + "/recipe.yaml");
        } catch (const UserError& e) {
          return std::string(e.what());
        }
        return std::string();
      }()
          .find("recipe not found"),
      std::string::npos);
}

TEST_F(RecipeTest, InvalidYamlReportsTheLine) {
  const std::string path = dir_ + "/bad.yaml";
  std::ofstream(path) << "trainer: sft\nmodel:\n  path: [unclosed\n";
  try {
    load_recipe(path);
    FAIL() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.yaml:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("invalid YAML"), std::string::npos) << e.what();
  }
}

// Every shipped recipe parses (paths that only exist on a cluster are overridden).
TEST(ShippedRecipes, Parse) {
  FLYWHEEL_REQUIRE_PATH(testing::models_dir() + "/stories260K");
  const fs::path root = fs::path(FLYWHEEL_SOURCE_DIR) / "recipes";
  const auto model = testing::models_dir() + "/stories260K";
  // Every recipe's data paths are replaced by a small preference file of its own.
  const auto dir = testing::make_temp_dir("shipped-recipes");
  const auto pairs = dir + "/pairs.jsonl";
  std::ofstream(pairs) << R"({"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."})"
                       << "\n";
  const std::vector<std::string> everywhere = {
      "model.path=" + model,      "model.config=null",   "model.tokenizer=" + model,
      "data.train_file=" + pairs, "data.eval_file=null", "eval.generation_file=null",
      "eval.verifier=null",       "model.device=cpu"};
  int parsed = 0;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.path().extension() != ".yaml") continue;
    SCOPED_TRACE(e.path().string());
    std::ifstream in(e.path());
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    auto overrides = everywhere;
    // RL recipes may name models that a run of another recipe trains first.
    for (const char* key : {"value_model", "reward_model"}) {
      if (text.find("\n  " + std::string(key) + ":") != std::string::npos)
        overrides.push_back("rl." + std::string(key) + "=null");
    }
    EXPECT_NO_THROW(load_recipe(e.path().string(), overrides));
    ++parsed;
  }
  EXPECT_GE(parsed, 6);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
