#include "trainer/rl/rl_loop.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>

#include "losses/grpo.h"
#include "losses/ppo.h"
#include "losses/preference.h"
#include "rollout/engine.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/core/metrics_log.h"
#include "trainer/model/device.h"
#include "trainer/model/model_config.h"
#include "trainer/optim/lr_schedule.h"
#include "trainer/optim/optimizer.h"
#include "trainer/rl/judged_samples.h"
#include "trainer/rl/kl_controller.h"
#include "trainer/rl/ppo_targets.h"
#include "trainer/rl/prompts.h"
#include "trainer/rl/rl_batch.h"
#include "trainer/rl/value_model.h"
#include "trainer/train/checkpointer.h"
#include "trainer/train/model_builder.h"
#include "trainer/train/objective.h"
#include "trainer/train/schedule.h"
#include "trainer/train/step_metrics.h"
#include "trainer/train/train_loop.h"
#include "verifiers/reward_model/reward_scorer.h"

namespace flywheel {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Streams of the run's randomness, apart from the engine's per-request ones.
constexpr uint64_t kPromptOrderStream = 1ULL << 62;
constexpr uint64_t kSampleStream = 2ULL << 62;
constexpr uint64_t kMinibatchStream = 3ULL << 62;

// 0..count-1 in the Fisher–Yates order std::mt19937_64 seeded with `seed` gives: the same on
// every platform and rank.
std::vector<int64_t> shuffled(int64_t count, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 gen(seed);
  for (int64_t i = count - 1; i > 0; --i) {
    std::uniform_int_distribution<int64_t> pick(0, i);
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(pick(gen))]);
  }
  return order;
}

// The iteration's prompts: positions [it·P, (it+1)·P) of the file read over and over, each pass
// in its own shuffled order.
std::vector<int64_t> iteration_prompts(int64_t it, int64_t per_iteration, int64_t count,
                                       uint64_t seed) {
  std::vector<int64_t> out;
  std::vector<int64_t> order;
  int64_t pass = -1;
  for (int64_t k = 0; k < per_iteration; ++k) {
    const int64_t position = it * per_iteration + k;
    if (position / count != pass) {
      pass = position / count;
      order = shuffled(count, request_seed(seed, kPromptOrderStream, static_cast<uint64_t>(pass)));
    }
    out.push_back(order[static_cast<size_t>(position % count)]);
  }
  return out;
}

