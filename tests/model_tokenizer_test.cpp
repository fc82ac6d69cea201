// Real models' tokenizers behind the one Tokenizer (trainer/text/tokenizer.h): tokenizer.json
// model directories with their special tokens and stop ids, spans, streaming decode, the models'
// own chat templates against Hugging Face's renderings (../shared/fixtures/tokenizers/
// chat_cases.jsonl: text and ids), assistant masks from prefix rendering, and the
// `flywheel tokenize` / `flywheel template` commands. Expected figures come from the fixture
// files and the tokenizer configs, never from constants.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/fixtures.h"
#include "tests/run_binary.h"
#include "trainer/text/chat_template.h"
#include "trainer/text/decode_stream.h"
#include "trainer/text/model_chat_template.h"
#include "trainer/text/tokenizer.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

std::string tokenizer_dir(const std::string& name) {
  return testing::shared_dir() + "/tokenizers/" + name;
}

std::string fixture(const std::string& file) {
  return testing::shared_dir() + "/fixtures/tokenizers/" + file;
}

std::vector<ordered_json> read_lines(const std::string& path) {
  std::vector<ordered_json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(ordered_json::parse(line));
  return out;
}

json tokenizer_config(const std::string& name) {
  std::ifstream in(tokenizer_dir(name) + "/tokenizer_config.json");
  return json::parse(in);
}

const Tokenizer& shared_tokenizer(const std::string& name) {
  static std::map<std::string, Tokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, Tokenizer::from_dir(tokenizer_dir(name))).first;
  return it->second;
}

// A temporary directory holding links to a shared tokenizer's files plus extra files.
struct TokenizerDir {
  TokenizerDir(const std::string& name, const std::map<std::string, std::string>& files)
      : path(testing::make_temp_dir("model-tokenizer")) {
    for (const auto& entry : fs::directory_iterator(tokenizer_dir(name)))
      fs::create_symlink(entry.path(), path + "/" + entry.path().filename().string());
    for (const auto& [file, text] : files)
      std::ofstream(path + "/" + file) << text;
  }
  ~TokenizerDir() { fs::remove_all(path); }
  std::string path;
};

TEST(ModelTokenizer, TokenizerJsonDirectoriesTakeTheirSpecialTokensFromTheConfig) {
  for (const std::string name : {"llama3", "qwen3"}) {
    FLYWHEEL_REQUIRE_PATH(tokenizer_dir(name));
    const Tokenizer& tok = shared_tokenizer(name);
    const json config = tokenizer_config(name);
    EXPECT_STREQ(tok.backend(), "tokenizer.json");
    EXPECT_EQ(tok.eos_token(), config["eos_token"].get<std::string>()) << name;
    EXPECT_EQ(tok.id_to_piece(tok.eos_id()), config["eos_token"].get<std::string>()) << name;
    if (config["bos_token"].is_null()) {
      EXPECT_EQ(tok.bos_id(), -1) << name;
    } else {
      EXPECT_EQ(tok.id_to_piece(tok.bos_id()), config["bos_token"].get<std::string>()) << name;
    }
    const std::string pad = config.value("pad_token", json()).is_string()
                                ? config["pad_token"].get<std::string>()
                                : config["eos_token"].get<std::string>();
    EXPECT_EQ(tok.id_to_piece(tok.pad_id()), pad) << name;
    EXPECT_EQ(tok.chat_template(), config["chat_template"].get<std::string>()) << name;
    EXPECT_EQ(tok.stop_ids(), std::vector<int64_t>{tok.eos_id()}) << name;
    EXPECT_TRUE(tok.is_special(tok.eos_id()));
  }
}

