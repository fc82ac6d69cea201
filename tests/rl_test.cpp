// Online RL (trainer/rl): the rollout's log-probs are the trainer's (the first ratio is 1), PPO's
// targets and KL controller, PPO, GRPO and online DPO teach the real stories260K model a
// checkable constraint, a resumed run equals an uninterrupted one, RLOO runs, and bad recipes or
// prompt files are clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include "losses/kl.h"
#include "losses/masked.h"
#include "rollout/engine.h"
#include "tests/fixtures.h"
#include "tests/run_binary.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/dist/communicator.h"
#include "trainer/model/model_config.h"
#include "trainer/rl/kl_controller.h"
#include "trainer/rl/ppo_targets.h"
#include "trainer/rl/rl_batch.h"
#include "trainer/train/objective.h"
#include "trainer/train/recipe.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;

std::string stories() {
  return testing::models_dir() + "/stories260K";
}

std::string constraint_recipe() {
  return "recipes/stories260K/rlvr_constraint.yaml";
}

// The binary run from the source tree, where the recipe's relative paths point.
testing::RunResult run_flywheel(const std::string& args) {
  return testing::run_command("cd " FLYWHEEL_SOURCE_DIR " && " FLYWHEEL_BINARY " " + args);
}

// The engine's per-token log-probs of its samples (the model's distribution at temperature 1)
// against the trainer's forward of the same sequences in training mode: equal to float32
// rounding, so the PPO/GRPO ratio exp(new - old) is 1 at the first minibatch. The engine's
// fused CPU step (rollout/cpu_decode_step.h) rounds independently of the training path's ATen
// calls: 1.6e-5 apart here, while either is ~1e-5 from a float64 forward
// (Engine.FusedCpuDecodeStepMatchesTheComposedForward prints both); hence 3e-5.
TEST(Rl, EngineLogprobsAreTheTrainersSoTheFirstRatioIsOne) {
  FLYWHEEL_REQUIRE_PATH(stories());
  auto model = load_causal_lm(stories());
  const Tokenizer tokenizer = Tokenizer::from_dir(stories());
  EngineOptions options;
  options.max_seq_len = 96;
  options.max_num_seqs = 16;
  Engine engine(model, options, &tokenizer);
  std::vector<Request> requests;
  for (const char* text : {"Once upon a time", "Tom had a big red ball. He", "Lily"}) {
    Request r;
    r.prompt = tokenizer.encode(text, /*add_bos=*/true);
    r.max_new_tokens = 40;
    r.n = 4;
    r.seed = 5;
    r.stop_ids = {tokenizer.eos_id()};
    requests.push_back(r);
  }
  const auto outputs = engine.generate(requests);
  std::vector<RlSample> samples;
  for (size_t q = 0; q < requests.size(); ++q) {
    for (const auto& c : outputs[q]) {
      RlSample s;
      s.ids = requests[q].prompt;
      s.ids.insert(s.ids.end(), c.token_ids.begin(), c.token_ids.end());
      s.prompt_length = static_cast<int64_t>(requests[q].prompt.size());
      s.old_logps = c.model_logprobs;
      samples.push_back(s);
    }
  }
  std::vector<const RlSample*> all;
  for (const auto& s : samples)
    all.push_back(&s);
  const auto mb = make_rl_micro_batch(all, tokenizer.pad_id(), torch::kCPU);
  model->train();
  const auto logps =
      label_logps(model, mb.batch, TrainingSection{}).token_logps;  // with autograd, as training
  const auto diff = ((logps.detach().to(torch::kFloat32) - mb.old_logps) * mb.mask).abs();
  std::printf("engine vs trainer log-probs: max |diff| %.3g\n", diff.max().item<double>());
  EXPECT_LT(diff.max().item<double>(), 3e-5);
  EXPECT_EQ(mb.mask.sum().item<double>(), static_cast<double>(mb.response_tokens));
  const auto ratio = (logps.detach().to(torch::kFloat32) - mb.old_logps).exp();
  EXPECT_LT(((ratio - 1) * mb.mask).abs().max().item<double>(), 3e-5);
}

