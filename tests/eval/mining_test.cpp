// The arena's prompt and answer files, and DPO pairs mined from the battles a policy lost.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/fixtures.h"
#include "trainer/core/error.h"
#include "trainer/eval/answers.h"
#include "trainer/eval/mining.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;

// `text` as file `name` in this process's own temporary directory.
std::string write_file(const std::string& name, const std::string& text) {
  static const std::string dir = testing::make_temp_dir("mining");
  const std::string path = (fs::path(dir) / name).string();
  std::ofstream(path) << text;
  return path;
}

TEST(ArenaFiles, PromptsAndAnswers) {
  const std::string prompts =
      write_file("prompts.jsonl",
                 "{\"question_id\": \"a\", \"prompt\": \"Hi?\", \"ground_truth\": \"4\"}\n"
                 "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
                 " {\"role\": \"user\", \"content\": \"Why?\"}]}\n"
                 "\n"
                 "{\"question_id\": 9, \"prompt\": \"x\"}\n");
  const auto p = read_arena_prompts(prompts);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].question_id, "a");
  EXPECT_EQ(p[0].ground_truth, "4");
  EXPECT_TRUE(p[0].text_prompt);
  EXPECT_EQ(p[1].question_id, "2");  // the line number
  EXPECT_EQ(question_text(p[1].messages), "[system]\nBe brief.\n\n[user]\nWhy?");
  EXPECT_EQ(question_text(p[0].messages), "Hi?");
  EXPECT_EQ(p[2].question_id, "9");

  testing::expect_user_error([&] { read_arena_prompts(write_file("p1", "{\"prompt\": 3}\n")); },
                             {"p1:1: \"prompt\": expected a string"});
  testing::expect_user_error(
      [&] {
        read_arena_prompts(write_file("p2",
                                      "{\"question_id\": 1, \"prompt\": "
                                      "\"a\"}\n{\"question_id\": \"1\", "
                                      "\"prompt\": \"b\"}\n"));
      },
      {"p2:2: \"question_id\": \"1\" appears twice"});
  testing::expect_user_error(
      [&] {
        read_arena_prompts(
            write_file("p3",
                       "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": "
                       "\"assistant\", \"content\": \"b\"}]}\n"));
      },
      {"p3:1: \"messages\": the last message must be the user's"});
  testing::expect_user_error(
      [&] { read_arena_prompts(write_file("p4", "{\"prompt\": \"a\", \"messages\": []}\n")); },
      {"p4:1: expected exactly one of \"prompt\""});
  testing::expect_user_error([&] { answers_path("out", "../evil"); }, {"plain file name"});

  // An answer line round-trips.
  ArenaAnswer a;
  a.question_id = "a";
  a.player = "m";
  a.messages = p[1].messages;
  a.answer = "Because.";
  a.tokens = 3;
  a.finish_reason = "stop";
  a.ground_truth = 4;
  const auto path = write_file("answers.jsonl", answer_json(a).dump() + "\n");
  const auto back = read_answers(path);
  ASSERT_EQ(back.size(), 1u);
  const ArenaAnswer& b = back.at("a");
  EXPECT_EQ(b.messages, a.messages);
  EXPECT_FALSE(b.text_prompt);
  EXPECT_EQ(b.answer, "Because.");
  EXPECT_EQ(b.tokens, 3);
  EXPECT_EQ(b.ground_truth, 4);
  testing::expect_user_error(
      [&] {
        read_answers(write_file("a1",
                                "{\"question_id\": \"a\", \"player\": \"m\", "
                                "\"prompt\": \"p\", \"answer\": \"x\"}\n"));
      },
      {"a1:1: \"finish_reason\": expected a string"});
}

