// MATH-500 self-consistency: every reference solution, through the MATH checker, against its own
// answer field (target >= 99%; each failure printed with its reason), and the checker's
// false-positive rate on wrong answers made from the same data below 1%.
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/verifiers/case_table.h"
#include "verifiers/verifier.h"

namespace flywheel {
namespace {

std::string math500_path() {
  return testing::shared_dir() + "/data/math500/test.jsonl";
}

std::vector<nlohmann::json> math500() {
  return testing::read_jsonl(math500_path());
}

TEST(Math500, ReferenceSolutionsVerifyAgainstTheirAnswers) {
  FLYWHEEL_REQUIRE_PATH(math500_path());
  const auto rows = math500();
  ASSERT_FALSE(rows.empty());
  const VerifierInfo& math = find_verifier("math");
  int passed = 0;
  for (const auto& row : rows) {
    const Verdict v = verify(math, testing::make_input(row["solution"], row["answer"]));
    if (v.correct == true) {
      ++passed;
    } else {
      std::printf("FAIL %s: answer %s; %s\n", row["unique_id"].get<std::string>().c_str(),
                  row["answer"].dump().c_str(), v.details.dump().c_str());
    }
  }
  const double rate = static_cast<double>(passed) / static_cast<double>(rows.size());
  std::printf("MATH-500 self-consistency: %d / %zu = %.4f\n", passed, rows.size(), rate);
  EXPECT_GE(rate, 0.99);
}

// `answer` with its last number raised by one ("\\frac{14}{3}" -> "\\frac{14}{4}"); empty when
// it has no digits.
std::string bump_last_number(const std::string& answer) {
  size_t end = answer.size();
  while (end > 0 && !std::isdigit(static_cast<unsigned char>(answer[end - 1])))
    --end;
  if (end == 0) return {};
  size_t start = end;
  while (start > 0 && std::isdigit(static_cast<unsigned char>(answer[start - 1])))
    --start;
  std::string digits = answer.substr(start, end - start);
  // Decimal increment of the digit string (no overflow, any length).
  int i = static_cast<int>(digits.size()) - 1;
  while (i >= 0 && digits[static_cast<size_t>(i)] == '9')
    digits[static_cast<size_t>(i--)] = '0';
  if (i < 0) {
    digits.insert(digits.begin(), '1');
  } else {
    ++digits[static_cast<size_t>(i)];
  }
  return answer.substr(0, start) + digits + answer.substr(end);
}

// Wrong answers made from every MATH-500 answer: its last number raised by one, and its
// negation. A wrong answer judged correct is a false positive; the rate must stay below 1%.
TEST(Math500, WrongAnswersAreRejected) {
  FLYWHEEL_REQUIRE_PATH(math500_path());
  const auto rows = math500();
  const VerifierInfo& math = find_verifier("math");
  int wrong = 0, accepted = 0;
  for (const auto& row : rows) {
    const std::string answer = row["answer"].get<std::string>();
    std::vector<std::string> candidates;
    if (auto bumped = bump_last_number(answer); !bumped.empty()) candidates.push_back(bumped);
    if (answer != "0") candidates.push_back("-(" + answer + ")");
    for (const auto& candidate : candidates) {
      ++wrong;
      const Verdict v = verify(math, testing::make_input("\\boxed{" + candidate + "}", answer));
      if (v.correct == true) {
        ++accepted;
        std::printf("ACCEPTED %s for %s: %s\n", candidate.c_str(), answer.c_str(),
                    v.details.dump().c_str());
      }
    }
  }
  const double rate = static_cast<double>(accepted) / static_cast<double>(wrong);
  std::printf("MATH-500 wrong answers accepted: %d / %d = %.4f\n", accepted, wrong, rate);
  EXPECT_GT(wrong, 900);
  EXPECT_LT(rate, 0.01);
}

}  // namespace
}  // namespace flywheel
