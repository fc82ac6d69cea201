// The GSM8K checker: the hand-written case table (tests/data/verifiers/gsm8k_cases.jsonl), the
// number scanner, and every GSM8K test answer verifying against itself.
#include <gtest/gtest.h>

#include "tests/verifiers/case_table.h"
#include "verifiers/gsm8k.h"
#include "verifiers/verifier.h"

namespace flywheel::verifiers {
namespace {

TEST(Gsm8kChecker, CaseTable) {
  const auto rows = testing::read_jsonl(testing::verifier_cases("gsm8k_cases.jsonl"));
  ASSERT_GE(rows.size(), 15u);
  const VerifierInfo& gsm8k = find_verifier("gsm8k");
  for (const auto& row : rows) {
    const Verdict v = verify(gsm8k, testing::make_input(row["response"], row["ground_truth"]));
    ASSERT_TRUE(v.correct.has_value()) << row.dump();
    EXPECT_EQ(*v.correct, row["correct"].get<bool>())
        << row["why"] << ": " << row.dump() << " -> " << v.details.dump();
  }
}

TEST(Gsm8kChecker, NumberScanner) {
  EXPECT_EQ(last_number("a 0012.500 b"), "12.5");
  EXPECT_EQ(last_number("-0"), "0");
  EXPECT_EQ(last_number("(-3)"), "-3");
  EXPECT_EQ(last_number("is .5"), "0.5");
  EXPECT_EQ(last_number("12,345,678 and"), "12345678");
  EXPECT_EQ(last_number("ends 7."), "7");
  EXPECT_EQ(last_number("nothing"), std::nullopt);
}

TEST(Gsm8kChecker, NonNumericGroundTruthIsNotApplicable) {
  VerifyInput input;
  input.response = "5";
  input.ground_truth = "five";
  EXPECT_FALSE(verify(find_verifier("gsm8k"), input).correct.has_value());
}

TEST(Gsm8kChecker, EveryTestAnswerVerifiesAgainstItself) {
  const std::string path = testing::shared_dir() + "/data/gsm8k/test.jsonl";
  FLYWHEEL_REQUIRE_PATH(path);
  const auto rows = testing::read_jsonl(path);
  ASSERT_GT(rows.size(), 1000u);
  for (const auto& row : rows) {
    EXPECT_EQ(
        verify(find_verifier("gsm8k"), testing::make_input(row["answer"], row["answer"])).correct,
        true)
        << row.dump();
  }
}

}  // namespace
}  // namespace flywheel::verifiers
