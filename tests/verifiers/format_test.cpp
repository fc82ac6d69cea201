// Format rewards: think blocks, boxed answers, RE2 rules, bad rules as clear errors.
#include <gtest/gtest.h>

#include "trainer/core/error.h"
#include "verifiers/format_reward.h"

namespace flywheel::verifiers {
namespace {

std::vector<bool> held(const nlohmann::json& rules, const std::string& response) {
  return FormatRules(rules).check(response);
}

TEST(FormatReward, ThinkThenBoxedAnswer) {
  const auto rules = FormatRules::default_rules();
  EXPECT_EQ(held(rules, "<think>2+2 is 4</think> The answer is \\boxed{4}."),
            (std::vector<bool>{true, true}));
  EXPECT_EQ(held(rules, "  \n<think>x</think>\n\\boxed{4}"), (std::vector<bool>{true, true}));
  EXPECT_EQ(held(rules, "The answer is \\boxed{4}."), (std::vector<bool>{false, true}));
  EXPECT_EQ(held(rules, "<think> </think> \\boxed{4}"), (std::vector<bool>{false, true}))
      << "blank reasoning";
  EXPECT_EQ(held(rules, "<think>a</think>"), (std::vector<bool>{false, false})) << "no answer";
  EXPECT_EQ(held(rules, "<think>a</think><think>b</think>\\boxed{1}"),
            (std::vector<bool>{false, true}))
      << "two think blocks";
  // A box inside the reasoning is not an answer.
  EXPECT_EQ(held(rules, "<think>\\boxed{4}</think> so four"), (std::vector<bool>{true, false}));
  EXPECT_EQ(held(rules, "<think>a</think> \\boxed{4"), (std::vector<bool>{true, false}))
      << "unclosed box";
}

TEST(FormatReward, CustomTagsAndRegexes) {
  const nlohmann::json rules = {
      {{"type", "think"}, {"open", "<reasoning>"}, {"close", "</reasoning>"}},
      {{"type", "regex"}, {"pattern", "Answer: [0-9]+$"}},
      {{"type", "regex"}, {"pattern", "(?s)<reasoning>.*</reasoning>.*"}, {"full", true}}};
  EXPECT_EQ(held(rules, "<reasoning>r</reasoning>\nAnswer: 42"),
            (std::vector<bool>{true, true, true}));
  EXPECT_EQ(held(rules, "<reasoning>r</reasoning>\nAnswer: forty"),
            (std::vector<bool>{true, false, true}));
  EXPECT_EQ(held(rules, "Answer: 42 <reasoning>r</reasoning>"),
            (std::vector<bool>{false, false, false}));
}

TEST(FormatReward, VerdictAndBadRules) {
  VerifyInput input;
  input.response = "<think>a</think> \\boxed{1}";
  EXPECT_EQ(verify(find_verifier("format"), input).correct, true);
  input.fields = {{"format", {{{"type", "regex"}, {"pattern", "(unclosed"}}}}};
  const Verdict bad = verify(find_verifier("format"), input);
  EXPECT_FALSE(bad.correct.has_value());
  EXPECT_NE(bad.details["reason"].get<std::string>().find("format[0].pattern"), std::string::npos);
  EXPECT_THROW((void)FormatRules(nlohmann::json::array({{{"type", "xml"}}})), UserError);
  EXPECT_THROW((void)FormatRules(nlohmann::json::array()), UserError);
}

TEST(FormatReward, PathologicalPatternsStayLinear) {
  // (a*)*b against a long run of a's is exponential for a backtracking engine; RE2 is linear.
  const nlohmann::json rules = {{{"type", "regex"}, {"pattern", "(a*)*b"}}};
  EXPECT_EQ(held(rules, std::string(1 << 20, 'a')), (std::vector<bool>{false}));
}

}  // namespace
}  // namespace flywheel::verifiers
