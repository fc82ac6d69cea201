// `flywheel quickstart-data --out DIR`: everything the quickstart trains on, made here from
// nothing: two-digit addition problems (a task a verifier checks exactly), SFT and preference
// files, a SentencePiece tokenizer trained on them, and a small Llama config.
//
//   DIR/sft_train.jsonl, sft_eval.jsonl      {"messages": [user "37+45", assistant "082"]}
//   DIR/dpo_prompts.jsonl, rl_train.jsonl,   RLVR rows {"messages": [user "37+45"],
//   rl_eval.jsonl                            "ground_truth": "082", "dataset": "arithmetic"}:
//                                            DPO's pairs come from the SFT model's own answers
//                                            to dpo_prompts (flywheel make-pairs); rl_eval
//                                            holds sft_eval's problems, so every stage is
//                                            measured on the same held-out questions
//   DIR/dpo_eval.jsonl                       held-out pairs {"chosen": [...correct],
//                                            "rejected": [...a plausible wrong answer]}
//   DIR/tokenizer.model                      BPE, digits split, chat markers as single pieces,
//                                            byte fallback (the template's "\n")
//   DIR/config.json                          LlamaForCausalLM, ~0.8M parameters
// The eval problems are disjoint from the training problems.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/model/model_config.h"
#include "trainer/text/sentencepiece_backend.h"
#include "trainer/text/tokenizer.h"

namespace flywheel::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Fixed-width numbers ("07+45" -> "052"): every answer digit sits at the same distance from
// the operand digits it depends on, which a small model learns in a few hundred steps rather
// than thousands. The verifier compares integers, so "052" and "52" are the same answer.
std::string padded(int x, int width) {
  std::string s = std::to_string(x);
  return std::string(static_cast<size_t>(std::max(0, width - static_cast<int>(s.size()))), '0') + s;
}

struct Problem {
  int a, b;
  std::string prompt() const { return padded(a, 2) + "+" + padded(b, 2); }
  std::string answer() const { return padded(a + b, 3); }
};

json conversation(const Problem& p, const std::string& answer) {
  return json::array(
      {{{"role", "user"}, {"content", p.prompt()}}, {{"role", "assistant"}, {"content", answer}}});
}

// A plausible mistake: a dropped carry, or an off-by-one/ten answer.
std::string wrong_answer(const Problem& p, std::mt19937_64& rng) {
  const int right = p.a + p.b;
  const int no_carry =
      (p.a % 10 + p.b % 10) % 10 + ((p.a / 10 + p.b / 10) % 10) * 10 + (p.a + p.b >= 100 ? 100 : 0);
  const int candidates[] = {no_carry, right + 1, right - 1, right + 10, right - 10};
  for (;;) {
    const int w = candidates[rng() % 5];
    if (w != right && w >= 0) return padded(w, 3);
  }
}

void write_jsonl(const fs::path& path, const std::vector<json>& records) {
  std::ofstream out(path);
  for (const auto& r : records)
    out << r.dump() << "\n";
  if (!out.flush()) throw UserError("cannot write " + path.string());
}

}  // namespace

