// IFEval: the 25 instruction types of Google's instruction-following benchmark, with its strict
// and loose modes, following the reference implementation's semantics (instruction_following_eval
// in google-research, as packaged in lm-eval): relations "less than" (<) and "at least" (>=);
// keyword existence and frequency are case-insensitive substring counts, forbidden words
// whole-word; bullets and paragraphs exact counts, sections / highlights / placeholders at least.
//   strict: the response (not blank) follows the instruction;
//   loose:  any of eight variants does — the response, without its first line, its last line or
//           both (each stripped), and each of those four with every '*' deleted.
// Where the reference calls NLTK or langdetect, ifeval_text.h says what stands in.
// A literal letter is counted for keywords:letter_frequency even when it is not a-z ('#', '!'),
// as the current reference does (older copies substituted a random letter there).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "verifiers/verifier.h"

namespace flywheel::verifiers {

// Whether `response` follows instruction `id` with `kwargs`. Throws UserError for an unknown id
// or kwargs the instruction cannot use (a data error, not a model error).
bool ifeval_follows(const std::string& id, const nlohmann::json& kwargs, std::string_view response);

struct IfevalResult {
  std::vector<bool> strict, loose;  // one per instruction
};
IfevalResult ifeval_evaluate(const std::vector<std::string>& ids,
                             const std::vector<nlohmann::json>& kwargs, std::string_view response);

const std::vector<std::string>& ifeval_instruction_ids();

// The RLVR checker: correct when every instruction is followed (strict); details carry the
// per-instruction strict and loose results and the satisfied fraction. Reads
// fields["instruction_id_list"] and fields["kwargs"], or the same two keys of a JSON object in
// the ground truth (RLVR rows); not applicable without them.
Verdict check_ifeval(const VerifyInput& input);

}  // namespace flywheel::verifiers
