// A model's own chat template: the Jinja source of its tokenizer_config.json (or
// chat_template.jinja), rendered as Hugging Face's apply_chat_template renders it (trim_blocks
// and lstrip_blocks on; variables messages, add_generation_prompt, bos_token, eos_token and any
// extra keyword such as tools or enable_thinking).
//
// What an assistant message contributes to the rendering is found by rendering prefixes of the
// conversation, the method open-instruct uses, so it holds for templates Flywheel has never
// seen: message i spans from the end of messages[:i] rendered with the generation prompt to the
// end of messages[:i+1] rendered without it, less the whitespace after its end-of-turn token
// (the separator before the next turn, which the model is not asked to produce). A template
// that renders earlier turns differently once later ones follow (Qwen3 drops the reasoning of
// turns before the last user message) has no such span for those turns; asking to train one is
// a UserError that says so.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "trainer/text/tokenizer.h"

namespace flywheel {

// UserError when the tokenizer's model ships no chat template, or the template fails (its
// message names the template line).
std::string render_model_template(const Tokenizer& tokenizer,
                                  const nlohmann::ordered_json& messages,
                                  bool add_generation_prompt, const nlohmann::ordered_json& kwargs);

// The byte ranges [begin, end) of `rendered` (the whole conversation rendered without the
// generation prompt) produced by assistant messages from index first_trained on, in order.
std::vector<std::pair<size_t, size_t>> model_template_assistant_ranges(
    const Tokenizer& tokenizer, const nlohmann::ordered_json& messages,
    const nlohmann::ordered_json& kwargs, size_t first_trained, const std::string& rendered);

}  // namespace flywheel
