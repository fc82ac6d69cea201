// Drives the real `flywheel` binary: help, exit codes, inspect, generate, plan, verify, eval,
// the arena's statistics and decontamination.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/fixtures.h"
#include "tests/run_binary.h"
#include "trainer/checkpoint/safetensors.h"

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
      {"generate --model x --prompt a --prompt-ids 1",
       "exactly one of --prompt, --prompt-ids and --prompts"},
      {"generate --model x --prompt a --max-new-tokens zero",
       "--max-new-tokens expects an integer"},
      {"generate --model x --prompt a --temperature -1", "temperature must be >= 0"},
      {"generate --model x --bogus", "unknown option --bogus"},
      {"inspect", "expected exactly one model directory"},
  };
  for (const auto& c : cases) {
    auto r = run_flywheel(c.args);
    EXPECT_EQ(r.status, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\n" << r.output;
  }
}

// Every expected figure comes from the fixture's own files: the architecture and layer count
// from config.json, the parameter count from the tensors in model.safetensors.
TEST(Cli, InspectTinyLlama) {
  const auto dir = testing::fixtures_dir() + "/llama-tiny";
  FLYWHEEL_REQUIRE_PATH(dir);
  std::ifstream in(dir + "/config.json");
  const auto config = nlohmann::json::parse(in);
  const SafetensorsFile weights(dir + "/model.safetensors");
  int64_t parameters = 0;
  for (const auto& e : weights.entries()) {
    int64_t numel = 1;
    for (const auto d : e.shape)
      numel *= d;
    parameters += numel;
  }
  const auto last_layer = "model.layers." +
                          std::to_string(config["num_hidden_layers"].get<int>() - 1) +
                          ".mlp.down_proj.weight";

  auto r = run_flywheel("inspect " + dir);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(config["architectures"][0].get<std::string>()), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(last_layer), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("parameters     " + std::to_string(parameters) + " "), std::string::npos)
      << r.output;
}

// The fixture's first prompt and its greedy continuation from expected_greedy.json.
TEST(Cli, GenerateWithPromptIds) {
  const auto dir = testing::fixtures_dir() + "/llama-tiny";
  FLYWHEEL_REQUIRE_PATH(dir);
  std::ifstream in(dir + "/expected_greedy.json");
  const auto cases = nlohmann::json::parse(in);
  ASSERT_FALSE(cases.empty());
  auto join = [](const std::vector<int64_t>& ids) {
    std::string out;
    for (const auto id : ids)
      out += (out.empty() ? "" : ",") + std::to_string(id);
    return out;
  };
  const auto prompt = cases[0]["prompt_ids"].get<std::vector<int64_t>>();
  const auto greedy = cases[0]["greedy_ids"].get<std::vector<int64_t>>();
  auto r = run_flywheel("generate --model " + dir + " --prompt-ids " + join(prompt) +
                        " --max-new-tokens " + std::to_string(greedy.size()) + " --greedy");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(join(greedy)), std::string::npos) << r.output;
}

TEST(Cli, GenerateStoriesText) {
  const auto dir = testing::models_dir() + "/stories260K";
  FLYWHEEL_REQUIRE_PATH(dir);
  std::ifstream in(dir + "/expected_greedy.json");
  const auto expected = nlohmann::json::parse(in);
  const auto max_new = expected["greedy_ids"].size();
  auto r = run_flywheel("generate --model " + dir + " --prompt '" +
                        expected["prompt"].get<std::string>() + "' --greedy --max-new-tokens " +
                        std::to_string(max_new));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, expected["greedy_text"].get<std::string>() + "\n");
}

