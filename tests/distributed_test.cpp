// Data parallelism through real processes and real c10d (Gloo) process groups on this machine:
// 2 ranks x micro-batch b must train exactly like 1 rank x 2b (losses and final weights within
// 1e-5) for SFT, DPO and reward models, replicated and with ZeRO-1/2; sharded checkpoints resume at
// another world size; flywheel-launch stops the group on a failed rank and restarts it from the
// latest checkpoint; the binary runs unchanged under the real torchrun; a rendezvous that cannot
// complete is a clear error, not a hang.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/fixtures.h"
#include "tests/run_binary.h"
#include "tests/story_data.h"
#include "trainer/checkpoint/checkpoint_store.h"
#include "trainer/checkpoint/safetensors.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;
using testing::losses_of;
using testing::run_command;
using testing::run_flywheel;

constexpr double kTolerance = 1e-5;

std::string stories() {
  return testing::models_dir() + "/stories260K";
}

// A port nobody listens on right now, so tests running in parallel do not collide.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string launch(int nproc, const std::string& flywheel_args, const std::string& extra = "") {
  return std::string(FLYWHEEL_LAUNCH_BINARY) + " --nproc-per-node " + std::to_string(nproc) +
         " --master-port " + std::to_string(free_port()) + " " + extra + " -- " + flywheel_args;
}

// 6 steps of 4 examples; overrides pick the split across ranks and the ZeRO stage.
// adam_eps is 1e-6, not 1e-8: with 1e-8, a weight whose gradient is ~0 moves by about +-lr
// in Adam's first steps with the sign of float rounding noise, so even gradient accumulation
// on one process (2 x 2 vs 4) ends 1.8e-5 apart after 6 DPO steps at lr 1e-4; with 1e-6 such
// weights barely move and the comparison measures the data-parallel arithmetic (measured:
// 7.5e-7 apart).
std::string write_recipe(const std::string& dir, const std::string& trainer) {
  const std::string path = dir + "/" + trainer + ".yaml";
  std::ofstream(path) << "trainer: " << trainer << "\n"
                      << "seed: 5\n"
                      << "output_dir: " << dir << "/run\n"
                      << "model:\n  path: " << stories() << "\n"
                      << "data:\n  train_file: " << dir
                      << (trainer == "sft" ? "/sft.jsonl" : "/pairs.jsonl") << "\n"
                      << "  max_length: 64\n"
                      << "training:\n  max_steps: 6\n  micro_batch_size: 4\n"
                         "  learning_rate: 1.0e-4\n  lr_scheduler: constant\n  adam_eps: 1.0e-6\n"
                      << "loss:\n  type: dpo\n  beta: 0.5\n"
                      << "logging:\n  progress: lines\n"
                      << "checkpoint:\n  every_steps: 3\n  keep_last: 5\n"
                      << "distributed:\n  bucket_mb: 0.1\n  rendezvous_timeout_s: 60\n";
  return path;
}

// A fresh directory with the story data and a recipe for `trainer` in it.
struct Setup {
  std::string dir, recipe;
};
Setup setup(const std::string& tag, const std::string& trainer) {
  Setup s;
  s.dir = testing::make_temp_dir(tag);
  testing::write_story_data(s.dir);
  s.recipe = write_recipe(s.dir, trainer);
  return s;
}

// The largest difference between two models' weights, and where it is.
std::pair<double, std::string> max_weight_difference(const std::string& model_a,
                                                     const std::string& model_b) {
  const auto a = load_safetensors_dir(model_a), b = load_safetensors_dir(model_b);
  EXPECT_EQ(a.size(), b.size());
  std::pair<double, std::string> worst{0.0, ""};
  for (const auto& [name, t] : a) {
    const double d = (t - b.at(name)).abs().max().item<double>();
    if (d > worst.first) worst = {d, name};
  }
  return worst;
}

void expect_same_training(const std::string& run_a, const std::string& run_b,
                          const std::string& what) {
  const auto la = losses_of(run_a + "/metrics.jsonl"), lb = losses_of(run_b + "/metrics.jsonl");
  ASSERT_EQ(la.size(), 6u) << what;
  ASSERT_EQ(lb.size(), 6u) << what;
  for (size_t i = 0; i < la.size(); ++i)
    EXPECT_NEAR(la[i], lb[i], kTolerance) << what << ", step " << i + 1;
  const auto [diff, where] = max_weight_difference(run_a + "/model", run_b + "/model");
  EXPECT_LT(diff, kTolerance) << what << ": largest weight difference in " << where;
}

