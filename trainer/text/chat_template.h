// Chat templates that render a conversation to token ids plus the mask SFT/DPO train on: the
// model's own (`auto`, see model_chat_template.h) or one of the named built-ins:
//
//   tulu    <|system|>\n{c}\n  <|user|>\n{c}\n  <|assistant|>\n{c}{eos} (+ "\n" unless last turn)
//           as open-instruct renders Tulu; no bos in the template (add_bos prepends it).
//   llama2  {bos}[INST] <<SYS>>\n{sys}\n<</SYS>>\n\n{user} [/INST] {assistant} {eos} ...
//   chatml  <|im_start|>{role}\n{c}<|im_end|>\n
//   zephyr  <|{role}|>\n{c}{eos}\n
//
// The assistant mask is 1 on the tokens of each assistant message's content and its end token
// (eos, or <|im_end|> for chatml) and 0 everywhere else: role headers, system and user turns,
// and the "\n" separators between turns. For tulu this is exactly open-instruct's mask (it
// masks each non-assistant turn from the end of the rendered previous messages, which end at
// the eos, up to the assistant header). For chatml/zephyr, whose renderings end every turn
// with "\n", open-instruct's method would also train that separator; we do not, as TRL's
// assistant-only masks do not.
//
// `auto` renders the model's own Jinja template when its tokenizer has one (the template writes
// bos itself, so add_bos does not apply; ids are the text's encoding without added tokens, as
// apply_chat_template's) and falls back to tulu when it has none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "trainer/text/tokenizer.h"

namespace flywheel {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

struct RenderedChat {
  std::string text;                     // the rendered string (specials as literals)
  std::vector<int64_t> ids;             // token ids
  std::vector<uint8_t> assistant_mask;  // 1 = train on this token; same length as ids
};

struct ChatRenderOptions {
  bool add_bos = false;                // prepend tokenizer.bos_id() (tulu/chatml/zephyr)
  bool add_generation_prompt = false;  // end with the assistant header, for generation
  // Assistant messages before this index are context: rendered, never trained. A prompt that
  // is only rendered (for generation) sets kNoTraining, which also skips the masks' work.
  size_t first_trained = 0;
  // Extra variables for the model's own template (tools, enable_thinking, ...).
  nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();
};

inline constexpr size_t kNoTraining = static_cast<size_t>(-1);

// The name that selects the model's own template.
inline constexpr const char* kAutoChatTemplate = "auto";

// UserError for an unknown template name, an unknown role, or a role order the template
// cannot express (e.g. llama2 requires alternating user/assistant after an optional system).
RenderedChat render_chat(const std::string& template_name, const std::vector<ChatMessage>& messages,
                         const Tokenizer& tokenizer, const ChatRenderOptions& options = {});

// The model's own template over messages of any shape (tool calls, reasoning_content, ...), as
// `flywheel template` renders a user's file; UserError when the model has no template.
RenderedChat render_model_chat(const nlohmann::ordered_json& messages, const Tokenizer& tokenizer,
                               const ChatRenderOptions& options = {});

// The names accepted by render_chat ("auto" and the built-ins), for --help and error messages.
const std::vector<std::string>& chat_template_names();

}  // namespace flywheel
