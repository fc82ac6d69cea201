#include "trainer/data/batching.h"

#include <algorithm>
#include <random>

namespace flywheel {
namespace {

// Mega-batches of this many batches are sorted by length under group_by_length.
constexpr int64_t kMegaBatchBatches = 50;

// An unbiased integer in [0, n) from the generator's raw output (std::uniform_int_distribution
// is implementation-defined, so it would differ between standard libraries).
uint64_t below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n: the low values that would bias r % n
  while (true) {
    const uint64_t r = rng();
    if (r >= threshold) return r % n;
  }
}

template <typename T>
void fisher_yates(std::vector<T>* v, std::mt19937_64& rng) {
  for (size_t i = v->size(); i > 1; --i)
    std::swap((*v)[i - 1], (*v)[below(rng, i)]);
}

std::mt19937_64 epoch_rng(uint64_t seed, int64_t epoch) {
  const uint64_t e = static_cast<uint64_t>(epoch);
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(e), static_cast<uint32_t>(e >> 32)};
  return std::mt19937_64(seq);
}

std::vector<std::vector<int64_t>> cut(const std::vector<int64_t>& order, int64_t batch_size,
                                      bool drop_last) {
  std::vector<std::vector<int64_t>> batches;
  for (size_t begin = 0; begin < order.size(); begin += batch_size) {
    const size_t end = std::min(order.size(), begin + batch_size);
    if (drop_last && static_cast<int64_t>(end - begin) < batch_size) break;
    batches.emplace_back(order.begin() + begin, order.begin() + end);
  }
  return batches;
}

// Fills row b of a [B, T] int64 tensor from `values` starting at column `at`.
template <typename Values>
void write_row(torch::Tensor& t, int64_t b, int64_t at, const Values& values) {
  std::copy(values.begin(), values.end(), t.data_ptr<int64_t>() + b * t.size(1) + at);
}

torch::Tensor filled(int64_t rows, int64_t cols, int64_t value) {
  return torch::full({rows, cols}, value, torch::kInt64);
}

// The labels of one sequence: its ids where trained, kIgnoreIndex elsewhere.
std::vector<int64_t> labels_of(const TokenView& s) {
  std::vector<int64_t> labels(s.ids.size());
  for (size_t i = 0; i < s.ids.size(); ++i)
    labels[i] = s.loss_mask[i] != 0 ? s.ids[i] : kIgnoreIndex;
  return labels;
}

std::vector<int64_t> positions(int64_t n) {
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i)
    p[i] = i;
  return p;
}

void count_tokens(TokenBatch* batch, int64_t pad_tokens) {
  batch->token_count = batch->input_ids.numel() - pad_tokens;
  batch->loss_token_count = (batch->labels != kIgnoreIndex).sum().item<int64_t>();
}

// One batch of packed rows; each row is a list of sequences.
TokenBatch pack_rows(const std::vector<std::vector<TokenView>>& rows, int64_t pad_id) {
  const int64_t B = static_cast<int64_t>(rows.size());
  int64_t T = 0;
  std::vector<int64_t> row_length(B, 0);
  for (int64_t b = 0; b < B; ++b) {
    for (const TokenView& s : rows[b])
      row_length[b] += s.size();
    T = std::max(T, row_length[b]);
  }
  TokenBatch batch;
  batch.input_ids = filled(B, T, pad_id);
  batch.labels = filled(B, T, kIgnoreIndex);
  batch.position_ids = filled(B, T, 0);
  // Which sequence of its row each token belongs to; padding gets a distinct negative id per
  // position, so the equality below lets it attend only itself (no fully masked softmax rows).
  torch::Tensor segment = -torch::arange(1, T + 1, torch::kInt64).repeat({B, 1});
  int64_t pad_tokens = 0;
  for (int64_t b = 0; b < B; ++b) {
    int64_t at = 0;
    for (size_t k = 0; k < rows[b].size(); ++k) {
      const TokenView& s = rows[b][k];
      std::vector<int64_t> labels = labels_of(s);
      if (!labels.empty()) labels.front() = kIgnoreIndex;
      write_row(batch.input_ids, b, at, s.ids);
      write_row(batch.labels, b, at, labels);
      write_row(batch.position_ids, b, at, positions(s.size()));
      write_row(segment, b, at, std::vector<int64_t>(s.ids.size(), static_cast<int64_t>(k)));
      at += s.size();
    }
    pad_tokens += T - at;
  }
  batch.attention_mask = segment.unsqueeze(2) == segment.unsqueeze(1);  // [B, T, T]
  count_tokens(&batch, pad_tokens);
  return batch;
}

}  // namespace