// One rank x 4 examples, then 2 ranks x 2 examples at each ZeRO stage (stage 3: parameters
// sharded and gathered layer by layer, the same losses and weights).
void check_two_ranks_match_one(const std::string& trainer) {
  const auto [dir, recipe] = setup("dp-" + trainer, trainer);
  auto one = run_flywheel("train " + recipe + " output_dir=" + dir + "/one");
  ASSERT_EQ(one.status, 0) << one.output;
  for (int zero = 0; zero <= 3; ++zero) {
    const std::string out = dir + "/two-zero" + std::to_string(zero);
    auto two = run_command(launch(
        2, "train " + recipe + " output_dir=" + out +
               " training.micro_batch_size=2 distributed.zero_stage=" + std::to_string(zero)));
    ASSERT_EQ(two.status, 0) << two.output;
    EXPECT_NE(two.output.find("x 2 ranks"), std::string::npos) << two.output;
    if (zero == 3) {
      EXPECT_NE(two.output.find("ZeRO stage 3, parameters sharded in"), std::string::npos)
          << two.output;
    }
    expect_same_training(dir + "/one", out, trainer + ", ZeRO stage " + std::to_string(zero));
  }
  fs::remove_all(dir);
}

TEST(DataParallel, SftTwoRanksMatchOneRankWithTwiceTheBatch) {
  FLYWHEEL_REQUIRE_PATH(stories());
  check_two_ranks_match_one("sft");
}

TEST(DataParallel, DpoTwoRanksMatchOneRankWithTwiceTheBatch) {
  FLYWHEEL_REQUIRE_PATH(stories());
  check_two_ranks_match_one("dpo");
}

TEST(DataParallel, RewardModelTwoRanksMatchOneRankWithTwiceTheBatch) {
  FLYWHEEL_REQUIRE_PATH(stories());
  check_two_ranks_match_one("reward_model");
}

// One RL iteration of 4 prompts x 8 responses in 2 minibatches: 2 ranks (2 prompts each)
// train exactly like 1 rank. Every response is drawn from its own (iteration, prompt, sample)
// stream, so both runs sample the same responses (their rewards, lengths and sampled-token
// log-probs agree), and each minibatch is the same set of responses whichever rank holds them.
// PPO's advantages are whitened over both ranks' tokens, and its critic trains in step too.
// Seed 1 gives the iteration 4 correct responses of 32 (with none, PPO's whitened advantages
// would be the float32 noise of its KL penalty between identical models, magnified to unit
// scale: a comparison of noise, not of training). The learning rate is the recipe's / 10: Adam
// turns float32 rounding differences in a small gradient into steps of up to ±lr, and at the
// recipe's 2e-3 the largest GRPO weight difference measured 1.3e-5 (at 2e-4: 1.3e-6; PPO
// 5.0e-7, its critic 6e-8).
void check_rl_two_ranks_match_one(const std::string& trainer) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("dp-" + trainer);
  const std::string args =
      "train recipes/stories260K/rlvr_constraint.yaml trainer=" + trainer +
      " model.path=" + stories() +
      " seed=1 rl.iterations=1 rl.prompts_per_iteration=4 rl.minibatches=2"
      " training.micro_batch_size=8 training.learning_rate=2.0e-4"
      " training.adam_eps=1.0e-6 logging.eval_every_steps=0 distributed.rendezvous_timeout_s=60"
      " output_dir=";
  const std::string in_source = "cd " FLYWHEEL_SOURCE_DIR " && ";
  auto one = run_command(in_source + FLYWHEEL_BINARY + " " + args + dir + "/one");
  ASSERT_EQ(one.status, 0) << one.output;
  auto two = run_command(in_source + launch(2, args + dir + "/two"));
  ASSERT_EQ(two.status, 0) << two.output;
  EXPECT_NE(two.output.find("(2 ranks)"), std::string::npos) << two.output;
  const auto step = [](const std::string& run) {
    for (const auto& l : testing::read_metrics(run + "/metrics.jsonl"))
      if (l.contains("pass_rate")) return l;
    return nlohmann::json();
  };
  const auto a = step(dir + "/one"), b = step(dir + "/two");
  ASSERT_FALSE(a.is_null());
  ASSERT_FALSE(b.is_null());
  // The same samples: the same rewards, lengths and stops...
  for (const char* key : {"reward", "pass_rate", "response_length", "eos_rate"})
    EXPECT_NEAR(a[key].get<double>(), b[key].get<double>(), 1e-9) << key;
  // ...and the same tokens' float32 log-probs, computed in batches of another composition (a
  // rank decodes 16 rows, not 32): they agree to float32 rounding (measured: 1.1e-8 apart in
  // the mean over ~1500 tokens).
  EXPECT_NEAR(a["entropy"].get<double>(), b["entropy"].get<double>(), 1e-6);
  std::vector<const char*> keys = {"loss", "kl", "grad_norm"};
  if (trainer == "ppo") keys.insert(keys.end(), {"value_loss", "explained_variance"});
  for (const char* key : keys)
    EXPECT_NEAR(a[key].get<double>(), b[key].get<double>(), kTolerance) << key;
  const auto [diff, where] = max_weight_difference(dir + "/one/model", dir + "/two/model");
  EXPECT_LT(diff, kTolerance) << "largest weight difference in " << where;
  if (trainer == "ppo") {
    const auto [value_diff, value_where] =
        max_weight_difference(dir + "/one/value_model", dir + "/two/value_model");
    EXPECT_LT(value_diff, kTolerance) << "largest value model difference in " << value_where;
  }
  fs::remove_all(dir);
}

