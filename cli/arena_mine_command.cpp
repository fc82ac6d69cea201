// `flywheel arena mine --battles FILE --answers DIR --policy NAME --out PAIRS.jsonl`: the
// questions the policy lost become DPO preference pairs, the winner's answer chosen and the
// policy's rejected, one per question (trainer/eval/mining.h says which loss counts), in the
// conversational form `flywheel train` reads for DPO.
#include <cstdio>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/eval/mining.h"

namespace flywheel::cli {

int run_arena_mine(const std::vector<std::string>& argv) {
  constexpr const char* kCommand = "arena mine";
  const std::vector<FlagSpec> specs = {
      {"battles", "FILE", "battles JSONL (`arena judge` writes them); may be repeated"},
      {"answers", "DIR", "the arena directory whose answers the battles judged"},
      {"policy", "NAME", "the player whose losses become pairs"},
      {"out", "FILE", "preference pairs JSONL ({prompt, chosen, rejected} messages)"},
  };
  Args args(kCommand, specs, argv);
  if (args.help()) {
    std::fputs(
        format_help(kCommand, "--battles FILE.jsonl --answers DIR --policy NAME --out PAIRS.jsonl",
                    "DPO pairs from the battles a policy lost.", specs)
            .c_str(),
        stdout);
    return 0;
  }
  const std::string dir = args.require("answers");
  const std::string policy = args.require("policy");
  const std::string out = args.require("out");
  const auto files = args.get_all("battles");
  if (files.empty()) throw UserError(std::string("flywheel ") + kCommand + ": give --battles FILE");
  std::vector<BattleRecord> battles;
  for (const auto& path : files) {
    auto more = read_battle_records(path);
    battles.insert(battles.end(), more.begin(), more.end());
  }
  // Answers are read for the players the pairs need, once each.
  std::map<std::string, std::map<std::string, ArenaAnswer>> answers;
  const AnswerLookup lookup = [&](const std::string& player,
                                  const std::string& qid) -> const ArenaAnswer& {
    const std::string path = answers_path(dir, player);
    auto it = answers.find(player);
    if (it == answers.end()) it = answers.emplace(player, read_answers(path)).first;
    const auto a = it->second.find(qid);
    if (a == it->second.end())
      throw UserError(path + ": no answer to question " + qid +
                      " (are the battles from this arena's answers?)");
    return a->second;
  };
  MiningStats stats;
  const auto pairs = mine_pairs(battles, policy, lookup, &stats);
  if (stats.policy_battles == 0)
    throw UserError(std::string("flywheel ") + kCommand + ": " + policy +
                    " plays in none of the battles");
  std::string text;
  for (const auto& p : pairs)
    text += pair_json(p).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  write_file_atomic(out, text);
  std::fprintf(stderr,
               "arena mine: %s played %lld of %lld battles on %lld questions, lost %lld "
               "(%lld with the same text as the winner, dropped): %lld pairs written to %s\n",
               policy.c_str(), static_cast<long long>(stats.policy_battles),
               static_cast<long long>(stats.battles), static_cast<long long>(stats.questions),
               static_cast<long long>(stats.lost_questions),
               static_cast<long long>(stats.identical), static_cast<long long>(stats.pairs),
               out.c_str());
  return 0;
}

}  // namespace flywheel::cli
