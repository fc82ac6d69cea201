// libFuzzer target: every IFEval instruction (strict and loose) and the format rules on
// arbitrary bytes as the response.
#include <cstddef>
#include <cstdint>
#include <string>

#include "verifiers/format_reward.h"
#include "verifiers/ifeval.h"

namespace {

const nlohmann::json& kwargs_for(const std::string& id) {
  static const nlohmann::json kKwargs = {
      {"change_case:capital_word_frequency",
       {{"capital_frequency", 3}, {"capital_relation", "at least"}}},
      {"combination:repeat_prompt", {{"prompt_to_repeat", "Repeat this"}}},
      {"detectable_content:number_placeholders", {{"num_placeholders", 2}}},
      {"detectable_content:postscript", {{"postscript_marker", "P.S."}}},
      {"detectable_format:multiple_sections",
       {{"section_spliter", "Section"}, {"num_sections", 2}}},
      {"detectable_format:number_bullet_lists", {{"num_bullets", 3}}},
      {"detectable_format:number_highlighted_sections", {{"num_highlights", 2}}},
      {"keywords:existence", {{"keywords", {"a", "b"}}}},
      {"keywords:forbidden_words", {{"forbidden_words", {"x"}}}},
      {"keywords:frequency", {{"keyword", "ab"}, {"frequency", 2}, {"relation", "less than"}}},
      {"keywords:letter_frequency",
       {{"letter", "a"}, {"let_frequency", 2}, {"let_relation", "at least"}}},
      {"language:response_language", {{"language", "en"}}},
      {"length_constraints:nth_paragraph_first_word",
       {{"num_paragraphs", 2}, {"nth_paragraph", 2}, {"first_word", "a"}}},
      {"length_constraints:number_paragraphs", {{"num_paragraphs", 2}}},
      {"length_constraints:number_sentences", {{"num_sentences", 3}, {"relation", "at least"}}},
      {"length_constraints:number_words", {{"num_words", 3}, {"relation", "less than"}}},
      {"startend:end_checker", {{"end_phrase", "end."}}},
  };
  static const nlohmann::json kEmpty = nlohmann::json::object();
  return kKwargs.contains(id) ? kKwargs[id] : kEmpty;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string response(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> ids;
  std::vector<nlohmann::json> kwargs;
  for (const auto& id : flywheel::verifiers::ifeval_instruction_ids()) {
    ids.push_back(id);
    kwargs.push_back(kwargs_for(id));
  }
  (void)flywheel::verifiers::ifeval_evaluate(ids, kwargs, response);
  static const flywheel::verifiers::FormatRules rules(nlohmann::json::array(
      {{{"type", "think"}}, {{"type", "boxed"}}, {{"type", "regex"}, {"pattern", "(a|b)*c+$"}}}));
  (void)rules.check(response);
  return 0;
}
