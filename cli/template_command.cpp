// `flywheel template --model DIR --messages FILE.json`: renders a conversation with the model's
// chat template (or a built-in one, --chat) and shows which tokens training learns: on a
// terminal the trained text is green, otherwise it is wrapped in [[ ]]; a summary line
// follows. --json prints {"text", "ids", "mask"} instead.
//
// FILE.json holds a list of messages, or an object with "messages" whose other keys are passed
// to the template (tools, enable_thinking, ...).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/core/error.h"
#include "trainer/text/chat_template.h"
#include "trainer/text/decode_stream.h"

namespace flywheel::cli {
namespace {

using nlohmann::ordered_json;

ordered_json read_conversation(const std::string& path, ordered_json* kwargs) {
  std::ifstream in(path);
  if (!in) throw UserError("cannot read " + path);
  ordered_json j = ordered_json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw UserError(path + ": invalid JSON");
  if (j.is_object()) {
    if (!j.contains("messages"))
      throw UserError(path + ": expected a list of messages or an object with \"messages\"");
    ordered_json messages = j["messages"];
    j.erase("messages");
    *kwargs = std::move(j);
    j = std::move(messages);
  }
  if (!j.is_array() || j.empty())
    throw UserError(path + ": expected a non-empty list of {\"role\", \"content\"} messages");
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_object() || !j[i].contains("role") || !j[i]["role"].is_string())
      throw UserError(path + ": message " + std::to_string(i) +
                      ": expected an object with a "
                      "string \"role\"");
  }
  return j;
}

// Built-in templates take plain {role, content} messages.
std::vector<ChatMessage> plain_messages(const ordered_json& messages, const std::string& path) {
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (!m.contains("content") || !m["content"].is_string())
      throw UserError(path + ": message " + std::to_string(i) +
                      ": a built-in template needs a string \"content\"");
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

}  // namespace

int run_template(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"model", "DIR", "a model or tokenizer directory"},
      {"messages", "FILE", "the conversation: a JSON list of messages, or {\"messages\", ...}"},
      {"chat", "TEMPLATE",
       "auto (the model's own, default) or a built-in: chatml, llama2, tulu, "
       "zephyr"},
      {"generation-prompt", "", "end with the assistant header, as for generation"},
      {"json", "", "print {\"text\", \"ids\", \"mask\"}"},
  };
  Args args("template", specs, argv);
  if (args.help()) {
    std::fputs(format_help("template", "--model DIR --messages FILE.json",
                           "Renders a conversation with a chat template and marks the tokens "
                           "training learns.",
                           specs)
                   .c_str(),
               stdout);
    return 0;
  }
  const Tokenizer tok = Tokenizer::from_dir(args.require("model"));
  const std::string path = args.require("messages");
  ordered_json kwargs = ordered_json::object();
  const ordered_json messages = read_conversation(path, &kwargs);
  const std::string name = args.get("chat").value_or(kAutoChatTemplate);
  ChatRenderOptions options;
  options.add_bos = true;  // built-ins other than llama2 leave bos to the caller, as training does
  options.add_generation_prompt = args.flag("generation-prompt");
  options.template_kwargs = kwargs;
  const RenderedChat r = name == kAutoChatTemplate && !tok.chat_template().empty()
                             ? render_model_chat(messages, tok, options)
                             : render_chat(name, plain_messages(messages, path), tok, options);
  if (args.flag("json")) {
    ordered_json out = {{"text", r.text}, {"ids", r.ids}, {"mask", r.assistant_mask}};
    std::cout << out.dump(-1, ' ', false, ordered_json::error_handler_t::replace) << "\n";
    return 0;
  }
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  const char* open = tty ? "\033[32m" : "[[";
  const char* close = tty ? "\033[0m" : "]]";
  // The text token by token, special tokens included, with the trained runs marked.
  DecodeStream stream(tok, /*keep_special=*/true);
  std::string shown;
  bool in_trained = false;
  size_t trained = 0;
  for (size_t i = 0; i < r.ids.size(); ++i) {
    const bool t = r.assistant_mask[i] != 0;
    trained += t;
    if (t != in_trained) shown += t ? open : close;
    in_trained = t;
    shown += stream.push(r.ids[i]);
  }
  shown += stream.finish();
  if (in_trained) shown += close;
  std::cout << shown << "\n";
  std::fprintf(
      stderr, "template: %s, %zu tokens, %zu trained\n",
      name == kAutoChatTemplate && !tok.chat_template().empty() ? "the model's own" : name.c_str(),
      r.ids.size(), trained);
  return 0;
}

}  // namespace flywheel::cli
