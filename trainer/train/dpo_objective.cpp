// DPO and its variants (dpo, dpo_norm, ipo, simpo) on preference pairs.
//
// The reference log-probs are computed once, before the first update, with the initial policy
// (which is the reference) and cached in RUN/reference_logps.safetensors — open-instruct's
// dpo_tune_cache approach — so no reference model is held during training. SimPO needs none.
// The file records fingerprints of what the values depend on: the model (its files, dtype and
// device) and the token arrays of the train and eval pairs (which capture the data files, the
// tokenizer, the template and max_length). A resumed run reuses the cache only when all match,
// and otherwise says which changed and computes it again.
// Under data parallelism each rank scores every world_size-th pair and a sum over ranks
// assembles the whole cache on every rank; rank 0 writes the file.
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "losses/logprobs.h"
#include "losses/preference.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/checkpoint/safetensors.h"
#include "trainer/core/error.h"
#include "trainer/core/fingerprint.h"
#include "trainer/text/tokenizer.h"
#include "trainer/train/model_builder.h"
#include "trainer/train/objective.h"

namespace flywheel {
namespace {

namespace fs = std::filesystem;

std::string tokens_fingerprint(const TokenStore& data) {
  Fingerprint f;
  f.add(static_cast<uint64_t>(data.examples()));
  for (int64_t e = 0; e < data.examples(); ++e) {
    for (int64_t k = 0; k < data.sequences_of(e); ++k) {
      const auto s = data.sequence(e, k);
      f.add(static_cast<uint64_t>(s.size()));
      for (size_t i = 0; i < s.ids.size(); ++i)
        f.add(static_cast<uint64_t>(s.ids[i]) << 1 | s.loss_mask[i]);
    }
  }
  return f.hex();
}

// The initial policy: a checkpoint's files (config, weights), or a config with its seeded
// initialisation; in the dtype and on the device it runs.
std::string model_fingerprint(const Recipe& recipe) {
  Fingerprint f;
  const auto& m = recipe.model;
  if (!m.path.empty()) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(m.path)) {
      const auto name = e.path().filename().string();
      if (name == "config.json" || name.find(".safetensors") != std::string::npos) {
        files.push_back(e.path().string());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files)
      f.add_file(file);
  } else {
    f.add_file(m.config).add(recipe.seed).add(std::to_string(m.init_std));
  }
  return f.add(m.dtype).add(m.device).hex();
}

struct PairLogps {
  torch::Tensor chosen, rejected;                          // [B] summed log-probs
  torch::Tensor chosen_token_count, rejected_token_count;  // [B] scored tokens
};

class DpoObjective final : public Objective {
 public:
  DpoObjective(const Recipe& recipe, bool resume, Communicator& comm)
      : recipe_(recipe),
        comm_(comm),
        model_(build_causal_lm(recipe, shards_parameters(recipe, comm))),
        shards_(shard_parameters(recipe, *model_, comm)),
        tokenizer_(Tokenizer::from_dir(recipe.model.tokenizer)) {
    options_ = preference_options(recipe);

    train_ = load_recipe_data(recipe, ExampleKind::kPreference, recipe.data.train_file, tokenizer_,
                              comm);
    if (!recipe.data.eval_file.empty()) {
      eval_ = load_recipe_data(recipe, ExampleKind::kPreference, recipe.data.eval_file, tokenizer_,
                               comm);
    }
    if (options_.type != losses::PreferenceLossType::kSimpo) prepare_reference(resume);
  }

  int64_t size() const override { return train_.examples(); }

  std::vector<int64_t> lengths() const override {
    std::vector<int64_t> out;
    for (int64_t e = 0; e < train_.examples(); ++e)
      out.push_back(std::max(train_.sequence(e, 0).size(), train_.sequence(e, 1).size()));
    return out;
  }

  double units(const std::vector<int64_t>& examples) const override {
    return static_cast<double>(examples.size());
  }

  std::vector<std::string> metric_names() const override {
    return {"logps/chosen",   "logps/rejected",  "rewards/accuracies",
            "rewards/chosen", "rewards/margins", "rewards/rejected"};
  }