// PPO's per-token rewards and GAE against the definitions written out here: r_t = -β·k1_t,
// plus the response's reward on its last token; A_t = δ_t + γλ·A_{t+1}; returns = A + V.
TEST(Ppo, TargetsFoldTheKlPenaltyAndTheRewardIntoGae) {
  std::vector<RlSample> samples(2);
  samples[0].ids = {1, 5, 6, 7, 8};
  samples[0].prompt_length = 2;
  samples[0].old_logps = {-0.5, -1.25, -2.0};
  samples[0].values = {0.25, -0.5, 1.0};
  samples[0].reward = 3.0;
  samples[1].ids = {1, 2, 3, 9};
  samples[1].prompt_length = 3;
  samples[1].old_logps = {-0.75};
  samples[1].values = {0.5};
  samples[1].reward = -1.0;
  const std::vector<std::vector<double>> ref = {{-0.25, -1.5, -1.0}, {-2.0}};
  std::vector<torch::Tensor> reference;
  for (const auto& r : ref)
    reference.push_back(torch::tensor(r, torch::kFloat64));
  PpoTargetOptions options;
  options.kl_coef = 0.1;
  options.gae.gamma = 0.9;
  options.gae.lam = 0.8;
  const auto kl = ppo_targets(samples, reference, options);
  for (size_t i = 0; i < samples.size(); ++i) {
    const RlSample& s = samples[i];
    const auto L = static_cast<size_t>(s.response_length());
    double kl_sum = 0, next_value = 0, next_advantage = 0;
    std::vector<double> advantages(L);
    for (size_t t = L; t-- > 0;) {
      const double k1 = s.old_logps[t] - ref[i][t];
      kl_sum += k1;
      const double reward = -0.1 * k1 + (t + 1 == L ? s.reward : 0.0);
      const double delta = reward + 0.9 * next_value - s.values[t];
      next_advantage = delta + 0.9 * 0.8 * next_advantage;
      advantages[t] = next_advantage;
      next_value = s.values[t];
    }
    EXPECT_NEAR(kl[i], kl_sum, 1e-12);
    ASSERT_EQ(s.token_advantages.size(), L);
    for (size_t t = 0; t < L; ++t) {
      EXPECT_NEAR(s.token_advantages[t], advantages[t], 1e-12) << i << "," << t;
      EXPECT_NEAR(s.returns[t], advantages[t] + s.values[t], 1e-12) << i << "," << t;
    }
  }
  // k3 instead, and no penalty at all without a coefficient.
  options.k3 = true;
  const auto k3 = ppo_targets(samples, reference, options);
  EXPECT_NEAR(k3[1], losses::kl_k3(torch::tensor({-0.75}), torch::tensor({-2.0})).item<double>(),
              1e-6);
  options.kl_coef = 0;
  const auto none = ppo_targets(samples, {}, options);
  EXPECT_EQ(none[0], 0.0);
  EXPECT_NEAR(samples[1].token_advantages[0], -1.0 - 0.5, 1e-12);
}

// Whitening over one process's samples equals losses::masked_whiten over the padded batch.
TEST(Ppo, WhiteningMatchesMaskedWhiten) {
  std::vector<RlSample> samples(3);
  const std::vector<std::vector<double>> a = {{1.0, 2.0, 4.0}, {-3.0}, {0.5, 0.25}};
  auto padded = torch::zeros({3, 3}, torch::kFloat64);
  auto mask = torch::zeros({3, 3}, torch::kBool);
  for (size_t i = 0; i < a.size(); ++i) {
    samples[i].token_advantages = a[i];
    for (size_t t = 0; t < a[i].size(); ++t) {
      padded[static_cast<int64_t>(i)][static_cast<int64_t>(t)] = a[i][t];
      mask[static_cast<int64_t>(i)][static_cast<int64_t>(t)] = true;
    }
  }
  auto comm = single_process_communicator();
  whiten_advantages(samples, *comm);
  const auto want = losses::masked_whiten(padded, mask);
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t t = 0; t < a[i].size(); ++t)
      EXPECT_NEAR(samples[i].token_advantages[t],
                  want[static_cast<int64_t>(i)][static_cast<int64_t>(t)].item<double>(), 1e-12);
}