std::vector<std::vector<int64_t>> plan_epoch(const std::vector<int64_t>& lengths,
                                             int64_t batch_size, uint64_t seed, int64_t epoch,
                                             bool group_by_length, bool drop_last) {
  TORCH_CHECK(batch_size > 0, "plan_epoch: batch_size must be positive, got ", batch_size);
  std::mt19937_64 rng = epoch_rng(seed, epoch);
  std::vector<int64_t> order = positions(static_cast<int64_t>(lengths.size()));
  fisher_yates(&order, rng);
  if (!group_by_length) return cut(order, batch_size, drop_last);
  // A mega-batch is a whole number of batches, so no batch cut() makes spans two of them;
  // stable_sort keeps equal lengths in shuffled order (std::sort's tie order is unspecified).
  const size_t mega = static_cast<size_t>(kMegaBatchBatches * batch_size);
  for (size_t begin = 0; begin < order.size(); begin += mega) {
    const auto end = order.begin() + std::min(order.size(), begin + mega);
    std::stable_sort(order.begin() + begin, end,
                     [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  }
  std::vector<std::vector<int64_t>> batches = cut(order, batch_size, drop_last);
  fisher_yates(&batches, rng);
  return batches;
}

TokenBatch collate(const std::vector<TokenView>& seqs, int64_t pad_id) {
  TORCH_CHECK(!seqs.empty(), "collate: no sequences");
  const int64_t B = static_cast<int64_t>(seqs.size());
  int64_t T = 0;
  for (const TokenView& s : seqs)
    T = std::max(T, s.size());
  TokenBatch batch;
  batch.input_ids = filled(B, T, pad_id);
  batch.labels = filled(B, T, kIgnoreIndex);
  batch.attention_mask = filled(B, T, 0);
  batch.position_ids = filled(B, T, 0);
  int64_t pad_tokens = 0;
  for (int64_t b = 0; b < B; ++b) {
    const TokenView& s = seqs[b];
    write_row(batch.input_ids, b, 0, s.ids);
    write_row(batch.labels, b, 0, labels_of(s));
    write_row(batch.attention_mask, b, 0, std::vector<int64_t>(s.ids.size(), 1));
    write_row(batch.position_ids, b, 0, positions(s.size()));
    pad_tokens += T - s.size();
  }
  count_tokens(&batch, pad_tokens);
  batch.right_padded = true;
  return batch;
}

std::vector<TokenBatch> pack(const std::vector<TokenView>& seqs, int64_t max_length,
                             int64_t rows_per_batch, int64_t pad_id) {
  TORCH_CHECK(max_length > 0 && rows_per_batch > 0,
              "pack: max_length and rows_per_batch must be positive");
  std::vector<std::vector<TokenView>> rows;
  int64_t row_length = 0;
  for (const TokenView& s : seqs) {
    TORCH_CHECK(s.size() <= max_length, "pack: a sequence of ", s.size(),
                " tokens exceeds max_length ", max_length);
    if (rows.empty() || row_length + s.size() > max_length) {
      rows.emplace_back();
      row_length = 0;
    }
    rows.back().push_back(s);
    row_length += s.size();
  }
  std::vector<TokenBatch> batches;
  for (size_t begin = 0; begin < rows.size(); begin += rows_per_batch) {
    const auto end = rows.begin() + std::min(rows.size(), begin + rows_per_batch);
    batches.push_back(pack_rows({rows.begin() + begin, end}, pad_id));
  }
  return batches;
}

TokenBatch concat_packed(const std::vector<const TokenBatch*>& batches, int64_t pad_id) {
  TORCH_CHECK(!batches.empty(), "concat_packed: no batches");
  int64_t T = 0;
  for (const TokenBatch* b : batches) {
    TORCH_CHECK(b->attention_mask.dim() == 3, "concat_packed: batches must come from pack()");
    T = std::max(T, b->input_ids.size(1));
  }
  // `t` padded on the right to T columns with `value`.
  auto widen = [T](const torch::Tensor& t, int64_t value) {
    auto out = torch::full({t.size(0), T}, value, t.options());
    out.narrow(1, 0, t.size(1)).copy_(t);
    return out;
  };
  std::vector<torch::Tensor> ids, labels, positions, masks;
  TokenBatch out;
  for (const TokenBatch* b : batches) {
    const int64_t t = b->input_ids.size(1);
    ids.push_back(widen(b->input_ids, pad_id));
    labels.push_back(widen(b->labels, kIgnoreIndex));
    positions.push_back(widen(b->position_ids, 0));
    // The block-diagonal mask grows by padding that attends only itself, as in pack().
    auto mask = torch::zeros({b->input_ids.size(0), T, T}, b->attention_mask.options());
    mask.narrow(1, 0, t).narrow(2, 0, t).copy_(b->attention_mask);
    mask.diagonal(0, 1, 2).narrow(1, t, T - t).fill_(true);
    masks.push_back(mask);
    out.token_count += b->token_count;
    out.loss_token_count += b->loss_token_count;
  }
  out.input_ids = torch::cat(ids);
  out.labels = torch::cat(labels);
  out.attention_mask = torch::cat(masks);
  out.position_ids = torch::cat(positions);
  return out;
}

}  // namespace flywheel