  MicroBatchResult forward(const std::vector<int64_t>& examples, double normalizer) override {
    int64_t tokens = 0;
    const auto lp = pair_logps(train_, examples, &tokens);
    auto out = losses::preference_loss(inputs(lp, train_ref_, examples), options_);
    const auto B = static_cast<double>(examples.size());
    MicroBatchResult r;
    r.loss = out.per_example_loss.sum() / normalizer;
    r.token_count = tokens;
    r.sums = {{"rewards/chosen", out.chosen_rewards.sum().item<double>()},
              {"rewards/rejected", out.rejected_rewards.sum().item<double>()},
              {"rewards/accuracies", out.accuracy.item<double>() * B},
              {"rewards/margins", out.margin.item<double>() * B},
              {"logps/chosen", lp.chosen.detach().sum().item<double>()},
              {"logps/rejected", lp.rejected.detach().sum().item<double>()}};
    return r;
  }

  std::map<std::string, double> evaluate() override {
    if (eval_.examples() == 0) return {};
    torch::NoGradGuard no_grad;
    model_->eval();
    std::map<std::string, double> sums;
    for (const auto& batch : chunks(eval_.examples())) {
      int64_t tokens = 0;
      const auto lp = pair_logps(eval_, batch, &tokens);
      auto out = losses::preference_loss(inputs(lp, eval_ref_, batch), options_);
      const auto B = static_cast<double>(batch.size());
      sums["loss"] += out.per_example_loss.sum().item<double>();
      sums["rewards/accuracies"] += out.accuracy.item<double>() * B;
      sums["rewards/margins"] += out.margin.item<double>() * B;
      // Preference accuracy of the policy itself (meaningful before training too, when the
      // implicit rewards are all zero): does it give the chosen answer more probability?
      sums["logps/accuracy"] += lp.chosen.gt(lp.rejected).sum().item<double>();
    }
    model_->train();
    for (auto& [k, v] : sums)
      v /= static_cast<double>(eval_.examples());
    return sums;
  }

  torch::nn::Module& model() override { return *model_; }
  LlamaForCausalLM* policy() override { return &model_; }
  ParameterShards* parameter_shards() override { return shards_.get(); }
  void save_model(const std::string& dir, const BeforeWrite& before) override {
    save_pretrained(dir, *model_, model_->config(), kMaxShardBytes, before);
  }

 private:
  // Summed log-probs of chosen and rejected for `examples`, in one forward over 2B rows.
  PairLogps pair_logps(const TokenStore& data, const std::vector<int64_t>& examples,
                       int64_t* tokens) {
    auto seqs = data.sequences(examples, 0);
    for (const auto& rejected : data.sequences(examples, 1))
      seqs.push_back(rejected);
    const auto device = model_->model->embed_tokens->weight.device();
    const auto batch = on_device(collate(seqs, tokenizer_.pad_id()), device);
    *tokens = batch.token_count;
    const auto lp = label_logps(model_, batch, recipe_.training);
    const auto B = static_cast<int64_t>(examples.size());
    return {lp.sum.narrow(0, 0, B), lp.sum.narrow(0, B, B), lp.count.narrow(0, 0, B),
            lp.count.narrow(0, B, B)};
  }

  losses::PreferenceInputs inputs(const PairLogps& lp, const PairLogps& ref,
                                  const std::vector<int64_t>& examples) const {
    losses::PreferenceInputs in;
    in.policy_chosen_logps = lp.chosen;
    in.policy_rejected_logps = lp.rejected;
    in.chosen_lengths = lp.chosen_token_count.to(lp.chosen.scalar_type());
    in.rejected_lengths = lp.rejected_token_count.to(lp.chosen.scalar_type());
    if (ref.chosen.defined()) {
      auto idx = torch::tensor(examples, torch::kInt64);
      in.reference_chosen_logps = ref.chosen.index_select(0, idx).to(lp.chosen.options());
      in.reference_rejected_logps = ref.rejected.index_select(0, idx).to(lp.chosen.options());
    }
    return in;
  }

  std::vector<std::vector<int64_t>> chunks(int64_t n) const {
    std::vector<std::vector<int64_t>> out;
    const auto B = recipe_.training.micro_batch_size;
    for (int64_t i = 0; i < n; i += B) {
      out.emplace_back();
      for (int64_t j = i; j < std::min(n, i + B); ++j)
        out.back().push_back(j);
    }
    return out;
  }

