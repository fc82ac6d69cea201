// `flywheel arena flywheel --recipe DPO.yaml --prompts FILE --opponents NAME=DIR ... --judge SPEC
// --iterations K --out DIR`: the data flywheel of Arena Learning and RLHF Workflow, chained.
// Round k (policy "iter<k>", the recipe's model at k = 0): the policy and the opponents answer
// the prompts (the opponents' answers cached once), the judge plays every opponent against the
// policy, the questions the policy lost become DPO pairs, and the recipe trains the next policy
// on them, starting from this one. After K rounds the last policy plays once more, and every
// round's battles are rated together (players iter0 ... iterK and the opponents), so the
// ratings show what each round gained.
//
//   DIR/round-<k>/arena/answers/*.jsonl  answers        DIR/round-<k>/battles.jsonl  battles
//   DIR/round-<k>/pairs.jsonl            mined pairs    DIR/round-<k>/run/           the DPO run
//   DIR/ratings.json                     the leaderboard of every round's battles
//
// It stops early, saying so, when the policy loses no question (nothing left to learn from).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/train/recipe.h"

namespace flywheel::cli {
namespace {

namespace fs = std::filesystem;
constexpr const char* kCommand = "arena flywheel";

int64_t count_lines(const std::string& path) {
  std::ifstream in(path);
  int64_t n = 0;
  for (std::string line; std::getline(in, line);)
    n += !line.empty();
  return n;
}

// Runs one flywheel command, naming the round and step when it fails.
void step(const std::string& what, int (*command)(const std::vector<std::string>&),
          const std::vector<std::string>& argv) {
  std::fprintf(stderr, "arena flywheel: %s\n", what.c_str());
  int status = 0;
  try {
    status = command(argv);
  } catch (const UserError& e) {
    throw UserError(std::string("flywheel ") + kCommand + ": " + what + ": " + e.what());
  }
  if (status != 0) {
    throw UserError(std::string("flywheel ") + kCommand + ": " + what + " exited with status " +
                    std::to_string(status));
  }
}

}  // namespace

int run_arena_flywheel(const std::vector<std::string>& argv) {
  const std::vector<FlagSpec> specs = {
      {"recipe", "FILE", "the DPO recipe each round trains with (its model: the first policy)"},
      {"prompts", "FILE", "the prompts every round is played on (as arena answer reads them)"},
      {"opponents", "NAME=DIR", "players the policy meets (several may follow one flag)"},
      {"judge", "SPEC", "rm:DIR, verifier:NAME or llm:DIR (as arena judge)"},
      {"iterations", "K", "training rounds (default 2)"},
      {"out", "DIR", "where every round's answers, battles, pairs and run go"},
      {"max-new-tokens", "N", "tokens per answer at most (default 256)"},
      {"temperature", "T", "answers' sampling temperature (default 0: greedy)"},
      {"seed", "S", "answers' sampling seed (default 0)"},
      {"set", "KEY=VALUE", "a recipe override for every round's training (may be repeated)"},
      {"bootstrap", "N", "bootstrap rounds for the final ratings' intervals (default 100)"},
  };
  Args args(kCommand, specs, argv);
  if (args.help()) {
    std::fputs(format_help(kCommand,
                           "--recipe DPO.yaml --prompts FILE --opponents NAME=DIR ... --judge SPEC "
                           "--out DIR [options]",
                           "Answer, judge, mine the losses, train DPO on them: K rounds, then one "
                           "rating of every round's policy.",
                           specs)
                   .c_str(),
               stdout);
    return 0;
  }
  const std::string recipe_path = args.require("recipe");
  const std::string prompts = args.require("prompts");
  const std::string judge = args.require("judge");
  const std::string out = args.require("out");
  const std::vector<std::string> opponents = args.get_all("opponents");
  if (opponents.empty())
    throw UserError(std::string("flywheel ") + kCommand + ": give --opponents");
  const int64_t iterations = args.get_int("iterations", 2, 1);
  const std::vector<std::string> sets = args.get_all("set");
  // Checked up front (each round replaces its data, model and output directory).
  std::vector<std::string> check = sets;
  check.push_back("data.train_file=" + prompts);
  const Recipe recipe = load_recipe(recipe_path, check);
  if (recipe.trainer != "dpo") {
    throw UserError(std::string("flywheel ") + kCommand + ": " + recipe_path +
                    ": the flywheel trains on preference pairs: trainer must be dpo, not " +
                    recipe.trainer);
  }
  if (recipe.model.path.empty()) {
    throw UserError(std::string("flywheel ") + kCommand + ": " + recipe_path +
                    ": model.path (the first policy) is required");
  }
  const std::vector<std::string> sampling = {
      "--max-new-tokens", args.get("max-new-tokens").value_or("256"),
      "--temperature",    args.get("temperature").value_or("0"),
      "--seed",           args.get("seed").value_or("0")};
  fs::create_directories(out);

  std::string policy_dir = recipe.model.path;
  std::vector<std::string> all_battles;
  int64_t round = 0;
  for (;; ++round) {
    const std::string dir = out + "/round-" + std::to_string(round);
    const std::string arena = dir + "/arena";
    const std::string policy = "iter" + std::to_string(round);
    const std::string tag = "round " + std::to_string(round) + ": ";
    // The opponents answer once: later rounds start from round 0's cache.
    if (round > 0) {
      fs::create_directories(arena + "/answers");
      for (const auto& spec : opponents) {
        const std::string name = spec.substr(0, spec.find('='));
        const std::string cached = out + "/round-0/arena/answers/" + name + ".jsonl";
        if (fs::exists(cached))
          fs::copy_file(cached, arena + "/answers/" + name + ".jsonl",
                        fs::copy_options::overwrite_existing);
      }
    }
    std::vector<std::string> answer = {"--prompts", prompts,     "--out",
                                       arena,       "--players", policy + "=" + policy_dir};
    answer.insert(answer.end(), opponents.begin(), opponents.end());
    answer.insert(answer.end(), sampling.begin(), sampling.end());
    step(tag + "answers", run_arena_answer, answer);
    const std::string battles = dir + "/battles.jsonl";
    step(tag + "judging " + policy + " against the opponents", run_arena_judge,
         {"--answers", arena, "--judge", judge, "--baseline", policy, "--out", battles, "--stats",
          dir + "/judge_stats.json"});
    all_battles.push_back(battles);
    if (round == iterations) break;  // the last policy is rated, not trained
    const std::string pairs = dir + "/pairs.jsonl";
    step(tag + "mining " + policy + "'s losses", run_arena_mine,
         {"--battles", battles, "--answers", arena, "--policy", policy, "--out", pairs});
    if (count_lines(pairs) == 0) {
      std::fprintf(stderr,
                   "arena flywheel: %s lost no question to an opponent: nothing to learn from; "
                   "stopping after %lld rounds\n",
                   policy.c_str(), static_cast<long long>(round));
      break;
    }
    std::vector<std::string> train = {recipe_path};
    train.insert(train.end(), sets.begin(), sets.end());
    train.push_back("model.path=" + policy_dir);
    train.push_back("data.train_file=" + pairs);
    train.push_back("output_dir=" + dir + "/run");
    step(tag + "DPO on the mined pairs", run_train, train);
    policy_dir = dir + "/run/model";
  }
  // Every round's battles, rated together.
  std::vector<std::string> rate = {"--json", out + "/ratings.json", "--bootstrap",
                                   args.get("bootstrap").value_or("100")};
  for (const auto& b : all_battles) {
    rate.push_back("--battles");
    rate.push_back(b);
  }
  step("rating every round's policy and the opponents", run_arena_rate, rate);
  return 0;
}

}  // namespace flywheel::cli
