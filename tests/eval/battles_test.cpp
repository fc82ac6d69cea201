// Reading battle JSONL (battles.h): the accepted forms, prompts, style features, and errors
// that name the file, the line and the key.
#include <gtest/gtest.h>

#include "tests/eval/ratings_util.h"
#include "trainer/eval/battles.h"

namespace flywheel {
namespace {

using testing::write_temp;

TEST(Battles, ReadsChatbotArenaAndFlywheelForms) {
  const std::string path = write_temp(
      "b.jsonl",
      R"({"model_a": "x", "model_b": "y", "winner": "model_a", "question_id": "q1", "tstamp": 1})"
      "\n"
      R"j({"model_a": "y", "model_b": "x", "winner": "tie (bothbad)", "question_id": "q1"})j"
      "\n\n"  // a blank line is skipped
      R"({"model_a": "x", "model_b": "z", "winner": "model_b", "question_id": 7,)"
      R"( "conv_metadata": {"sum_assistant_a_tokens": 100, "sum_assistant_b_tokens": 50,)"
      R"( "header_count_a": {"h1": 1, "h2": 2, "h3": 0, "h4": 0, "h5": 0, "h6": 0},)"
      R"( "header_count_b": 0, "list_count_a": {"ordered": 3, "unordered": 4},)"
      R"( "list_count_b": {"ordered": 0, "unordered": 1}, "bold_count_a": {"**": 5, "__": 1},)"
      R"( "bold_count_b": {"**": 0, "__": 0}}})"
      "\n"
      R"({"model_a": "z", "model_b": "y", "winner": "tie", "style": {"len_a": 10, "len_b": 20,)"
      R"( "header_a": 1, "header_b": 0, "list_a": 2, "list_b": 0, "bold_a": 0, "bold_b": 3}})"
      "\n"
      R"({"model_a": "z", "model_b": "x", "winner": "model_a", "question_id": 7})"
      "\n");
  BattleLog log;
  read_battles(path, &log);
  ASSERT_EQ(log.battles().size(), 5u);
  EXPECT_EQ(log.players(), (std::vector<std::string>{"x", "y", "z"}));
  const auto& b = log.battles();
  EXPECT_EQ(b[0].winner, Winner::kA);
  EXPECT_EQ(b[1].winner, Winner::kTie);
  EXPECT_EQ(b[2].winner, Winner::kB);
  EXPECT_EQ(b[3].winner, Winner::kTie);
  // q1 twice, 7 twice, and the battle without a question_id on its own: 3 prompts.
  EXPECT_EQ(b[0].prompt, b[1].prompt);
  EXPECT_EQ(b[2].prompt, b[4].prompt);
  EXPECT_NE(b[3].prompt, b[0].prompt);
  EXPECT_NE(b[3].prompt, b[2].prompt);
  EXPECT_EQ(log.prompts(), 3);
  // Chatbot Arena's dicts are summed.
  ASSERT_GE(b[2].style, 0);
  const BattleStyle& s = log.styles()[b[2].style];
  EXPECT_EQ(s.a.length, 100);
  EXPECT_EQ(s.b.length, 50);
  EXPECT_EQ(s.a.headers, 3);
  EXPECT_EQ(s.a.lists, 7);
  EXPECT_EQ(s.b.lists, 1);
  EXPECT_EQ(s.a.bold, 6);
  const BattleStyle& f = log.styles()[b[3].style];
  EXPECT_EQ(f.a.length, 10);
  EXPECT_EQ(f.b.length, 20);
  EXPECT_EQ(f.a.lists, 2);
  EXPECT_EQ(f.b.bold, 3);
  EXPECT_EQ(b[0].style, -1);
  EXPECT_EQ(log.first_without_style(), path + ":1 (no \"style\" or \"conv_metadata\")");
}

// Chatbot Arena files from before the markdown counts have conv_metadata without them: no style.
TEST(Battles, PartialConvMetadataMeansNoStyle) {
  const std::string path = write_temp(
      "b.jsonl", R"({"model_a": "x", "model_b": "y", "winner": "tie",)"
                 R"( "conv_metadata": {"sum_assistant_a_tokens": 5, "sum_assistant_b_tokens": 6}})"
                 "\n");
  BattleLog log;
  read_battles(path, &log);
  EXPECT_EQ(log.battles()[0].style, -1);
  EXPECT_NE(log.first_without_style().find("header_count_a"), std::string::npos);
}

// Reading `line` as line 2 of a file (after a valid line 1) fails with a message holding
// "PATH:2: " and `expected`.
void expect_error(const std::string& line, const std::string& expected) {
  const std::string path = write_temp(
      "bad.jsonl", "{\"model_a\": \"x\", \"model_b\": \"y\", \"winner\": \"tie\"}\n" + line + "\n");
  BattleLog log;
  try {
    read_battles(path, &log);
    ADD_FAILURE() << "no error for " << line;
  } catch (const UserError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path + ":2: "), std::string::npos) << what;
    EXPECT_NE(what.find(expected), std::string::npos) << what;
  }
}