TEST(ModelTokenizer, GenerationConfigStopIdsWinOverConfigJson) {
  FLYWHEEL_REQUIRE_PATH(tokenizer_dir("llama3"));
  const Tokenizer& plain = shared_tokenizer("llama3");
  const int64_t end_of_text = plain.piece_to_id("<|end_of_text|>");
  ASSERT_GE(end_of_text, 0);
  const std::string list =
      "[" + std::to_string(end_of_text) + ", " + std::to_string(plain.eos_id()) + "]";
  {
    const TokenizerDir dir("llama3", {{"config.json", "{\"eos_token_id\": " + list + "}"}});
    const Tokenizer tok = Tokenizer::from_dir(dir.path);
    EXPECT_EQ(tok.eos_id(), plain.eos_id());  // config.json leaves the tokenizer's eos alone
    EXPECT_EQ(tok.stop_ids(), (std::vector<int64_t>{end_of_text, plain.eos_id()}));
  }
  {
    const TokenizerDir dir("llama3", {{"config.json", "{\"eos_token_id\": " + list + "}"},
                                      {"generation_config.json",
                                       "{\"eos_token_id\": " + std::to_string(end_of_text) + "}"}});
    EXPECT_EQ(Tokenizer::from_dir(dir.path).stop_ids(), std::vector<int64_t>{end_of_text});
  }
  {
    const TokenizerDir dir("llama3", {{"generation_config.json", "{\"eos_token_id\": [1e9]}"}});
    testing::expect_user_error([&] { Tokenizer::from_dir(dir.path); },
                               {"generation_config.json", "eos_token_id"});
  }
  {
    const TokenizerDir dir("llama3", {{"chat_template.jinja", "{{ messages | length }}"}});
    EXPECT_EQ(Tokenizer::from_dir(dir.path).chat_template(), "{{ messages | length }}");
  }
}

TEST(ModelTokenizer, EncodingsEqualHuggingFacesAndSpansCoverTheText) {
  FLYWHEEL_REQUIRE_PATH(fixture("encode_cases.jsonl"));
  int cases = 0;
  for (const auto& c : read_lines(fixture("encode_cases.jsonl"))) {
    const Tokenizer& tok = shared_tokenizer(c["tokenizer"]);
    const std::string text = c["text"];
    const auto want = c["ids"].get<std::vector<int64_t>>();
    // add_special_tokens adds the post-processor's bos, which is what add_bos adds.
    const bool special = c["add_special_tokens"];
    EXPECT_EQ(tok.encode(text, special && tok.bos_id() >= 0), want) << text;
    if (special) continue;
    const Encoding e = tok.encode_with_spans(text);
    EXPECT_EQ(e.ids, want);
    ASSERT_EQ(e.spans.size(), e.ids.size());
    // The spans tile the text in order. Where normalization changed the text (NFC of
    // decomposed characters) a token spans the run of characters normalized together, so
    // neighbours may share input bytes; ASCII text, which normalization keeps, tiles exactly.
    const bool ascii = std::all_of(text.begin(), text.end(),
                                   [](char ch) { return static_cast<unsigned char>(ch) < 0x80; });
    size_t at = 0;
    for (const auto& [begin, end] : e.spans) {
      if (ascii) {
        EXPECT_EQ(begin, at) << text;
      } else {
        EXPECT_LE(begin, at) << text;
      }
      EXPECT_LE(begin, end) << text;
      at = std::max(at, end);
    }
    EXPECT_EQ(at, text.size()) << text;
    ++cases;
  }
  EXPECT_GE(cases, 100);
}

TEST(ModelTokenizer, StreamingDecodeNeverSplitsACharacterAndEqualsWholeDecode) {
  FLYWHEEL_REQUIRE_PATH(fixture("encode_cases.jsonl"));
  int cases = 0;
  for (const auto& c : read_lines(fixture("encode_cases.jsonl"))) {
    const Tokenizer& tok = shared_tokenizer(c["tokenizer"]);
    const auto ids = c["ids"].get<std::vector<int64_t>>();
    const bool has_replacement =
        c["decoded"].get<std::string>().find("\xEF\xBF\xBD") != std::string::npos;
    for (const bool keep_special : {false, true}) {
      DecodeStream stream(tok, keep_special);
      std::string streamed;
      for (const int64_t id : ids) {
        const std::string piece = stream.push(id);
        // A chunk never ends inside a character (a lead byte without its continuation).
        if (!has_replacement) {
          EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << c["text"];
        }
        streamed += piece;
      }
      streamed += stream.finish();
      EXPECT_EQ(streamed, tok.decode(ids, keep_special)) << c["text"];
      EXPECT_EQ(streamed, keep_special ? c["decoded"].get<std::string>()
                                       : c["decoded_skip_special"].get<std::string>());
    }
    ++cases;
  }
  EXPECT_GE(cases, 300);
}

TEST(ModelTokenizer, StreamingDecodeOfSentencePieceByteFallback) {
  const std::string mistral = tokenizer_dir("mistral-v0.3") + "/tokenizer.model";
  FLYWHEEL_REQUIRE_PATH(mistral);
  FLYWHEEL_REQUIRE_PATH(fixture("encode_cases.jsonl"));
  const Tokenizer tok = Tokenizer::from_file(mistral);
  for (const auto& c : read_lines(fixture("encode_cases.jsonl"))) {
    const auto ids = tok.encode(c["text"], /*add_bos=*/true);
    DecodeStream stream(tok);
    std::string streamed;
    for (const int64_t id : ids)
      streamed += stream.push(id);
    streamed += stream.finish();
    EXPECT_EQ(streamed, tok.decode(ids)) << c["text"];
  }
}

