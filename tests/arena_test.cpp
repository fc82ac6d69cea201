// The arena end to end on the real stories260K model: `arena answer` (two names for the same
// greedy model, one sampled player, the cache), `arena judge` with an LLM judge (the same tiny
// model: it rarely writes a verdict, and every game it leaves without one must be counted, not
// guessed), a reward model and a verifier, then `arena rate`, `arena winrate` and `arena mine`,
// whose pairs the DPO loader must read; and the flywheel that chains them with DPO training.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "tests/fixtures.h"
#include "tests/run_binary.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/data/examples.h"

namespace flywheel {
namespace {

using nlohmann::json;
using testing::run_flywheel;

std::vector<json> read_lines(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Arena, AnswerJudgeRateMine) {
  const std::string model = testing::models_dir() + "/stories260K";
  FLYWHEEL_REQUIRE_PATH(model);
  const std::string work = testing::make_temp_dir("arena");
  const std::string arena = work + "/arena";
  {
    std::ofstream out(work + "/prompts.jsonl");
    out << R"({"question_id": "q1", "prompt": "Once upon a time", "ground_truth": "4"})"
           "\n"
        << R"({"messages": [{"role": "user", "content": "Lily had a ball."}], "ground_truth": "2"})"
           "\n"
        << R"({"question_id": "q3", "prompt": "The cat sat", "ground_truth": "7"})"
           "\n";
  }
  const std::string answer = "arena answer --prompts " + work + "/prompts.jsonl --out " + arena +
                             " --max-new-tokens 12 --players greedy=" + model + " twin=" + model;
  const auto first = run_flywheel(answer);
  ASSERT_EQ(first.status, 0) << first.output;
  const auto sampled =
      run_flywheel("arena answer --prompts " + work + "/prompts.jsonl --out " + arena +
                   " --max-new-tokens 12 --temperature 1.0 --seed 3 --players sampled=" + model);
  ASSERT_EQ(sampled.status, 0) << sampled.output;

  const auto greedy = read_lines(arena + "/answers/greedy.jsonl");
  const auto twin = read_lines(arena + "/answers/twin.jsonl");
  const auto hot = read_lines(arena + "/answers/sampled.jsonl");
  ASSERT_EQ(greedy.size(), 3u);
  ASSERT_EQ(hot.size(), 3u);
  EXPECT_EQ(greedy[1]["question_id"], "2");  // the line number when absent
  EXPECT_TRUE(greedy[1].contains("messages"));
  EXPECT_EQ(greedy[0]["prompt"], "Once upon a time");
  int differ = 0;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(greedy[i]["answer"], twin[i]["answer"]);  // the same greedy model
    EXPECT_GT(greedy[i]["tokens"].get<int>(), 0);
    EXPECT_LE(greedy[i]["tokens"].get<int>(), 12);
    EXPECT_EQ(greedy[i]["ground_truth"], json::parse(R"(["4","2","7"])")[i]);
    differ += greedy[i]["answer"] != hot[i]["answer"];
  }
  EXPECT_GT(differ, 0) << "sampling at temperature 1 should change some answer";

  // A rerun finds every cache complete and writes nothing.
  const std::string before = slurp(arena + "/answers/greedy.jsonl");
  const auto again = run_flywheel(answer);
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_NE(again.output.find("greedy: all 3 answers cached"), std::string::npos) << again.output;
  EXPECT_EQ(slurp(arena + "/answers/greedy.jsonl"), before);