// The arena inside a 2-rank ZeRO-3 SFT run: rank 0 gathers the whole model, plays each round
// (steps 0, 3, 6) and keeps the best checkpoint; rank 1 follows the same schedule (every rated
// step checkpointed on both ranks) and waits. The run ends normally with every round rated.
TEST(DataParallel, ArenaRoundsRunOnRankZeroWhileTheOthersWait) {
  const auto [dir, recipe] = setup("dp-arena", "sft");
  {
    std::ifstream in(FLYWHEEL_SOURCE_DIR "/recipes/stories260K/data/constraint_eval.jsonl");
    std::ofstream out(dir + "/arena_prompts.jsonl");
    std::string line;
    for (int i = 0; i < 8 && std::getline(in, line); ++i)
      out << line << "\n";
  }
  const auto run = run_command(
      launch(2, "train " + recipe + " output_dir=" + dir + "/two training.micro_batch_size=2" +
                    " distributed.zero_stage=3 checkpoint.every_steps=0 checkpoint.keep_last=1" +
                    " checkpoint.keep_best=arena eval.arena.prompts=" + dir +
                    "/arena_prompts.jsonl eval.arena.baselines=[base=" + stories() +
                    "] eval.arena.judges=verifier:ifeval eval.arena.every_steps=3" +
                    " eval.arena.max_new_tokens=24 eval.arena.bootstrap=10 eval.arena.plot=false" +
                    " eval.arena.style_control=true eval.arena.bootstrap_unit=battle"));
  ASSERT_EQ(run.status, 0) << run.output;
  std::vector<int64_t> rated;
  for (const auto& l : testing::read_metrics(dir + "/two/metrics.jsonl"))
    if (l.contains("eval/arena/abstention_rate")) rated.push_back(l["step"].get<int64_t>());
  EXPECT_EQ(rated, (std::vector<int64_t>{0, 3, 6})) << run.output;
  std::ifstream in(dir + "/two/arena/ratings.json");
  const auto ratings = nlohmann::json::parse(in);
  EXPECT_EQ(ratings["players"].size(), 4u);           // base, step-0, step-3, step-6
  EXPECT_TRUE(ratings.contains("style")) << ratings;  // fitted with style control
  EXPECT_EQ(ratings["bootstrap"]["unit"], "battle");
  ASSERT_TRUE(ratings.contains("best")) << ratings;
  // The last checkpoint and the best (the same one when step 6 is the best).
  std::set<std::string> kept;
  for (const auto& e : fs::directory_iterator(dir + "/two/checkpoints"))
    kept.insert(e.path().filename().string());
  EXPECT_TRUE(kept.contains(checkpoint_name(6)));
  EXPECT_TRUE(kept.contains(fs::path(ratings["best"]["checkpoint"].get<std::string>()).filename()));
  EXPECT_EQ(kept.size(), ratings["best"]["step"] == 6 ? 1u : 2u);
  fs::remove_all(dir);
}

