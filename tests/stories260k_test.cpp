// End to end on a real pretrained model: stories260K (llama2.c's tinyllamas) loaded from
// Hugging Face format, tokenized with its SentencePiece model, decoded greedily. The expected
// text equals llama2.c's own `run` output for this model.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "rollout/engine.h"
#include "tests/fixtures.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/text/tokenizer.h"

namespace flywheel {
namespace {

std::string stories_dir() {
  return testing::models_dir() + "/stories260K";
}

TEST(Stories260K, GreedyDecodingMatchesLlama2c) {
  FLYWHEEL_REQUIRE_PATH(stories_dir());
  std::ifstream in(stories_dir() + "/expected_greedy.json");
  const auto expected = nlohmann::json::parse(in);
  const auto want_ids = expected["greedy_ids"].get<std::vector<int64_t>>();

  auto tokenizer = Tokenizer::from_dir(stories_dir());
  const auto prompt = tokenizer.encode(expected["prompt"].get<std::string>(), /*add_bos=*/true);
  ASSERT_EQ(prompt, expected["prompt_ids"].get<std::vector<int64_t>>());

  auto model = load_causal_lm(stories_dir());
  Engine engine(model, {}, &tokenizer);
  Request r;
  r.prompt = prompt;
  r.sampling.temperature = 0;  // greedy
  r.max_new_tokens = static_cast<int64_t>(want_ids.size());
  const auto got = engine.generate({r})[0][0].token_ids;
  EXPECT_EQ(got, want_ids);

  std::vector<int64_t> all = prompt;
  all.insert(all.end(), got.begin(), got.end());
  EXPECT_EQ(tokenizer.decode(all), expected["greedy_text"].get<std::string>());
}

}  // namespace
}  // namespace flywheel