  // An LLM judge: 2 players x 3 questions x 2 orders = 12 games. stories260K seldom writes
  // [[A]]/[[B]]/[[C]]; whatever it writes, parsed + unparseable = 12 and only parsed games
  // become battles.
  const auto llm =
      run_flywheel("arena judge --answers " + arena + " --judge llm:" + model +
                   " --baseline greedy --max-new-tokens 24 --out " + work + "/llm.jsonl --stats " +
                   work + "/llm_stats.json --judgments " + work + "/judgments.jsonl");
  ASSERT_EQ(llm.status, 0) << llm.output;
  const json stats = json::parse(slurp(work + "/llm_stats.json"));
  EXPECT_EQ(stats["games"], 12);
  EXPECT_EQ(stats["swapped_meetings"], 6);
  EXPECT_EQ(stats["verdict_format"], "mt-bench");
  const int parsed = stats["parsed"];
  EXPECT_EQ(parsed + stats["unparseable"].get<int>(), 12);
  EXPECT_EQ(stats["unparseable"], stats["unparseable_by_reason"]["no_verdict"].get<int>() +
                                      stats["unparseable_by_reason"]["ambiguous"].get<int>() +
                                      stats["unparseable_by_reason"]["unknown_label"].get<int>());
  EXPECT_EQ(read_lines(work + "/llm.jsonl").size(), static_cast<size_t>(parsed));
  const auto judgments = read_lines(work + "/judgments.jsonl");
  ASSERT_EQ(judgments.size(), 12u);
  int unparsed_lines = 0;
  for (const auto& j : judgments) {
    EXPECT_TRUE(j["details"].contains("output"));
    if (j["winner"].is_null()) {
      ++unparsed_lines;
      EXPECT_TRUE(j.contains("problem"));
    }
  }
  EXPECT_EQ(unparsed_lines, 12 - parsed);
  EXPECT_EQ(judgments[0]["model_a"], "greedy");  // game 1: the baseline first
  EXPECT_EQ(judgments[1]["model_b"], "greedy");  // game 2: swapped
  EXPECT_NE(llm.output.find("position bias"), std::string::npos) << llm.output;
  EXPECT_NE(llm.output.find("length bias"), std::string::npos) << llm.output;

  // A cascade of two LLM judges (Trust or Escalate), 2 sampled verdicts per order each: every
  // matchup is decided at the first stage whose confidence reaches its threshold, or abstained
  // on; stories260K writes few verdicts, so most are, and with --last-judge-decides only those
  // without a single vote are.
  for (const bool last_decides : {false, true}) {
    const auto run = run_flywheel(
        "arena judge --answers " + arena + " --judge llm:" + model + " --judge llm:" + model +
        " --trust 0.9 --trust 0.6 --annotators 2 --baseline greedy --max-new-tokens 16 --out " +
        work + "/cascade.jsonl --stats " + work + "/cascade_stats.json" +
        (last_decides ? " --last-judge-decides" : ""));
    ASSERT_EQ(run.status, 0) << run.output;
    const json c = json::parse(slurp(work + "/cascade_stats.json"));
    EXPECT_EQ(c["matchups"], 6);
    EXPECT_EQ(c["stages"][0]["matchups"], 6);
    const int first = c["stages"][0]["trusted"], second_asked = c["stages"][1]["matchups"];
    EXPECT_EQ(second_asked, 6 - first);
    const auto cascade_battles = read_lines(work + "/cascade.jsonl");
    EXPECT_EQ(static_cast<int>(cascade_battles.size()) + c["abstained"].get<int>(), 6);
    EXPECT_DOUBLE_EQ(c["abstention_rate"].get<double>(), c["abstained"].get<int>() / 6.0);
    for (const auto& b : cascade_battles) {
      const auto& d = b["details"];
      const double trust = d["stage"] == 1 ? 0.9 : 0.6;
      if (d["trusted"].get<bool>()) {
        EXPECT_GE(d["confidence"].get<double>(), trust) << b.dump();
      }
      EXPECT_EQ(b["model_a"], "greedy");
      EXPECT_GT(d["votes"]["greedy"].get<int>() +
                    d["votes"][b["model_b"].get<std::string>()].get<int>() +
                    d["votes"]["tie"].get<int>(),
                0);
    }
    if (!last_decides) {
      EXPECT_EQ(c["stages"][1]["trusted"].get<int>() + first,
                static_cast<int>(cascade_battles.size()));
    }
  }
  const auto mismatch = run_flywheel("arena judge --answers " + arena + " --judge llm:" + model +
                                     " --judge llm:" + model + " --trust 0.9 --baseline greedy");
  EXPECT_EQ(mismatch.status, 2);
  EXPECT_NE(mismatch.output.find("needs as many --trust thresholds"), std::string::npos)
      << mismatch.output;

