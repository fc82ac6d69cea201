// Reward models: Bradley–Terry on preference pairs, Plackett–Luce on K-wise rankings (the
// format is recognised from the training file: records with "ranking" are K-wise).
#include <torch/torch.h>

#include "losses/reward.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "trainer/model/reward_model.h"
#include "trainer/text/tokenizer.h"
#include "trainer/train/model_builder.h"
#include "trainer/train/objective.h"

namespace flywheel {
namespace {

bool is_ranking_file(const std::string& path) {
  JsonlReader reader(path);
  JsonlRecord record;
  return reader.next(&record) && record.value.is_object() && record.value.contains("ranking");
}

// Every example as K responses, best first (a preference pair is K = 2: chosen, rejected).
TokenStore load(const Recipe& recipe, const std::string& path, const Tokenizer& tokenizer,
                Communicator& comm) {
  const auto kind = is_ranking_file(path) ? ExampleKind::kRanking : ExampleKind::kPreference;
  return load_recipe_data(recipe, kind, path, tokenizer, comm);
}

LlamaForSequenceClassification build_reward_model(const Recipe& r) {
  const auto dtype = parse_dtype(r.model.dtype, "model.dtype");
  const auto device = parse_device(r.model.device, "model.device");
  if (!r.model.path.empty()) {
    auto model = load_reward_model(r.model.path, dtype, device, r.model.init_std, r.seed);
    model->model->activation_checkpointing = r.training.activation_checkpointing;
    return model;
  }
  throw UserError(r.source +
                  ": trainer reward_model needs model.path (a causal LM or reward model)");
}

class RewardObjective final : public Objective {
 public:
  RewardObjective(const Recipe& recipe, Communicator& comm)
      : recipe_(recipe),
        model_(build_reward_model(recipe)),
        shards_(shard_parameters(recipe, *model_, comm)),
        tokenizer_(Tokenizer::from_dir(recipe.model.tokenizer)) {
    bt_.center_coefficient = recipe.loss.rm_center_coefficient;
    bt_.validate();
    train_ = load(recipe, recipe.data.train_file, tokenizer_, comm);
    if (!recipe.data.eval_file.empty())
      eval_ = load(recipe, recipe.data.eval_file, tokenizer_, comm);
  }

  int64_t size() const override { return train_.examples(); }

  std::vector<int64_t> lengths() const override {
    std::vector<int64_t> out;
    for (int64_t e = 0; e < train_.examples(); ++e) {
      int64_t longest = 0;
      for (int64_t k = 0; k < train_.sequences_of(e); ++k)
        longest = std::max(longest, train_.sequence(e, k).size());
      out.push_back(longest);
    }
    return out;
  }

  double units(const std::vector<int64_t>& examples) const override {
    return static_cast<double>(examples.size());
  }

  std::vector<std::string> metric_names() const override { return {"accuracy", "margin"}; }

  MicroBatchResult forward(const std::vector<int64_t>& examples, double normalizer) override {
    MicroBatchResult r;
    auto out = loss(train_, examples, &r.token_count);
    const auto B = static_cast<double>(examples.size());
    r.loss = out.loss * B / normalizer;
    r.sums = {{"accuracy", out.accuracy * B}, {"margin", out.margin * B}};
    return r;
  }

  std::map<std::string, double> evaluate() override {
    if (eval_.examples() == 0) return {};
    torch::NoGradGuard no_grad;
    model_->eval();
    std::map<std::string, double> sums;
    const auto step = recipe_.training.micro_batch_size;
    for (int64_t i = 0; i < eval_.examples(); i += step) {
      std::vector<int64_t> batch;
      for (int64_t j = i; j < std::min(eval_.examples(), i + step); ++j)
        batch.push_back(j);
      int64_t tokens = 0;
      auto out = loss(eval_, batch, &tokens);
      const auto B = static_cast<double>(batch.size());
      sums["loss"] += out.loss.item<double>() * B;
      sums["accuracy"] += out.accuracy * B;
      sums["margin"] += out.margin * B;
    }
    model_->train();
    for (auto& [k, v] : sums)
      v /= static_cast<double>(eval_.examples());
    return sums;
  }

  torch::nn::Module& model() override { return *model_; }
  ParameterShards* parameter_shards() override { return shards_.get(); }
  void save_model(const std::string& dir, const BeforeWrite& before) override {
    save_pretrained(dir, *model_, model_->config(), kMaxShardBytes, before);
  }

 private:
  struct Out {
    torch::Tensor loss;  // mean over the examples
    double accuracy;     // mean over examples of the fraction of correctly ordered pairs
    double margin;       // mean score gap between consecutive ranks
  };

  // Scores every response of `examples` in one forward ([B*K] rows, examples of equal K).
  Out loss(const TokenStore& data, const std::vector<int64_t>& examples, int64_t* tokens) {
    const auto K = data.sequences_of(examples[0]);
    std::vector<TokenView> seqs;
    for (auto i : examples) {
      if (data.sequences_of(i) != K) {
        throw UserError(recipe_.data.train_file +
                        ": every ranking in a batch must have the same number of responses; "
                        "use micro_batch_size: 1 for mixed K");
      }
      for (int64_t k = 0; k < K; ++k)
        seqs.push_back(data.sequence(i, k));
    }
    const auto device = model_->model->embed_tokens->weight.device();
    const auto batch = on_device(collate(seqs, tokenizer_.pad_id()), device);
    *tokens = batch.token_count;
    const auto B = static_cast<int64_t>(examples.size());
    DecoderInput in(batch.input_ids, batch.position_ids, batch.attention_mask);
    in.right_padded = batch.right_padded;  // scored at each row's last real token
    auto scores =
        model_->forward(in).select(1, 0).to(torch::kFloat32).view({B, K});  // [B, K], best first
    auto detached = scores.detach();
    // Pairwise ordering accuracy over all i < j (for K = 2: chosen scored above rejected).
    auto diff = detached.unsqueeze(2) - detached.unsqueeze(1);  // [B, K, K]: s_i - s_j
    auto upper = torch::ones({K, K}, torch::kBool).triu(1).to(diff.device());
    const double accuracy =
        (diff.gt(0).logical_and(upper)).sum().item<double>() / (upper.sum().item<double>() * B);
    const double margin =
        (detached.narrow(1, 0, K - 1) - detached.narrow(1, 1, K - 1)).mean().item<double>();
    if (K == 2) {
      torch::Tensor margins;
      if (recipe_.loss.rm_margin != 0)
        margins = torch::full({B}, recipe_.loss.rm_margin, scores.options());
      auto bt = losses::bradley_terry_loss(scores.select(1, 0), scores.select(1, 1), margins, bt_);
      return {bt.loss, accuracy, margin};
    }
    auto ranking = torch::arange(K, torch::kInt64).expand({B, K}).contiguous().to(scores.device());
    return {losses::plackett_luce_loss(scores, ranking).loss, accuracy, margin};
  }

  const Recipe& recipe_;
  LlamaForSequenceClassification model_;
  std::unique_ptr<ParameterShards> shards_;  // after the model it shards
  Tokenizer tokenizer_;
  losses::BradleyTerryOptions bt_;
  TokenStore train_, eval_;
};

}  // namespace

std::unique_ptr<Objective> make_reward_objective(const Recipe& recipe, Communicator& comm) {
  return std::make_unique<RewardObjective>(recipe, comm);
}

}  // namespace flywheel
