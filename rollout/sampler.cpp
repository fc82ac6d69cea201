#include "rollout/sampler.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "trainer/core/error.h"
#include "trainer/core/simd.h"

namespace flywheel {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// splitmix64's finaliser.
uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Rows whose parameters only set a temperature (or ask for greedy) are sampled by
// sample_rows_cpu on float32 CPU logits.
bool temperature_only(const SamplingParams& p, int64_t vocab) {
  return (p.top_k <= 0 || p.top_k >= vocab) && p.top_p >= 1.0 && p.min_p <= 0.0;
}

FLYWHEEL_SIMD_BEGIN
using namespace simd;

// out[0, n) = log_softmax(x[0, n)) in float32, as ATen's: (x - max) - log(sum(exp(x - max))).
void log_softmax_row(const float* x, int64_t n, float* out) {
  const auto parts = log_softmax_parts(x, n);
  for (int64_t t = 0; t < n; ++t)
    out[t] = (x[t] - parts.max) - parts.log_sum;
}

// One row's scratch: its model log-probs, the scores it samples from, their log-softmax and
// cumulative distribution; rows padded to whole vectors, so that loads past V stay inside.
struct RowScratch {
  std::vector<float> model, scores, lp, cdf;
  explicit RowScratch(int64_t V)
      : model(static_cast<size_t>((V + kLanes - 1) / kLanes * kLanes)),
        scores(model.size()),
        lp(model.size()),
        cdf(static_cast<size_t>(V)) {}
};

// Row r of logits x [R, V], whose parameters set only a temperature: its log-probs into `w`.
// A greedy row is decided here, into out[r] (returns false); a sampled one has w.lp ready for
// its cumulative distribution (returns true).
bool prepare_plain_row(const torch::Tensor& x, int64_t r, const std::vector<RowSampling>& rows,
                       RowScratch& w, std::vector<SampledToken>& out) {
  const int64_t V = x.size(1);
  const auto& row = rows[static_cast<size_t>(r)];
  std::copy_n(x.data_ptr<float>() + r * V, V, w.scores.data());
  log_softmax_row(w.scores.data(), V, w.model.data());
  std::copy_n(w.model.data(), V, w.scores.data());
  if (row.banned != nullptr) {
    for (auto id : *row.banned) {
      TORCH_CHECK(id >= 0 && id < V, "sample_rows: banned id ", id, " outside [0, ", V, ") in row ",
                  r);
      w.scores[static_cast<size_t>(id)] = kNegInf;
    }
  }
  if (row.params->greedy()) {
    const int64_t token =
        std::max_element(w.scores.begin(), w.scores.begin() + V) - w.scores.begin();
    const double model_logprob = w.model[static_cast<size_t>(token)];
    TORCH_CHECK(std::isfinite(model_logprob), "sample_rows: the logits of row ", r,
                " are not finite (NaN or inf): the model's output is broken");
    out[static_cast<size_t>(r)] = {token, 0.0, model_logprob};  // greedy: a point mass
    return false;
  }
  if (row.params->temperature != 1.0) {
    const auto t = static_cast<float>(row.params->temperature);
    for (int64_t i = 0; i < V; ++i)
      w.scores[static_cast<size_t>(i)] /= t;
  }
  log_softmax_row(w.scores.data(), V, w.lp.data());
  return true;
}

// The cumulative distributions of four rows at once (w[k]->lp into w[k]->cdf), each summed in
// double along the row as ATen's CPU scan does. The sums are one chain of additions per row;
// four independent chains keep the adder busy where one waits on each sum's latency, and each
// row's arithmetic is exactly what it would be alone.
void cumulative_rows(RowScratch* const w[4], int64_t V) {
  double running[4] = {0, 0, 0, 0};
  for (int64_t i = 0; i < V; i += kLanes) {
    v16 p[4];
    for (int k = 0; k < 4; ++k)
      p[k] = exp16(load(w[k]->lp.data() + i));
    for (int64_t j = i; j < std::min(V, i + kLanes); ++j) {
      for (int k = 0; k < 4; ++k) {
        // exp16 clamps at e^-87.3; a masked token has exactly no mass.
        running[k] += w[k]->lp[static_cast<size_t>(j)] == kNegInf ? 0.0 : p[k][j - i];
        w[k]->cdf[static_cast<size_t>(j)] = static_cast<float>(running[k]);
      }
    }
  }
}

// The token where u x total falls in row r's cumulative distribution (rollout/sampler.h,
// inverse_cdf), into out[r].
void finish_plain_row(int64_t r, const std::vector<RowSampling>& rows, const RowScratch& w,
                      std::vector<SampledToken>& out) {
  const auto& row = rows[static_cast<size_t>(r)];
  const auto& cdf = w.cdf;
  const int64_t V = std::ssize(cdf);
  const float total = cdf.back();
  const float threshold = std::min(static_cast<float>(stream_uniform(row.stream, row.draw) * total),
                                   std::nextafter(total, 0.0f));
  const int64_t token =
      std::min<int64_t>(std::upper_bound(cdf.begin(), cdf.end(), threshold) - cdf.begin(), V - 1);
  const double model_logprob = w.model[static_cast<size_t>(token)];
  TORCH_CHECK(std::isfinite(model_logprob), "sample_rows: the logits of row ", r,
              " are not finite (NaN or inf): the model's output is broken");
  out[static_cast<size_t>(r)] = {token, w.lp[static_cast<size_t>(token)], model_logprob};
}

// sample_rows for the rows of float32 CPU logits that pass temperature_only(), into `out`: each
// row's stages in one pass over it, with no LibTorch call; the same arithmetic as the staged
// path (to the float32 rounding of exp: a draw within an ulp of a boundary of the cumulative
// distribution may pick the neighbouring token). Which path a row takes depends on its own
// parameters only, so a row draws the same alone and in any batch. Returns the rows it left
// for the staged path. Unlike the stages, exp is clamped at e^-87.3: a token whose log-prob is
// below -87.3 keeps ~1e-38 of mass where ATen's exp gives (almost) none, which matters only to
// a draw of u within 1e-38 of 0; greedy takes the argmax of this path's own log-softmax, which
// can break a tie within an ulp differently.
std::vector<int64_t> sample_plain_rows_cpu(const torch::Tensor& logits,
                                           const std::vector<RowSampling>& rows,
                                           std::vector<SampledToken>& out) {
  const auto x = logits.contiguous();
  const int64_t R = x.size(0), V = x.size(1);
  std::vector<int64_t> staged, plain;
  for (int64_t r = 0; r < R; ++r)
    (temperature_only(*rows[static_cast<size_t>(r)].params, V) ? plain : staged).push_back(r);
  // Rows are independent: spread over LibTorch's threads, a few thousand logits a task.
  const auto grain = std::max<int64_t>(1, 16384 / V);
  at::parallel_for(0, std::ssize(plain), grain, [&](int64_t begin, int64_t end) {
    // Sampled rows gather four at a time for their cumulative distributions; a batch short of
    // four fills the rest with the spare scratch (summed and dropped). Kept per thread from
    // step to step: this runs every decode step.
    thread_local std::vector<RowScratch> scratch;
    if (scratch.empty() || std::ssize(scratch[0].cdf) != V) scratch.assign(5, RowScratch(V));
    RowScratch* batch[4];
    int64_t batch_rows[4];
    int n = 0;
    const auto flush = [&] {
      for (int k = n; k < 4; ++k)
        batch[k] = &scratch[4];
      cumulative_rows(batch, V);
      for (int k = 0; k < n; ++k)
        finish_plain_row(batch_rows[k], rows, *batch[k], out);
      n = 0;
    };
    for (int64_t i = begin; i < end; ++i) {
      const int64_t r = plain[static_cast<size_t>(i)];
      if (!prepare_plain_row(x, r, rows, scratch[static_cast<size_t>(n)], out)) continue;
      batch[n] = &scratch[static_cast<size_t>(n)];
      batch_rows[n++] = r;
      if (n == 4) flush();
    }
    if (n > 0) flush();
  });
  return staged;
}

FLYWHEEL_SIMD_END

}  // namespace

