// The shipped Tulu 3 recipes on a Llama 3 model directory: the shared Llama 3 tokenizer
// (tokenizer.json + tokenizer_config.json, no tokenizer.model) beside a tiny random Llama whose
// vocabulary is the tokenizer's. Every recipe resolves its tokenizer and chat template from
// the directory and runs a step on CPU; each stage's saved model carries the tokenizer on.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/fixtures.h"
#include "tests/run_binary.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/model/init.h"
#include "trainer/model/llama.h"
#include "trainer/text/chat_template.h"
#include "trainer/text/tokenizer.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;

std::string llama3_dir() {
  return testing::shared_dir() + "/tokenizers/llama3";
}

// A Llama 3 model directory: a 1-layer, 16-wide Llama with the tokenizer's vocabulary.
void write_llama3_model(const std::string& dir) {
  const Tokenizer tok = Tokenizer::from_dir(llama3_dir());
  ModelConfig config;
  config.vocab_size = tok.vocab_size();
  config.hidden_size = 16;
  config.intermediate_size = 32;
  config.num_hidden_layers = 1;
  config.num_attention_heads = 2;
  config.num_key_value_heads = 1;
  config.head_dim = 8;
  config.max_position_embeddings = 512;
  config.rope_theta = 500000.0;
  config.bos_token_id = tok.bos_id();
  config.eos_token_ids = {tok.eos_id()};
  LlamaForCausalLM model(config);
  init_weights(*model, 0.02, 1);
  fs::create_directories(dir);
  save_pretrained(dir, *model, config);
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"})
    fs::create_symlink(llama3_dir() + "/" + file, dir + "/" + file);
}

nlohmann::ordered_json ordered_chat(const std::vector<ChatMessage>& chat) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& m : chat)
    out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

std::string recipe(const std::string& name) {
  return FLYWHEEL_SOURCE_DIR "/recipes/tulu3/" + name + ".yaml";
}

TEST(Tulu3Recipes, RunFromALlama3ModelDirectory) {
  FLYWHEEL_REQUIRE_PATH(llama3_dir());
  const std::string dir = testing::make_temp_dir("tulu3");
  const std::string model = dir + "/llama3";
  write_llama3_model(model);
  {
    std::ofstream sft(dir + "/sft.jsonl"), dpo(dir + "/dpo.jsonl"), gsm(dir + "/gsm8k.jsonl"),
        ifeval(dir + "/ifeval.jsonl"), math(dir + "/math.jsonl");
    for (int i = 0; i < 4; ++i) {
      const std::string q = "What is " + std::to_string(i) + " + 2? Überlegen 🤔";
      const std::string a = "It is " + std::to_string(i + 2) + ".";
      sft << R"({"messages": [{"role": "user", "content": ")" << q
          << R"("}, {"role": "assistant", "content": ")" << a << R"("}]})"
          << "\n";
      dpo << R"({"chosen": [{"role": "user", "content": ")" << q
          << R"("}, {"role": "assistant", "content": ")" << a
          << R"("}], "rejected": [{"role": "user", "content": ")" << q
          << R"("}, {"role": "assistant", "content": "No idea."}]})"
          << "\n";
      const std::string prompt = R"({"messages": [{"role": "user", "content": ")" + q + R"("}], )";
      gsm << prompt << R"("ground_truth": ")" << i + 2 << R"(", "dataset": "gsm8k"})"
          << "\n";
      math << prompt << R"("ground_truth": ")" << i + 2 << R"(", "dataset": "MATH"})"
           << "\n";
      ifeval << prompt
             << R"("ground_truth": "{\"instruction_id_list\": [\"punctuation:no_comma\"], )"
             << R"(\"kwargs\": [{}]}", "dataset": "ifeval"})"
             << "\n";
    }
  }
  const std::string cpu =
      " model.device=cpu model.dtype=float32 training.micro_batch_size=2 "
      "training.gradient_accumulation_steps=1 training.logits_chunk_tokens=0 "
      "training.activation_checkpointing=false data.max_length=128";
  const std::string rl = " rl.iterations=1 rl.prompts_per_iteration=2 rl.max_new_tokens=4";
  struct Stage {
    std::string recipe, data, extra;
  };
  const std::vector<Stage> stages = {
      {"sft", "sft", " training.epochs=1 data.packing=false"},
      // The model's own template (Llama 3's), with masks from prefix rendering.
      {"sft", "sft", " training.epochs=1 data.packing=false data.chat_template=auto"},
      {"dpo", "dpo", " training.epochs=1"},
      {"rlvr_gsm8k", "gsm8k", rl + " rl.value_model=" + model},
      {"rlvr_ifeval", "ifeval", rl + " rl.value_model=" + model},
      {"grpo_math", "math", rl + " rl.group_size=2"},
  };
  for (size_t i = 0; i < stages.size(); ++i) {
    const Stage& s = stages[i];
    const std::string out = dir + "/" + std::to_string(i) + "-" + s.recipe;
    const auto run = testing::run_flywheel("train " + recipe(s.recipe) + " model.path=" + model +
                                           " data.train_file=" + dir + "/" + s.data +
                                           ".jsonl output_dir=" + out + cpu + s.extra);
    ASSERT_EQ(run.status, 0) << s.recipe << "\n" << run.output;
    // The trained model stands on its own: Llama 3's tokenizer.json and config came along.
    const Tokenizer saved = Tokenizer::from_dir(out + "/model");
    EXPECT_STREQ(saved.backend(), "tokenizer.json") << s.recipe;
    EXPECT_EQ(saved.vocab_size(), Tokenizer::from_dir(model).vocab_size());
    // A model trained on a built-in template records it in place of its own, so `auto`
    // renders what it learned; trained on its own, it keeps it.
    const bool own = s.extra.find("chat_template=auto") != std::string::npos;
    EXPECT_EQ(saved.chat_template(), own ? Tokenizer::from_dir(model).chat_template() : "");
    EXPECT_EQ(saved.trained_template(), own ? "" : "tulu");
    const std::vector<ChatMessage> chat = {{"user", "Hi"}, {"assistant", "Hello."}};
    EXPECT_EQ(render_chat("auto", chat, saved).text,
              own ? render_model_chat(ordered_chat(chat), saved).text
                  : render_chat("tulu", chat, saved).text);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
