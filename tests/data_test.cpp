// Training data: JSONL reading, record formats → token sequences, over-long policy, epoch
// plans, collation and packing. Token checks use the stories260K SentencePiece model
// (bos = 1, eos = "</s>" = 2).
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <set>

#include "tests/fixtures.h"
#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "trainer/data/batching.h"
#include "trainer/data/examples.h"
#include "trainer/data/token_cache.h"
#include "trainer/data/token_store.h"
#include "trainer/text/chat_template.h"

namespace flywheel {
namespace {

using nlohmann::json;
using Ids = std::vector<int64_t>;
using Mask = std::vector<uint8_t>;
using Messages = std::vector<ChatMessage>;

// ---- helpers ----

std::string stories_dir() {
  return flywheel::testing::models_dir() + "/stories260K";
}

std::string hh_file() {
  return flywheel::testing::shared_dir() + "/data/hh-rlhf/helpful-base_test.jsonl.gz";
}

// A fresh path for a file named `name` in this process's temp directory (removed at exit).
std::string temp_path(const std::string& name) {
  static const struct Dir {
    std::string path = flywheel::testing::make_temp_dir("data");
    ~Dir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  } dir;
  static int files = 0;
  const std::string subdir = dir.path + "/" + std::to_string(files++);
  std::filesystem::create_directory(subdir);
  return subdir + "/" + name;
}

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string write_record(const json& record) {
  return write_file("record.jsonl", record.dump() + "\n");
}

json to_json(const Messages& messages) {
  json out = json::array();
  for (const ChatMessage& m : messages)
    out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

std::string write_gz(const std::string& name, const std::string& text) {
  const std::string path = temp_path(name);
  gzFile f = gzopen(path.c_str(), "wb");
  EXPECT_NE(f, nullptr);
  EXPECT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())),
            static_cast<int>(text.size()));
  gzclose(f);
  return path;
}

std::vector<JsonlRecord> read_all(const std::string& path) {
  JsonlReader reader(path);
  std::vector<JsonlRecord> out;
  JsonlRecord r;
  while (reader.next(&r))
    out.push_back(r);
  return out;
}

using testing::expect_user_error;

Ids concat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const Ids& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

Mask mask_of(std::initializer_list<std::pair<size_t, uint8_t>> runs) {
  Mask out;
  for (const auto& [n, v] : runs)
    out.insert(out.end(), n, v);
  return out;
}

// [begin, end) of every maximal run of trained tokens.
using Runs = std::vector<std::pair<size_t, size_t>>;
Runs trained_runs(const TokenSequence& s) {
  Runs runs;
  for (size_t i = 0; i < s.loss_mask.size(); ++i) {
    if (s.loss_mask[i] == 0) continue;
    if (i == 0 || s.loss_mask[i - 1] == 0) runs.emplace_back(i, i);
    runs.back().second = i + 1;
  }
  return runs;
}

Ids slice(const Ids& ids, size_t begin, size_t end) {
  return Ids(ids.begin() + begin, ids.begin() + end);
}

DataOptions options_with(const std::function<void(DataOptions&)>& edit = {}) {
  DataOptions o;
  o.max_length = 100000;
  if (edit) edit(o);
  return o;
}

// ---- JSONL ----

TEST(Jsonl, ReadsRecordsWithLineNumbersSkippingBlankLines) {
  const std::string text =
      "{\"a\": 1}\n\n   \n{\"b\": [1, 2]}\r\n\t\n{\"c\": \"x\"}";  // no final \n
  for (const std::string& path : {write_file("plain.jsonl", text), write_gz("g.jsonl.gz", text)}) {
    SCOPED_TRACE(path);
    const std::vector<JsonlRecord> records = read_all(path);
    ASSERT_EQ(records.size(), 3u);
    EXPECT_EQ(records[0].line, 1);
    EXPECT_EQ(records[0].value, json({{"a", 1}}));
    EXPECT_EQ(records[1].line, 4);
    EXPECT_EQ(records[1].value, json({{"b", {1, 2}}}));
    EXPECT_EQ(records[2].line, 6);
    EXPECT_EQ(records[2].value, json({{"c", "x"}}));
  }
}

TEST(Jsonl, ReadsLinesLongerThanItsBuffer) {
  // 3 MB lines span many 64 KiB reads; the short line between them must stay intact.
  const std::string big(3'000'000, 'x');
  const std::string text = "{\"t\": \"" + big + "\"}\n{\"n\": 2}\n{\"t\": \"" + big + "y\"}\n";
  for (const std::string& path :
       {write_file("long.jsonl", text), write_gz("long.jsonl.gz", text)}) {
    const std::vector<JsonlRecord> records = read_all(path);
    ASSERT_EQ(records.size(), 3u);
    EXPECT_EQ(records[0].value["t"], big);
    EXPECT_EQ(records[1].value["n"], 2);
    EXPECT_EQ(records[2].value["t"], big + "y");
    EXPECT_EQ(records[2].line, 3);
  }
}

TEST(Jsonl, InvalidJsonNamesFileAndLineAndReadingContinues) {
  const std::string path = write_file("bad.jsonl", "{\"a\": 1}\n\n{\"a\": tru}\n{\"a\": 4}\n");
  JsonlReader reader(path);
  JsonlRecord r;
  ASSERT_TRUE(reader.next(&r));
  try {
    reader.next(&r);
    ADD_FAILURE() << "no JsonlSyntaxError";
  } catch (const JsonlSyntaxError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":3: invalid JSON: column ", 0), 0u) << e.what();
  }
  ASSERT_TRUE(reader.next(&r));
  EXPECT_EQ(r.line, 4);
  EXPECT_EQ(r.value["a"], 4);
  EXPECT_FALSE(reader.next(&r));
}