// The adaptive controller moves β by at most 20% per horizon, up while the KL exceeds the
// target and down while it stays below; with no target β stays put.
TEST(Ppo, AdaptiveKlController) {
  KlController fixed({.initial = 0.05, .target = 0, .horizon = 100});
  fixed.update(10.0, 50);
  EXPECT_EQ(fixed.value(), 0.05);
  KlController adaptive({.initial = 0.1, .target = 6.0, .horizon = 100});
  adaptive.update(12.0, 50);  // error clipped to 0.2
  EXPECT_NEAR(adaptive.value(), 0.1 * (1 + 0.2 * 0.5), 1e-15);
  const double before = adaptive.value();
  adaptive.update(5.4, 100);  // error -0.1
  EXPECT_NEAR(adaptive.value(), before * (1 - 0.1), 1e-15);
  adaptive.restore(0.3);
  EXPECT_EQ(adaptive.value(), 0.3);
}

// GRPO on the real model: the held-out greedy pass rate of "mention a dog" rises from 0.
// Measured (10 iterations of 16 prompts x 8, seeds 1-5, shared prefixes, AMD EPYC): held-out
// 0 -> 1.0 for every seed but seed 3 (0.97, the slowest); sampled pass rate first -> last
// iteration 0.07 -> 1.0, 0.03 -> 0.99, 0.008 -> 0.97, 0.03 -> 1.0, 0.016 -> 0.99. Seed 3 is the
// one run; the thresholds sit below it. At these sizes one flipped sample changes the whole
// run, and float rounding flips samples: after 8 iterations seed 3 had 0.82 sampled, then 0.69
// (held-out 0.59) once the decode attention took its softmax in base 2; after 10 it has 0.97.
// 10 leave room for that.
TEST(Rl, GrpoTeachesStories260KAConstraint) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("grpo");
  const auto run = run_flywheel(
      "train " + constraint_recipe() + " rl.iterations=10 seed=3 model.path=" + stories() +
      " output_dir=" + dir + "/run logging.eval_every_steps=0 checkpoint.every_steps=0");
  ASSERT_EQ(run.status, 0) << run.output;
  const auto lines = testing::read_metrics(dir + "/run/metrics.jsonl");
  double before = -1, after = -1, first_train = -1, last_train = -1;
  for (const auto& l : lines) {
    if (l.contains("eval/pass_rate")) (before < 0 ? before : after) = l["eval/pass_rate"];
    if (l.contains("pass_rate")) {
      if (first_train < 0) first_train = l["pass_rate"];
      last_train = l["pass_rate"];
    }
  }
  EXPECT_EQ(before, 0.0) << run.output;
  EXPECT_GE(after, 0.75) << run.output;
  EXPECT_GE(last_train - first_train, 0.25) << run.output;
  EXPECT_TRUE(fs::exists(dir + "/run/model/model.safetensors"));
  fs::remove_all(dir);
}