  PairLogps reference_for(const TokenStore& data) {
    torch::NoGradGuard no_grad;
    const auto n = data.examples();
    auto chosen = torch::zeros({n}, torch::kFloat64);
    auto rejected = torch::zeros({n}, torch::kFloat64);
    std::vector<int64_t> mine;  // this rank's share: every world_size-th pair
    for (int64_t i = comm_.rank(); i < n; i += comm_.world_size())
      mine.push_back(i);
    const auto B = static_cast<size_t>(recipe_.training.micro_batch_size);
    // Under ZeRO-3 the forwards gather parameters collectively, so every rank runs as many as
    // rank 0 (which has the largest share), a rank short of pairs a stand-in pass on pair 0.
    const auto W = static_cast<size_t>(comm_.world_size());
    const size_t most = (static_cast<size_t>(n) + W - 1) / W;
    for (size_t i = 0; i < (shards_ ? most : mine.size()); i += B) {
      if (i >= mine.size()) {
        int64_t tokens = 0;
        pair_logps(data, {0}, &tokens);
        continue;
      }
      const std::vector<int64_t> batch(
          mine.begin() + static_cast<std::ptrdiff_t>(i),
          mine.begin() + static_cast<std::ptrdiff_t>(std::min(mine.size(), i + B)));
      int64_t tokens = 0;
      const auto lp = pair_logps(data, batch, &tokens);
      const auto idx = torch::tensor(batch, torch::kInt64);
      chosen.index_copy_(0, idx, lp.chosen.to(torch::kCPU, torch::kFloat64));
      rejected.index_copy_(0, idx, lp.rejected.to(torch::kCPU, torch::kFloat64));
    }
    if (shards_) shards_->release_all();
    // The other ranks' entries are zero here, so a sum over ranks fills them in.
    return {comm_.all_reduce_sum_cpu(chosen), comm_.all_reduce_sum_cpu(rejected), {}, {}};
  }

  // What the cached values depend on, as the file's metadata: key -> fingerprint.
  std::map<std::string, std::string> reference_key() const {
    return {{"model", model_fingerprint(recipe_)},
            {"train pairs", tokens_fingerprint(train_)},
            {"eval pairs", tokens_fingerprint(eval_)}};
  }

  // Loads the cache when resuming and it matches; computes and saves it otherwise.
  void prepare_reference(bool resume) {
    const std::string path = recipe_.output_dir + "/reference_logps.safetensors";
    const auto key = reference_key();
    // Rank 0 decides whether the cache can be reused, so that every rank takes the same path.
    auto reuse = torch::zeros({1}, torch::kFloat64);
    if (comm_.is_main() && resume && fs::exists(path)) {
      SafetensorsFile f(path);
      std::string changed;
      for (const auto& [name, value] : key) {
        const auto it = f.metadata().find(name);
        if (it == f.metadata().end() || it->second != value) {
          changed += (changed.empty() ? "" : ", ") + name;
        }
      }
      if (changed.empty()) {
        reuse[0] = 1;
      } else {
        std::fprintf(stderr, "reference log-probs: %s was computed for other %s; recomputing\n",
                     path.c_str(), changed.c_str());
      }
    }
    if (comm_.all_reduce_sum_cpu(reuse).item<double>() > 0) {
      SafetensorsFile f(path);
      train_ref_ = {f.tensor("train.chosen").clone(), f.tensor("train.rejected").clone(), {}, {}};
      eval_ref_ = {f.tensor("eval.chosen").clone(), f.tensor("eval.rejected").clone(), {}, {}};
      if (comm_.is_main()) std::fprintf(stderr, "reference log-probs: loaded %s\n", path.c_str());
      return;
    }
    model_->eval();
    train_ref_ = reference_for(train_);
    eval_ref_ = reference_for(eval_);
    model_->train();
    if (!comm_.is_main()) return;
    fs::create_directories(recipe_.output_dir);
    auto metadata = key;
    metadata["format"] = "pt";
    write_safetensors(path,
                      {{"train.chosen", train_ref_.chosen},
                       {"train.rejected", train_ref_.rejected},
                       {"eval.chosen", eval_ref_.chosen},
                       {"eval.rejected", eval_ref_.rejected}},
                      metadata);
    std::fprintf(stderr, "reference log-probs: cached %zu train and %zu eval pairs in %s\n",
                 static_cast<size_t>(train_.examples()), static_cast<size_t>(eval_.examples()),
                 path.c_str());
  }

  const Recipe& recipe_;
  Communicator& comm_;
  LlamaForCausalLM model_;
  std::unique_ptr<ParameterShards> shards_;  // after the model it shards
  Tokenizer tokenizer_;
  losses::PreferenceOptions options_;
  TokenStore train_, eval_;         // chosen (sequence 0) and rejected (1) of every pair
  PairLogps train_ref_, eval_ref_;  // float64 on CPU; undefined for simpo
};

}  // namespace

std::unique_ptr<Objective> make_dpo_objective(const Recipe& recipe, bool resume,
                                              Communicator& comm) {
  return std::make_unique<DpoObjective>(recipe, resume, comm);
}

}  // namespace flywheel