TEST(Battles, ErrorsNameFileLineAndKey) {
  expect_error(R"({"model_a": "x", "winner": "tie"})", "missing key \"model_b\"");
  expect_error(R"({"model_a": "", "model_b": "y", "winner": "tie"})", "\"model_a\": expected a");
  expect_error(R"({"model_a": 3, "model_b": "y", "winner": "tie"})", "\"model_a\": expected a");
  expect_error(R"({"model_a": "x", "model_b": "y"})", "missing key \"winner\"");
  expect_error(R"({"model_a": "x", "model_b": "y", "winner": "model_c"})",
               "\"winner\": expected \"model_a\", \"model_b\", \"tie\" or \"tie (bothbad)\", got "
               "\"model_c\"");
  expect_error(R"({"model_a": "x", "model_b": "x", "winner": "tie"})",
               "\"model_a\" and \"model_b\" are both \"x\"");
  expect_error(R"({"model_a": "x", "model_b": "y", "winner": "tie",)", "invalid JSON");
  expect_error(R"(["x", "y", "tie"])", "expected a JSON object");
  expect_error(R"({"model_a": "x", "model_b": "y", "winner": "tie", "question_id": [1]})",
               "\"question_id\": expected a string or a number");
  expect_error(R"({"model_a": "x", "model_b": "y", "winner": "tie", "style": {"len_a": 1,)"
               R"( "len_b": 1, "header_a": 0, "header_b": 0, "list_a": 0, "list_b": 0,)"
               R"( "bold_a": 0}})",
               "\"style\": missing key \"bold_b\"");
  expect_error(R"({"model_a": "x", "model_b": "y", "winner": "tie", "style": {"length_a": 1}})",
               "\"style\": unknown key \"length_a\"");
  expect_error(R"({"model_a": "x", "model_b": "y", "winner": "tie", "conv_metadata": {)"
               R"("sum_assistant_a_tokens": -1, "sum_assistant_b_tokens": 1, "header_count_a": 0,)"
               R"( "header_count_b": 0, "list_count_a": 0, "list_count_b": 0, "bold_count_a": 0,)"
               R"( "bold_count_b": 0}})",
               "\"conv_metadata.sum_assistant_a_tokens\": expected a count >= 0");
  expect_error(R"({"model_a": "x", "model_b": "y", "winner": "tie", "conv_metadata": {)"
               R"("sum_assistant_a_tokens": 1, "sum_assistant_b_tokens": 1, "header_count_a": 0,)"
               R"( "header_count_b": 0, "list_count_a": 0, "list_count_b": 0,)"
               R"( "bold_count_a": {"**": "two"}, "bold_count_b": 0}})",
               "\"conv_metadata.bold_count_a\".\"**\": expected a count >= 0");
}

TEST(Battles, MissingFileIsAUserError) {
  BattleLog log;
  EXPECT_THROW(read_battles("/nonexistent/battles.jsonl", &log), UserError);
}

}  // namespace
}  // namespace flywheel