// PPO on the real model, its critic started from the policy with a fresh head: the held-out
// greedy pass rate of "mention a dog" rises from 0, and the critic learns to predict returns.
// Measured (8 iterations of 16 prompts x 8, seeds 1-5, with the fused CPU decode step): held-out
// 0 -> 1.0 for every seed; sampled pass rate first -> last iteration 0.07 -> 0.98, 0.03 -> 1.0,
// 0.008 -> 0.88 (seed 3, the slowest), 0.03 -> 1.0, 0.016 -> 0.97; explained variance at the
// last iteration 0.43 (seed 3) to 0.80. Seed 3's critic catches up late (0.07 after 6
// iterations, 0.43 after 8), hence 8. The thresholds sit below the slowest seed.
TEST(Rl, PpoTeachesStories260KAConstraint) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("ppo");
  const auto run = run_flywheel("train " + constraint_recipe() +
                                " trainer=ppo rl.iterations=8 seed=3 model.path=" + stories() +
                                " output_dir=" + dir +
                                "/run logging.eval_every_steps=0 checkpoint.every_steps=0");
  ASSERT_EQ(run.status, 0) << run.output;
  double before = -1, after = -1, first_train = -1, last_train = -1, explained = -1;
  for (const auto& l : testing::read_metrics(dir + "/run/metrics.jsonl")) {
    if (l.contains("eval/pass_rate")) (before < 0 ? before : after) = l["eval/pass_rate"];
    if (l.contains("pass_rate")) {
      if (first_train < 0) first_train = l["pass_rate"];
      last_train = l["pass_rate"];
      explained = l["explained_variance"];
      for (const char* key : {"value_loss", "value_clipfrac", "kl_coef", "kl_sequence", "values_s"})
        EXPECT_TRUE(l.contains(key)) << key;
    }
  }
  EXPECT_EQ(before, 0.0) << run.output;
  EXPECT_GE(after, 0.75) << run.output;
  EXPECT_GE(last_train - first_train, 0.5) << run.output;
  EXPECT_GT(explained, 0.2) << run.output;
  EXPECT_TRUE(fs::exists(dir + "/run/model/model.safetensors"));
  const auto critic = load_model_config(dir + "/run/value_model/config.json");
  EXPECT_TRUE(critic.is_sequence_classification());
  EXPECT_NO_THROW(load_recipe(dir + "/run/config.yaml"));  // the resolved recipe loads again
  fs::remove_all(dir);
}

// 4 iterations straight, then the same run interrupted after its iteration-2 checkpoint and
// resumed: the same samples and updates, so every logged metric but the timings is equal.
void expect_resume_matches_uninterrupted(const std::string& name, const std::string& extra) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir(name);
  const std::string args = "train " + constraint_recipe() + " " + extra +
                           " rl.iterations=4 rl.prompts_per_iteration=4 model.path=" + stories() +
                           " logging.eval_every_steps=0 checkpoint.every_steps=2 output_dir=";
  ASSERT_EQ(run_flywheel(args + dir + "/straight").status, 0);
  // The interrupted run: its first two iterations, as a run of 4 stopped there would leave them.
  const auto first = run_flywheel(args + dir + "/resumed rl.iterations=2");
  ASSERT_EQ(first.status, 0) << first.output;
  const auto resumed = run_flywheel(args + dir + "/resumed --resume");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from"), std::string::npos) << resumed.output;
  const auto a = testing::read_metrics(dir + "/straight/metrics.jsonl");
  const auto b = testing::read_metrics(dir + "/resumed/metrics.jsonl");
  const auto training = [](const std::vector<nlohmann::json>& lines) {
    std::vector<nlohmann::json> out;
    for (auto l : lines) {
      if (!l.contains("pass_rate")) continue;
      for (const char* key : {"rollout_s", "reward_s", "reference_s", "values_s", "train_s",
                              "gen_tokens_per_sec", "elapsed_s"})
        l.erase(key);
      out.push_back(l);
    }
    return out;
  };
  const auto ta = training(a), tb = training(b);
  ASSERT_EQ(ta.size(), 4u);
  ASSERT_EQ(tb.size(), 4u);
  for (size_t i = 0; i < 4; ++i)
    EXPECT_EQ(ta[i], tb[i]) << "iteration " << i + 1;
  fs::remove_all(dir);
}

TEST(Rl, GrpoResumeMatchesUninterruptedRun) {
  expect_resume_matches_uninterrupted("grpo-resume", "");
}