  // A reward model (stories260K with a seeded score head, saved as Hugging Face writes one):
  // one game per matchup, all decided; twin's answers are greedy's, so those games are ties.
  const std::string rm = work + "/rm";
  auto reward_model = load_reward_model(model, torch::kFloat32, torch::kCPU, 0.5, 11);
  save_pretrained(rm, *reward_model, reward_model->config());
  std::filesystem::copy_file(model + "/tokenizer.model", rm + "/tokenizer.model");
  const auto judged = run_flywheel("arena judge --answers " + arena + " --judge rm:" + rm +
                                   " --baseline greedy --tie-band 1e-6 --out " + work +
                                   "/rm.jsonl --stats " + work + "/rm_stats.json");
  ASSERT_EQ(judged.status, 0) << judged.output;
  const auto rm_battles = read_lines(work + "/rm.jsonl");
  ASSERT_EQ(rm_battles.size(), 6u);
  for (const auto& b : rm_battles) {
    EXPECT_EQ(b["model_a"], "greedy");
    EXPECT_EQ(b["game"], 1);
    EXPECT_TRUE(b["style"].contains("len_a"));
    if (b["model_b"] == "twin") {
      EXPECT_EQ(b["winner"], "tie") << b.dump();
    }
  }
  EXPECT_FALSE(json::parse(slurp(work + "/rm_stats.json")).contains("consistency_rate"));

  // A verifier against the prompts' ground truth: every game decided.
  const auto verified =
      run_flywheel("arena judge --answers " + arena +
                   " --judge verifier:gsm8k --baseline greedy --out " + work + "/verifier.jsonl");
  ASSERT_EQ(verified.status, 0) << verified.output;
  const std::set<std::string> winners = {"model_a", "model_b", "tie", "tie (bothbad)"};
  const auto v_battles = read_lines(work + "/verifier.jsonl");
  ASSERT_EQ(v_battles.size(), 6u);
  for (const auto& b : v_battles)
    EXPECT_TRUE(winners.contains(b["winner"].get<std::string>())) << b.dump();

  // The battles feed the ratings and win rates as they are.
  const auto rate = run_flywheel("arena rate --battles " + work + "/rm.jsonl --battles " + work +
                                 "/verifier.jsonl --bootstrap 10");
  ASSERT_EQ(rate.status, 0) << rate.output;
  EXPECT_NE(rate.output.find("sampled"), std::string::npos) << rate.output;
  const auto winrate =
      run_flywheel("arena winrate --battles " + work + "/rm.jsonl --baseline greedy");
  ASSERT_EQ(winrate.status, 0) << winrate.output;

  // Mining: greedy's losses to the reward model's preferred answers become DPO pairs.
  const auto mined = run_flywheel("arena mine --battles " + work + "/rm.jsonl --answers " + arena +
                                  " --policy sampled --out " + work + "/pairs.jsonl");
  ASSERT_EQ(mined.status, 0) << mined.output;
  const auto pairs = read_lines(work + "/pairs.jsonl");
  int lost = 0;
  for (const auto& b : rm_battles)
    lost += b["model_b"] == "sampled" && b["winner"] == "model_a";
  EXPECT_EQ(pairs.size(), static_cast<size_t>(lost)) << mined.output;
  for (const auto& p : pairs) {
    EXPECT_EQ(p["chosen_model"], "greedy");
    EXPECT_NE(p["chosen"], p["rejected"]);
  }
  if (!pairs.empty()) {
    DataStats data_stats;
    const auto examples = load_preference_examples(
        work + "/pairs.jsonl", Tokenizer::from_dir(model), DataOptions{}, &data_stats);
    EXPECT_EQ(examples.size(), pairs.size()) << data_stats.summary();
  }

