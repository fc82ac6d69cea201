// Style control (style_control.h, rating.h): the markdown counts of Chatbot Arena's patterns,
// the standardized features, and the joint fit recovering a planted length effect.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "tests/eval/ratings_util.h"
#include "trainer/eval/style_control.h"

namespace flywheel {
namespace {

// Each expectation is counted by hand from the patterns in style_control.h (and agrees with
// Python's re on the same strings).
TEST(MeasureStyle, ChatbotArenaPatterns) {
  // One header of each level 1..6; "#######" has seven, "#nospace" no whitespace.
  EXPECT_EQ(
      measure_style("# T\n## S\n### a\n#### b\n##### c\n###### d\n####### e\n#nospace\n").headers,
      6);
  // "1." "2." ordered; "  -" "*" "+" unordered; "-no", "3.no", "10.5 x" are not items.
  EXPECT_EQ(measure_style("1. one\n2. two\n  - a\n* b\n+ c\n-no\n3.no\n10.5 x\n").lists, 5);
  // ^\s* runs over the blank lines before the item, which still counts once.
  EXPECT_EQ(measure_style("text\n\n\n1. x\n").lists, 1);
  // **bold**, __also__, and (as re.findall scans on) "** x **" between the failed pair's closing
  // stars and the last ones; "**not\nbold**" spans a newline and is not bold.
  EXPECT_EQ(measure_style("**bold** and __also__ and **not\nbold** x ** y").bold, 3);
  EXPECT_EQ(measure_style("a **b**c**d** e").bold, 2);
  // Code blocks' contents are removed before counting.
  const StyleCounts code = measure_style("```\n# not a header\n- not a list\n```\n# header\n");
  EXPECT_EQ(code.headers, 1);
  EXPECT_EQ(code.lists, 0);
  // remove_pattern deletes the block's text wherever it occurs: the list item after the block
  // is the same text, so it goes too.
  EXPECT_EQ(measure_style("```\n- item\n```\n\n- item\n").lists, 0);
  // Length in code points: "héllo" is 6 bytes, 5 code points.
  EXPECT_EQ(measure_style("h\xc3\xa9llo").length, 5);
  const BattleStyle both = measure_battle_style("# a", "b");
  EXPECT_EQ(both.a.headers, 1);
  EXPECT_EQ(both.b.length, 1);
}

// Two battles with lengths (3, 1) and (1, 3): features (3 - 1)/(3 + 1 + 1) = 0.4 and -0.4.
// With weights 3 and 1 (repetitions): mean (3 · 0.4 - 0.4) / 4 = 0.2, variance
// (3 · 0.2² + 0.6²) / 4 = 0.12, so x = 0.2 / √0.12 and -0.6 / √0.12. Headers are 0 everywhere:
// that column does not vary.
TEST(StyleMatrix, WeightedStandardization) {
  BattleLog log;
  Battle x = testing::make_battle(&log, "A", "B", Winner::kA);
  x.weight = 3;
  log.add(x, BattleStyle{{3, 0, 1, 0}, {1, 0, 0, 0}}, "t");
  log.add(testing::make_battle(&log, "A", "B", Winner::kB), BattleStyle{{1, 0, 0, 0}, {3, 0, 1, 0}},
          "t");
  const StyleMatrix m = style_matrix(log);
  EXPECT_NEAR(m.x[0], 0.2 / std::sqrt(0.12), 1e-12);
  EXPECT_NEAR(m.x[kStyleFeatures], -0.6 / std::sqrt(0.12), 1e-12);
  EXPECT_FALSE(m.varies[1]);
  EXPECT_EQ(m.x[1], 0);
  EXPECT_TRUE(m.varies[2]);
}

TEST(StyleMatrix, BattleWithoutStyleIsNamed) {
  BattleLog log;
  log.add(testing::make_battle(&log, "A", "B", Winner::kA), BattleStyle{}, "t");
  log.add(testing::make_battle(&log, "A", "B", Winner::kA), std::nullopt, "f.jsonl:2 (why)");
  try {
    style_matrix(log);
    ADD_FAILURE();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("f.jsonl:2 (why) has none"), std::string::npos);
  }
}

// Four players with known ratings; answers of random length, p0's twice as long. The judge
// likes length: log-odds = α (β_a - β_b) + γ d with d = (len_a - len_b)/(len_a + len_b + 1),
// γ = 2; headers, lists and bold are random and ignored. The fitted length coefficient is per
// standard deviation of d, so it should be γ · sd(d); the others 0. 40000 battles: the
// coefficients' standard error is about 1 / √(40000 · 0.2) = 0.011 (tolerance 0.05), the
// ratings' about 400 / (ln 10 · √(20000 · 0.2)) = 2.7 (tolerance 12). L2 = 0.5 against an
// information of ~8000 shrinks by under 1e-4. Without style control p0's long answers lift it
// well above its true rating.
TEST(StyleControl, RecoversPlantedLengthEffect) {
  const std::vector<double> truth = {1000, 1050, 950, 1000};  // mean 1000
  const double gamma = 2.0, alpha = std::log(10.0);
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> u(0, 1);
  std::uniform_int_distribution<int> pick(0, 3), len(50, 1000), count(0, 5);
  BattleLog log;
  for (int i = 0; i < 4; ++i)
    log.player("p" + std::to_string(i));
  std::vector<double> d;
  for (int n = 0; n < 40000; ++n) {
    Battle b;
    b.a = pick(rng);
    do
      b.b = pick(rng);
    while (b.b == b.a);
    b.prompt = log.new_prompt();
    BattleStyle s;
    s.a = {double(len(rng)) * (b.a == 0 ? 2 : 1), double(count(rng)), double(count(rng)),
           double(count(rng))};
    s.b = {double(len(rng)) * (b.b == 0 ? 2 : 1), double(count(rng)), double(count(rng)),
           double(count(rng))};
    d.push_back((s.a.length - s.b.length) / (s.a.length + s.b.length + 1));
    const double z = alpha * (truth[b.a] - truth[b.b]) / 400 + gamma * d.back();
    b.winner = u(rng) < 1 / (1 + std::exp(-z)) ? Winner::kA : Winner::kB;
    log.add(b, s, "simulated");
  }
  double mean = 0, var = 0;
  for (double v : d)
    mean += v / d.size();
  for (double v : d)
    var += (v - mean) * (v - mean) / d.size();

  RatingOptions options;
  options.style_control = true;
  const RatingFit fit = testing::fit_log(log, options);
  EXPECT_NEAR(fit.style[0], gamma * std::sqrt(var), 0.05);
  for (int k = 1; k < kStyleFeatures; ++k)
    EXPECT_NEAR(fit.style[k], 0, 0.05) << k;
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(fit.rating[i], truth[i], 12) << i;

  const RatingFit plain = testing::fit_log(log);
  EXPECT_GT(plain.rating[0] - truth[0], 40);
  EXPECT_TRUE(std::isnan(plain.style[0]));
}

}  // namespace
}  // namespace flywheel