TEST(DataParallel, GrpoTwoRanksMatchOneRank) {
  check_rl_two_ranks_match_one("grpo");
}

TEST(DataParallel, PpoTwoRanksMatchOneRank) {
  check_rl_two_ranks_match_one("ppo");
}

// The run directory as it was after step 3's checkpoint was sealed (the resumed run's log
// continues from step 3 by itself).
void rewind_to_step_3(const std::string& run) {
  fs::remove_all(run + "/checkpoints/step-00000006");
  fs::remove_all(run + "/model");
}

// The peak memory a run logged (its last step's peak_memory_gb, the largest of the ranks'), in
// bytes.
double logged_peak_bytes(const std::string& run) {
  const auto lines = testing::read_metrics(run + "/metrics.jsonl");
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (it->contains("peak_memory_gb")) return (*it)["peak_memory_gb"].get<double>() * (1 << 30);
  }
  return 0;
}

// An SFT recipe in `dir` for a freshly initialised float32 Llama of the given shape, on rows
// packed to exactly 64 tokens (so that activations are what `flywheel plan` assumes), 3 steps of
// 2 accumulated micro-batches of one row.
std::string write_sized_recipe(const std::string& dir, int layers, int hidden, int intermediate,
                               int heads, bool tied) {
  testing::write_story_data(dir);
  std::ofstream(dir + "/config.json") << nlohmann::json{
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"vocab_size", 512},
      {"hidden_size", hidden},
      {"intermediate_size", intermediate},
      {"num_hidden_layers", layers},
      {"num_attention_heads", heads},
      {"num_key_value_heads", heads},
      {"max_position_embeddings", 512},
      {"rms_norm_eps", 1e-5},
      {"tie_word_embeddings", tied},
      {"bos_token_id", 1},
      {"eos_token_id", 2},
      {"torch_dtype", "float32"}}.dump();
  const std::string recipe = dir + "/sft.yaml";
  std::ofstream(recipe) << "trainer: sft\noutput_dir: " << dir << "/out\nmodel:\n  config: " << dir
                        << "/config.json\n  tokenizer: " << stories() << "\n"
                        << "data:\n  train_file: " << dir << "/sft.jsonl\n  max_length: 64\n"
                        << "  packing: true\n"
                        << "training:\n  max_steps: 3\n  micro_batch_size: 1\n"
                           "  gradient_accumulation_steps: 2\n  adam_eps: 1.0e-6\n"
                        << "logging:\n  progress: lines\ncheckpoint:\n  every_steps: 0\n"
                        << "distributed:\n  bucket_mb: 4\n  rendezvous_timeout_s: 60\n";
  return recipe;
}

// Peak memory per rank at two ZeRO stages on 2 ranks: as `flywheel plan` predicts it and as
// the runs logged it (the largest of the ranks' peaks of live tensor bytes), in bytes.
struct StagePeaks {
  std::map<int, double> planned, measured;
  double planned_saving(int a, int b) const { return planned.at(a) - planned.at(b); }
  double measured_saving(int a, int b) const { return measured.at(a) - measured.at(b); }
  void print(int a, int b) const {
    std::printf(
        "peak per rank: ZeRO-%d %.1f MiB (planned %.1f), ZeRO-%d %.1f MiB (planned %.1f); "
        "saved %.1f MiB, planned %.1f\n",
        a, measured.at(a) / (1 << 20), planned.at(a) / (1 << 20), b, measured.at(b) / (1 << 20),
        planned.at(b) / (1 << 20), measured_saving(a, b) / (1 << 20),
        planned_saving(a, b) / (1 << 20));
  }
};

