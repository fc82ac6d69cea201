// Reading an LLM judge's verdict: MT-Bench's [[A]]/[[B]]/[[C]] and Arena-Hard's [[A>>B]] ...
// [[B>>A]], on clean, malformed, ambiguous and hostile outputs, and the judge's prompt.
#include <gtest/gtest.h>

#include <string>

#include "trainer/core/error.h"
#include "trainer/eval/verdicts.h"

namespace flywheel {
namespace {

ParsedVerdict mt(const std::string& s) {
  return parse_verdict(s, VerdictFormat::kMtBench);
}
ParsedVerdict ah(const std::string& s) {
  return parse_verdict(s, VerdictFormat::kArenaHard);
}

TEST(Verdicts, MtBenchTokens) {
  EXPECT_EQ(mt("A is more accurate. Final verdict: [[A]]").verdict->outcome, Outcome::kA);
  EXPECT_EQ(mt("[[B]]").verdict->outcome, Outcome::kB);
  const auto tie = mt("Both are equally good: [[C]].");
  EXPECT_EQ(tie.verdict->outcome, Outcome::kTie);
  EXPECT_EQ(tie.verdict->label, "C");
  EXPECT_EQ(tie.problem, VerdictProblem::kNone);
  // The same token repeated is one verdict.
  EXPECT_EQ(mt("[[B]] ... so again [[B]]").verdict->label, "B");
}

TEST(Verdicts, MtBenchMalformedAndAmbiguous) {
  for (const std::string s :
       {"", "A is better", "[A]", "[[a]]", "[[ A ]]", "[[D]]", "[[A]", "[[AB]]", "[[A>B]]"}) {
    const auto p = mt(s);
    EXPECT_FALSE(p.verdict) << s;
    EXPECT_EQ(p.problem, VerdictProblem::kNoVerdict) << s;
  }
  // FastChat would say A here (it tests A first); two different tokens are not a verdict.
  const auto both = mt("Output [[A]] if A is better, [[B]] if B is better");
  EXPECT_FALSE(both.verdict);
  EXPECT_EQ(both.problem, VerdictProblem::kAmbiguous);
  EXPECT_EQ(both.found, "[[A]] [[B]]");
  EXPECT_EQ(mt("[[C]] then [[B]]").problem, VerdictProblem::kAmbiguous);
}

TEST(Verdicts, ArenaHardLabels) {
  struct Case {
    const char* output;
    Outcome outcome;
    bool strong;
    const char* label;
  };
  for (const Case& c :
       {Case{"My final verdict is: [[A>>B]]", Outcome::kA, true, "A>>B"},
        Case{"[[A>B]]", Outcome::kA, false, "A>B"},
        Case{"tie: [[A=B]]", Outcome::kTie, false, "A=B"},
        Case{"[[B>A]].", Outcome::kB, false, "B>A"}, Case{"[[B>>A]]", Outcome::kB, true, "B>>A"},
        // v2's mirrored spellings, read as arena_hard.h reads them.
        Case{"[[A<B]]", Outcome::kB, false, "B>A"}, Case{"[[A<<B]]", Outcome::kB, true, "B>>A"},
        Case{"[[B<A]]", Outcome::kA, false, "A>B"}, Case{"[[B<<A]]", Outcome::kA, true, "A>>B"},
        Case{"[[B=A]]", Outcome::kTie, false, "A=B"},
        // The same label twice agrees with itself.
        Case{"[[A>B]] ... Final: [[A>B]]", Outcome::kA, false, "A>B"},
        // No double brackets: the single-bracket pattern is the fallback.
        Case{"verdict [B>>A]", Outcome::kB, true, "B>>A"},
        // A double-bracket match wins over single-bracket ones.
        Case{"[A>B] but finally [[B>A]]", Outcome::kB, false, "B>A"}}) {
    const auto p = ah(c.output);
    ASSERT_TRUE(p.verdict) << c.output;
    EXPECT_EQ(p.verdict->outcome, c.outcome) << c.output;
    EXPECT_EQ(p.verdict->strong, c.strong) << c.output;
    EXPECT_EQ(p.verdict->label, c.label) << c.output;
  }
}

TEST(Verdicts, ArenaHardUnparseable) {
  // Distinct matches disagree: Arena-Hard v0.1 returns no score, and so do we.
  const auto two = ah("Not [[A>>B]], rather [[A>B]]");
  EXPECT_EQ(two.problem, VerdictProblem::kAmbiguous);
  EXPECT_EQ(two.found, "A>>B A>B");
  // Well-formed brackets around something that is not a label.
  const auto odd = ah("[[A>>>B]]");
  EXPECT_EQ(odd.problem, VerdictProblem::kUnknownLabel);
  EXPECT_EQ(odd.found, "A>>>B");
  EXPECT_EQ(ah("[[AB]]").problem, VerdictProblem::kUnknownLabel);
  EXPECT_EQ(ah("[[A]]").problem, VerdictProblem::kUnknownLabel);  // MT-Bench's token here
  for (const std::string s : {"", "A>B", "[[ A>B ]]", "[[a>b]]", "[[]]", "[[C]]"})
    EXPECT_EQ(ah(s).problem, VerdictProblem::kNoVerdict) << s;
  // A double bracket left open still holds a single-bracket match, as Arena-Hard's fallback
  // pattern finds it.
  EXPECT_EQ(ah("[[A>B]").verdict->label, "A>B");
}

TEST(Verdicts, HostileOutputs) {
  // Long runs of label characters and brackets: a backtracking regex could blow its stack;
  // the scan is linear and finds nothing (or the one real verdict).
  const std::string run(200000, 'A');
  EXPECT_EQ(ah("[[" + run).problem, VerdictProblem::kNoVerdict);
  EXPECT_EQ(ah("[[" + run + "]]").problem, VerdictProblem::kUnknownLabel);
  EXPECT_EQ(ah(std::string(100000, '[') + "A>B" + std::string(100000, ']')).verdict->label, "A>B");
  EXPECT_EQ(mt(std::string(100000, '[') + "B]]").verdict->label, "B");
  const std::string binary("\0[[\xff\xfe]]\0[[B>A]]", 16);
  EXPECT_EQ(ah(binary).verdict->label, "B>A");
}

TEST(Verdicts, Template) {
  const std::string& t = default_judge_template();
  check_judge_template(t, "builtin");
  EXPECT_EQ(template_verdict_format(t), VerdictFormat::kMtBench);
  EXPECT_EQ(template_verdict_format("say [[A>>B]] ... [[B>>A]]"), VerdictFormat::kArenaHard);
  EXPECT_FALSE(template_verdict_format("no verdict format here"));
  // One pass: an answer holding a placeholder is not expanded; other braces stay.
  EXPECT_EQ(
      fill_judge_template("Q={question} A={answer_a} B={answer_b} {x}", "q?", "{answer_b}", "b"),
      "Q=q? A={answer_b} B=b {x}");
  try {
    check_judge_template("{question} {answer_a}", "judge.txt");
    ADD_FAILURE() << "expected a UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("judge.txt: the judge template has no {answer_b}"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(parse_verdict_format("arena-hard", "--verdict-format"), VerdictFormat::kArenaHard);
  EXPECT_THROW(parse_verdict_format("pairwise", "--verdict-format"), UserError);
  EXPECT_STREQ(winner_name(Outcome::kTieBothBad), "tie (bothbad)");
}

}  // namespace
}  // namespace flywheel