TEST(Jsonl, MissingTruncatedAndCorruptFilesAreUserErrors) {
  const std::string missing = temp_path("nope.jsonl");
  expect_user_error([&] { JsonlReader reader(missing); },
                    {"cannot open " + missing + ": No such file or directory"});

  std::string text;
  for (int i = 0; i < 2000; ++i)
    text += "{\"i\": " + std::to_string(i) + ", \"pad\": \"" + std::string(i % 97, 'z') + "\"}\n";
  const std::string gz = write_gz("t.jsonl.gz", text);
  std::string bytes;
  {
    std::ifstream in(gz, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string truncated = write_file("truncated.jsonl.gz", bytes.substr(0, bytes.size() / 2));
  expect_user_error([&] { read_all(truncated); }, {"cannot read " + truncated, "truncated"});

  std::string corrupt = bytes;
  for (size_t i = 20; i < 60; ++i)
    corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
  const std::string corrupt_path = write_file("corrupt.jsonl.gz", corrupt);
  expect_user_error([&] { read_all(corrupt_path); }, {"cannot read " + corrupt_path});
}

TEST(Jsonl, ReadsTheHhTestSplit) {
  FLYWHEEL_REQUIRE_PATH(hh_file());
  const std::vector<JsonlRecord> records = read_all(hh_file());
  ASSERT_EQ(records.size(), 2354u);  // `zcat helpful-base_test.jsonl.gz | wc -l`
  EXPECT_TRUE(records.back().value.contains("rejected"));
  EXPECT_EQ(records.back().line, 2354);
}

// ---- malformed records ----

enum class Kind { kSft, kPreference, kRanking };

void load(Kind kind, const std::string& path, const Tokenizer& tok, const DataOptions& options,
          DataStats* stats) {
  switch (kind) {
    case Kind::kSft:
      load_sft_examples(path, tok, options, stats);
      break;
    case Kind::kPreference:
      load_preference_examples(path, tok, options, stats);
      break;
    case Kind::kRanking:
      load_ranking_examples(path, tok, options, stats);
      break;
  }
}

const char* kGoodSft =
    R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]})";
const char* kGoodPreference = R"({"prompt": "Hi", "chosen": " yes", "rejected": " no"})";
const char* kGoodRanking = R"({"prompt": "Hi", "responses": [" a", " b"], "ranking": [1, 0]})";

struct BadRecord {
  const char* name;
  Kind kind;
  std::string line;                   // written as line 3, after two good records
  std::vector<std::string> messages;  // expected after "FILE:3: "
  DataOptions options = options_with();
};

TEST(Examples, MalformedRecordsNameFileLineKeyAndExpectation) {
  FLYWHEEL_REQUIRE_PATH(stories_dir());
  const Tokenizer tok = Tokenizer::from_dir(stories_dir());
  const std::vector<BadRecord> cases = {
      {"invalid JSON", Kind::kSft, "{\"messages\": [}", {"invalid JSON: column "}},
      {"not an object", Kind::kSft, R"(["a", "b"])", {R"(expected a JSON object, got ["a","b"])"}},
      {"wrong role",
       Kind::kSft,
       R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "x"}]})",
       {R"(key 'messages[1].role': expected one of "system", "user", "assistant", got "bot")"}},
      {"missing role",
       Kind::kSft,
       R"({"messages": [{"content": "Hi"}]})",
       {"key 'messages[0].role': expected one of", "got nothing (missing)"}},
      {"content not a string",
       Kind::kSft,
       R"({"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "x"}]})",
       {"key 'messages[0].content': expected a string, got 42"}},
      {"messages not a list",
       Kind::kSft,
       R"({"messages": "Hi"})",
       {"key 'messages': expected a non-empty list of {\"role\", \"content\"} messages, got "
        "\"Hi\""}},
      {"no assistant message",
       Kind::kSft,
       R"({"messages": [{"role": "user", "content": "Hi"}]})",
       {"key 'messages': expected at least one assistant message, got none"}},
      {"missing SFT keys",
       Kind::kSft,
       R"({"text": "Hi", "id": 3})",
       {"expected 'messages' or 'prompt' and 'completion' keys, got keys 'id', 'text'"}},
      {"prompt string, completion list",
       Kind::kSft,
       R"({"prompt": "Hi", "completion": [{"role": "assistant", "content": "x"}]})",
       {"key 'completion': expected a string, as 'prompt' is one, got [{"}},
      {"missing preference keys",
       Kind::kPreference,
       R"({"prompt": "Hi", "chosen": "x"})",
       {"expected 'chosen' and 'rejected' keys (and optionally 'prompt'), got keys 'chosen', "
        "'prompt'"}},
      {"preference string without prompt",
       Kind::kPreference,
       R"({"chosen": "Sure.", "rejected": "No."})",
       {"key 'chosen': expected Anthropic HH text starting with \"\\n\\nHuman:\""}},
      {"HH text without Assistant",
       Kind::kPreference,
       R"({"chosen": "\n\nHuman: Hi there", "rejected": "\n\nHuman: Hi\n\nAssistant: Yo"})",
       {"key 'chosen': expected Anthropic HH text with an \"\\n\\nAssistant:\" turn, got none"}},
      {"conversation ending with the user",
       Kind::kPreference,
       R"({"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],)"
       R"( "rejected": [{"role": "user", "content": "Hi"}]})",
       {"key 'rejected': expected a conversation ending with an assistant message, got one "
        "ending with a user message"}},
      {"ranking not a permutation",
       Kind::kRanking,
       R"({"prompt": "Hi", "responses": [" a", " b", " c"], "ranking": [0, 0, 1]})",
       {"key 'ranking': expected a permutation of 0..2 listing the responses from best to worst, "
        "got [0,0,1]"}},
      {"ranking too short",
       Kind::kRanking,
       R"({"prompt": "Hi", "responses": [" a", " b", " c"], "ranking": [2, 0]})",
       {"key 'ranking': expected a permutation of 0..2", "got [2,0]"}},
      {"one response",
       Kind::kRanking,
       R"({"prompt": "Hi", "responses": [" a"], "ranking": [0]})",
       {"key 'responses': expected a list of at least 2 responses, got [\" a\"]"}},
      {"response list with string prompt",
       Kind::kRanking,
       R"({"prompt": "Hi", "responses": [" a", []], "ranking": [0, 1]})",
       {"key 'responses[1]': expected a string, as 'prompt' is one, got []"}},
      {"missing ranking keys",
       Kind::kRanking,
       R"({"prompt": "Hi", "responses": [" a", " b"]})",
       {"expected 'prompt', 'responses' and 'ranking' keys, got keys 'prompt', 'responses'"}},
      {"llama2 role order",
       Kind::kSft,
       R"({"messages": [{"role": "assistant", "content": "Hi"}]})",
       {"llama2 chat template: message 0 has role 'assistant', expected 'user'"},
       options_with([](DataOptions& o) { o.chat_template = "llama2"; })},
  };
  for (const BadRecord& c : cases) {
    SCOPED_TRACE(c.name);
    const char* good = c.kind == Kind::kSft          ? kGoodSft
                       : c.kind == Kind::kPreference ? kGoodPreference
                                                     : kGoodRanking;
    const std::string path =
        write_file("bad.jsonl", std::string(good) + "\n" + good + "\n" + c.line + "\n" + good);
    std::vector<std::string> needles = c.messages;
    needles.front() = path + ":3: " + needles.front();
    expect_user_error([&] { load(c.kind, path, tok, c.options, nullptr); }, needles);

    // skip_invalid counts the record and keeps the three good ones.
    DataOptions skipping = c.options;
    skipping.skip_invalid = true;
    DataStats stats;
    load(c.kind, path, tok, skipping, &stats);
    EXPECT_EQ(stats.records, 4);
    EXPECT_EQ(stats.examples, 3);
    EXPECT_EQ(stats.skipped_invalid, 1);
    EXPECT_EQ(stats.first_invalid.rfind(path + ":3: ", 0), 0u) << stats.first_invalid;
  }
}