// Batch mode: every line of --prompts (text, ids, or messages with --chat) through the engine,
// n samples each, written in input order with the input's own fields; the greedy sample of the
// fixture's prompt equals its expected continuation. Bad lines name the file and line.
TEST(Cli, GenerateBatchWritesEveryLineInOrder) {
  const auto dir = testing::models_dir() + "/stories260K";
  FLYWHEEL_REQUIRE_PATH(dir);
  std::ifstream in(dir + "/expected_greedy.json");
  const auto expected = nlohmann::json::parse(in);
  const auto tmp = testing::make_temp_dir("generate-batch");
  {
    std::ofstream prompts(tmp + "/prompts.jsonl");
    prompts << nlohmann::json{{"prompt", expected["prompt"]}, {"id", "a"}}.dump() << "\n"
            << R"({"prompt_ids": [1, 403, 407], "id": "b"})"
            << "\n"
            << R"({"prompt": "Lily saw", "id": "c"})"
            << "\n";
  }
  const auto max_new = expected["greedy_ids"].size();
  auto r =
      run_flywheel("generate --model " + dir + " --prompts " + tmp + "/prompts.jsonl --out " + tmp +
                   "/out.jsonl --greedy --n 2 --max-new-tokens " + std::to_string(max_new));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("3 requests"), std::string::npos) << r.output;
  const auto lines = testing::read_metrics(tmp + "/out.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["id"], "a");
  EXPECT_EQ(lines[1]["id"], "b");
  EXPECT_EQ(lines[2]["id"], "c");
  for (const auto& line : lines) {
    ASSERT_EQ(line["outputs"].size(), 2u);
    EXPECT_EQ(line["outputs"][0]["token_ids"], line["outputs"][1]["token_ids"]);  // greedy
  }
  EXPECT_EQ(lines[0]["outputs"][0]["token_ids"].get<std::vector<int64_t>>(),
            expected["greedy_ids"].get<std::vector<int64_t>>());

  std::ofstream(tmp + "/bad.jsonl") << R"({"prompt": "ok"})"
                                    << "\n"
                                    << R"({"text": 1})"
                                    << "\n";
  auto bad = run_flywheel("generate --model " + dir + " --prompts " + tmp + "/bad.jsonl --out " +
                          tmp + "/x.jsonl");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.output.find("bad.jsonl:2: expected \"prompt\""), std::string::npos) << bad.output;
  // A prompt longer than the model's context (512 tokens): the line, and why.
  std::ofstream long_prompts(tmp + "/long.jsonl");
  long_prompts << R"({"prompt_ids": [1, 2]})"
               << "\n"
               << R"({"prompt_ids": [)";
  for (int i = 0; i < 600; ++i)
    long_prompts << (i > 0 ? ", " : "") << 5;
  long_prompts << "]}\n";
  long_prompts.close();
  auto too_long = run_flywheel("generate --model " + dir + " --prompts " + tmp +
                               "/long.jsonl --out " + tmp + "/x.jsonl");
  EXPECT_EQ(too_long.status, 2);
  EXPECT_NE(too_long.output.find("long.jsonl:2: a prompt of 600 tokens"), std::string::npos)
      << too_long.output;
  auto no_out = run_flywheel("generate --model " + dir + " --prompts " + tmp + "/prompts.jsonl");
  EXPECT_EQ(no_out.status, 2);
  EXPECT_NE(no_out.output.find("--out is required"), std::string::npos) << no_out.output;
  std::filesystem::remove_all(tmp);
}

// The shipped Tulu 3 DPO recipe for Llama-3.1-8B, planned from its config.json alone (its data
// and weights are not on this machine): 8 ranks at ZeRO 2 fit an 80 GB GPU, one does not.
TEST(Cli, PlansTheTulu3DpoRecipeFromConfigJsonAlone) {
  const auto dir = testing::make_temp_dir("plan");
  std::ofstream(dir + "/config.json") << R"({"architectures": ["LlamaForCausalLM"],
    "model_type": "llama", "vocab_size": 128256, "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0, "tie_word_embeddings": false, "bos_token_id": 128000,
    "eos_token_id": 128001, "torch_dtype": "bfloat16"})";
  const std::string recipe = std::string(FLYWHEEL_SOURCE_DIR) + "/recipes/tulu3/dpo.yaml";
  const std::string model = " model.path=" + dir;
  auto eight = run_flywheel("plan " + recipe + model + " --world-size 8 --device-memory-gb 80");
  ASSERT_EQ(eight.status, 0) << eight.output;
  // 8,030,261,248 parameters, Llama-3.1-8B's count.
  EXPECT_NE(eight.output.find("8030.3M parameters in bfloat16"), std::string::npos) << eight.output;
  EXPECT_NE(eight.output.find("2 row(s) x 2048 tokens"), std::string::npos) << eight.output;
  EXPECT_NE(eight.output.find("8 rank(s), ZeRO stage 2, activation checkpointing"),
            std::string::npos);
  EXPECT_NE(eight.output.find("fits in 80.0 GiB"), std::string::npos) << eight.output;
  auto one = run_flywheel("plan " + recipe + model + " --device-memory-gb 80");
  ASSERT_EQ(one.status, 0) << one.output;
  EXPECT_NE(one.output.find("does NOT fit in 80.0 GiB"), std::string::npos) << one.output;
  auto missing = run_flywheel("plan " + recipe + " model.path=" + dir + "/nowhere");
  EXPECT_EQ(missing.status, 2) << missing.output;
  EXPECT_NE(missing.output.find("the model's config.json is needed to plan"), std::string::npos)
      << missing.output;
  std::filesystem::remove_all(dir);
}

