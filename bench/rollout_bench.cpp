// Generation throughput of the rollout engine, in process, on prompts from a JSONL file.
//
//   flywheel_bench_rollout --model DIR --prompts FILE [--max-new-tokens N] [--n K]
//                          [--temperature T] [--reps R] [--dtype D] [--device DEV]
//                          [--kv-cache-mb MB] [--profile TRACE.json]
//
// FILE holds one {"prompt_ids": [...]} per line (bench/rollout_prompts.py writes them, the
// same for every engine compared). Every sequence generates exactly N tokens (no stop token:
// min_new_tokens = N), sampled at temperature T (0: greedy), K samples per prompt. One
// untimed run, then R timed ones of engine.generate() around the whole set; prints one JSON
// line: the median seconds, generated tokens, tokens/s (and at the fastest rep), and the first
// sequence's ids (the bench script checks greedy runs agree across engines). --profile runs once
// more under the autograd profiler and writes a Chrome trace (bench/profile_compare.py reads it).
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_flags.h"
#include "rollout/engine.h"
#include "trainer/checkpoint/hf_checkpoint.h"
#include "trainer/core/error.h"
#include "trainer/core/jsonl.h"
#include "trainer/dist/runtime.h"
#include "trainer/model/device.h"
#include "trainer/model/model_config.h"

namespace {

using flywheel::UserError;

struct Flags {
  std::string model, prompts, dtype, device = "cpu", profile;
  int64_t max_new_tokens = 128, n = 1, reps = 3, kv_cache_mb = 1024, kv_block_tokens = 16;
  int64_t kv_blocks = 0;
  double temperature = 1.0;
};

constexpr const char* kUsage =
    "usage: flywheel_bench_rollout --model DIR --prompts FILE [--max-new-tokens N] [--n K]\n"
    "                              [--temperature T] [--reps R] [--dtype D] [--device DEV]\n"
    "                              [--kv-cache-mb MB] [--kv-block-tokens B] [--kv-blocks N]\n"
    "                              [--profile TRACE.json]\n";

Flags parse_flags(int argc, char** argv) {
  using flywheel::bench::parse_int;
  const auto given = flywheel::bench::parse_flags(
      argc, argv,
      {"model", "prompts", "max-new-tokens", "n", "reps", "kv-cache-mb", "kv-block-tokens",
       "kv-blocks", "temperature", "dtype", "device", "profile"},
      kUsage);
  Flags f;
  for (const auto& [flag, value] : given) {
    if (flag == "model") {
      f.model = value;
    } else if (flag == "prompts") {
      f.prompts = value;
    } else if (flag == "max-new-tokens") {
      f.max_new_tokens = parse_int(flag, value, 1);
    } else if (flag == "n") {
      f.n = parse_int(flag, value, 1);
    } else if (flag == "reps") {
      f.reps = parse_int(flag, value, 1);
    } else if (flag == "kv-cache-mb") {
      f.kv_cache_mb = parse_int(flag, value, 1);
    } else if (flag == "kv-block-tokens") {
      f.kv_block_tokens = parse_int(flag, value, 1);
    } else if (flag == "kv-blocks") {
      f.kv_blocks = parse_int(flag, value, 1);
    } else if (flag == "temperature") {
      f.temperature = flywheel::bench::parse_double(flag, value);
    } else if (flag == "dtype") {
      f.dtype = value;
    } else if (flag == "device") {
      f.device = value;
    } else {
      f.profile = value;
    }
  }
  if (f.model.empty() || f.prompts.empty()) {
    throw UserError(std::string("--model and --prompts are required\n") + kUsage);
  }
  return f;
}

int run(const Flags& f) {
  const int threads = flywheel::configure_runtime();
  flywheel::LoadOptions load;
  if (!f.dtype.empty()) load.dtype = flywheel::parse_dtype(f.dtype, "--dtype");
  load.device = flywheel::parse_device(f.device, "--device");
  auto model = flywheel::load_causal_lm(f.model, load);

  std::vector<flywheel::Request> requests;
  flywheel::JsonlReader reader(f.prompts);
  int64_t longest = 0;
  for (flywheel::JsonlRecord rec; reader.next(&rec);) {
    flywheel::Request r;
    r.prompt = rec.value.at("prompt_ids").get<std::vector<int64_t>>();
    r.max_new_tokens = r.min_new_tokens = f.max_new_tokens;
    r.n = f.n;
    r.sampling.temperature = f.temperature;
    longest = std::max<int64_t>(longest, static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens);
    requests.push_back(std::move(r));
  }
  flywheel::EngineOptions options;
  options.kv_cache_mb = f.kv_cache_mb;
  options.kv_block_tokens = f.kv_block_tokens;
  options.kv_blocks = f.kv_blocks;
  options.max_seq_len = longest;
  flywheel::Engine engine(model, options);

  engine.generate(requests);  // untimed
  std::vector<double> seconds;
  int64_t tokens = 0;
  std::vector<int64_t> first;
  for (int64_t rep = 0; rep < f.reps; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    const auto out = engine.generate(requests);
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    tokens = 0;
    for (const auto& completions : out) {
      for (const auto& c : completions)
        tokens += static_cast<int64_t>(c.token_ids.size());
    }
    first = out[0][0].token_ids;
  }
  if (!f.profile.empty()) {
    torch::autograd::profiler::RecordProfile guard(f.profile);
    engine.generate(requests);
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  nlohmann::json line = {{"impl", "flywheel"},
                         {"threads", threads},
                         {"sequences", requests.size() * static_cast<size_t>(f.n)},
                         {"max_running", engine.max_running()},
                         {"kv_blocks", engine.kv_blocks()},
                         {"preemptions", engine.stats().preemptions},
                         {"graph_captures", engine.stats().graph_captures},
                         {"tokens", tokens},
                         {"seconds", median},
                         {"tokens_per_s", static_cast<double>(tokens) / median},
                         // The fastest rep: what a noisy (shared, virtual) machine gives when
                         // undisturbed, for comparing two builds run one after the other.
                         {"best_tokens_per_s", static_cast<double>(tokens) / seconds.front()},
                         {"ids", first}};
  std::cout << line.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return flywheel::bench::run_main([&] { return run(parse_flags(argc, argv)); });
}
