// Hugging Face tokenizer.json (trainer/text/hf_tokenizer.h) against the golden encodings of
// Hugging Face's own Rust library: every case of ../shared/fixtures/tokenizers/encode_cases.jsonl
// (Llama 3 and Qwen3; emoji, CJK, combining marks, digit and whitespace runs, contractions,
// special tokens inside text), ids and both decodings; and unsupported components as errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/fixtures.h"
#include "trainer/core/error.h"
#include "trainer/text/hf_tokenizer.h"

namespace flywheel {
namespace {

std::string cases_path() {
  return testing::shared_dir() + "/fixtures/tokenizers/encode_cases.jsonl";
}

std::string tokenizer_path(const std::string& name) {
  return testing::shared_dir() + "/tokenizers/" + name + "/tokenizer.json";
}

// Every case of a golden file: ids, decoded and decoded without special tokens.
void expect_golden_cases(const std::string& cases_file,
                         const std::function<std::string(const std::string&)>& tokenizer_file,
                         int min_cases) {
  std::map<std::string, HfTokenizer> tokenizers;
  std::ifstream in(cases_file);
  int cases = 0, failures = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto c = nlohmann::json::parse(line);
    const std::string name = c["tokenizer"];
    auto it = tokenizers.find(name);
    if (it == tokenizers.end())
      it = tokenizers.emplace(name, HfTokenizer::from_file(tokenizer_file(name))).first;
    const HfTokenizer& t = it->second;
    const std::string text = c["text"];
    const bool special = c["add_special_tokens"];
    const auto ids = t.encode(text, special);
    const auto want = c["ids"].get<std::vector<int64_t>>();
    ++cases;
    const bool ok = ids == want && t.decode(want, false) == c["decoded"].get<std::string>() &&
                    t.decode(want, true) == c["decoded_skip_special"].get<std::string>();
    if (!ok && ++failures <= 5) {
      ADD_FAILURE() << name << " case " << cases << " " << nlohmann::json(text).dump()
                    << "\n  ids  " << nlohmann::json(ids).dump() << "\n  want "
                    << nlohmann::json(want).dump() << "\n  decoded "
                    << nlohmann::json(t.decode(want, false)).dump() << " want "
                    << c["decoded"].dump() << "\n  skip special "
                    << nlohmann::json(t.decode(want, true)).dump() << " want "
                    << c["decoded_skip_special"].dump();
    }
  }
  EXPECT_EQ(failures, 0) << "of " << cases << " cases";
  EXPECT_GE(cases, min_cases);
}

TEST(HfTokenizer, EveryGoldenCaseEncodesAndDecodesExactly) {
  FLYWHEEL_REQUIRE_PATH(cases_path());
  expect_golden_cases(cases_path(), tokenizer_path, 300);
}

// SentencePiece-style tokenizer.json (Metaspace, byte_fallback BPE, the Replace / ByteFallback /
// Fuse / Strip decoders): Mistral v0.3's, as transformers converts it, against Hugging Face's
// Rust library (tests/data/tokenizers, made by scripts/make-sentencepiece-json-fixture.sh).
TEST(HfTokenizer, SentencePieceStyleFilesMatchHuggingFace) {
  const std::string dir = testing::fixtures_dir() + "/tokenizers";
  FLYWHEEL_REQUIRE_PATH(dir + "/mistral_json_cases.jsonl");
  expect_golden_cases(
      dir + "/mistral_json_cases.jsonl",
      [&](const std::string& name) { return dir + "/" + name + "/tokenizer.json"; }, 300);
}

TEST(HfTokenizer, UnsupportedComponentsAreNamed) {
  FLYWHEEL_REQUIRE_PATH(tokenizer_path("qwen3"));
  const auto dir = testing::make_temp_dir("hf-tokenizer");
  std::ifstream in(tokenizer_path("qwen3"));
  auto j = nlohmann::json::parse(in);
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  std::ofstream(dir + "/tokenizer.json") << j.dump();
  testing::expect_user_error([&] { HfTokenizer::from_file(dir + "/tokenizer.json"); },
                             {"tokenizer.json", "pre-tokenizer type 'Whitespace'"});
  std::ofstream(dir + "/broken.json") << "{\"model\": ";
  testing::expect_user_error([&] { HfTokenizer::from_file(dir + "/broken.json"); },
                             {"broken.json", "not a JSON object"});
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