// Runs `recipe` at stages a and b, prints the peaks and checks that b saves what the planner
// says, ±20%.
StagePeaks expect_saving_as_planned(const std::string& recipe, const std::string& dir, int a,
                                    int b) {
  StagePeaks peaks;
  for (int zero : {a, b}) {
    const std::string stage = "distributed.zero_stage=" + std::to_string(zero);
    auto plan = run_flywheel("plan " + recipe + " --world-size 2 " + stage);
    EXPECT_EQ(plan.status, 0) << plan.output;
    const auto at = plan.output.find("peak per rank");
    if (at == std::string::npos) {
      ADD_FAILURE() << plan.output;
      continue;
    }
    peaks.planned[zero] =
        std::stod(plan.output.substr(plan.output.find_first_of("0123456789", at))) * (1 << 30);
    const std::string out = dir + "/zero" + std::to_string(zero);
    auto r = run_command(launch(2, "train " + recipe + " output_dir=" + out + " " + stage));
    EXPECT_EQ(r.status, 0) << r.output;
    peaks.measured[zero] = logged_peak_bytes(out);
    EXPECT_GT(peaks.measured[zero], 0) << "no peak_memory_gb in " << out;
  }
  if (peaks.measured.size() == 2) {
    peaks.print(a, b);
    const double planned = peaks.planned_saving(a, b);
    EXPECT_NEAR(peaks.measured_saving(a, b), planned, 0.2 * planned);
  } else {
    ADD_FAILURE() << "a run or plan failed";
  }
  return peaks;
}

// ZeRO-2 keeps only this rank's shard of the float32 gradient, while ZeRO-1 keeps buckets of
// the whole gradient: on 2 ranks of a 28.7M-parameter model the peak drops by those 4N bytes
// (109.5 MiB) less ZeRO-2's buckets in flight (three of 6 MiB here), as planned, ±20%
// (measured: ZeRO-1 415 MiB per rank, planned 403; ZeRO-2 320, planned 312; saved 95 MiB,
// planned 91). Before gradients were sharded for real, ZeRO-2 allocated the same whole-model
// buckets and accumulated full-size .grad between micro-batches: it saved nothing.
TEST(DataParallel, ZeroTwoHoldsAShardOfTheGradientNotAllOfIt) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("dp-zero2-memory");
  const auto recipe = write_sized_recipe(dir, 4, 768, 2048, 12, /*tied=*/true);
  expect_saving_as_planned(recipe, dir, 1, 2);
  fs::remove_all(dir);
}