TEST(ModelTokenizer, SentencePieceStyleTokenizerJsonSpansAndStreams) {
  const std::string dir = testing::fixtures_dir() + "/tokenizers";
  FLYWHEEL_REQUIRE_PATH(dir + "/mistral_json_cases.jsonl");
  const Tokenizer tok = Tokenizer::from_file(dir + "/mistral-v0.3-json/tokenizer.json");
  EXPECT_EQ(tok.bos_token(), "<s>");  // the post-processor's prefix token
  int cases = 0;
  for (const auto& c : read_lines(dir + "/mistral_json_cases.jsonl")) {
    if (c["add_special_tokens"] || c["tokenizer"] != "mistral-v0.3-json") continue;
    const std::string text = c["text"];
    const Encoding e = tok.encode_with_spans(text);
    EXPECT_EQ(e.ids, c["ids"].get<std::vector<int64_t>>()) << text;
    // Marks stand for spaces and byte pieces for bytes, so the spans tile the text (a
    // prepended mark covers nothing; a literal U+2581 in the input is the one exception).
    size_t at = 0;
    for (const auto& [begin, end] : e.spans) {
      EXPECT_LE(begin, at) << text;
      at = std::max(at, end);
    }
    if (text.find("\xE2\x96\x81") == std::string::npos) {
      EXPECT_EQ(at, text.size()) << text;
    }
    DecodeStream stream(tok, /*keep_special=*/true);
    std::string streamed;
    for (const int64_t id : e.ids)
      streamed += stream.push(id);
    EXPECT_EQ(streamed + stream.finish(), c["decoded"].get<std::string>()) << text;
    ++cases;
  }
  EXPECT_GE(cases, 80);
}

// The context a chat case renders with, as apply_chat_template builds it.
ordered_json case_kwargs(const ordered_json& c) {
  ordered_json kwargs = ordered_json::object();
  for (const auto& [key, value] : c.items()) {
    if (key != "tokenizer" && key != "template_source" && key != "messages" &&
        key != "add_generation_prompt" && key != "rendered_text" && key != "ids")
      kwargs[key] = value;
  }
  return kwargs;
}

TEST(ModelTokenizer, ChatTemplatesRenderEveryGoldenCaseExactly) {
  FLYWHEEL_REQUIRE_PATH(fixture("chat_cases.jsonl"));
  int cases = 0;
  for (const auto& c : read_lines(fixture("chat_cases.jsonl"))) {
    const Tokenizer& tok = shared_tokenizer(c["tokenizer"]);
    const ordered_json kwargs = case_kwargs(c);
    const bool generation = c["add_generation_prompt"];
    EXPECT_EQ(render_model_template(tok, c["messages"], generation, kwargs),
              c["rendered_text"].get<std::string>());
    // Text and ids without masks: every assistant message is context.
    ChatRenderOptions options;
    options.add_generation_prompt = generation;
    options.template_kwargs = kwargs;
    options.first_trained = c["messages"].size();
    const RenderedChat r = render_model_chat(c["messages"], tok, options);
    EXPECT_EQ(r.text, c["rendered_text"].get<std::string>());
    EXPECT_EQ(r.ids, c["ids"].get<std::vector<int64_t>>()) << r.text;
    ++cases;
  }
  EXPECT_GE(cases, 30);
}

// The trained text of each run of the mask, in order.
std::vector<std::string> trained_runs(const RenderedChat& r, const Tokenizer& tok) {
  std::vector<std::string> runs;
  std::vector<int64_t> run;
  for (size_t i = 0; i <= r.ids.size(); ++i) {
    if (i < r.ids.size() && r.assistant_mask[i]) {
      run.push_back(r.ids[i]);
    } else if (!run.empty()) {
      runs.push_back(tok.decode(run, /*keep_special=*/true));
      run.clear();
    }
  }
  return runs;
}

