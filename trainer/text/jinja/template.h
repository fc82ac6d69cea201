// Jinja2 chat templates, as Hugging Face's apply_chat_template renders them: a sandboxed
// jinja2 Environment with trim_blocks and lstrip_blocks, no autoescaping, loop controls
// (break/continue), the {% generation %} tag, and the globals raise_exception, strftime_now,
// namespace, dict, range, joiner.
//
//   jinja::Template chat(config["chat_template"], "llama3/chat_template");
//   std::string text = chat.render({{"messages", messages}, {"add_generation_prompt", true},
//                                   {"bos_token", "<s>"}, {"eos_token", "</s>"}});
//
// Every error a template can cause, at parse or render time, is a UserError
// "NAME:LINE: what went wrong", raise_exception("msg") included.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace flywheel::jinja {

struct TemplateOptions {
  // Hugging Face's apply_chat_template compiles templates with trim_blocks and lstrip_blocks on.
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

struct Program;

class Template {
 public:
  // Parses once; UserError "NAME:LINE: ..." on a syntax error.
  Template(const std::string& source, std::string name, TemplateOptions options = {});

  // context: a JSON object whose keys become the template's variables (messages, tools,
  // add_generation_prompt, bos_token, eos_token, and any extra keyword such as
  // enable_thinking). Thread-safe: renders share only the immutable parsed program.
  std::string render(const nlohmann::ordered_json& context) const;

  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::shared_ptr<const Program> program_;
};

}  // namespace flywheel::jinja