// ZeRO-3 on a model whose parameters do not sit in one unit (24 layers, untied head): each rank
// stores half of the weights and gathers a layer at a time. Its peak, and what it saves over
// ZeRO-2, are what `flywheel plan` predicts, ±20% (measured: ZeRO-2 822 MiB per rank, planned
// 819; ZeRO-3 705, planned 709; saved 117 MiB, planned 111: of the 149 MiB of weights not
// stored, two gathered layers and a second unit of gradients in flight take back a quarter).
// Before the gathers and reduce-scatters ran in place, Gloo's own copy of each unit in transit
// added two units (measured 735 MiB, saved 86).
// Then, with activation checkpointing, a step of one example (both ranks run stand-in
// micro-batches): the run matches the same run on one process.
TEST(DataParallel, ZeroThreeShardsTheWeightsAsPlanned) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("dp-zero3");
  const auto recipe = write_sized_recipe(dir, 24, 512, 1408, 8, /*tied=*/false);
  const auto peaks = expect_saving_as_planned(recipe, dir, 2, 3);
  ASSERT_EQ(peaks.measured.size(), 2u);
  EXPECT_NEAR(peaks.measured.at(3), peaks.planned.at(3), 0.2 * peaks.planned.at(3));

  // Loading: from the model the ZeRO-3 run wrote (a unit at a time), a ZeRO-3 rank builds the
  // model without memory and reads only its parts, so loading peaks at half of the weights
  // plus one unit; a ZeRO-2 rank holds all of them (measured: 160 MiB vs 296; before, ZeRO-3
  // loaded the whole model like ZeRO-2 and sharded it afterwards).
  const double layer = 4 * 512.0 * 512 + 3 * 512.0 * 1408 + 2 * 512;
  const double weights = 4 * (24 * layer + 2 * 512.0 * 512 + 512);
  const std::string from_model = dir + "/from-model.yaml";
  {
    std::ifstream in(recipe);
    std::stringstream text;
    text << in.rdbuf();
    std::ofstream(from_model) << std::regex_replace(text.str(), std::regex("config: .*"),
                                                    "path: " + dir + "/zero3/model");
  }
  std::map<int, double> loaded;
  for (int zero : {2, 3}) {
    auto r = run_command(
        launch(2, "train " + from_model + " output_dir=" + dir + "/load" + std::to_string(zero) +
                      " training.max_steps=1 distributed.zero_stage=" + std::to_string(zero)));
    ASSERT_EQ(r.status, 0) << r.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(loaded: peak ([0-9.]+) GiB)")))
        << r.output;
    loaded[zero] = std::stod(m[1].str()) * (1 << 30);
  }
  std::printf("loading peak per rank: ZeRO-2 %.1f MiB, ZeRO-3 %.1f MiB (weights %.1f MiB)\n",
              loaded[2] / (1 << 20), loaded[3] / (1 << 20), weights / (1 << 20));
  EXPECT_GE(loaded[2], weights);
  EXPECT_NEAR(loaded[3], weights / 2 + 4 * layer, 0.2 * (weights / 2 + 4 * layer));

  // 5 examples in batches of 4: step 2 has one, so rank 1 runs stand-ins for both of its
  // micro-batches and rank 0 for its second. The run matches one process's (4 x 1 accumulated).
  {
    std::ifstream all(dir + "/sft.jsonl");
    std::ofstream five(dir + "/five.jsonl");
    std::string line;
    for (int i = 0; i < 5 && std::getline(all, line); ++i)
      five << line << "\n";
  }
  const std::string odd = " data.train_file=" + dir + "/five.jsonl training.max_steps=2" +
                          " data.packing=false training.activation_checkpointing=true";
  auto one = run_flywheel("train " + recipe + " output_dir=" + dir + "/one" + odd +
                          " training.gradient_accumulation_steps=4");
  ASSERT_EQ(one.status, 0) << one.output;
  auto two = run_command(launch(
      2, "train " + recipe + " output_dir=" + dir + "/two" + odd + " distributed.zero_stage=3"));
  ASSERT_EQ(two.status, 0) << two.output;
  const auto la = losses_of(dir + "/one/metrics.jsonl"), lb = losses_of(dir + "/two/metrics.jsonl");
  ASSERT_EQ(la.size(), 2u);
  ASSERT_EQ(lb.size(), 2u);
  for (size_t i = 0; i < la.size(); ++i)
    EXPECT_NEAR(la[i], lb[i], kTolerance) << "step " << i + 1;
  const auto [diff, where] = max_weight_difference(dir + "/one/model", dir + "/two/model");
  EXPECT_LT(diff, kTolerance) << "largest weight difference in " << where;
  fs::remove_all(dir);
}

// Checkpoints written at any world size and ZeRO stage resume at any other: the optimizer
// shards say where each of their segments lies in the whole model, and the weights are saved
// whole.
TEST(DataParallel, ShardedCheckpointResumesAtAnotherWorldSize) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto [dir, recipe] = setup("dp-resume", "sft");
  ASSERT_EQ(run_flywheel("train " + recipe + " output_dir=" + dir + "/one").status, 0);

  // ZeRO-3 on 2 ranks to step 3, then one process (plain AdamW) continues, and 2 ZeRO-2 ranks
  // continue another copy.
  const std::string run = dir + "/zero3";
  auto two = run_command(launch(2, "train " + recipe + " output_dir=" + run +
                                       " training.micro_batch_size=2 distributed.zero_stage=3"));
  ASSERT_EQ(two.status, 0) << two.output;
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step-00000003/optimizer-shard-1-of-2.safetensors"));
  rewind_to_step_3(run);
  const std::string other_stage = dir + "/zero3-then-zero2";
  fs::copy(run, other_stage, fs::copy_options::recursive);
  auto resumed = run_flywheel("train " + recipe + " output_dir=" + run + " --resume");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
  expect_same_training(dir + "/one", run, "ZeRO-3 x 2 ranks resumed on 1 rank");
  auto zero2 = run_command(launch(2, "train " + recipe + " output_dir=" + other_stage +
                                         " training.micro_batch_size=2" +
                                         " distributed.zero_stage=2 --resume"));
  ASSERT_EQ(zero2.status, 0) << zero2.output;
  expect_same_training(dir + "/one", other_stage, "ZeRO-3 x 2 ranks resumed on 2 ZeRO-2 ranks");

  // And the other way: a single process's checkpoint resumed by 2 ZeRO-1 ranks and by 2 ZeRO-3
  // ranks.
  for (int zero : {1, 3}) {
    const std::string back = dir + "/one-then-zero" + std::to_string(zero);
    fs::copy(dir + "/one", back, fs::copy_options::recursive);
    rewind_to_step_3(back);
    auto sharded = run_command(
        launch(2, "train " + recipe + " output_dir=" + back + " training.micro_batch_size=2" +
                      " distributed.zero_stage=" + std::to_string(zero) + " --resume"));
    ASSERT_EQ(sharded.status, 0) << sharded.output;
    expect_same_training(dir + "/one", back,
                         "1 rank resumed on 2 ZeRO-" + std::to_string(zero) + " ranks");
  }
  fs::remove_all(dir);
}

