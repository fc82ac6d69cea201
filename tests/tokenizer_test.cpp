#include "trainer/text/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "tests/fixtures.h"
#include "trainer/core/error.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;
using Spans = std::vector<std::pair<size_t, size_t>>;

std::string stories_dir() {
  return flywheel::testing::models_dir() + "/stories260K";
}
std::string stories_model() {
  return stories_dir() + "/tokenizer.model";
}
std::string mistral_model() {
  return flywheel::testing::shared_dir() + "/tokenizers/mistral-v0.3/tokenizer.model";
}

// A model directory holding a link to stories260K's tokenizer.model plus the given config
// files (an empty string leaves a file out); removed with the object.
struct ModelDir {
  ModelDir(const std::string& tokenizer_config, const std::string& config)
      : path(flywheel::testing::make_temp_dir("tokenizer")) {
    fs::create_symlink(stories_model(), path + "/tokenizer.model");
    if (!tokenizer_config.empty())
      std::ofstream(path + "/tokenizer_config.json") << tokenizer_config;
    if (!config.empty()) std::ofstream(path + "/config.json") << config;
  }
  ~ModelDir() { fs::remove_all(path); }
  std::string path;
};

using testing::expect_user_error;

TEST(Tokenizer, EncodesOnceUponATimeLikeLlama2c) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  const Tokenizer tok = Tokenizer::from_file(stories_model());
  // The prompt ids of tests/data/stories260K/expected_greedy.json.
  EXPECT_EQ(tok.encode("Once upon a time", /*add_bos=*/true),
            (std::vector<int64_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tok.encode("Once upon a time"), (std::vector<int64_t>{403, 407, 261, 378}));
  EXPECT_EQ(tok.vocab_size(), 512);
}

TEST(Tokenizer, DecodeInvertsEncode) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  const Tokenizer tok = Tokenizer::from_file(stories_model());
  for (const std::string text :
       {"Once upon a time", "The cat sat on the mat.", "Lily said: \"Hi!\"\nTom smiled.",
        "two  spaces", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"}) {
    EXPECT_EQ(tok.decode(tok.encode(text)), text);
    EXPECT_EQ(tok.decode(tok.encode(text, /*add_bos=*/true)), text);
  }
}

TEST(Tokenizer, DecodeSkipsSpecialIds) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  const Tokenizer tok = Tokenizer::from_file(stories_model());
  EXPECT_EQ(tok.decode({1, 403, 407, 2}), "Once upon");
  EXPECT_EQ(tok.decode({}), "");
  EXPECT_EQ(tok.decode({403, 512}), tok.decode({403}));  // no text past the vocabulary
  expect_user_error([&] { tok.decode({403, -1}); }, {"-1"});
}

TEST(Tokenizer, DefaultsComeFromTheModel) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  const Tokenizer tok = Tokenizer::from_file(stories_model());
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.pad_id(), 2);  // the model has no pad piece, so pad falls back to eos
  EXPECT_EQ(tok.bos_token(), "<s>");
  EXPECT_EQ(tok.eos_token(), "</s>");
  EXPECT_EQ(tok.id_to_piece(403), "\xe2\x96\x81Once");  // "▁Once"
}

TEST(Tokenizer, FromDirReadsConfigJson) {
  FLYWHEEL_REQUIRE_PATH(stories_dir());
  const Tokenizer tok = Tokenizer::from_dir(stories_dir());
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.bos_token(), "<s>");
  EXPECT_EQ(tok.eos_token(), "</s>");
}

TEST(Tokenizer, SplitsSpecialLiteralsOut) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  const Tokenizer tok = Tokenizer::from_file(stories_model());
  const Encoding e = tok.encode_with_spans("Hello</s>world");
  // "Hello" -> ▁He ll o; "</s>" -> eos; "world" is its own chunk, so it gets the dummy prefix:
  // ▁w or ld (the ▁ covers no input byte).
  EXPECT_EQ(e.ids, (std::vector<int64_t>{346, 306, 414, 2, 263, 304, 341}));
  EXPECT_EQ(e.spans, (Spans{{0, 2}, {2, 4}, {4, 5}, {5, 9}, {9, 10}, {10, 12}, {12, 14}}));
  EXPECT_EQ(tok.encode("Hello</s>world"), e.ids);
  EXPECT_EQ(tok.encode("<s></s>"), (std::vector<int64_t>{1, 2}));
  // "<unk>" is not split out: it stays text.
  EXPECT_EQ(tok.encode("<unk>"), (std::vector<int64_t>{410, 504, 379, 433, 505}));
}

TEST(Tokenizer, LongestLiteralWins) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  Tokenizer tok = Tokenizer::from_file(stories_model());
  tok.set_pad(504);  // the ordinary piece "<" becomes a special literal, a prefix of "<s>"
  EXPECT_EQ(tok.id_to_piece(504), "<");
  const Encoding e = tok.encode_with_spans("<s>a<b");
  // "<s>" beats "<"; then "a", "<" (pad), "b", each chunk with its dummy prefix: ▁a, ▁b.
  EXPECT_EQ(e.ids, (std::vector<int64_t>{1, 261, 504, 268}));
  EXPECT_EQ(e.spans, (Spans{{0, 3}, {3, 4}, {4, 5}, {5, 6}}));
  // The dummy prefix of the chunk after a special literal decodes as a space.
  EXPECT_EQ(tok.decode(e.ids), "a b");
}

