// `flywheel eval-rm --model DIR --data PAIRS.jsonl`: how well a reward model orders preference
// pairs before any RL run relies on it ("How to Evaluate Reward Models for RLHF"): pairwise
// accuracy (ties count half), statistics of the margin score(chosen) - score(rejected), and
// accuracy by bucket of the length difference between the two responses — a model that mostly
// prefers the longer answer shows it there. Pairs are read and tokenized exactly as reward-model
// training reads them (every preference format of trainer/data/examples.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/model/device.h"
#include "trainer/model/model_config.h"
#include "trainer/text/chat_template.h"
#include "verifiers/reward_model/reward_scorer.h"

namespace flywheel::cli {
namespace {

const std::vector<FlagSpec>& eval_rm_flags() {
  static const std::vector<FlagSpec> kFlags = {
      {"model", "DIR", "a reward model (*ForSequenceClassification) with its tokenizer"},
      {"data", "FILE", "preference pairs (JSONL or .jsonl.gz, any format training reads)"},
      {"chat-template", "NAME",
       "chat template for message-list pairs (default auto: the model's, else tulu)"},
      {"max-length", "N", "tokens per sequence; longer pairs lose prompt tokens (default 2048)"},
      {"batch-size", "N", "sequences per forward (default 16)"},
      {"max-pairs", "N", "score only the first N pairs"},
      {"dtype", "DTYPE", "float32 | bfloat16 | float16 (default: config.json)"},
      {"device", "DEV", "cpu | cuda | cuda:N (default cpu)"},
      {"out", "FILE", "also write each pair's scores (JSONL)"},
  };
  return kFlags;
}

// Bucket edges of (chosen response tokens - rejected response tokens).
constexpr int64_t kEdges[] = {-128, -32, -8, 8, 32, 128};

std::string bucket_name(size_t b) {
  constexpr size_t n = std::size(kEdges);
  if (b == 0) return "< " + std::to_string(kEdges[0]);
  if (b == n) return ">= " + std::to_string(kEdges[n - 1]);
  return "[" + std::to_string(kEdges[b - 1]) + ", " + std::to_string(kEdges[b]) + ")";
}

size_t bucket_of(int64_t diff) {
  size_t b = 0;
  while (b < std::size(kEdges) && diff >= kEdges[b])
    ++b;
  return b;
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double at = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(at));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (at - static_cast<double>(lo));
}

}  // namespace

int run_eval_rm(const std::vector<std::string>& argv) {
  const Args args("eval-rm", eval_rm_flags(), argv);
  if (args.help()) {
    std::printf("%s", format_help("eval-rm", "--model DIR --data PAIRS.jsonl [options]",
                                  "Pairwise accuracy, margins and length-bias of a reward model.",
                                  eval_rm_flags())
                          .c_str());
    return 0;
  }
  const std::string dir = args.require("model");
  const std::string data_path = args.require("data");
  const auto config = load_model_config((std::filesystem::path(dir) / "config.json").string());
  if (!config.is_sequence_classification()) {
    throw UserError("flywheel eval-rm: " + dir +
                    " is not a reward model (config.json's architectures name no "
                    "*ForSequenceClassification); train one with a reward_model recipe");
  }
  const torch::Dtype dtype =
      args.get("dtype") ? parse_dtype(*args.get("dtype"), "--dtype") : config.dtype;
  const auto device =
      parse_device(args.get("device").value_or("cpu"), "flywheel eval-rm: --device");
  const Tokenizer tokenizer = Tokenizer::from_dir(dir);
  auto model = load_reward_model(dir, dtype, device, /*init_std=*/0.0, /*seed=*/0);

  DataOptions data;
  data.chat_template = args.get("chat-template").value_or(kAutoChatTemplate);
  data.max_length = args.get_int("max-length", 2048, 2);
  DataStats stats;
  auto pairs = load_preference_examples(data_path, tokenizer, data, &stats);
  const int64_t max_pairs = args.get_int("max-pairs", 0, 0);
  if (max_pairs > 0 && std::ssize(pairs) > max_pairs) pairs.resize(static_cast<size_t>(max_pairs));
  if (pairs.empty()) throw UserError(data_path + ": no preference pairs (" + stats.summary() + ")");

  std::vector<std::vector<int64_t>> sequences;
  for (const auto& p : pairs) {
    sequences.push_back(p.chosen.ids);
    sequences.push_back(p.rejected.ids);
  }
  RewardScorerOptions scoring;
  scoring.batch_size = args.get_int("batch-size", 16, 1);
  RewardScorer scorer(model, tokenizer, scoring);
  const auto scores = scorer.score(sequences);

  constexpr size_t kBuckets = std::size(kEdges) + 1;
  double correct = 0;
  std::vector<double> margins;
  double bucket_correct[kBuckets] = {};
  int64_t bucket_count[kBuckets] = {};
  int64_t chosen_longer = 0;
  std::ofstream out;
  if (const auto path = args.get("out")) {
    out.open(*path);
    if (!out) throw UserError("cannot write " + *path);
  }
  for (size_t i = 0; i < pairs.size(); ++i) {
    const double c = scores[2 * i], r = scores[2 * i + 1];
    const double credit = c > r ? 1.0 : c == r ? 0.5 : 0.0;  // ties count half
    correct += credit;
    margins.push_back(c - r);
    const auto response_tokens = [](const TokenSequence& s) {
      return s.size() - s.prompt_length();
    };
    const int64_t diff = response_tokens(pairs[i].chosen) - response_tokens(pairs[i].rejected);
    chosen_longer += diff > 0 ? 1 : 0;
    const size_t b = bucket_of(diff);
    bucket_correct[b] += credit;
    ++bucket_count[b];
    if (out.is_open()) {
      out << nlohmann::json({{"pair", i}, {"chosen", c}, {"rejected", r}, {"length_diff", diff}})
                 .dump()
          << "\n";
    }
  }
  const double n = static_cast<double>(pairs.size());
  double mean = 0;
  for (const double m : margins)
    mean += m / n;
  double var = 0;
  for (const double m : margins)
    var += (m - mean) * (m - mean) / n;
  std::printf("reward model %s on %s: %zu pairs (%s)\n\n", dir.c_str(), data_path.c_str(),
              pairs.size(), stats.summary().c_str());
  std::printf("pairwise accuracy        %.4f   (ties count half)\n", correct / n);
  std::printf("margin mean / std        %.4f / %.4f\n", mean, std::sqrt(var));
  std::printf("margin p10 / p50 / p90   %.4f / %.4f / %.4f\n", quantile(margins, 0.1),
              quantile(margins, 0.5), quantile(margins, 0.9));
  std::printf("chosen response longer   %.4f of pairs\n\n", static_cast<double>(chosen_longer) / n);
  std::printf("%-28s %8s %9s\n", "length diff (chosen-rej.)", "pairs", "accuracy");
  for (size_t b = 0; b < kBuckets; ++b) {
    if (bucket_count[b] == 0) continue;
    std::printf("%-28s %8lld %9.4f\n", bucket_name(b).c_str(),
                static_cast<long long>(bucket_count[b]),
                bucket_correct[b] / static_cast<double>(bucket_count[b]));
  }
  return 0;
}

}  // namespace flywheel::cli
