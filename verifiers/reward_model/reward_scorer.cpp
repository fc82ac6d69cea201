#include "verifiers/reward_model/reward_scorer.h"

#include <algorithm>
#include <numeric>

#include "trainer/core/error.h"
#include "trainer/data/batching.h"

namespace flywheel {

RewardScorer::RewardScorer(LlamaForSequenceClassification model, const Tokenizer& tokenizer,
                           RewardScorerOptions options)
    : model_(std::move(model)), tokenizer_(tokenizer), options_(std::move(options)) {
  if (options_.batch_size < 1) throw UserError("reward scoring: batch_size must be at least 1");
}

std::vector<double> RewardScorer::score(const std::vector<std::vector<int64_t>>& sequences) {
  std::vector<double> scores(sequences.size());
  // Longest first, so each batch holds similar lengths.
  std::vector<size_t> order(sequences.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sequences[a].size() > sequences[b].size(); });
  const bool was_training = model_->is_training();
  model_->eval();
  const c10::InferenceMode inference;
  const auto device = model_->model->embed_tokens->weight.device();
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(options_.batch_size)) {
    const size_t end = std::min(order.size(), start + static_cast<size_t>(options_.batch_size));
    std::vector<std::vector<int32_t>> ids;
    std::vector<std::vector<uint8_t>> masks;
    for (size_t i = start; i < end; ++i) {
      const auto& s = sequences[order[i]];
      if (s.empty()) throw UserError("reward scoring: an empty sequence has no token to score");
      ids.emplace_back(s.begin(), s.end());
      masks.emplace_back(s.size(), 1);
    }
    std::vector<TokenView> views;
    for (size_t i = 0; i < ids.size(); ++i)
      views.push_back({ids[i], masks[i]});
    TokenBatch batch = collate(views, tokenizer_.pad_id());
    DecoderInput in(batch.input_ids.to(device), batch.position_ids.to(device),
                    batch.attention_mask.to(device));
    in.right_padded = batch.right_padded;
    const auto out = model_->forward(in).select(1, 0).to(torch::kFloat64).cpu();  // [B]
    const auto* p = out.data_ptr<double>();
    for (size_t i = start; i < end; ++i)
      scores[order[i]] = p[i - start];
  }
  if (was_training) model_->train();
  return scores;
}

std::vector<int64_t> RewardScorer::encode(const std::string& prompt,
                                          const std::string& response) const {
  DataOptions data;
  data.add_bos = options_.add_bos;
  nlohmann::json record;
  if (options_.chat_template.empty()) {
    record = {{"prompt", prompt}, {"completion", response}};
  } else {
    data.chat_template = options_.chat_template;
    record = {{"prompt", {{{"role", "user"}, {"content", prompt}}}},
              {"completion", {{{"role", "assistant"}, {"content", response}}}}};
  }
  return encode_sft_record(record, tokenizer_, data).ids;
}

std::vector<double> RewardScorer::score_texts(
    const std::vector<std::pair<std::string, std::string>>& prompt_response) {
  std::vector<std::vector<int64_t>> sequences;
  sequences.reserve(prompt_response.size());
  for (const auto& [prompt, response] : prompt_response)
    sequences.push_back(encode(prompt, response));
  return score(sequences);
}

}  // namespace flywheel
