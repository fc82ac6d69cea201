#include "trainer/text/chat_template.h"

#include <gtest/gtest.h>

#include <functional>

#include "tests/fixtures.h"
#include "trainer/core/error.h"

namespace flywheel {
namespace {

std::string stories_model() {
  return flywheel::testing::models_dir() + "/stories260K/tokenizer.model";
}

// system + two user/assistant rounds; the tokenizer is stories260K's (eos "</s>", bos "<s>").
const std::vector<ChatMessage> kConversation = {
    {"system", "You are kind."},
    {"user", "Hi there"},
    {"assistant", "Hello! How can I help?"},
    {"user", "Tell a story."},
    {"assistant", "Once upon a time, a cat sat."},
};

// The text under each maximal run of masked tokens, from the first token's first byte to the
// last token's last byte; `mask` may start with a bos entry (add_bos), which has no text.
std::vector<std::string> trained_text(const RenderedChat& r, const Tokenizer& tok) {
  const Encoding e = tok.encode_with_spans(r.text);
  const size_t offset = r.ids.size() - e.ids.size();
  std::vector<std::string> runs;
  size_t run_begin = 0, run_end = 0;
  bool in_run = false;
  for (size_t i = 0; i <= e.ids.size(); ++i) {
    const bool masked = i < e.ids.size() && r.assistant_mask[offset + i] == 1;
    if (masked && !in_run) run_begin = e.spans[i].first;
    if (masked) run_end = e.spans[i].second;
    if (!masked && in_run) runs.push_back(r.text.substr(run_begin, run_end - run_begin));
    in_run = masked;
  }
  return runs;
}

// The mask entries of the tokens that start inside any occurrence of `literal` in the text.
std::vector<uint8_t> mask_inside(const RenderedChat& r, const Tokenizer& tok,
                                 const std::string& literal) {
  const Encoding e = tok.encode_with_spans(r.text);
  const size_t offset = r.ids.size() - e.ids.size();
  std::vector<uint8_t> out;
  for (size_t at = r.text.find(literal); at != std::string::npos;
       at = r.text.find(literal, at + 1)) {
    for (size_t i = 0; i < e.ids.size(); ++i) {
      const size_t begin = e.spans[i].first;
      if (begin >= at && begin < at + literal.size()) out.push_back(r.assistant_mask[offset + i]);
    }
  }
  return out;
}

// Renders with and without bos and checks text, ids, mask length and the trained text.
void check_render(const std::string& name, const std::vector<ChatMessage>& messages,
                  const std::string& expected_text,
                  const std::vector<std::string>& expected_trained,
                  bool template_writes_bos = false) {
  const Tokenizer tok = Tokenizer::from_file(stories_model());
  for (bool add_bos : {false, true}) {
    SCOPED_TRACE(name + (add_bos ? " with add_bos" : " without add_bos"));
    const RenderedChat r = render_chat(name, messages, tok, {add_bos, false});
    EXPECT_EQ(r.text, expected_text);
    EXPECT_EQ(r.ids, tok.encode(r.text, add_bos && !template_writes_bos));
    ASSERT_EQ(r.assistant_mask.size(), r.ids.size());
    if (add_bos) {
      EXPECT_EQ(r.assistant_mask.front(), 0);
    }
    EXPECT_EQ(trained_text(r, tok), expected_trained);
  }
}

using testing::expect_user_error;

TEST(ChatTemplate, Names) {
  EXPECT_EQ(chat_template_names(),
            (std::vector<std::string>{"auto", "chatml", "llama2", "tulu", "zephyr"}));
}

TEST(ChatTemplate, Tulu) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  check_render("tulu", kConversation,
               "<|system|>\nYou are kind.\n"
               "<|user|>\nHi there\n"
               "<|assistant|>\nHello! How can I help?</s>\n"
               "<|user|>\nTell a story.\n"
               "<|assistant|>\nOnce upon a time, a cat sat.</s>",
               {"Hello! How can I help?</s>", "Once upon a time, a cat sat.</s>"});
}

TEST(ChatTemplate, Llama2) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  check_render("llama2", kConversation,
               "<s>[INST] <<SYS>>\nYou are kind.\n<</SYS>>\n\nHi there [/INST]"
               " Hello! How can I help? </s>"
               "<s>[INST] Tell a story. [/INST]"
               " Once upon a time, a cat sat. </s>",
               {" Hello! How can I help? </s>", " Once upon a time, a cat sat. </s>"},
               /*template_writes_bos=*/true);
}

TEST(ChatTemplate, Llama2StripsContentAndNeedsNoSystem) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  check_render("llama2", {{"user", "  Hi \n"}, {"assistant", "\nHello\t"}},
               "<s>[INST] Hi [/INST] Hello </s>", {" Hello </s>"}, /*template_writes_bos=*/true);
}

TEST(ChatTemplate, Chatml) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  check_render("chatml", kConversation,
               "<|im_start|>system\nYou are kind.<|im_end|>\n"
               "<|im_start|>user\nHi there<|im_end|>\n"
               "<|im_start|>assistant\nHello! How can I help?<|im_end|>\n"
               "<|im_start|>user\nTell a story.<|im_end|>\n"
               "<|im_start|>assistant\nOnce upon a time, a cat sat.<|im_end|>\n",
               {"Hello! How can I help?<|im_end|>", "Once upon a time, a cat sat.<|im_end|>"});
}

