// Epoch plans (which examples form each batch) and batch tensors.
//
// Shapes: B = sequences (rows) in the batch, T = tokens per row after padding.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "trainer/core/labels.h"
#include "trainer/data/token_store.h"

namespace flywheel {

// ---- sampling ----

// The batches of one epoch as example indices; every index appears exactly once (except in a
// final short batch dropped by drop_last). The order is a Fisher–Yates shuffle over
// std::mt19937_64 seeded from (seed, epoch): the same on every platform and standard library,
// so a resumed run sees the same batches. group_by_length sorts each mega-batch of
// 50 × batch_size shuffled examples by length (longest first) before cutting it into batches,
// then shuffles the batch order: batches hold similar lengths (little padding) yet come in
// random order.
std::vector<std::vector<int64_t>> plan_epoch(const std::vector<int64_t>& lengths,
                                             int64_t batch_size, uint64_t seed, int64_t epoch,
                                             bool group_by_length, bool drop_last);

// ---- collation ----

struct TokenBatch {
  torch::Tensor input_ids;       // [B, T] int64, padding = pad id
  torch::Tensor labels;          // [B, T] int64, the token id where trained, else kIgnoreIndex
  torch::Tensor attention_mask;  // [B, T] int64 1 = real token (collate), or
                                 // [B, T, T] bool query i may attend key j (pack)
  torch::Tensor position_ids;    // [B, T] int64, 0 on padding
  int64_t token_count = 0;       // real (non-padding) tokens
  int64_t loss_token_count = 0;  // labels != kIgnoreIndex
  bool right_padded = false;     // collate: padding only after each row's tokens
};

// One sequence per row, right-padded to the longest; positions 0..len-1. Labels are not
// shifted: the loss predicts labels[t + 1] from position t.
TokenBatch collate(const std::vector<TokenView>& seqs, int64_t pad_id);

// SFT packing: rows of up to max_length tokens filled greedily with whole sequences in the
// given order (a new row when the next one does not fit), grouped into batches of
// rows_per_batch rows (the last may have fewer), each padded to its longest row. Positions
// restart at 0 for every sequence; the attention mask is block diagonal, so tokens attend only
// within their own sequence (the model adds causality) and padding attends only itself. The
// first token of every sequence gets no label: with the shift it would be predicted from the
// end of the previous sequence.
std::vector<TokenBatch> pack(const std::vector<TokenView>& seqs, int64_t max_length,
                             int64_t rows_per_batch, int64_t pad_id);

// Packed batches of any lengths (pack()'s output, e.g. one row each, picked by the epoch plan)
// as one batch: rows padded to the longest exactly as pack() pads them, so the result equals
// pack() having put those rows in one batch.
TokenBatch concat_packed(const std::vector<const TokenBatch*>& batches, int64_t pad_id);

}  // namespace flywheel