// flywheel verify: every row comes back with its verdict, IFEval rows with their per-instruction
// lists at the top, a summary per verifier; bad rows and flags are clear errors.
TEST(Cli, VerifyScoresEveryRow) {
  const auto dir = testing::make_temp_dir("verify");
  {
    std::ofstream out(dir + "/rows.jsonl");
    out << R"({"response": "so \\boxed{\\frac{1}{2}}", "ground_truth": "0.5", "dataset": "MATH"})"
        << "\n"
        << R"({"response": "#### 72", "ground_truth": 71, "dataset": "gsm8k"})"
        << "\n"
        << R"({"response": "no commas here", "dataset": "ifeval",)"
        << R"( "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]})"
        << "\n";
  }
  const auto ok = run_flywheel("verify --in " + dir + "/rows.jsonl --out " + dir +
                               "/out.jsonl --success-reward 10 --time-limit 2");
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find("3 rows"), std::string::npos) << ok.output;
  std::vector<nlohmann::json> lines;
  std::ifstream in(dir + "/out.jsonl");
  for (std::string line; std::getline(in, line);)
    lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["correct"], true);
  EXPECT_EQ(lines[0]["score"], 10.0);
  EXPECT_EQ(lines[0]["verifier"], "math");
  EXPECT_EQ(lines[1]["correct"], false);
  EXPECT_EQ(lines[2]["strict"], nlohmann::json::array({true}));
  EXPECT_EQ(lines[2]["loose"], nlohmann::json::array({true}));

  {
    std::ofstream out(dir + "/bad.jsonl");
    out << R"({"response": "x", "dataset": "math"})"
        << "\n"
        << R"({"response": "x", "dataset": "nosuch"})"
        << "\n";
  }
  const auto bad = run_flywheel("verify --in " + dir + "/bad.jsonl --out " + dir + "/o.jsonl");
  EXPECT_EQ(bad.status, 2) << bad.output;
  EXPECT_NE(bad.output.find("bad.jsonl:2"), std::string::npos) << bad.output;
  const auto flag =
      run_flywheel("verify --in " + dir + "/rows.jsonl --out " + dir + "/o.jsonl --time-limit -1");
  EXPECT_EQ(flag.status, 2) << flag.output;
  std::filesystem::remove_all(dir);
}