  // User errors name what is wrong, with exit status 2.
  const auto no_base = run_flywheel("arena judge --answers " + arena + " --judge llm:" + model +
                                    " --baseline nobody");
  EXPECT_EQ(no_base.status, 2) << no_base.output;
  EXPECT_NE(no_base.output.find("--baseline nobody has no answers"), std::string::npos);
  const auto bad_judge =
      run_flywheel("arena judge --answers " + arena + " --judge gpt4 --baseline greedy");
  EXPECT_EQ(bad_judge.status, 2);
  EXPECT_NE(bad_judge.output.find("expected rm:DIR, verifier:NAME or llm:DIR"), std::string::npos);
  const auto not_rm = run_flywheel("arena judge --answers " + arena + " --judge rm:" + model +
                                   " --baseline greedy");
  EXPECT_EQ(not_rm.status, 2);
  EXPECT_NE(not_rm.output.find("not a reward model"), std::string::npos) << not_rm.output;
  std::filesystem::remove_all(work);
}

// The data flywheel chained (arena flywheel): the policy (stories260K) meets an opponent (its
// weights perturbed) on four prompts, judged by a reward model; the questions it lost become
// DPO pairs and two steps of DPO make the next policy; after 2 rounds every round's policy is
// rated with the opponent.
TEST(Arena, FlywheelRoundsTrainOnTheirLosses) {
  const std::string model = testing::models_dir() + "/stories260K";
  FLYWHEEL_REQUIRE_PATH(model);
  const std::string work = testing::make_temp_dir("flywheel");
  {
    std::ofstream out(work + "/prompts.jsonl");
    for (const char* p : {"Once upon a time", "The dog", "Lily saw a", "One day, Tom"})
      out << json{{"prompt", p}}.dump() << "\n";
  }
  const auto tokenizer = model + "/tokenizer.model";
  {
    auto opponent = load_causal_lm(model);
    torch::NoGradGuard no_grad;
    torch::manual_seed(5);
    for (auto& p : opponent->parameters())
      p.add_(torch::randn_like(p) * 0.05);
    save_pretrained(work + "/opp", *opponent, opponent->config());
    std::filesystem::copy_file(tokenizer, work + "/opp/tokenizer.model");
    auto rm = load_reward_model(model, torch::kFloat32, torch::kCPU, 0.5, 11);
    save_pretrained(work + "/rm", *rm, rm->config());
    std::filesystem::copy_file(tokenizer, work + "/rm/tokenizer.model");
  }
  std::ofstream(work + "/dpo.yaml")
      << "trainer: dpo\nseed: 3\noutput_dir: " << work << "/unused\nmodel:\n  path: " << model
      << "\ndata:\n  train_file: " << work << "/prompts.jsonl\n  max_length: 64\n"
      << "training:\n  max_steps: 2\n  micro_batch_size: 2\n  learning_rate: 1.0e-3\n"
      << "loss:\n  type: dpo\n  beta: 0.1\nlogging:\n  progress: lines\n"
      << "checkpoint:\n  every_steps: 0\n";
  const auto r =
      run_flywheel("arena flywheel --recipe " + work + "/dpo.yaml --prompts " + work +
                   "/prompts.jsonl --opponents opp=" + work + "/opp --judge rm:" + work +
                   "/rm --iterations 2 --out " + work + "/fly --max-new-tokens 12 --bootstrap 10");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string fly = work + "/fly";
  // Round 0: 4 battles (one game each: a reward model), and the policy's losses as pairs.
  EXPECT_EQ(read_lines(fly + "/round-0/battles.jsonl").size(), 4u);
  const auto pairs = read_lines(fly + "/round-0/pairs.jsonl");
  ASSERT_FALSE(pairs.empty()) << r.output;
  EXPECT_TRUE(std::filesystem::exists(fly + "/round-0/run/model/model.safetensors"));
  // The opponent answered once; later rounds reuse its answers.
  EXPECT_EQ(slurp(fly + "/round-0/arena/answers/opp.jsonl"),
            slurp(fly + "/round-1/arena/answers/opp.jsonl"));
  const json ratings = json::parse(slurp(fly + "/ratings.json"));
  std::set<std::string> players;
  for (const auto& p : ratings["players"])
    players.insert(p["name"].get<std::string>());
  // iter0 and iter1 at least (round 1 may have lost nothing and stopped the flywheel).
  EXPECT_TRUE(players.contains("iter0") && players.contains("iter1") && players.contains("opp"))
      << ratings.dump();
  // Not a DPO recipe: refused.
  std::ofstream(work + "/sft.yaml")
      << "trainer: sft\noutput_dir: " << work << "/unused\nmodel:\n  path: " << model
      << "\ndata:\n  train_file: " << work << "/prompts.jsonl\n";
  const auto sft = run_flywheel("arena flywheel --recipe " + work + "/sft.yaml --prompts " + work +
                                "/prompts.jsonl --opponents opp=" + work +
                                "/opp --judge rm:" + work + "/rm --out " + work + "/fly2");
  EXPECT_EQ(sft.status, 2);
  EXPECT_NE(sft.output.find("trainer must be dpo"), std::string::npos) << sft.output;
  std::filesystem::remove_all(work);
}

// The arena inside a training run (eval.arena): GRPO teaches stories260K to mention a dog, and
// every round (steps 0, 2, 4, 6) the policy's greedy answers to the held-out prompts play the
// starting model (baseline "base") and every earlier checkpoint, judged by the ifeval verifier.
// The ratings are refitted over the whole run with base anchored at 1000; the best-rated
// checkpoint is kept besides the last; a run stopped at step 2 and resumed plays exactly the
// same battles. Measured, step 6's rating and win rate against base in its round (seeds 1-5,
// whole rows): 1919, 1601, 2522, 2522, 1617 and 100% for every seed (it passes every prompt, base
// none; 2522 is the cap of a player that won every game); step 0 at base's 1000 (every game a
// tie (bothbad)). With shared prefixes (training.share_prefixes, other float rounding) seed 3
// learns slower, 1237 and 80%, and seed 4, the run, 1919 and 100%. Checkpoints that win every
// game tie for best; the earliest of them is kept.
TEST(Arena, InsideARunRatesEveryCheckpoint) {
  const std::string model = testing::models_dir() + "/stories260K";
  FLYWHEEL_REQUIRE_PATH(model);
  const std::string source = FLYWHEEL_SOURCE_DIR;
  const std::string prompts = source + "/recipes/stories260K/data/constraint_eval.jsonl";
  const std::string work = testing::make_temp_dir("run-arena");
  const std::string args =
      "train " + source + "/recipes/stories260K/rlvr_constraint.yaml seed=4 model.path=" + model +
      " data.train_file=" + source + "/recipes/stories260K/data/constraint_train.jsonl" +
      " data.eval_file=" + prompts +
      " logging.eval_every_steps=0 checkpoint.every_steps=0 checkpoint.keep_last=1"
      " checkpoint.keep_best=arena eval.arena.prompts=" +
      prompts + " eval.arena.baselines=[base=" + model +
      "] eval.arena.judges=verifier:ifeval eval.arena.every_steps=2 eval.arena.bootstrap=20"
      " eval.arena.max_new_tokens=48 output_dir=";
  const auto straight = run_flywheel(args + work + "/straight rl.iterations=6");
  ASSERT_EQ(straight.status, 0) << straight.output;
  // The judge is the run's own reward (the training rows' "dataset"): said.
  EXPECT_NE(straight.output.find("warning: eval.arena judges with verifier:ifeval, the reward "
                                 "this run trains on"),
            std::string::npos)
      << straight.output;

  const std::string arena = work + "/straight/arena";
  std::map<int64_t, json> rated;  // step: its eval line
  for (const auto& line : read_lines(work + "/straight/metrics.jsonl"))
    if (line.contains("eval/arena/rating")) rated[line["step"].get<int64_t>()] = line;
  ASSERT_EQ(rated.size(), 4u) << straight.output;
  for (const int64_t step : {0, 2, 4, 6}) {
    ASSERT_TRUE(rated.contains(step)) << step;
    EXPECT_EQ(rated[step]["eval/arena/abstention_rate"], 0.0);  // a verifier always decides
    EXPECT_TRUE(rated[step]["eval/arena/lc_win_rate"].is_number()) << rated[step];
  }
  // The starting model ties base everywhere.
  EXPECT_NEAR(rated[0]["eval/arena/rating"].get<double>(), 1000.0, 1e-6);
  EXPECT_GT(rated[6]["eval/arena/rating"].get<double>(), 1400.0);
  EXPECT_GT(rated[6]["eval/arena/win_rate"].get<double>(), 75.0);

  // Round k plays base and the k earlier checkpoints, one game per prompt each.
  const size_t n = read_lines(prompts).size();
  EXPECT_EQ(read_lines(arena + "/battles.jsonl").size(), n * (1 + 2 + 3 + 4));
  const json ratings = json::parse(slurp(arena + "/ratings.json"));
  EXPECT_EQ(ratings["anchor"]["name"], "base");
  ASSERT_EQ(ratings["steps"].size(), 4u);
  int64_t best = -1;
  double best_rating = -1e300;
  // The best among the checkpoints still on disk (a refit may prefer one pruned earlier).
  for (const auto& s : ratings["steps"]) {
    const int64_t step = s["step"];
    const bool on_disk =
        std::filesystem::is_directory(work + "/straight/checkpoints/" + checkpoint_name(step));
    if (step > 0 && on_disk && s["rating"].get<double>() > best_rating) {
      best = s["step"];
      best_rating = s["rating"];
    }
  }
  ASSERT_EQ(ratings["best"]["step"], best);
  // keep_last 1 and the best: the best checkpoint and the last, nothing else.
  std::set<std::string> kept;
  for (const auto& e : std::filesystem::directory_iterator(work + "/straight/checkpoints"))
    kept.insert(e.path().filename().string());
  EXPECT_TRUE(kept.contains(
      std::filesystem::path(ratings["best"]["checkpoint"].get<std::string>()).filename()));
  EXPECT_EQ(kept.size(), best == 6 ? 1u : 2u);
  EXPECT_TRUE(std::filesystem::exists(arena + "/ratings_by_step.png"));
  EXPECT_TRUE(std::filesystem::exists(arena + "/leaderboard.md"));

  // Stopped after step 2 (its round played), resumed: the same battles and ratings.
  const auto first = run_flywheel(args + work + "/resumed rl.iterations=2");
  ASSERT_EQ(first.status, 0) << first.output;
  const auto resumed = run_flywheel(args + work + "/resumed rl.iterations=6 --resume");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_EQ(slurp(work + "/resumed/arena/battles.jsonl"), slurp(arena + "/battles.jsonl"));
  const json resumed_ratings = json::parse(slurp(work + "/resumed/arena/ratings.json"));
  EXPECT_EQ(resumed_ratings["players"], ratings["players"]);
  // The resumed run kept its best checkpoint through its saves too.
  std::set<std::string> resumed_kept;
  for (const auto& e : std::filesystem::directory_iterator(work + "/resumed/checkpoints"))
    resumed_kept.insert(e.path().filename().string());
  EXPECT_EQ(resumed_kept, kept);
  EXPECT_EQ(resumed_ratings["best"]["step"], best);
}

}  // namespace
}  // namespace flywheel