TEST(DataParallel, RunsUnderRealTorchrun) {
  FLYWHEEL_REQUIRE_PATH(stories());
  FLYWHEEL_REQUIRE_PATH(FLYWHEEL_TORCHRUN);  // scripts/install-deps.sh installs torch
  const auto [dir, recipe] = setup("torchrun", "sft");
  ASSERT_EQ(run_flywheel("train " + recipe + " output_dir=" + dir + "/one").status, 0);
  auto r = run_command("OMP_NUM_THREADS=1 " FLYWHEEL_TORCHRUN " --nproc_per_node=2 --master_port=" +
                       std::to_string(free_port()) + " --log_dir " + dir +
                       "/torchrun-logs --no_python " FLYWHEEL_BINARY " train " + recipe +
                       " output_dir=" + dir + "/torchrun training.micro_batch_size=2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("x 2 ranks (torchrun"), std::string::npos) << r.output;
  expect_same_training(dir + "/one", dir + "/torchrun", "under torchrun");
  fs::remove_all(dir);
}

TEST(DataParallel, MissingRankIsARendezvousError) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto [dir, recipe] = setup("rdzv", "sft");
  const auto start = std::chrono::steady_clock::now();
  auto r =
      run_command("RANK=0 WORLD_SIZE=2 MASTER_PORT=" + std::to_string(free_port()) + " " +
                  FLYWHEEL_BINARY + " train " + recipe + " distributed.rendezvous_timeout_s=2");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("only 1 of 2 ranks joined"), std::string::npos) << r.output;
  // Far below the default rendezvous timeout (300 s), far above a loaded machine's start-up.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(120));
  fs::remove_all(dir);
}

// flywheel-launch in the background, its output going to a file.
class BackgroundLaunch {
 public:
  explicit BackgroundLaunch(const std::string& command, const std::string& log) : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", (command + " > " + log + " 2>&1").c_str(), nullptr);
      _exit(127);
    }
  }
  std::string output() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // The pid the launcher reported for `rank`, once it has.
  pid_t rank_pid(int rank) const {
    std::smatch m;
    const auto text = output();
    const std::regex re("started rank " + std::to_string(rank) + " \\(pid ([0-9]+)\\)");
    return std::regex_search(text, m, re) ? static_cast<pid_t>(std::stol(m[1])) : -1;
  }
  // Exit status, or -1 after `limit`.
  int wait(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_)
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    return -1;
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
};

