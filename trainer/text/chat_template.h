// Named chat templates that render a conversation to token ids plus the mask SFT/DPO train on.
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
#pragma once

#include <cstdint>
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
};

// UserError for an unknown template name, an unknown role, or a role order the template
// cannot express (e.g. llama2 requires alternating user/assistant after an optional system).
RenderedChat render_chat(const std::string& template_name, const std::vector<ChatMessage>& messages,
                         const Tokenizer& tokenizer, const ChatRenderOptions& options = {});

// The names accepted by render_chat, for --help and error messages.
const std::vector<std::string>& chat_template_names();

}  // namespace flywheel
