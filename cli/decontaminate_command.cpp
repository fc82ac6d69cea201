// `flywheel decontaminate --train FILE.jsonl --eval FILE.jsonl [--eval FILE2 ...]`: which eval
// instances a training set contains, by Tulu 3's 8-gram rule (trainer/eval/decontaminate.h), and
// with --out the training file without the rows that overlap any of them.
//
// Per eval set it reports the instances that overlap some training row (count and fraction),
// those too short to have an n-gram, and the training lines involved; --json prints everything,
// each (eval line, training line, overlap) pair included.
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "trainer/core/error.h"
#include "trainer/eval/decontaminate.h"

namespace flywheel::cli {
namespace {

using nlohmann::json;

const std::vector<FlagSpec>& decontaminate_flags() {
  static const std::vector<FlagSpec> kFlags = {
      {"train", "FILE", "the training JSONL (or .jsonl.gz)"},
      {"eval", "FILE", "an eval set JSONL (may be repeated)"},
      {"ngram", "N", "n-gram size (default 8)"},
      {"threshold", "X",
       "an eval instance overlaps a training row when more than this fraction of its tokens "
       "match it (default 0.5)"},
      {"field", "KEY",
       "compare this field (may be repeated); default: the first of messages (user turns), "
       "prompt, instruction, question, problem, chosen"},
      {"eval-field", "KEY", "the field(s) of eval rows, when they differ from --field"},
      {"out", "FILE", "write the training file without the overlapping rows"},
      {"threads", "N", "matching threads (default: all hardware threads)"},
      {"json", "", "print the report as one JSON object"},
  };
  return kFlags;
}

}  // namespace

int run_decontaminate(const std::vector<std::string>& argv) {
  const Args args("decontaminate", decontaminate_flags(), argv);
  if (args.help()) {
    std::fputs(format_help("decontaminate", "--train FILE.jsonl --eval FILE.jsonl [options]",
                           "Finds eval instances in a training set by n-gram overlap (Tulu 3's "
                           "rule) and optionally writes the training set without them.",
                           decontaminate_flags())
                   .c_str(),
               stdout);
    return 0;
  }
  const std::string train = args.require("train");
  const std::vector<std::string> evals = args.get_all("eval");
  if (evals.empty()) throw UserError("flywheel decontaminate: --eval is required");
  DecontaminationOptions options;
  options.ngram = static_cast<int>(args.get_int("ngram", options.ngram, 1));
  options.threshold = args.get_double("threshold", options.threshold);
  if (!(options.threshold >= 0 && options.threshold < 1))
    throw UserError("flywheel decontaminate: --threshold must be in [0, 1)");
  const std::vector<std::string> fields = args.get_all("field");
  const std::vector<std::string> eval_fields =
      args.get("eval-field") ? args.get_all("eval-field") : fields;
  const int threads = static_cast<int>(args.get_int("threads", 0, 0));
  const std::optional<std::string> out = args.get("out");
  if (out && *out == train)
    throw UserError("flywheel decontaminate: --out must differ from --train");

  const DecontaminationReport report =
      decontaminate_files(train, evals, fields, eval_fields, options, threads);
  int64_t written = -1;
  if (out) {
    written = copy_jsonl_without_lines(train, *out, {report.flagged.begin(), report.flagged.end()});
  }
  if (args.flag("json")) {
    json j = report.to_json();
    if (out) j["out"] = {{"path", *out}, {"lines_written", written}};
    std::cout << j.dump() << "\n";
    return 0;
  }
  const double seconds = report.seconds;
  const auto rows = report.training_rows;
  std::printf("decontaminate: %lld training rows in %.2f s (%.0f rows/s), %d-grams, threshold %g\n",
              static_cast<long long>(rows), seconds,
              seconds > 0 ? static_cast<double>(rows) / seconds : 0.0, options.ngram,
              options.threshold);
  std::printf("%-40s %10s %10s %12s %9s %14s\n", "eval set", "instances", "too short",
              "overlapping", "fraction", "training rows");
  for (const EvalSetReport& s : report.sets) {
    std::printf("%-40s %10lld %10lld %12zu %8.2f%% %14zu\n", s.path.c_str(),
                static_cast<long long>(s.instances), static_cast<long long>(s.too_short),
                s.overlapping.size(), 100 * s.fraction(), s.training_lines.size());
    if (s.training_lines.empty()) continue;
    // The first lines only: --json lists them all.
    std::string lines;
    int shown = 0;
    for (int64_t line : s.training_lines) {
      if (shown++ == 20) {
        lines += ", ...";
        break;
      }
      lines += (lines.empty() ? "" : ", ") + std::to_string(line);
    }
    std::printf("  training lines: %s\n", lines.c_str());
  }
  if (out)
    std::printf("wrote %s: %lld lines, %zu overlapping rows dropped\n", out->c_str(),
                static_cast<long long>(written), report.flagged.size());
  return 0;
}

}  // namespace flywheel::cli
