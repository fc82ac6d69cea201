// Style control as on Chatbot Arena (fastchat/serve/monitor/rating_systems.py,
// preprocess_for_style and the contextual Bradley–Terry fit): each battle gets four features,
// length, headers, lists and bold, each the normalized difference (a - b) / (a + b + 1) of the
// two sides' counts, standardized over the battles (mean 0, population standard deviation 1,
// battle weights counted as repetitions); their coefficients θ are fitted jointly with the
// ratings in one logistic model,
//
//   log-odds(a beats b) = α (β_a - β_b) + θ · x,
//
// so the ratings are what remains once the judges' taste for longer, more formatted answers is
// accounted for. θ_k is the change in log-odds per standard deviation of feature k. Chatbot
// Arena fits this with an L2 penalty (reg = 0.5 on the undoubled rows, scikit-learn's default
// C = 1 on its doubled rows); RatingOptions::style_l2 keeps that default.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/eval/battles.h"

namespace flywheel {

// ---- measuring an answer ----

// The style counts of one answer, by the patterns Chatbot Arena uses
// (fastchat/serve/monitor/add_markdown_info.py): first the contents of ``` code blocks are
// removed (as its remove_pattern does), then
//   headers  lines matching ^#{n}\s for n = 1..6 (exactly n '#', then whitespace)
//   lists    ^\s*\d+\.\s (ordered) plus ^\s*[-*+]\s (unordered), counted as re.findall does
//            with re.MULTILINE, so \s* may run over blank lines
//   bold     \*\*[^*\n]+\*\* plus __[^_\n]+__
// \s and \d are ASCII here (Python's also take Unicode spaces and digits). `length` is the
// number of Unicode code points of the whole answer (Chatbot Arena counts tiktoken tokens;
// a caller that has a tokenizer may overwrite it with a token count).
StyleCounts measure_style(std::string_view answer);
BattleStyle measure_battle_style(std::string_view answer_a, std::string_view answer_b);

// ---- the design matrix ----

inline constexpr int kStyleFeatures = 4;
inline constexpr std::array<const char*, kStyleFeatures> kStyleFeatureNames = {"length", "headers",
                                                                               "lists", "bold"};

struct StyleMatrix {
  std::vector<double> x;                         // [N, K] standardized features, log order
  std::array<bool, kStyleFeatures> varies = {};  // false: the feature is the same in every
                                                 // battle, so its column is 0 and θ_k is not
                                                 // estimated (Chatbot Arena would divide by 0)
};

// The features of every battle of the log. UserError naming the first battle without style
// features when there is one.
StyleMatrix style_matrix(const BattleLog& log);

}  // namespace flywheel
