// `flywheel generate`: load a model directory and continue a prompt.
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "cli/args.h"
#include "cli/commands.h"
#include "rollout/generate.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/text/chat_template.h"
#include "trainer/text/tokenizer.h"
#include "trainer/train/model_builder.h"

namespace flywheel::cli {
namespace {

std::vector<int64_t> parse_ids(const std::string& text) {
  std::vector<int64_t> ids;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const long long id = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || id < 0) {
      throw UserError(
          "flywheel generate: --prompt-ids expects comma-separated non-negative "
          "integers, got '" +
          item + "'");
    }
    ids.push_back(id);
  }
  if (ids.empty()) throw UserError("flywheel generate: --prompt-ids is empty");
  return ids;
}

}  // namespace

int run_generate(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"model", "DIR", "Hugging Face model directory (config.json, safetensors)"},
      {"prompt", "TEXT", "prompt text (needs tokenizer.model in DIR)"},
      {"prompt-ids", "1,2,3", "prompt token ids; also prints the generated ids"},
      {"chat", "TEMPLATE", "wrap --prompt as a user turn: tulu, llama2, chatml, zephyr"},
      {"max-new-tokens", "N", "tokens to generate (default 128)"},
      {"greedy", "", "argmax decoding (default: sampling)"},
      {"temperature", "T", "sampling temperature (default 1.0; 0 = greedy)"},
      {"top-k", "K", "keep the K most likely tokens (default 0 = off)"},
      {"top-p", "P", "nucleus sampling mass (default 1.0 = off)"},
      {"min-p", "P", "drop tokens below P x the most likely one's probability (default 0 = off)"},
      {"seed", "N", "sampling seed (default 0)"},
      {"ignore-eos", "", "do not stop at the end-of-sequence token"},
      {"dtype", "DTYPE", "float32 | bfloat16 | float16 (default: config.json)"},
      {"device", "DEV", "cpu | cuda[:N] (default cpu)"},
  };
  Args args("generate", specs, argv);
  if (args.help()) {
    std::fputs(format_help("generate", "--model DIR (--prompt TEXT | --prompt-ids 1,2,3) [options]",
                           "Continues a prompt with a KV-cached decoding loop.", specs)
                   .c_str(),
               stdout);
    return 0;
  }
  if (!args.positionals().empty()) {
    throw UserError("flywheel generate: unexpected argument '" + args.positionals()[0] + "'");
  }
  const std::string dir = args.require("model");
  if (args.get("prompt").has_value() == args.get("prompt-ids").has_value()) {
    throw UserError("flywheel generate: give exactly one of --prompt and --prompt-ids");
  }

  GenerateOptions options;
  options.max_new_tokens = args.get_int("max-new-tokens", 128, 1);
  options.sampler.temperature = args.flag("greedy") ? 0.0 : args.get_double("temperature", 1.0);
  options.sampler.top_k = args.get_int("top-k", 0, 0);
  options.sampler.top_p = args.get_double("top-p", 1.0);
  options.sampler.min_p = args.get_double("min-p", 0.0);
  options.sampler.validate("flywheel generate: --");
  options.seed = static_cast<uint64_t>(args.get_int("seed", 0, 0));

  LoadOptions load;
  if (auto d = args.get("dtype")) load.dtype = parse_dtype(*d, "flywheel generate: --dtype");
  load.device = parse_device(args.get("device").value_or("cpu"), "flywheel generate: --device");
  auto model = load_causal_lm(dir, load);
  if (!args.flag("ignore-eos")) options.stop_ids = model->config().eos_token_ids;

  const bool has_tokenizer =
      std::filesystem::exists(std::filesystem::path(dir) / "tokenizer.model");
  std::optional<Tokenizer> tokenizer;
  if (has_tokenizer) tokenizer.emplace(Tokenizer::from_dir(dir));

  std::vector<int64_t> prompt;
  if (auto ids = args.get("prompt-ids")) {
    prompt = parse_ids(*ids);
  } else {
    if (!tokenizer) {
      throw UserError("flywheel generate: --prompt needs " + dir +
                      "/tokenizer.model (use --prompt-ids otherwise)");
    }
    if (auto tmpl = args.get("chat")) {
      prompt = render_chat(*tmpl, {{"user", *args.get("prompt")}}, *tokenizer,
                           {/*add_bos=*/true, /*add_generation_prompt=*/true})
                   .ids;
    } else {
      prompt = tokenizer->encode(*args.get("prompt"), /*add_bos=*/true);
    }
  }
  options.pad_id = model->config().pad_token_id.value_or(0);

  const auto generated = generate(model, {prompt}, options)[0];
  if (tokenizer) {
    // Plain prompts print prompt + continuation (as llama2.c does); chat prompts print the
    // assistant's reply alone, without the rendered template.
    std::vector<int64_t> shown = args.get("chat") ? std::vector<int64_t>() : prompt;
    shown.insert(shown.end(), generated.begin(), generated.end());
    std::printf("%s\n", tokenizer->decode(shown).c_str());
  }
  if (args.get("prompt-ids")) {
    std::string line;
    for (auto id : generated)
      line += (line.empty() ? "" : ",") + std::to_string(id);
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

}  // namespace flywheel::cli