// PPO resumes its critic, the critic's optimizer and the adapted KL coefficient too (the
// target sits far below the measured KL, so β grows every iteration and a resumed run that
// restarted it would log another kl_coef).
TEST(Rl, PpoResumeMatchesUninterruptedRun) {
  expect_resume_matches_uninterrupted("ppo-resume",
                                      "trainer=ppo rl.target_kl=0.01 rl.kl_horizon=100");
}

TEST(Rl, RlooRuns) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("rloo");
  const auto run = run_flywheel("train " + constraint_recipe() +
                                " trainer=rloo rl.iterations=2 rl.beta=0 model.path=" + stories() +
                                " output_dir=" + dir + "/run logging.eval_every_steps=0");
  ASSERT_EQ(run.status, 0) << run.output;
  std::ifstream config(dir + "/run/config.yaml");
  const std::string text((std::istreambuf_iterator<char>(config)), {});
  EXPECT_NE(text.find("advantage: rloo"), std::string::npos) << text;
  EXPECT_NO_THROW(load_recipe(dir + "/run/config.yaml"));
  EXPECT_EQ(testing::read_metrics(dir + "/run/metrics.jsonl").size(), 4u);  // 2 evals, 2 steps
  fs::remove_all(dir);
}

// Online DPO: best and worst of each group as a pair, the reference either the initial policy
// or the iteration's sampling policy; the held-out pass rate rises as with GRPO.
// Measured (10 iterations, DPO beta 0.1, seeds 1, 3, 5, both references): held-out 0 -> 1.0 in
// all six runs on an Intel Xeon; on an AMD EPYC with the fused CPU training kernels in five of
// six: seed 5 with the initial reference reached a sampled pass rate of 1.0 at iteration 4 and
// fell back to 0 from iteration 6 (greedy decoding gives nearly one continuation for every
// prompt here, so the held-out rate moves all at once). The test's seed 3 reaches 1.0 with
// both references; the threshold sits well below.
TEST(Rl, OnlineDpoTeachesTheConstraint) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("online-dpo");
  for (const char* reference : {"initial", "iteration"}) {
    const std::string out = dir + "/" + reference;
    const auto run =
        run_flywheel("train " + constraint_recipe() +
                     " trainer=online_dpo loss.type=dpo loss.beta=0.1 rl.reference=" + reference +
                     " rl.iterations=10 seed=3 model.path=" + stories() + " output_dir=" + out +
                     " logging.eval_every_steps=0 checkpoint.every_steps=0");
    ASSERT_EQ(run.status, 0) << run.output;
    double before = -1, after = -1, pairs = 0;
    for (const auto& l : testing::read_metrics(out + "/metrics.jsonl")) {
      if (l.contains("eval/pass_rate")) (before < 0 ? before : after) = l["eval/pass_rate"];
      if (l.contains("pairs")) pairs += l["pairs"].get<double>();
    }
    EXPECT_GT(pairs, 0) << reference;
    EXPECT_GE(after - before, 0.75) << reference << "\n" << run.output;
  }
  fs::remove_all(dir);
}

