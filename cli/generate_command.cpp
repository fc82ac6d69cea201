// `flywheel generate`: continue one prompt, or every prompt of a JSONL file, with the rollout
// engine (rollout/engine.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "rollout/engine.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
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

// A user turn, or a whole conversation, rendered with the chat template and ready for the
// assistant's reply.
std::vector<int64_t> render_for_reply(const std::string& tmpl,
                                      const std::vector<ChatMessage>& messages,
                                      const Tokenizer& tokenizer) {
  return render_chat(tmpl, messages, tokenizer,
                     {/*add_bos=*/true, /*add_generation_prompt=*/true, kNoTraining})
      .ids;
}

// The prompt of one input line: "prompt_ids" (token ids), "prompt" (text; a user turn with
// --chat) or "messages" (a conversation, with --chat).
std::vector<int64_t> prompt_of(const JsonlRecord& rec, const std::string& path,
                               const Tokenizer* tokenizer, const std::optional<std::string>& tmpl) {
  const auto& v = rec.value;
  const std::string where = path + ":" + std::to_string(rec.line) + ": ";
  if (!v.is_object()) throw UserError(where + "expected a JSON object");
  if (v.contains("prompt_ids")) {
    const auto& ids = v["prompt_ids"];
    std::vector<int64_t> out;
    if (ids.is_array()) {
      for (const auto& id : ids) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0) {
          out.clear();
          break;
        }
        out.push_back(id.get<int64_t>());
      }
    }
    if (out.empty() || out.size() != ids.size()) {
      throw UserError(where + "\"prompt_ids\": expected a non-empty list of token ids");
    }
    return out;
  }
  const bool text = v.contains("prompt"), chat = v.contains("messages");
  if (!text && !chat) {
    throw UserError(where + "expected \"prompt\", \"prompt_ids\" or \"messages\"");
  }
  if (tokenizer == nullptr) throw UserError(where + "a text prompt needs the model's tokenizer");
  if (text) {
    if (!v["prompt"].is_string()) throw UserError(where + "\"prompt\": expected a string");
    const auto prompt = v["prompt"].get<std::string>();
    if (tmpl) return render_for_reply(*tmpl, {{"user", prompt}}, *tokenizer);
    return tokenizer->encode(prompt, /*add_bos=*/true);
  }
  if (!tmpl) throw UserError(where + "\"messages\" need --chat TEMPLATE");
  std::vector<ChatMessage> messages;
  if (v["messages"].is_array()) {
    for (const auto& m : v["messages"]) {
      if (!m.is_object() || !m.contains("role") || !m.contains("content") ||
          !m["role"].is_string() || !m["content"].is_string()) {
        messages.clear();
        break;
      }
      messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
  }
  if (messages.empty()) {
    throw UserError(where + "\"messages\": expected a list of {\"role\", \"content\"} strings");
  }
  try {
    return render_for_reply(*tmpl, messages, *tokenizer);
  } catch (const UserError& e) {
    throw UserError(where + e.what());
  }
}

nlohmann::json completion_json(const Completion& c) {
  return {{"text", c.text},
          {"token_ids", c.token_ids},
          {"logprobs", c.logprobs},
          {"model_logprobs", c.model_logprobs},
          {"finish_reason", c.finish_reason},
          {"stop", c.stop}};
}

// The requests of every line of --prompts, the lines themselves, and where each one is
// ("FILE:LINE: ", for errors).
std::vector<Request> read_requests(const std::string& path, const Request& base,
                                   const Tokenizer* tokenizer,
                                   const std::optional<std::string>& tmpl,
                                   std::vector<nlohmann::json>* inputs,
                                   std::vector<std::string>* where) {
  std::vector<Request> requests;
  JsonlReader reader(path);
  for (JsonlRecord rec; reader.next(&rec);) {
    where->push_back(path + ":" + std::to_string(rec.line) + ": ");
    Request r = base;
    r.prompt = prompt_of(rec, path, tokenizer, tmpl);
    r.id = static_cast<int64_t>(requests.size());
    requests.push_back(std::move(r));
    inputs->push_back(std::move(rec.value));
  }
  if (requests.empty()) throw UserError(path + ": no prompts");
  return requests;
}

// --out: each input line with its "outputs", in input order; a summary on stderr.
void write_outputs(const std::string& path, const std::vector<nlohmann::json>& inputs,
                   const std::vector<std::vector<Completion>>& results, double seconds) {
  std::string text;
  int64_t tokens = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    auto line = inputs[i];
    line["outputs"] = nlohmann::json::array();
    for (const auto& c : results[i]) {
      line["outputs"].push_back(completion_json(c));
      tokens += static_cast<int64_t>(c.token_ids.size());
    }
    text += line.dump() + "\n";
  }
  write_file_atomic(path, text);
  std::fprintf(stderr,
               "generate: %zu requests, %lld tokens generated in %.2f s (%.1f tokens/s), "
               "written to %s\n",
               results.size(), static_cast<long long>(tokens), seconds, tokens / seconds,
               path.c_str());
}

