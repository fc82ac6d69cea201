#include "trainer/text/chat_template.h"

#include "trainer/core/error.h"
#include "trainer/text/model_chat_template.h"

namespace flywheel {
namespace {

// A template renders a conversation as consecutive segments; the rendered text is their
// concatenation, and `trained` says whether the model learns to produce that segment.
struct Segment {
  std::string text;
  bool trained;
};
using Segments = std::vector<Segment>;
using Messages = std::vector<ChatMessage>;
using Renderer = Segments (*)(const Messages&, const Tokenizer&, bool generation_prompt);

bool is_last(size_t i, const Messages& messages) {
  return i + 1 == messages.size();
}

// open-instruct's Tulu template. The "\n" after a non-final assistant turn is not trained:
// open-instruct masks a user turn from the end of the rendered messages[:i], and that
// rendering ends at the eos, so the separator falls in the next (masked) turn.
Segments render_tulu(const Messages& messages, const Tokenizer& tok, bool generation_prompt) {
  Segments out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "assistant") {
      out.push_back({"<|assistant|>\n", false});
      out.push_back({m.content + tok.eos_token(), true});
      if (!is_last(i, messages)) out.push_back({"\n", false});
    } else {
      out.push_back({"<|" + m.role + "|>\n" + m.content + "\n", false});
    }
  }
  if (generation_prompt) out.push_back({"<|assistant|>\n", false});
  return out;
}

// chatml and zephyr render every message as header + content + end marker + "\n"; for the
// assistant, content and end marker are trained (the "\n" separator is not, as in Tulu).
Segments render_delimited(const Messages& messages, const std::string& header_open,
                          const std::string& header_close, const std::string& end,
                          bool generation_prompt) {
  Segments out;
  for (const ChatMessage& m : messages) {
    const bool assistant = m.role == "assistant";
    out.push_back({header_open + m.role + header_close, false});
    out.push_back({m.content + end, assistant});
    out.push_back({"\n", false});
  }
  if (generation_prompt) out.push_back({header_open + "assistant" + header_close, false});
  return out;
}

Segments render_chatml(const Messages& messages, const Tokenizer&, bool generation_prompt) {
  return render_delimited(messages, "<|im_start|>", "\n", "<|im_end|>", generation_prompt);
}

Segments render_zephyr(const Messages& messages, const Tokenizer& tok, bool generation_prompt) {
  return render_delimited(messages, "<|", "|>\n", tok.eos_token(), generation_prompt);
}

// Python's str.strip() as the Hugging Face template applies it, for ASCII whitespace.
std::string strip(const std::string& s) {
  const char* ws = " \t\n\v\f\r";
  const size_t begin = s.find_first_not_of(ws);
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(ws) - begin + 1);
}

// Hugging Face's Llama-2 chat template. The bos literal is part of every user turn, so the
// text itself carries the bos tokens and add_bos does not apply.
Segments render_llama2(const Messages& messages, const Tokenizer& tok, bool) {
  const bool has_system = messages.front().role == "system";
  const size_t first = has_system ? 1 : 0;
  if (first == messages.size()) {
    throw UserError("llama2 chat template: the system message must be followed by a user message");
  }
  Segments out;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const std::string expected = (i - first) % 2 == 0 ? "user" : "assistant";
    if (m.role != expected) {
      throw UserError("llama2 chat template: message " + std::to_string(i) + " has role '" +
                      m.role + "', expected '" + expected +
                      "' (roles must alternate user/assistant after an optional first system "
                      "message)");
    }
    if (m.role == "assistant") {
      out.push_back({" " + strip(m.content) + " " + tok.eos_token(), true});
      continue;
    }
    const std::string content = i == first && has_system ? "<<SYS>>\n" + messages.front().content +
                                                               "\n<</SYS>>\n\n" + m.content
                                                         : m.content;
    out.push_back({tok.bos_token() + "[INST] " + strip(content) + " [/INST]", false});
  }
  return out;
}

struct Template {
  const char* name;
  Renderer render;
  bool bos_in_text;  // the template writes bos itself, so add_bos is ignored
};

constexpr Template kTemplates[] = {
    {"chatml", render_chatml, false},
    {"llama2", render_llama2, true},
    {"tulu", render_tulu, false},
    {"zephyr", render_zephyr, false},
};

const Template& find_template(const std::string& name) {
  for (const Template& t : kTemplates) {
    if (name == t.name) return t;
  }
  std::string known;
  for (const std::string& n : chat_template_names())
    known += (known.empty() ? "" : ", ") + n;
  throw UserError("unknown chat template '" + name + "' (expected one of: " + known + ")");
}