TEST(ChatTemplate, Zephyr) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  check_render("zephyr", kConversation,
               "<|system|>\nYou are kind.</s>\n"
               "<|user|>\nHi there</s>\n"
               "<|assistant|>\nHello! How can I help?</s>\n"
               "<|user|>\nTell a story.</s>\n"
               "<|assistant|>\nOnce upon a time, a cat sat.</s>\n",
               {"Hello! How can I help?</s>", "Once upon a time, a cat sat.</s>"});
}

TEST(ChatTemplate, RoleHeadersAreNotTrained) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  const Tokenizer tok = Tokenizer::from_file(stories_model());
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"tulu", "<|assistant|>\n"},
      {"zephyr", "<|assistant|>\n"},
      {"chatml", "<|im_start|>assistant\n"},
      {"llama2", "[/INST]"},
  };
  for (const auto& [name, header] : headers) {
    SCOPED_TRACE(name);
    const RenderedChat r = render_chat(name, kConversation, tok);
    for (const std::string& untrained : {header, std::string("Hi there")}) {
      const std::vector<uint8_t> mask = mask_inside(r, tok, untrained);
      EXPECT_FALSE(mask.empty());
      EXPECT_EQ(mask, std::vector<uint8_t>(mask.size(), 0)) << untrained;
    }
  }
}

TEST(ChatTemplate, GenerationPrompt) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  const Tokenizer tok = Tokenizer::from_file(stories_model());
  const std::vector<ChatMessage> prompt = {{"user", "Hi there"}};
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"tulu", "<|user|>\nHi there\n<|assistant|>\n"},
      {"chatml", "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"},
      {"zephyr", "<|user|>\nHi there</s>\n<|assistant|>\n"},
      {"llama2", "<s>[INST] Hi there [/INST]"},
  };
  for (const auto& [name, text] : expected) {
    SCOPED_TRACE(name);
    const RenderedChat r = render_chat(name, prompt, tok, {false, /*add_generation_prompt=*/true});
    EXPECT_EQ(r.text, text);
    EXPECT_EQ(r.ids, tok.encode(text));
    EXPECT_EQ(r.assistant_mask, std::vector<uint8_t>(r.ids.size(), 0));
  }
}

// open-instruct's masking (sft_tulu_tokenize_and_truncate_v1): a non-assistant message i is
// masked from len(tokens(render(messages[:i]))) to len(tokens(render(messages[:i+1]))), the
// latter rendered with the generation prompt when an assistant message follows; everything
// else is trained. A rendering of messages[:i] ends at the last turn's eos, so the "\n" after
// it belongs to the masked range of the next turn.
std::vector<uint8_t> open_instruct_mask(const std::string& name,
                                        const std::vector<ChatMessage>& messages,
                                        const Tokenizer& tok, bool add_bos) {
  auto length = [&](size_t n, bool generation_prompt) {
    const std::vector<ChatMessage> prefix(messages.begin(), messages.begin() + n);
    return render_chat(name, prefix, tok, {add_bos, generation_prompt}).ids.size();
  };
  std::vector<uint8_t> mask(length(messages.size(), false), 1);
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role == "assistant") continue;
    const size_t start = i == 0 ? 0 : length(i, false);
    const bool assistant_next = i + 1 < messages.size() && messages[i + 1].role == "assistant";
    std::fill(mask.begin() + start, mask.begin() + length(i + 1, assistant_next), 0);
  }
  return mask;
}

TEST(ChatTemplate, TuluMaskMatchesOpenInstructMasking) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  const Tokenizer tok = Tokenizer::from_file(stories_model());
  const std::vector<std::vector<ChatMessage>> conversations = {
      kConversation,
      // A user turn after a user turn, edge whitespace, and an eos literal inside a user turn.
      {{"system", "Be brief."},
       {"user", "Hi"},
       {"user", "  Are you there?"},
       {"assistant", " Yes.\n"},
       {"user", "Bye</s>now"},
       {"assistant", "Bye!\n\nSee you."}},
  };
  for (const auto& messages : conversations) {
    for (bool add_bos : {false, true}) {
      const RenderedChat r = render_chat("tulu", messages, tok, {add_bos, false});
      EXPECT_EQ(r.assistant_mask, open_instruct_mask("tulu", messages, tok, add_bos));
    }
  }
}

TEST(ChatTemplate, RejectsUnknownTemplateRoleAndEmptyConversation) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  const Tokenizer tok = Tokenizer::from_file(stories_model());
  expect_user_error([&] { render_chat("vicuna", kConversation, tok); },
                    {"vicuna", "chatml, llama2, tulu, zephyr"});
  expect_user_error(
      [&] {
        render_chat("tulu", {{"user", "Hi"}, {"bot", "Hello"}}, tok);
      },
      {"message 1", "bot"});
  expect_user_error([&] { render_chat("chatml", {}, tok); }, {"no messages"});
}

TEST(ChatTemplate, Llama2RequiresAlternatingRoles) {
  FLYWHEEL_REQUIRE_PATH(stories_model());
  const Tokenizer tok = Tokenizer::from_file(stories_model());
  expect_user_error(
      [&] {
        render_chat("llama2", {{"user", "a"}, {"user", "b"}}, tok);
      },
      {"message 1", "'user'", "expected 'assistant'"});
  expect_user_error(
      [&] {
        render_chat("llama2", {{"assistant", "a"}}, tok);
      },
      {"message 0", "expected 'user'"});
  expect_user_error(
      [&] {
        render_chat("llama2", {{"user", "a"}, {"assistant", "b"}, {"system", "c"}}, tok);
      },
      {"message 2", "'system'"});
  expect_user_error([&] { render_chat("llama2", {{"system", "a"}}, tok); }, {"system"});
}

}  // namespace
}  // namespace flywheel