// GRPO against a neural reward model (stories260K with a fresh score head, saved as Hugging
// Face writes a LlamaForSequenceClassification) on rows that name no verifier: the rewards are
// the model's scores, and training raises them.
// Measured (mean reward, first -> sixth iteration, seeds 1-5): 12.34 -> 13.80, 10.56 -> 13.34,
// 10.91 -> 12.52, 10.76 -> 11.83, 11.20 -> 14.04; the threshold sits below the smallest rise.
TEST(Rl, GrpoAgainstARewardModelRaisesItsScore) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("grpo-rm");
  auto rm = load_reward_model(stories(), torch::kFloat32, torch::kCPU, 0.5, 11);
  save_pretrained(dir + "/rm", *rm, rm->config());
  fs::copy_file(stories() + "/tokenizer.model", dir + "/rm/tokenizer.model");
  {
    std::ofstream out(dir + "/prompts.jsonl");
    for (const char* p : {"Once upon a time", "One day, Tom", "Lily had a big", "The sun was",
                          "Sam and Mia went", "There was a little", "Ben liked to", "It was a"})
      out << nlohmann::json({{"prompt", p}}).dump() << "\n";
  }
  const auto run = run_flywheel(
      "train " + constraint_recipe() + " rl.iterations=6 seed=3" + " model.path=" + stories() +
      " rl.reward_model=" + dir + "/rm" + " data.train_file=" + dir +
      "/prompts.jsonl data.eval_file=" + " rl.prompts_per_iteration=8 output_dir=" + dir + "/run" +
      " logging.eval_every_steps=0 checkpoint.every_steps=0");
  ASSERT_EQ(run.status, 0) << run.output;
  std::vector<double> rewards;
  for (const auto& l : testing::read_metrics(dir + "/run/metrics.jsonl"))
    if (l.contains("reward")) rewards.push_back(l["reward"]);
  ASSERT_EQ(rewards.size(), 6u);
  EXPECT_GT(rewards.back() - rewards.front(), 0.5) << run.output;
  fs::remove_all(dir);
}

// The annotator of scripts/make-athene-rankings.sh: cheerful words minus sad ones.
double happiness(const std::string& text) {
  static const std::regex good(
      "happy|happily|smiled?|smiles|smiling|love[ds]?|loving|fun|nice|kind|laugh(ed|s)?|"
      "friends?|thank(s|ed)?|good|great|glad|joy|excited|proud");
  static const std::regex bad(
      "sad|sadly|cr(y|ied|ies|ying)|angry|mad|scared|afraid|hurt|bad|upset|mean|lonely");
  static const std::regex word("[a-z]+");
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  double score = 0;
  for (std::sregex_iterator it(lower.begin(), lower.end(), word), end; it != end; ++it) {
    const std::string w = it->str();
    if (std::regex_match(w, good)) score += 1;
    if (std::regex_match(w, bad)) score -= 1;
  }
  return score;
}

// The annotator's mean score of 4 sampled stories for each held-out Athene prompt.
double mean_happiness(const std::string& model, const std::string& dir) {
  const auto out = dir + "/stories.jsonl";
  const auto run = run_flywheel("generate --model " + model +
                                " --prompts recipes/athene/data/prompts_eval.jsonl --out " + out +
                                " --n 4 --temperature 1.0 --max-new-tokens 48 --seed 11");
  EXPECT_EQ(run.status, 0) << run.output;
  double sum = 0, count = 0;
  for (const auto& line : testing::read_metrics(out)) {
    for (const auto& o : line["outputs"]) {
      sum += happiness(o["text"].get<std::string>());
      ++count;
    }
  }
  return sum / std::max(count, 1.0);
}