TEST(Examples, SkipInvalidStillFailsOnAMissingFile) {
  FLYWHEEL_REQUIRE_PATH(stories_dir());
  const Tokenizer tok = Tokenizer::from_dir(stories_dir());
  const DataOptions skipping = options_with([](DataOptions& o) { o.skip_invalid = true; });
  expect_user_error([&] { load_sft_examples("/nonexistent/train.jsonl", tok, skipping, nullptr); },
                    {"cannot open /nonexistent/train.jsonl"});
}

TEST(Examples, SkipInvalidCountsEveryBadRecordAndSummarises) {
  FLYWHEEL_REQUIRE_PATH(stories_dir());
  const Tokenizer tok = Tokenizer::from_dir(stories_dir());
  const std::string path = write_file(
      "mixed.jsonl", std::string(kGoodSft) + "\n{oops\n" + kGoodSft +
                         "\n{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}\n\n" +
                         kGoodSft + "\n");
  const DataOptions skipping = options_with([](DataOptions& o) { o.skip_invalid = true; });
  DataStats stats;
  const std::vector<SftExample> examples = load_sft_examples(path, tok, skipping, &stats);
  EXPECT_EQ(examples.size(), 3u);
  EXPECT_EQ(stats.records, 5);
  EXPECT_EQ(stats.examples, 3);
  EXPECT_EQ(stats.skipped_invalid, 2);
  EXPECT_EQ(stats.summary(),
            "5 records: 3 examples (0 truncated), 0 dropped as over-long, "
            "2 skipped as invalid (first: " +
                path + ":2: invalid JSON: " +
                stats.first_invalid.substr(stats.first_invalid.find("column")) + ")");
}

TEST(Examples, OptionsAreValidated) {
  expect_user_error(
      [] { options_with([](DataOptions& o) { o.overlong = "cut"; }).validate("r.yaml"); },
      {"r.yaml: key 'overlong': expected 'truncate_prompt' or 'drop', got 'cut'"});
  expect_user_error(
      [] { options_with([](DataOptions& o) { o.chat_template = "vicuna"; }).validate("r.yaml"); },
      {"r.yaml: key 'chat_template': expected one of auto, chatml, llama2, tulu, zephyr, got "
       "'vicuna'"});
  expect_user_error(
      [] { options_with([](DataOptions& o) { o.max_length = 0; }).validate("r.yaml"); },
      {"r.yaml: key 'max_length': expected a positive number of tokens, got 0"});
  DataOptions().validate("defaults");
}

// ---- formats ----

class Formats : public ::testing::Test {
 protected:
  void SetUp() override {
    FLYWHEEL_REQUIRE_PATH(stories_dir());
    tok_ = std::make_unique<Tokenizer>(Tokenizer::from_dir(stories_dir()));
  }
  const Tokenizer& tok() const { return *tok_; }
  Ids enc(const std::string& text) const { return tok_->encode(text); }

  template <typename Example>
  Example only(std::vector<Example> examples) {
    EXPECT_EQ(examples.size(), 1u);
    return examples.at(0);
  }
  SftExample sft(const json& record, const DataOptions& o = options_with()) {
    return only(load_sft_examples(write_record(record), tok(), o, nullptr));
  }
  PreferenceExample preference(const json& record, const DataOptions& o = options_with()) {
    return only(load_preference_examples(write_record(record), tok(), o, nullptr));
  }
  RankingExample ranking(const json& record) {
    return only(load_ranking_examples(write_record(record), tok(), options_with(), nullptr));
  }
  RenderedChat render(const Messages& messages) const {
    return render_chat("tulu", messages, tok(), {/*add_bos=*/true});
  }
  // The runs of render(messages) with only the assistant turns from the n-th one on.
  Runs runs_from(const Messages& messages, size_t n) const {
    const RenderedChat r = render(messages);
    const Runs all = trained_runs({r.ids, r.assistant_mask});
    return Runs(all.begin() + static_cast<std::ptrdiff_t>(n), all.end());
  }

  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(Formats, StoriesSpecialIds) {
  EXPECT_EQ(tok().bos_id(), 1);
  EXPECT_EQ(tok().eos_id(), 2);
}

TEST_F(Formats, SftPromptCompletionStringsAreRawText) {
  const json record = {{"prompt", "Once upon a time"}, {"completion", " there was a cat."}};
  const SftExample e = sft(record);
  const Ids p = enc("Once upon a time"), c = enc(" there was a cat.");
  EXPECT_EQ(e.seq.ids, concat({{1}, p, c, {2}}));
  EXPECT_EQ(e.seq.loss_mask, mask_of({{1 + p.size(), 0}, {c.size() + 1, 1}}));
  EXPECT_EQ(e.seq.prompt_length(), static_cast<int64_t>(1 + p.size()));

  const SftExample no_bos = sft(record, options_with([](DataOptions& o) { o.add_bos = false; }));
  EXPECT_EQ(no_bos.seq.ids, concat({p, c, {2}}));
}

TEST_F(Formats, SftMessagesTrainEveryAssistantTurn) {
  const Messages m = {{"system", "Be brief."},
                      {"user", "Hi"},
                      {"assistant", "Hello"},
                      {"user", "Story?"},
                      {"assistant", "A cat sat."}};
  const SftExample e = sft({{"id", 7}, {"messages", to_json(m)}});
  const RenderedChat r = render(m);
  EXPECT_EQ(e.seq.ids, r.ids);
  EXPECT_EQ(e.seq.loss_mask, r.assistant_mask);
  EXPECT_EQ(trained_runs(e.seq).size(), 2u);
  EXPECT_EQ(e.seq.ids.front(), 1);
}

TEST_F(Formats, SftConversationalPromptCompletionTrainsOnlyTheCompletion) {
  // A few-shot prompt holds an assistant turn of its own, which must stay untrained.
  const Messages prompt = {{"user", "2+2?"}, {"assistant", "4"}, {"user", "3+3?"}};
  const Messages completion = {{"assistant", "6"}};
  const SftExample e = sft({{"prompt", to_json(prompt)}, {"completion", to_json(completion)}});
  const Messages all = {prompt[0], prompt[1], prompt[2], completion[0]};
  EXPECT_EQ(e.seq.ids, render(all).ids);
  const Runs runs = trained_runs(e.seq);
  EXPECT_EQ(runs, runs_from(all, 1));
  // The completion's run is "6</s>", ending the sequence.
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].second, e.seq.ids.size());
  EXPECT_EQ(e.seq.ids.back(), 2);
}

