// `flywheel arena answer --players A=DIR B=DIR ... --prompts FILE.jsonl --out DIR`: every
// player answers every prompt with the rollout engine through its own chat template (greedy
// unless --temperature), cached as DIR/answers/<player>.jsonl (trainer/eval/answers.h). A
// player whose cache already holds every question is skipped, so adding a player to an arena
// runs only the new one; its generation settings are not compared, so delete a cache to redo it.
#include <chrono>
#include <cstdio>
#include <set>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/arena/answers.h"
#include "trainer/core/error.h"
#include "trainer/model/device.h"
#include "trainer/model/model_config.h"

namespace flywheel::cli {
namespace {

constexpr const char* kCommand = "arena answer";

struct Player {
  std::string name;
  std::string dir;
};

// NAME=DIR (the directory may contain '='; the first one splits).
Player parse_player(const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw UserError(std::string("flywheel ") + kCommand +
                    ": --players expects NAME=DIR (a name and a model directory), got '" + text +
                    "'");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

// --players A=DIR B=DIR ...: the flag's values and the positionals after it.
std::vector<Player> players_of(const Args& args) {
  std::vector<Player> players;
  std::set<std::string> names;
  std::vector<std::string> given = args.get_all("players");
  given.insert(given.end(), args.positionals().begin(), args.positionals().end());
  for (const auto& text : given) {
    Player p = parse_player(text);
    if (!names.insert(p.name).second)
      throw UserError(std::string("flywheel ") + kCommand + ": player '" + p.name +
                      "' is given twice");
    players.push_back(std::move(p));
  }
  if (players.empty())
    throw UserError(std::string("flywheel ") + kCommand + ": give --players NAME=DIR ...");
  return players;
}

}  // namespace

int run_arena_answer(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"players", "NAME=DIR", "a player and its model directory (several may follow one flag)"},
      {"prompts", "FILE", "JSONL of {\"question_id\", \"prompt\" or \"messages\"} lines"},
      {"out", "DIR", "the arena directory; answers go to DIR/answers/<player>.jsonl"},
      {"max-new-tokens", "N", "tokens per answer at most (default 1024)"},
      {"temperature", "T", "sampling temperature (default 0: greedy)"},
      {"top-p", "P", "nucleus sampling mass (default 1.0 = off)"},
      {"seed", "S", "sampling seed (default 0)"},
      {"chat", "TEMPLATE", "chat template: auto (the model's own, default), tulu, chatml, ..."},
      {"max-num-seqs", "N", "answers generated at once at most (default 256)"},
      {"dtype", "DTYPE", "float32 | bfloat16 | float16 (default: config.json)"},
      {"device", "DEV", "cpu | cuda[:N] (default cpu)"},
  };
  Args args(kCommand, specs, argv);
  if (args.help()) {
    std::fputs(format_help(kCommand,
                           "--players NAME=DIR [NAME=DIR ...] --prompts FILE.jsonl --out DIR "
                           "[options]",
                           "Every player answers every prompt (cached per player).", specs)
                   .c_str(),
               stdout);
    return 0;
  }
  const std::vector<Player> players = players_of(args);
  const std::string out = args.require("out");
  const std::vector<ArenaPrompt> prompts = read_arena_prompts(args.require("prompts"));

  ReplyOptions reply;
  reply.max_new_tokens = args.get_int("max-new-tokens", 1024, 1);
  reply.sampling.temperature = args.get_double("temperature", 0.0);
  reply.sampling.top_p = args.get_double("top-p", 1.0);
  reply.sampling.validate(std::string("flywheel ") + kCommand + ": --");
  reply.seed = static_cast<uint64_t>(args.get_int("seed", 0, 0));
  reply.chat_template = args.get("chat").value_or(kAutoChatTemplate);
  reply.max_num_seqs = args.get_int("max-num-seqs", 256, 1);
  LoadOptions load;
  if (auto d = args.get("dtype")) load.dtype = parse_dtype(*d, "--dtype");
  load.device = parse_device(args.get("device").value_or("cpu"), "--device");

  for (const auto& p : players) {
    const std::string path = answers_path(out, p.name);
    if (answers_cached(path, prompts)) {
      std::fprintf(stderr, "arena answer: %s: all %zu answers cached in %s, skipped\n",
                   p.name.c_str(), prompts.size(), path.c_str());
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    ChatModel model(p.dir, load);
    const auto answers = answer_prompts(model, p.name, prompts, reply);
    write_answers(path, answers);
    int64_t tokens = 0, cut = 0;
    for (const auto& a : answers) {
      tokens += a.tokens;
      cut += a.finish_reason == "length";
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr,
                 "arena answer: %s: %zu answers, %lld tokens (%lld cut at the token limit) in "
                 "%.2f s, written to %s\n",
                 p.name.c_str(), answers.size(), static_cast<long long>(tokens),
                 static_cast<long long>(cut), seconds, path.c_str());
  }
  return 0;
}

}  // namespace flywheel::cli