// Athene-style: a reward model trained by `flywheel train` on seven-wise rankings (Plackett-Luce)
// of the model's own stories, then PPO against it, its critic started from the same model. The
// held-out reward rises, and so does the score of the annotator behind the rankings (the policy
// learned the preference, not a quirk of the reward model).
// Measured (seeds 1-3; each trains its own reward model): held-out greedy reward 0.87 -> 3.94,
// 1.12 -> 3.59, 1.09 -> 4.04 after 6 iterations; the annotator's mean score of sampled stories
// 0.45 before -> 4.99, 5.31, 5.45. The thresholds sit well below.
TEST(Rl, AthenePpoAgainstAPlackettLuceRewardModel) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("athene");
  const auto rm = run_flywheel("train recipes/athene/reward_model.yaml model.path=" + stories() +
                               " output_dir=" + dir + "/rm");
  ASSERT_EQ(rm.status, 0) << rm.output;
  // Plackett-Luce over seven responses: a fresh head's near-equal scores cost log 7! (= 8.525;
  // measured 8.522), and training lowers the held-out loss (measured 6.04).
  std::vector<double> rm_loss;
  for (const auto& l : testing::read_metrics(dir + "/rm/metrics.jsonl"))
    if (l.contains("eval/loss")) rm_loss.push_back(l["eval/loss"]);
  ASSERT_EQ(rm_loss.size(), 2u);
  EXPECT_NEAR(rm_loss[0], std::lgamma(8.0), 0.05);
  EXPECT_LT(rm_loss[1], rm_loss[0] - 1.0);
  const auto ppo = run_flywheel(
      "train recipes/athene/ppo_rm.yaml rl.iterations=6 model.path=" + stories() +
      " rl.reward_model=" + dir + "/rm/model rl.value_model=" + dir +
      "/rm/model output_dir=" + dir + "/ppo logging.eval_every_steps=0 checkpoint.every_steps=0");
  ASSERT_EQ(ppo.status, 0) << ppo.output;
  std::vector<double> held_out;
  for (const auto& l : testing::read_metrics(dir + "/ppo/metrics.jsonl"))
    if (l.contains("eval/reward")) held_out.push_back(l["eval/reward"]);
  ASSERT_EQ(held_out.size(), 2u);
  EXPECT_GT(held_out[1] - held_out[0], 1.5) << ppo.output;
  const double before = mean_happiness(stories(), dir);
  const double after = mean_happiness(dir + "/ppo/model", dir);
  EXPECT_GT(after - before, 2.0) << before << " -> " << after;
  fs::remove_all(dir);
}

TEST(Rl, BadRecipesAndPromptsAreClearErrors) {
  FLYWHEEL_REQUIRE_PATH(stories());
  const auto dir = testing::make_temp_dir("rl-errors");
  const std::string base =
      "train " + constraint_recipe() + " model.path=" + stories() + " output_dir=" + dir + "/run ";
  auto zero3 = run_flywheel(base + "distributed.zero_stage=3");
  EXPECT_EQ(zero3.status, 2) << zero3.output;
  EXPECT_NE(zero3.output.find("zero_stage"), std::string::npos) << zero3.output;
  auto advantage = run_flywheel(base + "trainer=rloo rl.advantage=standard");
  EXPECT_EQ(advantage.status, 2) << advantage.output;
  auto reference = run_flywheel(base + "rl.reference=initial");  // online_dpo only
  EXPECT_EQ(reference.status, 2) << reference.output;
  auto gae = run_flywheel(base + "rl.lam=0.9");  // ppo only
  EXPECT_EQ(gae.status, 2) << gae.output;
  EXPECT_NE(gae.output.find("ppo only"), std::string::npos) << gae.output;
  auto ppo_advantage = run_flywheel(base + "trainer=ppo rl.advantage=standard");
  EXPECT_EQ(ppo_advantage.status, 2) << ppo_advantage.output;
  auto horizon = run_flywheel(base + "trainer=ppo rl.target_kl=1 rl.kl_horizon=10");
  EXPECT_EQ(horizon.status, 2) << horizon.output;
  EXPECT_NE(horizon.output.find("kl_horizon"), std::string::npos) << horizon.output;
  auto critic = run_flywheel(base + "trainer=ppo rl.value_model=" + dir + "/nowhere");
  EXPECT_EQ(critic.status, 2) << critic.output;
  EXPECT_NE(critic.output.find("value_model"), std::string::npos) << critic.output;
  {
    std::ofstream out(dir + "/bad.jsonl");
    out << R"({"prompt": "Once upon a time", "dataset": "ifeval"})"
        << "\n"
        << R"({"prompt": "Tom", "dataset": "nosuch"})"
        << "\n";
  }
  auto verifier = run_flywheel(base + "data.train_file=" + dir + "/bad.jsonl");
  EXPECT_EQ(verifier.status, 2) << verifier.output;
  EXPECT_NE(verifier.output.find("bad.jsonl:2"), std::string::npos) << verifier.output;
  EXPECT_NE(verifier.output.find("nosuch"), std::string::npos) << verifier.output;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace flywheel