TEST(ModelTokenizer, AssistantMasksFromPrefixRenderingTrainContentAndEndOfTurn) {
  FLYWHEEL_REQUIRE_PATH(fixture("chat_cases.jsonl"));
  int conversations = 0;
  for (const auto& c : read_lines(fixture("chat_cases.jsonl"))) {
    if (c["add_generation_prompt"] || c.contains("tools")) continue;
    const Tokenizer& tok = shared_tokenizer(c["tokenizer"]);
    std::vector<std::string> contents;
    bool reasoning = false;
    for (const auto& m : c["messages"]) {
      if (m["role"] != "assistant") continue;
      contents.push_back(m["content"]);
      reasoning = reasoning || m.contains("reasoning_content");
    }
    if (contents.empty() || reasoning) continue;
    // Qwen3 renders an assistant turn with an empty thought block while it is the last one
    // after the last user message, and without once another user message follows: such a
    // turn has no prefix span, and asking to train it is an error.
    bool user_after_assistant = false, seen_assistant = false;
    for (const auto& m : c["messages"]) {
      user_after_assistant = user_after_assistant || (seen_assistant && m["role"] == "user");
      seen_assistant = seen_assistant || m["role"] == "assistant";
    }
    if (c["tokenizer"] == "qwen3" && user_after_assistant) {
      testing::expect_user_error([&] { render_model_chat(c["messages"], tok); },
                                 {"differently once later messages follow"});
      continue;
    }
    const RenderedChat r = render_model_chat(c["messages"], tok);
    const auto runs = trained_runs(r, tok);
    ASSERT_EQ(runs.size(), contents.size()) << r.text;
    for (size_t i = 0; i < runs.size(); ++i) {
      // Each run is the assistant's content (the template may strip it or move a thought
      // block) and ends with the end-of-turn token, the tokenizer's eos; nothing after it.
      const std::string& content = contents[i];
      const std::string answer = content.substr(
          content.rfind("</think>") == std::string::npos ? 0 : content.rfind("</think>") + 8);
      const std::string tail = answer.substr(answer.find_first_not_of("\n"));
      EXPECT_NE(runs[i].find(tail), std::string::npos) << runs[i];
      ASSERT_GE(runs[i].size(), tok.eos_token().size()) << runs[i];
      EXPECT_EQ(runs[i].substr(runs[i].size() - tok.eos_token().size()), tok.eos_token());
      EXPECT_EQ(runs[i].find("<|start_header_id|>"), std::string::npos) << runs[i];
      EXPECT_EQ(runs[i].find("<|im_start|>"), std::string::npos) << runs[i];
    }
    ++conversations;
  }
  EXPECT_GE(conversations, 6);
}

TEST(ModelTokenizer, TurnsRenderedDifferentlyLaterCannotBeTrained) {
  FLYWHEEL_REQUIRE_PATH(tokenizer_dir("qwen3"));
  // Qwen3 keeps an assistant turn's reasoning only after the last user message: A1's
  // rendering changes once Q2 follows, so A1 has no prefix span; A2 has one.
  const ordered_json messages = ordered_json::parse(R"([
      {"role": "user", "content": "Q1"},
      {"role": "assistant", "content": "A1", "reasoning_content": "R1"},
      {"role": "user", "content": "Q2"},
      {"role": "assistant", "content": "A2", "reasoning_content": "R2"}])");
  const Tokenizer& tok = shared_tokenizer("qwen3");
  testing::expect_user_error([&] { render_model_chat(messages, tok); },
                             {"message 1", "differently once later messages follow"});
  ChatRenderOptions options;
  options.first_trained = 2;
  const auto runs = trained_runs(render_model_chat(messages, tok, options), tok);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0], "<think>\nR2\n</think>\n\nA2" + tok.eos_token());
}