class RlRun {
 public:
  RlRun(const Recipe& recipe, Communicator& comm)
      : recipe_(recipe),
        comm_(comm),
        tokenizer_(Tokenizer::from_dir(recipe.model.tokenizer)),
        policy_(build_causal_lm(recipe)),
        kl_coef_({.initial = recipe.rl.beta,
                  .target = recipe.rl.target_kl,
                  .horizon = recipe.rl.kl_horizon}) {
    const auto& rl = recipe.rl;
    ppo_ = recipe.trainer == "ppo";
    if (ppo_) {
      ppo_options_.gamma = rl.gamma;
      ppo_options_.lam = rl.lam;
      ppo_options_.cliprange = rl.clip;
      ppo_options_.cliprange_value = rl.value_clip;
      ppo_options_.validate();
      critic_ = std::make_unique<ValueModel>(recipe, policy_, comm);
    } else {
      grpo_.group_size = rl.group_size;
      grpo_.advantage = losses::parse_grpo_advantage(rl.advantage);
      grpo_.clip = rl.clip;
      grpo_.beta = rl.beta;
      grpo_.aggregation = losses::parse_loss_aggregation(rl.loss_aggregation);
    }
    DataStats stats;
    const bool with_rm = !rl.reward_model.empty();
    prompts_ = load_rl_prompts(recipe.data.train_file, tokenizer_, recipe.data.options, rl.verifier,
                               &stats, with_rm);
    notes_.push_back(recipe.data.train_file + ": " + stats.summary());
    if (!recipe.data.eval_file.empty()) {
      DataStats eval_stats;
      eval_prompts_ = load_rl_prompts(recipe.data.eval_file, tokenizer_, recipe.data.options,
                                      rl.verifier, &eval_stats, with_rm);
      notes_.push_back(recipe.data.eval_file + ": " + eval_stats.summary());
    }
    online_dpo_ = recipe.trainer == "online_dpo";
    if (online_dpo_) preference_ = preference_options(recipe);
    const bool simpo = online_dpo_ && preference_.type == losses::PreferenceLossType::kSimpo;
    const bool needs_reference = online_dpo_ ? !simpo && rl.reference == "initial" : rl.beta > 0;
    if (needs_reference) {
      // The initial policy, frozen: loaded again rather than copied, so a resumed run gets the
      // same reference without storing it.
      reference_ = build_causal_lm(recipe);
      reference_->eval();
      for (auto& p : reference_->parameters())
        p.requires_grad_(false);
    }
    device_ = policy_->parameters().front().device();
    if (with_rm) {
      const auto config =
          load_model_config((std::filesystem::path(rl.reward_model) / "config.json").string());
      if (!config.is_sequence_classification()) {
        throw UserError(recipe.source + ": rl.reward_model " + rl.reward_model +
                        " is not a reward model (no *ForSequenceClassification architecture)");
      }
      rm_tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_dir(rl.reward_model));
      RewardScorerOptions scoring;
      scoring.batch_size = recipe.training.micro_batch_size;
      scoring.add_bos = recipe.data.options.add_bos;
      // Chat rows are scored as a user turn and an assistant turn in the data's template.
      if (!prompts_.empty() && prompts_.front().chat)
        scoring.chat_template = recipe.data.options.chat_template;
      rm_scorer_ = std::make_unique<RewardScorer>(
          load_reward_model(rl.reward_model, policy_->config().dtype, device_, 0.0, 0),
          *rm_tokenizer_, scoring);
    }
    // Slots for this rank's responses of one iteration, each as long as the longest prompt
    // plus max_new_tokens.
    int64_t longest = 0;
    for (const auto* set : {&prompts_, &eval_prompts_})
      for (const auto& p : *set)
        longest = std::max<int64_t>(longest, static_cast<int64_t>(p.ids.size()));
    const int64_t my_prompts =
        (rl.prompts_per_iteration + comm.world_size() - 1) / comm.world_size();
    auto engine = sized_engine_options(policy_, std::min<int64_t>(256, my_prompts * rl.group_size),
                                       longest + rl.max_new_tokens);
    if (rl.kv_cache_mb > 0) engine.kv_cache_mb = rl.kv_cache_mb;
    engine_ = std::make_unique<Engine>(policy_, engine, &tokenizer_);
  }

  RlSummary run(const RlOptions& options) {
    const bool resume = options.resume;
    const StepEvaluation arena = options.arena ? options.arena(policy_) : StepEvaluation{};
    const auto& rl = recipe_.rl;
    const auto& t = recipe_.training;
    start_run_dir(recipe_, comm_);
    const int64_t updates_per_iteration = rl.epochs * rl.minibatches;
    const LrSchedule schedule(t.lr_scheduler, t.learning_rate,
                              rl.iterations * updates_per_iteration, t.warmup_steps,
                              t.warmup_ratio);
    const double value_lr = rl.value_learning_rate > 0 ? rl.value_learning_rate : t.learning_rate;
    const LrSchedule value_schedule(t.lr_scheduler, value_lr, rl.iterations * updates_per_iteration,
                                    t.warmup_steps, t.warmup_ratio);
    Optimizer optimizer(*policy_, optimizer_options(recipe_), comm_);
    const SaveModelFn save_model = [&](const std::string& dir, const BeforeWrite& before) {
      save_pretrained(dir, *policy_, policy_->config(), kMaxShardBytes, before);
      copy_tokenizer_files(recipe_.model.tokenizer, dir, recipe_.data.options.chat_template);
    };
    Checkpointer checkpointer(recipe_.output_dir + "/checkpoints", recipe_.checkpoint.keep_last,
                              comm_);
    checkpointer.add_model("model", *policy_, save_model);
    checkpointer.add_optimizer("", optimizer);
    optimizer.broadcast_parameters();
    SaveModelFn save_critic;
    if (critic_) {
      auto& critic = critic_->module();
      save_critic = [&](const std::string& dir, const BeforeWrite& before) {
        save_pretrained(dir, *critic, critic->config(), kMaxShardBytes, before);
        copy_tokenizer_files(recipe_.model.tokenizer, dir, recipe_.data.options.chat_template);
      };
      checkpointer.add_model("value_model", *critic, save_critic);
      checkpointer.add_optimizer("value_optimizer", critic_->optimizer());
      critic_->optimizer().broadcast_parameters();
    }
    int64_t it = first_step(checkpointer, recipe_, resume, rl.iterations, &notes_);
    // An adapted β goes on from where it was; a fixed one is the recipe's.
    if (rl.target_kl > 0 && checkpointer.restored_state().contains("kl_coef"))
      kl_coef_.restore(checkpointer.restored_state()["kl_coef"].get<double>());
    const auto state = [&] {
      return nlohmann::json{
          {"iteration", it}, {"recipe", recipe_.source}, {"kl_coef", kl_coef_.value()}};
    };

    std::unique_ptr<MetricsLog> log;
    if (comm_.is_main()) {
      log = std::make_unique<MetricsLog>(recipe_.output_dir + "/metrics.jsonl",
                                         recipe_.logging.progress, rl.iterations,
                                         recipe_.logging.every_steps, it, /*append=*/it > 0);
      for (const auto& n : notes_)
        log->message(n);
      log->message(recipe_.trainer + ": " + std::to_string(prompts_.size()) + " prompts, " +
                   std::to_string(rl.iterations) + " iterations of " +
                   std::to_string(rl.prompts_per_iteration) + " prompts x " +
                   std::to_string(rl.group_size) + " responses, " +
                   std::to_string(updates_per_iteration) + " updates each" +
                   (comm_.world_size() > 1 ? " (" + std::to_string(comm_.world_size()) + " ranks)"
                                           : std::string()));
    }
    const Periodic eval_due(recipe_.logging.eval_every_steps, rl.iterations);
    const Periodic checkpoint_due(recipe_.checkpoint.every_steps, rl.iterations);
    // The arena and held-out evaluation run on rank 0, into one eval line.
    const Periodic arena_due(arena.every, rl.iterations);
    const auto evaluate = [&](int64_t at, bool held_out, bool rate) {
      rate = rate && arena;
      if (!log || (!held_out && !rate)) return Metrics{};
      Metrics m = held_out ? held_out_metrics() : Metrics{};
      if (rate) m.merge(arena.run(at));
      if (!m.empty()) log->eval(at, m);
      return m;
    };
    const auto keep_best = [&] {
      if (arena.best_step) checkpointer.keep(arena.best_step());
    };
    // The arena forgets the rounds after the iteration it starts from (a fresh run's old files
    // included), and its best checkpoint is kept before any save prunes.
    if (arena && arena.resume_at && log) arena.resume_at(it);
    keep_best();
    RlSummary summary;
    if (it == 0) summary.eval_before = evaluate(0, true, true);
    while (it < rl.iterations) {
      summary.last = iteration(it, optimizer, schedule, value_schedule);
      ++it;
      if (log) log->train_step(it, summary.last);
      const bool rated = arena && arena_due.due(it);
      if (eval_due.due(it) || rated) evaluate(it, eval_due.due(it), rated);
      // Every rated iteration is checkpointed when the best-rated one is to be kept.
      if (checkpoint_due.due(it) || (rated && arena.best_step)) {
        checkpointer.save(it, state());
        keep_best();
      }
    }
    summary.iterations = it;
    // The last evaluation before the last checkpoint: a round that fails leaves a run that
    // --resume finishes, not one it calls complete.
    summary.eval_after = evaluate(it, true, true);
    if (checkpointer.last_saved() != it) checkpointer.save(it, state());
    keep_best();
    save_on_main(nullptr, comm_, [&](const BeforeWrite& before) {
      const auto dir = (std::filesystem::path(recipe_.output_dir) / "model").string();
      publish_model(dir, save_model, before);
      if (log) log->message("saved " + dir);
      if (critic_) {
        const auto value_dir = (std::filesystem::path(recipe_.output_dir) / "value_model").string();
        publish_model(value_dir, save_critic, before);
        if (log) log->message("saved " + value_dir);
      }
    });
    comm_.barrier();
    return summary;
  }

 private:
  // Each response's reward: its verifier's score (0 without one), plus the reward model's
  // score times rl.reward_model_weight when there is a reward model.
  std::vector<double> rewards(const std::vector<const RlPrompt*>& prompts,
                              const std::vector<std::string>& texts,
                              const std::vector<Verdict>& verdicts) {
    std::vector<double> out;
    for (const auto& v : verdicts)
      out.push_back(v.score);
    if (rm_scorer_) {
      std::vector<std::pair<std::string, std::string>> pairs;
      for (size_t i = 0; i < prompts.size(); ++i)
        pairs.emplace_back(prompts[i]->text, texts[i]);
      const auto scores = rm_scorer_->score_texts(pairs);
      for (size_t i = 0; i < out.size(); ++i)
        out[i] += recipe_.rl.reward_model_weight * scores[i];
    }
    return out;
  }

  // Greedy answers to the held-out prompts, on rank 0: pass rate and mean reward.
  Metrics held_out_metrics() {
    if (eval_prompts_.empty() || !comm_.is_main()) return {};
    std::vector<Request> requests;
    for (size_t i = 0; i < eval_prompts_.size(); ++i) {
      Request r;
      r.prompt = eval_prompts_[i].ids;
      r.sampling.temperature = 0;
      r.max_new_tokens = recipe_.rl.max_new_tokens;
      r.stop_ids = tokenizer_.stop_ids();
      requests.push_back(std::move(r));
    }
    const auto outputs = engine_->generate(requests);
    std::vector<const RlPrompt*> prompts;
    std::vector<std::string> texts;
    for (size_t i = 0; i < eval_prompts_.size(); ++i) {
      prompts.push_back(&eval_prompts_[i]);
      texts.push_back(outputs[i][0].text);
    }
    const auto verdicts = judge(prompts, texts, recipe_.rl.success_reward);
    const auto scored = rewards(prompts, texts, verdicts);
    double correct = 0, judged = 0, reward = 0;
    for (size_t i = 0; i < verdicts.size(); ++i) {
      const Verdict& v = verdicts[i];
      reward += scored[i];
      if (v.correct) {
        ++judged;
        correct += *v.correct ? 1 : 0;
      }
    }
    return {{"pass_rate", judged > 0 ? correct / judged : 0.0},
            {"reward", reward / static_cast<double>(verdicts.size())},
            {"prompts", static_cast<double>(verdicts.size())}};
  }

  // This rank's samples of iteration `it`: group_size responses to each of its prompts, in
  // prompt order. `global` receives each sample's index in the iteration (k·G + j).
  std::vector<RlSample> rollout(int64_t it, uint64_t seed, std::vector<int64_t>* global,
                                double* rollout_s, double* reward_s, Metrics* sums) {
    const auto& rl = recipe_.rl;
    const auto order = iteration_prompts(it, rl.prompts_per_iteration,
                                         static_cast<int64_t>(prompts_.size()), recipe_.seed);
    std::vector<Request> requests;
    std::vector<int64_t> mine;
    for (int64_t k = 0; k < rl.prompts_per_iteration; ++k) {
      if (k % comm_.world_size() != comm_.rank()) continue;
      Request r;
      r.prompt = prompts_[static_cast<size_t>(order[static_cast<size_t>(k)])].ids;
      r.sampling.temperature = rl.temperature;
      r.sampling.top_p = rl.top_p;
      r.sampling.top_k = rl.top_k;
      r.max_new_tokens = rl.max_new_tokens;
      r.stop_ids = tokenizer_.stop_ids();
      r.n = rl.group_size;
      r.seed = seed;
      r.id = k;
      requests.push_back(std::move(r));
      mine.push_back(k);
    }
    const auto start = Clock::now();
    const auto outputs =
        requests.empty() ? std::vector<std::vector<Completion>>{} : engine_->generate(requests);
    *rollout_s = since(start);

    const auto scoring = Clock::now();
    std::vector<RlSample> samples;
    std::vector<const RlPrompt*> prompts;
    std::vector<std::string> texts;
    for (size_t q = 0; q < requests.size(); ++q) {
      const RlPrompt& prompt = prompts_[static_cast<size_t>(order[static_cast<size_t>(mine[q])])];
      for (int64_t j = 0; j < rl.group_size; ++j) {
        const Completion& c = outputs[q][static_cast<size_t>(j)];
        RlSample s;
        s.ids = prompt.ids;
        s.ids.insert(s.ids.end(), c.token_ids.begin(), c.token_ids.end());
        s.prompt_length = static_cast<int64_t>(prompt.ids.size());
        s.old_logps = c.model_logprobs;
        s.stopped = c.finish_reason == "stop";
        samples.push_back(std::move(s));
        prompts.push_back(&prompt);
        texts.push_back(c.text);
        global->push_back(mine[q] * rl.group_size + j);
      }
    }
    const auto verdicts = judge(prompts, texts, rl.success_reward);
    const auto scored = rewards(prompts, texts, verdicts);
    for (size_t i = 0; i < samples.size(); ++i) {
      RlSample& s = samples[i];
      s.reward = scored[i] + (s.stopped ? 0.0 : rl.no_eos_penalty);
      (*sums)["reward"] += s.reward;
      (*sums)["reward_sq"] += s.reward * s.reward;
      if (verdicts[i].correct) {
        (*sums)["judged"] += 1;
        (*sums)["correct"] += *verdicts[i].correct ? 1 : 0;
      }
      (*sums)["responses"] += 1;
      (*sums)["stopped"] += s.stopped ? 1 : 0;
      (*sums)["response_tokens"] += static_cast<double>(s.response_length());
      for (const double lp : s.old_logps)
        (*sums)["neg_logp"] -= lp;
    }
    *reward_s = since(scoring);
    // Advantages within each group (a rank holds whole groups); PPO's come from its critic.
    if (!samples.empty() && !ppo_) {
      std::vector<double> rewards;
      for (const auto& s : samples)
        rewards.push_back(s.reward);
      const auto a = losses::grpo_advantages(torch::tensor(rewards, torch::kFloat64), grpo_);
      for (size_t i = 0; i < samples.size(); ++i)
        samples[i].advantage = a[static_cast<int64_t>(i)].item<double>();
    }
    return samples;
  }

  // PPO's targets for this rank's samples: the critic's values, per-token rewards (the response's
  // reward on its last token, -kl_coef · KL on every token), GAE advantages whitened over every
  // rank's tokens, and the returns. Adds the KL and the explained-variance sums to `sums`.
  void ppo_advantages(std::vector<RlSample>& samples, const std::vector<torch::Tensor>& reference,
                      double kl_coef, Metrics* sums) {
    critic_->assign_values(samples, recipe_.training.micro_batch_size, tokenizer_.pad_id());
    PpoTargetOptions options;
    options.kl_coef = reference_ ? kl_coef : 0.0;
    options.k3 = recipe_.rl.kl_estimator == "k3";
    options.gae = ppo_options_;
    std::vector<torch::Tensor> response_reference;
    if (reference_) {
      for (size_t i = 0; i < samples.size(); ++i) {
        const RlSample& s = samples[i];
        response_reference.push_back(
            reference[i].narrow(0, s.prompt_length - 1, s.response_length()).to(torch::kFloat64));
      }
    }
    const auto kl = ppo_targets(samples, response_reference, options);
    for (size_t i = 0; i < samples.size(); ++i) {
      const RlSample& s = samples[i];
      (*sums)["kl"] += kl[i];
      (*sums)["kl_sequence"] += kl[i];
      for (size_t j = 0; j < s.returns.size(); ++j) {
        const double residual = s.returns[j] - s.values[j];
        (*sums)["returns"] += s.returns[j];
        (*sums)["returns_sq"] += s.returns[j] * s.returns[j];
        (*sums)["residual"] += residual;
        (*sums)["residual_sq"] += residual * residual;
      }
    }
    whiten_advantages(samples, comm_);
  }

  Metrics iteration(int64_t it, Optimizer& optimizer, const LrSchedule& schedule,
                    const LrSchedule& value_schedule) {
    const auto& rl = recipe_.rl;
    const uint64_t seed = request_seed(recipe_.seed, kSampleStream, static_cast<uint64_t>(it));
    Metrics sums;
    for (const char* k :
         {"reward",      "reward_sq",       "judged",        "correct",     "responses",
          "stopped",     "response_tokens", "neg_logp",      "kl",          "clipfrac",
          "loss_tokens", "pairs",           "pair_accuracy", "pair_margin", "kl_sequence",
          "value_loss",  "value_clipfrac",  "returns",       "returns_sq",  "residual",
          "residual_sq"})
      sums[k] = 0;
    std::vector<int64_t> global;
    double rollout_s = 0, reward_s = 0;
    auto samples = rollout(it, seed, &global, &rollout_s, &reward_s, &sums);

    // The reference's log-probs of every sample, a micro-batch at a time.
    const auto reference_start = Clock::now();
    const auto micro = static_cast<size_t>(recipe_.training.micro_batch_size);
    std::vector<torch::Tensor> reference(samples.size());
    if (reference_) {
      const c10::InferenceMode no_grad;
      for (size_t start = 0; start < samples.size(); start += micro) {
        std::vector<const RlSample*> part;
        for (size_t i = start; i < std::min(samples.size(), start + micro); ++i)
          part.push_back(&samples[i]);
        const auto mb = make_rl_micro_batch(part, tokenizer_.pad_id(), device_);
        const auto logps =
            label_logps(reference_, mb.batch, recipe_.training).token_logps.to(torch::kFloat32);
        // Each row without its padding: positions [0, length - 1) score the sample's tokens.
        for (size_t i = 0; i < part.size(); ++i) {
          const auto scored = static_cast<int64_t>(part[i]->ids.size()) - 1;
          reference[start + i] = logps[static_cast<int64_t>(i)].narrow(0, 0, scored).clone();
        }
      }
    }
    const double reference_s = since(reference_start);

    // PPO: the critic's values, per-token rewards with the KL penalty, GAE, whitening.
    const auto values_start = Clock::now();
    const double kl_coef = kl_coef_.value();
    if (ppo_) ppo_advantages(samples, reference, kl_coef, &sums);
    const double values_s = since(values_start);

    const auto train_start = Clock::now();
    double grad_norm = 0, lr = 0;
    const int64_t update = it * rl.epochs * rl.minibatches;
    policy_->train();
    const double loss_sum =
        online_dpo_ ? train_pairs(seed, samples, global, reference, optimizer, schedule, update,
                                  &sums, &grad_norm, &lr)
                    : train_samples(seed, samples, global, reference, optimizer, schedule,
                                    value_schedule, update, &sums, &grad_norm, &lr);
    const double train_s = since(train_start);

    // Every rank's sums, in one all-reduce.
    std::vector<std::string> keys;
    std::vector<double> values;
    for (const auto& [k, v] : sums) {
      keys.push_back(k);
      values.push_back(v);
    }
    keys.push_back("loss");
    values.push_back(loss_sum);
    const auto reduced = comm_.all_reduce_sum(values);
    Metrics g;
    for (size_t i = 0; i < keys.size(); ++i)
      g[keys[i]] = reduced[i];
    const double n = std::max(g["responses"], 1.0);
    const double mean = g["reward"] / n;
    const double tokens = std::max(g["response_tokens"], 1.0);
    const double loss_tokens = std::max(g["loss_tokens"], 1.0);
    const double updates = static_cast<double>(rl.epochs * rl.minibatches);
    const double rollout_max = max_over_ranks(rollout_s, comm_);
    Metrics out = {
        {"reward", mean},
        {"reward_std", std::sqrt(std::max(0.0, g["reward_sq"] / n - mean * mean))},
        {"pass_rate", g["judged"] > 0 ? g["correct"] / g["judged"] : 0.0},
        {"response_length", g["response_tokens"] / n},
        {"eos_rate", g["stopped"] / n},
        // Mean -log π of the sampled tokens: the policy's entropy, estimated by its samples.
        {"entropy", g["neg_logp"] / tokens},
        {"kl", g["kl"] / loss_tokens},
        {"clipfrac", g["clipfrac"] / loss_tokens},
        {"loss", g["loss"] / updates},
        {"lr", lr},
        {"grad_norm", grad_norm},
        {"rollout_s", rollout_max},
        {"reward_s", max_over_ranks(reward_s, comm_)},
        {"reference_s", max_over_ranks(reference_s, comm_)},
        {"train_s", max_over_ranks(train_s, comm_)},
        {"gen_tokens_per_sec", g["response_tokens"] / std::max(rollout_max, 1e-9)}};
    if (ppo_) {
      // KL of the sampling policy from the reference, per token and per response (what the
      // controller steers), and the coefficient this iteration's rewards used.
      out["kl"] = g["kl"] / tokens;
      out["kl_sequence"] = g["kl_sequence"] / n;
      out["kl_coef"] = kl_coef;
      out["value_loss"] = g["value_loss"] / updates;
      out["value_clipfrac"] = g["value_clipfrac"] / loss_tokens;
      // 1 - Var(returns - V_old) / Var(returns) over every response token.
      const auto variance = [&](const char* sum, const char* sum_sq) {
        const double mean = g[sum] / tokens;
        return g[sum_sq] / tokens - mean * mean;
      };
      const double var_returns = variance("returns", "returns_sq");
      out["explained_variance"] =
          var_returns > 0 ? 1.0 - variance("residual", "residual_sq") / var_returns : 0.0;
      out["values_s"] = max_over_ranks(values_s, comm_);
      kl_coef_.update(out["kl_sequence"], static_cast<int64_t>(g["responses"]));
    }
    if (online_dpo_) {
      // Pairs: groups whose best and worst responses differ in reward.
      const double pairs = std::max(g["pairs"], 1.0);
      out.erase("kl");
      out.erase("clipfrac");
      out["pairs"] = g["pairs"] / static_cast<double>(rl.epochs);
      out["pair_accuracy"] = g["pair_accuracy"] / pairs;
      out["pair_margin"] = g["pair_margin"] / pairs;
    }
    return out;
  }

  // PPO / GRPO / RLOO: rl.epochs passes of rl.minibatches optimizer steps over the whole
  // iteration's samples (every rank's), in an order that does not depend on the number of ranks:
  // each rank trains its own members of each minibatch. PPO's critic takes a step of its own on
  // each minibatch after the policy's. Returns the summed policy loss.
  double train_samples(uint64_t seed, const std::vector<RlSample>& samples,
                       const std::vector<int64_t>& global,
                       const std::vector<torch::Tensor>& reference, Optimizer& optimizer,
                       const LrSchedule& schedule, const LrSchedule& value_schedule, int64_t update,
                       Metrics* sums, double* grad_norm, double* lr) {
    const auto& rl = recipe_.rl;
    const auto micro = static_cast<size_t>(recipe_.training.micro_batch_size);
    const int64_t total = rl.prompts_per_iteration * rl.group_size;
    std::vector<int64_t> local_of(static_cast<size_t>(total), -1);
    for (size_t i = 0; i < global.size(); ++i)
      local_of[static_cast<size_t>(global[i])] = static_cast<int64_t>(i);
    double loss_sum = 0;
    for (int64_t epoch = 0; epoch < rl.epochs; ++epoch) {
      const auto order =
          shuffled(total, request_seed(seed, kMinibatchStream, static_cast<uint64_t>(epoch)));
      for (int64_t m = 0; m < rl.minibatches; ++m, ++update) {
        const int64_t begin = total * m / rl.minibatches, end = total * (m + 1) / rl.minibatches;
        std::vector<size_t> members;
        double tokens = 0;
        for (int64_t g = begin; g < end; ++g) {
          const int64_t local = local_of[static_cast<size_t>(order[static_cast<size_t>(g)])];
          if (local < 0) continue;
          members.push_back(static_cast<size_t>(local));
          tokens += static_cast<double>(samples[static_cast<size_t>(local)].response_length());
        }
        // The loss is normalized over the whole minibatch, every rank's share included.
        const auto counts =
            comm_.all_reduce_sum(std::vector<double>{tokens, static_cast<double>(members.size())});
        // PPO normalizes over tokens, like GRPO's token_mean.
        const bool token_mean = ppo_ || grpo_.aggregation == losses::LossAggregation::kTokenMean;
        const double normalizer = std::max(token_mean ? counts[0] : counts[1], 1.0);
        const auto chunks = (members.size() + micro - 1) / micro;
        const auto slots = std::max<size_t>(
            static_cast<size_t>(max_over_ranks(static_cast<double>(chunks), comm_)), 1);
        const auto micro_batch = [&](size_t c) {
          std::vector<const RlSample*> part;
          for (size_t i = c * micro; i < std::min(members.size(), (c + 1) * micro); ++i)
            part.push_back(&samples[members[i]]);
          return make_rl_micro_batch(part, tokenizer_.pad_id(), device_);
        };
        optimizer.accumulate(chunks, slots, [&](size_t c) {
          const auto mb = micro_batch(c);
          const auto logps =
              label_logps(policy_, mb.batch, recipe_.training).token_logps.to(torch::kFloat32);
          const double n = static_cast<double>(mb.response_tokens);
          const double share = token_mean ? n : static_cast<double>(mb.advantages.size(0));
          torch::Tensor loss, clipfrac;
          if (ppo_) {
            const auto out = losses::ppo_policy_loss(logps, mb.old_logps, mb.token_advantages,
                                                     mb.mask, ppo_options_);
            loss = out.loss;
            clipfrac = out.clipfrac;
          } else {
            torch::Tensor ref;
            if (reference_) {
              // Each sample's reference row, padded to this micro-batch's length.
              ref = torch::zeros_like(mb.old_logps);
              for (size_t i = c * micro, row = 0; i < std::min(members.size(), (c + 1) * micro);
                   ++i, ++row) {
                const auto& r = reference[members[i]];
                ref[static_cast<int64_t>(row)].narrow(0, 0, r.size(0)).copy_(r);
              }
            }
            const auto out =
                losses::grpo_loss(logps, mb.old_logps, ref, mb.advantages, mb.mask, grpo_);
            loss = out.loss;
            clipfrac = out.clipfrac;
            (*sums)["kl"] += out.kl.item<double>() * n;
          }
          loss = loss * (share / normalizer);
          loss.backward();
          loss_sum += loss.item<double>();
          (*sums)["clipfrac"] += clipfrac.item<double>() * n;
          (*sums)["loss_tokens"] += n;
        });
        *lr = schedule.at(update);
        *grad_norm = optimizer.step(recipe_.training.max_grad_norm, *lr);
        if (ppo_) {
          critic_->optimizer().accumulate(chunks, slots, [&](size_t c) {
            const auto mb = micro_batch(c);
            const auto out = losses::ppo_value_loss(critic_->values(mb), mb.old_values, mb.returns,
                                                    mb.mask, ppo_options_);
            const double n = static_cast<double>(mb.response_tokens);
            const auto loss = out.loss * (n / normalizer);
            loss.backward();
            (*sums)["value_loss"] += loss.item<double>();
            (*sums)["value_clipfrac"] += out.clipfrac.item<double>() * n;
          });
          critic_->optimizer().step(recipe_.training.max_grad_norm, value_schedule.at(update));
        }
      }
    }
    return loss_sum;
  }

  // Online DPO ("RLHF Workflow"): each group's best and worst responses by reward form a pair
  // (a group whose rewards all tie gives none), trained with the loss section's DPO variant for
  // rl.epochs passes of rl.minibatches steps. The reference log-probs are the frozen initial
  // policy's, or with rl.reference "iteration" the sampling policy's own (the engine's). Pairs
  // are ordered by their prompt's position in the iteration, so minibatches are the same sets
  // whatever the number of ranks. Returns the summed loss.
  double train_pairs(uint64_t seed, const std::vector<RlSample>& samples,
                     const std::vector<int64_t>& global,
                     const std::vector<torch::Tensor>& reference, Optimizer& optimizer,
                     const LrSchedule& schedule, int64_t update, Metrics* sums, double* grad_norm,
                     double* lr) {
    const auto& rl = recipe_.rl;
    const auto G = static_cast<size_t>(rl.group_size);
    // position of the prompt in the iteration -> (chosen, rejected) local sample indices
    std::map<int64_t, std::pair<size_t, size_t>> pairs;
    for (size_t start = 0; start + G <= samples.size(); start += G) {
      size_t best = start, worst = start;
      for (size_t i = start; i < start + G; ++i) {
        if (samples[i].reward > samples[best].reward) best = i;
        if (samples[i].reward < samples[worst].reward) worst = i;
      }
      if (samples[best].reward > samples[worst].reward)
        pairs[global[start] / rl.group_size] = {best, worst};
    }
    // Σ log-probs of a sample's response under the reference.
    const auto reference_sum = [&](size_t i) {
      const RlSample& s = samples[i];
      if (reference_) {
        return reference[i]
            .narrow(0, s.prompt_length - 1, s.response_length())
            .sum()
            .item<double>();
      }
      double sum = 0;
      for (const double lp : s.old_logps)
        sum += lp;
      return sum;
    };
    const auto micro =
        static_cast<size_t>(std::max<int64_t>(1, recipe_.training.micro_batch_size / 2));
    double loss_sum = 0;
    for (int64_t epoch = 0; epoch < rl.epochs; ++epoch) {
      const auto order =
          shuffled(rl.prompts_per_iteration,
                   request_seed(seed, kMinibatchStream, static_cast<uint64_t>(epoch)));
      for (int64_t m = 0; m < rl.minibatches; ++m, ++update) {
        const int64_t begin = rl.prompts_per_iteration * m / rl.minibatches;
        const int64_t end = rl.prompts_per_iteration * (m + 1) / rl.minibatches;
        std::vector<std::pair<size_t, size_t>> members;
        for (int64_t k = begin; k < end; ++k) {
          const auto it = pairs.find(order[static_cast<size_t>(k)]);
          if (it != pairs.end()) members.push_back(it->second);
        }
        const double normalizer =
            comm_.all_reduce_sum(std::vector<double>{static_cast<double>(members.size())})[0];
        const auto chunks = (members.size() + micro - 1) / micro;
        const auto slots = static_cast<size_t>(max_over_ranks(static_cast<double>(chunks), comm_));
        optimizer.accumulate(chunks, std::max<size_t>(slots, 1), [&](size_t c) {
          std::vector<const RlSample*> part;
          std::vector<double> ref_chosen, ref_rejected, len_chosen, len_rejected;
          for (size_t i = c * micro; i < std::min(members.size(), (c + 1) * micro); ++i) {
            const auto [chosen, rejected] = members[i];
            part.push_back(&samples[chosen]);
            part.push_back(&samples[rejected]);
            ref_chosen.push_back(reference_sum(chosen));
            ref_rejected.push_back(reference_sum(rejected));
            len_chosen.push_back(static_cast<double>(samples[chosen].response_length()));
            len_rejected.push_back(static_cast<double>(samples[rejected].response_length()));
          }
          const auto mb = make_rl_micro_batch(part, tokenizer_.pad_id(), device_);
          const auto logps = label_logps(policy_, mb.batch, recipe_.training).token_logps;
          const auto sums_of = (logps.to(torch::kFloat32) * mb.mask).sum(1);  // [2n]
          const auto n = static_cast<int64_t>(ref_chosen.size());
          const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device_);
          losses::PreferenceInputs in;
          in.policy_chosen_logps = sums_of.slice(0, 0, 2 * n, 2);
          in.policy_rejected_logps = sums_of.slice(0, 1, 2 * n, 2);
          in.reference_chosen_logps = torch::tensor(ref_chosen, options);
          in.reference_rejected_logps = torch::tensor(ref_rejected, options);
          in.chosen_lengths = torch::tensor(len_chosen, options);
          in.rejected_lengths = torch::tensor(len_rejected, options);
          const auto out = losses::preference_loss(in, preference_);
          const auto loss = out.loss * (static_cast<double>(n) / std::max(normalizer, 1.0));
          loss.backward();
          loss_sum += loss.item<double>();
          (*sums)["pairs"] += static_cast<double>(n);
          (*sums)["pair_accuracy"] += out.accuracy.item<double>() * static_cast<double>(n);
          (*sums)["pair_margin"] += out.margin.item<double>() * static_cast<double>(n);
        });
        *lr = schedule.at(update);
        *grad_norm = optimizer.step(recipe_.training.max_grad_norm, *lr);
      }
    }
    return loss_sum;
  }

  const Recipe& recipe_;
  Communicator& comm_;
  Tokenizer tokenizer_;
  LlamaForCausalLM policy_;
  LlamaForCausalLM reference_{nullptr};
  KlController kl_coef_;  // ppo: β, fixed or adaptive
  bool ppo_ = false;
  losses::PpoOptions ppo_options_;
  std::unique_ptr<ValueModel> critic_;
  losses::GrpoOptions grpo_;
  bool online_dpo_ = false;
  losses::PreferenceOptions preference_;
  std::vector<RlPrompt> prompts_, eval_prompts_;
  std::vector<std::string> notes_;
  torch::Device device_ = torch::kCPU;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Tokenizer> rm_tokenizer_;
  std::unique_ptr<RewardScorer> rm_scorer_;
};

}  // namespace

RlSummary run_rl(const Recipe& recipe, const RlOptions& options) {
  auto single = single_process_communicator();
  Communicator& comm = options.comm != nullptr ? *options.comm : *single;
  RlRun run(recipe, comm);
  return run.run(options);
}

}  // namespace flywheel