void SamplingParams::validate(const std::string& prefix) const {
  if (!(temperature >= 0)) {
    throw UserError(prefix + "temperature must be >= 0 (0 = greedy), got " +
                    std::to_string(temperature));
  }
  if (top_k < 0) throw UserError(prefix + "top_k must be >= 0, got " + std::to_string(top_k));
  if (!(top_p > 0 && top_p <= 1)) {
    throw UserError(prefix + "top_p must be in (0, 1], got " + std::to_string(top_p));
  }
  if (!(min_p >= 0 && min_p < 1)) {
    throw UserError(prefix + "min_p must be in [0, 1), got " + std::to_string(min_p));
  }
}

torch::Tensor apply_temperature(const torch::Tensor& scores, double temperature) {
  return temperature == 1.0 ? scores : scores / temperature;
}

torch::Tensor apply_top_k(const torch::Tensor& scores, int64_t k) {
  if (k <= 0 || k >= scores.size(-1)) return scores;
  const auto kth = std::get<0>(scores.topk(k, -1)).narrow(-1, k - 1, 1);  // [..., 1]
  return scores.masked_fill(scores < kth, kNegInf);
}

torch::Tensor apply_top_p(const torch::Tensor& scores, double p) {
  if (p >= 1.0) return scores;
  auto [sorted, order] = scores.sort(-1, /*descending=*/true);
  const auto probs = sorted.softmax(-1);
  // A token is dropped when the tokens before it already reach p.
  const auto drop_sorted = (probs.cumsum(-1) - probs) >= p;
  const auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
  return scores.masked_fill(drop, kNegInf);
}

