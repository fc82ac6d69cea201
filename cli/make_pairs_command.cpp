// `flywheel make-pairs --model DIR --prompts FILE.jsonl --out FILE.jsonl`: on-policy preference
// pairs. The model samples --n answers to each RLVR prompt ({"messages" or "prompt",
// "ground_truth", "dataset"}), each prompt's verifier judges them, and a prompt that got an
// incorrect answer gives a pair: its first correct answer (or, with --ground-truth-fallback,
// the ground truth) over its first incorrect one. The output is what `flywheel train` with
// trainer: dpo reads.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/rl/judged_samples.h"
#include "trainer/text/chat_template.h"

namespace flywheel::cli {

int run_make_pairs(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"model", "DIR", "the model that answers (a Hugging Face directory with its tokenizer)"},
      {"prompts", "FILE", "RLVR rows: messages or prompt, ground_truth, dataset"},
      {"out", "FILE", "the preference pairs (JSONL)"},
      {"chat", "TEMPLATE", "chat template of messages rows (default auto: the model's, else tulu)"},
      {"dataset", "NAME", "verifier for every row (default: each row's \"dataset\")"},
      {"n", "K", "answers sampled per prompt (default 8)"},
      {"temperature", "T", "sampling temperature (default 1.0)"},
      {"max-new-tokens", "N", "longest answer (default 32)"},
      {"max-length", "N", "prompts longer than this many tokens are dropped (default 2048)"},
      {"seed", "S", "sampling seed (default 1)"},
      {"ground-truth-fallback", "",
       "a prompt with no correct answer takes its ground truth as the chosen side (for tasks "
       "whose ground truth is a complete answer)"},
  };
  Args args("make-pairs", specs, argv);
  if (args.help()) {
    std::fputs(format_help("make-pairs", "--model DIR --prompts FILE.jsonl --out FILE.jsonl",
                           "Samples answers to RLVR prompts, judges them with the verifiers and "
                           "writes (correct, incorrect) preference pairs for DPO.",
                           specs)
                   .c_str(),
               stdout);
    return 0;
  }
  const std::string dir = args.require("model");
  const std::string prompts_path = args.require("prompts");
  const std::string out_path = args.require("out");
  SampleOptions options;
  options.n = args.get_int("n", 8, 1);
  options.temperature = args.get_double("temperature", 1.0);
  if (!(options.temperature > 0)) throw UserError("flywheel make-pairs: --temperature must be > 0");
  options.max_new_tokens = args.get_int("max-new-tokens", 32, 1);
  options.seed = static_cast<uint64_t>(args.get_int("seed", 1, 0));

  auto model = load_causal_lm(dir);
  const Tokenizer tokenizer = Tokenizer::from_dir(dir);
  DataOptions data;
  data.chat_template = args.get("chat").value_or(kAutoChatTemplate);
  data.max_length = args.get_int("max-length", 2048, 1);
  DataStats stats;
  const auto prompts =
      load_rl_prompts(prompts_path, tokenizer, data, args.get("dataset").value_or(""), &stats);
  const auto samples = sample_and_judge(model, tokenizer, prompts, options);
  const auto pairs = preference_pairs(prompts, samples, args.flag("ground-truth-fallback"));

  const std::string tmp = out_path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw UserError("cannot write " + tmp);
    for (const auto& row : pairs)
      out << row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    if (!out.flush()) throw UserError("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, out_path);
  std::fprintf(stderr,
               "make-pairs: %s; %zu prompts x %lld answers, %.1f%% correct; %zu pairs -> %s\n",
               stats.summary().c_str(), prompts.size(), static_cast<long long>(options.n),
               100.0 * mean_score(samples), pairs.size(), out_path.c_str());
  return 0;
}

}  // namespace flywheel::cli