int run_quickstart_data(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"out", "DIR", "output directory (created)"},
      {"seed", "N", "random seed (default 1)"},
      {"sft-train", "N", "SFT training problems (default 6000)"},
      {"dpo-train", "N", "DPO prompts, answered by the SFT model for its pairs (default 2000)"},
      {"eval", "N", "held-out problems for each eval file (default 200)"},
      {"rl-train", "N", "RLVR training prompts (default 1500)"},
  };
  Args args("quickstart-data", specs, argv);
  if (args.help()) {
    std::fputs(format_help("quickstart-data", "--out DIR [options]",
                           "Generates the quickstart's addition data, trains its SentencePiece "
                           "tokenizer and writes a small Llama config.",
                           specs)
                   .c_str(),
               stdout);
    return 0;
  }
  const fs::path out = args.require("out");
  const auto seed = static_cast<uint64_t>(args.get_int("seed", 1, 0));
  const auto n_sft = args.get_int("sft-train", 6000, 1);
  const auto n_dpo = args.get_int("dpo-train", 2000, 1);
  const auto n_eval = args.get_int("eval", 200, 1);
  const auto n_rl = args.get_int("rl-train", 1500, 1);
  if (n_sft + n_dpo + 2 * n_eval + n_rl > 10000) {
    throw UserError("flywheel quickstart-data: at most 10000 distinct two-digit problems");
  }
  fs::create_directories(out);

  // Every a+b with a, b in [0, 100), shuffled once and cut into disjoint splits.
  std::vector<Problem> all;
  for (int a = 0; a < 100; ++a) {
    for (int b = 0; b < 100; ++b)
      all.push_back({a, b});
  }
  std::mt19937_64 rng(seed);
  for (size_t i = all.size() - 1; i > 0; --i)
    std::swap(all[i], all[rng() % (i + 1)]);
  size_t next = 0;
  auto take = [&](int64_t n) {
    std::vector<Problem> part(all.begin() + next, all.begin() + next + n);
    next += n;
    return part;
  };
  const auto sft_train = take(n_sft), sft_eval = take(n_eval), dpo_train = take(n_dpo),
             dpo_eval = take(n_eval), rl_train = take(n_rl);

  auto sft_records = [](const std::vector<Problem>& ps) {
    std::vector<json> r;
    for (const auto& p : ps)
      r.push_back({{"messages", conversation(p, p.answer())}});
    return r;
  };
  auto dpo_records = [&](const std::vector<Problem>& ps) {
    std::vector<json> r;
    for (const auto& p : ps) {
      r.push_back({{"chosen", conversation(p, p.answer())},
                   {"rejected", conversation(p, wrong_answer(p, rng))}});
    }
    return r;
  };
  write_jsonl(out / "sft_train.jsonl", sft_records(sft_train));
  write_jsonl(out / "sft_eval.jsonl", sft_records(sft_eval));
  write_jsonl(out / "dpo_eval.jsonl", dpo_records(dpo_eval));
  auto rl_records = [](const std::vector<Problem>& ps) {
    std::vector<json> r;
    for (const auto& p : ps) {
      r.push_back({{"messages", json::array({{{"role", "user"}, {"content", p.prompt()}}})},
                   {"ground_truth", p.answer()},
                   {"dataset", "arithmetic"}});
    }
    return r;
  };
  write_jsonl(out / "dpo_prompts.jsonl", rl_records(dpo_train));
  write_jsonl(out / "rl_train.jsonl", rl_records(rl_train));
  write_jsonl(out / "rl_eval.jsonl", rl_records(sft_eval));

  // Tokenizer corpus: the conversations as the tulu template renders them.
  {
    std::ofstream corpus(out / "tokenizer_corpus.txt");
    for (const auto& p : all) {
      corpus << "<|user|>\n" << p.prompt() << "\n<|assistant|>\n" << p.answer() << "\n";
    }
  }
  train_sentencepiece("--input=" + (out / "tokenizer_corpus.txt").string() +
                      " --model_prefix=" + (out / "tokenizer").string() +
                      " --model_type=bpe --vocab_size=300 --character_coverage=1.0"
                      " --split_digits=true --byte_fallback=true"
                      // Keep "\n" and trailing spaces as they are: the default normaliser
                      // strips a prompt's trailing "\n", so a generation prompt would not
                      // tokenize like the same text inside a training example.
                      " --normalization_rule_name=identity --remove_extra_whitespaces=false"
                      " --user_defined_symbols=<|user|>,<|assistant|>"
                      " --hard_vocab_limit=false --minloglevel=2");
  fs::remove(out / "tokenizer.vocab");
  fs::remove(out / "tokenizer_corpus.txt");
  const auto tokenizer = Tokenizer::from_file((out / "tokenizer.model").string());

  ModelConfig config;
  config.vocab_size = tokenizer.vocab_size();
  config.hidden_size = 128;
  config.intermediate_size = 352;
  config.num_hidden_layers = 4;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 32;
  config.max_position_embeddings = 64;
  config.bos_token_id = tokenizer.bos_id();
  config.eos_token_ids = {tokenizer.eos_id()};
  config.validate("quickstart config");
  write_file_atomic((out / "config.json").string(), model_config_to_json(config).dump(2) + "\n");

  std::printf(
      "quickstart data in %s: %zu SFT train, %zu SFT eval, %zu DPO prompts, %zu DPO eval, "
      "%zu RLVR train problems; tokenizer with %lld pieces\n",
      out.c_str(), sft_train.size(), sft_eval.size(), dpo_train.size(), dpo_eval.size(),
      rl_train.size(), static_cast<long long>(tokenizer.vocab_size()));
  return 0;
}

}  // namespace flywheel::cli
