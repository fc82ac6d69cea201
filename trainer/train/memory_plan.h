// Per-rank memory of a training recipe, from the model's config.json alone: what
// `flywheel plan` prints, and what the memory tests check against measured peaks.
//
// Everything is counted in bytes of live tensors, as peak_memory_gb measures them
// (trainer/model/device.h). The activation terms follow what LibTorch's autograd keeps for
// backward in Flywheel's decoder layer (trainer/model/llama.cpp), per token:
//   input, norms' products and inverse RMS, q/k/v, their rotated halves and rotary outputs,
//   the repeated k/v, attention output and its log-sum-exp, the o_proj input, the residual,
//   the MLP's gate, silu(gate), up and their product
// (the fused CPU kernels keep less: fused_cpu), and the head: the scored positions' logits
// and, as backward starts, their gradient, or, chunked, one chunk's. The result is checked
// against measured peaks (tests/memory_plan_test.cpp, bench/run_memory.sh).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trainer/model/model_config.h"
#include "trainer/train/recipe.h"

namespace flywheel {

struct MemoryPlanOptions {
  int world_size = 1;
  int64_t zero_stage = 0;        // as the recipe asks; a world of one runs stage 0
  int64_t micro_batch_rows = 1;  // sequences in one forward (a DPO pair is two)
  int64_t tokens_per_row = 1;    // padded length
  bool activation_checkpointing = false;
  int64_t logits_chunk_tokens = 0;
  int64_t bucket_bytes = 25 << 20;
  bool causal_lm = true;  // false: a reward model (a one-logit head)
  // float32 training on a CPU that runs trainer/model/fused_cpu_autograd.h's kernels: RMSNorm
  // keeps its inverse RMS only, the rotary embedding nothing, SwiGLU its gate and up.
  bool fused_cpu = false;
};

struct MemoryPlan {
  struct Item {
    std::string name;
    double bytes;
  };
  std::vector<Item> items;  // in the order `flywheel plan` prints them
  int64_t parameters = 0;
  double peak_bytes = 0;  // what the largest moment of a step holds

  double bytes(const std::string& name) const;  // 0 for an item not in the plan
  // A table of the items in GiB, with the peak and, for device_gb > 0, whether it fits.
  std::string table(double device_gb) const;
};

MemoryPlan plan_memory(const ModelConfig& config, const MemoryPlanOptions& options);

// The options of `recipe` at `world_size` ranks: micro-batch rows and data.max_length; fused_cpu
// when the recipe trains in float32 on the CPU and this machine runs the fused kernels.
MemoryPlanOptions plan_options(const Recipe& recipe, int world_size);

}  // namespace flywheel