// flywheel eval ifeval: responses matched to the benchmark rows by prompt text; prompt- and
// instruction-level accuracy and the per-category table; a prompt without a response is an error.
TEST(Cli, EvalIfevalReportsBothLevelsAndCategories) {
  const auto dir = testing::make_temp_dir("eval-ifeval");
  {
    std::ofstream data(dir + "/input_data.jsonl");
    data << R"({"key": 1, "prompt": "Say hi without commas.", "instruction_id_list":)"
         << R"( ["punctuation:no_comma", "startend:quotation"], "kwargs": [{}, {}]})"
         << "\n"
         << R"({"key": 2, "prompt": "Say bye in lowercase.", "instruction_id_list":)"
         << R"( ["punctuation:no_comma"], "kwargs": [{}]})"
         << "\n";
    std::ofstream responses(dir + "/responses.jsonl");
    responses << R"({"prompt": "Say hi without commas.", "response": "hi there"})"
              << "\n"
              << R"({"prompt": "Say bye in lowercase.", "response": "bye, all"})"
              << "\n";
  }
  const auto run = run_flywheel("eval ifeval --responses " + dir + "/responses.jsonl --data " +
                                dir + "/input_data.jsonl");
  ASSERT_EQ(run.status, 0) << run.output;
  // Prompt 1 follows 1 of 2, prompt 2 none: prompt-level 0, instruction-level 1/3.
  EXPECT_NE(run.output.find("prompt-level accuracy                              0.0000"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("instruction-level accuracy                         0.3333"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("punctuation:no_comma"), std::string::npos) << run.output;
  {
    std::ofstream responses(dir + "/short.jsonl");
    responses << R"({"prompt": "Say hi without commas.", "response": "hi"})"
              << "\n";
  }
  const auto missing = run_flywheel("eval ifeval --responses " + dir + "/short.jsonl --data " +
                                    dir + "/input_data.jsonl");
  EXPECT_EQ(missing.status, 2) << missing.output;
  EXPECT_NE(missing.output.find("no response"), std::string::npos) << missing.output;
  std::filesystem::remove_all(dir);
}

// `arena rate`, `arena winrate` and `decontaminate` from files, as a user runs them: three
// players whose order every battle agrees on (a beats b beats c, with some ties), so the
// leaderboard's order, the win rates' direction and the flagged row are known without fitting.
TEST(Cli, ArenaStatisticsAndDecontaminationRunFromFiles) {
  namespace fs = std::filesystem;
  const auto dir = testing::make_temp_dir("arena-cli");
  {
    std::ofstream out(dir + "/battles.jsonl");
    int q = 0;
    for (const auto& [a, b] :
         std::vector<std::pair<std::string, std::string>>{{"a", "b"}, {"b", "c"}, {"a", "c"}}) {
      for (int i = 0; i < 20; ++i, ++q) {
        // Three wins of the stronger player for each tie, and one upset in ten.
        const char* winner = i % 10 == 9 ? "model_b" : (i % 4 == 3 ? "tie" : "model_a");
        out << nlohmann::json{{"model_a", a},
                              {"model_b", b},
                              {"winner", winner},
                              {"question_id", q},
                              {"style",
                               {{"len_a", 100 + i},
                                {"len_b", 90 + i},
                                {"header_a", 0},
                                {"header_b", 0},
                                {"list_a", i % 3},
                                {"list_b", 0},
                                {"bold_a", 0},
                                {"bold_b", 1}}}}
                   .dump()
            << "\n";
      }
    }
  }
  const auto rate = run_flywheel("arena rate --battles " + dir + "/battles.jsonl --bootstrap 20 " +
                                 "--json " + dir + "/ratings.json --plot " + dir + "/ratings.png");
  ASSERT_EQ(rate.status, 0) << rate.output;
  std::ifstream in(dir + "/ratings.json");
  const auto board = nlohmann::json::parse(in);
  ASSERT_EQ(board["players"].size(), 3u);
  EXPECT_EQ(board["players"][0]["name"], "a");
  EXPECT_EQ(board["players"][2]["name"], "c");
  for (const auto& p : board["players"]) {
    EXPECT_LE(p["lower"].get<double>(), p["rating"].get<double>());
    EXPECT_GE(p["upper"].get<double>(), p["rating"].get<double>());
  }
  std::ifstream png(dir + "/ratings.png", std::ios::binary);
  std::string magic(8, '\0');
  png.read(magic.data(), 8);
  EXPECT_EQ(magic, "\x89PNG\r\n\x1a\n") << "--plot wrote no PNG";

  const auto winrate = run_flywheel("arena winrate --battles " + dir +
                                    "/battles.jsonl --baseline c --length-controlled --json");
  ASSERT_EQ(winrate.status, 0) << winrate.output;
  EXPECT_NE(winrate.output.find("length_controlled"), std::string::npos) << winrate.output;

  {
    std::ofstream bad(dir + "/bad.jsonl");
    bad << R"({"model_a": "a", "model_b": "b", "winner": "model_a"})"
        << "\n"
        << R"({"model_a": "a", "model_b": "b", "winner": "nobody"})"
        << "\n";
  }
  const auto refused = run_flywheel("arena rate --battles " + dir + "/bad.jsonl");
  EXPECT_EQ(refused.status, 2) << refused.output;
  EXPECT_NE(refused.output.find("bad.jsonl:2"), std::string::npos) << refused.output;

  {
    std::ofstream train(dir + "/train.jsonl"), eval(dir + "/eval.jsonl");
    const std::string question =
        "what is the sum of the first ten prime numbers and how would you check it by hand";
    train << nlohmann::json{{"prompt", "tell me a story about a dog"}}.dump() << "\n"
          << nlohmann::json{{"prompt", "please answer: " + question}}.dump() << "\n"
          << nlohmann::json{{"prompt", "name three colours"}}.dump() << "\n";
    eval << nlohmann::json{{"prompt", question}}.dump() << "\n";
  }
  const auto clean = run_flywheel("decontaminate --train " + dir + "/train.jsonl --eval " + dir +
                                  "/eval.jsonl --out " + dir + "/clean.jsonl");
  ASSERT_EQ(clean.status, 0) << clean.output;
  std::ifstream kept(dir + "/clean.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(kept, line);)
    lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u) << clean.output;
  EXPECT_NE(lines[0].find("dog"), std::string::npos);
  EXPECT_NE(lines[1].find("colours"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