// Waits until RUN/metrics.jsonl has logged `step`.
bool wait_for_step(const std::string& run, int step) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      for (const auto& line : testing::read_metrics(run + "/metrics.jsonl")) {
        if (line.contains("loss") && line["step"].get<int>() >= step) return true;
      }
    } catch (const nlohmann::json::exception&) {
      // a line being written; look again
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// A run of 300 steps on 2 ranks (10-20 s: long enough to kill mid-way).
std::string long_run(const std::string& recipe, const std::string& run) {
  return "train " + recipe + " output_dir=" + run +
         " training.max_steps=300 training.epochs=100 training.micro_batch_size=2" +
         " checkpoint.every_steps=50";
}

TEST(Launcher, KilledRankStopsTheGroupAndIsReported) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto [dir, recipe] = setup("launch-kill", "sft");
  BackgroundLaunch job(launch(2, long_run(recipe, dir + "/run")), dir + "/log");
  ASSERT_TRUE(wait_for_step(dir + "/run", 3)) << job.output();
  const pid_t victim = job.rank_pid(1);
  ASSERT_GT(victim, 0) << job.output();
  const auto killed_at = std::chrono::steady_clock::now();
  kill(victim, SIGKILL);
  const int status = job.wait(std::chrono::seconds(300));
  // Without the launcher's group stop, rank 0 would wait in its next collective until the
  // collective timeout (30 min); 2 minutes is generous for a loaded 2-core machine.
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at, std::chrono::seconds(120));
  EXPECT_NE(status, 0) << job.output();
  const auto out = job.output();
  EXPECT_NE(out.find("rank 1 (pid " + std::to_string(victim) + ") was killed by signal 9"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("job failed: rank 1"), std::string::npos) << out;
  fs::remove_all(dir);
}

TEST(Launcher, MaxRestartsResumesFromTheLatestCheckpoint) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto [dir, recipe] = setup("launch-restart", "sft");
  BackgroundLaunch job(launch(2, long_run(recipe, dir + "/run"), "--max-restarts 1"), dir + "/log");
  ASSERT_TRUE(wait_for_step(dir + "/run", 60)) << job.output();
  const pid_t victim = job.rank_pid(1);
  ASSERT_GT(victim, 0);
  kill(victim, SIGKILL);
  EXPECT_EQ(job.wait(std::chrono::seconds(300)), 0) << job.output();
  const auto out = job.output();
  EXPECT_NE(out.find("restarting all ranks from the latest checkpoint"), std::string::npos) << out;
  EXPECT_NE(out.find("resumed from"), std::string::npos) << out;
  const auto metrics = testing::read_metrics(dir + "/run/metrics.jsonl");
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(metrics.back()["step"].get<int>(), 300);
  EXPECT_TRUE(fs::exists(dir + "/run/model/config.json"));
  fs::remove_all(dir);
}

// Two "nodes" on this machine: two launchers with --nnodes 2, one rank each, meeting at node
// 0's store. Trains like one rank with the whole batch.
TEST(Launcher, TwoNodesOfOneRankEach) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto [dir, recipe] = setup("launch-nodes", "sft");
  ASSERT_EQ(run_flywheel("train " + recipe + " output_dir=" + dir + "/one").status, 0);
  const std::string nodes = " --nnodes 2 --master-port " + std::to_string(free_port());
  const std::string args =
      " -- train " + recipe + " output_dir=" + dir + "/nodes training.micro_batch_size=2";
  BackgroundLaunch node1(
      std::string(FLYWHEEL_LAUNCH_BINARY) + " --nproc-per-node 1 --node-rank 1" + nodes + args,
      dir + "/node1.log");
  auto node0 = run_command(std::string(FLYWHEEL_LAUNCH_BINARY) + " --nproc-per-node 1" +
                           " --node-rank 0" + nodes + args);
  ASSERT_EQ(node0.status, 0) << node0.output;
  ASSERT_EQ(node1.wait(std::chrono::seconds(60)), 0) << node1.output();
  EXPECT_NE(node1.output().find("started rank 1"), std::string::npos) << node1.output();
  expect_same_training(dir + "/one", dir + "/nodes", "2 nodes x 1 rank");
  fs::remove_all(dir);
}

TEST(Launcher, UsageErrorsExitWithStatus2) {
  auto none = run_command(std::string(FLYWHEEL_LAUNCH_BINARY) + " -- train x.yaml");
  EXPECT_EQ(none.status, 2) << none.output;
  EXPECT_NE(none.output.find("--nproc-per-node is required"), std::string::npos) << none.output;
  auto bad = run_command(std::string(FLYWHEEL_LAUNCH_BINARY) + " --nproc-per-node zero -- x");
  EXPECT_EQ(bad.status, 2) << bad.output;
  EXPECT_NE(bad.output.find("--nproc-per-node 'zero'"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace flywheel