TEST(ModelTokenizer, TokenizeCommandEncodesAndDecodesJsonl) {
  FLYWHEEL_REQUIRE_PATH(fixture("encode_cases.jsonl"));
  FLYWHEEL_REQUIRE_PATH(tokenizer_dir("qwen3"));
  const std::string dir = testing::make_temp_dir("tokenize");
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"})
    fs::create_symlink(tokenizer_dir("qwen3") + "/" + file, dir + "/" + file);
  std::vector<ordered_json> cases;
  {
    std::ofstream in(dir + "/in.jsonl");
    for (const auto& c : read_lines(fixture("encode_cases.jsonl"))) {
      if (c["tokenizer"] != "qwen3" || c["add_special_tokens"]) continue;
      cases.push_back(c);
      in << ordered_json{{"id", cases.size()}, {"text", c["text"]}}.dump() << "\n";
    }
  }
  const auto encoded = testing::run_flywheel("tokenize --model " + dir + " --in " + dir +
                                             "/in.jsonl --out " + dir + "/ids.jsonl --threads 2");
  ASSERT_EQ(encoded.status, 0) << encoded.output;
  const auto rows = read_lines(dir + "/ids.jsonl");
  ASSERT_EQ(rows.size(), cases.size());
  const Tokenizer& tok = shared_tokenizer("qwen3");
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].begin().key(), "id");  // the input's keys first, in their order
    EXPECT_EQ(rows[i]["ids"], cases[i]["ids"]);
    const auto& ids = rows[i]["ids"];
    ASSERT_EQ(rows[i]["tokens"].size(), ids.size());
    for (size_t k = 0; k < ids.size(); ++k)
      EXPECT_EQ(rows[i]["tokens"][k].get<std::string>(), tok.id_to_piece(ids[k].get<int64_t>()));
  }
  const auto decoded = testing::run_flywheel("tokenize --decode --model " + dir + " --in " + dir +
                                             "/ids.jsonl --out " + dir + "/text.jsonl");
  ASSERT_EQ(decoded.status, 0) << decoded.output;
  const auto texts = read_lines(dir + "/text.jsonl");
  ASSERT_EQ(texts.size(), cases.size());
  for (size_t i = 0; i < texts.size(); ++i)
    EXPECT_EQ(texts[i]["text"], cases[i]["decoded"]);

  std::ofstream(dir + "/bad.jsonl") << "{\"text\": \"fine\"}\n{\"txt\": \"typo\"}\n";
  const auto bad = testing::run_flywheel("tokenize --model " + dir + " --in " + dir +
                                         "/bad.jsonl --out " + dir + "/bad-out.jsonl");
  EXPECT_EQ(bad.status, 2) << bad.output;
  EXPECT_NE(bad.output.find("bad.jsonl:2: key 'text'"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(dir + "/bad-out.jsonl"));
  fs::remove_all(dir);
}

TEST(ModelTokenizer, TemplateCommandShowsTheTrainedTokens) {
  FLYWHEEL_REQUIRE_PATH(fixture("chat_cases.jsonl"));
  const std::string dir = testing::make_temp_dir("template");
  int checked = 0;
  for (const auto& c : read_lines(fixture("chat_cases.jsonl"))) {
    if (c["add_generation_prompt"] || c["messages"].back()["role"] != "assistant") continue;
    ordered_json conversation = case_kwargs(c);
    conversation["messages"] = c["messages"];
    std::ofstream(dir + "/conversation.json") << conversation.dump();
    const std::string args = "template --model " + tokenizer_dir(c["tokenizer"]) + " --messages " +
                             dir + "/conversation.json";
    const auto json_run =
        testing::run_command(std::string(FLYWHEEL_BINARY) + " " + args + " --json 2>/dev/null");
    // A conversation the library cannot mask (Qwen3's earlier turns, see
    // TurnsRenderedDifferentlyLaterCannotBeTrained) is a user error with the same message.
    ChatRenderOptions options;
    options.template_kwargs = case_kwargs(c);
    try {
      render_model_chat(c["messages"], shared_tokenizer(c["tokenizer"]), options);
    } catch (const UserError& e) {
      EXPECT_EQ(json_run.status, 2);
      EXPECT_NE(json_run.output.find(e.what()), std::string::npos) << json_run.output;
      continue;
    }
    ASSERT_EQ(json_run.status, 0) << json_run.output;
    const auto out = ordered_json::parse(json_run.output);
    EXPECT_EQ(out["text"], c["rendered_text"]);
    EXPECT_EQ(out["ids"], c["ids"]);
    ASSERT_EQ(out["mask"].size(), out["ids"].size());
    // The last learned token is the final end-of-turn token (the eos; Qwen's "\n" after it is not).
    size_t last = out["mask"].size();
    while (last > 0 && out["mask"][last - 1] == 0)
      --last;
    ASSERT_GT(last, 0u);
    EXPECT_EQ(out["ids"][last - 1], shared_tokenizer(c["tokenizer"]).eos_id());
    const auto shown = testing::run_flywheel(args);
    ASSERT_EQ(shown.status, 0) << shown.output;
    EXPECT_NE(shown.output.find("]]"), std::string::npos) << shown.output;
    EXPECT_NE(shown.output.find("trained"), std::string::npos) << shown.output;
    ++checked;
  }
  EXPECT_GE(checked, 5);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