TEST(Tokenizer, SettersAreRangeChecked) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  Tokenizer tok = Tokenizer::from_file(stories_model());
  expect_user_error([&] { tok.set_bos(-1); }, {"bos", "-1"});
  expect_user_error([&] { tok.set_eos(512); }, {"eos", "512"});
  expect_user_error([&] { tok.set_pad(1000); }, {"pad", "1000"});
  expect_user_error([&] { tok.id_to_piece(512); }, {"512"});
  tok.set_eos(1);
  EXPECT_EQ(tok.eos_token(), "<s>");
  tok.set_bos(2);
  EXPECT_EQ(tok.bos_token(), "</s>");
  EXPECT_EQ(tok.encode("x", /*add_bos=*/true).front(), 2);
}

TEST(Tokenizer, TokenizerConfigNamesTheTokensAndConfigJsonTheStops) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  // tokenizer_config names the tokens (string or AddedToken object), as for a Hugging Face
  // tokenizer; config.json's ids leave them alone and say where generation stops.
  const ModelDir dir(R"({"bos_token": {"content": "</s>", "special": true},
                         "eos_token": "<s>", "pad_token": "<unk>"})",
                     R"({"eos_token_id": [2, 1], "pad_token_id": null})");
  const Tokenizer tok = Tokenizer::from_dir(dir.path);
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.bos_token(), "</s>");
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.stop_ids(), (std::vector<int64_t>{2, 1}));
}

TEST(Tokenizer, RejectsBadTokenizerConfig) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  {
    const ModelDir dir(R"({"pad_token": "<pad>"})", "");
    expect_user_error([&] { Tokenizer::from_dir(dir.path); },
                      {"tokenizer_config.json", "pad_token", "<pad>"});
  }
  {
    const ModelDir dir(R"({"eos_token": 2})", "");
    expect_user_error([&] { Tokenizer::from_dir(dir.path); },
                      {"tokenizer_config.json", "eos_token"});
  }
  {
    const ModelDir dir(R"({"eos_token": )", "");
    expect_user_error([&] { Tokenizer::from_dir(dir.path); },
                      {"tokenizer_config.json", "invalid JSON"});
  }
}

TEST(Tokenizer, RejectsBadConfigJson) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  {
    const ModelDir dir("", R"({"eos_token_id": 512})");
    expect_user_error([&] { Tokenizer::from_dir(dir.path); }, {"config.json", "eos_token_id"});
  }
  {
    // Only eos_token_id is read; the other ids, whatever they hold, are not Flywheel's concern.
    const ModelDir dir("", R"({"bos_token_id": [1], "pad_token_id": -1})");
    EXPECT_EQ(Tokenizer::from_dir(dir.path).bos_id(), 1);
  }
  {
    const ModelDir dir("", R"({"eos_token_id": []})");
    expect_user_error([&] { Tokenizer::from_dir(dir.path); }, {"config.json", "eos_token_id"});
  }
}

TEST(Tokenizer, RejectsMissingOrInvalidModel) {
  expect_user_error([] { Tokenizer::from_file("/nonexistent/tokenizer.model"); },
                    {"/nonexistent/tokenizer.model"});
  const std::string empty = flywheel::testing::make_temp_dir("tokenizer-empty");
  expect_user_error([&] { Tokenizer::from_dir(empty); }, {empty + "/tokenizer.model"});
  const std::string not_a_model = empty + "/tokenizer.model";
  std::ofstream(not_a_model) << "not a sentencepiece model";
  expect_user_error([&] { Tokenizer::from_file(not_a_model); }, {not_a_model});
  fs::remove_all(empty);
}

TEST(Tokenizer, MistralControlPiecesAreSplitOut) {
  FLYWHEEL_REQUIRE_PATH(mistral_model());
  const Tokenizer tok = Tokenizer::from_file(mistral_model());
  EXPECT_EQ(tok.vocab_size(), 32768);
  EXPECT_EQ(tok.id_to_piece(3), "[INST]");
  EXPECT_EQ(tok.id_to_piece(4), "[/INST]");
  const Encoding e = tok.encode_with_spans("[INST] hi [/INST]");
  // [INST], then " hi " as its own chunk: SentencePiece's dummy prefix adds a ▁ to the leading
  // space, and "▁▁" is not a piece, so it reads ▁ ▁hi ▁; then [/INST].
  EXPECT_EQ(e.ids, (std::vector<int64_t>{3, 29473, 12782, 29473, 4}));
  EXPECT_EQ(e.spans, (Spans{{0, 6}, {6, 6}, {6, 9}, {9, 10}, {10, 17}}));
  EXPECT_EQ(tok.encode("[TOOL_CALLS][control_8]"), (std::vector<int64_t>{5, 10}));
  // Decoding drops only the first piece's leading space, here the dummy prefix's.
  EXPECT_EQ(tok.decode(e.ids), " hi ");
}

}  // namespace
}  // namespace flywheel
