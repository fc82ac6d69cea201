// config.json parsing for the supported families, rope scaling, and the errors users see.
#include <gtest/gtest.h>

#include <cmath>

#include "trainer/core/error.h"
#include "trainer/model/model_config.h"
#include "trainer/model/rotary.h"

namespace flywheel {
namespace {

using nlohmann::json;

// Llama 3.1 8B's config.json (the fields that matter).
json llama31() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
    "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "tie_word_embeddings": false, "attention_bias": false, "mlp_bias": false,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
    "torch_dtype": "bfloat16", "transformers_version": "4.43.0.dev0"})");
}

std::string parse_error(const json& j) {
  try {
    parse_model_config(j, "config.json");
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(ModelConfig, ParsesLlama31) {
  const auto c = parse_model_config(llama31(), "config.json");
  EXPECT_EQ(c.num_key_value_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.rope_scaling.type, "llama3");
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.dtype, torch::kBFloat16);
  EXPECT_EQ(c.extra["transformers_version"], "4.43.0.dev0");  // unknown keys survive
}

TEST(ModelConfig, JsonRoundTrip) {
  const auto c = parse_model_config(llama31(), "config.json");
  const auto j = model_config_to_json(c);
  const auto again = parse_model_config(j, "round trip");
  EXPECT_EQ(model_config_to_json(again), j);
  EXPECT_EQ(j["transformers_version"], "4.43.0.dev0");
}

TEST(ModelConfig, MistralAndQwen2) {
  auto mistral = json::parse(R"({"architectures": ["MistralForCausalLM"], "model_type": "mistral",
    "vocab_size": 32768, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "sliding_window": 4096})");
  auto m = parse_model_config(mistral, "m");
  EXPECT_EQ(m.sliding_window, 4096);
  EXPECT_FALSE(m.qkv_bias);

  auto qwen = json::parse(R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
    "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "sliding_window": 4096,
    "use_sliding_window": false, "max_window_layers": 21, "tie_word_embeddings": true})");
  auto q = parse_model_config(qwen, "q");
  EXPECT_TRUE(q.qkv_bias);
  EXPECT_FALSE(q.o_bias);
  EXPECT_FALSE(q.sliding_window.has_value());  // only honoured with use_sliding_window
  EXPECT_TRUE(q.tie_word_embeddings);
  EXPECT_EQ(q.extra["max_window_layers"], 21);
}

TEST(ModelConfig, ExplicitHeadDim) {
  auto j = llama31();
  j["head_dim"] = 64;
  EXPECT_EQ(parse_model_config(j, "c").head_dim, 64);
}

TEST(ModelConfig, ErrorsNameTheKey) {
  struct Case {
    const char* key;
    json value;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"hidden_size", "4096", "key 'hidden_size': expected an integer, got \"4096\""},
      {"num_key_value_heads", 5, "must be a multiple of num_key_value_heads (5)"},
      {"rope_scaling", json{{"rope_type", "yarn"}, {"factor", 4.0}},
       "unsupported rope type 'yarn'"},
      {"hidden_act", "gelu", "key 'hidden_act': expected \"silu\""},
      {"torch_dtype", "int8", "unsupported dtype 'int8'"},
      {"model_type", "gpt2", "key 'model_type': expected one of llama, mistral, qwen2"},
      {"rms_norm_eps", -1.0, "key 'rms_norm_eps': expected a positive number"},
      {"eos_token_id", "x", "key 'eos_token_id'"},
  };
  for (const auto& c : cases) {
    auto j = llama31();
    j[c.key] = c.value;
    const auto err = parse_error(j);
    EXPECT_NE(err.find(c.message), std::string::npos) << c.key << ": " << err;
    EXPECT_NE(err.find("config.json"), std::string::npos) << err;
  }
  auto j = llama31();
  j.erase("vocab_size");
  EXPECT_NE(parse_error(j).find("missing required key 'vocab_size'"), std::string::npos);
}

// Llama 3.1 rope: with original context 8192, low/high factors 1/4 and factor 8, wavelengths
// above 8192 are divided by 8, those below 2048 kept, and those between interpolated with
// s = (8192 / wavelen - 1) / (4 - 1): f' = (1 - s) f / 8 + s f.
TEST(Rotary, Llama3ScalingBands) {
  const auto c = parse_model_config(llama31(), "config.json");
  auto scaled = rope_inv_freq(c);
  auto plain_config = c;
  plain_config.rope_scaling = {};
  auto plain = rope_inv_freq(plain_config);
  ASSERT_EQ(scaled.size(0), 64);
  int kept = 0, divided = 0, smoothed = 0;
  for (int64_t i = 0; i < 64; ++i) {
    const double f = std::pow(500000.0, -2.0 * i / 128.0);
    const double wavelen = 2 * M_PI / f;
    double want = f;
    if (wavelen > 8192) {
      want = f / 8;
      ++divided;
    } else if (wavelen >= 2048) {
      const double s = (8192 / wavelen - 1) / 3;
      want = (1 - s) * f / 8 + s * f;
      ++smoothed;
    } else {
      ++kept;
    }
    EXPECT_NEAR(scaled[i].item<double>(), want, 1e-6 * want) << "i=" << i;
    EXPECT_NEAR(plain[i].item<double>(), f, 1e-6 * f) << "i=" << i;
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(smoothed, 0);
}

}  // namespace
}  // namespace flywheel
