#include "trainer/text/model_chat_template.h"

#include <cctype>

#include "trainer/core/error.h"
#include "trainer/text/jinja/template.h"

namespace flywheel {
namespace {

using nlohmann::ordered_json;

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

ordered_json head(const ordered_json& messages, size_t n) {
  return ordered_json(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(n));
}

}  // namespace

std::string render_model_template(const Tokenizer& tokenizer, const ordered_json& messages,
                                  bool add_generation_prompt, const ordered_json& kwargs) {
  if (tokenizer.chat_template().empty()) {
    throw UserError(
        "the model's tokenizer ships no chat_template (in tokenizer_config.json or "
        "chat_template.jinja); name a built-in template instead");
  }
  // As transformers builds it: tools and documents null unless given, the special tokens the
  // tokenizer has (a missing bos stays undefined), then the caller's keywords, which may
  // override them, then the conversation.
  ordered_json context = {{"tools", nullptr}, {"documents", nullptr}};
  if (tokenizer.bos_id() >= 0) context["bos_token"] = tokenizer.bos_token();
  if (tokenizer.eos_id() >= 0) context["eos_token"] = tokenizer.eos_token();
  if (kwargs.is_object()) {
    for (const auto& [key, value] : kwargs.items())
      context[key] = value;
  }
  context["messages"] = messages;
  context["add_generation_prompt"] = add_generation_prompt;
  return tokenizer.compiled_chat_template()->render(context);
}

std::vector<std::pair<size_t, size_t>> model_template_assistant_ranges(
    const Tokenizer& tokenizer, const ordered_json& messages, const ordered_json& kwargs,
    size_t first_trained, const std::string& rendered) {
  std::vector<std::pair<size_t, size_t>> ranges;
  for (size_t i = first_trained; i < messages.size(); ++i) {
    if (messages[i].value("role", "") != "assistant") continue;
    if (i == 0) {
      throw UserError(
          "the conversation starts with an assistant message: there is no prompt "
          "to train it after");
    }
    const std::string before = render_model_template(tokenizer, head(messages, i), true, kwargs);
    const std::string through =
        render_model_template(tokenizer, head(messages, i + 1), false, kwargs);
    if (!starts_with(rendered, before) || !starts_with(rendered, through) ||
        through.size() < before.size()) {
      throw UserError("the model's chat template renders message " + std::to_string(i) +
                      " (assistant) differently once later messages follow, so its tokens "
                      "cannot be found by rendering prefixes; train only later assistant turns "
                      "(e.g. put this one in the prompt) or name a built-in template");
    }
    size_t end = through.size();
    while (end > before.size() && std::isspace(static_cast<unsigned char>(rendered[end - 1])))
      --end;
    ranges.emplace_back(before.size(), end);
  }
  return ranges;
}

}  // namespace flywheel
