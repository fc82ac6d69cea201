#include "trainer/train/memory_plan.h"

#include <algorithm>
#include <cstdio>

#include "trainer/core/simd.h"

// GCC 12 at -O3 reports an impossible over-read inside std::string's constructor from the item
// names below: the false positive cmake/flywheel.cmake turns off in its -Wstringop-overflow
// form for every target.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wstringop-overread"
#endif

namespace flywheel {
namespace {

double element_bytes(torch::Dtype dtype) {
  return dtype == torch::kFloat32 ? 4.0 : 2.0;
}

}  // namespace

double MemoryPlan::bytes(const std::string& name) const {
  for (const auto& item : items) {
    if (item.name == name) return item.bytes;
  }
  return 0;
}

std::string MemoryPlan::table(double device_gb) const {
  constexpr double kGiB = 1 << 30;
  std::string out;
  char line[160];
  for (const auto& item : items) {
    std::snprintf(line, sizeof line, "  %-34s %10.3f GiB\n", item.name.c_str(), item.bytes / kGiB);
    out += line;
  }
  std::snprintf(line, sizeof line, "  %-34s %10.3f GiB\n", "peak per rank", peak_bytes / kGiB);
  out += line;
  if (device_gb > 0) {
    std::snprintf(line, sizeof line, "  %s %.1f GiB of device memory (%.0f%%)\n",
                  peak_bytes <= device_gb * kGiB ? "fits in" : "does NOT fit in", device_gb,
                  100.0 * peak_bytes / (device_gb * kGiB));
    out += line;
  }
  return out;
}

MemoryPlan plan_memory(const ModelConfig& c, const MemoryPlanOptions& o) {
  MemoryPlan plan;
  const double s = element_bytes(c.dtype);
  const bool low = s < 4;
  const double C = static_cast<double>(c.hidden_size);
  const double F = static_cast<double>(c.intermediate_size);
  const double V = static_cast<double>(c.vocab_size);
  const double H = static_cast<double>(c.num_attention_heads);
  const double KD = static_cast<double>(c.num_key_value_heads * c.head_dim);
  const double HD = static_cast<double>(c.num_attention_heads * c.head_dim);
  const double L = static_cast<double>(c.num_hidden_layers);

  // Parameters, and the largest one (it bounds per-parameter temporaries and buckets).
  const double per_layer = C * HD + 2 * C * KD + HD * C + 3 * C * F + 2 * C +
                           (c.qkv_bias ? HD + 2 * KD : 0) + (c.o_bias ? C : 0) +
                           (c.mlp_bias ? 2 * F + C : 0);
  const double head = o.causal_lm ? (c.tie_word_embeddings ? 0 : V * C) : C;
  const double N = V * C + L * per_layer + C + head;
  plan.parameters = static_cast<int64_t>(N);
  const double largest = std::max({V * C, C * F, C * HD});

  const int W = std::max(1, o.world_size);
  const int64_t stage = W > 1 ? o.zero_stage : 0;
  const double shard = stage >= 1 ? 1.0 / W : 1.0;
  // A bucket holds at least one parameter, and no more than the whole model.
  const double bucket = std::min(std::max(static_cast<double>(o.bucket_bytes), 4 * largest), 4 * N);
  // Stage 3's units (trainer/optim/param_shards.h): the head (final norm, LM head, and the
  // embedding when tied), the embedding otherwise, one decoder layer. While a step runs a rank
  // holds the head and two layers whole (the one computing and the next, prefetched), and two
  // units' gradients (one travelling, one filling), at worst the largest.
  const double head_unit = C + head + (o.causal_lm && c.tie_word_embeddings ? V * C : 0);
  const double largest_unit = std::max({head_unit, V * C, per_layer});
  plan.items.push_back({"weights", stage == 3 ? N * s / W : N * s});
  plan.items.push_back(
      {"gathered weights (ZeRO-3)", stage == 3 ? (head_unit + 2 * per_layer) * s : 0});
  plan.items.push_back({"fp32 master weights", low ? 4 * N * shard : 0});
  plan.items.push_back({"AdamW moments (fp32)", 8 * N * shard});
  // Stages 0/1 hold whole-model float32 gradient buckets (stage 1 also its shard's copy);
  // stage 2 its shard and up to three buckets in flight; stage 3 its shard and two units.
  const double gradients = stage == 3   ? 4 * N / W + 2 * 4 * largest_unit
                           : stage == 2 ? 4 * N / W + std::min(3 * bucket, 4 * N)
                           : stage == 1 ? 4 * N + 4 * N / W
                                        : 4 * N;
  plan.items.push_back({"gradients (fp32)", gradients});

  // Saved for backward, per token: one decoder layer, and what checkpointing keeps instead.
  const double tokens = static_cast<double>(o.micro_batch_rows * o.tokens_per_row);
  // Inverse RMS, float32 product / copy (fused: the inverse RMS alone).
  const double norm = o.fused_cpu ? 4 : 4 + 4 * C + (low ? s * C : 0);
  const double rope = low ? 4 * s * c.head_dim : 0;  // cos/sin cast per projection
  // Rotary outputs of q and k (their inputs are not kept: the products with cos/sin need only
  // cos/sin), k and v as repeated for the query heads, the attention output and its
  // log-sum-exp, and the o_proj input.
  const double attention = s * 5 * HD + 4 * H + rope;
  const double mlp = (o.fused_cpu ? 3 : 4) * s * F;  // fused: no separate silu(gate)
  const double layer = s * C + norm + s * C + attention + s * C + norm + s * C + mlp;
  // Checkpointed, the layers keep their inputs and backward replays one layer at a time (its
  // activations again); plain, every layer keeps everything. A layer's backward frees what it
  // kept as it makes the gradients, so it adds little beyond that.
  const bool ckpt = o.activation_checkpointing;
  const double kept = tokens * L * (ckpt ? s * C : layer);
  plan.items.push_back({ckpt ? "activations (layer inputs)" : "activations", kept});
  const double replay = ckpt ? tokens * layer : 0;
  plan.items.push_back({"replayed layer (checkpointing)", replay});

  // The head (losses/logprobs.h): the scored rows' hidden states, their logits kept for
  // backward and, as backward starts, the logits' gradient, both in the model's dtype; in
  // bfloat16 the log-softmax works on float32 copies of 1024 rows at a time (two at once).
  // Chunked: one chunk's logits and gradient, plus the float32 weight gradient the chunks are
  // summed in. Every position is counted as scored: prompts make the plan an upper bound.
  double logits = 0;
  if (o.causal_lm) {
    const double final_norm = norm + s * C;
    const double rows = tokens * (final_norm + s * C);
    if (o.logits_chunk_tokens > 0) {
      const double chunk = std::min(static_cast<double>(o.logits_chunk_tokens), tokens);
      logits = rows + 2 * 4 * V * chunk + 4 * V * C;
    } else {
      logits = rows + tokens * 2 * s * V + (low ? 2 * 4 * V * std::min(1024.0, tokens) : 0);
    }
  }
  plan.items.push_back({"logits", logits});

  // The update's temporaries: a moment-sized denominator per parameter (replicated, and at
  // stage 3, which gathers nothing after the step), or one gathered piece (stages 1-2: this
  // rank's part, every rank's parts, and the transport's own flat copy of them, each about
  // bucket_bytes).
  const double update =
      stage == 1 || stage == 2 ? (2.0 * W + 1) * static_cast<double>(o.bucket_bytes) : 4 * largest;
  plan.items.push_back({"optimizer step temporaries", update});

  const double fixed = plan.bytes("weights") + plan.bytes("gathered weights (ZeRO-3)") +
                       plan.bytes("fp32 master weights") + plan.bytes("AdamW moments (fp32)") +
                       gradients;
  // The head's backward comes first, the layers' after it has freed its buffers.
  const double step = kept + std::max(logits, replay);
  plan.peak_bytes = fixed + std::max(step, update);
  return plan;
}

MemoryPlanOptions plan_options(const Recipe& recipe, int world_size) {
  MemoryPlanOptions o;
  o.world_size = world_size;
  o.zero_stage = recipe.distributed.zero_stage;
  o.micro_batch_rows = recipe.training.micro_batch_size * (recipe.trainer == "sft" ? 1 : 2);
  o.tokens_per_row = recipe.data.options.max_length;
  o.activation_checkpointing = recipe.training.activation_checkpointing;
  o.logits_chunk_tokens = recipe.training.logits_chunk_tokens;
  o.bucket_bytes = static_cast<int64_t>(recipe.distributed.bucket_mb * (1 << 20));
  o.causal_lm = recipe.trainer != "reward_model";
  o.fused_cpu =
      recipe.model.device == "cpu" && recipe.model.dtype == "float32" && simd::available();
  return o;
}

}  // namespace flywheel
