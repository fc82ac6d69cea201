// N-gram decontamination (trainer/eval/decontaminate.h, ngram_tokenizer.h): the tokens Tulu 3's
// analyzer would produce, planted overlaps on either side of the 0.5 threshold, the exact
// boundary, instances shorter than an n-gram, errors that name file and line, and --out's copy.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/fixtures.h"
#include "trainer/eval/decontaminate.h"
#include "trainer/eval/ngram_tokenizer.h"

namespace flywheel {
namespace {

std::vector<uint64_t> tokens(std::string_view text) {
  std::vector<uint64_t> out;
  append_token_hashes(text, &out);
  return out;
}

// "w0 w1 ... w{n-1}" with distinct words, prefixed so that different runs never share tokens.
std::string words(const std::string& prefix, int begin, int end) {
  std::string out;
  for (int i = begin; i < end; ++i)
    out += (out.empty() ? "" : " ") + prefix + std::to_string(i);
  return out;
}

struct TempDir {
  TempDir() : path(testing::make_temp_dir("decontaminate")) {}
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name, const std::string& contents) const {
    const std::string p = path + "/" + name;
    std::ofstream(p, std::ios::binary) << contents;
    return p;
  }
  std::string path;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(NgramTokenizer, SplitsAndLowercasesLikeTulusAnalyzer) {
  // Separators: space , . ? ! : ; ( ) " - newline backslash; a tab is not one.
  EXPECT_EQ(tokens("Hello, World! (foo-bar) \"baz\"\\qux\nEND?"),
            tokens("hello world foo bar baz qux end"));
  EXPECT_EQ(tokens("a\tb").size(), 1u);
  EXPECT_EQ(tokens("a\tb"), tokens("A\tB"));
  EXPECT_NE(tokens("a\tb"), tokens("a b"));
  EXPECT_EQ(tokens(" ,.;;  "), std::vector<uint64_t>{});
  EXPECT_NE(tokens("cat"), tokens("cats"));
}

TEST(NgramTokenizer, NgramsCoverEveryWindowOfTheRange) {
  const std::vector<uint64_t> t = tokens("a b c d e");
  std::vector<uint64_t> grams;
  append_ngram_hashes(t, 0, t.size(), 3, &grams);
  ASSERT_EQ(grams.size(), 3u);  // abc, bcd, cde
  std::vector<uint64_t> bcd;
  const std::vector<uint64_t> u = tokens("x b c d");
  append_ngram_hashes(u, 1, u.size(), 3, &bcd);
  ASSERT_EQ(bcd.size(), 1u);
  EXPECT_EQ(grams[1], bcd[0]);
  EXPECT_NE(grams[0], grams[2]);
  std::vector<uint64_t> none;
  append_ngram_hashes(t, 0, 2, 3, &none);  // two tokens: no 3-gram
  EXPECT_TRUE(none.empty());
}

// One eval instance of 40 distinct words; a training text holding a contiguous run of k of
// them (amid unrelated words) matches exactly those k tokens when k >= 8.
double planted_overlap(int k) {
  const NgramOverlapIndex index({{0, 1, {words("e", 0, 40)}}}, {});
  const int begin = (40 - k) / 2;
  const std::string train =
      words("x", 0, 30) + " " + words("e", begin, begin + k) + " " + words("y", 0, 30);
  const auto found = index.match({train});
  return found.empty() ? 0.0 : found[0].fraction;
}

TEST(Decontaminate, PlantedOverlapsAtTheDefaultThreshold) {
  // 100% and 70% of the tokens: overlap (> 0.5); 30% and 0%: not reported at all.
  EXPECT_DOUBLE_EQ(planted_overlap(40), 1.0);
  EXPECT_DOUBLE_EQ(planted_overlap(28), 0.7);
  EXPECT_EQ(planted_overlap(12), 0.0);  // 12 / 40 = 0.3 matched, below the threshold
  EXPECT_EQ(planted_overlap(0), 0.0);
  // The 30% case does match 12 tokens: below the threshold only.
  const NgramOverlapIndex any({{0, 1, {words("e", 0, 40)}}}, {8, 0.0});
  const auto found = any.match({words("e", 5, 17)});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_DOUBLE_EQ(found[0].fraction, 0.3);
}

TEST(Decontaminate, ExactBoundaryIsStrictlyMoreThanTheThreshold) {
  // 16 tokens, n = 8: one shared 8-gram matches 8 tokens = exactly half, not more than half.
  const NgramOverlapIndex index({{0, 1, {words("e", 0, 16)}}}, {8, 0.5});
  EXPECT_TRUE(index.match({words("e", 0, 8)}).empty());
  // Nine tokens: two 8-grams, tokens 0-8 matched, 9/16 > 0.5.
  const auto nine = index.match({words("e", 0, 9)});
  ASSERT_EQ(nine.size(), 1u);
  EXPECT_DOUBLE_EQ(nine[0].fraction, 9.0 / 16.0);
  // Two separate runs (0-7 and 8-15, apart in the training text) together match all 16: the
  // tokens matched by any shared n-gram add up over the whole training instance.
  const auto split = index.match({words("e", 8, 16) + " filler words here " + words("e", 0, 8)});
  ASSERT_EQ(split.size(), 1u);
  EXPECT_DOUBLE_EQ(split[0].fraction, 1.0);
}

TEST(Decontaminate, InstanceShorterThanTheNgramNeverOverlaps) {
  const NgramOverlapIndex index({{0, 1, {"only four words here"}}, {0, 2, {words("e", 0, 8)}}},
                                {8, 0.5});
  EXPECT_EQ(index.instances()[0].tokens, 4);
  EXPECT_EQ(index.instances()[1].tokens, 8);
  const auto found = index.match({"this has only four words here " + words("e", 0, 8)});
  ASSERT_EQ(found.size(), 1u);  // the 8-token instance (exactly one 8-gram), not the short one
  EXPECT_EQ(found[0].instance, 1);
  EXPECT_DOUBLE_EQ(found[0].fraction, 1.0);
}

TEST(Decontaminate, NgramsDoNotSpanTwoTexts) {
  const NgramOverlapIndex index({{0, 1, {words("e", 0, 8)}}}, {8, 0.5});
  EXPECT_TRUE(index.match({words("e", 0, 4), words("e", 4, 8)}).empty());
  EXPECT_EQ(index.match({words("e", 0, 4) + " " + words("e", 4, 8)}).size(), 1u);
}

TEST(Decontaminate, RowTextsTakeUserTurnsOrNamedFields) {
  const nlohmann::json row = {{"messages",
                               {{{"role", "system"}, {"content", "sys"}},
                                {{"role", "user"}, {"content", "question one"}},
                                {{"role", "assistant"}, {"content", "answer"}},
                                {{"role", "user"}, {"content", "question two"}}}},
                              {"prompt", "a prompt"},
                              {"extra", {"s1", "s2"}}};
  EXPECT_EQ(row_texts(row, {}, ""), (std::vector<std::string>{"question one", "question two"}));
  EXPECT_EQ(row_texts(row, {"prompt", "extra"}, ""),
            (std::vector<std::string>{"a prompt", "s1", "s2"}));
  testing::expect_user_error([&] { row_texts(row, {"answer"}, "f.jsonl:3: "); },
                             {"f.jsonl:3:", "\"answer\""});
  testing::expect_user_error(
      [&] {
        row_texts({{"prompt", 5}}, {}, "f.jsonl:4: ");
      },
      {"f.jsonl:4:", "\"prompt\"", "string"});
  testing::expect_user_error(
      [&] {
        row_texts({{"text", "x"}}, {}, "f.jsonl:5: ");
      },
      {"f.jsonl:5:", "no text", "messages"});
}

std::string message_row(const std::string& user, const std::string& assistant = "ok") {
  return nlohmann::json{{"messages",
                         {{{"role", "user"}, {"content", user}},
                          {{"role", "assistant"}, {"content", assistant}}}}}
             .dump() +
         "\n";
}

TEST(Decontaminate, ScanFindsPlantedRowsAcrossBatchesAndThreads) {
  // 10000 rows (more than one 4096-line batch); eval instance k (40 tokens) is planted whole in
  // the user turn of row 1000 k + 7 (lines are 1-based), and once in an assistant turn, which
  // is not compared.
  const TempDir dir;
  std::string train;
  for (int r = 0; r < 10000; ++r) {
    std::string user = words("w", r % 50, r % 50 + 20);
    if (r % 1000 == 6) user += " " + words("e" + std::to_string(r / 1000) + "_", 0, 40);
    train += message_row(user, r == 500 ? words("e3_", 0, 40) : "ok");
  }
  const std::string path = dir.file("train.jsonl", train);
  std::vector<EvalRow> evals;
  for (int k = 0; k < 10; ++k)
    evals.push_back({k % 2, k + 1, {words("e" + std::to_string(k) + "_", 0, 40)}});
  const NgramOverlapIndex index(evals, {});
  for (int threads : {1, 3}) {
    const TrainingScan scan = scan_training_file(path, {}, index, threads);
    EXPECT_EQ(scan.rows, 10000);
    ASSERT_EQ(scan.matches.size(), 10u) << threads << " threads";
    for (int k = 0; k < 10; ++k) {
      EXPECT_EQ(scan.matches[static_cast<size_t>(k)].train_line, 1000 * k + 7);
      EXPECT_EQ(scan.matches[static_cast<size_t>(k)].instance, k);
      EXPECT_DOUBLE_EQ(scan.matches[static_cast<size_t>(k)].fraction, 1.0);
    }
  }
}

TEST(Decontaminate, MalformedTrainingLinesNameFileAndLine) {
  const TempDir dir;
  const NgramOverlapIndex index({{0, 1, {words("e", 0, 10)}}}, {});
  const std::string bad_json =
      dir.file("bad.jsonl", message_row("fine") + message_row("fine") + "{\"messages\": [\n");
  testing::expect_user_error([&] { scan_training_file(bad_json, {}, index, 2); },
                             {"bad.jsonl:3", "invalid JSON"});
  const std::string no_text =
      dir.file("notext.jsonl", message_row("fine") + "\n" + "{\"text\": \"x\"}\n");
  testing::expect_user_error([&] { scan_training_file(no_text, {}, index, 2); },
                             {"notext.jsonl:3", "no text"});
  const std::string wrong_type = dir.file("type.jsonl", "{\"prompt\": [1, 2]}\n");
  testing::expect_user_error([&] { scan_training_file(wrong_type, {}, index, 1); },
                             {"type.jsonl:1", "\"prompt\""});
  testing::expect_user_error([&] { scan_training_file(dir.path + "/missing.jsonl", {}, index, 1); },
                             {"missing.jsonl"});
}

TEST(Decontaminate, OutDropsExactlyTheFlaggedRowsByteForByte) {
  // Lines 2 and 5 hold the eval instance; line 3 is blank and line 4 ends in CRLF: both kept
  // as they are, as is the last line without a newline.
  const TempDir dir;
  const std::string e = words("e", 0, 20);
  const std::string l1 = message_row("clean one"), l2 = message_row(e), l4 = message_row("crlf");
  const std::string l5 = message_row("prefix " + e), l6 = message_row("last");
  const std::string crlf = l4.substr(0, l4.size() - 1) + "\r\n";
  const std::string last = l6.substr(0, l6.size() - 1);
  const std::string train = dir.file("train.jsonl", l1 + l2 + "\n" + crlf + l5 + last);
  const NgramOverlapIndex index({{0, 1, {e}}}, {});
  const TrainingScan scan = scan_training_file(train, {}, index, 2);
  ASSERT_EQ(scan.matches.size(), 2u);
  EXPECT_EQ(scan.rows, 5);
  const std::string out = dir.path + "/clean.jsonl";
  const int64_t written = copy_jsonl_without_lines(
      train, out, {scan.matches[0].train_line, scan.matches[1].train_line});
  EXPECT_EQ(written, 4);  // lines 1, 3 (blank), 4 and 6
  EXPECT_EQ(read_file(out), l1 + "\n" + crlf + last);
  EXPECT_FALSE(std::filesystem::exists(out + ".tmp"));
}

TEST(Decontaminate, OptionsAreChecked) {
  testing::expect_user_error([] { NgramOverlapIndex({}, {0, 0.5}); }, {"n-gram"});
  testing::expect_user_error([] { NgramOverlapIndex({}, {8, 1.0}); }, {"threshold"});
}

}  // namespace
}  // namespace flywheel