void check_messages(const Messages& messages) {
  if (messages.empty()) throw UserError("render_chat: the conversation has no messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      throw UserError("render_chat: message " + std::to_string(i) + " has unknown role '" + role +
                      "' (expected system, user or assistant)");
    }
  }
}

// Tokenizes the whole text at once (so ids == tokenizer.encode(text)) and marks a token as
// trained when its first byte lies in a trained segment. Templates switch segments at a "\n",
// a space or a special literal, which SentencePiece pieces do not cross (a space only starts a
// piece); should a piece cross anyway, its first byte decides.
RenderedChat tokenize_segments(const Segments& segments, const Tokenizer& tok, bool add_bos) {
  RenderedChat out;
  std::vector<uint8_t> trained_byte;
  for (const Segment& s : segments) {
    out.text += s.text;
    trained_byte.insert(trained_byte.end(), s.text.size(), s.trained ? 1 : 0);
  }
  if (add_bos) {
    if (tok.bos_id() < 0) throw UserError("add_bos: this tokenizer model defines no bos token");
    out.ids.push_back(tok.bos_id());
    out.assistant_mask.push_back(0);
  }
  const Encoding encoding = tok.encode_with_spans(out.text);
  out.ids.insert(out.ids.end(), encoding.ids.begin(), encoding.ids.end());
  // Every token starts inside the text: a chunk's dummy-prefix piece takes the chunk's first
  // byte, and byte-fallback pieces start at their character.
  for (const auto& span : encoding.spans)
    out.assistant_mask.push_back(trained_byte.at(span.first));
  return out;
}

// The model's own template: the rendered text cut at the trained assistant messages' ranges.
Segments render_model(const nlohmann::ordered_json& json_messages, const Tokenizer& tok,
                      const ChatRenderOptions& options) {
  const auto& kwargs = options.template_kwargs;
  const std::string text =
      render_model_template(tok, json_messages, options.add_generation_prompt, kwargs);
  if (options.first_trained >= json_messages.size()) return {{text, false}};  // a prompt only
  // The ranges are those of the rendering without the generation prompt, a prefix of this one.
  const std::string plain = options.add_generation_prompt
                                ? render_model_template(tok, json_messages, false, kwargs)
                                : text;
  if (plain.size() > text.size() || text.compare(0, plain.size(), plain) != 0) {
    throw UserError(
        "the model's chat template does not render the generation prompt after the "
        "conversation");
  }
  Segments out;
  size_t at = 0;
  for (const auto& [begin, end] :
       model_template_assistant_ranges(tok, json_messages, kwargs, options.first_trained, plain)) {
    out.push_back({text.substr(at, begin - at), false});
    out.push_back({text.substr(begin, end - begin), true});
    at = end;
  }
  out.push_back({text.substr(at), false});
  return out;
}

}  // namespace

const std::vector<std::string>& chat_template_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v = {kAutoChatTemplate};
    for (const Template& t : kTemplates)
      v.emplace_back(t.name);
    return v;
  }();
  return names;
}

RenderedChat render_model_chat(const nlohmann::ordered_json& messages, const Tokenizer& tokenizer,
                               const ChatRenderOptions& options) {
  if (!messages.is_array() || messages.empty())
    throw UserError("render_chat: the conversation has no messages");
  return tokenize_segments(render_model(messages, tokenizer, options), tokenizer, false);
}

RenderedChat render_chat(const std::string& template_name, const std::vector<ChatMessage>& messages,
                         const Tokenizer& tokenizer, const ChatRenderOptions& options) {
  check_messages(messages);
  if (template_name == kAutoChatTemplate && !tokenizer.chat_template().empty()) {
    nlohmann::ordered_json json_messages = nlohmann::ordered_json::array();
    for (const ChatMessage& m : messages)
      json_messages.push_back({{"role", m.role}, {"content", m.content}});
    return render_model_chat(json_messages, tokenizer, options);
  }
  // `auto` without a template of the model's own: the built-in it was trained with, else tulu.
  const std::string fallback =
      tokenizer.trained_template().empty() ? "tulu" : tokenizer.trained_template();
  const Template& t = find_template(template_name == kAutoChatTemplate ? fallback : template_name);
  Segments segments = t.render(messages, tokenizer, options.add_generation_prompt);
  // Assistant segments of context messages (the first ones, in order) are not trained.
  size_t context = 0;
  for (size_t i = 0; i < options.first_trained && i < messages.size(); ++i)
    context += messages[i].role == "assistant";
  for (Segment& s : segments) {
    if (s.trained && context > 0) {
      s.trained = false;
      --context;
    }
  }
  return tokenize_segments(segments, tokenizer, options.add_bos && !t.bos_in_text);
}

}  // namespace flywheel
