// The MATH checker: the hand-written case table (tests/data/verifiers/math_cases.jsonl),
// extraction and normalization steps, exact values, and scoring.
#include <gtest/gtest.h>

#include "tests/verifiers/case_table.h"
#include "verifiers/math_answer.h"
#include "verifiers/math_expr.h"
#include "verifiers/math_value.h"
#include "verifiers/verifier.h"

namespace flywheel::verifiers {
namespace {

using testing::make_input;

TEST(MathChecker, CaseTable) {
  const auto rows = testing::read_jsonl(testing::verifier_cases("math_cases.jsonl"));
  ASSERT_GE(rows.size(), 40u);
  const VerifierInfo& math = find_verifier("math");
  int positives = 0, negatives = 0;
  for (const auto& row : rows) {
    const bool want = row["correct"].get<bool>();
    const Verdict v = verify(math, make_input(row["response"], row["ground_truth"]));
    ASSERT_TRUE(v.correct.has_value()) << row.dump();
    EXPECT_EQ(*v.correct, want) << row["why"] << ": " << row.dump() << " -> " << v.details.dump();
    ++(want ? positives : negatives);
  }
  EXPECT_GE(positives, 20);
  EXPECT_GE(negatives, 20);
}

TEST(MathChecker, ExtractionRules) {
  EXPECT_EQ(last_boxed(R"(a \boxed{x^{2}} b \boxed{\{1\}})"), std::string(R"(\{1\})"));
  EXPECT_EQ(last_boxed(R"(so \boxed 5$ done)"), std::string("5"));
  EXPECT_EQ(last_boxed(R"(\boxed{\frac{1}{2})"), std::nullopt);
  // Over 64 bytes with no box and no answer phrase: no answer.
  EXPECT_EQ(
      extract_math_answer("I could not finish this one; the numbers 3 and 7 both look plausible."),
      std::nullopt);
  EXPECT_EQ(extract_math_answer(" 42 ")->rule, "whole");
  const auto minerva = extract_math_answer(
      "Work.\nFinal Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.");
  ASSERT_TRUE(minerva);
  EXPECT_EQ(minerva->rule, "minerva");
  EXPECT_EQ(minerva->text, "$\\frac{1}{2}$");
  const auto phrase = extract_math_answer("Thus the answer is $x^2$. Next we check.");
  ASSERT_TRUE(phrase);
  EXPECT_EQ(phrase->text, "x^2");
}

TEST(MathChecker, NormalizationSteps) {
  EXPECT_EQ(normalize_math_answer(R"(\left( 3, \dfrac{\pi}{2} \right))"), R"((3,\frac{\pi}{2}))");
  EXPECT_EQ(normalize_math_answer(R"(\frac 59)"), R"(\frac{5}{9})");
  EXPECT_EQ(normalize_math_answer(R"(\frac{\sqrt3}2)"), R"(\frac{\sqrt{3}}{2})");
  EXPECT_EQ(normalize_math_answer(R"(\$32,\!348)"), "32348");
  EXPECT_EQ(normalize_math_answer(R"(\frac{270}7\text{ degrees})"), R"(\frac{270}{7})");
  EXPECT_EQ(normalize_math_answer(R"(5.4 \text{ cents})"), "5.4");
  EXPECT_EQ(normalize_math_answer("12 inches"), "12");
  EXPECT_EQ(normalize_math_answer(R"(x \in [-2,7])"), "[-2,7]");
  EXPECT_EQ(normalize_math_answer(R"(\cot x)"), R"(\cot x)");
  EXPECT_EQ(normalize_math_answer(R"(\begin{pmatrix} 1 \\ 2 \end{pmatrix})"),
            R"(\begin{pmatrix}1\\2\end{pmatrix})");
  // An equation with a long left side stays an equation.
  EXPECT_EQ(normalize_math_answer("2x + y = 4"), "2x+y=4");
}

TEST(MathValue, ExactArithmeticInTheSurdBasis) {
  const Value two(Rational(2)), three(Rational(3));
  const Value r2 = two.root(2), r3 = three.root(2);
  EXPECT_TRUE((r2 * r2).equals(two));
  EXPECT_TRUE((r2 * r3).equals(Value(Rational(6)).root(2)));
  EXPECT_TRUE((Value(Rational(12)).root(2)).equals(two * r3));
  EXPECT_TRUE((Value(Rational(1)) / r3).equals(r3 / three));
  EXPECT_TRUE(
      ((r2 + Value(Rational(1))).pow(Value(Rational(2)))).equals(Value(Rational(3)) + two * r2));
  EXPECT_TRUE((Value::pi() * Value(Rational(3)) / Value(Rational(6))).equals(Value::pi() / two));
  EXPECT_TRUE(r2.exact());
  EXPECT_FALSE(r2.equals(Value(Rational(14142135623730951LL, 10000000000000000LL))));
  // Out of the basis: numeric, within 1e-9 relative.
  const Value cube = two.root(3);
  EXPECT_FALSE(cube.exact());
  EXPECT_TRUE(cube.pow(Value(Rational(3))).equals(two));
  // int64 overflow turns into a numeric value, not a wrong exact one.
  const Value big = Value(Rational(1LL << 40)) * Value(Rational(1LL << 40));
  EXPECT_FALSE(big.exact());
  EXPECT_TRUE(big.equals(Value(Rational(1LL << 40)).pow(Value(Rational(2)))));
}

TEST(MathChecker, ScoresAndNotApplicable) {
  VerifyOptions options;
  options.success_reward = 10;
  const VerifierInfo& math = find_verifier("MATH");  // names match ignoring case
  EXPECT_EQ(verify(math, make_input("\\boxed{4}", "4"), options).score, 10);
  EXPECT_EQ(verify(math, make_input("\\boxed{5}", "4"), options).score, 0);
  const Verdict na = verify(math, make_input("\\boxed{5}", "   "), options);
  EXPECT_FALSE(na.correct.has_value());
  EXPECT_EQ(na.score, 0);
  // The ground truth may be a whole solution: its last box is the answer.
  EXPECT_EQ(verify(math, make_input("\\boxed{4}", "so $2+2=\\boxed{4}$")).correct, true);
  EXPECT_THROW(find_verifier("nope"), UserError);
}

}  // namespace
}  // namespace flywheel::verifiers
