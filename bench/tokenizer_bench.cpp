// Encoding throughput of a tokenizer, single thread, on a text file (one document per line).
//
//   flywheel_bench_tokenizer --tokenizer PATH --text FILE [--reps R]
//
// PATH is a Hugging Face tokenizer.json or a SentencePiece tokenizer.model. One untimed pass
// (which also fills the BPE word cache, as a data loader's long run would), then R timed passes
// over every line; prints one JSON line: the median seconds, bytes, tokens, MB/s and a checksum
// of the ids (bench/run_tokenizer.sh compares it with Hugging Face's).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_flags.h"
#include "trainer/text/hf_tokenizer.h"
#include "trainer/text/tokenizer.h"

int main(int argc, char** argv) {
  return flywheel::bench::run_main([&] {
    const std::string usage = "flywheel_bench_tokenizer --tokenizer PATH --text FILE [--reps R]\n";
    auto flags = flywheel::bench::parse_flags(argc, argv, {"tokenizer", "text", "reps"}, usage);
    if (!flags.count("tokenizer") || !flags.count("text"))
      throw flywheel::UserError("--tokenizer and --text are required\n" + usage);
    const auto reps =
        flags.count("reps") ? flywheel::bench::parse_int("reps", flags["reps"], 1) : 3;
    std::ifstream in(flags["text"]);
    if (!in) throw flywheel::UserError("cannot read " + flags["text"]);
    std::vector<std::string> lines;
    size_t bytes = 0;
    for (std::string line; std::getline(in, line);) {
      bytes += line.size();
      lines.push_back(std::move(line));
    }
    const std::string path = flags["tokenizer"];
    const bool hf = path.size() >= 5 && path.substr(path.size() - 5) == ".json";
    std::function<std::vector<int64_t>(const std::string&)> encode;
    std::optional<flywheel::HfTokenizer> hf_tokenizer;
    std::optional<flywheel::Tokenizer> sp_tokenizer;
    if (hf) {
      hf_tokenizer.emplace(flywheel::HfTokenizer::from_file(path));
      encode = [&](const std::string& s) { return hf_tokenizer->encode(s, false); };
    } else {
      sp_tokenizer.emplace(flywheel::Tokenizer::from_file(path));
      encode = [&](const std::string& s) { return sp_tokenizer->encode(s, false); };
    }
    int64_t tokens = 0;
    uint64_t checksum = 0;
    std::vector<double> seconds;
    for (int64_t r = 0; r <= reps; ++r) {
      tokens = 0;
      checksum = 0;
      const auto start = std::chrono::steady_clock::now();
      for (const auto& line : lines) {
        for (const int64_t id : encode(line)) {
          checksum = checksum * 1000003 + static_cast<uint64_t>(id);
          ++tokens;
        }
      }
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (r > 0) seconds.push_back(s);
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    std::printf("%s\n", nlohmann::json{{"seconds", median},
                                       {"bytes", bytes},
                                       {"tokens", tokens},
                                       {"mb_per_s", static_cast<double>(bytes) / 1e6 / median},
                                       {"checksum", std::to_string(checksum)}}
                            .dump()
                            .c_str());
    return 0;
  });
}