TEST_F(Formats, PreferencePromptStringsAreRawText) {
  const PreferenceExample e =
      preference({{"prompt", "The sky is"}, {"chosen", " blue."}, {"rejected", " green."}});
  const Ids p = enc("The sky is"), c = enc(" blue."), r = enc(" green.");
  EXPECT_EQ(e.chosen.ids, concat({{1}, p, c, {2}}));
  EXPECT_EQ(e.chosen.loss_mask, mask_of({{1 + p.size(), 0}, {c.size() + 1, 1}}));
  EXPECT_EQ(e.rejected.ids, concat({{1}, p, r, {2}}));
  EXPECT_EQ(e.rejected.loss_mask, mask_of({{1 + p.size(), 0}, {r.size() + 1, 1}}));
}

TEST_F(Formats, PreferenceConversationsTrainOnlyTheFinalAssistantTurn) {
  // Tulu 3 style: full conversations, plus a string prompt that is ignored.
  const Messages shared = {{"user", "Hi"}, {"assistant", "Hello"}, {"user", "Tell me a story."}};
  Messages chosen = shared, rejected = shared;
  chosen.push_back({"assistant", "A cat sat on a mat."});
  rejected.push_back({"assistant", "No."});
  const PreferenceExample e =
      preference({{"prompt", "Hi"}, {"chosen", to_json(chosen)}, {"rejected", to_json(rejected)}});
  EXPECT_EQ(e.chosen.ids, render(chosen).ids);
  EXPECT_EQ(e.rejected.ids, render(rejected).ids);
  EXPECT_EQ(trained_runs(e.chosen), runs_from(chosen, 1));
  EXPECT_EQ(trained_runs(e.rejected), runs_from(rejected, 1));
  ASSERT_EQ(e.chosen.prompt_length(), e.rejected.prompt_length());
  EXPECT_EQ(slice(e.chosen.ids, 0, e.chosen.prompt_length()),
            slice(e.rejected.ids, 0, e.rejected.prompt_length()));
}

TEST_F(Formats, PreferenceTrlConversational) {
  const Messages prompt = {{"user", "Hi"}};
  const Messages chosen = {{"assistant", "Hello!"}}, rejected = {{"assistant", "Go away."}};
  const PreferenceExample e = preference(
      {{"prompt", to_json(prompt)}, {"chosen", to_json(chosen)}, {"rejected", to_json(rejected)}});
  const RenderedChat c = render({prompt[0], chosen[0]});
  const RenderedChat r = render({prompt[0], rejected[0]});
  EXPECT_EQ(e.chosen.ids, c.ids);
  EXPECT_EQ(e.chosen.loss_mask, c.assistant_mask);
  EXPECT_EQ(e.rejected.ids, r.ids);
  EXPECT_EQ(e.rejected.loss_mask, r.assistant_mask);
}

TEST_F(Formats, AnthropicHhTextBecomesMessages) {
  const Messages shared = {
      {"user", "Hi there"}, {"assistant", "Hello."}, {"user", "Name a fruit."}};
  Messages chosen = shared, rejected = shared;
  chosen.push_back({"assistant", "A pear."});
  rejected.push_back({"assistant", "No"});
  // Also without the space after "Human:" and "Assistant:", as in a few HH records.
  for (const std::string sep : {" ", ""}) {
    SCOPED_TRACE("separator '" + sep + "'");
    const std::string prefix = "\n\nHuman:" + sep + "Hi there\n\nAssistant:" + sep +
                               "Hello.\n\nHuman:" + sep + "Name a fruit.\n\nAssistant:" + sep;
    const PreferenceExample e =
        preference({{"chosen", prefix + "A pear."}, {"rejected", prefix + "No"}});
    EXPECT_EQ(e.chosen.ids, render(chosen).ids);
    EXPECT_EQ(e.rejected.ids, render(rejected).ids);
    EXPECT_EQ(trained_runs(e.chosen), runs_from(chosen, 1));
    EXPECT_EQ(trained_runs(e.rejected), runs_from(rejected, 1));
  }
}

TEST_F(Formats, DivergingConversationsShareOnlyTheirCommonPrefix) {
  // The pattern of HH line 169: "\n\nHumans:" is text, not a marker, so the rejected side has
  // two assistant turns and differs from message 1 on; both of its turns are trained.
  const PreferenceExample e =
      preference({{"chosen", "\n\nHuman: List fruit.\n\nAssistant: Pear, fig."},
                  {"rejected",
                   "\n\nHuman: List fruit.\n\nAssistant: Many.\n\nHumans: ok\n\nAssistant: Fig."}});
  const RenderedChat r = render(
      {{"user", "List fruit."}, {"assistant", "Many.\n\nHumans: ok"}, {"assistant", "Fig."}});
  EXPECT_EQ(e.rejected.ids, r.ids);
  EXPECT_EQ(e.rejected.loss_mask, r.assistant_mask);
  EXPECT_EQ(trained_runs(e.rejected).size(), 2u);
  EXPECT_EQ(e.chosen.prompt_length(), e.rejected.prompt_length());
}

TEST_F(Formats, RankingReordersResponsesBestFirst) {
  const RankingExample e = ranking(
      {{"prompt", "Pick:"}, {"responses", {" one", " two", " three"}}, {"ranking", {2, 0, 1}}});
  const Ids p = enc("Pick:");
  ASSERT_EQ(e.responses.size(), 3u);
  const std::vector<std::string> best_first = {" three", " one", " two"};
  for (size_t i = 0; i < 3; ++i) {
    const Ids c = enc(best_first[i]);
    EXPECT_EQ(e.responses[i].ids, concat({{1}, p, c, {2}}));
    EXPECT_EQ(e.responses[i].loss_mask, mask_of({{1 + p.size(), 0}, {c.size() + 1, 1}}));
  }

  const Messages prompt = {{"user", "Hi"}};
  const Messages yo = {{"assistant", "Yo"}}, hello = {{"assistant", "Hello!"}};
  const RankingExample m = ranking({{"prompt", to_json(prompt)},
                                    {"responses", {to_json(yo), to_json(hello)}},
                                    {"ranking", {1, 0}}});
  const RenderedChat best = render({prompt[0], hello[0]});
  ASSERT_EQ(m.responses.size(), 2u);
  EXPECT_EQ(m.responses[0].ids, best.ids);
  EXPECT_EQ(m.responses[0].loss_mask, best.assistant_mask);
  EXPECT_EQ(m.responses[1].ids, render({prompt[0], yo[0]}).ids);
}