torch::Tensor apply_min_p(const torch::Tensor& scores, double p) {
  if (p <= 0.0) return scores;
  // p_i >= p * p_max  <=>  s_i >= s_max + log p (the softmax's normaliser cancels).
  const auto threshold = std::get<0>(scores.max(-1, /*keepdim=*/true)) + std::log(p);
  return scores.masked_fill(scores < threshold, kNegInf);
}

torch::Tensor sampling_logprobs(const torch::Tensor& logits, const SamplingParams& params) {
  auto scores = logits.to(torch::kFloat32);
  if (!params.greedy()) {
    scores = apply_temperature(scores, params.temperature);
    scores = apply_top_k(scores, params.top_k);
    scores = apply_top_p(scores, params.top_p);
    scores = apply_min_p(scores, params.min_p);
  }
  return scores.log_softmax(-1);
}

uint64_t request_seed(uint64_t seed, uint64_t request, uint64_t sample) {
  return mix64(mix64(mix64(seed) ^ request) ^ sample);
}

double stream_uniform(uint64_t stream, uint64_t t) {
  // The top 53 bits of a mix of (stream, t): every double of the form k / 2^53 equally likely.
  return static_cast<double>(mix64(stream ^ mix64(t)) >> 11) * 0x1.0p-53;
}

torch::Tensor inverse_cdf(const torch::Tensor& probs, const torch::Tensor& u) {
  const auto p = probs.to(torch::kFloat32);
  auto cdf = p.cumsum(-1);  // [R, V]
  // The CPU's scan runs along each row in double, so a zero-mass entry's sum is exactly its
  // predecessor's. A parallel scan (a GPU's) may round it differently; there, giving those
  // entries 0 and taking the running maximum makes each equal its predecessor exactly, so a
  // threshold can never land on one.
  if (!p.device().is_cpu()) cdf = std::get<0>(cdf.masked_fill(p == 0, 0).cummax(-1));
  const auto total = cdf.narrow(-1, cdf.size(-1) - 1, 1);  // [R, 1]
  // u x total, kept below the total whatever the rounding: the first entry above it then
  // exists, and the entry before it is at or below it, so that token's mass is positive.
  auto threshold =
      (u.to(torch::kFloat64).view({-1, 1}) * total.to(torch::kFloat64)).to(torch::kFloat32);
  threshold = torch::minimum(threshold, torch::nextafter(total, torch::zeros_like(total)));
  return torch::searchsorted(cdf, threshold, /*out_int32=*/false, /*right=*/true).view({-1});
}

std::vector<SampledToken> sample_rows(const torch::Tensor& logits,
                                      const std::vector<RowSampling>& rows) {
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == static_cast<int64_t>(rows.size()),
              "sample_rows: logits [R, V] for ", rows.size(), " rows, got ", logits.sizes());
  if (!logits.device().is_cpu() || logits.scalar_type() != torch::kFloat32 || !simd::available()) {
    return sample_rows_staged(logits, rows);
  }
  std::vector<SampledToken> out(rows.size());
  const auto staged = sample_plain_rows_cpu(logits, rows, out);
  if (staged.empty()) return out;
  std::vector<RowSampling> staged_rows;
  for (auto r : staged)
    staged_rows.push_back(rows[static_cast<size_t>(r)]);
  const auto picked =
      sample_rows_staged(logits.index_select(0, torch::tensor(staged)), staged_rows);
  for (size_t i = 0; i < staged.size(); ++i)
    out[static_cast<size_t>(staged[i])] = picked[i];
  return out;
}

