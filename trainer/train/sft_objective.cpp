// Supervised fine-tuning: next-token cross-entropy on the assistant tokens.
#include <torch/torch.h>

#include "losses/logprobs.h"
#include "losses/sft.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/data/batching.h"
#include "trainer/text/tokenizer.h"
#include "trainer/train/model_builder.h"
#include "trainer/train/objective.h"

namespace flywheel {
namespace {

// Trained tokens after the next-token shift: the first token is never a target.
int64_t loss_token_count(const TokenView& s) {
  return s.size() == 0 ? 0 : s.loss_token_count() - s.loss_mask[0];
}

class SftObjective final : public Objective {
 public:
  SftObjective(const Recipe& recipe, Communicator& comm)
      : recipe_(recipe),
        model_(build_causal_lm(recipe, shards_parameters(recipe, comm))),
        shards_(shard_parameters(recipe, *model_, comm)),
        tokenizer_(Tokenizer::from_dir(recipe.model.tokenizer)),
        reduction_(losses::parse_sft_reduction(recipe.training.sft_loss_reduction)),
        train_(
            load_recipe_data(recipe, ExampleKind::kSft, recipe.data.train_file, tokenizer_, comm)) {
    if (!recipe.data.eval_file.empty()) {
      eval_ = load_recipe_data(recipe, ExampleKind::kSft, recipe.data.eval_file, tokenizer_, comm);
    }
    if (recipe.data.packing) {
      rows_ = pack(train_.all_sequences(), recipe.data.options.max_length, /*rows_per_batch=*/1,
                   tokenizer_.pad_id());
    }
  }

  int64_t size() const override {
    return recipe_.data.packing ? static_cast<int64_t>(rows_.size()) : train_.examples();
  }

  std::vector<int64_t> lengths() const override {
    std::vector<int64_t> out;
    if (recipe_.data.packing) {
      for (const auto& r : rows_)
        out.push_back(r.token_count);
    } else {
      for (const auto& s : train_.all_sequences())
        out.push_back(s.size());
    }
    return out;
  }

  // token_mean averages over trained tokens; sum averages per-sequence sums over sequences.
  double units(const std::vector<int64_t>& examples) const override {
    if (reduction_ == losses::SftReduction::kSum) return static_cast<double>(examples.size());
    double n = 0;
    for (auto i : examples) {
      n += recipe_.data.packing ? static_cast<double>(rows_[i].loss_token_count)
                                : static_cast<double>(loss_token_count(train_.sequence(i)));
    }
    return n;
  }

  std::vector<std::string> metric_names() const override { return {}; }

  MicroBatchResult forward(const std::vector<int64_t>& examples, double normalizer) override {
    const auto batch = make_batch(examples);
    const auto logps = label_logps(model_, batch, recipe_.training);
    auto loss = losses::sft_loss(logps, losses::SftReduction::kSum).loss;
    return {loss / normalizer, {}, batch.token_count};
  }

  std::map<std::string, double> evaluate() override {
    if (eval_.examples() == 0) return {};
    torch::NoGradGuard no_grad;
    model_->eval();
    double nll = 0, tokens = 0;
    const auto B = recipe_.training.micro_batch_size;
    for (int64_t i = 0; i < eval_.examples(); i += B) {
      std::vector<int64_t> rows;
      for (int64_t j = i; j < std::min(eval_.examples(), i + B); ++j)
        rows.push_back(j);
      const auto batch = on_device(collate(eval_.sequences(rows), tokenizer_.pad_id()), device());
      const auto logps = label_logps(model_, batch, recipe_.training);
      auto out = losses::sft_loss(logps, losses::SftReduction::kSum);
      nll += out.loss.item<double>();
      tokens += out.token_count.item<double>();
    }
    model_->train();
    const double loss = nll / std::max(tokens, 1.0);
    return {{"loss", loss}, {"perplexity", std::exp(loss)}};
  }

  torch::nn::Module& model() override { return *model_; }
  LlamaForCausalLM* policy() override { return &model_; }
  ParameterShards* parameter_shards() override { return shards_.get(); }
  void save_model(const std::string& dir, const BeforeWrite& before) override {
    save_pretrained(dir, *model_, model_->config(), kMaxShardBytes, before);
  }

 private:
  TokenBatch make_batch(const std::vector<int64_t>& examples) const {
    TokenBatch b;
    if (recipe_.data.packing) {
      // Each packed row has its own length; the batch pads them as packing pads.
      std::vector<const TokenBatch*> rows;
      for (auto i : examples)
        rows.push_back(&rows_[i]);
      b = concat_packed(rows, tokenizer_.pad_id());
    } else {
      b = collate(train_.sequences(examples), tokenizer_.pad_id());
    }
    return on_device(std::move(b), device());
  }

  torch::Device device() const { return model_->model->embed_tokens->weight.device(); }

  const Recipe& recipe_;
  LlamaForCausalLM model_;
  std::unique_ptr<ParameterShards> shards_;  // after the model it shards
  Tokenizer tokenizer_;
  losses::SftReduction reduction_;
  TokenStore train_, eval_;
  std::vector<TokenBatch> rows_;  // packed rows when data.packing
};

}  // namespace

std::unique_ptr<Objective> make_sft_objective(const Recipe& recipe, Communicator& comm) {
  return std::make_unique<SftObjective>(recipe, comm);
}

}  // namespace flywheel