// The last "\n\nAssistant:" turn of an HH text, without the space after the colon.
std::string final_hh_response(const std::string& text) {
  const std::string marker = "\n\nAssistant: ";
  return text.substr(text.rfind(marker) + marker.size());
}

TEST_F(Formats, AnthropicHhTestSplitFirst200) {
  FLYWHEEL_REQUIRE_PATH(hh_file());
  std::vector<JsonlRecord> records = read_all(hh_file());
  records.resize(200);
  std::string first_200;
  for (const JsonlRecord& r : records)
    first_200 += r.value.dump() + "\n";
  const std::string path = write_file("hh200.jsonl", first_200);
  DataStats stats;
  const std::vector<PreferenceExample> examples =
      load_preference_examples(path, tok(), options_with(), &stats);
  ASSERT_EQ(examples.size(), 200u);
  EXPECT_EQ(stats.records, 200);
  for (size_t i = 0; i < examples.size(); ++i) {
    SCOPED_TRACE("line " + std::to_string(i + 1));
    const PreferenceExample& e = examples[i];
    ASSERT_EQ(e.chosen.prompt_length(), e.rejected.prompt_length());
    EXPECT_EQ(slice(e.chosen.ids, 0, e.chosen.prompt_length()),
              slice(e.rejected.ids, 0, e.rejected.prompt_length()));
    EXPECT_EQ(e.chosen.ids.front(), 1);
    for (const auto& [seq, key] : {std::pair{&e.chosen, "chosen"}, {&e.rejected, "rejected"}}) {
      // Only the final assistant turn is trained: one run, ending with the eos that ends the
      // sequence, decoding to that turn's text. Line 169's rejected text has an earlier
      // assistant turn that the chosen one lacks (see DivergingConversations...), so two runs.
      const auto runs = trained_runs(*seq);
      ASSERT_EQ(runs.size(), i == 168 && std::string(key) == "rejected" ? 2u : 1u);
      EXPECT_EQ(runs.back().second, seq->ids.size());
      EXPECT_EQ(seq->ids.back(), 2);
      const Ids trained = slice(seq->ids, runs.back().first, runs.back().second);
      EXPECT_EQ(tok().decode(trained), final_hh_response(records[i].value[key]));
    }
  }
}

// ---- over-long examples ----

TEST_F(Formats, OverlongDropOrTruncatePrompt) {
  // Prompt lengths grow with i; the completion is fixed. Record 4 has a completion longer
  // than max_length on its own.
  std::string lines;
  const std::string completion = " The end.";
  for (int i = 0; i < 4; ++i) {
    std::string prompt = "Once";
    for (int k = 0; k < i * 6; ++k)
      prompt += " upon a time";
    lines += json({{"prompt", prompt}, {"completion", completion}}).dump() + "\n";
  }
  std::string long_completion;
  for (int k = 0; k < 40; ++k)
    long_completion += " and then";
  lines += json({{"prompt", "Once"}, {"completion", long_completion}}).dump() + "\n";
  lines += "{bad\n";
  const std::string path = write_file("long.jsonl", lines);

  const int64_t max_length = 40;
  const std::vector<SftExample> full = load_sft_examples(
      path, tok(), options_with([](DataOptions& o) { o.skip_invalid = true; }), nullptr);
  ASSERT_EQ(full.size(), 5u);
  // Records 0 and 1 fit, 2 and 3 need truncating, 4 cannot fit: the test needs every kind.
  ASSERT_LE(full[1].seq.size(), max_length);
  ASSERT_GT(full[2].seq.size(), max_length);
  ASSERT_GT(full[4].seq.size() - full[4].seq.prompt_length() + 1, max_length);

  DataStats dropped;
  const auto kept = load_sft_examples(path, tok(), options_with([&](DataOptions& o) {
                                        o.max_length = max_length;
                                        o.overlong = "drop";
                                        o.skip_invalid = true;
                                      }),
                                      &dropped);
  EXPECT_EQ(kept.size(), 2u);
  EXPECT_EQ(dropped.records, 6);
  EXPECT_EQ(dropped.examples, 2);
  EXPECT_EQ(dropped.truncated, 0);
  EXPECT_EQ(dropped.dropped_overlong, 3);
  EXPECT_EQ(dropped.skipped_invalid, 1);

  DataStats truncated;
  const auto cut = load_sft_examples(path, tok(), options_with([&](DataOptions& o) {
                                       o.max_length = max_length;
                                       o.skip_invalid = true;
                                     }),
                                     &truncated);
  EXPECT_EQ(truncated.summary(),
            "6 records: 4 examples (2 truncated), 1 dropped as over-long, " +
                std::string("1 skipped as invalid (first: ") + path + ":6: invalid JSON: " +
                truncated.first_invalid.substr(truncated.first_invalid.find("column")) + ")");
  EXPECT_EQ(truncated.records,
            truncated.examples + truncated.dropped_overlong + truncated.skipped_invalid);
  ASSERT_EQ(cut.size(), 4u);
  for (size_t i = 0; i < cut.size(); ++i) {
    // bos, then the right end of the full sequence: its prompt's last tokens and the response.
    const Ids& ids = full[i].seq.ids;
    const size_t keep = std::min<size_t>(ids.size(), max_length);
    EXPECT_EQ(cut[i].seq.ids, concat({{1}, slice(ids, ids.size() - keep + 1, ids.size())}));
    EXPECT_EQ(cut[i].seq.size() - cut[i].seq.prompt_length(),
              full[i].seq.size() - full[i].seq.prompt_length());
  }
}

TEST_F(Formats, OverlongPreferenceCutsBothPromptsAlike) {
  // The rejected side is longer; both lose the same prompt tokens, so the prompts still match.
  std::string prompt = "Once";
  for (int k = 0; k < 10; ++k)
    prompt += " upon a time";
  const json record = {{"prompt", prompt}, {"chosen", " Yes."}, {"rejected", " No, no, no, no."}};
  const PreferenceExample full = preference(record);
  const int64_t max_length = full.rejected.size() - 5;
  DataStats stats;
  const auto examples = load_preference_examples(
      write_record(record), tok(), options_with([&](DataOptions& o) { o.max_length = max_length; }),
      &stats);
  ASSERT_EQ(examples.size(), 1u);
  EXPECT_EQ(stats.truncated, 1);
  const PreferenceExample& e = examples[0];
  EXPECT_EQ(e.rejected.size(), max_length);
  EXPECT_EQ(e.chosen.size(), full.chosen.size() - 5);
  EXPECT_EQ(e.chosen.ids, concat({{1}, slice(full.chosen.ids, 6, full.chosen.ids.size())}));
  EXPECT_EQ(slice(e.chosen.ids, 0, e.chosen.prompt_length()),
            slice(e.rejected.ids, 0, e.rejected.prompt_length()));
}