// A progress line on stderr, redrawn at most five times a second, when stderr is a terminal.
class ProgressBar {
 public:
  explicit ProgressBar(int64_t requests) : shown_(requests > 1 && isatty(fileno(stderr)) != 0) {}
  ProgressFn callback() {
    if (!shown_) return {};
    return [this](const EngineProgress& p) {
      if (p.seconds - last_ < 0.2 && p.finished < p.requests) return;
      last_ = p.seconds;
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(kWidth * p.finished / std::max<int64_t>(1, p.requests));
      std::fprintf(stderr, "\rgenerate [%s%s] %lld/%lld requests, %lld tokens, %.0f tokens/s ",
                   std::string(static_cast<size_t>(filled), '#').c_str(),
                   std::string(static_cast<size_t>(kWidth - filled), '.').c_str(),
                   static_cast<long long>(p.finished), static_cast<long long>(p.requests),
                   static_cast<long long>(p.generated_tokens),
                   p.seconds > 0 ? static_cast<double>(p.generated_tokens) / p.seconds : 0.0);
      drawn_ = true;
    };
  }
  void done() {
    if (drawn_) std::fputs("\n", stderr);
  }

 private:
  bool shown_;
  bool drawn_ = false;
  double last_ = -1;
};

}  // namespace

int run_generate(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"model", "DIR", "Hugging Face model directory (config.json, safetensors)"},
      {"prompt", "TEXT", "prompt text (needs the tokenizer in DIR)"},
      {"prompt-ids", "1,2,3", "prompt token ids; also prints the generated ids"},
      {"prompts", "FILE", "JSONL of \"prompt\", \"prompt_ids\" or \"messages\" lines (batch)"},
      {"out", "FILE", "with --prompts: each input line plus its \"outputs\""},
      {"chat", "TEMPLATE",
       "prompts as user turns / messages in: auto (the model's own), tulu, llama2, chatml, zephyr"},
      {"n", "K", "samples per prompt (default 1)"},
      {"max-new-tokens", "N", "tokens to generate (default 128)"},
      {"min-new-tokens", "N", "no stop token before N tokens (default 0)"},
      {"greedy", "", "argmax decoding (default: sampling)"},
      {"temperature", "T", "sampling temperature (default 1.0; 0 = greedy)"},
      {"top-k", "K", "keep the K most likely tokens (default 0 = off)"},
      {"top-p", "P", "nucleus sampling mass (default 1.0 = off)"},
      {"min-p", "P", "drop tokens below P x the most likely one's probability (default 0 = off)"},
      {"stop", "STR", "stop before this text (repeatable)"},
      {"seed", "N", "sampling seed (default 0)"},
      {"ignore-eos", "", "do not stop at the end-of-sequence token"},
      {"kv-cache-mb", "MB", "KV memory of the engine (default 256)"},
      {"kv-cache-fraction", "F", "KV memory as this fraction of the device's free memory"},
      {"kv-block-tokens", "B", "tokens a KV block holds (default 16)"},
      {"max-num-seqs", "N", "sequences in flight at most (default 256)"},
      {"no-cuda-graphs", "", "on a GPU, run decode steps eagerly instead of as CUDA graphs"},
      {"dtype", "DTYPE", "float32 | bfloat16 | float16 (default: config.json)"},
      {"device", "DEV", "cpu | cuda[:N] (default cpu)"},
  };
  Args args("generate", specs, argv);
  if (args.help()) {
    std::fputs(
        format_help("generate",
                    "--model DIR (--prompt TEXT | --prompt-ids 1,2,3 | --prompts FILE "
                    "--out FILE) [options]",
                    "Continues prompts with the rollout engine (continuous batching).", specs)
            .c_str(),
        stdout);
    return 0;
  }
  if (!args.positionals().empty()) {
    throw UserError("flywheel generate: unexpected argument '" + args.positionals()[0] + "'");
  }
  const std::string dir = args.require("model");
  const int given = (args.get("prompt") ? 1 : 0) + (args.get("prompt-ids") ? 1 : 0) +
                    (args.get("prompts") ? 1 : 0);
  if (given != 1) {
    throw UserError("flywheel generate: give exactly one of --prompt, --prompt-ids and --prompts");
  }

  Request base;
  base.max_new_tokens = args.get_int("max-new-tokens", 128, 1);
  base.min_new_tokens = args.get_int("min-new-tokens", 0, 0);
  base.n = args.get_int("n", 1, 1);
  base.sampling.temperature = args.flag("greedy") ? 0.0 : args.get_double("temperature", 1.0);
  base.sampling.top_k = args.get_int("top-k", 0, 0);
  base.sampling.top_p = args.get_double("top-p", 1.0);
  base.sampling.min_p = args.get_double("min-p", 0.0);
  base.sampling.validate("flywheel generate: --");
  base.stop_strings = args.get_all("stop");
  base.seed = static_cast<uint64_t>(args.get_int("seed", 0, 0));
  EngineOptions engine_options;
  engine_options.kv_cache_mb = args.get_int("kv-cache-mb", 256, 1);
  engine_options.kv_cache_fraction = args.get_double("kv-cache-fraction", 0.0);
  if (!(engine_options.kv_cache_fraction >= 0 && engine_options.kv_cache_fraction < 1)) {
    throw UserError("flywheel generate: --kv-cache-fraction must be in [0, 1)");
  }
  engine_options.kv_block_tokens = args.get_int("kv-block-tokens", 16, 1);
  engine_options.max_num_seqs = args.get_int("max-num-seqs", 256, 1);
  engine_options.cuda_graphs = !args.flag("no-cuda-graphs");

  LoadOptions load;
  if (auto d = args.get("dtype")) load.dtype = parse_dtype(*d, "flywheel generate: --dtype");
  load.device = parse_device(args.get("device").value_or("cpu"), "flywheel generate: --device");
  auto model = load_causal_lm(dir, load);
  const bool has_tokenizer =
      std::filesystem::exists(std::filesystem::path(dir) / "tokenizer.model") ||
      std::filesystem::exists(std::filesystem::path(dir) / "tokenizer.json");
  std::optional<Tokenizer> tokenizer;
  if (has_tokenizer) tokenizer.emplace(Tokenizer::from_dir(dir));
  const Tokenizer* tok = tokenizer ? &*tokenizer : nullptr;
  // generation_config.json's eos ids when the directory has them (the tokenizer reads them),
  // else config.json's.
  if (!args.flag("ignore-eos"))
    base.stop_ids = tok ? tok->stop_ids() : model->config().eos_token_ids;

  std::vector<Request> requests;
  std::vector<nlohmann::json> inputs;
  std::vector<std::string> where;  // with --prompts: "FILE:LINE: " of each request
  if (auto path = args.get("prompts")) {
    requests = read_requests(*path, base, tok, args.get("chat"), &inputs, &where);
    args.require("out");
  } else {
    Request r = base;
    if (auto ids = args.get("prompt-ids")) {
      r.prompt = parse_ids(*ids);
    } else {
      if (!tokenizer) {
        throw UserError("flywheel generate: --prompt needs a tokenizer in " + dir +
                        " (tokenizer.json or tokenizer.model; use --prompt-ids otherwise)");
      }
      const auto text = *args.get("prompt");
      r.prompt = args.get("chat") ? render_for_reply(*args.get("chat"), {{"user", text}}, *tok)
                                  : tok->encode(text, /*add_bos=*/true);
    }
    requests.push_back(std::move(r));
  }
  // Slots as long as the longest request needs, within the model's context.
  int64_t longest = 0;
  for (const auto& r : requests)
    longest = std::max<int64_t>(longest, static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens);
  engine_options.max_seq_len = std::min(longest, model->config().max_position_embeddings);
  Engine engine(model, engine_options, tok);
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      engine.validate(requests[i]);
    } catch (const UserError& e) {
      throw UserError((args.get("prompts") ? where[i] : "flywheel generate: ") + e.what());
    }
  }
  const auto start = std::chrono::steady_clock::now();
  ProgressBar bar(static_cast<int64_t>(requests.size()));
  const auto results = engine.generate(requests, bar.callback());
  bar.done();
  if (args.get("prompts")) {
    write_outputs(*args.get("out"), inputs, results,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return 0;
  }
  const auto& r = requests[0];
  for (const auto& c : results[0]) {
    if (tokenizer) {
      // Plain prompts print prompt + continuation (as llama2.c does); chat prompts print the
      // assistant's reply alone, without the rendered template.
      std::vector<int64_t> shown = args.get("chat") ? std::vector<int64_t>() : r.prompt;
      shown.insert(shown.end(), c.token_ids.begin(), c.token_ids.end());
      std::printf("%s\n", tokenizer->decode(shown).c_str());
    }
    if (args.get("prompt-ids")) {
      std::string line;
      for (auto id : c.token_ids)
        line += (line.empty() ? "" : ",") + std::to_string(id);
      std::printf("%s\n", line.c_str());
    }
  }
  return 0;
}

}  // namespace flywheel::cli