std::vector<SampledToken> sample_rows_staged(const torch::Tensor& logits,
                                             const std::vector<RowSampling>& rows) {
  const auto device = logits.device();
  const auto ints = torch::TensorOptions().dtype(torch::kInt64);
  const auto model = logits.to(torch::kFloat32).log_softmax(-1);  // [R, V]

  // Rows grouped by their parameters, in order of first appearance.
  std::vector<const SamplingParams*> kinds;
  std::vector<std::vector<int64_t>> members;
  for (size_t r = 0; r < rows.size(); ++r) {
    size_t g = 0;
    while (g < kinds.size() && !(*kinds[g] == *rows[r].params))
      ++g;
    if (g == kinds.size()) {
      kinds.push_back(rows[r].params);
      members.emplace_back();
    }
    members[g].push_back(static_cast<int64_t>(r));
  }

  std::vector<torch::Tensor> picked;  // per group [g, 3]: token, logprob, model logprob
  for (size_t g = 0; g < kinds.size(); ++g) {
    const auto& idx = members[g];
    const auto n = static_cast<int64_t>(idx.size());
    const auto m =
        n == model.size(0) ? model : model.index_select(0, torch::tensor(idx, ints).to(device));
    // Stop tokens banned before min_new_tokens; the stages are shift-invariant, so they run
    // on log-probs as on logits.
    std::vector<int64_t> ban_rows, ban_ids;
    for (int64_t i = 0; i < n; ++i) {
      const auto* banned = rows[static_cast<size_t>(idx[static_cast<size_t>(i)])].banned;
      if (banned == nullptr) continue;
      for (auto id : *banned) {
        ban_rows.push_back(i);
        ban_ids.push_back(id);
      }
    }
    auto allowed = m;
    if (!ban_rows.empty()) {
      allowed = m.index_put(
          {torch::tensor(ban_rows, ints).to(device), torch::tensor(ban_ids, ints).to(device)},
          torch::full({}, kNegInf, m.options()));
    }
    torch::Tensor token, logprob;  // [n, 1]
    if (kinds[g]->greedy()) {
      token = allowed.argmax(-1, /*keepdim=*/true);
      logprob = torch::zeros({n, 1}, m.options());  // a point mass
    } else {
      const auto lp = sampling_logprobs(allowed, *kinds[g]);
      std::vector<double> u;
      for (auto r : idx)
        u.push_back(
            stream_uniform(rows[static_cast<size_t>(r)].stream, rows[static_cast<size_t>(r)].draw));
      // Clamped so that a row of NaN (refused below) cannot index past the vocabulary.
      token = inverse_cdf(lp.exp(), torch::tensor(u, torch::kFloat64).to(device))
                  .clamp_max(lp.size(-1) - 1)
                  .view({n, 1});
      logprob = lp.gather(1, token);
    }
    picked.push_back(torch::cat({token.to(torch::kFloat64), logprob.to(torch::kFloat64),
                                 m.gather(1, token).to(torch::kFloat64)},
                                1));
  }
  // One transfer for every row (one synchronisation on a GPU).
  const auto host = (picked.size() == 1 ? picked[0] : torch::cat(picked)).cpu().contiguous();
  const auto* v = host.data_ptr<double>();
  std::vector<SampledToken> out(rows.size());
  size_t at = 0;
  for (const auto& idx : members) {
    for (auto r : idx) {
      // NaN or infinite logits give a NaN log-prob (and a token picked from nothing).
      TORCH_CHECK(std::isfinite(v[3 * at + 2]), "sample_rows: the logits of row ", r,
                  " are not finite (NaN or inf): the model's output is broken");
      out[static_cast<size_t>(r)] = {static_cast<int64_t>(v[3 * at]), v[3 * at + 1], v[3 * at + 2]};
      ++at;
    }
  }
  return out;
}

}  // namespace flywheel
