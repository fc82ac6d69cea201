#include "rollout/generate.h"

#include <algorithm>

#include "trainer/core/error.h"
#include "trainer/model/device.h"

namespace flywheel {

std::vector<std::vector<int64_t>> generate(LlamaForCausalLM& model,
                                           const std::vector<std::vector<int64_t>>& prompts,
                                           const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  const auto& config = model->config();
  const auto B = static_cast<int64_t>(prompts.size());
  if (B == 0) return {};
  int64_t P = 0;
  for (const auto& p : prompts) {
    if (p.empty()) throw UserError("generate: empty prompt");
    for (auto id : p) {
      if (id < 0 || id >= config.vocab_size) {
        throw UserError("generate: token id " + std::to_string(id) +
                        " outside the vocabulary [0, " + std::to_string(config.vocab_size) + ")");
      }
    }
    P = std::max<int64_t>(P, static_cast<int64_t>(p.size()));
  }
  const auto device = model->model->embed_tokens->weight.device();
  const auto capacity = P + options.max_new_tokens;

  // Left-pad: row b's prompt occupies slots [P - len_b, P).
  auto ids = torch::full({B, P}, options.pad_id, torch::kInt64);
  auto mask = torch::zeros({B, capacity}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) {
    const auto len = static_cast<int64_t>(prompts[b].size());
    ids[b].narrow(0, P - len, len).copy_(torch::tensor(prompts[b], torch::kInt64));
    mask[b].narrow(0, P - len, len).fill_(1);
  }
  ids = ids.to(device);
  mask = mask.to(device);

  auto cache = model->make_cache(B, capacity);
  std::vector<torch::Generator> generators;
  for (int64_t b = 0; b < B; ++b)
    generators.push_back(make_generator(device, request_seed(options.seed, b, 0)));
  std::vector<std::vector<int64_t>> out(B);
  std::vector<bool> done(B, false);
  auto input = ids;
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    const auto S = cache.length() + input.size(1);
    auto logits = model->forward({input, {}, mask.narrow(1, 0, S), &cache});  // [B, T, V]
    // Sampled where the logits are, each row from its own generator.
    const auto last = logits.select(1, -1);  // [B, V]
    std::vector<int64_t> next(B, options.pad_id);
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      if (done[b]) continue;
      next[b] = sample_token(last[b], options.sampler, generators[b]).token;
      out[b].push_back(next[b]);
      done[b] = std::find(options.stop_ids.begin(), options.stop_ids.end(), next[b]) !=
                options.stop_ids.end();
      all_done = all_done && done[b];
    }
    if (all_done) break;
    // Finished rows keep decoding (batch shape stays fixed) but their tokens are discarded.
    mask.select(1, S).fill_(1);
    input = torch::tensor(next, torch::kInt64).view({B, 1}).to(device);
  }
  return out;
}

}  // namespace flywheel
