// The text measures IFEval's reference takes from NLTK and langdetect, done with Debian's C/C++
// libraries. They approximate the reference (measured agreement: bench/README.md, "IFEval"):
//   sentences       NLTK's Punkt (english)       -> Punkt's decision rules without its trained
//                   tables: a sentence ends at ? and !, and at a word's final period whatever
//                   follows; after a number unless a lower-case word follows; after a known
//                   abbreviation (our list) or an ellipsis before a capital, after a title or
//                   an initial only before a common sentence-starting word. Line breaks alone
//                   end nothing.
//   word tokens     nltk.word_tokenize            -> a re-implementation of the Treebank rules
//                   that change how many tokens are upper case: punctuation split off,
//                   contractions ('s 'm 'd 'll 're 've n't, cannot, gonna...) split
//   language        langdetect                    -> CLD2 (Compact Language Detector 2); text
//                   it cannot identify passes, as a langdetect exception does in the reference
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace flywheel::verifiers {

size_t count_sentences(std::string_view text);
// How many of nltk.word_tokenize(text)'s tokens are upper case (str.isupper).
size_t count_capital_words(std::string_view text);
// An ISO 639-1 code ("en", "fa"), or nullopt when the detector cannot tell.
std::optional<std::string> detect_language(std::string_view text);

}  // namespace flywheel::verifiers