// Answers of three players to three questions; the battles below, by hand:
//   q1  gpt beats policy in both orders (margin 2); weak beats it once and loses once (0)
//   q2  policy loses game 1 and wins game 2 against gpt: margin 0, no pair
//   q3  weak beats the policy once (margin 1) but gave the same text: dropped
//   q4  ties and a bothbad tie only
TEST(Mining, PairsFromLosses) {
  std::map<std::string, std::map<std::string, ArenaAnswer>> answers;
  for (const std::string player : {"policy", "gpt", "weak"}) {
    for (const std::string q : {"q1", "q2", "q3", "q4"}) {
      ArenaAnswer a;
      a.player = player;
      a.question_id = q;
      a.messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "ask " + q}}});
      a.text_prompt = true;
      a.answer = q == "q3" ? "same" : player + " on " + q;
      answers[player][q] = a;
    }
  }
  const std::string battles = write_file(
      "battles.jsonl",
      "{\"model_a\": \"policy\", \"model_b\": \"gpt\", \"winner\": \"model_b\", \"question_id\": "
      "\"q1\"}\n"
      "{\"model_a\": \"gpt\", \"model_b\": \"policy\", \"winner\": \"model_a\", \"question_id\": "
      "\"q1\"}\n"
      "{\"model_a\": \"weak\", \"model_b\": \"policy\", \"winner\": \"model_a\", \"question_id\": "
      "\"q1\"}\n"
      "{\"model_a\": \"policy\", \"model_b\": \"weak\", \"winner\": \"model_a\", \"question_id\": "
      "\"q1\"}\n"
      "{\"model_a\": \"gpt\", \"model_b\": \"policy\", \"winner\": \"model_a\", \"question_id\": "
      "\"q2\"}\n"
      "{\"model_a\": \"policy\", \"model_b\": \"gpt\", \"winner\": \"model_a\", \"question_id\": "
      "\"q2\"}\n"
      "{\"model_a\": \"policy\", \"model_b\": \"weak\", \"winner\": \"model_b\", \"question_id\": "
      "\"q3\"}\n"
      "{\"model_a\": \"policy\", \"model_b\": \"gpt\", \"winner\": \"tie\", \"question_id\": "
      "\"q4\"}\n"
      "{\"model_a\": \"gpt\", \"model_b\": \"policy\", \"winner\": \"tie (bothbad)\", "
      "\"question_id\": \"q4\"}\n"
      "{\"model_a\": \"gpt\", \"model_b\": \"weak\", \"winner\": \"model_a\", \"question_id\": "
      "\"q4\"}\n");
  const auto records = read_battle_records(battles);
  ASSERT_EQ(records.size(), 10u);
  MiningStats stats;
  const auto lookup = [&](const std::string& player, const std::string& q) -> const ArenaAnswer& {
    return answers.at(player).at(q);
  };
  const auto pairs = mine_pairs(records, "policy", lookup, &stats);
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].question_id, "q1");
  EXPECT_EQ(pairs[0].margin, 2);
  EXPECT_EQ(pairs[0].games, 2);
  EXPECT_EQ(stats.battles, 10);
  EXPECT_EQ(stats.policy_battles, 9);
  EXPECT_EQ(stats.questions, 4);
  EXPECT_EQ(stats.lost_questions, 2);
  EXPECT_EQ(stats.identical, 1);
  EXPECT_EQ(stats.pairs, 1);

  // The conversational preference form the DPO loader reads.
  const auto j = pair_json(pairs[0]);
  EXPECT_EQ(j["prompt"][0]["content"], "ask q1");
  EXPECT_EQ(j["chosen"][0]["role"], "assistant");
  EXPECT_EQ(j["chosen"][0]["content"], "gpt on q1");
  EXPECT_EQ(j["rejected"][0]["content"], "policy on q1");
  EXPECT_EQ(j["chosen_model"], "gpt");

  testing::expect_user_error(
      [&] {
        read_battle_records(write_file("b1",
                                       "{\"model_a\": \"x\", \"model_b\": \"y\", "
                                       "\"winner\": \"x\", \"question_id\": 1}\n"));
      },
      {"b1:1: \"winner\": expected"});
  testing::expect_user_error(
      [&] {
        read_battle_records(write_file("b2",
                                       "{\"model_a\": \"x\", \"model_b\": \"y\", "
                                       "\"winner\": \"tie\"}\n"));
      },
      {"b2:1: \"question_id\""});
}

}  // namespace
}  // namespace flywheel