// ---- epoch plans ----

std::vector<int64_t> flatten(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> out;
  for (const auto& b : batches)
    out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

TEST(PlanEpoch, DeterministicPermutationPerSeedAndEpoch) {
  std::vector<int64_t> lengths(1003);
  for (size_t i = 0; i < lengths.size(); ++i)
    lengths[i] = static_cast<int64_t>((i * 7919) % 500 + 1);
  for (bool group : {false, true}) {
    SCOPED_TRACE(group ? "group_by_length" : "plain");
    const auto a = plan_epoch(lengths, 8, 42, 0, group, false);
    EXPECT_EQ(a, plan_epoch(lengths, 8, 42, 0, group, false));
    EXPECT_NE(a, plan_epoch(lengths, 8, 42, 1, group, false));
    EXPECT_NE(a, plan_epoch(lengths, 8, 43, 0, group, false));
    // 1003 = 125 × 8 + 3: every index once, one short batch.
    ASSERT_EQ(a.size(), 126u);
    std::vector<int64_t> all = flatten(a);
    std::sort(all.begin(), all.end());
    EXPECT_EQ(all, iota(1003));
    size_t short_batches = 0;
    for (const auto& b : a)
      short_batches += b.size() != 8;
    EXPECT_EQ(short_batches, 1u);

    const auto dropped = plan_epoch(lengths, 8, 42, 0, group, true);
    EXPECT_EQ(dropped.size(), 125u);
    for (const auto& b : dropped)
      EXPECT_EQ(b.size(), 8u);
    const std::vector<int64_t> kept = flatten(dropped);
    EXPECT_EQ(std::set<int64_t>(kept.begin(), kept.end()).size(), 1000u);
  }
  EXPECT_NE(flatten(plan_epoch(lengths, 8, 42, 0, false, false)), iota(1003));
}

TEST(PlanEpoch, PinnedOrderForSeed42) {
  // Pins the platform-independent shuffle (a change here changes the data order of every
  // run). Computed independently in Python from the C++ standard's definitions of seed_seq
  // and mt19937_64: seed_seq{42, 0, 0, 0}, then for i = 10..2 swap(v[i-1], v[below(i)]) with
  // below(n) = the first draw r >= 2^64 mod n, taken mod n.
  const auto plan = plan_epoch(std::vector<int64_t>(10, 1), 4, 42, 0, false, false);
  EXPECT_EQ(plan, (std::vector<std::vector<int64_t>>{{0, 6, 5, 1}, {3, 9, 7, 8}, {4, 2}}));
}

double mean_spread(const std::vector<std::vector<int64_t>>& batches,
                   const std::vector<int64_t>& lengths) {
  double total = 0;
  for (const auto& b : batches) {
    int64_t lo = INT64_MAX, hi = 0;
    for (int64_t i : b)
      lo = std::min(lo, lengths[i]), hi = std::max(hi, lengths[i]);
    total += static_cast<double>(hi - lo);
  }
  return total / static_cast<double>(batches.size());
}

TEST(PlanEpoch, GroupByLengthGivesSimilarLengthsInRandomOrder) {
  std::mt19937_64 rng(7);
  std::vector<int64_t> lengths(4000);
  for (int64_t& n : lengths)
    n = static_cast<int64_t>(rng() % 2000) + 1;
  const auto grouped = plan_epoch(lengths, 16, 1, 0, true, false);
  const auto plain = plan_epoch(lengths, 16, 1, 0, false, false);
  // Mega-batches of 800 lengths drawn from 1..2000 are ~2.5 apart once sorted, so a batch of
  // 16 spans ~40; a random batch of 16 spans ~1760.
  const double grouped_spread = mean_spread(grouped, lengths);
  const double plain_spread = mean_spread(plain, lengths);
  std::printf("mean max-min length per batch: grouped %.1f, plain %.1f\n", grouped_spread,
              plain_spread);
  EXPECT_LT(grouped_spread, 100.0);
  EXPECT_GT(plain_spread, 1000.0);
  // Batch order is shuffled, not longest-first overall.
  std::vector<int64_t> firsts;
  for (const auto& b : grouped)
    firsts.push_back(lengths[b.front()]);
  EXPECT_FALSE(std::is_sorted(firsts.rbegin(), firsts.rend()));
  // Within a batch, longest first.
  for (const auto& b : grouped)
    for (size_t i = 1; i < b.size(); ++i)
      EXPECT_GE(lengths[b[i - 1]], lengths[b[i]]);
}

// ---- collation ----

TokenSequence seq(Ids ids, Mask mask) {
  return {std::move(ids), std::move(mask)};
}

// Sequences in a TokenStore (one per example) and their views, as the objectives hold them.
struct Stored {
  explicit Stored(std::initializer_list<const TokenSequence*> seqs) {
    for (const auto* s : seqs)
      store.add({s});
    views = store.all_sequences();
  }
  TokenStore store;
  std::vector<TokenView> views;
};

Ids row(const torch::Tensor& t, int64_t b) {
  const torch::Tensor r = t[b].contiguous();
  return Ids(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

TEST(Collate, RightPadsWithLabelsAndPositions) {
  const TokenSequence a = seq({1, 10, 11, 12, 2}, {0, 0, 1, 1, 1});
  const TokenSequence b = seq({1, 20, 2}, {0, 1, 1});
  const TokenBatch batch = collate(Stored({&a, &b}).views, /*pad_id=*/0);
  EXPECT_EQ(batch.input_ids.sizes(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(batch.input_ids.dtype(), torch::kInt64);
  EXPECT_EQ(row(batch.input_ids, 0), (Ids{1, 10, 11, 12, 2}));
  EXPECT_EQ(row(batch.input_ids, 1), (Ids{1, 20, 2, 0, 0}));
  EXPECT_EQ(row(batch.labels, 0), (Ids{-100, -100, 11, 12, 2}));
  EXPECT_EQ(row(batch.labels, 1), (Ids{-100, 20, 2, -100, -100}));
  EXPECT_EQ(row(batch.attention_mask, 0), (Ids{1, 1, 1, 1, 1}));
  EXPECT_EQ(row(batch.attention_mask, 1), (Ids{1, 1, 1, 0, 0}));
  EXPECT_EQ(row(batch.position_ids, 0), (Ids{0, 1, 2, 3, 4}));
  EXPECT_EQ(row(batch.position_ids, 1), (Ids{0, 1, 2, 0, 0}));
  EXPECT_EQ(batch.token_count, 8);
  EXPECT_EQ(batch.loss_token_count, 5);
}

TEST(Pack, FillsRowsGreedilyWithBlockDiagonalAttention) {
  const TokenSequence a = seq({1, 10, 11, 2}, {0, 0, 1, 1});
  const TokenSequence b = seq({1, 20, 2}, {0, 1, 1});
  const TokenSequence c = seq({1, 30, 31, 32, 2}, {1, 1, 1, 1, 1});
  const TokenSequence d = seq({1, 40}, {0, 1});
  // max_length 8: row 0 = a b (7), row 1 = c d (7); rows_per_batch 1 → two batches.
  const std::vector<TokenBatch> one_row = pack(Stored({&a, &b, &c, &d}).views, 8, 1, /*pad_id=*/0);
  ASSERT_EQ(one_row.size(), 2u);
  EXPECT_EQ(one_row[0].input_ids.sizes(), (std::vector<int64_t>{1, 7}));

  // The same rows, both in one batch.
  const std::vector<TokenBatch> batches = pack(Stored({&a, &b, &c, &d}).views, 8, 2, 0);
  ASSERT_EQ(batches.size(), 1u);
  const TokenBatch& t = batches[0];
  EXPECT_EQ(t.input_ids.sizes(), (std::vector<int64_t>{2, 7}));
  EXPECT_EQ(row(t.input_ids, 0), (Ids{1, 10, 11, 2, 1, 20, 2}));
  EXPECT_EQ(row(t.input_ids, 1), (Ids{1, 30, 31, 32, 2, 1, 40}));
  EXPECT_EQ(row(t.position_ids, 0), (Ids{0, 1, 2, 3, 0, 1, 2}));
  EXPECT_EQ(row(t.position_ids, 1), (Ids{0, 1, 2, 3, 4, 0, 1}));
  // Each sequence's first token loses its label (c's was trained).
  EXPECT_EQ(row(t.labels, 0), (Ids{-100, -100, 11, 2, -100, 20, 2}));
  EXPECT_EQ(row(t.labels, 1), (Ids{-100, 30, 31, 32, 2, -100, 40}));
  EXPECT_EQ(t.token_count, 14);
  EXPECT_EQ(t.loss_token_count, 9);
  EXPECT_EQ(t.attention_mask.sizes(), (std::vector<int64_t>{2, 7, 7}));
  EXPECT_EQ(t.attention_mask.dtype(), torch::kBool);
  // Row 0: a = tokens 0..3, b = 4..6 → two diagonal blocks.
  const torch::Tensor block = torch::zeros({7, 7}, torch::kBool);
  block.slice(0, 0, 4).slice(1, 0, 4).fill_(true);
  block.slice(0, 4, 7).slice(1, 4, 7).fill_(true);
  EXPECT_TRUE(torch::equal(t.attention_mask[0], block));
}

// Rows packed one per batch (as SFT packs them for the epoch plan), then batched together in
// any order, give exactly the batch packing would have made of them.
TEST(Pack, ConcatOfPackedRowsEqualsPackingThemTogether) {
  const TokenSequence a = seq({1, 10, 11, 12, 2}, {0, 1, 1, 1, 1});
  const TokenSequence b = seq({1, 20, 2}, {0, 1, 1});
  const TokenSequence c = seq({1, 30, 2}, {1, 1, 1});
  // max_length 6: rows a (5), b c (6), of different lengths.
  const auto rows = pack(Stored({&a, &b, &c}).views, 6, 1, /*pad_id=*/7);
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_NE(rows[0].input_ids.size(1), rows[1].input_ids.size(1));
  const auto together = pack(Stored({&b, &c, &a}).views, 6, 2, 7);  // rows b c, then a
  ASSERT_EQ(together.size(), 1u);
  const TokenBatch got = concat_packed({&rows[1], &rows[0]}, 7);
  const TokenBatch& want = together[0];
  EXPECT_TRUE(torch::equal(got.input_ids, want.input_ids));
  EXPECT_TRUE(torch::equal(got.labels, want.labels));
  EXPECT_TRUE(torch::equal(got.position_ids, want.position_ids));
  EXPECT_TRUE(torch::equal(got.attention_mask, want.attention_mask));
  EXPECT_EQ(got.token_count, want.token_count);
  EXPECT_EQ(got.loss_token_count, want.loss_token_count);
}

TEST(Pack, PaddingAttendsOnlyItself) {
  const TokenSequence a = seq({1, 10, 11, 12, 2}, {0, 1, 1, 1, 1});
  const TokenSequence b = seq({1, 20, 2}, {0, 1, 1});
  // max_length 6: a alone (b does not fit after it), then b; one batch of 2 rows, T = 5.
  const std::vector<TokenBatch> batches = pack(Stored({&a, &b}).views, 6, 2, /*pad_id=*/7);
  ASSERT_EQ(batches.size(), 1u);
  const TokenBatch& t = batches[0];
  EXPECT_EQ(row(t.input_ids, 1), (Ids{1, 20, 2, 7, 7}));
  EXPECT_EQ(row(t.labels, 1), (Ids{-100, 20, 2, -100, -100}));
  EXPECT_EQ(row(t.position_ids, 1), (Ids{0, 1, 2, 0, 0}));
  const torch::Tensor expected = torch::zeros({5, 5}, torch::kBool);
  expected.slice(0, 0, 3).slice(1, 0, 3).fill_(true);
  expected[3][3] = true;
  expected[4][4] = true;
  EXPECT_TRUE(torch::equal(t.attention_mask[1], expected));
  EXPECT_EQ(t.token_count, 8);
}

// ---- the token cache ----

// Every sequence of two stores, token for token.
void expect_same_tokens(const TokenStore& a, const TokenStore& b) {
  ASSERT_EQ(a.examples(), b.examples());
  ASSERT_EQ(a.tokens(), b.tokens());
  for (int64_t e = 0; e < a.examples(); ++e) {
    ASSERT_EQ(a.sequences_of(e), b.sequences_of(e)) << "example " << e;
    for (int64_t k = 0; k < a.sequences_of(e); ++k) {
      const auto x = a.sequence(e, k), y = b.sequence(e, k);
      EXPECT_TRUE(std::equal(x.ids.begin(), x.ids.end(), y.ids.begin(), y.ids.end()));
      EXPECT_TRUE(std::equal(x.loss_mask.begin(), x.loss_mask.end(), y.loss_mask.begin(),
                             y.loss_mask.end()));
    }
  }
}

// 60 preference records of several lengths, one over-long for max_length 24 and two invalid.
std::string mixed_pairs_file(const std::string& name) {
  std::string text;
  for (int i = 0; i < 60; ++i) {
    if (i == 17) {
      text += "{oops\n";
      continue;
    }
    if (i == 41) {
      text += "{\"prompt\": 3}\n";
      continue;
    }
    std::string answer;
    for (int w = 0; w < 1 + i % 7; ++w)
      answer += " little dog";
    if (i == 5) answer += std::string(" and the big red ball") + std::string(40, '!');
    text +=
        json{{"prompt", "Once upon a time"}, {"chosen", answer}, {"rejected", " the cat"}}.dump() +
        "\n";
  }
  return write_file(name, text);
}

DataOptions cache_test_options() {
  return options_with([](DataOptions& o) {
    o.skip_invalid = true;
    o.max_length = 24;
  });
}

// Parallel tokenization is deterministic: the same examples, counts and first invalid record
// for any number of threads.
TEST(TokenCache, ParallelTokenizationEqualsSerial) {
  FLYWHEEL_REQUIRE_PATH(stories_dir());
  const Tokenizer tok = Tokenizer::from_dir(stories_dir());
  const auto path = mixed_pairs_file("parallel.jsonl");
  const auto options = cache_test_options();
  DataStats one_stats, three_stats;
  TokenStore one, three;
  load_examples_into(ExampleKind::kPreference, path, tok, options, 1, &one_stats, &one);
  load_examples_into(ExampleKind::kPreference, path, tok, options, 3, &three_stats, &three);
  expect_same_tokens(one, three);
  EXPECT_EQ(one_stats.summary(), three_stats.summary());
  EXPECT_EQ(one_stats.skipped_invalid, 2);
  EXPECT_GE(one_stats.truncated + one_stats.dropped_overlong, 1);
  // And the loaders' own vectors agree with the store.
  const auto pairs = load_preference_examples(path, tok, options, nullptr, 2);
  ASSERT_EQ(static_cast<int64_t>(pairs.size()), one.examples());
  for (size_t e = 0; e < pairs.size(); ++e) {
    const auto chosen = one.sequence(static_cast<int64_t>(e), 0);
    EXPECT_TRUE(std::equal(pairs[e].chosen.ids.begin(), pairs[e].chosen.ids.end(),
                           chosen.ids.begin(), chosen.ids.end()));
  }
}

// The second load maps the file the first one wrote; a change to the data file or to the
// options makes a new cache; a damaged cache file is made again, never trusted.
TEST(TokenCache, ReusedOnlyWhileItsInputsAreUnchanged) {
  FLYWHEEL_REQUIRE_PATH(stories_dir());
  const Tokenizer tok = Tokenizer::from_dir(stories_dir());
  const auto dir = temp_path("token-cache");
  std::filesystem::remove_all(dir);
  const auto path = mixed_pairs_file("cached.jsonl");
  const TokenCacheOptions cache{dir, stories_dir(), 2};
  const auto options = cache_test_options();
  TokenStore direct;
  load_examples_into(ExampleKind::kPreference, path, tok, options, 1, nullptr, &direct);

  const auto first = load_tokens(ExampleKind::kPreference, path, tok, options, cache);
  EXPECT_NE(first.report.find("tokens/s, 2 threads), cached in " + dir), std::string::npos)
      << first.report;
  const auto second = load_tokens(ExampleKind::kPreference, path, tok, options, cache);
  EXPECT_NE(second.report.find("tokens from cache " + dir), std::string::npos) << second.report;
  expect_same_tokens(second.store, direct);
  EXPECT_EQ(second.stats.summary(), first.stats.summary());
  const auto files = [&] {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
      out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
  };
  ASSERT_EQ(files().size(), 1u);

  // Another max_length is another cache.
  auto longer = options;
  longer.max_length = 64;
  const auto other = load_tokens(ExampleKind::kPreference, path, tok, longer, cache);
  EXPECT_NE(other.report.find("cached in"), std::string::npos) << other.report;
  EXPECT_EQ(files().size(), 2u);

  // The data file changes (size and modification time): tokenized again.
  std::ofstream(path, std::ios::app)
      << json{{"prompt", "Hi"}, {"chosen", " a"}, {"rejected", " b"}}.dump() << "\n";
  const auto grown = load_tokens(ExampleKind::kPreference, path, tok, options, cache);
  EXPECT_NE(grown.report.find("cached in"), std::string::npos) << grown.report;
  EXPECT_EQ(grown.store.examples(), direct.examples() + 1);

  // A damaged cache file (cut short) is reported and made again. (Cut in place, which the
  // cache itself never does: `grown` maps it and now reads zeros past the cut.)
  TokenStore grown_direct;
  load_examples_into(ExampleKind::kPreference, path, tok, options, 1, nullptr, &grown_direct);
  const auto victim = grown.report.substr(grown.report.find("cached in ") + 10);
  std::filesystem::resize_file(victim, std::filesystem::file_size(victim) - 3);
  const auto again = load_tokens(ExampleKind::kPreference, path, tok, options, cache);
  EXPECT_NE(again.report.find("not a valid token cache"), std::string::npos) << again.report;
  EXPECT_NE(again.report.find("made again"), std::string::npos) << again.report;
  expect_same_tokens(again.store, grown_direct);

  // A cache directory that cannot be made is the user's error, naming the key.
  const auto blocker = write_file("not-a-dir", "x");
  expect_user_error(
      [&] {
        load_tokens(ExampleKind::kPreference, path, tok, options,
                    {blocker + "/tokens", stories_dir(), 1});
      },
      {"data.cache_dir: cannot create " + blocker + "/tokens"});
  std::filesystem::remove_all(dir);
}

TEST(TokenStore, OpenRejectsWhatItDidNotWrite) {
  const auto path = temp_path("store.tokens");
  TokenStore store;
  const TokenSequence a = {{1, 2, 3}, {0, 1, 1}}, b = {{4}, {1}};
  store.add({&a, &b});
  store.write(path, {{"key", "x"}});
  const auto good = TokenStore::open(path);
  EXPECT_EQ(good.metadata().at("key"), "x");
  ASSERT_EQ(good.sequences_of(0), 2);
  EXPECT_EQ(good.sequence(0, 1).ids[0], 4);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto damaged = [&](const std::string& name, std::string content) {
    return write_file(name, std::move(content));
  };
  std::string bad_offset = bytes;
  bad_offset[bytes.size() - 4 * 1 - 4 * 4 - 8] ^= 0x40;  // the last sequence offset
  for (const auto& [file, why] : std::vector<std::pair<std::string, std::string>>{
           {damaged("short.tokens", bytes.substr(0, bytes.size() - 1)), "size does not match"},
           {damaged("magic.tokens", "XX" + bytes.substr(2)), "bad magic"},
           {damaged("offset.tokens", bad_offset), "inconsistent offsets"},
           {damaged("empty.tokens", ""), "too short"}}) {
    expect_user_error([&] { TokenStore::open(file); }, {file + ": not a valid token cache", why});
  }
}

}  // namespace
}  // namespace flywheel
